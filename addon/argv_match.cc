#include "argv_match.h"

#include <algorithm>

#include "proc_argv.h"

namespace ocinotify {

namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kEnterTtl = std::chrono::seconds(10);
constexpr size_t kMaxEnters = 65536;

}  // namespace

void ArgvMatch::Keep(Record enter) {
  if (byTid_.size() + invisible_.size() >= kMaxEnters) {
    unmatched_++;
    return;
  }
  pid_t tid = enter.task.vtid;
  Enter e{std::move(enter), Clock::now()};
  if (tid)
    byTid_[tid] = std::move(e);
  else
    invisible_.push_back(std::move(e));
}

bool ArgvMatch::Take(pid_t tid, Record& out, uint64_t notBeforeNs) {
  if (tid) {
    auto it = byTid_.find(tid);
    if (it == byTid_.end()) return false;
    out = std::move(it->second.rec);
    byTid_.erase(it);
    return true;
  }
  // Our pid namespace cannot see the exec'ing task: its permission event is
  // the oldest unmatched one, as both are produced in the same task's order.
  while (!invisible_.empty() && invisible_.front().rec.task.ts_ns < notBeforeNs) {
    invisible_.pop_front();
    unmatched_++;
  }
  if (invisible_.empty()) return false;
  out = std::move(invisible_.front().rec);
  invisible_.pop_front();
  return true;
}

Record ArgvMatch::Match(const PermEvent& ev, BpfTracer& bpf, bool watcherInInitPidns) {
  Record rec;
  // A permission event queued after this iteration's drain has its record
  // committed, but not yet consumed: drain once more before reading /proc.
  bool found = Take(ev.tid, rec);
  if (!found) {
    bpf.Drain();
    found = Take(ev.tid, rec);
  }
  if (found) {
    // The kernel side copies the first OCI_ARGS_BYTES of argv; the held
    // thread's memory has all of it (10,000 arguments, a 100 KiB one).
    Record whole;
    if ((rec.flags & OCI_F_ARGS_TRUNCATED) && ev.tid && ReadExecArgv(ev.tid, whole)) {
      rec.argv = std::move(whole.argv);
      rec.flags = (rec.flags & ~OCI_F_ARGS_TRUNCATED) | (whole.flags & OCI_F_ARGS_TRUNCATED);
    }
    return rec;
  }
  rec.kind = RecordKind::Exec;
  rec.task.ts_ns = MonotonicNs();  // no kernel record: the time we saw the permission event
  if (ev.tid && ReadExecArgv(ev.tid, rec)) {
    if (watcherInInitPidns) {
      rec.task.pid = rec.task.vpid;
      rec.task.tid = rec.task.vtid;
    }
  } else {
    rec.task.vtid = ev.tid;
  }
  return rec;
}

void ArgvMatch::Ran(uint32_t pid) {
  for (auto it = byTid_.begin(); it != byTid_.end();)
    it = it->second.rec.task.pid == pid ? byTid_.erase(it) : std::next(it);
  invisible_.erase(std::remove_if(invisible_.begin(), invisible_.end(), [pid](const Enter& e) { return e.rec.task.pid == pid; }),
                   invisible_.end());
}

void ArgvMatch::Expire() {
  auto cutoff = Clock::now() - kEnterTtl;
  for (auto it = byTid_.begin(); it != byTid_.end();)
    it = it->second.seen < cutoff ? byTid_.erase(it) : std::next(it);
  while (!invisible_.empty() && invisible_.front().seen < cutoff) invisible_.pop_front();
}

}  // namespace ocinotify
