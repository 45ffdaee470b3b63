"""The in-memory store of received events: raw rows kept, decoded only when asked.

Pure Python + numpy (no fd). The store is one *arena*: a ``(capacity, width)`` uint8
array used as a ring, with each row's payload size and receive time beside it. A
consumer reserves the next rows (:meth:`EventStore.reserve`) and copies records from
the kernel's ring straight into them, so a busy stream writes into memory it already
touched instead of allocating fresh pages for every batch (the first touch of a page
costs more than copying the records into it). The arena is allocated once with room
for ``max_rows`` rows, without touching it: its pages become memory only as rows first
arrive (numpy asks for transparent huge pages), so a quiet stream costs little and a
busy one never copies its rows to grow. (Stores of very wide rows, beyond
:data:`ARENA_BYTES`, start smaller and double as rows arrive.) Once full, the oldest
rows are overwritten and counted in :attr:`EventStore.trimmed`.

Rows are decoded with the event type's codec only when a DataFrame is asked for
(:func:`events_frame`), from a copy taken under the stream's lock
(:meth:`EventStore.snapshot`), so the consumer stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bpfnb.codec import frames
from bpfnb.codec.plan import Codec

#: Rows kept in memory per stream by default (older rows are trimmed and counted).
DEFAULT_MAX_ROWS = 1_000_000
#: Bytes of arena reserved at once; a store of wider rows grows by doubling beyond it.
ARENA_BYTES = 1 << 30
RECEIVED_AT = "received_at"

EventCallback = Callable[[pd.DataFrame], Any]


@dataclass
class Rows:
    """A batch of raw event rows: bytes, payload sizes and receive times.

    Attributes
    ----------
    rows : numpy.ndarray
        ``(n, width)`` uint8, each payload cut or zero-padded to ``width``.
    sizes : numpy.ndarray
        ``(n,)`` uint32 payload lengths.
    times : numpy.ndarray
        ``(n,)`` int64 receive times (ns since the epoch).
    """

    rows: np.ndarray
    sizes: np.ndarray
    times: np.ndarray

    def __len__(self) -> int:
        return int(self.rows.shape[0])

    @classmethod
    def empty(cls, width: int = 0) -> Rows:
        """No rows."""
        return cls(np.zeros((0, width), np.uint8), np.zeros(0, np.uint32), np.zeros(0, np.int64))

    @classmethod
    def concat(cls, parts: list[Rows]) -> Rows:
        """The rows of ``parts`` one after the other (widest width, zero-padded)."""
        if len(parts) == 1:
            return parts[0]
        width = max((p.rows.shape[1] for p in parts), default=0)
        n = sum(len(p) for p in parts)
        out = cls(np.zeros((n, width), np.uint8), np.empty(n, np.uint32), np.empty(n, np.int64))
        row = 0
        for p in parts:
            k = len(p)
            out.rows[row : row + k, : p.rows.shape[1]] = p.rows
            out.sizes[row : row + k] = p.sizes
            out.times[row : row + k] = p.times
            row += k
        return out


class EventStore:
    """A bounded ring of raw event rows (see module docs).

    Not thread-safe by itself: the stream that owns it serialises access.

    Parameters
    ----------
    max_rows : int
        Rows kept; older rows are overwritten (and counted in :attr:`trimmed`).

    Attributes
    ----------
    trimmed : int
        Rows dropped because of :attr:`max_rows`.
    """

    def __init__(self, max_rows: int = DEFAULT_MAX_ROWS) -> None:
        self._max_rows = max(int(max_rows), 0)
        self.trimmed = 0
        self._rows = np.zeros((0, 0), np.uint8)
        self._sizes = np.zeros(0, np.uint32)
        self._times = np.zeros(0, np.int64)
        self._head = 0  # absolute number of the oldest row kept
        self._tail = 0  # absolute number after the newest row

    # -- size ---------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._tail - self._head

    @property
    def capacity(self) -> int:
        """Rows the arena holds (:attr:`max_rows` once a row arrived)."""
        return int(self._rows.shape[0])

    @property
    def width(self) -> int:
        """Bytes kept per row."""
        return int(self._rows.shape[1])

    @property
    def max_rows(self) -> int:
        """Rows kept at most."""
        return self._max_rows

    @max_rows.setter
    def max_rows(self, value: int) -> None:
        value = max(int(value), 0)
        excess = len(self) - value
        if excess > 0:
            self._head += excess
            self.trimmed += excess
        self._max_rows = value
        if self.capacity > value:
            self._relayout(value, self.width)

    def _relayout(self, capacity: int, width: int) -> None:
        """Move the kept rows, oldest first, into a new arena of ``capacity`` x ``width``."""
        kept = self.snapshot()
        n = min(len(kept), capacity)
        rows = np.empty((capacity, width), np.uint8)  # pages are touched as rows arrive
        sizes = np.empty(capacity, np.uint32)
        times = np.empty(capacity, np.int64)
        w = min(width, kept.rows.shape[1])
        rows[:n, :w] = kept.rows[len(kept) - n :, :w]
        rows[:n, w:] = 0
        sizes[:n] = kept.sizes[len(kept) - n :]
        times[:n] = kept.times[len(kept) - n :]
        self._rows, self._sizes, self._times = rows, sizes, times
        self.trimmed += len(kept) - n
        self._head, self._tail = 0, n

    # -- writing ------------------------------------------------------------------------

    def _fit(self, width: int, rows: int) -> None:
        """Make the arena ``width`` bytes wide with room for ``rows`` rows (at most
        :attr:`max_rows`): all of ``max_rows`` at once while that is at most
        :data:`ARENA_BYTES` (untouched pages cost nothing), else doubling as needed."""
        width = max(width, self.width)
        full = self._max_rows
        first = min(full, max(ARENA_BYTES // max(width, 1), 1))
        want = max(self.capacity, first)
        while want < min(rows, full):
            want *= 2
        want = min(want, full)
        if width != self.width or want != self.capacity:
            self._relayout(want, width)

    def reserve(self, n: int, width: int, t_ns: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """Make room for ``n`` new rows of ``width`` bytes and return where they go.

        The oldest rows are overwritten (counted in :attr:`trimmed`) when the store holds
        ``max_rows``. The caller fills the returned ``(rows, sizes)`` segments (at most
        two: the arena wraps) in order, before anyone else reads the store. The rows'
        receive time is ``t_ns``. ``n`` must be at most :attr:`max_rows`.

        Returns
        -------
        list of (numpy.ndarray, numpy.ndarray)
            ``(k, self.width)`` row views and ``(k,)`` size views, ``sum(k) == n``.
        """
        if n > self._max_rows:
            raise ValueError(f"cannot reserve {n} rows in a store of {self._max_rows}")
        if n == 0:
            return []
        self._fit(width, len(self) + n)
        cap = self.capacity
        excess = len(self) + n - cap
        if excess > 0:
            self._head += excess
            self.trimmed += excess
        start = self._tail % cap
        self._tail += n
        first = min(n, cap - start)
        self._times[start : start + first] = t_ns
        segments = [(self._rows[start : start + first], self._sizes[start : start + first])]
        if first < n:
            self._times[: n - first] = t_ns
            segments.append((self._rows[: n - first], self._sizes[: n - first]))
        return segments

    def space(self, width: int) -> tuple[np.ndarray, np.ndarray]:
        """The rows after the newest one, up to the end of the arena, to write into.

        For a writer that learns how many rows it has only while writing (the C copy
        loop): it fills a prefix of these rows, then calls :meth:`commit`. Once the
        store is full they are the oldest rows, overwritten (and trimmed) on commit.
        Needs :attr:`max_rows` > 0.
        """
        self._fit(width, len(self) + 1)
        start = self._tail % self.capacity
        return self._rows[start:], self._sizes[start:]

    def commit(self, n: int, t_ns: int) -> None:
        """Keep the first ``n`` rows of :meth:`space`, received at ``t_ns``."""
        if n <= 0:
            return
        start = self._tail % self.capacity
        self._times[start : start + n] = t_ns
        self._tail += n
        excess = len(self) - self.capacity
        if excess > 0:
            self._head += excess
            self.trimmed += excess

    def append(self, batch: Rows) -> None:
        """Keep a batch of rows (only its newest :attr:`max_rows` when larger)."""
        skip = max(len(batch) - self._max_rows, 0)
        self.trimmed += skip
        n = len(batch) - skip
        if n == 0:
            return
        width = batch.rows.shape[1]
        row = skip
        for rows, sizes in self.reserve(n, width, 0):
            k = rows.shape[0]
            rows[:, :width] = batch.rows[row : row + k]
            rows[:, width:] = 0
            sizes[:] = batch.sizes[row : row + k]
            row += k
        # the receive times of the batch, row by row
        for start, stop in self._spans(self._tail - n, self._tail):
            self._times[start:stop] = batch.times[skip : skip + stop - start]
            skip += stop - start

    # -- reading ------------------------------------------------------------------------

    def _spans(self, first: int, end: int) -> list[tuple[int, int]]:
        """Arena index ranges of absolute rows ``first..end-1`` (at most two)."""
        if end <= first:
            return []
        cap = self.capacity
        start = first % cap
        stop = start + (end - first)
        if stop <= cap:
            return [(start, stop)]
        return [(start, cap), (0, stop - cap)]

    def snapshot(self, last: int | None = None, *, since: int | None = None) -> Rows:
        """A copy of the kept rows, oldest first.

        Parameters
        ----------
        last : int, optional
            Only the newest ``last`` rows.
        since : int, optional
            Only the rows appended after the first ``since`` ever appended (an absolute
            count, see :attr:`appended`).
        """
        first = self._head
        if last is not None:
            first = max(first, self._tail - max(last, 0))
        if since is not None:
            first = max(first, since)
        spans = self._spans(first, self._tail)
        if not spans:
            return Rows.empty(self.width)
        if len(spans) == 1:
            a, b = spans[0]
            return Rows(self._rows[a:b].copy(), self._sizes[a:b].copy(), self._times[a:b].copy())
        return Rows(
            np.concatenate([self._rows[a:b] for a, b in spans]),
            np.concatenate([self._sizes[a:b] for a, b in spans]),
            np.concatenate([self._times[a:b] for a, b in spans]),
        )

    @property
    def appended(self) -> int:
        """Rows appended since the store was made (an absolute row count)."""
        return self._tail

    def clear(self) -> None:
        """Forget every row (counters are kept; the arena stays for new rows)."""
        self._head = self._tail


def events_frame(batch: Rows, codec: Codec | None) -> pd.DataFrame:
    """Decode rows into a DataFrame.

    Columns come from the event type's codec (as for map values) plus ``received_at``
    (when the consumer read the event); without a codec they are ``size`` and ``data``
    (raw bytes).
    """
    n = len(batch)
    times = batch.times.view("datetime64[ns]")
    if codec is None:
        data = np.empty(n, dtype=object)
        for i in range(n):
            data[i] = bytes(batch.rows[i, : batch.sizes[i]])
        return pd.DataFrame({"size": batch.sizes, "data": data, RECEIVED_AT: times})
    width = codec.size
    raw = batch.rows
    if raw.shape[1] != width:
        fixed = np.zeros((n, width), dtype=np.uint8)
        w = min(width, raw.shape[1])
        fixed[:, :w] = raw[:, :w]
        raw = fixed
    records = (
        np.ascontiguousarray(raw).reshape(-1).view(codec.dtype) if n else np.zeros(0, codec.dtype)
    )
    frame = frames.events_frame(codec, records)
    if frame.shape[1] == 0:
        frame = pd.DataFrame(index=pd.RangeIndex(n))
    frame[RECEIVED_AT] = times
    return frame
