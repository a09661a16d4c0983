// The execs held at their permission check, each until JavaScript answers it or its
// deadline does. The reactor thread holds and expires; the JavaScript thread answers
// and sets verdicts.
#pragma once
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>

#include "fanotify_gate.h"
#include "record.h"

namespace ocinotify {

struct HoldStats {
  uint64_t held = 0, answeredByJs = 0, expired = 0, answeredNative = 0, heldNow = 0;
};

class Holds {
 public:
  using Clock = std::chrono::steady_clock;

  Holds(FanotifyGate& gate, std::chrono::milliseconds timeout, uint32_t maxHeld);
  // Holds the exec behind fd; at its deadline it is answered allowOnExpiry. Returns its
  // cookie, or 0 when maxHeld execs are held already: then nothing is held.
  uint64_t Add(int fd, bool allowOnExpiry);
  // Lets the exec behind fd run without holding it.
  void AllowNow(int fd);
  // False if the exec was already answered.
  bool Answer(uint64_t cookie, bool allow);
  bool SetExpiryVerdict(uint64_t cookie, bool allow);
  // Answers every hold whose deadline has passed, with a GateExpired record each.
  void Expire(Batch& out);
  Clock::time_point NextDeadline();
  // Allows everything still held: the reactor is stopping.
  void AllowAll();
  HoldStats Stats();

 private:
  struct Held {
    int fd;
    Clock::time_point deadline;
    bool allowOnExpiry;
  };

  FanotifyGate& gate_;
  const std::chrono::milliseconds timeout_;
  const uint32_t maxHeld_;
  // Every method takes it: what is below, and the answers written to the gate,
  // are reached from both threads (reactor.h).
  std::mutex mu_;
  std::map<uint64_t, Held> held_;
  uint64_t nextCookie_ = 1;
  HoldStats stats_;
};

}  // namespace ocinotify
