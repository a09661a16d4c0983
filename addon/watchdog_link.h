// The reactor's side of its watchdog (watchdog_shared.h): the memory they share, the
// watchdog process (spawned beside the addon, or a sidecar reached through its socket), the
// handshake around each read of the group, and what the watchdog did while it stood in.
// Reactor thread only, but for Stats.
#pragma once
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "record.h"
#include "watchdog_policy.h"
#include "watchdog_shared.h"

namespace ocinotify {

struct WatchdogOptions {
  bool enabled = true;
  // What the watchdog answers a creation: the policy, as no bundle is read (watchdog_policy.h).
  bool allowCreations = true;
  // A sidecar's socket (ocinotify-watchdog --listen); "" spawns a watchdog beside the addon.
  std::string socketPath;
};

// An exec the watchdog read and answered itself, for the reactor to report.
struct WatchdogAnswer {
  pid_t tid;
  bool allowed;
  uint64_t ns;
  uint64_t dev, ino;
};

struct WatchdogStats {
  int32_t pid = 0;  // 0: none running (a sidecar's is not ours to see)
  uint64_t starts = 0, takeovers = 0, allowed = 0, denied = 0;
};

class WatchdogLink {
 public:
  static constexpr uint64_t kTagSocket = 6, kTagExit = 7;

  ~WatchdogLink();
  // A memfd the watchdog maps; without one (memfd_create refused), private memory and no watchdog.
  void Map();
  wd::Shared& Shared() { return *shared_; }
  // On the reactor thread, which holds it until it exits: the watchdog learns so at once.
  void HoldAlive();
  // Remembers how to start the watchdog and starts it, holding groupFd; epfd is the reactor's.
  // On the reactor thread, after HoldAlive.
  void Start(int groupFd, const WatchdogOptions& options, const wd::Policy& policy, int epfd, Batch& out);
  void Beat() { shared_->heartbeat.fetch_add(1, std::memory_order_relaxed); }
  bool Standing() const { return shared_->owner.load() == wd::kWatchdogReads; }

  // The buffer to read the group into and its entries' open word, or null: the watchdog reads
  // now, or every buffer has an entry whose answer the watchdog is still writing (Blocked).
  wd::ReadBuffer* BeginRead(uint32_t& open);
  bool Blocked() const;
  void EndRead(ssize_t bytes);
  // Closes fd once the watchdog's answer to the event behind state is written.
  void CloseWhenSettled(int fd, std::atomic<uint32_t>* state) { closing_.emplace_back(fd, state); }

  // The watchdog's socket is readable; false if it is gone (a sidecar closed it; one we spawned
  // is gone when its pidfd says so).
  bool OnSocket(Batch& out);
  // Its pidfd is readable: it exited.
  void OnExit(Batch& out);
  // Each turn of the reactor's loop: closes what is settled, asks the group back, restarts a
  // watchdog that died. False when the watchdog must be given up on (OnGone follows).
  bool Tick(Batch& out);
  // The watchdog is gone: answers what it claimed or read and did not answer (answers: what it
  // read, to be reported), reads the group again, and schedules a new one.
  void OnGone(Batch& out, std::vector<WatchdogAnswer>& answers);
  // When Tick wants to run next (a restart, a hand-back overdue, a close pending).
  std::chrono::steady_clock::time_point NextTick() const;
  // What the watchdog logged since the last call; lost: entries it overwrote before we read them.
  void TakeLog(std::vector<WatchdogAnswer>& out, uint64_t& lost);
  WatchdogStats Stats() const;
  void Stop();

 private:
  using Clock = std::chrono::steady_clock;

  std::string Spawn();
  std::string Connect();
  std::string Hand(int sock);
  void Register();
  void Unregister();
  void Report(Batch& out, const char* change, std::string message);
  void ReportTakeover(Batch& out, const char* how);
  void CloseSettled();
  bool Pinned(uint32_t buffer) const;

  wd::Shared* shared_ = nullptr;
  size_t mapped_ = 0;
  int memfd_ = -1, group_ = -1, epfd_ = -1, self_ = -1;
  WatchdogOptions options_;
  wd::Policy policy_;
  // The running watchdog: our end of its socket, and the pidfd of the one we spawned.
  int sock_ = -1, exitFd_ = -1;
  std::atomic<pid_t> pid_{0};
  Clock::time_point startedAt_{}, nextStart_ = Clock::time_point::max(), askedAt_{};
  std::chrono::milliseconds backoff_{0};
  bool asking_ = false;
  std::atomic<uint64_t> starts_{0}, takeovers_{0}, allowed_{0}, denied_{0};
  uint32_t current_ = 0, gens_[wd::kWatcherBuffers] = {};
  size_t used_[wd::kWatcherBuffers] = {};
  std::vector<std::pair<int, std::atomic<uint32_t>*>> closing_;
  uint64_t logTail_ = 0;
};

}  // namespace ocinotify
