"""The refresh thread of live views, and the registry of one thread per owner.

Every view of one program is refreshed by ONE background thread (:class:`Refresher`),
so views keep moving while another cell runs. The thread stops when its owner closes
(the program's ``on_close`` callback, or the owner reporting ``closed``) or when
:meth:`Refresher.stop` is called (the dashboard's Stop button).

:func:`refresher_for` keeps one refresher per owner: the program of the views, or a
map opened on its own. Owners are told apart by identity, never looked up in the
kernel layer's registry.

This module knows nothing of what a view shows: it calls :meth:`Refreshable.refresh`
and, once the thread ends, :meth:`Refreshable.finish`.
"""

from __future__ import annotations

import contextlib
import threading
import time
import weakref
from collections.abc import Callable
from typing import Protocol

__all__ = [
    "DEFAULT_INTERVAL",
    "MIN_INTERVAL",
    "RefreshOwner",
    "Refreshable",
    "Refresher",
    "refresher_for",
]

#: The shortest refresh period accepted (seconds).
MIN_INTERVAL = 0.05
#: The refresh period of a new refresher when none is asked for (seconds).
DEFAULT_INTERVAL = 1.0

CloseHook = Callable[[Callable[[], None]], None]


class Refreshable(Protocol):
    """What a refresher drives: a view reading its source."""

    def refresh(self) -> None:
        """Read the source and update (must not raise)."""
        ...

    def finish(self, note: str = "stopped") -> None:
        """Mark the view as no longer refreshing."""
        ...


class RefreshOwner(Protocol):
    """What a refresher reads of its owner (a program, or a map opened on its own)."""

    @property
    def name(self) -> str:
        """Names the thread (``bpfnb-refresh-NAME``)."""
        ...

    @property
    def closed(self) -> bool:
        """True once the owner is closed: the thread then stops."""
        ...


class Refresher:
    """The one background thread refreshing every view of a program.

    Parameters
    ----------
    name : str
        Thread name suffix (the program's name).
    interval : float
        Seconds between refreshes (at least :data:`MIN_INTERVAL`).
    is_closed : callable, optional
        Returns True once the program is closed; the thread then stops.

    Attributes
    ----------
    refreshes : int
        Refresh passes done.
    last_seconds : float
        Wall time of the last pass.
    """

    def __init__(
        self,
        name: str,
        interval: float = DEFAULT_INTERVAL,
        is_closed: Callable[[], bool] | None = None,
    ) -> None:
        self.name = name
        self.interval = max(float(interval), MIN_INTERVAL)
        self._is_closed = is_closed or (lambda: False)
        self._views: list[Refreshable] = []
        self._lock = threading.Lock()  # guards _views
        self._busy = threading.Lock()  # held during one refresh pass
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._paused = False
        self._thread: threading.Thread | None = None
        self.refreshes = 0
        self.last_seconds = 0.0

    # -- views ----------------------------------------------------------------------
    def add(self, view: Refreshable) -> None:
        """Refresh ``view`` from now on (starts the thread on first use)."""
        with self._lock:
            if view not in self._views:
                self._views.append(view)
        self.start()

    def remove(self, view: Refreshable) -> None:
        """Stop refreshing ``view``."""
        with self._lock:
            if view in self._views:
                self._views.remove(view)

    @property
    def views(self) -> list[Refreshable]:
        """The views refreshed, in order."""
        with self._lock:
            return list(self._views)

    # -- state ----------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """Whether the thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def paused(self) -> bool:
        """Whether refreshing is paused."""
        return self._paused

    @property
    def stopped(self) -> bool:
        """Whether :meth:`stop` was called (or the program closed)."""
        return self._stop.is_set()

    def start(self) -> None:
        """Start the thread unless it runs or was stopped."""
        if self.running or self._stop.is_set():
            return
        self._thread = threading.Thread(
            target=self._run, name=f"bpfnb-refresh-{self.name}", daemon=True
        )
        self._thread.start()

    def pause(self) -> None:
        """Freeze every view (the thread stays, idle)."""
        self._paused = True

    def resume(self) -> None:
        """Refresh again, at once."""
        self._paused = False
        self._wake.set()

    def set_interval(self, interval: float) -> None:
        """Change the refresh period (takes effect at once)."""
        self.interval = max(float(interval), MIN_INTERVAL)
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread and wait for a refresh in progress to end. Idempotent."""
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    # -- the work ---------------------------------------------------------------------
    def refresh_once(self) -> None:
        """Refresh every view once, now (in the calling thread)."""
        with self._busy:
            if self._is_closed():
                return
            start = time.perf_counter()
            for view in self.views:
                view.refresh()
            self.last_seconds = time.perf_counter() - start
            self.refreshes += 1

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._is_closed():
                self._stop.set()
                break
            if not self._paused:
                self.refresh_once()
            self._wake.wait(self.interval)
            self._wake.clear()
        for view in self.views:
            with contextlib.suppress(Exception):
                view.finish()


_REFRESHERS: dict[int, Refresher] = {}
_REFRESHERS_LOCK = threading.Lock()


def refresher_for(
    owner: RefreshOwner, interval: float | None = None, *, on_close: CloseHook | None = None
) -> Refresher:
    """Return the refresher of ``owner``, creating it at most once.

    A refresher stopped earlier (Stop button, owner closed) is replaced by a new one
    only when asked for again while the owner is open.

    Parameters
    ----------
    owner : RefreshOwner
        The program of the views (or a map opened on its own). Only a weak reference
        is kept.
    interval : float, optional
        Seconds between refreshes; None keeps the interval of an existing refresher
        (:data:`DEFAULT_INTERVAL` for a new one).
    on_close : callable, optional
        The owner's ``on_close``: registers the callback that stops and forgets a new
        refresher when the owner closes (a program's ``on_close``).

    Returns
    -------
    Refresher
        Started when the first view is added.
    """
    key = id(owner)
    with _REFRESHERS_LOCK:
        ref = _REFRESHERS.get(key)
        if ref is not None and not ref.stopped:
            if interval is not None and interval != ref.interval:
                ref.set_interval(interval)
            return ref
        owner_ref = weakref.ref(owner)

        def is_closed() -> bool:
            alive = owner_ref()
            return alive is None or alive.closed

        ref = Refresher(owner.name, interval or DEFAULT_INTERVAL, is_closed)
        _REFRESHERS[key] = ref
    if on_close is not None:
        new = ref
        on_close(lambda: _drop(key, new))
    return ref


def _drop(key: int, ref: Refresher) -> None:
    """Stop ``ref`` and forget it (the owner closed)."""
    ref.stop()
    with _REFRESHERS_LOCK:
        if _REFRESHERS.get(key) is ref:
            del _REFRESHERS[key]
