# Stops the threads of a process the way a debugger does: PTRACE_SEIZE, then PTRACE_INTERRUPT,
# each thread in a ptrace-stop, no signal sent. Prints "stopped" once all are; detaches (and they
# run again) when stdin closes, after --for SECONDS, or when this process dies (the kernel
# detaches then).
#   ptrace-stop.py PID [--only THREAD-NAME] [--for SECONDS]
import argparse
import ctypes
import os
import select
import sys

PTRACE_DETACH, PTRACE_SEIZE, PTRACE_INTERRUPT = 17, 0x4206, 0x4207
WALL = 0x40000000

libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]


def ptrace(request, tid):
    if libc.ptrace(request, tid, None, None) != 0:
        raise OSError(ctypes.get_errno(), f'ptrace {request:#x} {tid}')


def wanted(pid, tid, only):
    if only is None:
        return True
    with open(f'/proc/{pid}/task/{tid}/comm') as f:
        return f.read().strip() == only


args = argparse.ArgumentParser()
args.add_argument('pid', type=int)
args.add_argument('--only')
args.add_argument('--for', dest='seconds', type=float)
opts = args.parse_args()
seized = []
# Threads started while we seize the others are caught by the next pass.
while True:
    fresh = [int(t) for t in os.listdir(f'/proc/{opts.pid}/task') if int(t) not in seized and wanted(opts.pid, t, opts.only)]
    if not fresh:
        break
    for tid in fresh:
        ptrace(PTRACE_SEIZE, tid)
        ptrace(PTRACE_INTERRUPT, tid)
        os.waitpid(tid, WALL)
        seized.append(tid)
if not seized:
    sys.exit(f'no thread of {opts.pid} to stop')
print('stopped', flush=True)
select.select([sys.stdin], [], [], opts.seconds)
for tid in seized:
    ptrace(PTRACE_DETACH, tid)
