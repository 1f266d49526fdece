#!/usr/bin/env python3
"""freeze_thread.py TID READY THAW: stop one thread of a process, alone.

ptrace works per thread: PTRACE_SEIZE and PTRACE_INTERRUPT stop thread TID
and no other, with no signal sent. Once it is stopped, the file READY is
written; the thread runs again when the file THAW exists (or after 60 s).
Exits 1, saying why, when the thread cannot be stopped.
"""
import ctypes
import os
import sys
import time

PTRACE_DETACH = 17
PTRACE_SEIZE = 0x4206
PTRACE_INTERRUPT = 0x4207
WALL = 0x40000000

libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
libc.ptrace.restype = ctypes.c_long


def ptrace(req, tid):
    if libc.ptrace(req, tid, None, None) != 0:
        err = ctypes.get_errno()
        sys.exit("freeze_thread: ptrace(%#x, %d): %s" % (req, tid, os.strerror(err)))


def main():
    tid, ready, thaw = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    ptrace(PTRACE_SEIZE, tid)
    ptrace(PTRACE_INTERRUPT, tid)
    os.waitpid(tid, WALL)
    with open(ready, "w") as f:
        f.write("stopped\n")
    deadline = time.time() + 60
    while not os.path.exists(thaw) and time.time() < deadline:
        time.sleep(0.02)
    ptrace(PTRACE_DETACH, tid)


main()
