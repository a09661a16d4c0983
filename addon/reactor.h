// The native reactor: one thread, one epoll over the fanotify group, the BPF
// ring buffer, a deadline timer and a wake-up eventfd. It matches each held
// exec to its argv, answers everything that is not a container creation or
// start at once, holds those until JavaScript answers or the deadline passes,
// and hands records to JavaScript in batches. Nothing here waits on JavaScript.
#pragma once
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "binary_watch.h"
#include "bpf_tracer.h"
#include "fanotify_gate.h"
#include "record.h"

namespace ocinotify {

struct ReactorOptions {
  bool useBpf = true;
  bool useFanotify = true;
  uint32_t gateTimeoutMs = 1000;
  bool allowOnExpiry = true;         // fail-open unless the watcher says otherwise
  bool holdStart = true;             // hold `start` until JavaScript has handled what came before
  uint32_t maxHeld = 4096;           // more concurrent holds are answered at once
  uint32_t watcherPidns = 0;
  bool watcherInInitPidns = true;
  std::vector<std::string> names;    // runtime basenames
  std::vector<RuntimeBinary> binaries;  // path and kind: the reactor keys them
  // Every path a runtime may be at: watched for installs and upgrades.
  std::vector<BinaryCandidate> candidates;
};

struct ReactorStatus {
  bool bpf = false;
  bool fanotify = false;
  std::string bpfError;
  std::string fanotifyError;
  std::vector<std::string> marked;
  std::vector<std::string> markErrors;
};

struct ReactorStats {
  uint64_t held = 0, answeredByJs = 0, expired = 0, answeredNative = 0, heldNow = 0;
  uint64_t ringbufFull = 0, queueOverflow = 0, enterUnmatched = 0;
};

class Reactor {
 public:
  using Deliver = std::function<void(Batch*)>;

  explicit Reactor(ReactorOptions options);
  ~Reactor();
  ReactorStatus Start(Deliver deliver);
  // From the JavaScript thread. False if the exec was already answered.
  bool Answer(uint64_t cookie, bool allow);
  // Reports an Exit record of this kind when pid exits, through a pidfd: how
  // exits are seen without the BPF side. Safe from any thread.
  void WatchPid(uint32_t pid, uint32_t exitKind, uint32_t sessionPid);
  // What the deadline answers for this held exec, once its policy is known.
  bool SetExpiryVerdict(uint64_t cookie, bool allow);
  // Follows a container init found by a scan: to its entrypoint exec when it
  // has not started (it still runs the runtime, in runtimeMntns), and to its exit.
  bool TrackContainer(uint32_t pid, uint32_t sessionPid, bool started, uint32_t runtimeMntns);
  ReactorStats Stats();
  void Stop();

 private:
  struct Held {
    int fd;
    std::chrono::steady_clock::time_point deadline;
    bool allowOnExpiry;
  };
  struct PidWatch {
    uint32_t pid, exitKind, sessionPid;
  };
  struct Enter {
    Record rec;
    std::chrono::steady_clock::time_point seen;
  };

  void Run();
  void OnBpf(const void* data, size_t size);
  void OnPermEvents();
  void RescanBinaries();
  Record MatchArgv(const PermEvent& ev);
  bool TakeEnter(pid_t tid, Record& out);
  void ExpireDeadlines();
  void ExpireEnters();
  void ArmTimer();
  void Flush();
  void OnPidExit(int pidfd);
  void WatchPidLocked(uint32_t pid, uint32_t exitKind, uint32_t sessionPid);
  std::string BinaryPath(int fd);

  ReactorOptions opt_;
  Deliver deliver_;
  BpfTracer bpf_;
  FanotifyGate gate_;
  BinaryWatch binaryWatch_;
  int epfd_ = -1, timerfd_ = -1, wakefd_ = -1;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  bool started_ = false;

  std::mutex mu_;  // guards held_, nextCookie_ and stats_ (Answer runs on the JS thread)
  std::map<uint64_t, Held> held_;
  std::unordered_map<int, PidWatch> pidWatches_;  // by pidfd
  std::vector<Record> pendingExits_;               // pids that were gone before we watched them
  bool bpfRunning_ = false;
  std::chrono::steady_clock::time_point lastLossCheck_{};
  bool lossCheckOwed_ = false;
  std::chrono::steady_clock::time_point armedFor_ = std::chrono::steady_clock::time_point::max();
  uint64_t nextCookie_ = 1;
  ReactorStats stats_;

  // argv captured at sys_enter, waiting for its permission event
  std::unordered_map<pid_t, Enter> enterByTid_;
  std::deque<Enter> enterInvisible_;  // tasks our pid namespace cannot see
  std::unique_ptr<Batch> batch_;
};

}  // namespace ocinotify
