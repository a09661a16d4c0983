#include "proc_argv.h"

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

namespace ocinotify {

namespace {

bool ReadSmallFile(const std::string& path, std::string& out) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[4096];
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n <= 0) return false;
  out.assign(buf, n);
  return true;
}

bool StatusField(const std::string& status, const char* key, uint32_t& value, int column) {
  size_t at = status.find(key);
  if (at == std::string::npos) return false;
  const char* p = status.c_str() + at + strlen(key);
  unsigned long v = 0;
  for (int i = 0; i <= column; i++) {
    char* end;
    v = strtoul(p, &end, 10);
    if (end == p) return false;
    p = end;
  }
  value = static_cast<uint32_t>(v);
  return true;
}

// Reads a NUL-terminated string of at most limit bytes at addr.
bool ReadString(int mem, uint64_t addr, size_t limit, std::string& out, bool& truncated) {
  out.clear();
  char chunk[256];
  while (out.size() < limit) {
    ssize_t n = pread(mem, chunk, sizeof(chunk), static_cast<off_t>(addr + out.size()));
    if (n <= 0) return false;
    void* nul = memchr(chunk, 0, n);
    if (nul) {
      out.append(chunk, static_cast<char*>(nul) - chunk);
      return true;
    }
    out.append(chunk, n);
  }
  out.resize(limit);
  truncated = true;
  return true;
}

}  // namespace

bool ReadExecArgv(pid_t tid, Record& rec) {
  std::string base = "/proc/" + std::to_string(tid);
  std::string line, status;
  if (!ReadSmallFile(base + "/syscall", line) || !ReadSmallFile(base + "/status", status))
    return false;
  unsigned long nr = 0;
  unsigned long long a[6] = {};
  if (sscanf(line.c_str(), "%lu %llx %llx %llx %llx %llx %llx", &nr, &a[0], &a[1], &a[2], &a[3],
             &a[4], &a[5]) < 4)
    return false;
  uint64_t filenameAddr, argvAddr;
  if (nr == SYS_execve) {
    filenameAddr = a[0];
    argvAddr = a[1];
  } else if (nr == SYS_execveat) {
    filenameAddr = a[1];
    argvAddr = a[2];
    rec.flags |= OCI_F_EXECVEAT;
  } else {
    return false;
  }
  int mem = open((base + "/mem").c_str(), O_RDONLY | O_CLOEXEC);
  if (mem < 0) return false;
  bool truncated = false;
  size_t budget = OCI_ARGS_BYTES;
  ReadString(mem, filenameAddr, OCI_FILENAME_LEN, rec.filename, truncated);
  truncated = false;
  for (int i = 0; i < OCI_MAX_ARGS; i++) {
    uint64_t ptr = 0;
    if (pread(mem, &ptr, sizeof(ptr), static_cast<off_t>(argvAddr + i * sizeof(ptr))) !=
            sizeof(ptr) ||
        ptr == 0)
      break;
    if (budget == 0 || i == OCI_MAX_ARGS - 1) {
      truncated = true;
      break;
    }
    std::string arg;
    if (!ReadString(mem, ptr, budget, arg, truncated)) break;
    budget -= std::min(budget, arg.size() + 1);
    rec.argv.push_back(std::move(arg));
  }
  close(mem);
  if (truncated) rec.flags |= OCI_F_ARGS_TRUNCATED;
  uint32_t tgid = 0, ppid = 0, euid = 0;
  StatusField(status, "\nTgid:", tgid, 0);
  StatusField(status, "\nPPid:", ppid, 0);
  StatusField(status, "\nUid:", euid, 1);
  rec.task.vpid = tgid;
  rec.task.vtid = tid;
  rec.task.ppid = ppid;
  rec.task.euid = euid;
  rec.argvSource = ArgvSource::ProcMem;
  return true;
}

}  // namespace ocinotify
