#include "proc_argv.h"

#include <fcntl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
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
  char chunk[4096];
  while (out.size() < limit) {
    ssize_t n = pread(mem, chunk, std::min(sizeof(chunk), limit - out.size() + 1),
                      static_cast<off_t>(addr + out.size()));
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

// The argv pointer array, a block at a time: one pread per 512 arguments.
class PointerReader {
 public:
  PointerReader(int mem, uint64_t base) : mem_(mem), base_(base) {}
  // The i-th pointer; 0 at the terminating NULL or when unreadable.
  uint64_t At(size_t i) {
    if (i < first_ || i >= first_ + count_) {
      first_ = i;
      ssize_t n = pread(mem_, block_, sizeof(block_), static_cast<off_t>(base_ + i * sizeof(uint64_t)));
      count_ = n > 0 ? static_cast<size_t>(n) / sizeof(uint64_t) : 0;
      if (count_ == 0) return 0;
    }
    return block_[i - first_];
  }

 private:
  int mem_;
  uint64_t base_;
  uint64_t block_[512];
  size_t first_ = 0, count_ = 0;
};

// /proc/TID/syscall names the syscall only once the task sleeps in it. The permission event is
// queued just before the exec'ing task goes to sleep waiting for our answer: on a busy machine
// we can read it first, and see "running". It sleeps within microseconds; 2 ms is plenty.
bool ReadBlockedSyscall(const std::string& base, std::string& line) {
  for (int attempt = 0; attempt < 40; attempt++) {
    if (!ReadSmallFile(base + "/syscall", line)) return false;
    if (line.compare(0, 7, "running") != 0) return true;
    timespec pause{0, 50 * 1000};
    nanosleep(&pause, nullptr);
  }
  return false;
}

}  // namespace

bool ReadExecArgv(pid_t tid, Record& rec, size_t maxBytes) {
  std::string base = "/proc/" + std::to_string(tid);
  std::string line, status;
  if (!ReadBlockedSyscall(base, line) || !ReadSmallFile(base + "/status", status)) return false;
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
  ReadString(mem, filenameAddr, OCI_FILENAME_LEN, rec.filename, truncated);
  truncated = false;
  // Every argument costs at least its NUL: maxBytes also bounds the count.
  size_t budget = maxBytes;
  PointerReader argv(mem, argvAddr);
  rec.argv.clear();
  for (size_t i = 0;; i++) {
    uint64_t ptr = argv.At(i);
    if (ptr == 0) break;
    if (budget == 0) {
      truncated = true;
      break;
    }
    std::string arg;
    if (!ReadString(mem, ptr, budget - 1, arg, truncated)) break;
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
