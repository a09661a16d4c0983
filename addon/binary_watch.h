// Keeps up with runtime binaries that are replaced or installed while we
// watch. A fanotify mark and a BPF inode key name one file, not a path: a
// package upgrade renames a new file over the old path and both stay behind
// on the old inode. inotify watches on every directory along every candidate
// path (as written, so symlinked components such as k3s' data/current count)
// report such renames, and a rescan resolves every candidate again.
#pragma once
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "bpf_tracer.h"

namespace ocinotify {

struct BinaryCandidate {
  std::string path;     // where a runtime may be, under the host root
  std::string runtime;  // runc, crun, ... (the name JavaScript gave it)
  uint32_t kind;        // enum oci_binary_kind
};

struct FoundBinary {
  // Its path resolved through symlinks, and its stat key; its kernel key is the reactor's to learn.
  RuntimeBinary binary;
  std::string foundAt;  // the candidate path that led to it
  std::string runtime;
  int fd;               // O_RDONLY on the inode: how it is keyed, marked and unmarked; -1 once learnt from an exec
  // Learnt from an exec (exec_discovery.h): the mount namespace of the runtime that ran it,
  // where binary.path is its path. 0 for a candidate's.
  uint32_t mntns = 0;
};

class BinaryWatch {
 public:
  ~BinaryWatch();
  // marked: the binaries already marked, which are not reported as new.
  // Returns "" or why installs and upgrades cannot be followed.
  std::string Open(const std::vector<BinaryCandidate>& candidates, const std::vector<RuntimeBinary>& marked);
  int Fd() const { return fd_; }
  // Drains the inotify queue; true when a candidate may resolve differently. Appends the
  // binaries learnt from an exec that are gone: deleted, or their filesystem unmounted.
  bool Read(std::vector<FoundBinary>& learnedGone);
  // Follows a binary learnt from an exec (exec_discovery.h), opened at fd, to its end. No fd
  // is kept: one would keep a removed node's filesystem alive.
  void WatchLearned(int fd, const FoundBinary& binary);
  // Re-arms the directory watches, then resolves every candidate (in that
  // order, so that nothing created in between is missed). Appends the
  // binaries that appeared since the last call and those that are gone; the
  // caller owns (closes) the fds of the gone ones.
  void Rescan(std::vector<FoundBinary>& added, std::vector<FoundBinary>& gone);
  void Close();

 private:
  void WatchAncestors(const std::string& path, std::set<int>& wds);

  int fd_ = -1;
  std::vector<BinaryCandidate> candidates_;
  std::set<std::string> names_;            // every component of every candidate path
  std::map<InodeKey, FoundBinary> found_;  // what the candidates resolved to at the last scan, by stat key
  std::set<int> wds_;
  std::map<int, FoundBinary> learned_;  // by inotify watch
};

}  // namespace ocinotify
