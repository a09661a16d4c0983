#include "kernel_probe.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "bpf_tracer.h"
#include "fanotify_gate.h"
#include "inode_key.h"
#include "pid_watch.h"
#include "read_in_root.h"

namespace ocinotify {

namespace {

std::string Errno(const char* what) { return std::string(what) + ": " + strerror(errno); }

// The gate's own group and mark calls. The mark goes on "/", which no one execs: nothing is
// held while the probe's group lives.
void ProbeFanotify(std::vector<Mechanism>& out) {
  FanotifyGate gate;
  std::string group = gate.Open();
  out.push_back({"fanotify", group});
  if (!group.empty()) {
    out.push_back({"FAN_OPEN_EXEC_PERM", "needs fanotify"});
    return;
  }
  int root = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  out.push_back({"FAN_OPEN_EXEC_PERM", root < 0 ? Errno("open /") : gate.MarkFd(root)});
  if (root >= 0) close(root);
}

std::string ProbeOpenAt2() {
  int fd = OpenAt2(AT_FDCWD, "/", O_PATH | O_CLOEXEC, RESOLVE_IN_ROOT);
  if (fd < 0) return Errno("openat2");
  close(fd);
  return "";
}

std::string ProbeKernelKeys() {
  int root = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) return Errno("open /");
  KernelKeys keys;
  InodeKey key;
  std::string error = keys.Of(root, key);
  close(root);
  return error;
}

}  // namespace

std::vector<Mechanism> ProbeKernel() {
  std::vector<Mechanism> out;
  ProbeFanotify(out);
  out.push_back({"pidfd_open", PidWatch::Probe()});
  out.push_back({"openat2", ProbeOpenAt2()});
  out.push_back({"inotify fdinfo", ProbeKernelKeys()});
  for (auto& m : BpfTracer::Probe()) out.push_back(std::move(m));
  return out;
}

}  // namespace ocinotify
