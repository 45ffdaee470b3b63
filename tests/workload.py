"""Workloads whose answer is known: exact numbers of syscalls from a helper process.

Run as ``python tests/workload.py getpid N`` (or import and call the functions). The
helper process prints its pid, waits for a line on stdin (so the caller can read the
pid first), makes exactly N calls, prints ``done`` and exits.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys

_libc = ctypes.CDLL(None, use_errno=True)
SYS_getpid = 39
SYS_getppid = 110
SYS_getuid = 102


def raw_syscalls(number: int, n: int) -> None:
    """Make exactly ``n`` raw syscalls ``number`` (no libc caching)."""
    call = _libc.syscall
    for _ in range(n):
        call(number)


PR_SET_NAME = 15


def set_comm(comm: str) -> None:
    """Name this process's thread ``comm`` (what ``bpf_get_current_comm`` reads)."""
    _libc.prctl(PR_SET_NAME, comm.encode()[:15], 0, 0, 0)


class Workload:
    """A helper process that makes an exact number of syscalls on demand.

    Parameters
    ----------
    comm : str, optional
        The process's comm (at most 15 bytes), to tell its events from others'.
    """

    def __init__(self, comm: str | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "serve", *([comm] if comm else [])],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.pid = int(self.proc.stdout.readline())

    def run(self, syscall: str, n: int) -> None:
        """Make exactly ``n`` calls of ``syscall`` (getpid, getppid, getuid) and wait."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"{syscall} {n}\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().strip() == "done"

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=10)

    def __enter__(self) -> Workload:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _serve(comm: str | None = None) -> None:
    if comm:
        set_comm(comm)
    numbers = {"getpid": SYS_getpid, "getppid": SYS_getppid, "getuid": SYS_getuid}
    print(os.getpid(), flush=True)
    for line in sys.stdin:
        name, count = line.split()
        raw_syscalls(numbers[name], int(count))
        print("done", flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        _serve(sys.argv[2] if len(sys.argv) > 2 else None)
    else:
        raw_syscalls({"getpid": SYS_getpid}[sys.argv[1]], int(sys.argv[2]))
