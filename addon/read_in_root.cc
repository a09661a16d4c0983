#include "read_in_root.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ocinotify {

int OpenAt2(int dirfd, const char* path, uint64_t flags, uint64_t resolve) {
  open_how how{};
  how.flags = flags;
  how.resolve = resolve;
  return static_cast<int>(syscall(SYS_openat2, dirfd, path, &how, sizeof(how)));
}

namespace {

struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) close(fd);
  }
};

}  // namespace

bool ReadFileInRoot(const std::string& root, const std::string& path, size_t maxBytes,
                    std::vector<char>& out, std::string& code) {
  auto fail = [&code](const char* c) {
    code = c;
    return false;
  };
  auto failErrno = [&code]() {
    const char* name = strerrorname_np(errno);
    code = name ? name : "EIO";
    return false;
  };
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : path.substr(0, slash);
  std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  if (dir.empty()) dir = "/";
  if (name.empty() || name == "." || name == "..") return fail("EINVAL");

  Fd rootFd{open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC)};
  if (rootFd.fd < 0) return failErrno();
  Fd dirFd{OpenAt2(rootFd.fd, dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC,
                   RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)};
  if (dirFd.fd < 0) return failErrno();
  // O_PATH first: opening a FIFO, a socket or a device for reading can block
  // or act (a tape rewinds, a watchdog arms); only a regular file is opened.
  Fd where{OpenAt2(dirFd.fd, name.c_str(), O_PATH | O_CLOEXEC, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)};
  if (where.fd < 0) return failErrno();
  struct stat st;
  if (fstat(where.fd, &st) != 0) return failErrno();
  if (S_ISDIR(st.st_mode)) return fail("EISDIR");
  if (!S_ISREG(st.st_mode)) return fail("ENOTREG");
  if (static_cast<size_t>(st.st_size) > maxBytes) return fail("EFBIG");
  // Reopening through the O_PATH fd reopens that very inode, whatever the
  // path names by now.
  std::string self = "/proc/self/fd/" + std::to_string(where.fd);
  Fd file{open(self.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)};
  if (file.fd < 0) return failErrno();
  // The size can change under us: read at most maxBytes + 1 to notice growth.
  out.resize(maxBytes + 1 > static_cast<size_t>(st.st_size) + 1 ? st.st_size + 1 : maxBytes + 1);
  size_t got = 0;
  while (got < out.size()) {
    ssize_t n = read(file.fd, out.data() + got, out.size() - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      return failErrno();
    }
    if (n == 0) break;
    got += n;
    if (got == out.size() && got <= maxBytes) out.resize(std::min(maxBytes + 1, out.size() * 2));
  }
  if (got > maxBytes) return fail("EFBIG");
  out.resize(got);
  return true;
}

}  // namespace ocinotify
