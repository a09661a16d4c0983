#include "watchdog_link.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "fanotify_gate.h"

namespace ocinotify {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// A watchdog that lived less than this before dying is restarted after a pause, doubling up to the cap.
constexpr milliseconds kShortLife{1000}, kMaxBackoff{30000};
// Longest the reactor waits for the group back once it runs again, beyond the budget.
constexpr milliseconds kHandBackSlack{500};

int PidfdOpen(pid_t pid) { return static_cast<int>(syscall(SYS_pidfd_open, pid, 0)); }

// The watchdog executable sits beside the addon, in build/Release/ or prebuilds/<platform>/.
std::string WatchdogPath() {
  Dl_info info;
  if (!dladdr(reinterpret_cast<void*>(&WatchdogPath), &info) || !info.dli_fname) return "";
  std::string addon = info.dli_fname;
  return addon.substr(0, addon.rfind('/') + 1) + "ocinotify-watchdog";
}

std::string Errno(const std::string& what) { return what + ": " + strerror(errno); }

}  // namespace

WatchdogLink::~WatchdogLink() {
  Stop();
  if (shared_ && memfd_ >= 0) munmap(shared_, mapped_);
  if (shared_ && memfd_ < 0) delete shared_;
  if (memfd_ >= 0) close(memfd_);
  if (self_ >= 0) close(self_);
}

void WatchdogLink::Map() {
  memfd_ = static_cast<int>(syscall(SYS_memfd_create, "ocinotify-watchdog", MFD_CLOEXEC));
  void* at = MAP_FAILED;
  if (memfd_ >= 0 && ftruncate(memfd_, sizeof(wd::Shared)) == 0)
    at = mmap(nullptr, sizeof(wd::Shared), PROT_READ | PROT_WRITE, MAP_SHARED, memfd_, 0);
  if (at == MAP_FAILED) {
    if (memfd_ >= 0) close(memfd_);
    memfd_ = -1;
    shared_ = new wd::Shared();  // zeroed: every record empty, the reactor reads
  } else {
    shared_ = static_cast<wd::Shared*>(at);  // a new memfd is zeros
    mapped_ = sizeof(wd::Shared);
  }
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
  pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
  pthread_mutex_init(&shared_->reactorAlive, &attr);
  pthread_mutexattr_destroy(&attr);
  shared_->magic = wd::kMagic;
  shared_->version = wd::kVersion;
}

void WatchdogLink::HoldAlive() { pthread_mutex_lock(&shared_->reactorAlive); }

void WatchdogLink::Start(int groupFd, const WatchdogOptions& options, const wd::Policy& policy, int epfd, Batch& out) {
  options_ = options;
  policy_ = policy;
  group_ = groupFd;
  epfd_ = epfd;
  wd::WritePolicy(*shared_, policy);
  if (!options_.enabled) return;
  if (memfd_ < 0) return Report(out, "unavailable", "no memory to share with a watchdog (memfd_create)");
  self_ = PidfdOpen(getpid());
  if (self_ < 0) return Report(out, "unavailable", Errno("pidfd_open"));
  std::string error = options_.socketPath.empty() ? Spawn() : Connect();
  if (!error.empty()) {
    Report(out, "unavailable", error);
    nextStart_ = Clock::now() + (backoff_ = kShortLife);
  }
}

std::string WatchdogLink::Spawn() {
  std::string path = WatchdogPath();
  if (path.empty() || access(path.c_str(), X_OK) != 0) return Errno("ocinotify-watchdog at " + path);
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return Errno("socketpair");
  // Above the numbers the child's dup2 writes, so that dup2 makes a copy without O_CLOEXEC.
  int theirs = fcntl(sv[1], F_DUPFD_CLOEXEC, 10);
  close(sv[1]);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, theirs, 3);
  posix_spawn_file_actions_addclosefrom_np(&actions, 4);
  // A session and process group of its own: neither the terminal's Ctrl-Z nor a
  // kill -STOP of the watcher's group reaches it. Signals as at boot.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  char arg0[] = "ocinotify-watchdog", arg1[] = "--fd", arg2[] = "3";
  char* argv[] = {arg0, arg1, arg2, nullptr};
  char* envp[] = {nullptr};
  pid_t pid = 0;
  int rc = posix_spawn(&pid, path.c_str(), &actions, &attr, argv, envp);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  close(theirs);
  if (rc != 0) {
    close(sv[0]);
    errno = rc;
    return Errno("posix_spawn " + path);
  }
  exitFd_ = PidfdOpen(pid);
  pid_.store(pid);
  std::string error = Hand(sv[0]);
  if (!error.empty()) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    if (exitFd_ >= 0) close(exitFd_);
    exitFd_ = -1;
    pid_.store(0);
  }
  return error;
}

std::string WatchdogLink::Connect() {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (options_.socketPath.size() >= sizeof(addr.sun_path)) return "watchdog socket path too long: " + options_.socketPath;
  memcpy(addr.sun_path, options_.socketPath.c_str(), options_.socketPath.size());
  int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (sock < 0 || connect(sock, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    std::string error = Errno("connect " + options_.socketPath);
    if (sock >= 0) close(sock);
    return error;
  }
  return Hand(sock);
}

// Sends the watchdog what it needs over its socket: the group, the memory, our pidfd.
std::string WatchdogLink::Hand(int sock) {
  int fds[3] = {group_, memfd_, self_};
  char byte = 0;
  iovec iov{&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(fds))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(fds));
  memcpy(CMSG_DATA(c), fds, sizeof(fds));
  if (sendmsg(sock, &msg, MSG_NOSIGNAL) != 1) {
    std::string error = Errno("sending the watchdog its fds");
    close(sock);
    return error;
  }
  fcntl(sock, F_SETFL, O_NONBLOCK);
  sock_ = sock;
  startedAt_ = Clock::now();
  nextStart_ = Clock::time_point::max();
  starts_++;
  Register();
  return "";
}

void WatchdogLink::Register() {
  for (auto [fd, tag] : {std::pair<int, uint64_t>{sock_, kTagSocket}, {exitFd_, kTagExit}}) {
    if (fd < 0) continue;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = tag;
    epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev);
  }
}

void WatchdogLink::Unregister() {
  for (int* fd : {&sock_, &exitFd_}) {
    if (*fd < 0) continue;
    epoll_ctl(epfd_, EPOLL_CTL_DEL, *fd, nullptr);
    close(*fd);
    *fd = -1;
  }
}

wd::ReadBuffer* WatchdogLink::BeginRead(uint32_t& open) {
  // Dekker's handshake with the watchdog's takeover (watchdog_serve.cc): we announce the
  // read, then look at the owner; it sets the owner, then looks at our announcement.
  shared_->reading.store(1);
  if (shared_->owner.load() != wd::kReactorReads) {
    shared_->reading.store(0);
    return nullptr;
  }
  CloseSettled();
  uint32_t next = (current_ + 1) % wd::kWatcherBuffers;
  if (Pinned(next)) next = current_;
  if (Pinned(next)) {
    shared_->reading.store(0);
    return nullptr;
  }
  current_ = next;
  wd::ReadBuffer& buffer = shared_->watcherRead[current_];
  // Zeros first, then the new generation: no stale event can be taken for a new one.
  memset(buffer.bytes, 0, used_[current_]);
  gens_[current_] = (gens_[current_] + 1) % wd::kGenerations;
  open = wd::Word(wd::kOpen, gens_[current_]);
  std::atomic_thread_fence(std::memory_order_release);
  for (auto& state : buffer.states) state.store(open, std::memory_order_relaxed);
  return &buffer;
}

void WatchdogLink::EndRead(ssize_t bytes) {
  used_[current_] = bytes > 0 ? static_cast<size_t>(bytes) : 0;
  shared_->reading.store(0);
}

bool WatchdogLink::Blocked() const {
  for (uint32_t b = 0; b < wd::kWatcherBuffers; b++)
    if (!Pinned(b)) return false;
  return true;
}

bool WatchdogLink::Pinned(uint32_t buffer) const {
  const auto& states = shared_->watcherRead[buffer].states;
  for (const auto& [fd, state] : closing_)
    if (state >= states && state < states + wd::kReadEntries) return true;
  return false;
}

void WatchdogLink::CloseSettled() {
  closing_.erase(std::remove_if(closing_.begin(), closing_.end(),
                                [](const std::pair<int, std::atomic<uint32_t>*>& c) {
                                  if (wd::Unsettled(c.second->load())) return false;
                                  close(c.first);
                                  return true;
                                }),
                 closing_.end());
}

bool WatchdogLink::OnSocket(Batch& out) {
  char buf[64];
  for (;;) {
    ssize_t n = recv(sock_, buf, sizeof(buf), MSG_DONTWAIT);
    if (n == 0 && exitFd_ >= 0) {
      // One we spawned closes its socket as it exits: its pidfd tells how, right after.
      epoll_ctl(epfd_, EPOLL_CTL_DEL, sock_, nullptr);
      return true;
    }
    if (n == 0) return false;
    if (n < 0) return errno == EAGAIN || errno == EINTR;
    for (ssize_t i = 0; i < n; i++)
      if (buf[i] == wd::kHandedBack) ReportTakeover(out, "");
  }
}

void WatchdogLink::ReportTakeover(Batch& out, const char* how) {
  asking_ = false;
  takeovers_++;
  uint64_t allowed = shared_->allowed.load(), denied = shared_->denied.load();
  allowed_ += allowed;
  denied_ += denied;
  Record took;
  took.kind = RecordKind::Watchdog;
  took.task.ts_ns = shared_->takeoverNs.load();
  took.facts.change = "takeover";
  took.facts.waitedNs = shared_->stalledNs.load();
  took.facts.pid = pid_.load();
  out.push_back(std::move(took));
  Record back;
  back.kind = RecordKind::Watchdog;
  back.task.ts_ns = *how ? MonotonicNs() : shared_->backNs.load();
  back.facts.change = "back";
  back.facts.message = how;
  back.facts.allowed = allowed;
  back.facts.denied = denied;
  back.facts.pid = took.facts.pid;
  out.push_back(std::move(back));
}

void WatchdogLink::OnExit(Batch& out) {
  siginfo_t info{};
  // Its pidfd is readable: it is gone, whether or not its status is still ours to read.
  bool told = exitFd_ >= 0 && syscall(SYS_waitid, P_PIDFD, exitFd_, &info, WEXITED | WNOHANG, nullptr) == 0 && info.si_pid;
  std::string how = !told                       ? "exited"
                    : info.si_code == CLD_EXITED ? "exited with code " + std::to_string(info.si_status)
                                                 : std::string("was killed by SIG") + sigabbrev_np(info.si_status);
  Record rec;
  rec.kind = RecordKind::Watchdog;
  rec.task.ts_ns = MonotonicNs();
  rec.facts.change = "exited";
  rec.facts.pid = pid_.load();
  rec.facts.message = "the watchdog " + how;
  out.push_back(std::move(rec));
  pid_.store(0);
}

bool WatchdogLink::Tick(Batch& out) {
  CloseSettled();
  auto now = Clock::now();
  if (sock_ < 0) {
    if (options_.enabled && now >= nextStart_) {
      std::string error = options_.socketPath.empty() ? Spawn() : Connect();
      if (!error.empty()) {
        Report(out, "unavailable", error);
        nextStart_ = now + (backoff_ = std::min(kMaxBackoff, std::max(kShortLife, backoff_ * 2)));
      }
    }
    return true;
  }
  if (!Standing()) return true;
  if (!asking_) {
    char want = wd::kWantBack;
    (void)!send(sock_, &want, 1, MSG_DONTWAIT | MSG_NOSIGNAL);
    asking_ = true;
    askedAt_ = now;
    return true;
  }
  // Asked, and not given back: the watchdog itself is stopped or wedged.
  if (now - askedAt_ < milliseconds(policy_.budgetNs / 1000000) + kHandBackSlack) return true;
  if (int pid = pid_.load()) {
    kill(pid, SIGKILL);  // its exit is then seen on its pidfd, and OnGone follows
    return true;
  }
  // A sidecar is not ours to kill: we take the group back from it. Should it run again, it
  // could still write an answer it had claimed, by a number we may have reused meanwhile.
  return false;
}

void WatchdogLink::OnGone(Batch& out, std::vector<WatchdogAnswer>& answers) {
  Unregister();
  pid_.store(0);
  // What it claimed and may not have answered: ours to answer now, with its answer. By number,
  // for those it read: the reactor has read nothing since it took over.
  for (auto& buffer : shared_->watcherRead)
    for (auto& state : buffer.states) {
      uint32_t word = state.load();
      int fd, tid;
      if (wd::ByWatchdog(word) && !wd::IsDone(word) && wd::EventAt(buffer, &state - buffer.states, fd, tid)) {
        AnswerEvent(group_, fd, wd::Allows(word));
        state.store(wd::Done(wd::Allows(word)));
      }
    }
  wd::ReadBuffer& theirs = shared_->watchdogRead;
  for (uint32_t i = 0; i < wd::kReadEntries; i++) {
    uint32_t word = theirs.states[i].load();
    int fd, tid;
    if (!wd::Unsettled(word) || !wd::EventAt(theirs, i, fd, tid)) continue;
    bool allow = wd::KindOf(word) == wd::kOpen ? wd::AllowsExec(tid, false, policy_) : wd::Allows(word);
    AnswerEvent(group_, fd, allow);
    theirs.states[i].store(wd::Done(allow));
    answers.push_back({tid, allow, MonotonicNs(), 0, 0});
  }
  CloseSettled();
  if (Standing()) {
    shared_->owner.store(wd::kReactorReads);
    ReportTakeover(out, "the watchdog exited while it stood in");
  }
  bool shortLived = Clock::now() - startedAt_ < kShortLife;
  backoff_ = shortLived ? std::min(kMaxBackoff, std::max(kShortLife, backoff_ * 2)) : milliseconds(0);
  nextStart_ = Clock::now() + backoff_;
  if (options_.socketPath.empty()) return;
  Record rec;
  rec.kind = RecordKind::Watchdog;
  rec.task.ts_ns = MonotonicNs();
  rec.facts.change = "exited";
  rec.facts.message = "the watchdog sidecar closed its socket";
  out.push_back(std::move(rec));
}

Clock::time_point WatchdogLink::NextTick() const {
  if (!closing_.empty()) return Clock::now() + milliseconds(5);
  if (sock_ < 0) return nextStart_;
  if (asking_) return askedAt_ + milliseconds(policy_.budgetNs / 1000000) + kHandBackSlack;
  return Clock::time_point::max();
}

void WatchdogLink::TakeLog(std::vector<WatchdogAnswer>& out, uint64_t& lost) {
  uint64_t head = shared_->logHead.load();
  if (head - logTail_ > wd::kLogEntries) {
    lost += head - wd::kLogEntries - logTail_;
    logTail_ = head - wd::kLogEntries;
  }
  for (; logTail_ < head; logTail_++) {
    wd::LogEntry& e = shared_->log[logTail_ % wd::kLogEntries];
    WatchdogAnswer a{e.tid, e.allowed != 0, e.ns, e.dev, e.ino};
    // Rewritten under us (it laps us) or not yet complete: not to be trusted.
    if (e.seq.load() != logTail_ + 1) {
      lost++;
      continue;
    }
    out.push_back(a);
  }
}

void WatchdogLink::Report(Batch& out, const char* change, std::string message) {
  Record rec;
  rec.kind = RecordKind::Watchdog;
  rec.task.ts_ns = MonotonicNs();
  rec.facts.change = change;
  rec.facts.message = std::move(message);
  out.push_back(std::move(rec));
}

WatchdogStats WatchdogLink::Stats() const {
  WatchdogStats s;
  s.pid = pid_.load();
  s.starts = starts_.load();
  s.takeovers = takeovers_.load();
  s.allowed = allowed_.load();
  s.denied = denied_.load();
  return s;
}

void WatchdogLink::Stop() {
  options_.enabled = false;
  if (pid_t pid = pid_.load()) {
    // SIGKILL works on a stopped process too; what it read and did not answer is answered
    // when the group closes, right after.
    kill(pid, SIGKILL);
    siginfo_t info;
    if (exitFd_ >= 0) syscall(SYS_waitid, P_PIDFD, exitFd_, &info, WEXITED, nullptr);
    pid_.store(0);
  }
  if (sock_ >= 0) shutdown(sock_, SHUT_RDWR);  // a sidecar lets go of the group when it sees this
  if (epfd_ >= 0) Unregister();
  for (auto& [fd, state] : closing_) close(fd);
  closing_.clear();
}

}  // namespace ocinotify
