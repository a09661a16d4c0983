#include "holds.h"

#include <algorithm>

namespace ocinotify {

Holds::Holds(FanotifyGate& gate, std::chrono::milliseconds timeout, uint32_t maxHeld)
    : gate_(gate), timeout_(timeout), maxHeld_(maxHeld) {}

uint64_t Holds::Add(int fd, bool allowOnExpiry) {
  std::lock_guard<std::mutex> lock(mu_);
  if (held_.size() >= maxHeld_) return 0;
  uint64_t cookie = nextCookie_++;
  held_[cookie] = {fd, Clock::now() + timeout_, allowOnExpiry};
  stats_.held++;
  return cookie;
}

void Holds::AllowNow(int fd) {
  std::lock_guard<std::mutex> lock(mu_);
  gate_.Answer(fd, true);
  stats_.answeredNative++;
}

bool Holds::Answer(uint64_t cookie, bool allow) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = held_.find(cookie);
  if (it == held_.end()) return false;
  gate_.Answer(it->second.fd, allow);
  held_.erase(it);
  stats_.answeredByJs++;
  return true;
}

bool Holds::SetExpiryVerdict(uint64_t cookie, bool allow) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = held_.find(cookie);
  if (it == held_.end()) return false;
  it->second.allowOnExpiry = allow;
  return true;
}

void Holds::Expire(Batch& out) {
  auto now = Clock::now();
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = held_.begin(); it != held_.end();) {
    if (it->second.deadline > now) {
      ++it;
      continue;
    }
    gate_.Answer(it->second.fd, it->second.allowOnExpiry);
    Record rec;
    rec.kind = RecordKind::GateExpired;
    rec.cookie = it->first;
    rec.allowed = it->second.allowOnExpiry;
    out.push_back(std::move(rec));
    stats_.expired++;
    it = held_.erase(it);
  }
}

Holds::Clock::time_point Holds::NextDeadline() {
  std::lock_guard<std::mutex> lock(mu_);
  Clock::time_point next = Clock::time_point::max();
  for (const auto& [cookie, h] : held_) next = std::min(next, h.deadline);
  return next;
}

void Holds::AllowAll() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [cookie, h] : held_) gate_.Answer(h.fd, true);
  held_.clear();
}

HoldStats Holds::Stats() {
  std::lock_guard<std::mutex> lock(mu_);
  HoldStats s = stats_;
  s.heldNow = held_.size();
  return s;
}

}  // namespace ocinotify
