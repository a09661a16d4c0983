#include "reactor.h"

#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstring>

#include "kernel_dev.h"
#include "proc_argv.h"

namespace ocinotify {

namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kEnterTtl = std::chrono::seconds(10);
constexpr auto kLossCheckEvery = std::chrono::milliseconds(100);
constexpr size_t kMaxEnters = 65536;
constexpr uint64_t kTagGate = 1, kTagBpf = 2, kTagTimer = 3, kTagWake = 4, kTagBinaries = 5;
constexpr uint64_t kTagPidfd = 1ull << 32;  // | the pidfd

uint64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + ts.tv_nsec;
}

// Only create and run make a container; start is held as an ordering barrier
// (below). Everything else the runtimes are exec'd for (kill, delete, state,
// init, ...) is answered without a trip through JavaScript. This is a
// prefilter: an argument that merely equals a verb (a container named
// "create") costs a hold, never a miss; the exact parse is the TypeScript
// argv parser's.
enum class Hold { None, Create, Start };

Hold HoldFor(const Record& rec, bool holdStart) {
  if (rec.flags & OCI_F_MONITOR) return Hold::None;
  Hold hold = Hold::None;
  for (size_t i = 1; i < rec.argv.size(); i++) {
    if (rec.argv[i] == "create" || rec.argv[i] == "run") return Hold::Create;
    if (holdStart && rec.argv[i] == "start") hold = Hold::Start;
  }
  return hold;
}

Record FromTask(RecordKind kind, const oci_header& hdr) {
  Record r;
  r.kind = kind;
  r.task = hdr.task;
  r.flags = hdr.flags;
  return r;
}

std::string CString(const char* s, size_t max) { return std::string(s, strnlen(s, max)); }

// The binaries JavaScript found, keyed as BPF keys them; one gone since is left out.
std::vector<RuntimeBinary> Keyed(std::vector<RuntimeBinary> binaries) {
  std::vector<RuntimeBinary> keyed;
  for (auto& b : binaries) {
    struct stat st;
    if (stat(b.path.c_str(), &st) != 0) continue;
    b.dev = KernelDev(st.st_dev);
    b.ino = st.st_ino;
    keyed.push_back(std::move(b));
  }
  return keyed;
}

}  // namespace

Reactor::Reactor(ReactorOptions options) : opt_(std::move(options)), batch_(new Batch) {
  opt_.binaries = Keyed(std::move(opt_.binaries));
}

Reactor::~Reactor() { Stop(); }

ReactorStatus Reactor::Start(Deliver deliver) {
  ReactorStatus st;
  deliver_ = std::move(deliver);
  epfd_ = epoll_create1(EPOLL_CLOEXEC);
  timerfd_ = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
  wakefd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  auto watch = [this](int fd, uint64_t tag) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = tag;
    epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev);
  };
  if (opt_.useFanotify) {
    st.fanotifyError = gate_.Open();
    if (st.fanotifyError.empty()) {
      for (const auto& b : opt_.binaries) {
        std::string err = gate_.Mark(b.path);
        if (err.empty())
          st.marked.push_back(b.path);
        else
          st.markErrors.push_back(err);
      }
      st.fanotify = true;
      watch(gate_.Fd(), kTagGate);
    }
  } else {
    st.fanotifyError = "disabled";
  }
  if (opt_.useBpf) {
    st.bpfError = bpf_.Open(opt_.watcherPidns, opt_.names, opt_.binaries,
                            [this](const void* d, size_t n) { OnBpf(d, n); });
    if (st.bpfError.empty()) {
      st.bpf = true;
      bpfRunning_ = true;
      watch(bpf_.EpollFd(), kTagBpf);
    } else {
      bpf_.Close();
    }
  } else {
    st.bpfError = "disabled";
  }
  if (!st.bpf && !st.fanotify) {
    gate_.Close();
    return st;
  }
  watch(timerfd_, kTagTimer);
  watch(wakefd_, kTagWake);
  if (!opt_.candidates.empty() && binaryWatch_.Open(opt_.candidates, opt_.binaries).empty()) {
    watch(binaryWatch_.Fd(), kTagBinaries);
    RescanBinaries();  // what changed since JavaScript looked: delivered with the first batch
    uint64_t one = 1;
    (void)!write(wakefd_, &one, sizeof(one));
  }
  started_ = true;
  thread_ = std::thread([this] {
    // Named so that ps, top and tests tell the reactor from node's threads.
    pthread_setname_np(pthread_self(), "ocinotify");
    Run();
  });
  return st;
}

void Reactor::Run() {
  epoll_event events[8];
  while (!stopping_.load()) {
    int n = epoll_wait(epfd_, events, 8, -1);
    bool gate = false, timer = false, binaries = false;
    for (int i = 0; i < n; i++) {
      gate |= events[i].data.u64 == kTagGate;
      timer |= events[i].data.u64 == kTagTimer;
      binaries |= events[i].data.u64 == kTagBinaries;
      if (events[i].data.u64 & kTagPidfd) OnPidExit(static_cast<int>(events[i].data.u64 & 0xffffffff));
    }
    // Drain the ring buffer first, every time: a runtime's sys_enter record
    // is committed before its permission event is queued, so after this
    // drain every permission event read below has its argv here.
    bpf_.Drain();
    if (binaries && binaryWatch_.Read()) RescanBinaries();
    if (gate) OnPermEvents();
    for (int i = 0; i < n; i++)
      if (events[i].data.u64 == kTagWake) {
        uint64_t v;
        (void)!read(wakefd_, &v, sizeof(v));
      }
    if (timer) {
      uint64_t ticks;
      (void)!read(timerfd_, &ticks, sizeof(ticks));
      armedFor_ = Clock::time_point::max();  // it fired: nothing is armed any more
      ExpireDeadlines();
      ExpireEnters();
    }
    Flush();
    ArmTimer();
  }
}

void Reactor::OnBpf(const void* data, size_t size) {
  if (size < sizeof(oci_header)) return;
  const auto& hdr = *static_cast<const oci_header*>(data);
  switch (hdr.type) {
    case OCI_REC_RUNTIME_ENTER:
    case OCI_REC_RUNTIME_EXEC: {
      // The kernel side sends a runtime record up to the end of its used argv.
      constexpr size_t kArgsAt = offsetof(oci_runtime_rec, args);
      if (size < kArgsAt) return;
      const auto& r = *static_cast<const oci_runtime_rec*>(data);
      bool enter = hdr.type == OCI_REC_RUNTIME_ENTER;
      Record rec = FromTask(enter ? RecordKind::Exec : RecordKind::RuntimeExec, hdr);
      rec.argv = SplitArgs(r.args, std::min<size_t>({r.args_len, OCI_ARGS_BYTES, size - kArgsAt}));
      rec.filename = CString(r.filename, OCI_FILENAME_LEN);
      rec.argvSource = enter ? ArgvSource::EnterTracepoint : ArgvSource::ExecTracepoint;
      if (!enter) {
        for (const auto& b : opt_.binaries)
          if (b.dev == r.inode.dev && b.ino == r.inode.ino) rec.binary = b.path;
        batch_->push_back(std::move(rec));
        return;
      }
      if (gate_.Fd() < 0) return;  // no permission events to match them to
      if (enterByTid_.size() + enterInvisible_.size() >= kMaxEnters) {
        stats_.enterUnmatched++;
        return;
      }
      Enter e{std::move(rec), Clock::now()};
      if (hdr.task.vtid)
        enterByTid_[hdr.task.vtid] = std::move(e);
      else
        enterInvisible_.push_back(std::move(e));
      return;
    }
    case OCI_REC_INIT_EXEC: {
      if (size < sizeof(oci_init_rec)) return;
      const auto& r = *static_cast<const oci_init_rec*>(data);
      Record rec = FromTask(RecordKind::InitExec, hdr);
      rec.sessionPid = r.session_pid;
      rec.runtimeMntns = r.runtime_mntns;
      rec.filename = CString(r.filename, OCI_FILENAME_LEN);
      batch_->push_back(std::move(rec));
      return;
    }
    case OCI_REC_EXEC_FAILED: {
      if (size < sizeof(oci_exec_failed_rec)) return;
      const auto& r = *static_cast<const oci_exec_failed_rec*>(data);
      Record rec = FromTask(RecordKind::ExecFailed, hdr);
      rec.status = r.err;
      batch_->push_back(std::move(rec));
      return;
    }
    case OCI_REC_EXIT: {
      if (size < sizeof(oci_exit_rec)) return;
      const auto& r = *static_cast<const oci_exit_rec*>(data);
      Record rec = FromTask(RecordKind::Exit, hdr);
      rec.exitKind = r.kind;
      rec.sessionPid = r.session_pid;
      rec.status = r.status;
      batch_->push_back(std::move(rec));
      return;
    }
  }
}

bool Reactor::TakeEnter(pid_t tid, Record& out) {
  if (tid) {
    auto it = enterByTid_.find(tid);
    if (it == enterByTid_.end()) return false;
    out = std::move(it->second.rec);
    enterByTid_.erase(it);
    return true;
  }
  // Our pid namespace cannot see the exec'ing task: its permission event is
  // the oldest unmatched one, as both are produced in the same task's order.
  if (enterInvisible_.empty()) return false;
  out = std::move(enterInvisible_.front().rec);
  enterInvisible_.pop_front();
  return true;
}

Record Reactor::MatchArgv(const PermEvent& ev) {
  Record rec;
  // A permission event queued after this iteration's drain has its record
  // committed, but not yet consumed: drain once more before reading /proc.
  bool found = TakeEnter(ev.tid, rec);
  if (!found) {
    bpf_.Drain();
    found = TakeEnter(ev.tid, rec);
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
    if (opt_.watcherInInitPidns) {
      rec.task.pid = rec.task.vpid;
      rec.task.tid = rec.task.vtid;
    }
  } else {
    rec.task.vtid = ev.tid;
  }
  return rec;
}

std::string Reactor::BinaryPath(int fd) {
  struct stat st;
  if (fstat(fd, &st) == 0) {
    for (const auto& b : opt_.binaries)
      if (b.dev == KernelDev(st.st_dev) && b.ino == st.st_ino) return b.path;
  }
  char link[64], path[4096];
  snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, path, sizeof(path) - 1);
  return n > 0 ? std::string(path, n) : std::string();
}

void Reactor::OnPermEvents() {
  std::vector<PermEvent> events;
  uint64_t overflows = gate_.Read(events);
  if (overflows) {
    // FAN_UNLIMITED_QUEUE: the kernel never drops a permission event, so this
    // is never expected; if it ever happens it is reported, not swallowed.
    std::lock_guard<std::mutex> lock(mu_);
    stats_.queueOverflow += overflows;
    Record lost;
    lost.kind = RecordKind::Lost;
    lost.count = overflows;
    lost.reason = "fanotify-queue-overflow";
    batch_->push_back(std::move(lost));
  }
  for (const auto& ev : events) {
    Record rec = MatchArgv(ev);
    rec.kind = RecordKind::Exec;
    rec.binary = BinaryPath(ev.fd);
    Hold hold = rec.task.euid == 0 && rec.argvSource != ArgvSource::None ? HoldFor(rec, opt_.holdStart) : Hold::None;
    std::lock_guard<std::mutex> lock(mu_);
    // Without the BPF side, the runtime's exit is learnt through a pidfd.
    if (!bpfRunning_ && rec.task.vpid && HoldFor(rec, false) == Hold::Create)
      WatchPidLocked(rec.task.vpid, OCI_EXIT_RUNTIME, rec.task.vpid);
    // A `start` waits until JavaScript has handled every record before it (the
    // create's runtime exit among them): whatever listens has the container's
    // `precreate` and `create` before its entrypoint can run. It is answered as
    // soon as JavaScript reaches it, and let go (never denied) at the deadline.
    if (hold != Hold::None && held_.size() < opt_.maxHeld) {
      rec.cookie = nextCookie_++;
      rec.held = true;
      held_[rec.cookie] = {ev.fd, Clock::now() + std::chrono::milliseconds(opt_.gateTimeoutMs),
                           hold == Hold::Create ? opt_.allowOnExpiry : true};
      stats_.held++;
    } else {
      gate_.Answer(ev.fd, true);
      stats_.answeredNative++;
    }
    batch_->push_back(std::move(rec));
  }
}

// A binary gone from every candidate path is forgotten, a new one marked and
// keyed. Forgetting is safe for a runtime still running the old file: it can
// only exec it again through /proc/self/exe or an fd (runc init), which needs
// no hold, and BPF keeps such a re-exec in its session whether it knows the
// inode or not (a replaced file has no links).
void Reactor::RescanBinaries() {
  std::vector<FoundBinary> added, gone;
  binaryWatch_.Rescan(added, gone);
  auto record = [this](const FoundBinary& b, bool present, std::string error) {
    Record rec;
    rec.kind = RecordKind::Binary;
    rec.task.ts_ns = MonotonicNs();
    rec.binary = b.path;
    rec.filename = b.foundAt;
    rec.runtime = b.runtime;
    rec.exitKind = b.kind;
    rec.present = present;
    rec.reason = std::move(error);
    batch_->push_back(std::move(rec));
  };
  for (const auto& b : gone) {
    if (gate_.Fd() >= 0) gate_.UnmarkFd(b.fd);
    if (bpfRunning_) bpf_.RemoveBinary(b.dev, b.ino);
    opt_.binaries.erase(std::remove_if(opt_.binaries.begin(), opt_.binaries.end(),
                                       [&](const RuntimeBinary& r) { return r.dev == b.dev && r.ino == b.ino; }),
                        opt_.binaries.end());
    close(b.fd);
    record(b, false, "");
  }
  for (const auto& b : added) {
    std::string error = gate_.Fd() >= 0 ? gate_.MarkFd(b.fd) : "";
    if (bpfRunning_) {
      bpf_.AddBinary({b.path, b.kind, b.dev, b.ino});
      for (const auto& path : {b.path, b.foundAt}) bpf_.AddName(path.substr(path.rfind('/') + 1), b.kind);
    }
    opt_.binaries.push_back({b.path, b.kind, b.dev, b.ino});
    record(b, true, std::move(error));
  }
}

bool Reactor::Answer(uint64_t cookie, bool allow) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = held_.find(cookie);
  if (it == held_.end()) return false;
  gate_.Answer(it->second.fd, allow);
  held_.erase(it);
  stats_.answeredByJs++;
  return true;
}

bool Reactor::SetExpiryVerdict(uint64_t cookie, bool allow) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = held_.find(cookie);
  if (it == held_.end()) return false;
  it->second.allowOnExpiry = allow;
  return true;
}

bool Reactor::TrackContainer(uint32_t pid, uint32_t sessionPid, bool started, uint32_t runtimeMntns) {
  if (!bpfRunning_) {
    WatchPid(pid, OCI_EXIT_CONTAINER, sessionPid);
    return true;
  }
  return bpf_.TrackContainer(pid, sessionPid, started, runtimeMntns);
}

void Reactor::WatchPid(uint32_t pid, uint32_t exitKind, uint32_t sessionPid) {
  std::lock_guard<std::mutex> lock(mu_);
  WatchPidLocked(pid, exitKind, sessionPid);
}

void Reactor::WatchPidLocked(uint32_t pid, uint32_t exitKind, uint32_t sessionPid) {
  int fd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) {
    // Already gone: its exit is now. Delivered with the reactor's next batch.
    Record rec;
    rec.kind = RecordKind::Exit;
    rec.task.pid = rec.task.vpid = pid;
    rec.task.ts_ns = MonotonicNs();
    rec.exitKind = exitKind;
    rec.sessionPid = sessionPid;
    rec.status = -1;
    pendingExits_.push_back(std::move(rec));
    uint64_t one = 1;
    (void)!write(wakefd_, &one, sizeof(one));
    return;
  }
  pidWatches_[fd] = {pid, exitKind, sessionPid};
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kTagPidfd | static_cast<uint32_t>(fd);
  epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev);
}

void Reactor::OnPidExit(int pidfd) {
  PidWatch w;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = pidWatches_.find(pidfd);
    if (it == pidWatches_.end()) return;
    w = it->second;
    pidWatches_.erase(it);
  }
  epoll_ctl(epfd_, EPOLL_CTL_DEL, pidfd, nullptr);
  close(pidfd);
  Record rec;
  rec.kind = RecordKind::Exit;
  rec.task.pid = rec.task.vpid = w.pid;
  rec.task.ts_ns = MonotonicNs();
  rec.exitKind = w.exitKind;
  rec.sessionPid = w.sessionPid;
  rec.status = -1;  // a pidfd tells that a non-child exited, not how
  batch_->push_back(std::move(rec));
}

void Reactor::ExpireDeadlines() {
  auto now = Clock::now();
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = held_.begin(); it != held_.end();) {
    if (it->second.deadline > now) {
      ++it;
      continue;
    }
    gate_.Answer(it->second.fd, it->second.allowOnExpiry);
    Record rec;
    rec.kind = RecordKind::GateExpired;
    rec.cookie = it->first;
    rec.allowed = it->second.allowOnExpiry;
    batch_->push_back(std::move(rec));
    stats_.expired++;
    it = held_.erase(it);
  }
}

void Reactor::ExpireEnters() {
  auto cutoff = Clock::now() - kEnterTtl;
  for (auto it = enterByTid_.begin(); it != enterByTid_.end();)
    it = it->second.seen < cutoff ? enterByTid_.erase(it) : std::next(it);
  while (!enterInvisible_.empty() && enterInvisible_.front().seen < cutoff) enterInvisible_.pop_front();
}

void Reactor::ArmTimer() {
  Clock::time_point next = Clock::time_point::max();
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [cookie, h] : held_) next = std::min(next, h.deadline);
  }
  if (!enterByTid_.empty() || !enterInvisible_.empty())
    next = std::min(next, Clock::now() + std::chrono::seconds(1));
  if (lossCheckOwed_) next = std::min(next, lastLossCheck_ + kLossCheckEvery);
  if (next == armedFor_) return;  // still armed for it: a syscall saved on most wake-ups
  armedFor_ = next;
  itimerspec spec{};
  if (next != Clock::time_point::max()) {
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(next - Clock::now()).count();
    ns = std::max<int64_t>(ns, 1);
    spec.it_value.tv_sec = ns / 1000000000;
    spec.it_value.tv_nsec = ns % 1000000000;
  }
  timerfd_settime(timerfd_, 0, &spec, nullptr);
}

void Reactor::Flush() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& rec : pendingExits_) batch_->push_back(std::move(rec));
    pendingExits_.clear();
  }
  // The drop counter is a per-CPU map read (a syscall): not on every wake-up.
  // A check put off is owed: ArmTimer wakes us for it.
  auto now = Clock::now();
  lossCheckOwed_ = bpfRunning_ && now - lastLossCheck_ < kLossCheckEvery;
  if (bpfRunning_ && !lossCheckOwed_) {
    lastLossCheck_ = now;
    uint64_t full = bpf_.Stat(OCI_STAT_RINGBUF_FULL);
    std::lock_guard<std::mutex> lock(mu_);
    if (full > stats_.ringbufFull) {
      Record rec;
      rec.kind = RecordKind::Lost;
      rec.count = full - stats_.ringbufFull;
      rec.reason = "ringbuf-full";
      batch_->push_back(std::move(rec));
      stats_.ringbufFull = full;
    }
  }
  if (batch_->empty()) return;
  deliver_(batch_.release());
  batch_.reset(new Batch);
}

ReactorStats Reactor::Stats() {
  std::lock_guard<std::mutex> lock(mu_);
  ReactorStats s = stats_;
  s.heldNow = held_.size();
  return s;
}

void Reactor::Stop() {
  if (stopping_.exchange(true)) return;
  if (started_) {
    uint64_t one = 1;
    (void)!write(wakefd_, &one, sizeof(one));
    thread_.join();
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [cookie, h] : held_) gate_.Answer(h.fd, true);
    held_.clear();
    for (auto& [fd, w] : pidWatches_) close(fd);
    pidWatches_.clear();
  }
  gate_.Close();
  bpf_.Close();
  binaryWatch_.Close();
  for (int* fd : {&epfd_, &timerfd_, &wakefd_})
    if (*fd >= 0) close(*fd), *fd = -1;
}

}  // namespace ocinotify
