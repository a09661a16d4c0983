// Each kernel mechanism ocinotify relies on, tried on the running kernel by itself: what
// `ocinotify doctor` reports. The names are those of src/cli/mechanisms.ts, which says what
// each is for, since which Linux, and what happens without it.
#pragma once
#include <string>
#include <vector>

namespace ocinotify {

struct Mechanism {
  std::string name;
  std::string error;  // "" when the kernel has it
};

std::vector<Mechanism> ProbeKernel();

}  // namespace ocinotify
