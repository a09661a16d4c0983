// The memory the reactor and its watchdog share: one memfd, mapped by both. The
// watchdog is another process (addon/watchdog_serve.h) holding the same fanotify
// group; it stands in when the reactor makes no progress (its process stopped,
// traced, frozen or starved) and answers what is pending with the timeout policy.
//
// Kernel facts this rests on: a fanotify_response names an event by the integer
// fd it was read with, and the kernel matches it against the group's list of
// events read and not yet answered, whoever writes it; a second answer to the
// same event fails with ENOENT. So:
// - Every event the reactor reads is published here before it can be held: the
//   reactor reads into a buffer in this memory (the kernel writes the fds there),
//   and holds live in slots here. The watchdog answers them by those numbers.
// - Either side may answer a published event; a second answer is harmless as long
//   as its fd number still names the same event. The reactor closes an event's fd
//   (freeing its number for reuse) only once the watchdog can no longer act on it:
//   each published event carries a state word, claimed by compare-and-swap.
// - fd numbers are per process: two events in the list may carry the same number
//   if both sides read. Only one side reads at a time (owner, reading: a Dekker
//   handshake), and the watchdog answers every event the reactor published before
//   it reads any itself. Should the reactor have been stopped inside its read, it
//   may read once more when it runs again: the watchdog then keeps its own event
//   fds above every number the reactor can be given (watchdog_serve.cc).
#pragma once
#include <linux/fanotify.h>
#include <pthread.h>
#include <time.h>

#include <atomic>
#include <cstdint>
#include <cstring>

namespace ocinotify::wd {

constexpr uint32_t kMagic = 0x6f636e77;  // "ocnw"
constexpr uint32_t kVersion = 1;
// At least the reactor's maxHeld (src/watcher/index.ts): one slot per held exec.
constexpr uint32_t kSlots = 4096;
constexpr uint32_t kReadBytes = 4096;
// Without info records (no FAN_REPORT_FID), every event is one metadata struct.
constexpr uint32_t kReadEntries = kReadBytes / FAN_EVENT_METADATA_LEN;
constexpr uint32_t kLogEntries = 4096;
constexpr uint32_t kBinaries = 64;
constexpr uint32_t kVerbBytes = 256;
// The reactor reads into one of these; a buffer the watchdog still answers from is not reused.
constexpr uint32_t kWatcherBuffers = 2;

// A published event's state word (slots and read buffer entries alike): its kind in the
// low byte, and above it the record's generation (an open one: a claim cannot land on a
// record reused meanwhile) or, for kMoved, the slot the event moved to.
enum State : uint32_t {
  kEmpty = 0,       // nothing here
  kOpen = 1,        // unanswered: either side may take it
  kWatcher = 2,     // the reactor took it: the watchdog leaves it alone
  kClaimDeny = 3,   // the watchdog took it and is writing this answer
  kClaimAllow = 4,
  kDoneDeny = 5,    // the watchdog has written its answer
  kDoneAllow = 6,
  kPending = 7,     // a slot being filled: the watchdog reaches it only through its kMoved entry
  kMoved = 8,       // a read entry whose event is held: see the slot above the low byte
};

inline uint32_t KindOf(uint32_t word) { return word & 0xff; }
inline uint32_t TagOf(uint32_t word) { return word >> 8; }
inline uint32_t Word(uint32_t kind, uint32_t tag) { return kind | (tag << 8); }
constexpr uint32_t kGenerations = 1u << 24;

inline uint32_t Claimed(bool allow) { return allow ? kClaimAllow : kClaimDeny; }
inline uint32_t Done(bool allow) { return allow ? kDoneAllow : kDoneDeny; }
inline bool ByWatchdog(uint32_t word) { return KindOf(word) >= kClaimDeny && KindOf(word) <= kDoneAllow; }
inline bool IsDone(uint32_t word) { return KindOf(word) == kDoneDeny || KindOf(word) == kDoneAllow; }
inline bool Allows(uint32_t word) { return KindOf(word) == kClaimAllow || KindOf(word) == kDoneAllow; }
// Whether the watchdog may still write an answer for this record.
inline bool Unsettled(uint32_t word) {
  uint32_t k = KindOf(word);
  return k == kOpen || k == kPending || k == kClaimDeny || k == kClaimAllow;
}

// Moves a record from the word seen to the next one; false if the other side changed it first.
inline bool Take(std::atomic<uint32_t>& state, uint32_t seen, uint32_t next) {
  return state.compare_exchange_strong(seen, next);
}

enum Owner : uint32_t { kReactorReads = 0, kWatchdogReads = 1 };

// What a held exec gets if nobody else answers it: allowed, and whether JavaScript said so
// (else it is the watcher-wide default, which the watchdog does not take for a creation).
constexpr uint32_t kExpiryAllow = 1, kExpiryResolved = 2;

struct Slot {
  std::atomic<uint32_t> state;
  std::atomic<uint32_t> expiry;     // kExpiry*
  int32_t fd;                       // in the reactor's fd table
  int64_t deadlineNs;               // CLOCK_MONOTONIC
};

struct ReadBuffer {
  std::atomic<uint32_t> states[kReadEntries];
  // What read(2) of the group wrote: the kernel writes here directly, so an event
  // is published the moment the read returns.
  alignas(8) unsigned char bytes[kReadBytes];
};

// An event the watchdog read and answered itself; seq is written last.
struct LogEntry {
  std::atomic<uint64_t> seq;  // index + 1 once written
  int32_t tid;                // as fanotify reported it to the watchdog
  uint32_t allowed;           // its answer
  uint64_t ns;                // CLOCK_MONOTONIC when it answered
  uint64_t dev;               // the exec'd binary, in the kernel's dev_t encoding (inode_key.h)
  uint64_t ino;
};

struct BinaryKey {
  uint64_t dev;  // in the kernel's dev_t encoding (inode_key.h)
  uint64_t ino;
  uint32_t kind;  // enum oci_binary_kind
  uint32_t unused;
};

struct Shared {
  uint32_t magic;
  uint32_t version;

  // Written once by the reactor before any watchdog starts.
  int64_t budgetNs;
  uint32_t allowCreations;  // what the watchdog answers a creation: the policy, with no bundle read
  char verbs[kVerbBytes];   // creation verbs, "", start verbs, "": NUL-separated

  // The reactor's runtime binaries and their kinds (conmon is no runtime): a seqlock, odd while written.
  std::atomic<uint32_t> binariesSeq;
  uint32_t binaryCount;
  BinaryKey binaries[kBinaries];

  // Held by the reactor thread for as long as it runs: a robust mutex, which the kernel hands
  // to a waiter (EOWNERDEAD) as that thread exits, before the dying process closes any file.
  pthread_mutex_t reactorAlive;
  std::atomic<uint64_t> heartbeat;  // the reactor's loop turns
  std::atomic<uint32_t> owner;      // Owner
  std::atomic<uint32_t> reading;    // the reactor is between its owner check and the end of its read's processing
  std::atomic<uint32_t> slotsHigh;  // one past the highest slot ever used

  // The watchdog's account of its last takeover, complete before it hands the group back.
  std::atomic<uint64_t> takeovers;
  std::atomic<uint64_t> takeoverNs;
  std::atomic<uint64_t> stalledNs;  // how long the reactor had made no progress
  std::atomic<uint64_t> backNs;
  std::atomic<uint64_t> allowed;    // answers that took effect, this takeover
  std::atomic<uint64_t> denied;

  std::atomic<uint64_t> logHead;
  LogEntry log[kLogEntries];
  Slot slots[kSlots];
  ReadBuffer watcherRead[kWatcherBuffers];
  ReadBuffer watchdogRead;
};

// The event at entry i of a read buffer, if the kernel wrote one there (a reset buffer is zeros).
inline bool EventAt(const ReadBuffer& buffer, uint32_t i, int& fd, int& tid) {
  fanotify_event_metadata md;
  memcpy(&md, buffer.bytes + i * FAN_EVENT_METADATA_LEN, sizeof(md));
  if (md.event_len != FAN_EVENT_METADATA_LEN || md.vers != FANOTIFY_METADATA_VERSION || md.fd < 0) return false;
  fd = md.fd;
  tid = md.pid;
  return true;
}

// What one side tells the other over their socket, one byte each.
enum Message : char {
  kTookOver = 'T',  // watchdog: the reactor stalled, the watchdog reads the group now
  kHandedBack = 'H',  // watchdog: the reactor reads again
  kSettledSome = 'D',  // watchdog: records it took are answered, their fds may close
  kWantBack = 'B',  // reactor: it runs again
};

}  // namespace ocinotify::wd
