// The native reactor: one thread, one epoll over the fanotify group, the BPF
// ring buffer, a deadline timer and a wake-up eventfd. It matches each held
// exec to its argv (argv_match.h), answers everything that is not a container
// creation or start at once, holds those until JavaScript answers or the
// deadline passes (holds.h), and hands records to JavaScript in batches.
// Nothing here waits on JavaScript.
//
// Two threads run this code: the reactor's own, to which everything here
// belongs, and the JavaScript thread, which calls Answer, SetExpiryVerdict,
// WatchPid, TrackContainer and Stats. Those reach only the holds and the pid
// watches (pid_watch.h), each behind its own mutex, the counters, which are
// atomic, and the BPF maps, which the kernel serialises. The spec reader's
// thread (spec_reader.h) hands on the batches waiting for its reads, behind
// their own mutex. Start and Stop run while the reactor thread does not.
#pragma once
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
#include <vector>

#include "argv_match.h"
#include "binary_watch.h"
#include "bpf_tracer.h"
#include "fanotify_gate.h"
#include "holds.h"
#include "inode_key.h"
#include "pid_watch.h"
#include "record.h"
#include "spec_reader.h"
#include "watchdog_link.h"

namespace ocinotify {

struct ReactorOptions {
  bool useBpf = true;
  bool useFanotify = true;
  uint32_t gateTimeoutMs = 1000;
  bool allowOnExpiry = true;         // fail-open unless the watcher says otherwise
  HoldVerbs holdVerbs;
  uint32_t maxHeld = 4096;           // more concurrent holds are answered at once
  uint32_t watcherPidns = 0;
  bool watcherInInitPidns = true;
  std::string hostProc = "/proc";   // the host's procfs (under the host root, in a pod)
  uint32_t hostPidns = 0;            // that procfs' pid namespace, 0: the initial one
  std::vector<std::string> names;    // runtime basenames
  std::vector<RuntimeBinary> binaries;  // path and kind: the reactor opens and keys them
  // Every path a runtime may be at: watched for installs and upgrades.
  std::vector<BinaryCandidate> candidates;
  WatchdogOptions watchdog;
  // The largest config.json read ahead for a held creation (spec_reader.h); 0: none is.
  size_t maxSpecBytes = 0;
};

// A binary found at start that a mechanism running cannot fully watch, and what it lacks.
struct BinaryError {
  std::string path;
  std::string error;
};

struct ReactorStatus {
  bool bpf = false;
  bool fanotify = false;
  std::string bpfError;
  std::string fanotifyError;
  std::vector<std::string> marked;
  std::vector<BinaryError> binaryErrors;
};

struct ReactorStats {
  HoldStats holds;
  WatchdogStats watchdog;
  uint64_t ringbufFull = 0, queueOverflow = 0, enterUnmatched = 0;
};

class Reactor {
 public:
  using Deliver = std::function<void(Batch*)>;

  explicit Reactor(ReactorOptions options);
  ~Reactor();
  ReactorStatus Start(Deliver deliver);
  // False if the exec was already answered.
  bool Answer(uint64_t cookie, bool allow);
  // Reports an Exit record of this kind when pid exits, through a pidfd: how
  // exits are seen without the BPF side.
  void WatchPid(uint32_t pid, uint32_t exitKind, uint32_t sessionPid);
  // What the deadline answers for this held exec, once its policy is known.
  bool SetExpiryVerdict(uint64_t cookie, bool allow);
  // Follows a container init found by a scan: to its entrypoint exec when it
  // has not started (it still runs the runtime, in runtimeMntns), and to its exit.
  bool TrackContainer(uint32_t pid, uint32_t sessionPid, bool started, uint32_t runtimeMntns);
  ReactorStats Stats();
  void Stop();

 private:
  void Run();
  void OnBpf(const void* data, size_t size);
  void OnPermEvents();
  // Opens each binary JavaScript found, keys it and marks it through that fd (what is keyed
  // and marked is what was looked at); one gone since is left out. Errors by path.
  void OpenBinaries(ReactorStatus& st, std::map<std::string, std::string>& markErrors,
                    std::map<std::string, std::string>& keyErrors);
  // Sets b.kernel: the kernel's key, or stat's when it cannot be learnt (right on most
  // filesystems, and said, since it is wrong where the two differ). Returns why, or "".
  std::string Key(int fd, RuntimeBinary& b);
  void RescanBinaries();
  void LearnFromExec(const Record& exec, const InodeKey& kernel);
  void Forget(const FoundBinary& binary);
  Record BinaryRecord(const FoundBinary& binary, bool present, std::string error);
  void OnPermEvent(const PermEvent& ev, std::atomic<uint32_t>& entry, uint32_t open);
  // Starts reading a creation's config.json on the spec reader (rec.specJob).
  void ReadSpecAhead(Record& rec);
  void PublishBinaries();
  // What the watchdog answered while it stood in, reported once its argv record is read.
  void SyncWatchdogLog();
  void OnWatchdogAnswer(const WatchdogAnswer& answer);
  bool TakeWatchdogAnswer(const Record& enter, WatchdogAnswer& out);
  uint64_t OldestAnswerable(const WatchdogAnswer& answer) const;
  void PushWatchdogExec(Record rec, const WatchdogAnswer& answer);
  void OnWatchdogGone();
  void ParkGate(bool park);
  void ArmTimer();
  void Flush();
  // Hands on, in order, each batch whose spec reads are done or waited for long enough: on
  // the reactor's thread after each flush, and on the spec reader's after each read.
  void DeliverReady();
  std::string BinaryPath(int fd);

  ReactorOptions opt_;
  Deliver deliver_;
  BpfTracer bpf_;
  FanotifyGate gate_;
  // Before holds_: its memory holds their slots.
  WatchdogLink link_;
  BinaryWatch binaryWatch_;
  KernelKeys keys_;
  ArgvMatch argv_;
  Holds holds_;
  PidWatch pids_;
  int epfd_ = -1, timerfd_ = -1, wakefd_ = -1;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  bool started_ = false;
  bool bpfRunning_ = false;
  bool gateParked_ = false;
  // Answers from the watchdog's log whose argv record has not been read yet.
  std::vector<WatchdogAnswer> watchdogAnswers_;

  std::atomic<uint64_t> ringbufFull_{0}, queueOverflow_{0};
  std::chrono::steady_clock::time_point lastLossCheck_{};
  bool lossCheckOwed_ = false;
  std::chrono::steady_clock::time_point armedFor_ = std::chrono::steady_clock::time_point::max();
  std::unique_ptr<Batch> batch_;
  SpecReader specs_;
  // Batches flushed, waiting for their spec reads, oldest first, each with when it was
  // flushed; both threads that deliver take the lock.
  std::mutex waitingMu_;
  std::deque<std::pair<std::unique_ptr<Batch>, std::chrono::steady_clock::time_point>> waiting_;
  // Host pids of the latest creations held at a permission check: a file another mark already
  // holds the execs of (an overlayfs over a marked runtime) is not learnt again (LearnFromExec).
  std::deque<uint32_t> heldCreations_;
};

}  // namespace ocinotify
