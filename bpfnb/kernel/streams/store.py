"""The in-memory store of received events: raw rows kept, decoded only when asked.

Pure Python + numpy (no fd). A consumer appends each drained batch as one chunk of
raw bytes (``(n, width)`` uint8 rows, their payload sizes and the receive time); the
store keeps at most ``max_rows`` rows (oldest trimmed first, counted in
:attr:`EventStore.trimmed`), streams every batch to an optional recorder (CSV or
Parquet) and callbacks, and decodes rows with the event type's codec only when a
DataFrame is asked for, so the consumer stays cheap.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bpfnb.codec import frames
from bpfnb.codec.plan import Codec

#: Rows kept in memory per stream by default (older rows are trimmed and counted).
DEFAULT_MAX_ROWS = 1_000_000
RECEIVED_AT = "received_at"

EventCallback = Callable[[pd.DataFrame], Any]


class Chunk:
    """Rows received in one drain: raw bytes, payload sizes, receive time (ns)."""

    __slots__ = ("rows", "sizes", "t_ns")

    def __init__(self, rows: np.ndarray, sizes: np.ndarray, t_ns: int) -> None:
        self.rows = rows
        self.sizes = sizes
        self.t_ns = t_ns

    def __len__(self) -> int:
        return int(self.rows.shape[0])

    def tail(self, n: int) -> Chunk:
        """The last ``n`` rows."""
        return Chunk(self.rows[-n:], self.sizes[-n:], self.t_ns)


class Recorder:
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
        """Append a decoded batch."""
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
        """Finish the file."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class EventStore:
    """Chunks of raw event rows with a row limit.

    Not thread-safe by itself: the stream that owns it serialises access.

    Parameters
    ----------
    max_rows : int
        Rows kept; older rows are dropped (and counted in :attr:`trimmed`).

    Attributes
    ----------
    max_rows : int
    trimmed : int
        Rows dropped because of :attr:`max_rows`.
    """

    def __init__(self, max_rows: int = DEFAULT_MAX_ROWS) -> None:
        self.max_rows = max_rows
        self.trimmed = 0
        self._chunks: deque[Chunk] = deque()
        self._rows = 0

    def __len__(self) -> int:
        return self._rows

    def append(self, chunk: Chunk) -> None:
        """Keep a chunk, trimming the oldest rows beyond :attr:`max_rows`."""
        self._chunks.append(chunk)
        self._rows += len(chunk)
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

    def chunks(self) -> list[Chunk]:
        """Every chunk kept, oldest first."""
        return list(self._chunks)

    def last(self, n: int) -> list[Chunk]:
        """The chunks (cut) holding the newest ``n`` rows, oldest first."""
        out: list[Chunk] = []
        held = 0
        for chunk in reversed(self._chunks):
            if held >= n:
                break
            out.append(chunk.tail(n - held))
            held += len(out[-1])
        out.reverse()
        return out

    def clear(self) -> None:
        """Forget every row (counters are kept)."""
        self._chunks.clear()
        self._rows = 0


def events_frame(chunks: list[Chunk], codec: Codec | None) -> pd.DataFrame:
    """Decode chunks into a DataFrame.

    Columns come from the event type's codec (as for map values) plus ``received_at``
    (when the consumer read the event); without a codec they are ``size`` and ``data``
    (raw bytes).
    """
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
