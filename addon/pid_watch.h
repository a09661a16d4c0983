// How exits are learnt without the BPF side: a pidfd per process, in the reactor's
// epoll. A pidfd tells that a process that is not our child exited, not how.
#pragma once
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "record.h"

namespace ocinotify {

class PidWatch {
 public:
  // A pidfd's epoll data: this bit, or'ed with the fd.
  static constexpr uint64_t kEpollTag = 1ull << 32;

  // "" when this kernel has pidfd_open (Linux 5.3), else why not.
  static std::string Probe();
  // The reactor's epoll, and the eventfd that wakes it.
  void Open(int epfd, int wakefd);
  // Reports an Exit record of exitKind when pid exits. Safe from any thread.
  void Watch(uint32_t pid, uint32_t exitKind, uint32_t sessionPid);
  // On the reactor thread, when pidfd is readable.
  void OnExit(int pidfd, Batch& out);
  // The exits of processes that were gone when watched.
  void TakeGone(Batch& out);
  void Close();

 private:
  struct Watched {
    uint32_t pid, exitKind, sessionPid;
  };

  static Record ExitOf(const Watched& w);

  int epfd_ = -1, wakefd_ = -1;
  // Guards everything below: Watch runs on the JavaScript thread too.
  std::mutex mu_;
  std::unordered_map<int, Watched> byFd_;
  std::vector<Record> gone_;
};

}  // namespace ocinotify
