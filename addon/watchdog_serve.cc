#include "watchdog_serve.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "fanotify_gate.h"
#include "record.h"
#include "watchdog_policy.h"
#include "watchdog_shared.h"

namespace ocinotify::wd {

namespace {

// How often a stall is looked for while anything is pending or held; idle, nothing ticks.
constexpr uint64_t kTickNs = 20'000'000;
// A hold still open this long past its deadline: the reactor's own timer did not fire.
constexpr uint64_t kOverdueNs = 100'000'000;
// Longest we allow everything for a reactor that went, waiting for its process to be gone: a
// watcher closed in a process that lives on is never gone.
constexpr uint64_t kReleaseNs = 2'000'000'000;
// Reads of the group in one turn of our loop while standing in: a request to hand the group
// back is looked at in between, however busy the node.
constexpr int kReadsPerTurn = 16;

enum Tag : uint64_t { kTagSock = 1, kTagWatcher, kTagGroup, kTagTimer, kTagDeath };

// The watcher's pid as our procfs names it, from its pidfd; -1 if it cannot be told.
pid_t PidOf(int pidfd) {
  char path[64];
  snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", pidfd);
  FILE* f = fopen(path, "re");
  if (!f) return -1;
  char line[128];
  pid_t pid = -1;
  while (fgets(line, sizeof(line), f))
    if (sscanf(line, "Pid:\t%d", &pid) == 1) break;
  fclose(f);
  return pid;
}

class StandIn {
 public:
  StandIn(int sock, int group, int watcher, int death, Shared& shared)
      : sock_(sock), group_(group), watcher_(watcher), death_(death), shared_(shared), policy_(ReadPolicy(shared)) {}

  int Run() {
    ep_ = epoll_create1(EPOLL_CLOEXEC);
    timer_ = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    if (ep_ < 0 || timer_ < 0) return 1;
    auto watch = [this](int fd, uint64_t tag, uint32_t events) {
      epoll_event ev{};
      ev.events = events;
      ev.data.u64 = tag;
      return epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev) == 0;
    };
    // Edge-triggered on the group: woken once per event queued, without reading it (the reactor reads).
    if (!watch(sock_, kTagSock, EPOLLIN) || !watch(watcher_, kTagWatcher, EPOLLIN) ||
        !watch(group_, kTagGroup, EPOLLIN | EPOLLET) || !watch(timer_, kTagTimer, EPOLLIN) ||
        !watch(death_, kTagDeath, EPOLLIN))
      return 1;
    lastBeat_ = shared_.heartbeat.load();
    for (;;) {
      epoll_event events[4];
      int n = epoll_wait(ep_, events, 4, queued_ ? 0 : -1);
      if (n < 0 && errno != EINTR) return 1;
      for (int i = 0; i < n; i++) {
        switch (events[i].data.u64) {
          case kTagWatcher:
            return 0;  // its files are closed: with ours, the kernel allows all that is pending
          case kTagSock:
            // The watcher closed: a reactor that stopped has told us already (kTagDeath);
            // one that gave up on us reads on without us.
            if (!ReadMessages()) {
              if (!releaseUntil_) return 0;
              epoll_event none{};
              epoll_ctl(ep_, EPOLL_CTL_DEL, sock_, &none);
            }
            break;
          case kTagDeath:
            Release();
            break;
          case kTagTimer: {
            uint64_t ticks;
            (void)!read(timer_, &ticks, sizeof(ticks));
            break;
          }
        }
      }
      if (releaseUntil_) {
        if (MonotonicNs() > releaseUntil_) return 0;
        ClaimPublished();
        ReadAndAnswer();
      } else if (standing_) {
        ClaimPublished();
        ReadAndAnswer();
        if (wantBack_) HandBack();
      } else {
        Watch(MonotonicNs());
      }
      if (settledSome_) Tell(kSettledSome);
      settledSome_ = false;
      Tick(standing_ || ticking_ || releaseUntil_);
    }
  }

 private:
  // The reactor thread is gone: its process killed (its files close last, slowly) or its
  // watcher closed. Until the process is gone, we answer for it what the kernel answers when
  // the group closes: allow.
  void Release() {
    releaseUntil_ = MonotonicNs() + kReleaseNs;
    standing_ = false;
    epoll_event none{};
    epoll_ctl(ep_, EPOLL_CTL_DEL, death_, &none);
  }

  // False when the watcher closed the socket: it stopped watching.
  bool ReadMessages() {
    char buf[64];
    for (;;) {
      ssize_t n = recv(sock_, buf, sizeof(buf), MSG_DONTWAIT);
      if (n == 0) return false;
      if (n < 0) return errno == EAGAIN || errno == EINTR;
      for (ssize_t i = 0; i < n; i++) wantBack_ |= buf[i] == kWantBack;
    }
  }

  // The reactor's progress: its heartbeat moves on every turn of its loop. An exec queued
  // and not read, or read and not handled, for the budget without a turn, or a hold long
  // past its deadline, means the reactor is not running.
  void Watch(uint64_t now) {
    uint64_t beat = shared_.heartbeat.load();
    if (beat != lastBeat_) {
      lastBeat_ = beat;
      pendingSince_ = 0;
    }
    bool held = false;
    uint64_t oldestHold = 0;
    uint32_t high = std::min(shared_.slotsHigh.load(), kSlots);
    for (uint32_t s = 0; s < high; s++) {
      if (KindOf(shared_.slots[s].state.load()) != kOpen) continue;
      held = true;
      uint64_t deadline = static_cast<uint64_t>(shared_.slots[s].deadlineNs);
      if (!oldestHold || deadline < oldestHold) oldestHold = deadline;
    }
    bool pending = QueueReadable() || UnhandledReads();
    if (!pending)
      pendingSince_ = 0;
    else if (!pendingSince_)
      pendingSince_ = now;
    ticking_ = pending || held;
    uint64_t budget = static_cast<uint64_t>(policy_.budgetNs);
    bool overdue = held && now > oldestHold + kOverdueNs;
    bool stalled = pendingSince_ && now - pendingSince_ >= budget;
    if (!overdue && !stalled) return;
    // How long the oldest exec we know of had waited.
    uint64_t waited = stalled ? now - pendingSince_ : 0;
    if (overdue) waited = std::max(waited, now - (oldestHold - std::min(oldestHold, budget)));
    TakeOver(now, waited);
  }

  bool QueueReadable() {
    pollfd p{group_, POLLIN, 0};
    return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
  }

  bool UnhandledReads() {
    for (auto& buffer : shared_.watcherRead)
      for (uint32_t i = 0; i < kReadEntries; i++) {
        int fd, tid;
        if (KindOf(buffer.states[i].load()) == kOpen && EventAt(buffer, i, fd, tid)) return true;
      }
    return false;
  }

  void TakeOver(uint64_t now, uint64_t waited) {
    // Dekker's handshake with the reactor's BeginRead: whichever of the two stores comes first,
    // the reactor either sees this owner and does not read, or we see it reading.
    shared_.owner.store(kWatchdogReads);
    bool midRead = shared_.reading.load() != 0;
    shared_.takeoverNs.store(now);
    shared_.stalledNs.store(waited);
    shared_.allowed.store(0);
    shared_.denied.store(0);
    shared_.takeovers.fetch_add(1);
    standing_ = true;
    wantBack_ = false;
    // Stopped inside its read, the reactor will read once more when it runs again.
    if (midRead) ReserveNumbers();
    // Every event the reactor published is answered before we read any: until then, an fd of
    // ours could carry the same number as one of its events still in the group's list.
    ClaimPublished();
    Tell(kTookOver);
    ReadAndAnswer();
  }

  void HandBack() {
    queued_ = false;
    for (int fd : reserved_) close(fd);
    reserved_.clear();
    shared_.backNs.store(MonotonicNs());
    shared_.owner.store(kReactorReads);
    standing_ = false;
    wantBack_ = false;
    lastBeat_ = shared_.heartbeat.load();
    pendingSince_ = 0;
    Tell(kHandedBack);
  }

  // The reactor's held execs, and the events it read and had not handled.
  void ClaimPublished() {
    uint32_t high = std::min(shared_.slotsHigh.load(), kSlots);
    for (uint32_t s = 0; s < high; s++) {
      uint32_t word = shared_.slots[s].state.load();
      if (KindOf(word) == kOpen) ClaimSlot(s, word);
    }
    for (auto& buffer : shared_.watcherRead)
      for (uint32_t i = 0; i < kReadEntries; i++) {
        uint32_t word = buffer.states[i].load();
        if (KindOf(word) == kOpen) {
          ClaimEntry(buffer, i, word);
        } else if (KindOf(word) == kMoved && TagOf(word) < kSlots) {
          // Held, and maybe still being filled in: the slot is reached through its entry.
          uint32_t slotWord = shared_.slots[TagOf(word)].state.load();
          if (KindOf(slotWord) == kOpen || KindOf(slotWord) == kPending) ClaimSlot(TagOf(word), slotWord);
        }
      }
  }

  void ClaimSlot(uint32_t s, uint32_t word) {
    Slot& slot = shared_.slots[s];
    uint32_t expiry = slot.expiry.load();
    int fd = slot.fd;
    // A creation whose policy JavaScript had not resolved gets the policy of any creation.
    bool allow = releaseUntil_ || ((expiry & kExpiryAllow) && ((expiry & kExpiryResolved) || policy_.allowCreations));
    if (!Take(slot.state, word, Claimed(allow))) return;
    bool took = AnswerEvent(group_, fd, allow);
    slot.state.store(Done(allow));
    Count(took, allow);
  }

  void ClaimEntry(ReadBuffer& buffer, uint32_t i, uint32_t word) {
    int fd, tid;
    if (!EventAt(buffer, i, fd, tid)) return;
    uint64_t dev = 0, ino = 0;
    bool allow = releaseUntil_ || AllowsExec(tid, ReactorInode(fd, dev, ino) && IsMonitor(shared_, dev, ino), policy_);
    if (!Take(buffer.states[i], word, Claimed(allow))) return;
    bool took = AnswerEvent(group_, fd, allow);
    buffer.states[i].store(Done(allow));
    Count(took, allow);
  }

  // The inode of an event fd in the reactor's table.
  bool ReactorInode(int fd, uint64_t& dev, uint64_t& ino) {
    int mine = static_cast<int>(syscall(SYS_pidfd_getfd, watcher_, fd, 0));
    if (mine < 0) return false;
    bool ok = InodeOf(mine, dev, ino);
    close(mine);
    return ok;
  }

  // Reads the group itself, into shared memory: should we die between a read and its answers,
  // the reactor finds what we read and answers it. Leaves queued_ set if it stopped short.
  void ReadAndAnswer() {
    ReadBuffer& buffer = shared_.watchdogRead;
    queued_ = true;
    for (int reads = 0; reads < kReadsPerTurn; reads++) {
      memset(buffer.bytes, 0, lastRead_);
      for (auto& state : buffer.states) state.store(kOpen);
      ssize_t n = read(group_, buffer.bytes, kReadBytes);
      lastRead_ = n > 0 ? static_cast<size_t>(n) : 0;
      if (n <= 0) {
        queued_ = false;
        return;
      }
      for (uint32_t i = 0; i * FAN_EVENT_METADATA_LEN < static_cast<size_t>(n); i++) {
        int fd, tid;
        if (!EventAt(buffer, i, fd, tid)) continue;  // a queue overflow: FAN_UNLIMITED_QUEUE makes it moot
        uint64_t dev = 0, ino = 0;
        bool known = InodeOf(fd, dev, ino);
        bool allow = releaseUntil_ || AllowsExec(tid, known && IsMonitor(shared_, dev, ino), policy_);
        buffer.states[i].store(Claimed(allow));
        bool took = AnswerEvent(group_, fd, allow);
        buffer.states[i].store(Done(allow));
        close(fd);
        Count(took, allow);
        Log(tid, allow, dev, ino);
      }
    }
  }

  void Log(pid_t tid, bool allow, uint64_t dev, uint64_t ino) {
    uint64_t index = shared_.logHead.load();
    LogEntry& e = shared_.log[index % kLogEntries];
    e.seq.store(0);  // a reader lapped onto it sees it is being rewritten
    e.tid = tid;
    e.allowed = allow;
    e.ns = MonotonicNs();
    e.dev = dev;
    e.ino = ino;
    e.seq.store(index + 1);
    shared_.logHead.store(index + 1);
  }

  void Count(bool took, bool allow) {
    settledSome_ = true;
    if (took) (allow ? shared_.allowed : shared_.denied).fetch_add(1);
  }

  // Fills every free fd number the reactor could be given by one more read with a
  // placeholder, so that the kernel gives our events numbers above them.
  void ReserveNumbers() {
    pid_t pid = PidOf(watcher_);
    int highest = -1;
    if (pid > 0) {
      std::string dir = "/proc/" + std::to_string(pid) + "/fd";
      if (DIR* d = opendir(dir.c_str())) {
        while (dirent* e = readdir(d)) highest = std::max(highest, atoi(e->d_name));
        closedir(d);
      }
    }
    if (highest < 0) highest = 4096;  // not visible from here: a generous guess
    int top = highest + static_cast<int>(kReadEntries) + 64;
    rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < static_cast<rlim_t>(top) + 64) {
      rl.rlim_cur = std::min<rlim_t>(rl.rlim_max, static_cast<rlim_t>(top) + 64);
      setrlimit(RLIMIT_NOFILE, &rl);
    }
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null < 0) return;
    reserved_.push_back(null);
    for (int n = 0; n <= top; n++)
      if (fcntl(n, F_GETFD) < 0 && errno == EBADF && dup3(null, n, O_CLOEXEC) == n) reserved_.push_back(n);
  }

  void Tell(char message) { (void)!send(sock_, &message, 1, MSG_DONTWAIT | MSG_NOSIGNAL); }

  void Tick(bool on) {
    if (on == ticking_armed_) return;
    ticking_armed_ = on;
    itimerspec spec{};
    if (on) spec.it_value.tv_nsec = spec.it_interval.tv_nsec = kTickNs;
    timerfd_settime(timer_, 0, &spec, nullptr);
  }

  const int sock_, group_, watcher_, death_;
  Shared& shared_;
  const Policy policy_;
  int ep_ = -1, timer_ = -1;
  uint64_t releaseUntil_ = 0;
  bool standing_ = false, wantBack_ = false, settledSome_ = false, queued_ = false;
  bool ticking_ = false, ticking_armed_ = false;
  uint64_t lastBeat_ = 0, pendingSince_ = 0;
  size_t lastRead_ = kReadBytes;
  std::vector<int> reserved_;
};

// The three fds the watcher sends: its group, the shared memory, its pidfd.
bool ReceiveFds(int sock, int (&fds)[3]) {
  char byte;
  iovec iov{&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(fds))];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  if (recvmsg(sock, &msg, MSG_CMSG_CLOEXEC) != 1) return false;
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  if (!c || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(sizeof(fds))) return false;
  memcpy(fds, CMSG_DATA(c), sizeof(fds));
  return true;
}

}  // namespace

int Serve(int sock) {
  int fds[3];
  if (!ReceiveFds(sock, fds)) return 1;
  struct stat st;
  if (fstat(fds[1], &st) != 0 || static_cast<size_t>(st.st_size) < sizeof(Shared)) return 1;
  void* at = mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED, fds[1], 0);
  if (at == MAP_FAILED) return 1;
  auto* shared = static_cast<Shared*>(at);
  if (shared->magic != kMagic || shared->version != kVersion) return 1;
  // A thread that waits for the reactor thread's mutex: the kernel hands it over as that thread
  // exits, before the dying process closes a file (its BPF links take hundreds of ms, its copy of
  // the group goes last). Detached: our exit ends it.
  int death = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (death < 0) return 1;
  std::thread([shared, death] {
    if (pthread_mutex_lock(&shared->reactorAlive) != EOWNERDEAD) return;  // never held: not a reactor we know
    uint64_t one = 1;
    (void)!write(death, &one, sizeof(one));
  }).detach();
  return StandIn(sock, fds[0], fds[2], death, *shared).Run();
}

}  // namespace ocinotify::wd
