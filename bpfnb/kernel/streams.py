"""Ring buffers and perf event arrays: events stream into a growing DataFrame.

:class:`RingBuffer` (``BPF_MAP_TYPE_RINGBUF``) maps the ring through the map fd (the
consumer page read-write; the producer page and the twice-mapped data area read-only),
waits with epoll and drains every committed record with the vectorised parser of
:mod:`bpfnb.ringbuf`. :class:`PerfEventArray` (``BPF_MAP_TYPE_PERF_EVENT_ARRAY``) opens
one ``PERF_COUNT_SW_BPF_OUTPUT`` perf event per CPU, stores its fd in the map, maps its
buffer and parses raw samples and ``PERF_RECORD_LOST`` records the same way.

Both run a background consumer thread from :meth:`start` (called by the program once
loaded) to :meth:`close` (called before it unloads). Rows are kept as raw bytes and
decoded with the event type's :class:`bpfnb.dtypes.Codec` only when a DataFrame is
asked for, so the consumer stays cheap.

Wake-ups are batched: the kernel wakes a ring buffer consumer only when it commits a
record while the consumer has caught up (``consumer == record position``). After each
drain that found records the consumer sleeps ``batch_delay`` seconds before it drains
again, so a busy producer pays about one wake-up per delay instead of one per record.

Lost events are never hidden: the ``bpfnb/events.h`` macros count every failed
``bpf_ringbuf_reserve`` / ``bpf_ringbuf_output`` / ``bpf_perf_event_output`` in the
hidden per-CPU map ``bpfnb_lost`` (keyed by the map argument's text), which
:attr:`EventMap.lost` sums for this map; perf buffers add the kernel's
``PERF_RECORD_LOST`` counts.
"""

from __future__ import annotations

import contextlib
import ctypes
import mmap
import os
import select
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bpfnb.build import eventtypes
from bpfnb.codec import frames
from bpfnb.codec import streamparse as ringbuf
from bpfnb.codec.plan import Codec, codec_for
from bpfnb.errors import BpfnbError, EventTypeError, KernelFeatureError
from bpfnb.kernel import bpf as syscall
from bpfnb.kernel import views
from bpfnb.kernel.maps import Map
from bpfnb.object import btf
from bpfnb.object.spec import MapSpec, ObjectSpec

__all__ = ["DEFAULT_MAX_ROWS", "EventMap", "PerfEventArray", "RingBuffer"]

#: Rows kept in memory per ring by default (older rows are trimmed and counted).
DEFAULT_MAX_ROWS = 1_000_000
#: Seconds the consumer waits after a drain that found records (wake-up batching).
DEFAULT_BATCH_DELAY = 0.002
#: Longest epoll wait; the consumer also drains when it times out.
POLL_TIMEOUT = 0.1
MAX_ERRORS = 100  # errors kept in EventMap.errors
ERROR_BACKOFF = 0.1  # seconds the consumer waits after a failed drain
LOST_KEY_LEN = 32
RECEIVED_AT = "received_at"

EventCallback = Callable[[pd.DataFrame], Any]


class _Chunk:
    """Rows received in one drain: raw bytes, payload sizes, receive time (ns)."""

    __slots__ = ("rows", "sizes", "t_ns")

    def __init__(self, rows: np.ndarray, sizes: np.ndarray, t_ns: int) -> None:
        self.rows = rows
        self.sizes = sizes
        self.t_ns = t_ns

    def __len__(self) -> int:
        return int(self.rows.shape[0])

    def tail(self, n: int) -> _Chunk:
        return _Chunk(self.rows[-n:], self.sizes[-n:], self.t_ns)


class _Recorder:
    """Streams decoded batches to a CSV (or Parquet) file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows = 0
        self._writer: Any = None
        self._parquet = path.suffix == ".parquet"
        if self._parquet:
            import pyarrow  # noqa: F401  (fail early when missing)
        self.path.write_bytes(b"")

    def write(self, frame: pd.DataFrame) -> None:
        if self._parquet:
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(frame, preserve_index=False)
            if self._writer is None:
                self._writer = pq.ParquetWriter(str(self.path), table.schema)
            self._writer.write_table(table)
        else:
            frame.to_csv(self.path, mode="a", header=self.rows == 0, index=False)
        self.rows += len(frame)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class EventMap(Map):
    """Common part of :class:`RingBuffer` and :class:`PerfEventArray`.

    Parameters
    ----------
    fd : int
        The map fd (owned by the loaded object; never closed here).
    spec : MapSpec
        The map's declaration.
    obj : ObjectSpec, optional
        The object (its BTF holds the event type).
    source : str
        The cell's C text, where the event type is found (see :mod:`bpfnb.eventtypes`).
    max_rows : int
        Rows kept in memory; older rows are dropped and counted in :attr:`trimmed`.

    Attributes
    ----------
    received : int
        Events received since the program loaded.
    trimmed : int
        Events dropped from memory because of :attr:`max_rows` (still in a recording).
    batch_delay : float
        Seconds to wait after a drain that found records.
    errors : list of BaseException
        Exceptions raised by ``on_event`` callbacks or the recorder (the consumer keeps
        running).
    """

    def __init__(
        self,
        fd: int,
        spec: MapSpec,
        obj: ObjectSpec | None = None,
        source: str = "",
        *,
        max_rows: int = DEFAULT_MAX_ROWS,
    ) -> None:
        self._bind(fd, spec, obj, source)
        self._drain_lock = threading.Lock()
        self._deliver_lock = threading.Lock()
        self.max_rows = max_rows
        self.batch_delay = DEFAULT_BATCH_DELAY
        self.received = 0
        self.trimmed = 0
        self.errors: list[BaseException] = []
        self._chunks: deque[_Chunk] = deque()
        self._rows = 0
        self._callbacks: list[EventCallback] = []
        self._recorder: _Recorder | None = None
        self._lost_fd: int | None = None
        self._kernel_lost = 0
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake_fd = -1
        self._epoll: select.epoll | None = None
        self._closed = False
        self._codec: Codec | None = None
        self._type_error: EventTypeError | None = None
        self._type_name: str | None = None
        try:
            self._type_name = eventtypes.event_type_name(source, self.name)
        except EventTypeError as e:
            self._type_error = e
        if self._type_name is not None and obj is not None:
            try:
                self._codec = codec_for(obj.btf, eventtypes.resolve(obj.btf, self._type_name))
            except EventTypeError as e:
                self._type_error = e

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

        Set it to a C type name of the program's BTF (``"struct event"``), a
        ``btf.Type``, or None for raw bytes. Rows already received are decoded again.
        """
        return self._codec.c_name if self._codec is not None else None

    @event_type.setter
    def event_type(self, value: str | btf.Type | None) -> None:
        with self._lock:
            self._type_error = None
            if value is None:
                self._codec = None
                return
            if isinstance(value, str):
                if self.obj is None:
                    raise EventTypeError(f"{self.name}: no BTF to find {value!r} in")
                t = eventtypes.resolve(self.obj.btf, value)
            else:
                t = value
            self._codec = codec_for(self.obj.btf if self.obj else None, t)

    @property
    def codec(self) -> Codec | None:
        """The event type's codec (None while events are undecoded bytes)."""
        return self._codec

    def _width(self, runs: list[ringbuf.Run]) -> int:
        if self._codec is not None:
            return self._codec.size
        return max((r.length for r in runs), default=0)

    # -- lost events ------------------------------------------------------------------

    def attach_hidden_maps(self, fds: dict[str, int]) -> None:
        """Receive the fds of bpfnb's hidden maps (``bpfnb_lost``) from the program."""
        self._lost_fd = fds.get(eventtypes.LOST_MAP)

    @property
    def lost(self) -> int:
        """Events that could not be submitted or were dropped by the kernel, exactly."""
        total = self._kernel_lost
        fd = self._lost_fd
        if fd is None:
            return total
        ncpu = syscall.possible_cpus()
        what = f"map {eventtypes.LOST_MAP!r}"
        with contextlib.suppress(syscall.BpfKeyError):
            for key in syscall.map_keys(fd, LOST_KEY_LEN, what=what):
                site = key.split(b"\0", 1)[0].decode("utf-8", "replace")
                if eventtypes.ring_name(site) != self.name:
                    continue
                raw = syscall.map_lookup(fd, key, 8 * ncpu, what=what)
                total += int(np.frombuffer(raw, dtype="<u8").sum())
        return total

    # -- consumer ---------------------------------------------------------------------

    def start(self) -> None:
        """Start the background consumer (idempotent)."""
        with self._lock:
            if self._closed:
                raise BpfnbError(f"{self.name}: closed")
            if self._thread is not None and self._thread.is_alive():
                return
            self._open()
            self._stop.clear()
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
            os.eventfd_write(self._wake_fd, 1)
        if thread is not threading.current_thread():
            thread.join()
        self._thread = None

    @property
    def running(self) -> bool:
        """Whether the background consumer runs."""
        return self._thread is not None and self._thread.is_alive()

    def close(self) -> None:
        """Stop the consumer, unmap the buffers, close the fds this object opened.

        The map fd itself belongs to the loaded object and stays open.
        """
        self.stop()
        with self._lock:
            if self._closed:
                return
            with contextlib.suppress(Exception):
                self._kernel_lost = self.lost  # keep the final count readable after close
            self._lost_fd = None
            self._closed = True
            try:
                if self._recorder is not None:
                    self._recorder.close()
                    self._recorder = None
            finally:
                try:
                    self._release()
                finally:
                    self._close_epoll()
                    Map.close(self)

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

    def _run(self) -> None:
        assert self._epoll is not None
        epoll = self._epoll
        while not self._stop.is_set():
            try:
                n = self.drain()
            except Exception as e:
                self._note_error(e)
                self._stop.wait(ERROR_BACKOFF)  # a failing drain must not spin
                continue
            if self._stop.is_set():
                break
            if n and self.batch_delay > 0:
                self._stop.wait(self.batch_delay)
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
            raise BpfnbError(f"{self.name}: closed (its program was stopped or replaced)")

    def _open(self) -> None:
        raise NotImplementedError

    def _release(self) -> None:
        raise NotImplementedError

    def drain(self) -> int:
        """Consume every event available now (in the calling thread); return how many."""
        raise NotImplementedError

    # -- delivery ---------------------------------------------------------------------

    def _deliver(self, rows: np.ndarray, sizes: np.ndarray) -> None:
        """Keep a batch, stream it to the recorder and callbacks, then count it received.

        ``received`` grows last, so once it reaches a count every callback and the
        recording have seen those events.
        """
        if not len(rows):
            return
        chunk = _Chunk(rows, sizes, time.time_ns())
        with self._deliver_lock:
            with self._lock:
                self._chunks.append(chunk)
                self._rows += len(chunk)
                self._trim()
                callbacks, recorder = list(self._callbacks), self._recorder
            if callbacks or recorder is not None:
                self._publish(chunk, callbacks, recorder)
            with self._lock:
                self.received += len(chunk)

    def _publish(
        self, chunk: _Chunk, callbacks: list[EventCallback], recorder: _Recorder | None
    ) -> None:
        try:
            frame = self._events_frame([chunk])
        except Exception as e:
            self._note_error(e)
            return
        if recorder is not None:
            try:
                recorder.write(frame)
            except Exception as e:
                self._note_error(e)
        for cb in callbacks:
            try:
                cb(frame)
            except Exception as e:
                self._note_error(e)

    def _trim(self) -> None:
        excess = self._rows - max(self.max_rows, 0)
        while excess > 0 and self._chunks:
            first = self._chunks[0]
            if len(first) <= excess:
                self._chunks.popleft()
                drop = len(first)
            else:
                self._chunks[0] = first.tail(len(first) - excess)
                drop = excess
            self._rows -= drop
            self.trimmed += drop
            excess -= drop

    def __len__(self) -> int:
        return self._rows

    # -- DataFrames -------------------------------------------------------------------

    def _events_frame(self, chunks: list[_Chunk]) -> pd.DataFrame:
        if self._type_error is not None:
            raise self._type_error
        codec = self._codec
        n = sum(len(c) for c in chunks)
        times = np.empty(n, dtype="datetime64[ns]")
        row = 0
        for c in chunks:
            times[row : row + len(c)] = np.datetime64(c.t_ns, "ns")
            row += len(c)
        if codec is None:
            sizes = np.concatenate([c.sizes for c in chunks]) if chunks else np.zeros(0, "u4")
            data = np.empty(n, dtype=object)
            row = 0
            for c in chunks:
                for i in range(len(c)):
                    data[row] = bytes(c.rows[i, : c.sizes[i]])
                    row += 1
            return pd.DataFrame({"size": sizes, "data": data, RECEIVED_AT: times})
        width = codec.size
        if len(chunks) == 1 and chunks[0].rows.shape[1] == width:
            raw = chunks[0].rows
        else:
            raw = np.zeros((n, width), dtype=np.uint8)
            row = 0
            for c in chunks:
                w = min(width, c.rows.shape[1])
                raw[row : row + len(c), :w] = c.rows[:, :w]
                row += len(c)
        records = raw.reshape(-1).view(codec.dtype) if n else np.zeros(0, codec.dtype)
        frame = frames.events_frame(codec, records)
        if frame.shape[1] == 0:
            frame = pd.DataFrame(index=pd.RangeIndex(n))
        frame[RECEIVED_AT] = times
        return frame

    def df(self, per_cpu: bool = False, *, batch: bool = True) -> pd.DataFrame:
        """Events received so far (at most :attr:`max_rows`, newest kept).

        Columns come from the event type's BTF (as for map values) plus
        ``received_at``, the time the consumer read the event. Without a known event
        type the columns are ``size`` and ``data`` (raw bytes).

        Raises
        ------
        EventTypeError
            When the cell submits several types to this map; the message lists them.
        """
        with self._lock:
            chunks = list(self._chunks)
        return self._events_frame(chunks)

    def tail(self, n: int = 20) -> pd.DataFrame:
        """The newest ``n`` events, decoding only the chunks that hold them.

        Cheap enough for a view refreshing every second while millions of events
        are held in memory.
        """
        with self._lock:
            chunks: list[_Chunk] = []
            held = 0
            for chunk in reversed(self._chunks):
                if held >= n:
                    break
                chunks.append(chunk.tail(n - held))
                held += len(chunks[-1])
        chunks.reverse()
        frame = self._events_frame(chunks)
        return frame.iloc[-n:].reset_index(drop=True) if n else frame.iloc[0:0]

    def to_csv(self, path: str | Path, per_cpu: bool = False) -> Path:
        """Write the events received so far (:meth:`df`) to a CSV file."""
        out = Path(path)
        self.df().to_csv(out, index=False)
        return out

    def clear(self) -> None:
        """Forget the rows kept in memory (counters are kept)."""
        with self._lock:
            self._chunks.clear()
            self._rows = 0

    def record(self, path: str | Path | None) -> Path | None:
        """Stream every event received from now on to ``path`` (None stops recording).

        The file is CSV, or Parquet when ``path`` ends with ``.parquet`` (needs pyarrow).
        Recording is not bounded by :attr:`max_rows`.
        """
        with self._deliver_lock, self._lock:
            if self._recorder is not None:
                self._recorder.close()
                self._recorder = None
            if path is None:
                return None
            self._recorder = _Recorder(Path(path))
            return self._recorder.path

    def on_event(self, callback: EventCallback | None) -> None:
        """Call ``callback(frame)`` with every decoded batch of new events.

        Callbacks run in the consumer thread; exceptions go to :attr:`errors`. Passing
        None removes every callback.
        """
        with self._lock:
            if callback is None:
                self._callbacks.clear()
            else:
                self._callbacks.append(callback)

    def live(self, interval: float | None = None) -> Any:
        """Show the newest events, refreshing every ``interval`` seconds (ipywidgets)."""
        return views.live(self, interval)

    # Map's key/value protocol does not apply to event streams.
    def __getitem__(self, key: Any) -> Any:
        raise TypeError(f"{self.name} is an event stream: use .df()")

    def __iter__(self) -> Any:
        return iter(())


class RingBuffer(EventMap):
    """A ``BPF_MAP_TYPE_RINGBUF`` read through its mmapped pages (see module docs)."""

    def __init__(
        self,
        fd: int,
        spec: MapSpec,
        obj: ObjectSpec | None = None,
        source: str = "",
        *,
        max_rows: int = DEFAULT_MAX_ROWS,
    ) -> None:
        super().__init__(fd, spec, obj, source, max_rows=max_rows)
        self.size = spec.max_entries
        self._cons_map: mmap.mmap | None = None
        self._data_map: mmap.mmap | None = None
        self._cons: np.ndarray | None = None
        self._prod: np.ndarray | None = None
        self._data: np.ndarray | None = None

    def _open(self) -> None:
        if self._cons_map is not None:
            return
        page = mmap.PAGESIZE
        self.size = syscall.map_info(self.fd).max_entries
        self._cons_map = mmap.mmap(
            self.fd, page, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, offset=0
        )
        try:
            self._data_map = mmap.mmap(
                self.fd, page + 2 * self.size, mmap.MAP_SHARED, mmap.PROT_READ, offset=page
            )
        except OSError:
            self._cons_map.close()
            self._cons_map = None
            raise
        self._cons = np.frombuffer(self._cons_map, dtype=np.uint64, count=1)
        self._prod = np.frombuffer(self._data_map, dtype=np.uint64, count=1)
        self._data = np.frombuffer(self._data_map, dtype=np.uint8, offset=page)
        epoll = self._new_epoll()
        epoll.register(self.fd, select.EPOLLIN)

    def _release(self) -> None:
        with self._drain_lock:
            self._cons = self._prod = self._data = None
            maps, self._cons_map, self._data_map = (self._cons_map, self._data_map), None, None
            failures = []
            for m in maps:
                if m is not None:
                    try:
                        m.close()
                    except BufferError as e:  # a numpy view still exports it
                        failures.append(e)
            if failures:
                raise BpfnbError(f"{self.name}: ring still in use, cannot unmap: {failures[0]}")

    def available(self) -> int:
        """Bytes produced and not yet consumed."""
        if self._cons is None or self._prod is None:
            return 0
        return int(self._prod[0]) - int(self._cons[0])

    def drain(self) -> int:
        """Consume every committed record now; return how many events were received."""
        with self._drain_lock:
            self._check_open()
            if self._cons_map is None:
                self._open()
            cons, prod, data = self._cons, self._prod, self._data
            assert cons is not None and prod is not None and data is not None
            consumer, producer = int(cons[0]), int(prod[0])
            if producer == consumer:
                return 0
            scan = ringbuf.scan_ringbuf(data, self.size, consumer, producer)
            rows, sizes = ringbuf.gather(data, scan.runs, self._width(scan.runs))
            # An aligned 8-byte store: a release on x86 (stores are not reordered).
            cons[0] = scan.position
        self._deliver(rows, sizes)
        return scan.records


# -- perf event arrays ------------------------------------------------------------------

_PERF_EVENT_OPEN = {"x86_64": 298, "aarch64": 241, "riscv64": 241, "ppc64le": 319, "s390x": 331}
PERF_TYPE_SOFTWARE = 1
PERF_COUNT_SW_BPF_OUTPUT = 10
PERF_SAMPLE_RAW = 1 << 10
PERF_FLAG_FD_CLOEXEC = 1 << 3
PERF_ATTR_SIZE = 112
_WATERMARK_BIT = 1 << 14
_PERF_EVENT_IOC_ENABLE = 0x2400
_PERF_EVENT_IOC_DISABLE = 0x2401
_DATA_HEAD, _DATA_TAIL, _DATA_OFFSET, _DATA_SIZE = 1024, 1032, 1040, 1048

_libc = ctypes.CDLL(None, use_errno=True)


def _online_cpus() -> list[int]:
    try:
        return syscall.parse_cpu_list(Path("/sys/devices/system/cpu/online").read_text())
    except OSError:
        return list(syscall.possible_cpu_ids())


def perf_event_open_bpf_output(cpu: int, wakeup_bytes: int) -> int:
    """Open a ``PERF_COUNT_SW_BPF_OUTPUT`` event on ``cpu`` (raw samples); return its fd.

    The event wakes its reader when ``wakeup_bytes`` are buffered (watermark).
    """
    nr = _PERF_EVENT_OPEN.get(os.uname().machine)
    if nr is None:
        raise KernelFeatureError(f"perf_event_open: unknown syscall number on {os.uname()}")
    attr = ctypes.create_string_buffer(128)
    struct.pack_into("<IIQQQ", attr, 0, PERF_TYPE_SOFTWARE, PERF_ATTR_SIZE,
                     PERF_COUNT_SW_BPF_OUTPUT, 1, PERF_SAMPLE_RAW)  # fmt: skip
    struct.pack_into("<QI", attr, 40, _WATERMARK_BIT, max(wakeup_bytes, 1))
    fd = int(_libc.syscall(nr, attr, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC))
    if fd < 0:
        err = ctypes.get_errno()
        raise KernelFeatureError(
            f"perf_event_open(BPF_OUTPUT, cpu {cpu}) failed: {os.strerror(err)}"
        )
    return fd


class _PerfBuffer:
    """One CPU's perf event fd and its mmapped buffer."""

    def __init__(self, cpu: int, pages: int) -> None:
        self.cpu = cpu
        page = mmap.PAGESIZE
        self.size = pages * page
        self.fd = perf_event_open_bpf_output(cpu, self.size // 4)
        try:
            self.map = mmap.mmap(
                self.fd, page + self.size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE
            )
        except OSError:
            os.close(self.fd)
            raise
        self.head = np.frombuffer(self.map, dtype=np.uint64, count=1, offset=_DATA_HEAD)
        self.tail = np.frombuffer(self.map, dtype=np.uint64, count=1, offset=_DATA_TAIL)
        self.data = np.frombuffer(self.map, dtype=np.uint8, offset=page, count=self.size)

    def close(self) -> None:
        del self.head, self.tail, self.data
        self.map.close()
        os.close(self.fd)


class PerfEventArray(EventMap):
    """A ``BPF_MAP_TYPE_PERF_EVENT_ARRAY`` with one mmapped perf buffer per online CPU.

    Attributes
    ----------
    pages : int
        Data pages per CPU buffer (a power of two), used at :meth:`start`.
    """

    pages = 64

    def __init__(
        self,
        fd: int,
        spec: MapSpec,
        obj: ObjectSpec | None = None,
        source: str = "",
        *,
        max_rows: int = DEFAULT_MAX_ROWS,
    ) -> None:
        super().__init__(fd, spec, obj, source, max_rows=max_rows)
        self._buffers: list[_PerfBuffer] = []

    def _open(self) -> None:
        if self._buffers:
            return
        epoll = self._new_epoll()
        try:
            for cpu in _online_cpus():
                if self.spec.max_entries and cpu >= self.spec.max_entries:
                    continue
                buf = _PerfBuffer(cpu, self.pages)
                self._buffers.append(buf)
                syscall.map_update(
                    self.fd, struct.pack("<I", cpu), struct.pack("<I", buf.fd),
                    what=f"map {self.name!r}",
                )  # fmt: skip
                _libc.ioctl(buf.fd, _PERF_EVENT_IOC_ENABLE, 0)
                epoll.register(buf.fd, select.EPOLLIN)
        except BaseException:
            self._release()
            raise

    def _release(self) -> None:
        with self._drain_lock:
            for buf in self._buffers:
                with contextlib.suppress(Exception):
                    syscall.map_delete(self.fd, struct.pack("<I", buf.cpu))
                _libc.ioctl(buf.fd, _PERF_EVENT_IOC_DISABLE, 0)
                buf.close()
            self._buffers = []

    def drain(self) -> int:
        """Consume every sample in every CPU's buffer now; return how many."""
        total = 0
        with self._drain_lock:
            self._check_open()
            if not self._buffers:
                self._open()
            batches: list[tuple[np.ndarray, np.ndarray]] = []
            for buf in self._buffers:
                head, tail = int(buf.head[0]), int(buf.tail[0])
                if head == tail:
                    continue
                scan, linear = ringbuf.scan_perf(buf.data, buf.size, tail, head)
                rows, sizes = ringbuf.gather(linear, scan.runs, self._width(scan.runs))
                buf.tail[0] = scan.position
                self._kernel_lost += scan.lost
                total += scan.records
                if len(rows):
                    batches.append((rows, sizes))
        for rows, sizes in batches:
            self._deliver(rows, sizes)
        return total
