"""Pure tests of the ring buffer and perf buffer parsers on hand-made byte rings."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from bpfnb.codec import streamparse as ringbuf
from bpfnb.codec.streamparse import (
    BUSY_BIT,
    DISCARD_BIT,
    build_ring,
    double_map,
    gather,
    scan_ringbuf,
)


def _event(i: int) -> bytes:
    """A 12-byte payload: u32 index, u64 index * 3."""
    return struct.pack("<IQ", i, i * 3)


def _decode(data: np.ndarray, scan: ringbuf.Scan, itemsize: int) -> list[bytes]:
    rows, sizes = gather(data, scan.runs, itemsize)
    return [bytes(rows[i, : min(int(sizes[i]), itemsize)]) for i in range(len(rows))]


def test_equal_records_are_one_run() -> None:
    payloads = [_event(i) for i in range(100)]
    ring, prod = build_ring([(p, 0) for p in payloads], 4096)
    data = double_map(ring)
    scan = scan_ringbuf(data, 4096, 0, prod)
    assert len(scan.runs) == 1
    assert scan.records == 100 and scan.position == prod == 100 * 24
    assert not scan.busy and scan.discarded == 0
    assert _decode(data, scan, 12) == payloads


def test_structured_view_of_gathered_rows() -> None:
    ring, prod = build_ring([(_event(i), 0) for i in range(10)], 1024)
    data = double_map(ring)
    rows, sizes = gather(data, scan_ringbuf(data, 1024, 0, prod).runs, 12)
    dtype = np.dtype({"names": ["a", "b"], "formats": ["<u4", "<u8"], "offsets": [0, 4]})
    events = rows.view(dtype).reshape(-1)
    assert events["a"].tolist() == list(range(10))
    assert events["b"].tolist() == [3 * i for i in range(10)]
    assert sizes.tolist() == [12] * 10


def test_wrap_around_through_double_mapping() -> None:
    size = 256
    start = 1000 * size + size - 40  # 40 bytes before the end of the area
    payloads = [_event(i) for i in range(6)]
    ring, prod = build_ring([(p, 0) for p in payloads], size, start=start)
    data = double_map(ring)
    scan = scan_ringbuf(data, size, start, prod)
    assert scan.records == 6 and scan.position == prod
    assert _decode(data, scan, 12) == payloads
    # The second record starts at the end of the area and continues at its beginning.
    assert scan.runs[0].offset == size - 40 + 8


def test_single_copy_must_be_doubled() -> None:
    ring, prod = build_ring([(_event(0), 0)], 64)
    with pytest.raises(ValueError, match="mapped twice"):
        scan_ringbuf(ring, 64, 0, prod)


def test_discarded_records_are_skipped() -> None:
    records = [(_event(0), 0), (_event(1), DISCARD_BIT), (_event(2), DISCARD_BIT), (_event(3), 0)]
    ring, prod = build_ring(records, 1024)
    data = double_map(ring)
    scan = scan_ringbuf(data, 1024, 0, prod)
    assert scan.records == 2 and scan.discarded == 2 and scan.position == prod
    assert _decode(data, scan, 12) == [_event(0), _event(3)]


def test_busy_record_stops_the_scan() -> None:
    records = [(_event(0), 0), (_event(1), 0), (_event(2), BUSY_BIT), (_event(3), 0)]
    ring, prod = build_ring(records, 1024)
    data = double_map(ring)
    scan = scan_ringbuf(data, 1024, 0, prod)
    assert scan.busy
    assert scan.records == 2 and scan.position == 2 * 24
    assert _decode(data, scan, 12) == [_event(0), _event(1)]
    # Once committed, the scan resumes at the busy record.
    ring2, _ = build_ring([(_event(0), 0), (_event(1), 0), (_event(2), 0), (_event(3), 0)], 1024)
    data2 = double_map(ring2)
    rest = scan_ringbuf(data2, 1024, scan.position, prod)
    assert _decode(data2, rest, 12) == [_event(2), _event(3)]


def test_busy_at_the_end() -> None:
    ring, prod = build_ring([(_event(0), 0), (_event(1), BUSY_BIT)], 1024)
    scan = scan_ringbuf(double_map(ring), 1024, 0, prod)
    assert scan.busy and scan.records == 1 and scan.position == 24


def test_mixed_sizes() -> None:
    payloads = [bytes([i]) * (1 + (i * 7) % 40) for i in range(50)]
    ring, prod = build_ring([(p, 0) for p in payloads], 4096, start=4096 * 3 + 1000)
    data = double_map(ring)
    scan = scan_ringbuf(data, 4096, 4096 * 3 + 1000, prod)
    assert scan.records == 50 and scan.position == prod
    rows, sizes = gather(data, scan.runs, 48)
    assert sizes.tolist() == [len(p) for p in payloads]
    for i, p in enumerate(payloads):
        assert bytes(rows[i, : len(p)]) == p
        assert not rows[i, len(p) :].any()  # shorter payloads are zero-padded


def test_runs_of_sizes() -> None:
    payloads = [b"a" * 8] * 30 + [b"b" * 20] * 5 + [b"c" * 8] * 30
    ring, prod = build_ring([(p, 0) for p in payloads], 4096)
    scan = scan_ringbuf(double_map(ring), 4096, 0, prod)
    assert [(r.length, r.count) for r in scan.runs] == [(8, 30), (20, 5), (8, 30)]


def test_longer_payloads_are_cut() -> None:
    ring, prod = build_ring([(b"x" * 30, 0)], 256)
    data = double_map(ring)
    rows, sizes = gather(data, scan_ringbuf(data, 256, 0, prod).runs, 16)
    assert rows.shape == (1, 16) and bytes(rows[0]) == b"x" * 16 and sizes.tolist() == [30]


def test_empty_ring() -> None:
    ring = bytes(256)
    scan = scan_ringbuf(double_map(ring), 256, 512, 512)
    assert scan.records == 0 and scan.position == 512 and not scan.runs


def _perf_sample(raw: bytes, misc: int = 0) -> bytes:
    size = ringbuf.round8(ringbuf.PERF_RAW_OFFSET + len(raw))
    body = struct.pack("<IHHI", ringbuf.PERF_RECORD_SAMPLE, misc, size, len(raw)) + raw
    return body + b"\0" * (size - len(body))


def _perf_lost(n: int) -> bytes:
    return struct.pack("<IHHQQ", ringbuf.PERF_RECORD_LOST, 0, 24, 7, n)


def _perf_ring(records: list[bytes], size: int, tail: int) -> tuple[bytes, int]:
    ring = bytearray(size)
    pos = tail
    for rec in records:
        for i, b in enumerate(rec):
            ring[(pos + i) % size] = b
        pos += len(rec)
    return bytes(ring), pos


def test_perf_samples_and_lost() -> None:
    raws = [_event(i) + b"\x01\x02\x03\x04" for i in range(20)]  # 16-byte raw samples
    records = [_perf_sample(r, misc=i % 2) for i, r in enumerate(raws[:10])]
    records += [_perf_lost(5), _perf_lost(2)]
    records += [_perf_sample(r) for r in raws[10:]]
    tail = 1024 * 7 + 900  # wraps around the 1024-byte area
    ring, head = _perf_ring(records, 1024, tail)
    scan, linear = ringbuf.scan_perf(ring, 1024, tail, head)
    assert scan.lost == 7 and scan.records == 20 and scan.position == head
    rows, sizes = gather(linear, scan.runs, 16)
    assert [bytes(r) for r in rows] == raws
    assert sizes.tolist() == [16] * 20


def test_perf_partial_record_waits() -> None:
    rec = _perf_sample(_event(1))
    ring, head = _perf_ring([rec, rec], 256, 0)
    scan, _ = ringbuf.scan_perf(ring, 256, 0, head - 4)
    assert scan.records == 1 and scan.position == len(rec)
