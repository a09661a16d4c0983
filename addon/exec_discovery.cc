#include "exec_discovery.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

namespace ocinotify {

namespace {

// fd on path if it is the file the kernel key names, else -1; file: its stat key.
int OpenIfKey(KernelKeys& keys, const std::string& path, const InodeKey& kernel, InodeKey& file) {
  int fd = open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) return -1;
  struct stat st;
  InodeKey opened;
  bool ok = fstat(fd, &st) == 0;
  if (ok) file = StatKey(st);
  // Without the kernel's key of the fd, stat's: the same on most filesystems, as Reactor::Key.
  if (ok && !keys.Of(fd, opened).empty()) opened = file;
  if (!ok || opened != kernel) {
    close(fd);
    fd = -1;
  }
  return fd;
}

}  // namespace

ExecutedBinary OpenExecuted(KernelKeys& keys, const std::string& procDir, const std::string& parentDir,
                            const std::string& execPath, const InodeKey& kernel) {
  ExecutedBinary b;
  std::string exe = procDir + "/exe";
  // The magic link opens the very file the process runs, whatever mount namespace it is in.
  b.fd = OpenIfKey(keys, exe, kernel, b.file);
  char path[PATH_MAX];
  ssize_t n = b.fd >= 0 ? readlink(exe.c_str(), path, sizeof(path) - 1) : -1;
  if (n > 0) {
    b.path.assign(path, n);
    return b;
  }
  if (b.fd >= 0) close(b.fd);
  b.fd = execPath.rfind('/', 0) == 0 ? OpenIfKey(keys, parentDir + "/root" + execPath, kernel, b.file) : -1;
  if (b.fd >= 0) b.path = execPath;
  return b;
}

}  // namespace ocinotify
