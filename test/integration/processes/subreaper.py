# Runs a command as this process's child with this process a child subreaper that does not reap:
# the orphans the command leaves (a container's init, once `runc create` has exited) are
# reparented here and stay zombies after they exit, as under a busy shim or conmon. Prints
# "ran RC" once the command has exited; reaps everything and exits when stdin closes.
#   subreaper.py COMMAND [ARG...]
import ctypes
import os
import sys

PR_SET_CHILD_SUBREAPER = 36

libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
    sys.exit(f'prctl: {os.strerror(ctypes.get_errno())}')
child = os.fork()
if child == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
_, status = os.waitpid(child, 0)
print(f'ran {os.waitstatus_to_exitcode(status)}', flush=True)
sys.stdin.read()
while True:
    try:
        os.wait()
    except ChildProcessError:
        break
