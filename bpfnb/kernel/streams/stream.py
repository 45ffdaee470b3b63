"""What ring buffers and perf event arrays have in common: a consumer thread over a map.

An :class:`EventStream` *has* a map (its owned fd and spec) and an
:class:`~bpfnb.kernel.streams.store.EventStore`; it is not a :class:`~bpfnb.kernel.maps.Map`.
It exposes exactly what an event stream supports — ``df()``, ``tail(n)``, ``len()``,
``received``, ``lost``, ``trimmed``, ``max_rows``, ``event_type``, ``record()``,
``on_event()``, ``clear()``, ``to_csv()``, ``live()`` — and refuses the mapping
operations of keyed maps (``m[k]``, ``items()``, ``in``...) with an
:class:`~bpfnb.errors.UnsupportedOperationError` that says so.

A background consumer runs from :meth:`EventStream.start` (called by the program once
attached) to :meth:`EventStream.close` (called before it unloads). Wake-ups are
batched: the kernel wakes a consumer only when it commits a record while the consumer
has caught up, and after each drain that found records the consumer sleeps
``batch_delay`` seconds before draining again, so a busy producer pays about one
wake-up per delay instead of one per record.

Lost events are never hidden: the ``bpfnb/events.h`` macros count every failed
``bpf_ringbuf_reserve`` / ``bpf_ringbuf_reserve_dynptr`` / ``bpf_ringbuf_output`` /
``bpf_perf_event_output`` in the hidden per-CPU map ``bpfnb_drops`` (keyed by the map's
kernel id), which a :class:`~bpfnb.kernel.drops.DropCounter` reads; perf buffers add
the samples the kernel itself dropped because a buffer was full. When some submissions
cannot be counted (see :func:`bpfnb.kernel.drops.uncounted_submissions`),
:attr:`EventStream.lost_note` says so and why.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn, Self

import numpy as np
import pandas as pd

from bpfnb import outfile
from bpfnb.codec import sql, streamparse
from bpfnb.codec.plan import Codec, DecoderChoice, codec_for
from bpfnb.codec.streamparse import Run
from bpfnb.errors import (
    ClosedError,
    EventTypeError,
    StreamWarning,
    UnsupportedOperationError,
)
from bpfnb.kernel import bpf, drops, live
from bpfnb.kernel.drops import DropCounter
from bpfnb.kernel.fd import OwnedFd
from bpfnb.kernel.streams.delivery import STOP_TIMEOUT, Delivery, Recorder
from bpfnb.kernel.streams.store import (
    DEFAULT_MAX_ROWS,
    EventCallback,
    EventStore,
    Rows,
    events_frame,
)
from bpfnb.object import btf
from bpfnb.object.spec import MapSpec, ObjectSpec, find_type

#: Seconds the consumer waits at least after a drain that found records (wake-up batching).
DEFAULT_BATCH_DELAY = 0.002
#: Longest wait after a drain that found records (the delay adapts between the two).
MAX_BATCH_DELAY = 0.025
#: The fraction of the kernel's buffer the adaptive delay lets fill between drains.
TARGET_FILL = 1 / 8
#: Longest epoll wait; the consumer also drains when it times out.
POLL_TIMEOUT = 0.1
MAX_ERRORS = 100  # errors kept in EventStream.errors
ERROR_BACKOFF = 0.1  # seconds the consumer waits after a failed drain


def _codec_of(obj: ObjectSpec | None, name: str) -> Codec:
    if obj is None:
        raise EventTypeError(f"no BTF to find {name!r} in")
    found = find_type(obj.btf, name)
    if found is None:
        raise EventTypeError(
            f"type {name!r} is not in the program's BTF; declare it in the cell or in a header "
            "it includes (struct definitions used by events are kept automatically)"
        )
    return codec_for(obj.btf, found)


class EventStream:
    """Events of a map streamed into a growing, bounded DataFrame (base class).

    Parameters
    ----------
    fd : OwnedFd
        The map fd (shared with, and closed by, the owning program).
    spec : MapSpec
        The map's declaration.
    obj : ObjectSpec, optional
        The object (its BTF holds the event type).
    event_type : str, EventTypeError or None
        The C type of the events (``"struct event"``), the error that says why it is
        not known (raised by :meth:`df`), or None for raw bytes.
    lost : DropCounter, optional
        Where failed submissions are counted (``bpfnb_drops``).
    max_rows : int
        Rows kept in memory; older rows are dropped and counted in :attr:`trimmed`.

    Attributes
    ----------
    name : str
        The map's C name.
    owner : Program or None
        The program the stream belongs to (set by it).
    received : int
        Events received since the program loaded.
    batch_delay : float
        Seconds to wait at least after a drain that found records (the wait grows up to
        ``MAX_BATCH_DELAY`` while the kernel's buffer stays under ``TARGET_FILL`` full
        between drains).
    errors : list of BaseException
        Exceptions raised by ``on_event`` callbacks or the recorder (the consumer keeps
        running), and callbacks that did not return when the stream stopped.
    """

    #: What the stream is, in messages (``"ring buffer"``).
    what = "event stream"

    def __init__(
        self,
        fd: OwnedFd,
        spec: MapSpec,
        obj: ObjectSpec | None = None,
        *,
        event_type: str | EventTypeError | None = None,
        lost: DropCounter | None = None,
        max_rows: int = DEFAULT_MAX_ROWS,
    ) -> None:
        self._fd = fd
        self.spec = spec
        self.obj = obj
        self.name = spec.name
        self.owner: Any = None
        self._lost_counter = lost
        self._map_id = bpf.map_info(fd.get()).id if lost is not None else 0
        self._lost_note = ""
        self._lock = threading.RLock()
        self._drain_lock = threading.Lock()
        self._store = EventStore(max_rows)
        self.batch_delay = DEFAULT_BATCH_DELAY
        self.received = 0
        self.errors: list[BaseException] = []
        self._callbacks: list[EventCallback] = []
        self._recorder: Recorder | None = None
        self._delivery: Delivery | None = None
        self._warning: str | None = None
        self._warning_shown = True
        self._kernel_lost = 0  # perf buffers: PERF_RECORD_LOST
        self._final_lost: int | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._cpu_before = 0.0  # CPU seconds of consumer threads that ended
        self._fill = 0.0  # fraction of the kernel's buffer the last drain consumed
        self._wake_fd = -1
        self._epoll: select.epoll | None = None
        self._closed = False
        self._codec: Codec | None = None
        self._type_error: EventTypeError | None = None
        if isinstance(event_type, EventTypeError):
            self._type_error = event_type
        elif event_type is not None:
            try:
                self._codec = _codec_of(obj, event_type)
            except EventTypeError as err:
                self._type_error = err

    # -- description --------------------------------------------------------------------

    @property
    def kind(self) -> str:
        """The map's kind (``"ringbuf"`` or ``"perf_event_array"``)."""
        return self.spec.kind

    @property
    def type_name(self) -> str:
        """The map type as the kernel names it."""
        return self.spec.type_name

    @property
    def fd(self) -> int:
        """The map fd number; raises ClosedError once the program closed the map."""
        return self._fd.get()

    @property
    def closed(self) -> bool:
        """Whether the stream was closed (its program stopped or was replaced)."""
        return self._closed

    def __repr__(self) -> str:
        what = self._codec.c_name if self._codec is not None else "untyped"
        return (
            f"<{type(self).__name__} {self.name!r}: {what} events, received={self.received}, "
            f"lost={self.lost}>"
        )

    # -- event type ---------------------------------------------------------------------

    @property
    def event_type(self) -> str | None:
        """The C type events are decoded as (``"struct event"``), or None (raw bytes).

        Set it to a C type name of the program's BTF (``"struct event"``, also a type
        declared in a header the cell includes), a ``btf.Type``, or None for raw bytes.
        Rows already received are decoded again.
        """
        return self._codec.c_name if self._codec is not None else None

    @event_type.setter
    def event_type(self, value: str | btf.Type | None) -> None:
        with self._lock:
            self._type_error = None
            if value is None:
                self._codec = None
            elif isinstance(value, str):
                self._codec = _codec_of(self.obj, value)
            else:
                self._codec = codec_for(self.obj.btf if self.obj else None, value)

    def decode(
        self, choices: Mapping[str, DecoderChoice] | None = None, /, **columns: DecoderChoice
    ) -> Self:
        """Decode the given event columns with the given decoders; return the stream.

        ``prog.events.decode(saddr="ipv4", daddr_v6="ipv6", args="argv")``; rows already
        received are decoded the new way too (see
        :meth:`bpfnb.codec.plan.Codec.with_decoders` for the decoders).

        Raises
        ------
        DecoderError
            For an unknown column or a decoder that does not fit its C type.
        EventTypeError
            When the event type is not known (set :attr:`event_type` first).
        """
        wanted = {**(choices or {}), **columns}
        with self._lock:
            if self._codec is None:
                raise self._type_error or EventTypeError(
                    f"{self.what} {self.name!r} has no event type to decode: set "
                    f"prog.{self.name}.event_type = 'struct ...' first"
                )
            self._codec = self._codec.with_decoders(wanted)
        return self

    @property
    def codec(self) -> Codec | None:
        """The event type's codec (None while events are undecoded bytes)."""
        return self._codec

    def _width(self, runs: list[Run]) -> int:
        if self._codec is not None:
            return self._codec.size
        return max((r.length for r in runs), default=0)

    # -- counters -----------------------------------------------------------------------

    @property
    def lost(self) -> int:
        """Events that could not be submitted or were dropped by the kernel, exactly.

        When some submissions cannot be counted, :attr:`lost_note` says why (and this
        is then a lower bound).
        """
        if self._final_lost is not None:
            return self._final_lost
        total = self._kernel_dropped()
        if self._lost_counter is not None:
            total += self._lost_counter.count(self._map_id, drops.LOST)
        return total

    @property
    def lost_note(self) -> str:
        """Why :attr:`lost` may miss events (``""`` when every drop is counted)."""
        return self._lost_note

    @lost_note.setter
    def lost_note(self, text: str) -> None:
        self._lost_note = text

    def _kernel_dropped(self) -> int:
        """Events the kernel dropped on its own (perf buffers: full buffers)."""
        return self._kernel_lost

    @property
    def trimmed(self) -> int:
        """Events dropped from memory because of :attr:`max_rows` (still in a recording)."""
        return self._store.trimmed

    @property
    def max_rows(self) -> int:
        """Rows kept in memory (older rows are trimmed)."""
        return self._store.max_rows

    @max_rows.setter
    def max_rows(self, value: int) -> None:
        with self._lock:
            self._store.max_rows = int(value)

    def __len__(self) -> int:
        """Events kept in memory now."""
        return len(self._store)

    # -- consumer -----------------------------------------------------------------------

    def start(self) -> None:
        """Start the background consumer (idempotent)."""
        with self._lock:
            self._check_open()
            if self._thread is not None and self._thread.is_alive():
                return
            self._open()
            self._stop.clear()
            if self._wake_fd >= 0:  # forget the wake-up of an earlier stop()
                with contextlib.suppress(BlockingIOError):
                    os.eventfd_read(self._wake_fd)
            self._thread = threading.Thread(
                target=self._run, name=f"bpfnb-{self.name}", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        """Stop the background consumer; events stay in the kernel buffer until drained."""
        thread = self._thread
        if thread is None:
            return
        self._stop.set()
        if self._wake_fd >= 0:
            with contextlib.suppress(OSError):
                os.eventfd_write(self._wake_fd, 1)
        if thread is not threading.current_thread():
            thread.join()  # the consumer never waits on callbacks (see delivery)
        self._thread = None

    @property
    def consumer_cpu(self) -> float:
        """CPU seconds the background consumer threads used so far (all of them)."""
        total = self._cpu_before
        thread = self._thread
        if thread is not None and thread.ident is not None and thread.is_alive():
            with contextlib.suppress(OSError, ProcessLookupError):
                total += time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
        return total

    @property
    def running(self) -> bool:
        """Whether the background consumer runs."""
        return self._thread is not None and self._thread.is_alive()

    def close(self) -> None:
        """Stop the consumer, unmap the buffers and close what this stream opened.

        The map fd belongs to the program, which closes it after this.
        """
        self.stop()
        with self._lock:
            if self._closed:
                return
            with contextlib.suppress(Exception):
                self._final_lost = self.lost  # the final count stays readable after close
            self._closed = True
            delivery, self._delivery = self._delivery, None
        try:
            stuck = delivery.close(STOP_TIMEOUT) if delivery is not None else None
            with self._lock:
                recorder, self._recorder = self._recorder, None
            if stuck is not None:
                self._report_stuck(stuck)
            elif recorder is not None:
                recorder.close()
        finally:
            try:
                self._release()
            finally:
                self._close_epoll()

    def _report_stuck(self, what: str) -> None:
        message = (
            f"{self.what} {self.name!r}: {what} did not return within {STOP_TIMEOUT:g} s; "
            "the stream was stopped without waiting for it"
        )
        self._note_error(RuntimeError(message))
        self._set_warning(message)
        warnings.warn(message, StreamWarning, stacklevel=4)

    def _run(self) -> None:
        try:
            self._consume()
        finally:
            self._cpu_before += time.thread_time()

    def _consume(self) -> None:
        epoll = self._epoll
        assert epoll is not None
        delay = self.batch_delay
        while not self._stop.is_set():
            try:
                n = self.drain()
            except Exception as e:
                self._note_error(e)
                self._stop.wait(ERROR_BACKOFF)  # a failing drain must not spin
                continue
            if self._stop.is_set():
                break
            if (n or self._pending()) and self.batch_delay > 0:
                # Records found, or one still being written: wait for more to gather
                # (epoll would return at once while unconsumed bytes are there). The
                # wait adapts so that about TARGET_FILL of the buffer fills in between:
                # a moderate stream costs few wake-ups, a busy one is drained early.
                fill = self._fill
                if fill > 0:
                    delay = min(delay * 2, delay * TARGET_FILL / fill, MAX_BATCH_DELAY)
                delay = max(delay, self.batch_delay)
                self._stop.wait(delay)
            elif not n:
                epoll.poll(POLL_TIMEOUT)

    def _note_error(self, error: BaseException) -> None:
        """Keep an error for the user (bounded; without its traceback, which pins buffers)."""
        self.errors.append(error.with_traceback(None))
        del self.errors[:-MAX_ERRORS]

    def _new_epoll(self) -> select.epoll:
        self._close_epoll()
        epoll = select.epoll()
        self._wake_fd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        epoll.register(self._wake_fd, select.EPOLLIN)
        self._epoll = epoll
        return epoll

    def _close_epoll(self) -> None:
        if self._epoll is not None:
            self._epoll.close()
            self._epoll = None
        if self._wake_fd >= 0:
            os.close(self._wake_fd)
            self._wake_fd = -1

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError(
                f"{self.what} {self.name!r} is closed: its program was stopped or replaced"
            )

    def _open(self) -> None:
        raise NotImplementedError

    def _release(self) -> None:
        raise NotImplementedError

    def drain(self) -> int:
        """Consume every event available now (in the calling thread); return how many."""
        raise NotImplementedError

    def _pending(self) -> bool:
        """Whether bytes are left in the kernel's buffer after a drain (a record that is
        still being written)."""
        return False

    # -- delivery -----------------------------------------------------------------------

    def _take(self, data: np.ndarray, runs: list[Run], n: int) -> None:
        """Copy ``n`` records (``runs`` of ``data``) into the store; queue them for the
        callbacks and the recording when there are any; then count them received.

        Called by :meth:`drain` before it gives the records' space back to the kernel.
        ``received`` grows once the rows are in the store (:meth:`flush` waits for the
        callbacks and the recording).
        """
        if n == 0:
            return
        width = self._width(runs)
        now = time.time_ns()
        with self._lock:
            store = self._store
            deliver = bool(self._callbacks) or self._recorder is not None
            batch: Rows | None = None
            if n <= store.max_rows:
                before = store.appended
                rest = runs
                for rows, sizes in store.reserve(n, width, now):
                    head, rest = streamparse.split_runs(rest, rows.shape[0])
                    streamparse.gather_into(data, head, rows, sizes)
                if deliver:
                    batch = store.snapshot(since=before)
            else:  # more records than the store keeps: every one still goes to delivery
                rows, sizes = streamparse.gather(data, runs, width)
                batch = Rows(rows, sizes, np.full(n, now, np.int64))
                store.append(batch)
                if not deliver:
                    batch = None
            delivery = self._delivery
        if batch is not None and delivery is not None:
            delivery.submit(batch, self._stop)
        with self._lock:
            self.received += n

    def _delivering(self) -> bool:
        """Whether batches go to callbacks or a recording."""
        return bool(self._callbacks) or self._recorder is not None

    def _targets(self) -> tuple[list[EventCallback], Recorder | None]:
        with self._lock:
            return list(self._callbacks), self._recorder

    def _delivery_failed(self, error: BaseException, recorder: Recorder | None) -> None:
        self._note_error(error)
        if recorder is not None:
            with self._lock:
                if self._recorder is recorder:
                    self._recorder = None
            self._set_warning(str(error))

    def _set_warning(self, message: str) -> None:
        self._warning = message
        self._warning_shown = False

    def _show_warning(self) -> None:
        """Warn once about the newest problem (from calls the user makes)."""
        if self._warning is not None and not self._warning_shown:
            self._warning_shown = True
            warnings.warn(self._warning, StreamWarning, stacklevel=3)

    @property
    def warning(self) -> str | None:
        """The newest problem of the stream the user should see (a recording that
        stopped, a callback that did not return), or None."""
        return self._warning

    def _ensure_delivery(self) -> None:
        """Start the delivery thread (with the stream's lock held)."""
        if self._delivery is None or not self._delivery.alive:
            self._delivery = Delivery(self.name, self._frame, self._targets, self._delivery_failed)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until the callbacks and the recording have every event received so far.

        Returns False when ``timeout`` seconds passed first.
        """
        delivery = self._delivery
        return True if delivery is None else delivery.flush(timeout)

    # -- DataFrames ---------------------------------------------------------------------

    def _frame(self, batch: Rows) -> pd.DataFrame:
        if self._type_error is not None:
            raise self._type_error
        return events_frame(batch, self._codec)

    def df(self) -> pd.DataFrame:
        """Events received so far (at most :attr:`max_rows`, newest kept).

        Columns come from the event type's BTF (as for map values) plus
        ``received_at``, the time the consumer read the event. Without a known event
        type the columns are ``size`` and ``data`` (raw bytes).

        Raises
        ------
        EventTypeError
            When the cell submits several types to this map; the message lists them.
        """
        self._show_warning()
        with self._lock:
            batch = self._store.snapshot()
        return self._frame(batch)

    def tail(self, n: int = 20) -> pd.DataFrame:
        """The newest ``n`` events, decoding only the chunks that hold them."""
        with self._lock:
            batch = self._store.snapshot(last=n)
        return self._frame(batch)

    def to_csv(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write the events received so far (:meth:`df`) to a new CSV file.

        Raises
        ------
        OutputExistsError
            When ``path`` exists and ``overwrite`` is False (a symbolic link is never
            followed: with ``overwrite`` the link itself is replaced).
        """
        data = self.df().to_csv(None, index=False).encode()
        return outfile.write_new(path, data, overwrite=overwrite)

    def clear(self) -> None:
        """Forget the rows kept in memory (counters are kept)."""
        with self._lock:
            self._store.clear()

    def record(self, path: str | Path | None, *, overwrite: bool = False) -> Path | None:
        """Stream every event received from now on to a new file ``path`` (None stops).

        The file is CSV, or Parquet when ``path`` ends with ``.parquet`` (needs pyarrow).
        Recording is not bounded by :attr:`max_rows`; it runs off the consumer thread
        (see :mod:`bpfnb.kernel.streams.delivery`). Stopping (``record(None)``, or a
        new ``record(path)``) first waits (up to a second) until the file has every
        event received so far.

        If a write fails (a full disk), the recording stops, the file ends with its
        last complete row, and the failure is shown: a :class:`StreamWarning` from the
        next ``df()`` / ``record()`` / ``to_csv()``, :attr:`warning` (the dashboard shows
        it) and :attr:`errors`.

        Raises
        ------
        OutputExistsError
            When ``path`` exists and ``overwrite`` is False. bpfnb never writes through
            a symbolic link: with ``overwrite`` a link at ``path`` is replaced itself.
        """
        self._show_warning()
        with self._lock:
            recorder = self._recorder
        if recorder is not None:
            self.flush(STOP_TIMEOUT)
            with self._lock:
                if self._recorder is recorder:
                    self._recorder = None
            recorder.close()
        if path is None:
            return None
        self._check_open()  # before creating the file
        new = Recorder(path, overwrite=overwrite)
        with self._lock:
            self._check_open()
            self._ensure_delivery()
            self._recorder = new
        if self._warning is not None and self._warning_shown:
            self._warning = None  # a new recording: the old failure was seen
        return new.path

    def on_event(self, callback: EventCallback | None) -> None:
        """Call ``callback(frame)`` with every decoded batch of new events.

        Callbacks run in the stream's delivery thread, in order, never in the consumer
        thread: a slow callback does not slow the consumer, and stopping the stream
        waits at most a second for a callback that blocks (then warns, naming it).
        Exceptions go to :attr:`errors`. Passing None removes every callback.
        :meth:`flush` waits until the callbacks saw every event received so far.
        """
        with self._lock:
            if callback is None:
                self._callbacks.clear()
            else:
                self._check_open()
                self._ensure_delivery()
                self._callbacks.append(callback)

    def live(self, interval: float | None = None) -> Any:
        """Show the newest events, refreshing every ``interval`` seconds (ipywidgets)."""
        return live.live(self, interval)

    def sql(self, statement: str) -> pd.DataFrame:
        """Query the events kept so far with DuckDB; the table is named like the map.

        ``prog.events.sql("select comm, count(*) as n from events group by comm")``
        (see :func:`bpfnb.codec.sql.query`; raises ``SqlError``).
        """
        return sql.query(statement, {self.name: self.df})

    # -- what an event stream is not ----------------------------------------------------

    def _unsupported(self, operation: str) -> NoReturn:
        raise UnsupportedOperationError(
            f"{self.what} {self.name!r} is an event stream, not a keyed map: {operation} is "
            "not supported. It supports df(), tail(n), len(), received, lost, trimmed, "
            "max_rows, event_type, record(path), on_event(callback), clear(), to_csv(path), "
            "live()"
        )

    def __getitem__(self, key: object) -> NoReturn:
        self._unsupported("m[key]")

    def __setitem__(self, key: object, value: object) -> NoReturn:
        self._unsupported("m[key] = value")

    def __delitem__(self, key: object) -> NoReturn:
        self._unsupported("del m[key]")

    def __contains__(self, key: object) -> NoReturn:
        self._unsupported("'key in m'")

    def __iter__(self) -> NoReturn:
        self._unsupported("iteration over keys")

    def get(self, key: object, default: object = None) -> NoReturn:
        """Not supported: an event stream has no keys."""
        self._unsupported("get(key)")

    def items(self) -> NoReturn:
        """Not supported: an event stream has no keys."""
        self._unsupported("items()")

    def keys(self) -> NoReturn:
        """Not supported: an event stream has no keys."""
        self._unsupported("keys()")

    def values(self) -> NoReturn:
        """Not supported: an event stream has no keys."""
        self._unsupported("values()")


__all__ = ["DEFAULT_MAX_ROWS", "EventStream"]
