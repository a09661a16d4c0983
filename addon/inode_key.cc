#include "inode_key.h"

#include <sys/inotify.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>

namespace ocinotify {

InodeKey StatKey(const struct stat& st) {
  return {(static_cast<uint64_t>(major(st.st_dev)) << 20) | minor(st.st_dev), static_cast<uint64_t>(st.st_ino)};
}

KernelKeys::~KernelKeys() { Close(); }

std::string KernelKeys::Of(int fd, InodeKey& out) {
  if (fd_ < 0) fd_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd_ < 0) return std::string("inotify_init1: ") + strerror(errno);
  std::string self = "/proc/self/fd/" + std::to_string(fd);
  int wd = inotify_add_watch(fd_, self.c_str(), IN_DELETE_SELF);
  if (wd < 0) return "inotify_add_watch " + self + ": " + strerror(errno);
  std::string error = Read(wd, out);
  inotify_rm_watch(fd_, wd);
  // The removal queues an IN_IGNORED; nothing else is watched, so the queue holds only those.
  char buf[sizeof(inotify_event) * 16];
  while (read(fd_, buf, sizeof(buf)) > 0) {
  }
  return error;
}

// fs/notify/fdinfo.c: "inotify wd:%x ino:%lx sdev:%x mask:%x ..." per watch.
std::string KernelKeys::Read(int wd, InodeKey& out) {
  std::string path = "/proc/self/fdinfo/" + std::to_string(fd_);
  FILE* f = fopen(path.c_str(), "re");
  if (!f) return "open " + path + ": " + strerror(errno);
  char line[512];
  bool found = false;
  while (!found && fgets(line, sizeof(line), f)) {
    unsigned int lineWd, sdev;
    uint64_t ino;
    if (sscanf(line, "inotify wd:%x ino:%" SCNx64 " sdev:%x", &lineWd, &ino, &sdev) == 3 &&
        static_cast<int>(lineWd) == wd) {
      out = {sdev, ino};
      found = true;
    }
  }
  fclose(f);
  return found ? "" : path + " shows no inotify watch " + std::to_string(wd);
}

void KernelKeys::Close() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

}  // namespace ocinotify
