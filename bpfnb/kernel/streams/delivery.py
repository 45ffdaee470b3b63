"""Handing received events to ``on_event`` callbacks and to a recording, off the consumer.

The consumer thread of a stream only copies records out of the kernel's buffer. When a
stream has callbacks or a recording, each drained batch (a copy of its raw rows) is
queued to the stream's :class:`Delivery` thread, which decodes it and calls the
callbacks and the :class:`Recorder` in order. So:

* a slow or blocked callback never stalls the consumer. The queue is bounded (in rows):
  when it is full the consumer waits, the kernel's buffer fills and what cannot be
  submitted is counted as lost, as for any slow consumer; nothing received is dropped
  on the way to the recording;
* stopping a stream waits for the delivery thread for at most a second
  (:meth:`Delivery.close`); a callback still running then is reported
  (:class:`~bpfnb.errors.StreamWarning`) and left behind, and the stop returns.

A :class:`Recorder` writes CSV (or Parquet) to a file it creates itself (see
:mod:`bpfnb.outfile`: no overwrite unless asked, no symbolic links). Each CSV
batch is written whole; when a write fails (a full disk), the file is cut back to the
last complete row, the recording stops and :class:`~bpfnb.errors.RecordingError` says
why.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from bpfnb import outfile
from bpfnb.errors import RecordingError
from bpfnb.kernel.streams.store import EventCallback, Rows

#: Seconds a stop waits for the delivery thread (a callback that blocks longer is left).
STOP_TIMEOUT = 1.0
#: Rows queued for delivery at most before the consumer waits.
MAX_PENDING_ROWS = 1_000_000


class Recorder:
    """Streams decoded batches to a new CSV (or Parquet, by suffix) file.

    Parameters
    ----------
    path : str or path-like
        The file to create.
    overwrite : bool
        Replace an existing file (never through a symbolic link).

    Raises
    ------
    OutputExistsError
        When ``path`` exists and ``overwrite`` is False.
    """

    def __init__(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> None:
        self.rows = 0
        self._parquet = Path(path).suffix == ".parquet"
        if self._parquet:
            try:
                import pyarrow  # noqa: F401  (fail early when missing)
            except ImportError:
                raise RecordingError(
                    f"recording to {path} needs pyarrow for Parquet: `pip install pyarrow`, "
                    "or record to a .csv file"
                ) from None
        self._fd, self.path = outfile.create(path, overwrite=overwrite)
        self._written = 0  # bytes of complete rows in the file
        self._writer: Any = None
        self._file: Any = None
        self.closed = False

    def write(self, frame: pd.DataFrame) -> None:
        """Append a decoded batch (on a failed write, up to its last whole row).

        Raises
        ------
        RecordingError
            The write failed; the file was cut back to its last complete row and the
            recorder is closed.
        """
        if self.closed:
            raise RecordingError(f"recording to {self.path} is closed")
        try:
            if self._parquet:
                self._write_parquet(frame)
            else:
                self._write_csv(frame)
        except OSError as e:
            self._abort()
            ends = (
                "the Parquet file has no footer and cannot be read"
                if self._parquet
                else "the file ends with the last complete row"
            )
            raise RecordingError(
                f"recording to {self.path} stopped after {self.rows} rows: "
                f"{e.strerror or e}; {ends}"
            ) from None
        self.rows += len(frame)

    def _write_csv(self, frame: pd.DataFrame) -> None:
        header = self._written == 0
        data = frame.to_csv(None, header=header, index=False).encode()
        done = 0
        try:
            while done < len(data):
                done += os.write(self._fd, memoryview(data)[done:])
        except OSError:
            # keep the whole rows that reached the file (a full disk fails part-way)
            length, lines = outfile.complete_lines(data, done)
            self._written += length
            self.rows += max(0, lines - 1 if header else lines)
            raise
        self._written += len(data)

    def _write_parquet(self, frame: pd.DataFrame) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self._writer is None:
            self._file = os.fdopen(self._fd, "wb", closefd=False)
            self._writer = pq.ParquetWriter(self._file, table.schema)
        self._writer.write_table(table)
        self._file.flush()
        self._written = os.lseek(self._fd, 0, os.SEEK_CUR)

    def _abort(self) -> None:
        """Cut the file back to its last complete batch and close it."""
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, self._written)
        self._writer = None
        self._file = None
        self.closed = True
        with contextlib.suppress(OSError):
            os.close(self._fd)

    def close(self) -> None:
        """Finish the file (idempotent)."""
        if self.closed:
            return
        self.closed = True
        try:
            if self._writer is not None:
                self._writer.close()
                self._file.close()
        finally:
            self._writer = self._file = None
            os.close(self._fd)


class Delivery:
    """The thread that runs a stream's callbacks and recording (see module docs).

    Parameters
    ----------
    name : str
        The stream's name (for the thread and messages).
    decode : callable
        ``decode(rows) -> DataFrame`` with the stream's current event type.
    targets : callable
        ``targets() -> (callbacks, recorder)``: what to deliver to, read per batch.
    failed : callable
        ``failed(error, recorder)`` is called with every error; ``recorder`` is the
        recorder that failed (then closed) or None.
    """

    def __init__(
        self,
        name: str,
        decode: Callable[[Rows], pd.DataFrame],
        targets: Callable[[], tuple[list[EventCallback], Recorder | None]],
        failed: Callable[[BaseException, Recorder | None], None],
    ) -> None:
        self.name = name
        self._decode = decode
        self._targets = targets
        self._failed = failed
        self._queue: deque[Rows | None] = deque()
        self._pending = 0  # rows queued or being delivered
        self._cond = threading.Condition()
        self._stopping = False
        #: What the thread is doing now (``"on_event callback <...>"``), for reports.
        self.current: str | None = None
        self._thread = threading.Thread(target=self._run, name=f"bpfnb-{name}-deliver", daemon=True)
        self._thread.start()

    def submit(self, batch: Rows, stop: threading.Event) -> bool:
        """Queue a batch; wait while too many rows are queued. False when stopped first."""
        with self._cond:
            while (
                self._pending
                and self._pending + len(batch) > MAX_PENDING_ROWS
                and not stop.is_set()
                and not self._stopping
            ):
                self._cond.wait(0.05)
            if stop.is_set() or self._stopping:
                return False
            self._queue.append(batch)
            self._pending += len(batch)
            self._cond.notify_all()
        return True

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued batch was delivered; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._pending == 0, timeout)

    @property
    def alive(self) -> bool:
        """Whether the thread runs."""
        return self._thread.is_alive()

    def close(self, timeout: float = STOP_TIMEOUT) -> str | None:
        """Deliver what is queued and end the thread, waiting at most ``timeout`` seconds.

        Returns
        -------
        str or None
            None when the thread ended; else what it is stuck in (it is left behind).
        """
        with self._cond:
            self._stopping = True
            self._queue.append(None)
            self._cond.notify_all()
        self._thread.join(timeout)
        if not self._thread.is_alive():
            return None
        return self.current or "delivery"

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue:
                    self._cond.wait()
                batch = self._queue.popleft()
            if batch is None:
                return
            try:
                self._deliver(batch)
            finally:
                with self._cond:
                    self._pending -= len(batch)
                    self._cond.notify_all()

    def _deliver(self, batch: Rows) -> None:
        callbacks, recorder = self._targets()
        if not callbacks and recorder is None:
            return
        try:
            frame = self._decode(batch)
        except Exception as e:
            self._failed(e, None)
            return
        if recorder is not None and not recorder.closed:
            self.current = f"recording to {recorder.path}"
            try:
                recorder.write(frame)
            except Exception as e:
                self._failed(e, recorder)
        for cb in callbacks:
            self.current = f"on_event callback {cb!r}"
            try:
                cb(frame)
            except Exception as e:
                self._failed(e, None)
        self.current = None


__all__ = ["MAX_PENDING_ROWS", "STOP_TIMEOUT", "Delivery", "Recorder"]
