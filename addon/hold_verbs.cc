#include "hold_verbs.h"

#include <algorithm>

namespace ocinotify {

namespace {

bool Names(const std::vector<std::string>& verbs, const std::string& arg) {
  return std::find(verbs.begin(), verbs.end(), arg) != verbs.end();
}

}  // namespace

Hold HoldFor(const Record& rec, const HoldVerbs& verbs) {
  if (rec.flags & OCI_F_MONITOR) return Hold::None;
  Hold hold = Hold::None;
  for (size_t i = 1; i < rec.argv.size(); i++) {
    if (Names(verbs.create, rec.argv[i])) return Hold::Create;
    if (Names(verbs.start, rec.argv[i])) hold = Hold::Start;
  }
  return hold;
}

}  // namespace ocinotify
