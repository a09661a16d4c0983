// Loads bpf/ocinotify.bpf.c through its generated skeleton and drains its
// ring buffer. The only place that knows the BPF object.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "record.h"

struct ocinotify_bpf;
struct ring_buffer;

namespace ocinotify {

struct RuntimeBinary {
  std::string path;   // as marked (through the host root)
  uint32_t kind;      // enum oci_binary_kind
  uint64_t dev = 0;   // KernelDev()
  uint64_t ino = 0;
};

class BpfTracer {
 public:
  using Sink = std::function<void(const void* data, size_t size)>;

  ~BpfTracer();
  // Returns "" on success, else why the kernel side cannot run.
  std::string Open(uint32_t watcherPidns, uint32_t hostPidns, const std::vector<std::string>& names,
                   const std::vector<RuntimeBinary>& binaries, Sink sink);
  int EpollFd() const;
  void Drain();
  void AddBinary(const RuntimeBinary& binary);
  void RemoveBinary(uint64_t dev, uint64_t ino);
  void AddName(const std::string& name, uint32_t kind);
  // Puts a container init found by a scan where the kernel side follows it:
  // lineage until its entrypoint exec, or containers when it already ran it.
  bool TrackContainer(uint32_t pid, uint32_t sessionPid, bool started, uint32_t runtimeMntns);
  uint64_t Stat(uint32_t which) const;
  void Close();

 private:
  static int OnRecord(void* ctx, void* data, size_t size);
  ocinotify_bpf* skel_ = nullptr;
  ring_buffer* rb_ = nullptr;
  Sink sink_;
};

}  // namespace ocinotify
