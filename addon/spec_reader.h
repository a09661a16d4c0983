// config.json of each creation, read on a thread of its own from the moment its argv record
// names it, so that its bytes reach JavaScript with the exec's record: the JavaScript thread does
// not wait on the file system, and neither does the reactor, which owns the deadlines. A read
// that hangs (a bundle on a stalled FUSE or NFS mount) costs this thread only: its record goes
// on without bytes, marked slow, and no read is started while it hangs.
#pragma once
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "record.h"

namespace ocinotify {

class SpecReader {
 public:
  using Clock = std::chrono::steady_clock;

  // done: called on the reader's thread each time a read is done (the reactor hands on the
  // batches waiting for it from there: no wake-up of the reactor between the read and
  // JavaScript), until Close; createVerbs: the verbs after which the bundle flag is looked
  // for; maxBytes: the largest spec read; wait: how long a batch waits for its reads, and
  // how long a read may run before the reader counts as stuck (WaitFor).
  void Open(std::function<void()> done, std::vector<std::string> createVerbs, size_t maxBytes,
            std::chrono::milliseconds wait);
  void Close();
  // Starts reading the config.json rec's argv names (its bundle as the runtime sees it,
  // through procDir/root), if the reader is not stuck on an earlier one. Sets rec.specJob.
  void Start(Record& rec, const std::string& procDir);
  // Whether every read of batch is done, or waited for long enough.
  bool Ready(const Batch& batch, Clock::time_point since);
  // Moves each finished read into its record; an unfinished one leaves it marked slow
  // (started) or without a read (never started).
  void Attach(Batch& batch);
  // How long a batch waits for its reads before it goes without them, for a hold deadline:
  // a quarter of it, at least 50 ms. The runtime is held meanwhile and JavaScript keeps the
  // rest of the deadline to answer. A reader that is only late (its thread waiting for a CPU
  // on a busy node, reads queued behind each other when creations come together) must not
  // cost a container its metadata; one that hangs (a stalled FUSE or NFS mount) costs each
  // batch that waits for it this long, and no read starts while it hangs.
  static std::chrono::milliseconds WaitFor(uint32_t gateTimeoutMs);
  std::chrono::milliseconds Wait() const { return state_->wait; }
  // A read started at an argv record whose exec was never held (no permission event came:
  // an unmarked file) is not delivered: it is dropped this long after it was queued.
  static constexpr std::chrono::seconds kKeep{10};

 private:
  struct Job {
    Clock::time_point queued;
    std::string procDir, bundle;
    std::string root, path;  // once started
    SpecRead result;
    bool started = false, done = false;
  };
  // Shared with the thread, which may outlive the reader while a read hangs.
  struct State {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<uint64_t> queue;
    std::map<uint64_t, std::shared_ptr<Job>> jobs;
    uint64_t running = 0;
    Clock::time_point runningSince{};
    bool stopping = false;
    // Its own lock, taken first: Close clears it, and a hung read that returns later calls nothing.
    std::mutex doneMu;
    std::function<void()> done;
    size_t maxBytes = 0;
    std::chrono::milliseconds wait{50};
    bool Stuck() const { return running != 0 && Clock::now() - runningSince >= wait; }
  };
  static void Run(std::shared_ptr<State> state);
  static void ReadOne(State& state, Job& job);

  std::shared_ptr<State> state_ = std::make_shared<State>();
  std::vector<std::string> createVerbs_;
  uint64_t nextId_ = 1;
  std::thread thread_;
};

// The bundle directory a create/run argv names, as written ("." when none): the flag may
// be --bundle, -bundle or -b, with its value after it or after '='. A guess for reading
// ahead: TypeScript parses the argv and uses the bytes only for the path it computes.
std::string BundleOf(const std::vector<std::string>& argv, const std::vector<std::string>& createVerbs);
// A lexically normal absolute path, as node's path.posix.normalize makes it.
std::string NormalizePath(const std::string& path);

}  // namespace ocinotify
