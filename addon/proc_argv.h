// argv of a thread that is blocked inside execve(2) at the permission check,
// read from its old address space. At that moment /proc/PID/cmdline still
// shows the caller's argv, but /proc/PID/syscall names the execve arguments
// and /proc/PID/mem can read them. Used when no BPF record is available.
#pragma once
#include <sys/types.h>

#include "record.h"

namespace ocinotify {

// The most argv bytes execve(2) accepts (3/4 of _STK_LIM, whatever the stack
// rlimit): reading up to this much, an argv is never cut short.
constexpr size_t kMaxExecArgvBytes = 6 * 1024 * 1024;

// Fills argv (at most maxBytes of it), filename, flags (OCI_F_ARGS_TRUNCATED,
// OCI_F_EXECVEAT), euid, pid and ppid of rec; returns false if the thread is
// gone or not in execve.
bool ReadExecArgv(pid_t tid, Record& rec, size_t maxBytes = kMaxExecArgvBytes);

}  // namespace ocinotify
