// Loads bpf/ocinotify.bpf.c through its generated skeleton and drains its
// ring buffer. The only place that knows the BPF object.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "inode_key.h"
#include "kernel_probe.h"
#include "record.h"

struct ocinotify_bpf;
struct ring_buffer;

namespace ocinotify {

struct RuntimeBinary {
  std::string path;   // as marked (through the host root)
  uint32_t kind;      // enum oci_binary_kind
  InodeKey file;      // stat(2)'s: what user space compares
  InodeKey kernel;    // the kernel's: what the BPF side reads (inode_key.h)
};

class BpfTracer {
 public:
  using Sink = std::function<void(const void* data, size_t size)>;

  ~BpfTracer();
  // What the BPF object needs of the kernel, each tried alone (kernel_probe.h).
  static std::vector<Mechanism> Probe();
  // Returns "" on success, else why the kernel side cannot run.
  std::string Open(uint32_t watcherPidns, uint32_t hostPidns, const std::vector<std::string>& names,
                   const std::vector<RuntimeBinary>& binaries, Sink sink);
  int EpollFd() const;
  void Drain();
  void AddBinary(const RuntimeBinary& binary);
  void RemoveBinary(const InodeKey& kernel);
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
