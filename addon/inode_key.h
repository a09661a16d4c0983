// A runtime binary has two names for its inode, equal on most filesystems but not all. stat(2)
// reports a per-layer pseudo device for a file of an overlay whose layers sit on different
// filesystems (xino off), and a subvolume's anonymous device on btrfs; the kernel's own
// (i_sb->s_dev, i_ino) is what the BPF side reads from an exec'd file. User space compares
// stat with stat (a permission event's fd with a marked binary); the BPF maps take the kernel's.
#pragma once
#include <sys/stat.h>

#include <cstdint>
#include <string>
#include <tuple>

namespace ocinotify {

struct InodeKey {
  uint64_t dev = 0;  // the kernel's dev_t encoding, (major << 20) | minor, whoever reports it
  uint64_t ino = 0;

  bool operator==(const InodeKey& o) const { return dev == o.dev && ino == o.ino; }
  bool operator!=(const InodeKey& o) const { return !(*this == o); }
  bool operator<(const InodeKey& o) const { return std::tie(dev, ino) < std::tie(o.dev, o.ino); }
};

// stat(2)'s key, in the kernel's encoding: where the two keys agree, they are equal.
InodeKey StatKey(const struct stat& st);

// The kernel's key of the inode an fd is open on. An inotify watch's fdinfo prints its inode's
// i_ino and i_sb->s_dev, the very fields the BPF side reads; a watch is added through
// /proc/self/fd/N (that inode, whatever its path names by now), read back and removed. One
// inotify instance, opened at the first lookup, serves them all. Not thread-safe.
class KernelKeys {
 public:
  ~KernelKeys();
  // "" with out set, or why the key is unknown.
  std::string Of(int fd, InodeKey& out);
  void Close();

 private:
  std::string Read(int wd, InodeKey& out);
  int fd_ = -1;
};

}  // namespace ocinotify
