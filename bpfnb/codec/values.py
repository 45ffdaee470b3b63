"""One Python value <-> bytes: the checks and bit twiddling the plan nodes share.

The nodes of a field plan (:mod:`bpfnb.codec.nodes`) decode one value from the bytes of
a record and encode one value into a record buffer. What they have in common lives
here: integer range checks with the messages users see, bitfield reads and writes, and
the accepted spellings of a byte array. Errors are raised as :class:`EncodeError`
carrying the field path (``bf.lo``, ``arr[2]``); :class:`bpfnb.codec.plan.Codec` turns
them into one :class:`~bpfnb.errors.MapTypeError` that names the whole C type.
"""

from __future__ import annotations

import reprlib
from collections.abc import Sequence
from typing import Any

import numpy as np

BYTES_LIKE = (bytes, bytearray, memoryview)


class EncodeError(Exception):
    """A value does not fit a field; *path* names the field (``""`` for the whole value)."""

    def __init__(self, message: str, path: str) -> None:
        super().__init__(message)
        self.path = path


_SHOWN = reprlib.Repr()
_SHOWN.maxstring = _SHOWN.maxother = 80
_SHOWN.maxlist = _SHOWN.maxtuple = _SHOWN.maxdict = _SHOWN.maxset = 8


def shown(value: Any) -> str:
    """``repr(value)`` cut to a readable length for a message (a 1 MB bytes, a long list)."""
    return _SHOWN.repr(value)


def is_int(value: Any) -> bool:
    """Whether *value* is an integer that is not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_int(value: Any, bits: int, signed: bool, path: str, c: str) -> int:
    """*value* as an int that fits *bits* bits, or an :class:`EncodeError` naming *c*."""
    if not is_int(value):
        raise EncodeError(f"expected an int for {c}, got {shown(value)}", path)
    v = int(value)
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    if not lo <= v <= hi:
        raise EncodeError(f"{v} is out of range for {c} ({lo}..{hi})", path)
    return v


def int_from(raw: bytes, pos: int, size: int, signed: bool) -> int:
    """The little-endian integer of *size* bytes at *pos*."""
    return int.from_bytes(raw[pos : pos + size], "little", signed=signed)


def get_bits(raw: bytes, bit_offset: int, bits: int, signed: bool) -> int:
    """Read a bitfield of *bits* bits starting *bit_offset* bits into *raw*."""
    start, shift = divmod(bit_offset, 8)
    nbytes = (shift + bits + 7) // 8
    v = (int.from_bytes(raw[start : start + nbytes], "little") >> shift) & ((1 << bits) - 1)
    if signed and v >> (bits - 1):
        v -= 1 << bits
    return v


def put_bits(buf: bytearray, bit_offset: int, bits: int, value: int) -> None:
    """Write *value* into the bitfield of *bits* bits at *bit_offset*, keeping other bits."""
    start, shift = divmod(bit_offset, 8)
    nbytes = (shift + bits + 7) // 8
    mask = ((1 << bits) - 1) << shift
    cur = int.from_bytes(buf[start : start + nbytes], "little")
    cur = (cur & ~mask) | ((value << shift) & mask)
    buf[start : start + nbytes] = cur.to_bytes(nbytes, "little")


def byte_string(value: Any, length: int, path: str, c: str) -> bytes:
    """The bytes of a byte array (``u8[N]``) given as bytes or as ints 0..255.

    ``bytes``, ``bytearray`` and ``memoryview`` are taken as they are; a list, tuple or
    numpy array of ints 0..255 is the same thing spelled as numbers. Either may be
    shorter than *length* (the rest is zero) but not longer.
    """
    if isinstance(value, BYTES_LIKE):
        data = bytes(value)
    elif isinstance(value, (Sequence, np.ndarray)) and not isinstance(value, str):
        items = list(value.tolist() if isinstance(value, np.ndarray) else value)
        for i, v in enumerate(items):
            check_int(v, 8, False, f"{path}[{i}]", "a byte")
        data = bytes(int(v) for v in items)
    else:
        raise EncodeError(
            f"expected bytes or a list of at most {length} ints 0..255 for {c}, got {shown(value)}",
            path,
        )
    if len(data) > length:
        raise EncodeError(f"{shown(data)} is {len(data)} bytes, longer than {c}", path)
    return data
