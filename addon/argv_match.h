// The argv of each exec held at its permission check, and whether it is held. BPF copies
// a runtime's argv at sys_enter_execve(at), before the check; fanotify then reports the
// check with the exec'ing thread. Both come from the reactor thread only.
#pragma once
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <string>
#include <unordered_map>
#include <vector>

#include "bpf_tracer.h"
#include "fanotify_gate.h"
#include "hold_verbs.h"
#include "record.h"

namespace ocinotify {

class ArgvMatch {
 public:
  // Keeps a sys_enter record until its permission event.
  void Keep(Record enter);
  // The exec held at ev, with its argv: from its sys_enter record, else read from the
  // held thread's memory.
  Record Match(const PermEvent& ev, BpfTracer& bpf, bool watcherInInitPidns);
  // Forgets the records no permission event came for: an exec that failed before its
  // check, or of an unmarked file with a runtime's name.
  void Expire();
  // Process pid (host) finished an exec: one it entered without a permission event (an
  // unmarked file with a runtime's name, a kind node's runc before it is learnt) has no
  // event coming. Forgotten at once: in order-matching, it would take a later exec's event.
  void Ran(uint32_t pid);
  bool Waiting() const { return !byTid_.empty() || !invisible_.empty(); }
  // The kept sys_enter record of tid (0: the oldest of a task our pid namespace cannot see,
  // made at or after notBeforeNs: older ones are dropped, as no exec waits that long).
  bool Take(pid_t tid, Record& out, uint64_t notBeforeNs = 0);
  // Records dropped because too many were waiting. Read from any thread.
  uint64_t Unmatched() const { return unmatched_.load(); }

 private:
  struct Enter {
    Record rec;
    std::chrono::steady_clock::time_point seen;
  };

  std::unordered_map<pid_t, Enter> byTid_;
  std::deque<Enter> invisible_;  // tasks our pid namespace cannot see
  std::atomic<uint64_t> unmatched_{0};
};

}  // namespace ocinotify
