// What the reactor hands to JavaScript: one flat, owned record per kernel fact.
#pragma once
#include <time.h>

#include <cstdint>
#include <string>
#include <vector>

#include <linux/types.h>

extern "C" {
#include "ocinotify.h"
}

namespace ocinotify {

enum class RecordKind {
  Exec,         // a runtime exec seen at the fanotify permission check (held or answered)
  RuntimeExec,  // sched_process_exec of a runtime binary
  InitExec,     // a container's entrypoint exec
  Exit,         // exit of a runtime, a container init or a never-started init
  GateExpired,  // a held exec was allowed by the deadline, not by JavaScript
  Lost,         // records the kernel or the reactor could not deliver
  Binary,       // a runtime binary appeared at a candidate path, or is gone from all of them
  ExecFailed,   // an exec that looked like a runtime's failed; status holds its errno
  WatchdogAnswered,  // a held exec the watchdog answered for a stalled reactor; allowed: its answer
  Watchdog,     // the watchdog stood in for a stalled reactor, handed back, exited or could not start
};

// Exec: whether the watchdog answered it at its permission check, and how.
enum class WatchdogVerdict { None, Allowed, Denied };

struct WatchdogFacts {
  std::string change;     // "takeover", "back", "exited", "unavailable"
  std::string message;
  uint64_t waitedNs = 0;  // takeover: how long the oldest exec it found pending had waited
  uint64_t allowed = 0, denied = 0;  // back: its answers the kernel took, while it stood in
  int32_t pid = 0;        // the watchdog's, when we spawned it
};

// Where an exec's argv came from.
enum class ArgvSource { None, EnterTracepoint, ExecTracepoint, ProcMem };

// Exec: the config.json read ahead for a held creation (spec_reader.h).
struct SpecRead {
  enum class State { None, Read, Failed, Slow };
  State state = State::None;
  std::string root, path;   // where it was read: procDir/root, the bundle's config.json
  std::vector<char> bytes;  // Read
  std::string error;        // Failed: an errno name, or ENOTREG/EFBIG
};

struct Record {
  RecordKind kind;
  oci_task task{};
  uint32_t flags = 0;
  uint64_t cookie = 0;       // Exec: non-zero while held; GateExpired: which one
  bool held = false;
  bool allowed = false;      // GateExpired, WatchdogAnswered: what the deadline or the watchdog answered
  WatchdogVerdict watchdog = WatchdogVerdict::None;  // Exec
  ArgvSource argvSource = ArgvSource::None;
  std::vector<std::string> argv;
  std::string filename;      // exec'd path as written, or entrypoint path
  std::string binary;        // Exec/RuntimeExec: the runtime binary's path as marked
  uint32_t sessionPid = 0;
  uint32_t runtimeMntns = 0;
  uint32_t exitKind = 0;
  int32_t status = 0;
  uint64_t count = 0;        // Lost
  std::string reason;        // Lost: what was lost
  // Binary: binary is its resolved path, filename the candidate path,
  // exitKind its enum oci_binary_kind; reason: why it could not be marked.
  std::string runtime;
  bool present = false;
  WatchdogFacts facts;       // Watchdog
  uint64_t specJob = 0;      // Exec: its read in the spec reader, until the record is delivered
  SpecRead spec;             // Exec
};

using Batch = std::vector<Record>;

// A record's time when no kernel record is behind it: the clock bpf_ktime_get_ns() reads.
inline uint64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + ts.tv_nsec;
}

std::vector<std::string> SplitArgs(const char* buf, size_t len);

}  // namespace ocinotify
