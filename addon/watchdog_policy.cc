#include "watchdog_policy.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "inode_key.h"
#include "proc_argv.h"

namespace ocinotify::wd {

namespace {

// Appends each verb and an empty string after them.
size_t PutList(char* at, size_t room, const std::vector<std::string>& list) {
  size_t used = 0;
  for (const auto& v : list) {
    if (used + v.size() + 2 > room) break;  // the verbs are a handful of short words
    memcpy(at + used, v.c_str(), v.size() + 1);
    used += v.size() + 1;
  }
  at[used] = 0;
  return used + 1;
}

std::vector<std::string> GetList(const char*& at, const char* end) {
  std::vector<std::string> list;
  while (at < end && *at) {
    size_t n = strnlen(at, end - at);
    list.emplace_back(at, n);
    at += n + 1;
  }
  at++;
  return list;
}

}  // namespace

void WritePolicy(Shared& shared, const Policy& policy) {
  shared.budgetNs = policy.budgetNs;
  shared.allowCreations = policy.allowCreations;
  size_t used = PutList(shared.verbs, kVerbBytes, policy.verbs.create);
  PutList(shared.verbs + used, kVerbBytes - used, policy.verbs.start);
}

Policy ReadPolicy(const Shared& shared) {
  Policy p;
  p.budgetNs = shared.budgetNs;
  p.allowCreations = shared.allowCreations != 0;
  const char* at = shared.verbs;
  const char* end = shared.verbs + kVerbBytes;
  p.verbs.create = GetList(at, end);
  p.verbs.start = GetList(at, end);
  return p;
}

void WriteBinaries(Shared& shared, const BinaryKey* keys, uint32_t count) {
  count = std::min(count, kBinaries);
  shared.binariesSeq.fetch_add(1);  // odd: being written
  std::atomic_thread_fence(std::memory_order_release);
  memcpy(shared.binaries, keys, count * sizeof(BinaryKey));
  shared.binaryCount = count;
  shared.binariesSeq.fetch_add(1);
}

bool InodeOf(int fd, uint64_t& dev, uint64_t& ino) {
  struct stat st;
  if (fstat(fd, &st) != 0) return false;
  InodeKey key = StatKey(st);
  dev = key.dev;
  ino = key.ino;
  return true;
}

bool IsMonitor(Shared& shared, uint64_t dev, uint64_t ino) {
  for (;;) {
    uint32_t seq = shared.binariesSeq.load();
    if (seq & 1) continue;  // a rescan is writing: a few hundred nanoseconds
    bool monitor = false;
    uint32_t count = std::min(shared.binaryCount, kBinaries);
    for (uint32_t i = 0; i < count; i++)
      if (shared.binaries[i].dev == dev && shared.binaries[i].ino == ino)
        monitor = shared.binaries[i].kind == OCI_BIN_MONITOR;
    std::atomic_thread_fence(std::memory_order_acquire);
    if (shared.binariesSeq.load() == seq) return monitor;
  }
}

bool AllowsExec(pid_t tid, bool monitor, const Policy& policy) {
  if (monitor) return true;
  // Who exec'd is unknown (a pod without hostPID): it may be a creation.
  if (tid == 0) return policy.allowCreations;
  Record rec;
  if (!ReadExecArgv(tid, rec)) return true;  // the reactor holds no exec it cannot read either
  Hold verb = HoldFor(rec, policy.verbs);
  // A start is an ordering barrier, never denied.
  return !Holdable(rec, verb) || verb == Hold::Start || policy.allowCreations;
}

}  // namespace ocinotify::wd
