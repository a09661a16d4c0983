#!/usr/bin/env python3
"""without-syscalls.py NAME=ERRNO... -- COMMAND ARGS...

Runs COMMAND with a seccomp filter that fails each named system call with that errno, as a
kernel without it (ENOSYS) or without one of its flags (EINVAL) would: how the tests show what
an older kernel gets, on this one. Everything else is allowed.
"""
import ctypes
import errno
import os
import platform
import struct
import sys

# The system calls the tests take away, by architecture (asm/unistd.h).
NUMBERS = {
    "x86_64": {"bpf": 321, "fanotify_init": 300, "fanotify_mark": 301, "pidfd_open": 434,
               "openat2": 437, "inotify_init1": 294, "inotify_add_watch": 254},
    "aarch64": {"bpf": 280, "fanotify_init": 262, "fanotify_mark": 263, "pidfd_open": 434,
                "openat2": 437, "inotify_init1": 26, "inotify_add_watch": 27},
}
AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}

BPF_LD_W_ABS, BPF_JEQ_K, BPF_RET_K = 0x20, 0x15, 0x06
SECCOMP_RET_KILL_PROCESS, SECCOMP_RET_ERRNO, SECCOMP_RET_ALLOW = 0x80000000, 0x00050000, 0x7FFF0000
PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2


def insn(code, jt, jf, k):
    return struct.pack("HBBI", code, jt, jf, k)


def program(arch, denied):
    numbers = NUMBERS[arch]
    out = [insn(BPF_LD_W_ABS, 0, 0, 4),  # seccomp_data.arch
           insn(BPF_JEQ_K, 1, 0, AUDIT_ARCH[arch]),
           insn(BPF_RET_K, 0, 0, SECCOMP_RET_KILL_PROCESS),
           insn(BPF_LD_W_ABS, 0, 0, 0)]  # seccomp_data.nr
    for name, err in denied:
        out.append(insn(BPF_JEQ_K, 0, 1, numbers[name]))
        out.append(insn(BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | err))
    out.append(insn(BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW))
    return b"".join(out)


def main(argv):
    split = argv.index("--")
    denied = [(name, getattr(errno, value)) for name, value in (a.split("=") for a in argv[:split])]
    code = program(platform.machine(), denied)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4
    buf = ctypes.create_string_buffer(code)
    fprog = struct.pack("HxxxxxxQ", len(code) // 8, ctypes.addressof(buf))
    fbuf = ctypes.create_string_buffer(fprog)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 or \
            libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(fbuf), 0, 0) != 0:
        sys.exit("without-syscalls: prctl: " + os.strerror(ctypes.get_errno()))
    os.execvp(argv[split + 1], argv[split + 1:])


if __name__ == "__main__":
    main(sys.argv[1:])
