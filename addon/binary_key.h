// How a runtime binary is keyed: by the inode its exec opens, as the BPF side's inode_kind()
// reads it (bpf/ocinotify.bpf.c). One function, so that how the key is taken changes in one place.
#pragma once
#include <sys/stat.h>

#include <cstdint>

#include "kernel_dev.h"

namespace ocinotify {

struct BinaryKey {
  uint64_t dev = 0;  // KernelDev()
  uint64_t ino = 0;
  bool operator==(const BinaryKey& o) const { return dev == o.dev && ino == o.ino; }
};

// False when fd cannot be looked at.
inline bool KeyOfFd(int fd, BinaryKey& key) {
  struct stat st;
  if (fstat(fd, &st) != 0) return false;
  key = {KernelDev(st.st_dev), static_cast<uint64_t>(st.st_ino)};
  return true;
}

}  // namespace ocinotify
