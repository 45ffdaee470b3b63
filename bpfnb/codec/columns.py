"""Vectorised passes from raw record fields to readable columns, and per-CPU reduction.

The nodes of a field plan (:mod:`bpfnb.codec.nodes`) read their raw values out of a
whole record array in one numpy view, then turn them into a column with one of the
functions here. None of them loops in Python over the rows of a numeric column; the
ones that build Python objects (text, bytes, enum names) work on the distinct values
or in one C-level conversion.

Per-CPU values arrive as ``(n, ncpu)`` record arrays; a field then reads as
``(n, ncpu, ...)`` and is combined into one value per row before being presented:
numbers are summed in 64 bits (:func:`sum_cpus`), bools OR-ed (:func:`any_cpus`), and
everything else takes the first CPU whose value is not zero (:func:`first_nonzero`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

Column = Any
"""A decoded column: a numpy array, a ``pandas.Categorical`` or an object array."""


# -- per-CPU reduction --------------------------------------------------------------------


def first_nonzero(raw: np.ndarray) -> np.ndarray:
    """Per row of an ``(n, ncpu, ...)`` array, the first CPU's entry that is not all zero."""
    inner = int(np.prod(raw.shape[2:], dtype=np.int64))
    flat = raw.reshape(raw.shape[0], raw.shape[1], inner)
    nonzero = (flat != 0).any(axis=2)
    idx = nonzero.argmax(axis=1)
    out: np.ndarray = raw[np.arange(raw.shape[0]), idx]
    return out


def sum_cpus(raw: np.ndarray) -> np.ndarray:
    """Sum an ``(n, ncpu)`` array across CPUs: ints in 64 bits (no wrap-around of u32)."""
    if raw.dtype.kind == "u":
        return raw.sum(axis=1, dtype=np.uint64)
    if raw.dtype.kind == "i":
        return raw.sum(axis=1, dtype=np.int64)
    out: np.ndarray = raw.sum(axis=1)
    return out


def any_cpus(raw: np.ndarray) -> np.ndarray:
    """OR an ``(n, ncpu)`` array of truth values across CPUs."""
    out: np.ndarray = (raw != 0).any(axis=1)
    return out


# -- presentation -------------------------------------------------------------------------


def bits_column(span: np.ndarray, shift: int, bits: int, signed: bool) -> np.ndarray:
    """Extract a bitfield from ``(..., nbytes)`` little-endian byte spans.

    Returns uint64 values, or int64 sign-extended ones when *signed*.
    """
    acc = np.zeros(span.shape[:-1], dtype=np.uint64)
    for i in range(span.shape[-1]):
        acc |= span[..., i].astype(np.uint64) << np.uint64(8 * i)
    acc >>= np.uint64(shift)
    if bits < 64:
        acc &= np.uint64((1 << bits) - 1)
    if not signed:
        return acc
    val = acc.astype(np.int64)
    if bits < 64:
        sign = np.int64(1 << (bits - 1))
        val = (val ^ sign) - sign
    return val


def enum_column(raw: np.ndarray, by_value: dict[int, str], categories: list[str]) -> Column:
    """Enumerator names as a ``Categorical``; an object column when a value has no name."""
    uniq, inverse = np.unique(raw, return_inverse=True)
    names = [by_value.get(int(u)) for u in uniq]
    if all(n is not None for n in names):
        cat_index = {c: i for i, c in enumerate(categories)}
        codes = np.array([cat_index[n] for n in names if n is not None], dtype=np.int32)
        return pd.Categorical.from_codes(
            codes[inverse.reshape(-1)], categories=pd.Index(categories)
        )
    mixed = np.array(
        [n if n is not None else int(u) for n, u in zip(names, uniq, strict=True)], dtype=object
    )
    return mixed[inverse.reshape(-1)]


def text_column(raw: np.ndarray, length: int) -> np.ndarray:
    """``(n, length)`` bytes -> object array of ``str`` up to the first NUL (UTF-8)."""
    m = np.ascontiguousarray(raw, dtype=np.uint8).reshape(-1, length)
    if length == 0:
        return np.full(m.shape[0], "", dtype=object)
    zero = m == 0
    if zero.any():
        m = np.where(np.cumsum(zero, axis=1, dtype=np.int32) > 0, np.uint8(0), m)
    s = np.ascontiguousarray(m).view(f"S{length}").reshape(-1)
    if not (m >= 0x80).any():
        out: np.ndarray = s.astype(f"U{length}").astype(object)
        return out
    return np.array([b.decode("utf-8", errors="replace") for b in s.tolist()], dtype=object)


def bytes_column(raw: np.ndarray) -> np.ndarray:
    """``(n, ...)`` raw values -> object array of ``bytes`` of the full width (NULs kept)."""
    n = raw.shape[0]
    width = raw.dtype.itemsize * int(np.prod(raw.shape[1:], dtype=np.int64))
    out = np.empty(n, dtype=object)
    if n == 0:
        return out
    if width == 0:
        out[:] = [b""] * n
        return out
    m = np.ascontiguousarray(raw).view(np.uint8).reshape(n, width)
    out[:] = m.view(f"V{width}").reshape(-1).tolist()
    return out


def list_column(raw: np.ndarray) -> np.ndarray:
    """``(n, length)`` numbers -> object array holding one list per row."""
    out = np.empty(raw.shape[0], dtype=object)
    out[:] = [list(r) for r in raw.tolist()]
    return out


def bigint_column(raw: np.ndarray, size: int, signed: bool) -> np.ndarray:
    """``(n, size)`` bytes of integers wider than 64 bits -> object array of Python ints."""
    rows = np.ascontiguousarray(raw, dtype=np.uint8).reshape(-1, size)
    return np.array(
        [int.from_bytes(r.tobytes(), "little", signed=signed) for r in rows], dtype=object
    )
