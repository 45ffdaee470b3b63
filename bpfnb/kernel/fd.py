"""One owning handle per kernel file descriptor, shared by every view of the object.

A raw fd number is only meaningful while it is open: once closed, the next ``open``
may reuse the number for something else entirely, and a view that kept the number
would read (or write!) that other thing. bpfnb therefore never hands raw fd numbers
around. The loader wraps each map fd it keeps in an :class:`OwnedFd`; a map view, its
program's ``globals`` and a ring buffer consumer all hold the *same* handle, and
:meth:`OwnedFd.get` is the only way to the number. When the program closes, it closes
the handle once, and every holder's next use raises :class:`~bpfnb.errors.ClosedError`
with a message that says what happened.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

from bpfnb.errors import ClosedError

_close = os.close  # kept for __del__ at interpreter shutdown


class OwnedFd:
    """A file descriptor owned by bpfnb, closed exactly once.

    Parameters
    ----------
    fd : int
        The descriptor; from now on this object closes it.
    what : str
        What it is, for messages (``map 'counts' of program 'syscalls'``).

    Examples
    --------
    >>> import os
    >>> handle = OwnedFd(os.dup(0), "stdin copy")
    >>> handle.get() >= 0
    True
    >>> handle.close(); handle.closed
    True
    """

    __slots__ = ("_fd", "_lock", "_on_close", "what")

    def __init__(self, fd: int, what: str) -> None:
        if fd < 0:
            raise ValueError(f"{what}: invalid fd {fd}")
        self._fd = fd
        self.what = what
        self._lock = threading.Lock()
        self._on_close: list[Callable[[], None]] = []

    @classmethod
    def dup(cls, fd: int, what: str) -> OwnedFd:
        """Own a duplicate of ``fd`` (close-on-exec); the original stays with its owner."""
        return cls(os.dup(fd), what)

    def get(self) -> int:
        """Return the fd number.

        Raises
        ------
        ClosedError
            When the handle was closed (its program was stopped or replaced).
        """
        fd = self._fd
        if fd < 0:
            raise ClosedError(
                f"{self.what} is closed: its program was stopped or replaced "
                "(use the maps of the program loaded now)"
            )
        return fd

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` ran."""
        return self._fd < 0

    def on_close(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` just before the fd closes (e.g. to unmap what was mapped
        through it: a mapping keeps the kernel object alive after the fd is gone)."""
        with self._lock:
            self._on_close.append(callback)

    def close(self) -> None:
        """Close the fd (idempotent, thread-safe)."""
        with self._lock:
            fd, self._fd = self._fd, -1
            callbacks, self._on_close = self._on_close, []
        try:
            for callback in callbacks:
                callback()
        finally:
            if fd >= 0:
                _close(fd)

    def __del__(self) -> None:
        fd = getattr(self, "_fd", -1)
        if fd >= 0:
            self._fd = -1
            try:  # noqa: SIM105 - no contextlib lookups at interpreter shutdown
                _close(fd)
            except OSError:
                pass

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"fd {self._fd}"
        return f"<OwnedFd {self.what}: {state}>"
