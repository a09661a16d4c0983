#include "exec_discovery.h"

#include <fcntl.h>
#include <limits.h>
#include <unistd.h>

namespace ocinotify {

ExecutedBinary OpenExecuted(const std::string& procDir, const BinaryKey& key) {
  ExecutedBinary b;
  std::string exe = procDir + "/exe";
  // The magic link opens the very file the process runs, whatever mount namespace it is in.
  b.fd = open(exe.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (b.fd < 0) return b;
  BinaryKey opened;
  char path[PATH_MAX];
  ssize_t n = readlink(exe.c_str(), path, sizeof(path) - 1);
  if (!KeyOfFd(b.fd, opened) || !(opened == key) || n <= 0) {
    close(b.fd);
    b.fd = -1;
    return b;
  }
  b.path.assign(path, n);
  return b;
}

}  // namespace ocinotify
