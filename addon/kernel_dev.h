// BPF keys a runtime binary by the inode its exec opens: a super_block's s_dev, in the
// kernel's own dev_t encoding (MKDEV: major << 20 | minor), and stat(2) reports another.
#pragma once
#include <sys/sysmacros.h>
#include <sys/types.h>

#include <cstdint>

namespace ocinotify {

inline uint64_t KernelDev(dev_t dev) { return (static_cast<uint64_t>(major(dev)) << 20) | minor(dev); }

}  // namespace ocinotify
