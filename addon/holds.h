// The execs held at their permission check, each until JavaScript answers it, its deadline
// does, or the watchdog does for a stalled reactor. The reactor thread holds, expires and
// settles; the JavaScript thread answers and sets verdicts. Each hold is a slot of the memory
// shared with the watchdog (watchdog_shared.h), which may claim it at any time.
#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <vector>

#include "fanotify_gate.h"
#include "record.h"
#include "watchdog_shared.h"

namespace ocinotify {

struct HoldStats {
  uint64_t held = 0, answeredByJs = 0, expired = 0, answeredNative = 0, heldNow = 0, answeredByWatchdog = 0;
};

class Holds {
 public:
  using Clock = std::chrono::steady_clock;

  Holds(FanotifyGate& gate, std::chrono::milliseconds timeout, uint32_t maxHeld);
  void Attach(wd::Shared& shared) { shared_ = &shared; }
  // Holds the exec behind fd, published so far in a read buffer entry (entry, seen its open
  // word): the event moves to a slot, so that the watchdog finds it either way. Returns its
  // cookie; 0 when maxHeld execs are held already (nothing is held) or when the watchdog took
  // the entry first (*entryTaken: its answer is in the entry).
  uint64_t Add(int fd, bool allowOnExpiry, bool resolved, std::atomic<uint32_t>& entry, uint32_t seen, bool* entryTaken);
  // Counts an exec the reactor answered at once.
  void CountNative();
  // False if the exec was already answered.
  bool Answer(uint64_t cookie, bool allow);
  bool SetExpiryVerdict(uint64_t cookie, bool allow);
  // Answers every hold whose deadline has passed, with a GateExpired record each.
  void Expire(Batch& out);
  // Reports the holds the watchdog has claimed (WatchdogAnswered: once claimed, nobody else
  // answers them), and closes those it has answered.
  void Settle(Batch& out);
  // The watchdog died: the holds it claimed get the answer it chose, from us.
  void Recover(Batch& out);
  Clock::time_point NextDeadline();
  // Allows everything still held: the reactor is stopping, its watchdog gone.
  void AllowAll();
  HoldStats Stats();

 private:
  struct Held {
    uint32_t slot;
    uint32_t gen;
    Clock::time_point deadline;
    // Told already: ours took (the watchdog claimed it between our answer and our take), or
    // the watchdog's claim was reported.
    bool told = false;
  };

  // Our answer, then the slot: closed at once if the watchdog had not claimed it, else left
  // for Settle. Whether the kernel took our answer.
  bool AnswerHeld(std::map<uint64_t, Held>::iterator it, bool allow);
  void Free(std::map<uint64_t, Held>::iterator it);
  void SettleLocked(Batch& out);
  wd::Slot& SlotOf(const Held& h) { return shared_->slots[h.slot]; }

  FanotifyGate& gate_;
  wd::Shared* shared_ = nullptr;
  const std::chrono::milliseconds timeout_;
  const uint32_t maxHeld_;
  // Every method takes it: what is below, and the answers written to the gate,
  // are reached from both threads (reactor.h).
  std::mutex mu_;
  std::map<uint64_t, Held> held_;
  std::vector<uint32_t> free_;       // slots not in use, lowest last
  std::vector<uint32_t> gens_;       // each slot's last generation
  uint64_t nextCookie_ = 1;
  HoldStats stats_;
};

}  // namespace ocinotify
