#include "pid_watch.h"

#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ocinotify {

Record PidWatch::ExitOf(const Watched& w) {
  Record rec;
  rec.kind = RecordKind::Exit;
  rec.task.pid = rec.task.vpid = w.pid;
  rec.task.ts_ns = MonotonicNs();
  rec.exitKind = w.exitKind;
  rec.sessionPid = w.sessionPid;
  rec.status = -1;
  return rec;
}

std::string PidWatch::Probe() {
  int fd = static_cast<int>(syscall(SYS_pidfd_open, getpid(), 0));
  if (fd < 0) return std::string("pidfd_open: ") + strerror(errno);
  close(fd);
  return "";
}

void PidWatch::Open(int epfd, int wakefd) {
  epfd_ = epfd;
  wakefd_ = wakefd;
}

void PidWatch::Watch(uint32_t pid, uint32_t exitKind, uint32_t sessionPid) {
  std::lock_guard<std::mutex> lock(mu_);
  int fd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) {
    // Already gone: its exit is now. Delivered with the reactor's next batch.
    gone_.push_back(ExitOf({pid, exitKind, sessionPid}));
    uint64_t one = 1;
    (void)!write(wakefd_, &one, sizeof(one));
    return;
  }
  byFd_[fd] = {pid, exitKind, sessionPid};
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kEpollTag | static_cast<uint32_t>(fd);
  epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev);
}

void PidWatch::OnExit(int pidfd, Batch& out) {
  Watched w;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = byFd_.find(pidfd);
    if (it == byFd_.end()) return;
    w = it->second;
    byFd_.erase(it);
  }
  epoll_ctl(epfd_, EPOLL_CTL_DEL, pidfd, nullptr);
  close(pidfd);
  out.push_back(ExitOf(w));
}

void PidWatch::TakeGone(Batch& out) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& rec : gone_) out.push_back(std::move(rec));
  gone_.clear();
}

void PidWatch::Close() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [fd, w] : byFd_) close(fd);
  byFd_.clear();
}

}  // namespace ocinotify
