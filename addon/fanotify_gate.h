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

// Answers the event read with eventFd, on any holder of its group; false if the kernel
// took no answer (ENOENT: it was answered already).
bool AnswerEvent(int groupFd, int eventFd, bool allow);

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
  // One read(2) of queued events into buf; what it returned.
  ssize_t Read(void* buf, size_t size);
  // Whether the kernel took this answer; the caller closes eventFd.
  bool Answer(int eventFd, bool allow) { return AnswerEvent(fd_, eventFd, allow); }
  void Close();

 private:
  int fd_ = -1;
};

}  // namespace ocinotify
