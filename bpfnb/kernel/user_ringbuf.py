"""``BPF_MAP_TYPE_USER_RINGBUF``: records written from Python, drained by a BPF program.

The BPF side calls ``bpf_user_ringbuf_drain(&requests, callback, ctx, 0)``; each
record reaches the callback as a dynptr. The record's C type is declared in the cell
with ``BPFNB_EVENT_TYPE(requests, struct request);`` (``bpfnb/events.h``), so Python
can encode typed records:

- ``prog.requests.send({"pid": 42, "limit": 7})`` sends one record (a dict of fields,
  a tuple in field order, a scalar for scalar types, or raw bytes);
- ``prog.requests.send(df)`` sends one record per DataFrame row (columns named like
  the fields) and returns how many were sent.

bpfnb is the producer of the ring (the libbpf that pylibbpf ships has no user ring
buffer API): the consumer page is mapped read-only, the producer page and the data
area (twice in a row, so a record that wraps is contiguous) read-write. A record is
reserved by writing its header with the busy bit and advancing the producer position,
then filled, then committed by clearing the busy bit; the kernel consumes records in
order and stops at a busy one. A full ring raises :class:`UserRingFullError`.
"""

from __future__ import annotations

import contextlib
import mmap
import threading
from typing import Any

import numpy as np
import pandas as pd

from bpfnb.build import eventtypes
from bpfnb.codec.plan import Codec, codec_for
from bpfnb.errors import BpfnbError, EventTypeError, UnsupportedOperationError
from bpfnb.kernel import bpf
from bpfnb.kernel.fd import OwnedFd
from bpfnb.kernel.maps import Map
from bpfnb.object.spec import MapSpec, ObjectSpec

BUSY_BIT = 1 << 31
HEADER_SIZE = 8


class UserRingFullError(BpfnbError):
    """The user ring buffer has no room for the record (the BPF side drains too slowly)."""


class UserRingBuffer(Map):
    """A user ring buffer: ``send(record_or_dataframe)``; it cannot be read back."""

    def __init__(self, fd: OwnedFd, spec: MapSpec, obj: ObjectSpec | None = None) -> None:
        super().__init__(fd, spec, obj)
        self._ring_lock = threading.Lock()
        self._maps: tuple[mmap.mmap, mmap.mmap] | None = None
        self._cons: np.ndarray | None = None
        self._prod: np.ndarray | None = None
        self._data: np.ndarray | None = None
        self._size = 0
        self._record: Codec | None = None
        self.sent = 0

    @property
    def key_columns(self) -> list[str]:
        """No key columns."""
        return []

    # -- the record type ---------------------------------------------------------------

    @property
    def record_codec(self) -> Codec:
        """How records encode: the type of ``BPFNB_EVENT_TYPE(map, type)`` in the cell.

        Raises
        ------
        EventTypeError
            When the cell does not declare the record type.
        """
        if self._record is not None:
            return self._record
        owner = self.owner
        source = owner.source if owner is not None else ""
        obj = self.obj
        try:
            name = eventtypes.event_type_name(source, self.name)
        except EventTypeError as err:
            raise EventTypeError(
                f"user ring buffer {self.name!r}: declare its record type with "
                f"BPFNB_EVENT_TYPE({self.name}, struct ...); ({err})"
            ) from None
        t = obj.find_type(name) if obj is not None and name else None
        if t is None:
            raise EventTypeError(
                f"user ring buffer {self.name!r}: type {name!r} is not in the object's BTF"
            )
        self._record = codec_for(obj.btf if obj else None, t)
        return self._record

    # -- the ring ---------------------------------------------------------------------

    def _open(self) -> None:
        page = mmap.PAGESIZE
        fd = self.fd
        size = bpf.map_info(fd).max_entries
        cons = mmap.mmap(fd, page, mmap.MAP_SHARED, mmap.PROT_READ)
        try:
            prod = mmap.mmap(
                fd, page + 2 * size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, offset=page
            )
        except OSError:
            cons.close()
            raise
        self._maps = (cons, prod)
        self._size = size
        self._cons = np.frombuffer(cons, dtype=np.uint64, count=1)
        self._prod = np.frombuffer(prod, dtype=np.uint64, count=1)
        self._data = np.frombuffer(prod, dtype=np.uint8, offset=page)
        owner = self.owner
        if owner is not None:
            owner.on_close(self.close_ring)

    def close_ring(self) -> None:
        """Unmap the ring (the program's close does it)."""
        with self._ring_lock:
            maps, self._maps = self._maps, None
            self._cons = self._prod = self._data = None
        for m in maps or ():
            with contextlib.suppress(BufferError):  # a numpy view still exports it
                m.close()

    def _send_bytes(self, records: list[bytes]) -> int:
        with self._ring_lock:
            if self._maps is None:
                self._open()
            cons, prod, data = self._cons, self._prod, self._data
            assert cons is not None and prod is not None and data is not None
            mask = self._size - 1
            for raw in records:
                total = (len(raw) + HEADER_SIZE + 7) & ~7
                producer = int(prod[0])
                if total > self._size - (producer - int(cons[0])):
                    raise UserRingFullError(
                        f"user ring buffer {self.name!r} is full after {self.sent} "
                        "record(s): the BPF program has not drained it yet"
                    )
                at = producer & mask
                header = data[at : at + HEADER_SIZE].view(np.uint32)
                header[0] = len(raw) | BUSY_BIT
                header[1] = 0
                # x86 keeps stores in order: the header is written before the position
                prod[0] = producer + total
                start = at + HEADER_SIZE
                data[start : start + len(raw)] = np.frombuffer(raw, dtype=np.uint8)
                header[0] = len(raw)  # committed: the kernel may consume it now
                self.sent += 1
        return len(records)

    def send(self, records: Any) -> int:
        """Send one record, or one per row of a DataFrame; return how many were sent.

        Parameters
        ----------
        records : dict, tuple, scalar, bytes or pandas.DataFrame
            A record in any form the record type's codec encodes (raw ``bytes`` are
            sent as they are), or a DataFrame whose columns are the fields.
        """
        if isinstance(records, bytes | bytearray):
            return self._send_bytes([bytes(records)])
        codec = self.record_codec
        if isinstance(records, pd.DataFrame):
            rows: list[Any] = records.to_dict(orient="records")
            if codec.scalar and len(records.columns) == 1:
                rows = [next(iter(r.values())) for r in rows]
            return self._send_bytes([codec.to_bytes(r, role="record") for r in rows])
        return self._send_bytes([codec.to_bytes(records, role="record")])

    # -- what cannot be done ----------------------------------------------------------

    def _write_only(self) -> UnsupportedOperationError:
        return UnsupportedOperationError(
            f"user ring buffer {self.name!r} is written from Python and read by the BPF "
            "program: use send(record) or send(dataframe)"
        )

    def df(self, per_cpu: bool = False, *, batch: bool = True) -> pd.DataFrame:
        """Refused: records are consumed by the BPF program, not by Python."""
        raise self._write_only()

    def __len__(self) -> int:
        raise self._write_only()

    def __iter__(self) -> Any:
        raise self._write_only()


__all__ = ["UserRingBuffer", "UserRingFullError"]
