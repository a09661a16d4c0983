#include "holds.h"

#include <unistd.h>

#include <algorithm>

namespace ocinotify {

namespace {

int64_t Ns(Holds::Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

}  // namespace

Holds::Holds(FanotifyGate& gate, std::chrono::milliseconds timeout, uint32_t maxHeld)
    : gate_(gate), timeout_(timeout), maxHeld_(std::min(maxHeld, wd::kSlots)), gens_(wd::kSlots, 0) {
  for (uint32_t s = wd::kSlots; s-- > 0;) free_.push_back(s);
}

uint64_t Holds::Add(int fd, bool allowOnExpiry, bool resolved, std::atomic<uint32_t>& entry, uint32_t seen,
                    bool* entryTaken) {
  std::lock_guard<std::mutex> lock(mu_);
  *entryTaken = false;
  if (held_.size() >= maxHeld_) return 0;
  uint32_t s = free_.back();
  free_.pop_back();
  uint32_t gen = gens_[s] = (gens_[s] + 1) % wd::kGenerations;
  auto deadline = Clock::now() + timeout_;
  wd::Slot& slot = shared_->slots[s];
  slot.fd = fd;
  slot.deadlineNs = Ns(deadline);
  slot.expiry.store((allowOnExpiry ? wd::kExpiryAllow : 0) | (resolved ? wd::kExpiryResolved : 0));
  uint32_t pending = wd::Word(wd::kPending, gen);
  slot.state.store(pending);
  if (shared_->slotsHigh.load() <= s) shared_->slotsHigh.store(s + 1);
  // The event moves from its entry to the slot in one step the watchdog cannot split: it
  // claims the entry first (then the slot is never seen), or follows the entry to the slot.
  if (!wd::Take(entry, seen, wd::Word(wd::kMoved, s))) {
    slot.state.store(wd::kEmpty);
    free_.push_back(s);
    *entryTaken = true;
    return 0;
  }
  uint64_t cookie = nextCookie_++;
  held_[cookie] = {s, gen, deadline};
  stats_.held++;
  // Failing, the watchdog reached it through the entry: Settle finds it answered.
  wd::Take(slot.state, pending, wd::Word(wd::kOpen, gen));
  return cookie;
}

void Holds::CountNative() {
  std::lock_guard<std::mutex> lock(mu_);
  stats_.answeredNative++;
}

bool Holds::AnswerHeld(std::map<uint64_t, Held>::iterator it, bool allow) {
  wd::Slot& slot = SlotOf(it->second);
  bool took = gate_.Answer(slot.fd, allow);
  // Answered first, taken second: should we stop in between, the watchdog answers too, and
  // the second answer fails harmlessly, as the fd still names this event.
  if (wd::Take(slot.state, wd::Word(wd::kOpen, it->second.gen), wd::kWatcher)) {
    close(slot.fd);
    Free(it);
  } else {
    it->second.told = took;
  }
  return took;
}

void Holds::Free(std::map<uint64_t, Held>::iterator it) {
  SlotOf(it->second).state.store(wd::kEmpty);
  free_.push_back(it->second.slot);
  // Lowest last: the slots in use stay low, and so does the watchdog's scan.
  std::sort(free_.begin(), free_.end(), std::greater<uint32_t>());
  held_.erase(it);
}

bool Holds::Answer(uint64_t cookie, bool allow) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = held_.find(cookie);
  if (it == held_.end() || wd::KindOf(SlotOf(it->second).state.load()) != wd::kOpen) return false;
  bool took = AnswerHeld(it, allow);
  if (took) stats_.answeredByJs++;
  return took;
}

bool Holds::SetExpiryVerdict(uint64_t cookie, bool allow) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = held_.find(cookie);
  if (it == held_.end() || wd::KindOf(SlotOf(it->second).state.load()) != wd::kOpen) return false;
  SlotOf(it->second).expiry.store((allow ? wd::kExpiryAllow : 0) | wd::kExpiryResolved);
  return true;
}

void Holds::Expire(Batch& out) {
  auto now = Clock::now();
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = held_.begin(); it != held_.end();) {
    auto next = std::next(it);
    wd::Slot& slot = SlotOf(it->second);
    if (it->second.deadline <= now && wd::KindOf(slot.state.load()) == wd::kOpen) {
      Record rec;
      rec.kind = RecordKind::GateExpired;
      rec.cookie = it->first;
      rec.allowed = slot.expiry.load() & wd::kExpiryAllow;
      if (AnswerHeld(it, rec.allowed)) {
        out.push_back(std::move(rec));
        stats_.expired++;
      }
    }
    it = next;
  }
}

void Holds::Settle(Batch& out) {
  std::lock_guard<std::mutex> lock(mu_);
  SettleLocked(out);
}

void Holds::SettleLocked(Batch& out) {
  for (auto it = held_.begin(); it != held_.end();) {
    auto next = std::next(it);
    wd::Slot& slot = SlotOf(it->second);
    uint32_t word = slot.state.load();
    if (wd::ByWatchdog(word) && !it->second.told) {
      it->second.told = true;
      Record rec;
      rec.kind = RecordKind::WatchdogAnswered;
      rec.cookie = it->first;
      rec.allowed = wd::Allows(word);
      out.push_back(std::move(rec));
      stats_.answeredByWatchdog++;
    }
    if (wd::IsDone(word)) {
      close(slot.fd);
      Free(it);
    }
    it = next;
  }
}

void Holds::Recover(Batch& out) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [cookie, h] : held_) {
    wd::Slot& slot = SlotOf(h);
    uint32_t word = slot.state.load();
    if (!wd::ByWatchdog(word) || wd::IsDone(word)) continue;
    // It may have written before it died: then ours fails, and its answer stands either way.
    gate_.Answer(slot.fd, wd::Allows(word));
    slot.state.store(wd::Done(wd::Allows(word)));
  }
  SettleLocked(out);
}

Holds::Clock::time_point Holds::NextDeadline() {
  std::lock_guard<std::mutex> lock(mu_);
  Clock::time_point next = Clock::time_point::max();
  for (const auto& [cookie, h] : held_)
    if (wd::KindOf(SlotOf(h).state.load()) == wd::kOpen) next = std::min(next, h.deadline);
  return next;
}

void Holds::AllowAll() {
  std::lock_guard<std::mutex> lock(mu_);
  while (!held_.empty()) {
    wd::Slot& slot = SlotOf(held_.begin()->second);
    gate_.Answer(slot.fd, true);
    close(slot.fd);
    Free(held_.begin());
  }
}

HoldStats Holds::Stats() {
  std::lock_guard<std::mutex> lock(mu_);
  HoldStats s = stats_;
  s.heldNow = held_.size();
  return s;
}

}  // namespace ocinotify
