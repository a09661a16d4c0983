// Which runtime execs are held, by verb: the one rule the reactor and its watchdog share.
#pragma once
#include <string>
#include <vector>

#include "record.h"

namespace ocinotify {

// The verbs whose execs are held, as JavaScript gives them (src/argv.ts): a
// creation's for its verdict, a start's as an ordering barrier (reactor.cc).
// Without start verbs, starts are answered at once.
struct HoldVerbs {
  std::vector<std::string> create;
  std::vector<std::string> start;
};

enum class Hold { None, Create, Start };

// Everything else the runtimes are exec'd for (kill, delete, state, init, ...) is
// answered without a trip through JavaScript. This is a prefilter: an argument that
// merely equals a verb (a container named "create") costs a hold, never a miss; the
// exact parse is the TypeScript argv parser's.
Hold HoldFor(const Record& rec, const HoldVerbs& verbs);

// Whether an exec is held at all: by real root, with its argv known, for a held verb.
inline bool Holdable(const Record& rec, Hold verb) {
  return rec.task.euid == 0 && rec.argvSource != ArgvSource::None && verb != Hold::None;
}

}  // namespace ocinotify
