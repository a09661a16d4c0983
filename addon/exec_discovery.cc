#include "exec_discovery.h"

#include <fcntl.h>
#include <limits.h>
#include <unistd.h>

namespace ocinotify {

namespace {

// fd on path if it is the file key names, else -1.
int OpenIfKey(const std::string& path, const BinaryKey& key) {
  int fd = open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  BinaryKey opened;
  if (fd >= 0 && (!KeyOfFd(fd, opened) || !(opened == key))) {
    close(fd);
    fd = -1;
  }
  return fd;
}

}  // namespace

ExecutedBinary OpenExecuted(const std::string& procDir, const std::string& parentDir, const std::string& execPath,
                            const BinaryKey& key) {
  ExecutedBinary b;
  std::string exe = procDir + "/exe";
  // The magic link opens the very file the process runs, whatever mount namespace it is in.
  b.fd = OpenIfKey(exe, key);
  char path[PATH_MAX];
  ssize_t n = b.fd >= 0 ? readlink(exe.c_str(), path, sizeof(path) - 1) : -1;
  if (n > 0) {
    b.path.assign(path, n);
    return b;
  }
  if (b.fd >= 0) close(b.fd);
  b.fd = execPath.rfind('/', 0) == 0 ? OpenIfKey(parentDir + "/root" + execPath, key) : -1;
  if (b.fd >= 0) b.path = execPath;
  return b;
}

}  // namespace ocinotify
