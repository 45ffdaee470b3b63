"""``BPF_MAP_TYPE_RINGBUF``: events read through the ring's mmapped pages.

The ring is mapped through the map fd: the consumer page read-write, the producer page
and the data area read-only, the data area twice in a row so a record that wraps is
contiguous. The consumer waits with epoll on the map fd and drains every committed
record with the vectorised parser of :mod:`bpfnb.codec.streamparse`, copying the
records straight into the stream's store before giving their space back to the kernel.
"""

from __future__ import annotations

import mmap
import select
import time

import numpy as np

from bpfnb.codec import streamparse
from bpfnb.errors import BpfnbError
from bpfnb.kernel import bpf
from bpfnb.kernel.streams import ringcopy
from bpfnb.kernel.streams.stream import EventStream


class RingBuffer(EventStream):
    """A ``BPF_MAP_TYPE_RINGBUF`` read through its mmapped pages (see module docs)."""

    what = "ring buffer"

    _cons_map: mmap.mmap | None = None
    _data_map: mmap.mmap | None = None
    _cons: np.ndarray | None = None
    _prod: np.ndarray | None = None
    _data: np.ndarray | None = None

    @property
    def size(self) -> int:
        """Bytes of the ring's data area."""
        return self.spec.max_entries

    def _open(self) -> None:
        if self._cons_map is not None:
            return
        page = mmap.PAGESIZE
        fd = self._fd.get()
        size = bpf.map_info(fd).max_entries
        self._size = size
        self._cons_map = mmap.mmap(fd, page, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        try:
            self._data_map = mmap.mmap(
                fd, page + 2 * size, mmap.MAP_SHARED, mmap.PROT_READ, offset=page
            )
        except OSError:
            self._cons_map.close()
            self._cons_map = None
            raise
        self._cons = np.frombuffer(self._cons_map, dtype=np.uint64, count=1)
        self._prod = np.frombuffer(self._data_map, dtype=np.uint64, count=1)
        self._data = np.frombuffer(self._data_map, dtype=np.uint8, offset=page)
        epoll = self._new_epoll()
        epoll.register(fd, select.EPOLLIN)

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

    def _pending(self) -> bool:
        return self.available() > 0

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
            if ringcopy.AVAILABLE and self._codec is not None and not self._delivering():
                records, position = self._copy(data, consumer, producer)
            else:
                scan = streamparse.scan_ringbuf(data, self._size, consumer, producer)
                self._take(data, scan.runs, scan.records)  # copied out: space can go back
                records, position = scan.records, scan.position
            self._fill = (position - consumer) / self._size
            # An aligned 8-byte store: a release on x86 (stores are not reordered).
            cons[0] = position
        return records

    def _copy(self, data: np.ndarray, consumer: int, producer: int) -> tuple[int, int]:
        """The C path of :meth:`drain`: records copied straight into the store's rows."""
        assert self._codec is not None
        width = self._codec.size
        now = time.time_ns()
        total, position = 0, consumer
        with self._lock:
            store = self._store
            if store.max_rows <= 0:  # nothing is kept: only count
                scan = streamparse.scan_ringbuf(data, self._size, consumer, producer)
                total, position = scan.records, scan.position
            while position < producer and store.max_rows > 0:
                rows, sizes = store.space(width)
                n, position, _ = ringcopy.copy(
                    data, self._size, position, producer, rows, sizes, publish=self._cons
                )
                store.commit(n, now)
                total += n
                if n < rows.shape[0]:
                    break
            self.received += total
        return total, position
