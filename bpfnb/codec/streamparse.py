"""Pure parsers of BPF ring buffer and perf buffer bytes (no kernel needed).

A ``BPF_MAP_TYPE_RINGBUF`` is a power-of-two data area of ``size`` bytes between a
consumer position and a producer position (64-bit counters that only grow). Each record
starts with an 8-byte header: a 32-bit length whose bit 31 is the *busy* bit (reserved,
not yet committed) and bit 30 the *discard* bit (committed but thrown away), then a
32-bit page offset the kernel uses internally. The payload follows and the next record
starts at the next multiple of 8. The kernel maps the data area twice in a row, so a
record that wraps past the end of the area is contiguous in memory: this parser takes
that double-sized view (see :func:`double_map` to build one from a plain ring).

Records are not decoded one at a time. :func:`scan_ringbuf` walks the headers in
*runs*: starting from one header it checks, with one strided numpy comparison, how many
of the following records carry the very same header (same length, same flags), so a
ring of equal-sized events is one run however many records it holds. :func:`gather`
then copies every run into one ``(n, itemsize)`` byte array with strided views, ready
to be viewed as the event's structured dtype.

The perf buffer of a ``BPF_MAP_TYPE_PERF_EVENT_ARRAY`` (one per CPU) holds
``perf_event_header`` records; :func:`scan_perf` finds ``PERF_RECORD_SAMPLE`` runs (raw
samples) and sums ``PERF_RECORD_LOST`` counts the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

HDR_SIZE = 8
BUSY_BIT = 1 << 31
DISCARD_BIT = 1 << 30
LEN_MASK = ~(BUSY_BIT | DISCARD_BIT) & 0xFFFFFFFF

PERF_RECORD_LOST = 2
PERF_RECORD_SAMPLE = 9
PERF_HDR_SIZE = 8
#: A perf sample with PERF_SAMPLE_RAW only: header, u32 raw size, raw bytes.
PERF_RAW_OFFSET = PERF_HDR_SIZE + 4
# Keep a perf header's type (bits 0-31) and size (bits 48-63), not its misc flags.
_PERF_HDR_MASK = np.uint64(0xFFFF0000FFFFFFFF)


def round8(n: int) -> int:
    """Round ``n`` up to a multiple of 8."""
    return (n + 7) & ~7


@dataclass(frozen=True)
class Run:
    """Consecutive records with the same payload length.

    Attributes
    ----------
    offset : int
        Offset of the first payload in the scanned buffer.
    length : int
        Payload length of every record of the run.
    stride : int
        Distance in bytes between two payloads.
    count : int
        Number of records.
    """

    offset: int
    length: int
    stride: int
    count: int


@dataclass
class Scan:
    """What one scan of a ring found.

    Attributes
    ----------
    runs : list of Run
        Committed records, in ring order.
    position : int
        The consumer position after every record scanned (committed or discarded):
        the value to store in the ring's consumer position once the runs are copied.
    records : int
        Committed records in ``runs``.
    discarded : int
        Discarded records skipped.
    busy : bool
        True when the scan stopped at a record still being written.
    lost : int
        Perf buffers only: the samples the kernel reported lost.
    """

    runs: list[Run] = field(default_factory=list)
    position: int = 0
    records: int = 0
    discarded: int = 0
    busy: bool = False
    lost: int = 0


def double_map(ring: bytes | bytearray | np.ndarray) -> np.ndarray:
    """Return the ring's data area twice in a row, as the kernel maps it.

    Parameters
    ----------
    ring : bytes-like
        One copy of the data area (a power of two bytes).
    """
    data = np.frombuffer(ring, dtype=np.uint8) if not isinstance(ring, np.ndarray) else ring
    return np.concatenate([data, data])


def _as_u8(data: bytes | bytearray | memoryview | np.ndarray) -> np.ndarray:
    if isinstance(data, np.ndarray):
        return data if data.dtype == np.uint8 else data.view(np.uint8)
    return np.frombuffer(data, dtype=np.uint8)


def _strided(data: np.ndarray, offset: int, count: int, stride: int, dtype: str) -> np.ndarray:
    """A read-only view of ``count`` values of ``dtype`` every ``stride`` bytes."""
    return np.ndarray(
        shape=(count,),
        dtype=dtype,
        buffer=data.data,
        offset=offset,
        strides=(stride,),
    )


def _same_prefix(values: np.ndarray, first: int) -> int:
    """How many leading items of ``values`` equal ``first`` (probing in growing chunks).

    The chunks double, so a run of k equal items costs O(k) however long ``values`` is:
    rings whose record sizes alternate are not rescanned to the end at every record.
    """
    n = len(values)
    done, chunk = 0, 16
    while done < n:
        part = values[done : done + chunk]
        bad = np.flatnonzero(part != first)
        if len(bad):
            return done + int(bad[0])
        done += len(part)
        chunk *= 4
    return n


def scan_ringbuf(
    data: bytes | bytearray | memoryview | np.ndarray,
    size: int,
    consumer: int,
    producer: int,
) -> Scan:
    """Find the committed records of a BPF ring buffer between two positions.

    Parameters
    ----------
    data : bytes-like or numpy uint8 array
        The data area mapped twice (``2 * size`` bytes, see :func:`double_map`).
    size : int
        Size of the data area (a power of two).
    consumer, producer : int
        The ring's consumer and producer positions.

    Returns
    -------
    Scan
        Runs of committed records; scanning stops at the first busy record (or at a
        header that claims more bytes than were produced).
    """
    buf = _as_u8(data)
    if len(buf) < 2 * size:
        raise ValueError(f"ring data must be mapped twice: {len(buf)} bytes for size {size}")
    mask = size - 1
    scan = Scan(position=consumer)
    pos = consumer
    while pos < producer:
        off = pos & mask
        header = int(_strided(buf, off, 1, 8, "<u4")[0])
        if header & BUSY_BIT:
            scan.busy = True
            break
        length = header & LEN_MASK
        stride = round8(length + HDR_SIZE)
        most = (producer - pos) // stride
        if most == 0:
            scan.busy = True
            break
        count = _same_prefix(_strided(buf, off, most, stride, "<u4"), header)
        if header & DISCARD_BIT:
            scan.discarded += count
        else:
            scan.runs.append(Run(off + HDR_SIZE, length, stride, count))
            scan.records += count
        pos += count * stride
    scan.position = pos
    return scan


def scan_perf(
    data: bytes | bytearray | memoryview | np.ndarray,
    size: int,
    tail: int,
    head: int,
) -> tuple[Scan, np.ndarray]:
    """Find raw samples and lost counts in a perf buffer between ``tail`` and ``head``.

    The perf data area is mapped once, so the bytes between the two positions are first
    copied out in order (at most two slices); the runs of the returned scan are offsets
    in that copy.

    Parameters
    ----------
    data : bytes-like or numpy uint8 array
        The perf data area (``size`` bytes, a power of two).
    size : int
        Size of the data area.
    tail, head : int
        ``data_tail`` (consumer) and ``data_head`` (producer) positions.

    Returns
    -------
    (Scan, numpy.ndarray)
        The scan (``lost`` holds the sum of PERF_RECORD_LOST counts; ``position`` is the
        new tail) and the linear copy its runs refer to.
    """
    buf = _as_u8(data)
    mask = size - 1
    start, total = tail & mask, head - tail
    if start + total <= size:
        linear = buf[start : start + total].copy()
    else:
        linear = np.concatenate([buf[start:size], buf[: start + total - size]])
    scan = Scan(position=tail)
    pos = 0
    while pos + PERF_HDR_SIZE <= total:
        header = int(_strided(linear, pos, 1, 8, "<u8")[0])
        rtype, rsize = header & 0xFFFFFFFF, header >> 48
        if rsize < PERF_HDR_SIZE or pos + rsize > total:
            break
        most = (total - pos) // rsize
        heads = _strided(linear, pos, most, rsize, "<u8") & _PERF_HDR_MASK
        count = _same_prefix(heads, header & int(_PERF_HDR_MASK))
        if rtype == PERF_RECORD_SAMPLE and rsize >= PERF_RAW_OFFSET:
            raw = int(_strided(linear, pos + PERF_HDR_SIZE, 1, 4, "<u4")[0])
            count = _same_prefix(_strided(linear, pos + PERF_HDR_SIZE, count, rsize, "<u4"), raw)
            length = min(raw, rsize - PERF_RAW_OFFSET)
            scan.runs.append(Run(pos + PERF_RAW_OFFSET, length, rsize, count))
            scan.records += count
        elif rtype == PERF_RECORD_LOST and rsize >= PERF_HDR_SIZE + 16:
            lost = _strided(linear, pos + PERF_HDR_SIZE + 8, count, rsize, "<u8")
            scan.lost += int(lost.sum())
        else:
            scan.discarded += count
        pos += count * rsize
    scan.position = tail + pos
    return scan, linear


def split_runs(runs: list[Run], count: int) -> tuple[list[Run], list[Run]]:
    """Split ``runs`` after their first ``count`` records: (first ``count``, the rest)."""
    head: list[Run] = []
    tail: list[Run] = []
    left = count
    for r in runs:
        if left >= r.count:
            head.append(r)
            left -= r.count
        elif left > 0:
            head.append(Run(r.offset, r.length, r.stride, left))
            tail.append(Run(r.offset + left * r.stride, r.length, r.stride, r.count - left))
            left = 0
        else:
            tail.append(r)
    return head, tail


def gather(
    data: bytes | bytearray | memoryview | np.ndarray,
    runs: list[Run],
    itemsize: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Copy the payloads of ``runs`` into one new ``(n, itemsize)`` uint8 array.

    Payloads longer than ``itemsize`` are cut; shorter ones are padded with zeros.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        The ``(n, itemsize)`` bytes and the ``(n,)`` payload lengths (uint32).
    """
    n = sum(r.count for r in runs)
    out = np.empty((n, itemsize), dtype=np.uint8)
    sizes = np.empty(n, dtype=np.uint32)
    gather_into(data, runs, out, sizes)
    return out, sizes


def gather_into(
    data: bytes | bytearray | memoryview | np.ndarray,
    runs: list[Run],
    out: np.ndarray,
    sizes: np.ndarray,
) -> None:
    """Copy the payloads of ``runs`` into the rows of ``out`` (an ``(n, itemsize)`` uint8
    array with contiguous rows, e.g. a slice of a larger store) and their lengths into
    ``sizes``. Payloads are cut to ``itemsize`` or padded with zeros; each record is one
    ``memcpy`` inside numpy (records are copied as opaque void items)."""
    buf = _as_u8(data)
    itemsize = out.shape[1]
    row = 0
    for r in runs:
        width = min(r.length, itemsize)
        dst = out[row : row + r.count]
        if width:
            src = np.ndarray(
                shape=(r.count,),
                dtype=np.dtype((np.void, width)),
                buffer=buf.data,
                offset=r.offset,
                strides=(r.stride,),
            )
            if width == itemsize:
                _void_rows(dst, itemsize)[:] = src
            else:
                head = np.dtype({"names": ["b"], "formats": [f"V{width}"], "itemsize": itemsize})
                np.ndarray(shape=(r.count,), dtype=head, buffer=dst, strides=(dst.strides[0],))[
                    "b"
                ] = src
        if width < itemsize:
            dst[:, width:] = 0
        sizes[row : row + r.count] = r.length
        row += r.count


def _void_rows(rows: np.ndarray, itemsize: int) -> np.ndarray:
    """``(n, itemsize)`` uint8 rows (rows may be strided) as ``n`` void items."""
    return np.ndarray(
        shape=(rows.shape[0],),
        dtype=np.dtype((np.void, itemsize)),
        buffer=rows,
        strides=(rows.strides[0],),
    )


def build_ring(records: list[tuple[bytes, int]], size: int, start: int = 0) -> tuple[bytes, int]:
    """Write records into a fresh ring (one copy of the data area), as the kernel would.

    A helper for tests and for documentation of the format.

    Parameters
    ----------
    records : list of (payload, flags)
        Payloads with their header flags (0, :data:`BUSY_BIT` or :data:`DISCARD_BIT`).
    size : int
        Size of the data area (a power of two).
    start : int
        Position of the first record (the consumer position), so records can wrap.

    Returns
    -------
    (bytes, int)
        The data area and the producer position after the last record.
    """
    ring = bytearray(size)
    pos = start
    for payload, flags in records:
        rec = (len(payload) | flags).to_bytes(4, "little") + b"\0\0\0\0" + payload
        rec += b"\0" * (round8(len(rec)) - len(rec))
        for i, b in enumerate(rec):
            ring[(pos + i) & (size - 1)] = b
        pos += len(rec)
    return bytes(ring), pos
