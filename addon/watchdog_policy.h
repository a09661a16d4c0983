// What the watchdog answers an exec it finds unanswered: the reactor's rule (hold_verbs.h),
// with the timeout policy where the reactor would ask JavaScript. It reads no bundle, so a
// creation gets what every creation would: fail-closed if any of the watcher's policies is.
#pragma once
#include <sys/types.h>

#include <cstdint>

#include "hold_verbs.h"
#include "watchdog_shared.h"

namespace ocinotify::wd {

struct Policy {
  HoldVerbs verbs;
  bool allowCreations = true;
  int64_t budgetNs = 0;
};

// The reactor's side: written once, before any watchdog maps the memory.
void WritePolicy(Shared& shared, const Policy& policy);
Policy ReadPolicy(const Shared& shared);

// The runtime binaries by inode, and their kinds: rewritten whenever the reactor's change.
void WriteBinaries(Shared& shared, const BinaryKey* keys, uint32_t count);
// The inode an fd is open on, in the kernel's dev_t encoding (inode_key.h); false if fstat fails.
bool InodeOf(int fd, uint64_t& dev, uint64_t& ino);
// Whether an inode is a monitor's binary (conmon), by what WriteBinaries said.
bool IsMonitor(Shared& shared, uint64_t dev, uint64_t ino);

// Whether to allow an exec of tid (as fanotify reported it; 0: not visible from here).
bool AllowsExec(pid_t tid, bool monitor, const Policy& policy);

}  // namespace ocinotify::wd
