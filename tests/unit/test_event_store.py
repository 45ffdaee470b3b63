"""The event store (one arena used as a ring) and the two ring copy paths (C, numpy)."""

from __future__ import annotations

import numpy as np
import pytest

from bpfnb.codec import streamparse
from bpfnb.codec.streamparse import BUSY_BIT, DISCARD_BIT, build_ring, double_map
from bpfnb.kernel.streams import ringcopy
from bpfnb.kernel.streams.store import EventStore, Rows


def _batch(first: int, n: int, width: int = 8) -> Rows:
    values = np.arange(first, first + n, dtype="<u8")
    rows = np.zeros((n, width), np.uint8)
    rows[:, :8] = values.view(np.uint8).reshape(n, 8)
    return Rows(rows, np.full(n, 8, np.uint32), values.astype(np.int64) * 10)


def _values(rows: Rows) -> list[int]:
    return rows.rows[:, :8].copy().view("<u8").ravel().tolist()


def test_store_wraps_and_trims_exactly() -> None:
    store = EventStore(max_rows=10)
    for first in range(0, 37, 4):  # 40 rows in batches of 4 (the last one short)
        store.append(_batch(first, min(4, 37 - first)))
    assert len(store) == 10 and store.trimmed == 27 and store.appended == 37
    snap = store.snapshot()
    assert _values(snap) == list(range(27, 37))
    assert snap.times.tolist() == [v * 10 for v in range(27, 37)]
    assert _values(store.snapshot(last=3)) == [34, 35, 36]
    assert _values(store.snapshot(since=33)) == [33, 34, 35, 36]
    store.append(_batch(100, 25))  # more than max_rows at once: its newest 10
    assert _values(store.snapshot()) == list(range(115, 125))
    store.max_rows = 4
    assert _values(store.snapshot()) == list(range(121, 125)) and len(store) == 4
    store.max_rows = 6
    store.append(_batch(200, 1))
    assert _values(store.snapshot()) == [121, 122, 123, 124, 200]
    store.clear()
    assert len(store) == 0 and len(store.snapshot()) == 0


def test_reserve_segments_and_space_commit() -> None:
    store = EventStore(max_rows=8)
    store.append(_batch(0, 6))
    segments = store.reserve(5, 8, 7)
    assert [s[0].shape[0] for s in segments] == [2, 3]  # wraps at the arena's end
    v = 50
    for rows, sizes in segments:
        for i in range(rows.shape[0]):
            rows[i, :8] = np.frombuffer(np.uint64(v).tobytes(), np.uint8)
            sizes[i] = 8
            v += 1
    assert _values(store.snapshot()) == [3, 4, 5, 50, 51, 52, 53, 54]
    rows, sizes = store.space(8)
    assert rows.shape[0] == 5  # from the tail (index 3) to the end of the arena
    rows[:2, :8] = np.arange(90, 92, dtype="<u8").view(np.uint8).reshape(2, 8)
    sizes[:2] = 8
    store.commit(2, 1)
    assert _values(store.snapshot()) == [5, 50, 51, 52, 53, 54, 90, 91]
    assert store.trimmed == 5
    wide = store.space(16)[0]  # a wider row re-lays the arena out, rows kept
    assert wide.shape[1] == 16 and _values(store.snapshot()) == [5, 50, 51, 52, 53, 54, 90, 91]


def _ring() -> tuple[np.ndarray, int, int, int]:
    size = 1024
    records = [(bytes(range(i, i + 24)), 0) for i in range(20)]
    records[3] = (b"\x07" * 24, DISCARD_BIT)
    records[5] = (b"short", 0)
    records[6] = (bytes(range(40)), 0)  # longer than the 24-byte rows: cut
    records += [(b"\x01" * 24, BUSY_BIT), (b"\x02" * 24, 0)]  # stops at the busy one
    start = size - 200  # the records wrap around the end of the data area
    ring, producer = build_ring(records, size, start)
    return double_map(ring), size, start, producer


@pytest.mark.skipif(not ringcopy.AVAILABLE, reason="the C extension is not built")
def test_c_copy_equals_the_numpy_path() -> None:
    data, size, consumer, producer = _ring()
    scan = streamparse.scan_ringbuf(data, size, consumer, producer)
    want_rows, want_sizes = streamparse.gather(data, scan.runs, 24)
    rows = np.full((64, 24), 0xAA, np.uint8)
    sizes = np.zeros(64, np.uint32)
    n, position, discarded = ringcopy.copy(data, size, consumer, producer, rows, sizes)
    assert (
        (n, position, discarded)
        == (scan.records, scan.position, scan.discarded)
        == (
            19,
            scan.position,
            1,
        )
    )
    assert (rows[:n] == want_rows).all() and (sizes[:n] == want_sizes).all()
    assert (rows[n:] == 0xAA).all()  # nothing written past the records
    # a full destination stops the copy at a record boundary
    few, few_sizes = np.zeros((4, 24), np.uint8), np.zeros(4, np.uint32)
    n, position, _ = ringcopy.copy(data, size, consumer, producer, few, few_sizes)
    assert n == 4 and (few == want_rows[:4]).all()
    rest, rest_sizes = np.zeros((64, 24), np.uint8), np.zeros(64, np.uint32)
    m, end, _ = ringcopy.copy(data, size, position, producer, rest, rest_sizes)
    assert m == 15 and end == scan.position and (rest[:m] == want_rows[4:]).all()
    # the consumer position is published during the copy, at record boundaries
    cons = np.array([consumer], dtype=np.uint64)
    n, position, _ = ringcopy.copy(data, size, consumer, producer, rows, sizes, publish=cons)
    assert n == 19 and consumer < int(cons[0]) <= position
    assert (int(cons[0]) - consumer) % 8 == 0


def test_wide_rows_grow_by_doubling(monkeypatch: pytest.MonkeyPatch) -> None:
    from bpfnb.kernel.streams import store as store_module

    monkeypatch.setattr(store_module, "ARENA_BYTES", 8 * 16)  # 16 rows of 8 bytes
    store = EventStore(max_rows=100)
    store.append(_batch(0, 5))
    assert store.capacity == 16
    store.append(_batch(5, 20))
    assert store.capacity == 32 and _values(store.snapshot()) == list(range(25))
    store.append(_batch(25, 200))
    assert store.capacity == 100 and _values(store.snapshot()) == list(range(125, 225))
    assert store.trimmed == 125
