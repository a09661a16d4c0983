// The fanotify group that holds every exec of a runtime binary until it is
// answered. Owns the group fd; closing it (or dying) lets every held exec go.
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace ocinotify {

struct PermEvent {
  int fd;          // the runtime binary, opened for us by the kernel
  pid_t tid;       // the exec'ing thread in our pid namespace, 0 if invisible
};

class FanotifyGate {
 public:
  ~FanotifyGate();
  // Returns "" on success, else why permission events are unavailable.
  std::string Open();
  // Returns "" on success, else why the file fd is open on cannot be marked. Through an fd:
  // what is marked is what was looked at, and a replaced binary has no path.
  std::string MarkFd(int fd);
  std::string UnmarkFd(int fd);
  int Fd() const { return fd_; }
  // Appends every queued event; returns the number of overflow events seen.
  uint64_t Read(std::vector<PermEvent>& out);
  void Answer(int eventFd, bool allow);
  void Close();

 private:
  int fd_ = -1;
};

}  // namespace ocinotify
