"""The process's programs: the registry, run statistics, closing off the critical path.

Every live :class:`~bpfnb.kernel.program.Program` is registered here, so ``%bpf list``
and ``%bpf stop --all`` see it and the interpreter's exit closes it (``atexit``).
While programs are loaded the kernel's run-time statistics are kept on.

Detaching a tracepoint program costs the kernel tens of milliseconds (RCU grace
periods). When a cell is re-run, the new version is already attached when the old one
is closed, so that wait need not be the user's: :func:`close_later` hands a loaded
object to one background *closer* thread (libbpf's detach runs in ctypes, without the
GIL). :func:`close_all` and the interpreter's exit wait for it, so nothing is left in
the kernel.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import queue
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from bpfnb.errors import BpfnbError
from bpfnb.kernel import bpf

if TYPE_CHECKING:
    from bpfnb.kernel.program import Program

_REGISTRY: dict[int, Program] = {}
_LOCK = threading.RLock()
_STATS_FD: int | None = None
_SYSCTL_STATS = Path("/proc/sys/kernel/bpf_stats_enabled")
_SYSCTL_RESTORE: str | None = None


def register(prog: Program) -> None:
    """Add a loaded program (turns run statistics on with the first one)."""
    with _LOCK:
        _REGISTRY[id(prog)] = prog
        _start_stats()


def unregister(prog: Program) -> None:
    """Remove a closed program (turns statistics off after the last one)."""
    with _LOCK:
        _REGISTRY.pop(id(prog), None)
        if not _REGISTRY:
            _stop_stats()


def programs() -> list[Program]:
    """Every live (not closed) program of this process, oldest first."""
    with _LOCK:
        return list(_REGISTRY.values())


def close_all() -> None:
    """Close every live program and wait until the kernel holds nothing of them."""
    for prog in programs():
        with contextlib.suppress(Exception):
            prog.close()
    wait_closed()


# -- run statistics ---------------------------------------------------------------------


def _start_stats() -> None:
    """Keep the kernel's run-time statistics on while programs are loaded.

    BPF_ENABLE_STATS (needs CAP_SYS_ADMIN) keeps them on while its fd is open; without
    it, the ``kernel.bpf_stats_enabled`` sysctl is set and restored at the end.
    """
    global _STATS_FD, _SYSCTL_RESTORE
    if _STATS_FD is not None or _SYSCTL_RESTORE is not None:
        return
    try:
        _STATS_FD = bpf.enable_stats()
        return
    except (OSError, BpfnbError):
        pass
    with contextlib.suppress(OSError):
        previous = _SYSCTL_STATS.read_text().strip()
        if previous != "1":
            _SYSCTL_STATS.write_text("1\n")
            _SYSCTL_RESTORE = previous


def _stop_stats() -> None:
    global _STATS_FD, _SYSCTL_RESTORE
    if _STATS_FD is not None:
        with contextlib.suppress(OSError):
            os.close(_STATS_FD)
        _STATS_FD = None
    if _SYSCTL_RESTORE is not None:
        with contextlib.suppress(OSError):
            _SYSCTL_STATS.write_text(_SYSCTL_RESTORE + "\n")
        _SYSCTL_RESTORE = None


# -- the closer ---------------------------------------------------------------------------


class _Closer:
    """One background thread that runs close jobs in order."""

    def __init__(self) -> None:
        self._jobs: queue.Queue[tuple[str, Callable[[], None]]] = queue.Queue()
        self._pending: list[str] = []
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None
        self.errors: list[BaseException] = []

    def submit(self, name: str, job: Callable[[], None]) -> None:
        with self._lock:
            self._pending.append(name)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="bpfnb-closer", daemon=True)
                self._thread.start()
        self._jobs.put((name, job))

    def _run(self) -> None:
        while True:
            name, job = self._jobs.get()
            try:
                job()
            except Exception as e:  # kept for the user; the thread goes on
                self.errors.append(e.with_traceback(None))
            finally:
                with self._lock:
                    self._pending.remove(name)
                    self._idle.notify_all()

    def pending(self) -> list[str]:
        with self._lock:
            return list(self._pending)

    def wait(self, timeout: float | None = None) -> bool:
        with self._lock:
            return self._idle.wait_for(lambda: not self._pending, timeout)


_CLOSER = _Closer()


def close_later(name: str, job: Callable[[], None]) -> None:
    """Run ``job`` (a detach + unload) on the closer thread."""
    _CLOSER.submit(name, job)


def closing() -> list[str]:
    """Names of the programs whose close is still running in the background."""
    return _CLOSER.pending()


def wait_closed(timeout: float | None = 30.0) -> bool:
    """Wait until every background close finished; False on timeout."""
    return _CLOSER.wait(timeout)


atexit.register(close_all)
