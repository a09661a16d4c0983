#include "reactor.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <future>
#include <map>

#include "exec_discovery.h"
#include "watchdog_policy.h"

namespace ocinotify {

namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kLossCheckEvery = std::chrono::milliseconds(100);
// Far more creations than are held at once.
constexpr size_t kHeldCreationsKept = 256;
constexpr uint64_t kTagGate = 1, kTagBpf = 2, kTagTimer = 3, kTagWake = 4, kTagBinaries = 5;

Record FromTask(RecordKind kind, const oci_header& hdr) {
  Record r;
  r.kind = kind;
  r.task = hdr.task;
  r.flags = hdr.flags;
  return r;
}

std::string CString(const char* s, size_t max) { return std::string(s, strnlen(s, max)); }

// What a binary's `runtime` event says it lacks: the mark (its execs are not held) or the
// kernel's key (the BPF side may not recognise its execs).
std::string Lacks(const std::string& markError, const std::string& keyError) {
  std::string out = markError.empty() ? "" : "not held: " + markError;
  if (!keyError.empty())
    out += (out.empty() ? "" : "; ") + std::string("kernel inode key unknown (") + keyError +
           "): keyed by stat(2), which differs from the kernel's on overlayfs over several filesystems "
           "and on btrfs";
  return out;
}

}  // namespace

Reactor::Reactor(ReactorOptions options)
    : opt_(std::move(options)),
      holds_(gate_, std::chrono::milliseconds(opt_.gateTimeoutMs), opt_.maxHeld),
      batch_(new Batch) {
  link_.Map();
  holds_.Attach(link_.Shared());
}

Reactor::~Reactor() { Stop(); }

ReactorStatus Reactor::Start(Deliver deliver) {
  ReactorStatus st;
  deliver_ = std::move(deliver);
  epfd_ = epoll_create1(EPOLL_CLOEXEC);
  timerfd_ = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
  wakefd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  pids_.Open(epfd_, wakefd_);
  auto watch = [this](int fd, uint64_t tag) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = tag;
    epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev);
  };
  st.fanotifyError = opt_.useFanotify ? gate_.Open() : "disabled";
  std::map<std::string, std::string> markErrors, keyErrors;
  OpenBinaries(st, markErrors, keyErrors);
  if (gate_.Fd() >= 0) {
    st.fanotify = true;
    watch(gate_.Fd(), kTagGate);
    PublishBinaries();
  }
  if (opt_.useBpf) {
    st.bpfError = bpf_.Open(opt_.watcherPidns, opt_.hostPidns, opt_.names, opt_.binaries,
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
  // Without the BPF side, exits come through pidfds: no pidfd_open, no create, start or exit.
  if (st.fanotify && !st.bpf) {
    std::string pidfd = PidWatch::Probe();
    if (!pidfd.empty()) {
      st.fanotify = false;
      st.fanotifyError = pidfd + ": without eBPF, exits are followed through pidfds";
    }
  }
  for (const auto& b : opt_.binaries) {
    std::string lacks = Lacks(st.fanotify ? markErrors[b.path] : "", st.bpf ? keyErrors[b.path] : "");
    if (!lacks.empty()) st.binaryErrors.push_back({b.path, lacks});
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
  if (st.fanotify && opt_.maxSpecBytes > 0)
    specs_.Open([this] { DeliverReady(); }, opt_.holdVerbs.create, opt_.maxSpecBytes,
                SpecReader::WaitFor(opt_.gateTimeoutMs));
  started_ = true;
  std::promise<void> watched;
  thread_ = std::thread([this, &watched, fanotify = st.fanotify] {
    // Named so that ps, top and tests tell the reactor from node's threads.
    pthread_setname_np(pthread_self(), "ocinotify");
    // The watchdog is this thread's child, and knows the moment this thread dies.
    link_.HoldAlive();
    if (fanotify) {
      wd::Policy policy{opt_.holdVerbs, opt_.watchdog.allowCreations, int64_t{opt_.gateTimeoutMs} * 1000000};
      link_.Start(gate_.Fd(), opt_.watchdog, policy, epfd_, *batch_);
    }
    watched.set_value();
    Run();
  });
  watched.get_future().wait();  // stats() right after start name the watchdog
  return st;
}

void Reactor::OpenBinaries(ReactorStatus& st, std::map<std::string, std::string>& markErrors,
                           std::map<std::string, std::string>& keyErrors) {
  std::vector<RuntimeBinary> opened;
  for (auto& b : opt_.binaries) {
    int fd = open(b.path.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) continue;  // gone since JavaScript looked: the rescan reports it
    struct stat s;
    if (fstat(fd, &s) == 0) {
      b.file = StatKey(s);
      keyErrors[b.path] = Key(fd, b);
      if (gate_.Fd() >= 0) {
        markErrors[b.path] = gate_.MarkFd(fd);
        if (markErrors[b.path].empty()) st.marked.push_back(b.path);
      }
      opened.push_back(b);
    }
    close(fd);
  }
  opt_.binaries = std::move(opened);
}

std::string Reactor::Key(int fd, RuntimeBinary& b) {
  std::string error = keys_.Of(fd, b.kernel);
  if (!error.empty()) b.kernel = b.file;
  return error;
}

void Reactor::Run() {
  epoll_event events[8];
  while (!stopping_.load()) {
    int n = epoll_wait(epfd_, events, 8, -1);
    // The watchdog's measure of our progress (watchdog_shared.h).
    link_.Beat();
    bool gate = false, timer = false, binaries = false, watchdogGone = false;
    for (int i = 0; i < n; i++) {
      gate |= events[i].data.u64 == kTagGate;
      timer |= events[i].data.u64 == kTagTimer;
      binaries |= events[i].data.u64 == kTagBinaries;
      if (events[i].data.u64 & PidWatch::kEpollTag)
        pids_.OnExit(static_cast<int>(events[i].data.u64 & 0xffffffff), *batch_);
      if (events[i].data.u64 == WatchdogLink::kTagSocket) watchdogGone |= !link_.OnSocket(*batch_);
      if (events[i].data.u64 == WatchdogLink::kTagExit) {
        link_.OnExit(*batch_);
        watchdogGone = true;
      }
    }
    if (watchdogGone) OnWatchdogGone();
    // Before the drain: a hold the watchdog denied is reported before its runtime's failed exec.
    holds_.Settle(*batch_);
    // What the watchdog answered is matched with the argv records drained next: each is
    // committed before its exec's permission event is queued, so before the watchdog logs it.
    SyncWatchdogLog();
    // Drain the ring buffer first, every time: a runtime's sys_enter record
    // is committed before its permission event is queued, so after this
    // drain every permission event read below has its argv here.
    bpf_.Drain();
    watchdogAnswers_.clear();  // their argv records were lost (ring buffer full) or never made (no BPF)
    if (binaries) {
      std::vector<FoundBinary> learnedGone;
      if (binaryWatch_.Read(learnedGone)) RescanBinaries();
      for (const auto& b : learnedGone) Forget(b);
    }
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
      holds_.Expire(*batch_);
      argv_.Expire();
    }
    if (!link_.Tick(*batch_)) OnWatchdogGone();
    // Parked, the group's readiness does not spin us: the hand-back, or the settling that
    // frees a buffer (NextTick), wakes us.
    ParkGate(link_.Standing() || link_.Blocked());
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
        argv_.Ran(hdr.task.pid);
        if (hdr.flags & OCI_F_BY_NAME) LearnFromExec(rec, InodeKey{r.inode.dev, r.inode.ino});
        for (const auto& b : opt_.binaries)
          if (b.kernel.dev == r.inode.dev && b.kernel.ino == r.inode.ino) rec.binary = b.path;
        // The exec ran: if the watchdog let it, its answer goes first.
        SyncWatchdogLog();
        batch_->push_back(std::move(rec));
        return;
      }
      // A creation's config.json is read from now, before its permission event, if it comes.
      Hold verb = HoldFor(rec, opt_.holdVerbs);
      if (gate_.Fd() >= 0 && verb == Hold::Create && Holdable(rec, verb)) ReadSpecAhead(rec);
      WatchdogAnswer answer;
      if (TakeWatchdogAnswer(rec, answer))
        PushWatchdogExec(std::move(rec), answer);
      else if (gate_.Fd() >= 0)
        argv_.Keep(std::move(rec));  // else no permission events to match them to
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
      argv_.Ran(hdr.task.pid);
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

std::string Reactor::BinaryPath(int fd) {
  struct stat st;
  if (fstat(fd, &st) == 0) {
    for (const auto& b : opt_.binaries)
      if (b.file == StatKey(st)) return b.path;
  }
  char link[64], path[4096];
  snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, path, sizeof(path) - 1);
  return n > 0 ? std::string(path, n) : std::string();
}

void Reactor::OnPermEvents() {
  uint64_t overflows = 0;
  for (;;) {
    uint32_t open;
    wd::ReadBuffer* buffer = link_.BeginRead(open);
    if (!buffer) break;  // the watchdog reads (we ask it back), or a read is retried on the next tick
    ssize_t n = gate_.Read(buffer->bytes, wd::kReadBytes);
    for (uint32_t i = 0; n > 0 && (i + 1) * FAN_EVENT_METADATA_LEN <= static_cast<size_t>(n); i++) {
      const auto* md = reinterpret_cast<const fanotify_event_metadata*>(buffer->bytes + i * FAN_EVENT_METADATA_LEN);
      if (md->mask & FAN_Q_OVERFLOW)
        overflows++;
      else if (md->fd >= 0)
        OnPermEvent({md->fd, md->pid}, buffer->states[i], open);
    }
    link_.EndRead(n);
    if (n <= 0) break;
  }
  if (overflows) {
    // FAN_UNLIMITED_QUEUE: the kernel never drops a permission event, so this
    // is never expected; if it ever happens it is reported, not swallowed.
    queueOverflow_ += overflows;
    Record lost;
    lost.kind = RecordKind::Lost;
    lost.count = overflows;
    lost.reason = "fanotify-queue-overflow";
    batch_->push_back(std::move(lost));
  }
}

// One event, published in its read buffer entry until it is answered or moves to a hold.
void Reactor::OnPermEvent(const PermEvent& ev, std::atomic<uint32_t>& entry, uint32_t open) {
  Record rec = argv_.Match(ev, bpf_, opt_.watcherInInitPidns);
  rec.kind = RecordKind::Exec;
  rec.binary = BinaryPath(ev.fd);
  Hold verb = HoldFor(rec, opt_.holdVerbs);
  // Without the BPF side, the runtime's exit is learnt through a pidfd.
  if (!bpfRunning_ && rec.task.vpid && verb == Hold::Create)
    pids_.Watch(rec.task.vpid, OCI_EXIT_RUNTIME, rec.task.vpid);
  // A `start` waits until JavaScript has handled every record before it (the
  // create's runtime exit among them): whatever listens has the container's
  // `precreate` and `create` before its entrypoint can run. It is answered as
  // soon as JavaScript reaches it, and let go (never denied) at the deadline.
  bool watchdogTook = false;  // the watchdog answered it itself
  if (Holdable(rec, verb))
    rec.cookie = holds_.Add(ev.fd, verb == Hold::Create ? opt_.allowOnExpiry : true, verb == Hold::Start, entry, open,
                            &watchdogTook);
  rec.held = rec.cookie != 0;
  if (rec.held && verb == Hold::Create && rec.specJob == 0) ReadSpecAhead(rec);
  bool closeLater = watchdogTook;
  if (!rec.held && !watchdogTook) {
    bool took = gate_.Answer(ev.fd, true);
    if (wd::Take(entry, open, wd::kWatcher)) {
      close(ev.fd);
      holds_.CountNative();
    } else {
      closeLater = true;  // it took the entry between our answer and our take
      watchdogTook = !took;
    }
  }
  if (watchdogTook) rec.watchdog = wd::Allows(entry.load()) ? WatchdogVerdict::Allowed : WatchdogVerdict::Denied;
  if (closeLater) link_.CloseWhenSettled(ev.fd, &entry);
  if (verb == Hold::Create && rec.task.pid) {
    heldCreations_.push_back(rec.task.pid);
    if (heldCreations_.size() > kHeldCreationsKept) heldCreations_.pop_front();
  }
  batch_->push_back(std::move(rec));
}

// Through the runtime's root, as the watcher would read it; a task we cannot see is read by
// the watcher itself.
void Reactor::ReadSpecAhead(Record& rec) {
  const oci_task& t = rec.task;
  if (t.vpid)
    specs_.Start(rec, "/proc/" + std::to_string(t.vpid));
  else if (!opt_.watcherInInitPidns && t.pid)
    specs_.Start(rec, opt_.hostProc + "/" + std::to_string(t.pid));
}

void Reactor::SyncWatchdogLog() {
  std::vector<WatchdogAnswer> answers;
  uint64_t lost = 0;
  link_.TakeLog(answers, lost);
  for (const auto& a : answers) OnWatchdogAnswer(a);
  if (!lost) return;
  Record rec;
  rec.kind = RecordKind::Lost;
  rec.count = lost;
  rec.reason = "watchdog-log-full";
  batch_->push_back(std::move(rec));
}

// The longest an exec the watchdog answered can have waited since its argv record: the budget
// (it reads what is queued once the reactor has stalled that long), and a margin.
uint64_t Reactor::OldestAnswerable(const WatchdogAnswer& answer) const {
  uint64_t window = (uint64_t{opt_.gateTimeoutMs} + 1000) * 1000000;
  return answer.ns > window ? answer.ns - window : 0;
}

void Reactor::OnWatchdogAnswer(const WatchdogAnswer& answer) {
  Record enter;
  // Unseen tasks pair by order: an argv record older than any the watchdog could have answered
  // is one no permission event came for (a runtime's name on an unmarked file).
  if (argv_.Take(answer.tid, enter, OldestAnswerable(answer)))
    PushWatchdogExec(std::move(enter), answer);
  else
    watchdogAnswers_.push_back(answer);
}

// The answer for the exec of an argv record (of a task we cannot see: the oldest answer it can
// be for, as the kernel's order pairs them, as for permission events).
bool Reactor::TakeWatchdogAnswer(const Record& enter, WatchdogAnswer& out) {
  pid_t tid = enter.task.vtid;
  auto it = std::find_if(watchdogAnswers_.begin(), watchdogAnswers_.end(), [&](const WatchdogAnswer& a) {
    return a.tid == tid && (tid || enter.task.ts_ns >= OldestAnswerable(a));
  });
  if (it == watchdogAnswers_.end()) return false;
  out = *it;
  watchdogAnswers_.erase(it);
  return true;
}

// An exec the watchdog answered at its permission check, as the reactor would have handed it
// on: with its argv record, not held.
void Reactor::PushWatchdogExec(Record rec, const WatchdogAnswer& answer) {
  rec.kind = RecordKind::Exec;
  rec.held = false;
  rec.cookie = 0;
  rec.watchdog = answer.allowed ? WatchdogVerdict::Allowed : WatchdogVerdict::Denied;
  for (const auto& b : opt_.binaries)
    if (b.file.dev == answer.dev && b.file.ino == answer.ino) rec.binary = b.path;
  batch_->push_back(std::move(rec));
}

void Reactor::OnWatchdogGone() {
  std::vector<WatchdogAnswer> answers;
  holds_.Recover(*batch_);
  link_.OnGone(*batch_, answers);
  for (const auto& a : answers) OnWatchdogAnswer(a);
}

// While the watchdog reads the group, we do not poll it: it stays readable until then.
void Reactor::ParkGate(bool park) {
  if (park == gateParked_ || gate_.Fd() < 0) return;
  gateParked_ = park;
  epoll_event ev{};
  ev.events = park ? 0u : static_cast<uint32_t>(EPOLLIN);
  ev.data.u64 = kTagGate;
  epoll_ctl(epfd_, EPOLL_CTL_MOD, gate_.Fd(), &ev);
}

void Reactor::PublishBinaries() {
  std::vector<wd::BinaryKey> keys;
  for (const auto& b : opt_.binaries) keys.push_back({b.file.dev, b.file.ino, b.kind, 0});
  wd::WriteBinaries(link_.Shared(), keys.data(), static_cast<uint32_t>(keys.size()));
}

// A new binary at a candidate path is marked and keyed, one gone from all of them forgotten.
void Reactor::RescanBinaries() {
  std::vector<FoundBinary> added, gone;
  binaryWatch_.Rescan(added, gone);
  for (const auto& b : gone) Forget(b);
  for (auto& b : added) {
    std::string keyError = Key(b.fd, b.binary);
    std::string markError = gate_.Fd() >= 0 ? gate_.MarkFd(b.fd) : "";
    if (bpfRunning_) {
      bpf_.AddBinary(b.binary);
      for (const auto& path : {b.binary.path, b.foundAt}) bpf_.AddName(path.substr(path.rfind('/') + 1), b.binary.kind);
    }
    opt_.binaries.push_back(b.binary);
    batch_->push_back(BinaryRecord(b, true, Lacks(markError, bpfRunning_ ? keyError : "")));
  }
  if (gate_.Fd() >= 0) PublishBinaries();
}

// The first creation by a runtime the BPF side knew only by name (OCI_F_BY_NAME): that
// creation is reported from the kernel's records alone, its later ones are held. Learnt from
// a creation only: runc's init re-execs a sealed copy of itself (a private overlayfs mount,
// a file of its own) under the same name, which must not become a runtime. kernel: the
// exec'd file's key as the BPF side read it; its stat key is taken from the file opened.
void Reactor::LearnFromExec(const Record& exec, const InodeKey& kernel) {
  if (exec.task.euid != 0 || HoldFor(exec, opt_.holdVerbs) != Hold::Create) return;
  // Held already: the file is a view of a marked one (an overlayfs stacked on it); a mark of
  // its own would hold each exec twice.
  if (std::find(heldCreations_.begin(), heldCreations_.end(), exec.task.pid) != heldCreations_.end()) return;
  for (const auto& b : opt_.binaries)
    if (b.kernel == kernel) return;
  const oci_task& t = exec.task;
  std::string proc = t.vpid ? "/proc/" + std::to_string(t.vpid) : opt_.hostProc + "/" + std::to_string(t.pid);
  std::string parent = opt_.hostProc + "/" + std::to_string(t.ppid);
  ExecutedBinary exe = OpenExecuted(keys_, proc, parent, exec.filename, kernel);
  if (exe.fd < 0) return;  // neither it nor its parent there any more: learnt at its next creation
  std::string error = gate_.Fd() >= 0 ? gate_.MarkFd(exe.fd) : "";
  // The path it was exec'd by, when absolute: by now the process may run a private copy of
  // the file (crun's bind mount of itself, whose path reads "/").
  std::string path = exec.filename.rfind('/', 0) == 0 ? exec.filename : exe.path;
  RuntimeBinary binary{path, OCI_BIN_RUNTIME, exe.file, kernel};
  bpf_.AddBinary(binary);
  opt_.binaries.push_back(binary);
  std::string name = path.substr(path.rfind('/') + 1);
  FoundBinary found{binary, path, name, -1, t.mntns};
  if (binaryWatch_.Fd() >= 0) binaryWatch_.WatchLearned(exe.fd, found);
  close(exe.fd);
  Record rec = BinaryRecord(found, true, Lacks(error, ""));
  rec.task = t;
  batch_->push_back(std::move(rec));
}

// A binary gone from every candidate path is forgotten, as is one learnt from an exec once
// deleted or unmounted. Forgetting is safe for a runtime still running the old file: it can
// only exec it again through /proc/self/exe or an fd (runc init), which needs no hold, and
// BPF keeps such a re-exec in its session whether it knows the inode or not (a replaced file
// has no links). Two files can share a kernel key (btrfs subvolumes, an overlay's layers): the
// BPF side keeps a key as long as one binary has it.
void Reactor::Forget(const FoundBinary& b) {
  if (b.fd >= 0) {
    if (gate_.Fd() >= 0) gate_.UnmarkFd(b.fd);
    close(b.fd);
  }
  auto it = std::find_if(opt_.binaries.begin(), opt_.binaries.end(),
                         [&](const RuntimeBinary& r) { return r.file == b.binary.file; });
  if (it != opt_.binaries.end()) {
    InodeKey kernel = it->kernel;
    opt_.binaries.erase(it);
    bool shared = std::any_of(opt_.binaries.begin(), opt_.binaries.end(),
                              [&](const RuntimeBinary& r) { return r.kernel == kernel; });
    if (bpfRunning_ && !shared) bpf_.RemoveBinary(kernel);
  }
  batch_->push_back(BinaryRecord(b, false, ""));
}

Record Reactor::BinaryRecord(const FoundBinary& b, bool present, std::string error) {
  Record rec;
  rec.kind = RecordKind::Binary;
  rec.task.ts_ns = MonotonicNs();
  rec.task.mntns = b.mntns;
  rec.flags = b.fd < 0 ? OCI_F_BY_NAME : 0;
  rec.binary = b.binary.path;
  rec.filename = b.foundAt;
  rec.runtime = b.runtime;
  rec.exitKind = b.binary.kind;
  rec.present = present;
  rec.reason = std::move(error);
  return rec;
}

bool Reactor::Answer(uint64_t cookie, bool allow) { return holds_.Answer(cookie, allow); }

bool Reactor::SetExpiryVerdict(uint64_t cookie, bool allow) { return holds_.SetExpiryVerdict(cookie, allow); }

bool Reactor::TrackContainer(uint32_t pid, uint32_t sessionPid, bool started, uint32_t runtimeMntns) {
  if (!bpfRunning_) {
    pids_.Watch(pid, OCI_EXIT_CONTAINER, sessionPid);
    return true;
  }
  return bpf_.TrackContainer(pid, sessionPid, started, runtimeMntns);
}

void Reactor::WatchPid(uint32_t pid, uint32_t exitKind, uint32_t sessionPid) {
  pids_.Watch(pid, exitKind, sessionPid);
}

void Reactor::ArmTimer() {
  Clock::time_point next = holds_.NextDeadline();
  if (argv_.Waiting()) next = std::min(next, Clock::now() + std::chrono::seconds(1));
  if (lossCheckOwed_) next = std::min(next, lastLossCheck_ + kLossCheckEvery);
  next = std::min(next, link_.NextTick());
  {
    std::lock_guard<std::mutex> lock(waitingMu_);
    if (!waiting_.empty()) next = std::min(next, waiting_.front().second + specs_.Wait());
  }
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
  pids_.TakeGone(*batch_);
  // The drop counter is a per-CPU map read (a syscall): not on every wake-up.
  // A check put off is owed: ArmTimer wakes us for it.
  auto now = Clock::now();
  lossCheckOwed_ = bpfRunning_ && now - lastLossCheck_ < kLossCheckEvery;
  if (bpfRunning_ && !lossCheckOwed_) {
    lastLossCheck_ = now;
    uint64_t full = bpf_.Stat(OCI_STAT_RINGBUF_FULL), seen = ringbufFull_.load();
    if (full > seen) {
      Record rec;
      rec.kind = RecordKind::Lost;
      rec.count = full - seen;
      rec.reason = "ringbuf-full";
      batch_->push_back(std::move(rec));
      ringbufFull_.store(full);
    }
  }
  if (!batch_->empty()) {
    std::lock_guard<std::mutex> lock(waitingMu_);
    waiting_.emplace_back(std::move(batch_), Clock::now());
    batch_.reset(new Batch);
  }
  DeliverReady();
}

void Reactor::DeliverReady() {
  std::lock_guard<std::mutex> lock(waitingMu_);
  while (!waiting_.empty() && specs_.Ready(*waiting_.front().first, waiting_.front().second)) {
    specs_.Attach(*waiting_.front().first);
    deliver_(waiting_.front().first.release());
    waiting_.pop_front();
  }
}

ReactorStats Reactor::Stats() {
  ReactorStats s;
  s.holds = holds_.Stats();
  s.watchdog = link_.Stats();
  s.ringbufFull = ringbufFull_.load();
  s.queueOverflow = queueOverflow_.load();
  s.enterUnmatched = argv_.Unmatched();
  return s;
}

void Reactor::Stop() {
  if (stopping_.exchange(true)) return;
  if (started_) {
    uint64_t one = 1;
    (void)!write(wakefd_, &one, sizeof(one));
    thread_.join();
  }
  specs_.Close();
  link_.Stop();
  holds_.AllowAll();
  pids_.Close();
  gate_.Close();
  bpf_.Close();
  binaryWatch_.Close();
  keys_.Close();
  for (int* fd : {&epfd_, &timerfd_, &wakefd_})
    if (*fd >= 0) close(*fd), *fd = -1;
}

}  // namespace ocinotify
