"""The C copy loop of the ring buffer consumer, when it was built (else numpy).

``_ringcopy.c`` is an optional extension (``setup.py``): ``make setup`` builds it with
gcc on Debian; where it cannot be built, bpfnb uses its numpy path and works the same,
only with more consumer CPU per record (about 3x, measured by
``benchmarks/ringbuf.py``). It is called through ctypes, which releases the GIL for the
call. ``BPFNB_RINGCOPY=0`` in the environment forces the numpy path.

Why C: the numpy path needs two passes over the ring (one strided comparison of the
record headers to find runs, one strided copy per run) plus Python work per drain; a
profile of a saturated 128-byte ring shows 14 ns/record in the header scan and 30 in
the copy, against 10-16 ns/record for a C loop doing both in one pass. That difference
is what separates losing and not losing events when two producers share the 2 CPUs
with the consumer.
"""

from __future__ import annotations

import ctypes
import importlib.machinery
import os
from pathlib import Path

import numpy as np

_U64 = ctypes.c_uint64
_P = ctypes.c_void_p


def _load() -> ctypes.CDLL | None:
    if os.environ.get("BPFNB_RINGCOPY", "1") == "0":
        return None
    here = Path(__file__).resolve().parent
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = here / f"_ringcopy{suffix}"
        if path.is_file():
            try:
                lib = ctypes.CDLL(str(path))
            except OSError:
                return None
            fn = lib.bpfnb_ring_copy
            fn.restype = ctypes.c_long
            fn.argtypes = [_P, _U64, _U64, _U64, _P, _U64, _P, _U64, _P, _P, _P, _U64]
            return lib
    return None


_LIB = _load()
#: Whether the C copy loop is used.
AVAILABLE = _LIB is not None


def copy(
    data: np.ndarray,
    size: int,
    consumer: int,
    producer: int,
    rows: np.ndarray,
    sizes: np.ndarray,
    publish: np.ndarray | None = None,
) -> tuple[int, int, int]:
    """Copy committed records from ``consumer`` into ``rows`` / ``sizes`` (C loop).

    Parameters
    ----------
    data : numpy.ndarray
        The ring's data area mapped twice (uint8, ``2 * size`` bytes).
    size : int
        The data area's size (a power of two).
    consumer, producer : int
        Ring positions.
    rows : numpy.ndarray
        ``(k, width)`` uint8 rows with contiguous rows and rows one after the other.
    sizes : numpy.ndarray
        ``(k,)`` uint32.
    publish : numpy.ndarray, optional
        The ring's consumer position (one uint64 in the consumer page): stored every
        1/16 of the ring during the copy, so producers get space back early.

    Returns
    -------
    (int, int, int)
        Records copied, the position after the last record consumed, and discarded
        records skipped.
    """
    assert _LIB is not None
    assert rows.flags.c_contiguous and sizes.flags.c_contiguous and sizes.dtype == np.uint32
    pos = _U64(consumer)
    discarded = _U64(0)
    n = _LIB.bpfnb_ring_copy(
        data.ctypes.data,
        size - 1,
        consumer,
        producer,
        rows.ctypes.data,
        rows.shape[1],
        sizes.ctypes.data,
        rows.shape[0],
        ctypes.byref(pos),
        ctypes.byref(discarded),
        None if publish is None else publish.ctypes.data,
        max(size // 16, 8),
    )
    return int(n), int(pos.value), int(discarded.value)


__all__ = ["AVAILABLE", "copy"]
