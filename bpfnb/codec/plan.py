"""BTF types to numpy dtypes, DataFrame columns, Python values and bytes.

:func:`codec_for` turns the BTF type of a map key or value (or a ring buffer event) into
a :class:`Codec`: one numpy structured dtype with explicit offsets and the C size as
itemsize, plus the rules that turn raw records into readable columns and Python values
into raw bytes.

Column rules
------------
- a scalar (int, enum, pointer, float, ``char[N]``) is one column named ``""``; the
  caller names it (``key``/``value``, see :mod:`bpfnb.frames`);
- struct and union fields keep their C names; nested fields are joined with ``.``
  (``in.a``); members of anonymous structs/unions appear under their own names;
- ``char[N]``, ``signed char[N]`` and ``unsigned char[N]`` (so also ``u8[N]``) decode
  to ``str`` up to the first NUL (UTF-8, invalid bytes replaced);
- enums become a pandas ``Categorical`` of enumerator names; when some value has no
  enumerator the column is an object column mixing names and numbers;
- fixed arrays of up to :data:`MAX_ARRAY_COLUMNS` non-char elements become one column per
  element (``arr[0]``, ``arr[1]``..., ``m[0][1]`` for 2-D); longer arrays become one
  column holding a list per row;
- bitfields are extracted (shift, mask, sign extension); pointers are unsigned ints;
  ``_Bool`` is bool; floats are floats; signed ints stay signed;
- a typedef known to :mod:`bpfnb.decoders` (``bpfnb_syscall_t``, ``bpfnb_errno_t``...)
  selects a decoder that shows names, timestamps or addresses instead of numbers.

Example
-------
>>> from bpfnb.spec import ObjectSpec
>>> spec = ObjectSpec.from_file("tests/data/types.bpf.o")           # doctest: +SKIP
>>> key = codec_for(spec.btf, spec.maps["by_key"].key)               # doctest: +SKIP
>>> key.c_name, key.size, key.dtype.names                            # doctest: +SKIP
('struct key_t', 20, ('pid', 'comm'))
>>> raw = key.to_bytes({"pid": 7, "comm": "bash"}, role="key")       # doctest: +SKIP
>>> key.to_python(raw)                                               # doctest: +SKIP
{'pid': 7, 'comm': 'bash'}
>>> arr = np.frombuffer(raw * 3, dtype=key.dtype)                    # doctest: +SKIP
>>> key.columns(arr)["comm"]                                         # doctest: +SKIP
array(['bash', 'bash', 'bash'], dtype=object)
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from bpfnb.codec import decoders
from bpfnb.errors import MapTypeError
from bpfnb.object import btf

MAX_ARRAY_COLUMNS = 16
"""Arrays with at most this many (non-char) elements get one column per element."""

_INT_FORMATS = {1: "u1", 2: "<u2", 4: "<u4", 8: "<u8"}
_SINT_FORMATS = {1: "i1", 2: "<i2", 4: "<i4", 8: "<i8"}
_FLOAT_FORMATS = {2: "<f2", 4: "<f4", 8: "<f8"}

Column = Any  # np.ndarray, pd.Categorical or list


# --------------------------------------------------------------------------------------
# Column extraction: one _Leaf per output column
# --------------------------------------------------------------------------------------


def _first_nonzero(x: np.ndarray) -> np.ndarray:
    """Per row of an (n, ncpu, ...) array, the first CPU's entry that is not all zero."""
    flat = x.reshape(x.shape[0], x.shape[1], -1)
    nz = (flat != 0).any(axis=2)
    idx = nz.argmax(axis=1)
    out: np.ndarray = x[np.arange(x.shape[0]), idx]
    return out


class _Leaf:
    """One output column: how to extract raw numbers and how to present them."""

    summable = False

    def __init__(self, name: str, field: str) -> None:
        self.name = name
        self.field = field

    def extract(self, arr: np.ndarray) -> np.ndarray:
        """Raw values of this column from records of any shape."""
        out: np.ndarray = arr[self.field]
        return out

    def present(self, raw: np.ndarray) -> Column:
        """Readable values from a 1-D result of :meth:`extract`."""
        return raw

    def reduce_cpus(self, raw: np.ndarray) -> np.ndarray:
        """Combine an (n, ncpu) extraction into one value per row."""
        return _first_nonzero(raw)


class _NumLeaf(_Leaf):
    """Ints, pointers and floats shown as numbers."""

    summable = True

    def reduce_cpus(self, raw: np.ndarray) -> np.ndarray:
        if raw.dtype.kind == "u":
            return raw.sum(axis=1, dtype=np.uint64)
        if raw.dtype.kind == "i":
            return raw.sum(axis=1, dtype=np.int64)
        out: np.ndarray = raw.sum(axis=1)
        return out


class _BoolLeaf(_Leaf):
    def present(self, raw: np.ndarray) -> Column:
        return raw != 0

    def reduce_cpus(self, raw: np.ndarray) -> np.ndarray:
        out: np.ndarray = (raw != 0).any(axis=1)
        return out


class _EnumLeaf(_Leaf):
    def __init__(self, name: str, field: str, enum: btf.Enum) -> None:
        super().__init__(name, field)
        self.enum = enum
        self.by_value: dict[int, str] = {}
        for v in enum.members:
            self.by_value.setdefault(_enum_storage(enum, v.value), v.name)
        self.categories = list(dict.fromkeys(v.name for v in enum.members))

    def present(self, raw: np.ndarray) -> Column:
        return _enum_column(raw, self.by_value, self.categories)


def _enum_storage(enum: btf.Enum, value: int) -> int:
    """The value as read back from memory with the enum's own signedness."""
    bits = enum.size * 8
    value &= (1 << bits) - 1
    if enum.signed and value >> (bits - 1):
        value -= 1 << bits
    return value


def _enum_column(raw: np.ndarray, by_value: dict[int, str], categories: list[str]) -> Column:
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


class _StrLeaf(_Leaf):
    """``char[N]``: text up to the first NUL."""

    def __init__(self, name: str, field: str, length: int) -> None:
        super().__init__(name, field)
        self.length = length

    def present(self, raw: np.ndarray) -> Column:
        return _decode_strings(raw, self.length)


def _decode_strings(raw: np.ndarray, length: int) -> np.ndarray:
    """Decode an (n, length) uint8 array to an object array of str (up to first NUL)."""
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


class _BitLeaf(_Leaf):
    """A bitfield read from a byte span of the record."""

    summable = True

    def __init__(
        self, name: str, field: str, nbytes: int, shift: int, bits: int, signed: bool
    ) -> None:
        super().__init__(name, field)
        self.nbytes, self.shift, self.bits, self.signed = nbytes, shift, bits, signed

    def extract(self, arr: np.ndarray) -> np.ndarray:
        span = arr[self.field]  # (..., nbytes) uint8
        acc = np.zeros(span.shape[:-1], dtype=np.uint64)
        for i in range(self.nbytes):
            acc |= span[..., i].astype(np.uint64) << np.uint64(8 * i)
        acc >>= np.uint64(self.shift)
        if self.bits < 64:
            acc &= np.uint64((1 << self.bits) - 1)
        if not self.signed:
            return acc
        val = acc.astype(np.int64)
        if self.bits < 64:
            sign = np.int64(1 << (self.bits - 1))
            val = (val ^ sign) - sign
        return val

    def reduce_cpus(self, raw: np.ndarray) -> np.ndarray:
        out: np.ndarray = raw.sum(axis=1, dtype=raw.dtype)
        return out


class _BitBoolLeaf(_BitLeaf):
    summable = False

    def present(self, raw: np.ndarray) -> Column:
        return raw != 0

    def reduce_cpus(self, raw: np.ndarray) -> np.ndarray:
        out: np.ndarray = (raw != 0).any(axis=1)
        return out


class _BitEnumLeaf(_BitLeaf):
    summable = False

    def __init__(
        self, name: str, field: str, nbytes: int, shift: int, bits: int, enum: btf.Enum
    ) -> None:
        super().__init__(name, field, nbytes, shift, bits, enum.signed)
        self.enum_leaf = _EnumLeaf(name, field, enum)

    def present(self, raw: np.ndarray) -> Column:
        return self.enum_leaf.present(raw)

    def reduce_cpus(self, raw: np.ndarray) -> np.ndarray:
        return _first_nonzero(raw)


class _BigIntLeaf(_Leaf):
    """Integers wider than 64 bits (``__int128``): Python ints in an object column."""

    def __init__(self, name: str, field: str, size: int, signed: bool) -> None:
        super().__init__(name, field)
        self.size, self.signed = size, signed

    def present(self, raw: np.ndarray) -> Column:
        rows = np.ascontiguousarray(raw, dtype=np.uint8).reshape(-1, self.size)
        return np.array(
            [int.from_bytes(r.tobytes(), "little", signed=self.signed) for r in rows],
            dtype=object,
        )


class _RawLeaf(_Leaf):
    """Values numpy cannot represent (``long double``): raw bytes."""

    def present(self, raw: np.ndarray) -> Column:
        rows = np.ascontiguousarray(raw, dtype=np.uint8).reshape(raw.shape[0], -1)
        return np.array([r.tobytes() for r in rows], dtype=object)


class _ListLeaf(_Leaf):
    """Long arrays: one list per row."""

    def present(self, raw: np.ndarray) -> Column:
        out = np.empty(raw.shape[0], dtype=object)
        out[:] = [list(r) for r in raw.tolist()]
        return out


class _DecodedLeaf(_Leaf):
    """A value whose typedef selects a decoder from :mod:`bpfnb.decoders`."""

    def __init__(self, name: str, field: str, decoder: decoders.Decoder) -> None:
        super().__init__(name, field)
        self.decoder = decoder

    def present(self, raw: np.ndarray) -> Column:
        return self.decoder.decode(raw)


# --------------------------------------------------------------------------------------
# Building a codec
# --------------------------------------------------------------------------------------


class _Builder:
    def __init__(self) -> None:
        self.names: list[str] = []
        self.formats: list[Any] = []
        self.offsets: list[int] = []
        self.leaves: list[_Leaf] = []
        self.used: set[str] = set()

    def field(self, name: str, fmt: Any, offset: int) -> str:
        base = name or "_"
        fname, i = base, 1
        while fname in self.used:
            i += 1
            fname = f"{base}#{i}"
        self.used.add(fname)
        self.names.append(fname)
        self.formats.append(fmt)
        self.offsets.append(offset)
        return fname

    def column(self, name: str) -> str:
        taken = {leaf.name for leaf in self.leaves}
        col, i = name, 1
        while col in taken:
            i += 1
            col = f"{name}#{i}"
        return col

    def add(self, t: btf.Type, name: str, offset: int) -> None:
        dec = decoders.lookup(btf.typedef_names(t))
        r = btf.resolve(t)
        if dec is not None:
            fmt = dec.numpy_format(btf.size_of(r), bool(getattr(r, "signed", False)))
            if fmt is not None:
                col = self.column(name)
                self.leaves.append(_DecodedLeaf(col, self.field(col, fmt, offset), dec))
                return
        if isinstance(r, _RawType):
            col = self.column(name)
            self.leaves.append(_RawLeaf(col, self.field(col, ("u1", (r.size,)), offset)))
        elif isinstance(r, btf.Int):
            self._int(r, name, offset)
        elif isinstance(r, btf.Enum):
            fmt = (_SINT_FORMATS if r.signed else _INT_FORMATS).get(r.size)
            col = self.column(name)
            if fmt is None:
                self.leaves.append(
                    _BigIntLeaf(col, self.field(col, ("u1", (r.size,)), offset), r.size, r.signed)
                )
            else:
                self.leaves.append(_EnumLeaf(col, self.field(col, fmt, offset), r))
        elif isinstance(r, btf.Pointer):
            col = self.column(name)
            self.leaves.append(_NumLeaf(col, self.field(col, "<u8", offset)))
        elif isinstance(r, btf.Float):
            col = self.column(name)
            fmt = _FLOAT_FORMATS.get(r.size)
            if fmt is None:
                self.leaves.append(_RawLeaf(col, self.field(col, ("u1", (r.size,)), offset)))
            else:
                self.leaves.append(_NumLeaf(col, self.field(col, fmt, offset)))
        elif isinstance(r, btf.Composite):
            for m in r.members:
                child = _join(name, m.name)
                if m.bitfield_size:
                    self._bitfield(m, child, offset * 8 + m.bit_offset)
                else:
                    self.add(m.type, child, offset + m.bit_offset // 8)
        elif isinstance(r, btf.Array):
            self._array(r, name, offset)
        # void, functions and forward declarations have no bytes to show.

    def _int(self, r: btf.Int, name: str, offset: int) -> None:
        col = self.column(name)
        if r.bits and r.bits < r.size * 8 and not r.bool:
            self._bits(col, offset * 8 + r.bit_offset, r.bits, r.signed, r)
            return
        if r.bool:
            self.leaves.append(_BoolLeaf(col, self.field(col, "u1", offset)))
            return
        fmt = (_SINT_FORMATS if r.signed else _INT_FORMATS).get(r.size)
        if fmt is None:
            self.leaves.append(
                _BigIntLeaf(col, self.field(col, ("u1", (r.size,)), offset), r.size, r.signed)
            )
        else:
            self.leaves.append(_NumLeaf(col, self.field(col, fmt, offset)))

    def _array(self, r: btf.Array, name: str, offset: int) -> None:
        elem = btf.resolve(r.element)
        if r.length == 0:
            return
        col = self.column(name)
        if isinstance(elem, btf.Int) and elem.size == 1 and not elem.bool:
            self.leaves.append(
                _StrLeaf(col, self.field(col, ("u1", (r.length,)), offset), r.length)
            )
            return
        esize = btf.size_of(elem)
        if r.length <= MAX_ARRAY_COLUMNS:
            for i in range(r.length):
                self.add(r.element, f"{name}[{i}]", offset + i * esize)
            return
        if isinstance(elem, (btf.Int, btf.Float, btf.Pointer)) and not (
            isinstance(elem, btf.Int) and elem.bool
        ):
            fmt: Any
            if isinstance(elem, btf.Float):
                fmt = _FLOAT_FORMATS.get(elem.size)
            elif isinstance(elem, btf.Pointer):
                fmt = "<u8"
            else:
                fmt = (_SINT_FORMATS if elem.signed else _INT_FORMATS).get(elem.size)
            if fmt is not None:
                self.leaves.append(_ListLeaf(col, self.field(col, (fmt, (r.length,)), offset)))
                return
        total = r.length * esize
        self.leaves.append(_RawLeaf(col, self.field(col, ("u1", (total,)), offset)))

    def _bitfield(self, m: btf.Member, name: str, bit_offset: int) -> None:
        r = btf.resolve(m.type)
        col = self.column(name)
        signed = bool(getattr(r, "signed", False))
        self._bits(col, bit_offset, m.bitfield_size, signed, r)

    def _bits(self, col: str, bit_offset: int, bits: int, signed: bool, r: btf.Type) -> None:
        start, shift = divmod(bit_offset, 8)
        nbytes = (shift + bits + 7) // 8
        if shift + bits > 64:
            raise MapTypeError(f"bitfield {col!r} spans more than 8 bytes")
        fname = self.field(f"{col}:bits", ("u1", (nbytes,)), start)
        leaf: _BitLeaf
        if isinstance(r, btf.Enum):
            leaf = _BitEnumLeaf(col, fname, nbytes, shift, bits, r)
        elif isinstance(r, btf.Int) and r.bool:
            leaf = _BitBoolLeaf(col, fname, nbytes, shift, bits, False)
        else:
            leaf = _BitLeaf(col, fname, nbytes, shift, bits, signed)
        self.leaves.append(leaf)


def _join(prefix: str, name: str) -> str:
    if not name:
        return prefix  # anonymous struct/union member: its fields are ours
    return f"{prefix}.{name}" if prefix else name


class Codec:
    """How to decode and encode one C type (a map key, a map value or an event).

    Attributes
    ----------
    type : btf.Type
        The BTF type.
    size : int
        ``sizeof`` the C type.
    dtype : numpy.dtype
        Structured dtype, explicit offsets, ``itemsize == size``. Field names are the
        column names (``"_"`` for a scalar); bitfields read their bytes through fields
        named ``"<column>:bits"``.
    c_name : str
        The C type name (``"u32"``, ``"struct key_t"``).
    description : str
        The C type with its members, used in error messages.
    column_names : list of str
        Output columns in order (``[""]`` for a scalar).
    scalar : bool
        True when the type is one column that the caller should name.
    """

    def __init__(self, t: btf.Type, size: int | None = None) -> None:
        self.type = t
        self.c_name = btf.c_name(btf.strip_cv(t))
        self.description = btf.describe(t)
        self.size = btf.size_of(t) if size is None else size
        b = _Builder()
        b.add(t, "", 0)
        self._leaves = b.leaves
        self.dtype = np.dtype(
            {"names": b.names, "formats": b.formats, "offsets": b.offsets, "itemsize": self.size}
        )
        self.column_names = [leaf.name for leaf in self._leaves]
        self.scalar = self.column_names == [""]

    def __repr__(self) -> str:
        return f"<Codec {self.description} size={self.size}>"

    # -- arrays ----------------------------------------------------------------------

    def padded_dtype(self, itemsize: int) -> np.dtype[Any]:
        """The same fields in records of *itemsize* bytes (per-CPU slots are 8-aligned)."""
        if itemsize < self.size:
            raise ValueError(f"itemsize {itemsize} is smaller than sizeof({self.c_name})")
        fields: Mapping[str, Any] = self.dtype.fields or {}
        return np.dtype(
            {
                "names": list(fields),
                "formats": [fields[n][0] for n in fields],
                "offsets": [fields[n][1] for n in fields],
                "itemsize": itemsize,
            }
        )

    def from_buffer(self, buf: Any, count: int = -1, itemsize: int | None = None) -> np.ndarray:
        """``np.frombuffer`` of *count* records (records of *itemsize* bytes if given)."""
        dt = (
            self.dtype if itemsize is None or itemsize == self.size else self.padded_dtype(itemsize)
        )
        return np.frombuffer(buf, dtype=dt, count=count)

    def columns(self, arr: np.ndarray) -> dict[str, Column]:
        """Decode records into ordered columns.

        Parameters
        ----------
        arr : numpy.ndarray
            1-D array of records of :attr:`dtype` (or of :meth:`padded_dtype`).

        Returns
        -------
        dict of str to array-like
            Column name -> values (numpy array, ``pd.Categorical`` or object array).
        """
        return {leaf.name: leaf.present(leaf.extract(arr)) for leaf in self._leaves}

    def sum_columns(self, arr: np.ndarray) -> dict[str, Column]:
        """Decode per-CPU records of shape (n, ncpu), combining CPUs per row.

        Numeric columns (ints, floats, pointers, bitfields) are summed in 64 bits; bools
        are OR-ed; enums, strings and decoded values take the first CPU whose value is
        not zero.
        """
        if arr.ndim != 2:
            raise ValueError("sum_columns() expects an (n, ncpu) array of records")
        return {
            leaf.name: leaf.present(leaf.reduce_cpus(leaf.extract(arr))) for leaf in self._leaves
        }

    # -- single values ---------------------------------------------------------------

    def to_python(self, raw: bytes | bytearray | memoryview) -> Any:
        """Decode one value: int, float, bool, str, dict of fields or list for arrays."""
        raw = bytes(raw)
        if len(raw) < self.size:
            raise ValueError(f"{len(raw)} bytes is too short for {self.c_name} ({self.size})")
        return _decode(self.type, raw, 0)

    def to_bytes(self, value: Any, role: str = "value") -> bytes:
        """Encode one value.

        Accepts an int (ints, enums, pointers), an enumerator name, a float, a str or bytes
        for ``char[N]``, a dict of fields or a tuple in field order for structs, a
        sequence for arrays, a decoded form for decoder typedefs (``"getpid"`` for a
        ``bpfnb_syscall_t``), or ``bytes`` of exactly :attr:`size`.

        Raises
        ------
        MapTypeError
            Naming the expected C type, e.g. ``key must be struct key_t {u32 pid; char
            comm[16]}: field 'comm': ...``.
        """
        if isinstance(value, (bytes, bytearray, memoryview)) and not self._is_char_array():
            raw = bytes(value)
            if len(raw) != self.size:
                raise MapTypeError(
                    f"{role} must be {self.description}: got {len(raw)} raw bytes, "
                    f"expected {self.size}"
                )
            return raw
        buf = bytearray(self.size)
        try:
            _encode(self.type, value, buf, 0, "")
        except _EncodeError as e:
            where = f"field {e.path!r}: " if e.path else ""
            raise MapTypeError(f"{role} must be {self.description}: {where}{e}") from None
        return bytes(buf)

    def _is_char_array(self) -> bool:
        r = btf.resolve(self.type)
        return isinstance(r, btf.Array) and _is_char(r.element)


def codec_for(types: btf.Btf | None, t: btf.Type, size: int | None = None) -> Codec:
    """Build the :class:`Codec` of BTF type *t*.

    Parameters
    ----------
    types : btf.Btf or None
        The BTF the type belongs to (kept for symmetry; types carry their references).
    t : btf.Type
        Key, value or event type.
    size : int, optional
        Record size when it differs from ``sizeof(t)`` (must not be smaller).
    """
    if size is not None and size < btf.size_of(t):
        raise MapTypeError(f"{size} bytes cannot hold {btf.c_name(t)} ({btf.size_of(t)} bytes)")
    return Codec(t, size)


def raw_codec(size: int) -> Codec:
    """A codec for maps declared with ``key_size``/``value_size`` only: ``u8[size]`` bytes.

    Values decode to ``bytes`` (one column) and encode from ``bytes`` or ints.
    """
    return Codec(_RawType(0, f"u8[{size}]", size=size))


class _RawType(btf.Composite):
    """Opaque bytes of a known size (no BTF)."""

    kind = "raw"


# --------------------------------------------------------------------------------------
# Python values
# --------------------------------------------------------------------------------------


class _EncodeError(Exception):
    def __init__(self, message: str, path: str) -> None:
        super().__init__(message)
        self.path = path


def _is_char(t: btf.Type) -> bool:
    r = btf.resolve(t)
    return isinstance(r, btf.Int) and r.size == 1 and not r.bool


def _int_from(raw: bytes, offset: int, size: int, signed: bool) -> int:
    return int.from_bytes(raw[offset : offset + size], "little", signed=signed)


def _decode(t: btf.Type, raw: bytes, offset: int) -> Any:
    dec = decoders.lookup(btf.typedef_names(t))
    r = btf.resolve(t)
    if isinstance(r, _RawType):
        return raw[offset : offset + r.size]
    if dec is not None:
        size = btf.size_of(r)
        fmt = dec.numpy_format(size, bool(getattr(r, "signed", False)))
        if fmt is not None:
            arr = np.frombuffer(raw[offset : offset + size], dtype=np.dtype(fmt))
            return dec.decode_one(arr[0] if arr.ndim == 1 and arr.size == 1 else arr)
    if isinstance(r, btf.Int):
        if r.size > 8 or r.bits == r.size * 8 or r.bool:
            v = _int_from(raw, offset, r.size, r.signed)
            return bool(v) if r.bool else v
        return _bits_value(raw, offset * 8 + r.bit_offset, r.bits, r.signed)
    if isinstance(r, btf.Enum):
        v = _int_from(raw, offset, r.size, r.signed)
        for e in r.members:
            if _enum_storage(r, e.value) == v:
                return e.name
        return v
    if isinstance(r, btf.Pointer):
        return _int_from(raw, offset, 8, False)
    if isinstance(r, btf.Float):
        if r.size == 4:
            return struct.unpack_from("<f", raw, offset)[0]
        if r.size == 8:
            return struct.unpack_from("<d", raw, offset)[0]
        if r.size == 2:
            return struct.unpack_from("<e", raw, offset)[0]
        return raw[offset : offset + r.size]
    if isinstance(r, btf.Composite):
        out: dict[str, Any] = {}
        for m in r.members:
            if m.bitfield_size:
                mr = btf.resolve(m.type)
                signed = bool(getattr(mr, "signed", False))
                v = _bits_value(raw, offset * 8 + m.bit_offset, m.bitfield_size, signed)
                if isinstance(mr, btf.Int) and mr.bool:
                    out[m.name] = bool(v)
                elif isinstance(mr, btf.Enum):
                    names = {_enum_storage(mr, e.value): e.name for e in reversed(mr.members)}
                    out[m.name] = names.get(v, v)
                else:
                    out[m.name] = v
                continue
            v = _decode(m.type, raw, offset + m.bit_offset // 8)
            if m.name:
                out[m.name] = v
            elif isinstance(v, dict):
                out.update(v)
        return out
    if isinstance(r, btf.Array):
        if _is_char(r.element):
            chunk = raw[offset : offset + r.length].split(b"\0", 1)[0]
            return chunk.decode("utf-8", errors="replace")
        esize = btf.size_of(r.element)
        return [_decode(r.element, raw, offset + i * esize) for i in range(r.length)]
    return None


def _bits_value(raw: bytes, bit_offset: int, bits: int, signed: bool) -> int:
    start, shift = divmod(bit_offset, 8)
    nbytes = (shift + bits + 7) // 8
    v = (int.from_bytes(raw[start : start + nbytes], "little") >> shift) & ((1 << bits) - 1)
    if signed and v >> (bits - 1):
        v -= 1 << bits
    return v


def _check_int(value: Any, bits: int, signed: bool, path: str, c: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise _EncodeError(f"expected an int for {c}, got {value!r}", path)
    v = int(value)
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    if not lo <= v <= hi:
        raise _EncodeError(f"{v} is out of range for {c} ({lo}..{hi})", path)
    return v


def _encode(t: btf.Type, value: Any, buf: bytearray, offset: int, path: str) -> None:
    c = btf.c_name(btf.strip_cv(t))
    dec = decoders.lookup(btf.typedef_names(t))
    r = btf.resolve(t)
    if isinstance(r, _RawType):
        if isinstance(value, (bytes, bytearray)) and len(value) == r.size:
            buf[offset : offset + r.size] = value
            return
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            v = _check_int(value, r.size * 8, False, path, c)
            buf[offset : offset + r.size] = v.to_bytes(r.size, "little")
            return
        raise _EncodeError(f"expected {r.size} bytes or an int, got {value!r}", path)
    if dec is not None and not isinstance(value, (int, np.integer, bytes)):
        try:
            value = dec.encode_one(value)
        except (ValueError, TypeError, KeyError) as e:
            raise _EncodeError(f"{value!r} is not a valid {c}: {e}", path) from None
    if isinstance(r, btf.Int):
        if r.bool:
            if isinstance(value, (bool, np.bool_)) or (
                isinstance(value, (int, np.integer)) and value in (0, 1)
            ):
                buf[offset] = int(bool(value))
                return
            raise _EncodeError(f"expected a bool for {c}, got {value!r}", path)
        if isinstance(value, (bytes, str)) and r.size == 1 and len(value) == 1:
            value = ord(value)
        if isinstance(value, bytes) and len(value) == r.size:
            buf[offset : offset + r.size] = value
            return
        bits = r.bits if r.bits and r.bits < r.size * 8 else r.size * 8
        v = _check_int(value, bits, r.signed, path, c)
        if bits < r.size * 8:
            _put_bits(buf, offset * 8 + r.bit_offset, bits, v)
        else:
            buf[offset : offset + r.size] = v.to_bytes(r.size, "little", signed=r.signed)
        return
    if isinstance(r, btf.Enum):
        v = _enum_value(r, value, path, c)
        buf[offset : offset + r.size] = (v & ((1 << (8 * r.size)) - 1)).to_bytes(r.size, "little")
        return
    if isinstance(r, btf.Pointer):
        v = _check_int(value, 64, False, path, c)
        buf[offset : offset + 8] = v.to_bytes(8, "little")
        return
    if isinstance(r, btf.Float):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise _EncodeError(f"expected a number for {c}, got {value!r}", path)
        fmt = {2: "<e", 4: "<f", 8: "<d"}.get(r.size)
        if fmt is None:
            raise _EncodeError(f"cannot encode {c} from Python", path)
        f = float(value)
        if r.size == 4 and math.isfinite(f) and abs(f) > 3.4028234663852886e38:
            raise _EncodeError(f"{f} is out of range for {c}", path)
        struct.pack_into(fmt, buf, offset, f)
        return
    if isinstance(r, btf.Array):
        _encode_array(r, value, buf, offset, path, c)
        return
    if isinstance(r, btf.Composite):
        _encode_composite(r, value, buf, offset, path, c)
        return
    raise _EncodeError(f"cannot encode a value of type {c}", path)


def _enum_value(r: btf.Enum, value: Any, path: str, c: str) -> int:
    if isinstance(value, str):
        for e in r.members:
            if e.name == value:
                return e.value
        names = ", ".join(e.name for e in r.members)
        raise _EncodeError(f"{value!r} is not an enumerator of {c} ({names})", path)
    return _check_int(
        value, r.size * 8, r.signed or (isinstance(value, int) and value < 0), path, c
    )


def _encode_array(r: btf.Array, value: Any, buf: bytearray, offset: int, path: str, c: str) -> None:
    if _is_char(r.element):
        if isinstance(value, str):
            value = value.encode("utf-8")
        if not isinstance(value, (bytes, bytearray)):
            raise _EncodeError(f"expected a str of at most {r.length} bytes, got {value!r}", path)
        if len(value) > r.length:
            raise _EncodeError(f"{bytes(value)!r} is {len(value)} bytes, longer than {c}", path)
        buf[offset : offset + len(value)] = value
        return
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, (Sequence, np.ndarray)):
        raise _EncodeError(f"expected a sequence of {r.length} values for {c}, got {value!r}", path)
    if len(value) != r.length:
        raise _EncodeError(f"expected {r.length} values for {c}, got {len(value)}", path)
    esize = btf.size_of(r.element)
    for i, v in enumerate(value):
        _encode(r.element, v, buf, offset + i * esize, f"{path}[{i}]")


def _field_names(r: btf.Composite) -> list[str]:
    """Names a dict may use for *r*: named members and those of anonymous members."""
    out: list[str] = []
    for m in r.members:
        inner = btf.resolve(m.type)
        if not m.name and isinstance(inner, btf.Composite):
            out.extend(_field_names(inner))
        elif m.name:
            out.append(m.name)
    return out


def _encode_composite(
    r: btf.Composite, value: Any, buf: bytearray, offset: int, path: str, c: str
) -> None:
    names = _field_names(r)
    items: list[tuple[btf.Member, Any]] = []
    if isinstance(value, Mapping):
        unknown = [k for k in value if k not in names]
        if unknown:
            raise _EncodeError(
                f"{c} has no field {unknown[0]!r} (fields: {', '.join(names)})", path
            )
        missing: list[str] = []
        for m in r.members:
            inner = btf.resolve(m.type)
            if m.name:
                if m.name in value:
                    items.append((m, value[m.name]))
                else:
                    missing.append(m.name)
            elif isinstance(inner, btf.Composite):
                sub_names = _field_names(inner)
                sub = {k: v for k, v in value.items() if k in sub_names}
                if sub:
                    items.append((m, sub))
                elif isinstance(inner, btf.Union):
                    missing.append(f"one of {'/'.join(sub_names)}")
                else:
                    missing.extend(sub_names)
        if isinstance(r, btf.Union):
            if not items:
                raise _EncodeError(f"give one member of {c}", path)
            if len(items) > 1:
                _check_union_agrees(r, items, offset, path, c)
        elif missing:
            raise _EncodeError(f"missing field(s) {', '.join(missing)}", path)
    elif isinstance(value, (tuple, list)) and isinstance(r, btf.Struct):
        if len(value) != len(r.members):
            shown = ", ".join(m.name or "{...}" for m in r.members)
            raise _EncodeError(
                f"expected {len(r.members)} values ({shown}), got {len(value)}", path
            )
        items = list(zip(r.members, value, strict=True))
    else:
        kind = "a dict of fields" + (" or a tuple" if isinstance(r, btf.Struct) else "")
        raise _EncodeError(f"expected {kind}, got {value!r}", path)
    for m, v in items:
        if not m.name:
            inner = btf.resolve(m.type)
            assert isinstance(inner, btf.Composite)
            _encode_composite(
                inner, v, buf, offset + m.bit_offset // 8, path, btf.c_name(btf.strip_cv(m.type))
            )
            continue
        sub_path = f"{path}.{m.name}" if path else m.name
        if m.bitfield_size:
            _encode_bitfield(m, v, buf, offset * 8 + m.bit_offset, sub_path)
        else:
            _encode(m.type, v, buf, offset + m.bit_offset // 8, sub_path)


def _check_union_agrees(
    r: btf.Composite, items: list[tuple[btf.Member, Any]], offset: int, path: str, c: str
) -> None:
    """Several members of a union were given (e.g. a decoded value): they must agree."""
    images = []
    for m, v in items:
        scratch = bytearray(r.size)
        _encode_composite(r, {m.name: v} if m.name else v, scratch, 0, path, c)
        images.append(bytes(scratch))
    if len(set(images)) > 1:
        shown = ", ".join(m.name or "{...}" for m, _ in items)
        raise _EncodeError(f"members {shown} of {c} give different bytes: give only one", path)


def _encode_bitfield(m: btf.Member, v: Any, buf: bytearray, bit: int, path: str) -> None:
    mr = btf.resolve(m.type)
    mc = btf.c_name(btf.strip_cv(m.type))
    if isinstance(mr, btf.Enum):
        iv = _enum_value(mr, v, path, mc)
        signed = mr.signed or iv < 0
    elif isinstance(mr, btf.Int) and mr.bool:
        if not isinstance(v, (bool, np.bool_, int)):
            raise _EncodeError(f"expected a bool, got {v!r}", path)
        iv, signed = int(bool(v)), False
    else:
        signed = bool(getattr(mr, "signed", False))
        iv = v
    iv = _check_int(iv, m.bitfield_size, signed, path, f"{mc} : {m.bitfield_size}")
    _put_bits(buf, bit, m.bitfield_size, iv)


def _put_bits(buf: bytearray, bit_offset: int, bits: int, value: int) -> None:
    start, shift = divmod(bit_offset, 8)
    nbytes = (shift + bits + 7) // 8
    mask = ((1 << bits) - 1) << shift
    cur = int.from_bytes(buf[start : start + nbytes], "little")
    cur = (cur & ~mask) | ((value << shift) & mask)
    buf[start : start + nbytes] = cur.to_bytes(nbytes, "little")
