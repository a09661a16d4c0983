#include "fanotify_gate.h"

#include <fcntl.h>
#include <sys/fanotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ocinotify {

FanotifyGate::~FanotifyGate() { Close(); }

std::string FanotifyGate::Open() {
  // FAN_REPORT_TID: the exec'ing thread is what the BPF side keys argv by.
  // FAN_UNLIMITED_QUEUE: an overflow would drop a permission event we must
  // answer; the queue is drained by a dedicated thread, so it stays short.
  fd_ = fanotify_init(FAN_CLASS_CONTENT | FAN_CLOEXEC | FAN_NONBLOCK | FAN_UNLIMITED_QUEUE |
                          FAN_UNLIMITED_MARKS | FAN_REPORT_TID,
                      O_RDONLY | O_LARGEFILE | O_CLOEXEC);
  if (fd_ < 0) return std::string("fanotify_init: ") + strerror(errno);
  return "";
}

std::string FanotifyGate::MarkFd(int fd) {
  if (fanotify_mark(fd_, FAN_MARK_ADD, FAN_OPEN_EXEC_PERM, fd, nullptr) != 0)
    return std::string("fanotify_mark: ") + strerror(errno);
  return "";
}

std::string FanotifyGate::UnmarkFd(int fd) {
  if (fanotify_mark(fd_, FAN_MARK_REMOVE, FAN_OPEN_EXEC_PERM, fd, nullptr) != 0)
    return std::string("fanotify_mark remove: ") + strerror(errno);
  return "";
}

ssize_t FanotifyGate::Read(void* buf, size_t size) { return read(fd_, buf, size); }

bool AnswerEvent(int groupFd, int eventFd, bool allow) {
  fanotify_response resp{eventFd, static_cast<uint32_t>(allow ? FAN_ALLOW : FAN_DENY)};
  // EINTR/EAGAIN do not happen for this write; ENOENT means another holder answered first.
  return write(groupFd, &resp, sizeof(resp)) == static_cast<ssize_t>(sizeof(resp));
}

void FanotifyGate::Close() {
  if (fd_ >= 0) close(fd_);  // the kernel allows everything still held
  fd_ = -1;
}

}  // namespace ocinotify
