"""The nodes of a field plan: one class per kind of C value.

:mod:`bpfnb.codec.plan` turns a BTF type into a tree of these nodes once per codec.
Each node sits at a fixed byte offset of the record and knows, for its own kind, all
four things bpfnb does with a value:

- its numpy storage (:attr:`Leaf.storage`: the field of the structured dtype),
- its column (:meth:`Leaf.extract` a raw view out of a record array, :meth:`Leaf.present`
  it, :meth:`Leaf.reduce_cpus` for per-CPU values),
- how to decode one value from bytes (:meth:`Node.decode`),
- how to encode one value into bytes (:meth:`Node.encode`), with the error messages that
  name the C type and the field path.

Leaves make exactly one column each; :class:`StructNode` and :class:`ArrayColumnsNode`
make the columns of their children; :class:`ListArrayNode` (long arrays) makes one list
column. Offsets are absolute within the plan; :meth:`Node.decode` and
:meth:`Node.encode` take a *base* added to them (the element template of a long array is
planned at offset 0 and used at each element's place).

Kinds
-----
=========================  ==============================================================
node                       C values
=========================  ==============================================================
:class:`IntNode`           integers of 1, 2, 4, 8 bytes
:class:`BigIntNode`        wider integers (``__int128``): Python ints
:class:`BoolNode`          ``_Bool``
:class:`EnumNode`          enums: enumerator names (numbers when there is none)
:class:`FloatNode`         ``float``, ``double``, ``_Float16`` (``long double``: bytes)
:class:`PointerNode`       pointers: unsigned ints
:class:`RawBytesNode`      maps declared with sizes only: ``bytes`` of the whole value
:class:`TextNode`          ``char[N]``: str up to the first NUL
:class:`ByteArrayNode`     ``unsigned char[N]``/``u8[N]``: ``bytes`` of length N
:class:`DecodedNode`       a value shown through a :class:`~bpfnb.codec.decoders.Decoder`
:class:`BitfieldNode`      bitfields (ints, bools, enums)
:class:`StructNode`        structs and unions
:class:`ArrayColumnsNode`  short arrays: one column per element
:class:`ListArrayNode`     long arrays: one list (or bytes) column
:class:`NothingNode`       ``void``, functions, forward declarations: no bytes
=========================  ==============================================================
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from bpfnb.codec import columns, decoders, roles
from bpfnb.codec.columns import Column
from bpfnb.codec.values import (
    BYTES_LIKE,
    EncodeError,
    byte_string,
    check_int,
    get_bits,
    int_from,
    is_int,
    put_bits,
    shown,
)
from bpfnb.object import btf

INT_FORMATS = {1: "u1", 2: "<u2", 4: "<u4", 8: "<u8"}
SINT_FORMATS = {1: "i1", 2: "<i2", 4: "<i4", 8: "<i8"}
FLOAT_FORMATS = {2: "<f2", 4: "<f4", 8: "<f8"}
_STRUCT_FLOATS = {2: "<e", 4: "<f", 8: "<d"}
_FLOAT32_MAX = 3.4028234663852886e38


class Node:
    """One C value at a fixed offset of the record.

    Attributes
    ----------
    path : str
        Field path and column name: ``""`` for the whole value, ``in.a``, ``arr[2]``.
    offset, size : int
        Byte offset in the record and ``sizeof`` the value.
    c_name : str
        The C type as messages name it (``u32``, ``struct key_t``, ``char[16]``).
    type : btf.Type or None
        The BTF type (None for bitfields and raw values).
    takes_bytes : bool
        The node encodes ``bytes`` itself (text and byte arrays); for other nodes a
        whole value given as bytes is raw memory of exactly :attr:`size` bytes.
    """

    takes_bytes = False

    def __init__(self, path: str, offset: int, size: int, c_name: str, t: btf.Type | None):
        self.path = path
        self.offset = offset
        self.size = size
        self.c_name = c_name
        self.type = t

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.path!r} {self.c_name} @{self.offset}>"

    def leaves(self) -> Iterator[Leaf]:
        """The leaves making this node's columns, in column order."""
        yield from ()

    def walk(self) -> Iterator[Node]:
        """This node and every node below it that has a path of its own."""
        yield self

    def decode(self, raw: bytes, base: int) -> Any:
        """The Python value of this node in *raw* (its record starting at *base*)."""
        raise NotImplementedError

    def encode(self, value: Any, buf: bytearray, base: int, path: str) -> None:
        """Write *value* into *buf* (its record starting at *base*); *path* names it."""
        raise NotImplementedError


class Leaf(Node):
    """A node that makes exactly one column from one field of the dtype.

    Attributes
    ----------
    storage : numpy.dtype
        The field's format (``<u4``, ``u1[16]``...).
    field_offset : int
        The field's byte offset (the first byte of a bitfield's span).
    field_suffix : str
        Added to the column name to name the dtype field (``":bits"`` for bitfields).
    natural_role : str or None
        The column's role from its kind; None lets the field name decide.
    default_role : str
        The role when neither kind nor name says one.
    """

    field_suffix = ""
    natural_role: ClassVar[str | None] = None
    default_role: ClassVar[str] = "other"

    def __init__(
        self, path: str, offset: int, size: int, c_name: str, t: btf.Type | None, storage: Any
    ) -> None:
        super().__init__(path, offset, size, c_name, t)
        self.storage: np.dtype[Any] = np.dtype(storage)
        self.field_offset = offset

    def leaves(self) -> Iterator[Leaf]:
        yield self

    def extract(self, arr: np.ndarray) -> np.ndarray:
        """Raw values of this column from records of any shape (a view, no copy)."""
        out: np.ndarray = arr.getfield(self.storage, self.field_offset)
        return out

    def present(self, raw: np.ndarray) -> Column:
        """Readable values from a 1-D result of :meth:`extract`."""
        return raw

    def reduce_cpus(self, raw: np.ndarray) -> np.ndarray:
        """Combine an ``(n, ncpu, ...)`` extraction into one value per row."""
        return columns.first_nonzero(raw)

    def role_and_unit(self) -> tuple[str, str | None]:
        """The column's role and unit (see :mod:`bpfnb.codec.roles`)."""
        if self.natural_role is not None:
            return self.natural_role, None
        role, unit = roles.name_role(self.path)
        return role or self.default_role, unit

    def decoder_name(self) -> str | None:
        """The name of the decoder that shows this column, None for plain values."""
        return None


# -- numbers ------------------------------------------------------------------------------


class IntNode(Leaf):
    """An integer of 1, 2, 4 or 8 bytes: a numeric column, summed across CPUs."""

    default_role = "counter"

    def __init__(
        self, path: str, offset: int, c_name: str, t: btf.Type, size: int, signed: bool
    ) -> None:
        fmt = (SINT_FORMATS if signed else INT_FORMATS).get(size, ("u1", (size,)))
        super().__init__(path, offset, size, c_name, t, fmt)
        self.signed = signed

    def reduce_cpus(self, raw: np.ndarray) -> np.ndarray:
        return columns.sum_cpus(raw)

    def decode(self, raw: bytes, base: int) -> Any:
        return int_from(raw, base + self.offset, self.size, self.signed)

    def encode(self, value: Any, buf: bytearray, base: int, path: str) -> None:
        pos = base + self.offset
        if isinstance(value, (bytes, str)) and self.size == 1 and len(value) == 1:
            value = ord(value)
        if isinstance(value, bytes) and len(value) == self.size:
            buf[pos : pos + self.size] = value
            return
        v = check_int(value, self.size * 8, self.signed, path, self.c_name)
        buf[pos : pos + self.size] = v.to_bytes(self.size, "little", signed=self.signed)


class BigIntNode(IntNode):
    """An integer wider than 64 bits (``__int128``): Python ints in an object column."""

    default_role = "other"

    def present(self, raw: np.ndarray) -> Column:
        return columns.bigint_column(raw, self.size, self.signed)

    def reduce_cpus(self, raw: np.ndarray) -> np.ndarray:
        return columns.first_nonzero(raw)


class BoolNode(Leaf):
    """``_Bool``: a bool column, OR-ed across CPUs."""

    natural_role = "other"

    def __init__(self, path: str, offset: int, c_name: str, t: btf.Type) -> None:
        super().__init__(path, offset, 1, c_name, t, "u1")

    def present(self, raw: np.ndarray) -> Column:
        return raw != 0

    def reduce_cpus(self, raw: np.ndarray) -> np.ndarray:
        return columns.any_cpus(raw)

    def decode(self, raw: bytes, base: int) -> Any:
        return bool(raw[base + self.offset])

    def encode(self, value: Any, buf: bytearray, base: int, path: str) -> None:
        if isinstance(value, (bool, np.bool_)) or (
            isinstance(value, (int, np.integer)) and value in (0, 1)
        ):
            buf[base + self.offset] = int(bool(value))
            return
        raise EncodeError(f"expected a bool for {self.c_name}, got {shown(value)}", path)


class EnumTable:
    """The enumerators of an enum as read back from memory, shared by its nodes."""

    def __init__(self, enum: btf.Enum, c_name: str) -> None:
        self.enum = enum
        self.c_name = c_name
        self.by_value: dict[int, str] = {}
        for v in enum.members:
            self.by_value.setdefault(self.stored(v.value), v.name)
        self.categories = list(dict.fromkeys(v.name for v in enum.members))

    def stored(self, value: int) -> int:
        """*value* as read back from memory with the enum's own size and signedness."""
        bits = self.enum.size * 8
        value &= (1 << bits) - 1
        if self.enum.signed and value >> (bits - 1):
            value -= 1 << bits
        return value

    def name(self, value: int) -> Any:
        """The enumerator name of a stored value, or the value itself."""
        return self.by_value.get(value, value)

    def value(self, value: Any, path: str, c: str) -> int:
        """The number of an enumerator name or an int (range-checked for *c*)."""
        if isinstance(value, str):
            for e in self.enum.members:
                if e.name == value:
                    return e.value
            names = ", ".join(e.name for e in self.enum.members)
            raise EncodeError(f"{shown(value)} is not an enumerator of {c} ({names})", path)
        signed = self.enum.signed or (isinstance(value, int) and value < 0)
        return check_int(value, self.enum.size * 8, signed, path, c)


class EnumNode(Leaf):
    """An enum: a ``Categorical`` of enumerator names (object column with stray numbers)."""

    natural_role = "enum"

    def __init__(self, path: str, offset: int, c_name: str, t: btf.Type, r: btf.Enum) -> None:
        fmt = (SINT_FORMATS if r.signed else INT_FORMATS)[r.size]
        super().__init__(path, offset, r.size, c_name, t, fmt)
        self.table = EnumTable(r, c_name)
        self.signed = r.signed

    def present(self, raw: np.ndarray) -> Column:
        return columns.enum_column(raw, self.table.by_value, self.table.categories)

    def decode(self, raw: bytes, base: int) -> Any:
        return self.table.name(int_from(raw, base + self.offset, self.size, self.signed))

    def encode(self, value: Any, buf: bytearray, base: int, path: str) -> None:
        v = self.table.value(value, path, self.c_name)
        pos = base + self.offset
        buf[pos : pos + self.size] = (v & ((1 << (8 * self.size)) - 1)).to_bytes(
            self.size, "little"
        )


class FloatNode(Leaf):
    """``float``/``double``/``_Float16`` (summed across CPUs); other sizes are bytes."""

    def __init__(self, path: str, offset: int, c_name: str, t: btf.Type, r: btf.Float) -> None:
        fmt = FLOAT_FORMATS.get(r.size, ("u1", (r.size,)))
        super().__init__(path, offset, r.size, c_name, t, fmt)
        self.native = r.size in FLOAT_FORMATS

    def present(self, raw: np.ndarray) -> Column:
        return raw if self.native else columns.bytes_column(raw)

    def reduce_cpus(self, raw: np.ndarray) -> np.ndarray:
        return columns.sum_cpus(raw) if self.native else columns.first_nonzero(raw)

    def role_and_unit(self) -> tuple[str, str | None]:
        return super().role_and_unit() if self.native else ("bytes", None)

    def decode(self, raw: bytes, base: int) -> Any:
        pos = base + self.offset
        fmt = _STRUCT_FLOATS.get(self.size)
        if fmt is None:
            return raw[pos : pos + self.size]
        return struct.unpack_from(fmt, raw, pos)[0]

    def encode(self, value: Any, buf: bytearray, base: int, path: str) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise EncodeError(f"expected a number for {self.c_name}, got {shown(value)}", path)
        fmt = _STRUCT_FLOATS.get(self.size)
        if fmt is None:
            raise EncodeError(f"cannot encode {self.c_name} from Python", path)
        f = float(value)
        if self.size == 4 and math.isfinite(f) and abs(f) > _FLOAT32_MAX:
            raise EncodeError(f"{f} is out of range for {self.c_name}", path)
        try:
            struct.pack_into(fmt, buf, base + self.offset, f)
        except OverflowError:
            raise EncodeError(f"{f} is out of range for {self.c_name}", path) from None


class PointerNode(Leaf):
    """A pointer: an unsigned 64-bit number."""

    natural_role = "address"

    def __init__(self, path: str, offset: int, c_name: str, t: btf.Type) -> None:
        super().__init__(path, offset, btf.POINTER_SIZE, c_name, t, "<u8")

    def reduce_cpus(self, raw: np.ndarray) -> np.ndarray:
        return columns.sum_cpus(raw)

    def decode(self, raw: bytes, base: int) -> Any:
        return int_from(raw, base + self.offset, 8, False)

    def encode(self, value: Any, buf: bytearray, base: int, path: str) -> None:
        v = check_int(value, 64, False, path, self.c_name)
        pos = base + self.offset
        buf[pos : pos + 8] = v.to_bytes(8, "little")


# -- bytes and text -----------------------------------------------------------------------


class RawBytesNode(Leaf):
    """A value without BTF (``key_size``/``value_size`` only): its bytes, or an int."""

    natural_role = "bytes"

    def __init__(self, path: str, offset: int, size: int, c_name: str) -> None:
        super().__init__(path, offset, size, c_name, None, ("u1", (size,)))

    def present(self, raw: np.ndarray) -> Column:
        return columns.bytes_column(raw)

    def decode(self, raw: bytes, base: int) -> Any:
        pos = base + self.offset
        return raw[pos : pos + self.size]

    def encode(self, value: Any, buf: bytearray, base: int, path: str) -> None:
        pos = base + self.offset
        if isinstance(value, BYTES_LIKE) and len(value) == self.size:
            buf[pos : pos + self.size] = value
            return
        if is_int(value):
            v = check_int(value, self.size * 8, False, path, self.c_name)
            buf[pos : pos + self.size] = v.to_bytes(self.size, "little")
            return
        raise EncodeError(f"expected {self.size} bytes or an int, got {shown(value)}", path)


class _ByteSpanNode(Leaf):
    """An array of 1-byte elements read as one span (``char[N]``, ``u8[N]``)."""

    takes_bytes = True

    def __init__(self, path: str, offset: int, c_name: str, t: btf.Type, length: int) -> None:
        super().__init__(path, offset, length, c_name, t, ("u1", (length,)))

    def leaves(self) -> Iterator[Leaf]:
        if self.size:  # a flexible array member (``char data[]``) has no column
            yield self


class TextNode(_ByteSpanNode):
    """``char[N]``: text up to the first NUL (UTF-8, invalid bytes replaced)."""

    natural_role = "text"

    def present(self, raw: np.ndarray) -> Column:
        return columns.text_column(raw, self.size)

    def decode(self, raw: bytes, base: int) -> Any:
        pos = base + self.offset
        chunk = raw[pos : pos + self.size].split(b"\0", 1)[0]
        return chunk.decode("utf-8", errors="replace")

    def encode(self, value: Any, buf: bytearray, base: int, path: str) -> None:
        if isinstance(value, str):
            value = value.encode("utf-8")
        if not isinstance(value, BYTES_LIKE):
            raise EncodeError(
                f"expected a str of at most {self.size} bytes, got {shown(value)}", path
            )
        data = bytes(value)
        if len(data) > self.size:
            raise EncodeError(
                f"{shown(data)} is {len(data)} bytes, longer than {self.c_name}", path
            )
        pos = base + self.offset
        buf[pos : pos + self.size] = data.ljust(self.size, b"\0")


class ByteArrayNode(_ByteSpanNode):
    """``unsigned char[N]``, ``u8[N]``: ``bytes`` of length N (NULs and all).

    Encodes from bytes/bytearray/memoryview or a list/tuple/array of ints 0..255 of at
    most N items; shorter values are zero-padded.
    """

    natural_role = "bytes"

    def present(self, raw: np.ndarray) -> Column:
        return columns.bytes_column(raw)

    def decode(self, raw: bytes, base: int) -> Any:
        pos = base + self.offset
        return raw[pos : pos + self.size]

    def encode(self, value: Any, buf: bytearray, base: int, path: str) -> None:
        data = byte_string(value, self.size, path, self.c_name)
        pos = base + self.offset
        buf[pos : pos + self.size] = data.ljust(self.size, b"\0")


def _plain_form(value: Any) -> bool:
    """Whether *value* is spelled as the plain C value: numbers, bytes, fields, int lists.

    Decoded forms are text, timestamps or lists of str (``argv``); a number, bytes, a
    dict of fields or a (nested) sequence of ints is what the plain node encodes.
    """
    if isinstance(value, (int, np.integer, np.ndarray, Mapping, *BYTES_LIKE)):
        return True
    if isinstance(value, (list, tuple)) and value:
        return all(isinstance(v, (int, np.integer)) or _plain_form(v) for v in value)
    return False


class DecodedNode(Leaf):
    """A value shown through a decoder (typedef of ``bpfnb/types.h`` or chosen by name).

    :attr:`plain` is the node the value would have without the decoder: values given
    in their plain form (numbers, bytes, dicts of fields, lists of ints) are encoded by
    it, with its checks; decoded forms (names, addresses, timestamps, lists of str) go
    through the decoder first.
    """

    def __init__(self, plain: Node, decoder: decoders.Decoder, storage: np.dtype[Any]) -> None:
        super().__init__(plain.path, plain.offset, plain.size, plain.c_name, plain.type, storage)
        self.plain = plain
        self.decoder = decoder
        self.takes_bytes = plain.takes_bytes

    def walk(self) -> Iterator[Node]:
        yield self
        for node in self.plain.walk():
            if node is not self.plain:
                yield node

    def present(self, raw: np.ndarray) -> Column:
        return self.decoder.decode(raw)

    def reduce_cpus(self, raw: np.ndarray) -> np.ndarray:
        if self.decoder.summable:
            return columns.sum_cpus(raw)
        return columns.first_nonzero(raw)

    def role_and_unit(self) -> tuple[str, str | None]:
        return self.decoder.role, self.decoder.unit

    def decoder_name(self) -> str | None:
        return self.decoder.name

    def _raw_value(self, raw: bytes, pos: int) -> Any:
        fmt = self.storage
        if fmt.subdtype is not None:
            return raw[pos : pos + fmt.itemsize]
        if fmt.kind in "iu":
            return int_from(raw, pos, fmt.itemsize, fmt.kind == "i")
        return np.frombuffer(raw, dtype=fmt, count=1, offset=pos)[0].item()

    def decode(self, raw: bytes, base: int) -> Any:
        return self.decoder.decode_one(self._raw_value(raw, base + self.offset))

    def encode(self, value: Any, buf: bytearray, base: int, path: str) -> None:
        pos = base + self.offset
        if isinstance(value, BYTES_LIKE) and len(value) == self.size:
            buf[pos : pos + self.size] = value
            return
        if _plain_form(value):
            self.plain.encode(value, buf, base, path)
            return
        try:
            encoded = self.decoder.encode_one(value)
        except (ValueError, TypeError, KeyError) as e:
            raise EncodeError(f"{shown(value)} is not a valid {self.c_name}: {e}", path) from None
        if isinstance(encoded, BYTES_LIKE):
            data = bytes(encoded)
            if len(data) > self.size:
                raise EncodeError(
                    f"{shown(value)} takes {len(data)} bytes, more than {self.c_name} holds", path
                )
            buf[pos : pos + self.size] = data.ljust(self.size, b"\0")
            return
        fmt = self.storage
        if is_int(encoded) and fmt.subdtype is None and fmt.kind in "iu":
            signed = fmt.kind == "i"
            v = check_int(encoded, fmt.itemsize * 8, signed, path, self.c_name)
            buf[pos : pos + self.size] = v.to_bytes(fmt.itemsize, "little", signed=signed)
            return
        self.plain.encode(encoded, buf, base, path)


# -- bitfields ----------------------------------------------------------------------------


class BitfieldNode(Leaf):
    """A bitfield read from the byte span it lies in: an int, a bool or an enum.

    The dtype field is the span (``u1[nbytes]``) named ``"<column>:bits"``.
    """

    field_suffix = ":bits"
    default_role = "counter"

    def __init__(
        self,
        path: str,
        bit_offset: int,
        bits: int,
        signed: bool,
        label: str,
        t: btf.Type | None,
        *,
        boolean: bool = False,
        enum: EnumTable | None = None,
    ) -> None:
        start, shift = divmod(bit_offset, 8)
        nbytes = (shift + bits + 7) // 8
        super().__init__(path, start, nbytes, label, t, ("u1", (nbytes,)))
        self.bit_offset, self.bits, self.shift, self.signed = bit_offset, bits, shift, signed
        self.boolean = boolean
        self.enum = enum

    def extract(self, arr: np.ndarray) -> np.ndarray:
        span = arr.getfield(self.storage, self.field_offset)
        return columns.bits_column(span, self.shift, self.bits, self.signed)

    def present(self, raw: np.ndarray) -> Column:
        if self.boolean:
            return raw != 0
        if self.enum is not None:
            return columns.enum_column(raw, self.enum.by_value, self.enum.categories)
        return raw

    def reduce_cpus(self, raw: np.ndarray) -> np.ndarray:
        if self.boolean:
            return columns.any_cpus(raw)
        if self.enum is not None:
            return columns.first_nonzero(raw)
        out: np.ndarray = raw.sum(axis=1, dtype=raw.dtype)
        return out

    def role_and_unit(self) -> tuple[str, str | None]:
        if self.boolean:
            return "other", None
        if self.enum is not None:
            return "enum", None
        return super().role_and_unit()

    def decode(self, raw: bytes, base: int) -> Any:
        v = get_bits(raw, base * 8 + self.bit_offset, self.bits, self.signed)
        if self.boolean:
            return bool(v)
        if self.enum is not None:
            return self.enum.name(v)
        return v

    def encode(self, value: Any, buf: bytearray, base: int, path: str) -> None:
        if self.enum is not None:
            iv = self.enum.value(value, path, self.enum.c_name)
            signed = self.enum.enum.signed or iv < 0
        elif self.boolean:
            if not isinstance(value, (bool, np.bool_, int)):
                raise EncodeError(f"expected a bool, got {shown(value)}", path)
            iv, signed = int(bool(value)), False
        else:
            iv, signed = value, self.signed
        v = check_int(iv, self.bits, signed, path, self.c_name)
        put_bits(buf, base * 8 + self.bit_offset, self.bits, v)


# -- composites ---------------------------------------------------------------------------


class MemberPlan:
    """A struct/union member: its name (``""`` when anonymous) and its node."""

    def __init__(self, name: str, node: Node) -> None:
        self.name = name
        self.node = node


class StructNode(Node):
    """A struct or union: the columns of its members; a dict of fields as a value.

    Members of anonymous structs/unions are the struct's own fields (in columns and in
    dicts). A union is encoded from one member, or from several that give the same bytes
    (as a decoded value does).
    """

    def __init__(
        self,
        path: str,
        offset: int,
        size: int,
        c_name: str,
        t: btf.Type,
        members: list[MemberPlan],
        union: bool,
    ) -> None:
        super().__init__(path, offset, size, c_name, t)
        self.members = members
        self.union = union

    def leaves(self) -> Iterator[Leaf]:
        for m in self.members:
            yield from m.node.leaves()

    def walk(self) -> Iterator[Node]:
        yield self
        for m in self.members:
            for node in m.node.walk():
                if m.name or node is not m.node:
                    yield node

    def field_names(self) -> list[str]:
        """Names a dict may use: named members and those of anonymous members."""
        out: list[str] = []
        for m in self.members:
            if m.name:
                out.append(m.name)
            elif isinstance(m.node, StructNode):
                out.extend(m.node.field_names())
        return out

    def decode(self, raw: bytes, base: int) -> Any:
        out: dict[str, Any] = {}
        for m in self.members:
            v = m.node.decode(raw, base)
            if m.name:
                out[m.name] = v
            elif isinstance(v, dict):
                out.update(v)
        return out

    def encode(self, value: Any, buf: bytearray, base: int, path: str) -> None:
        c = self.c_name
        items: list[tuple[MemberPlan, Any]] = []
        if isinstance(value, Mapping):
            names = self.field_names()
            unknown = [k for k in value if k not in names]
            if unknown:
                raise EncodeError(
                    f"{c} has no field {unknown[0]!r} (fields: {', '.join(names)})", path
                )
            missing: list[str] = []
            for m in self.members:
                if m.name:
                    if m.name in value:
                        items.append((m, value[m.name]))
                    else:
                        missing.append(m.name)
                elif isinstance(m.node, StructNode):
                    sub_names = m.node.field_names()
                    sub = {k: v for k, v in value.items() if k in sub_names}
                    if sub:
                        items.append((m, sub))
                    elif m.node.union:
                        missing.append(f"one of {'/'.join(sub_names)}")
                    else:
                        missing.extend(sub_names)
            if self.union:
                if not items:
                    raise EncodeError(f"give one member of {c}", path)
                if len(items) > 1:
                    self._check_union_agrees(items, len(buf), base, path)
            elif missing:
                raise EncodeError(f"missing field(s) {', '.join(missing)}", path)
        elif isinstance(value, (tuple, list)) and not self.union:
            if len(value) != len(self.members):
                fields = ", ".join(m.name or "{...}" for m in self.members)
                raise EncodeError(
                    f"expected {len(self.members)} values ({fields}), got {len(value)}", path
                )
            items = list(zip(self.members, value, strict=True))
        else:
            kind = "a dict of fields" + ("" if self.union else " or a tuple")
            raise EncodeError(f"expected {kind}, got {shown(value)}", path)
        for m, v in items:
            if not m.name:
                m.node.encode(v, buf, base, path)
            else:
                m.node.encode(v, buf, base, f"{path}.{m.name}" if path else m.name)

    def _check_union_agrees(
        self, items: list[tuple[MemberPlan, Any]], buf_size: int, base: int, path: str
    ) -> None:
        """Several members of a union were given (e.g. a decoded value): they must agree."""
        images = []
        start, end = base + self.offset, base + self.offset + self.size
        for m, v in items:
            scratch = bytearray(buf_size)
            self.encode({m.name: v} if m.name else v, scratch, base, path)
            images.append(bytes(scratch[start:end]))
        if len(set(images)) > 1:
            shown = ", ".join(m.name or "{...}" for m, _ in items)
            raise EncodeError(
                f"members {shown} of {self.c_name} give different bytes: give only one", path
            )


def _check_sequence(value: Any, length: int, c: str, path: str) -> None:
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, (Sequence, np.ndarray)):
        raise EncodeError(
            f"expected a sequence of {length} values for {c}, got {shown(value)}", path
        )
    if len(value) != length:
        raise EncodeError(f"expected {length} values for {c}, got {len(value)}", path)


class ArrayColumnsNode(Node):
    """A short array: one column per element (``arr[0]``, ``m[0][1]``); a list as a value."""

    def __init__(
        self, path: str, offset: int, size: int, c_name: str, t: btf.Type, elements: list[Node]
    ) -> None:
        super().__init__(path, offset, size, c_name, t)
        self.elements = elements

    def leaves(self) -> Iterator[Leaf]:
        for e in self.elements:
            yield from e.leaves()

    def walk(self) -> Iterator[Node]:
        yield self
        for e in self.elements:
            yield from e.walk()

    def decode(self, raw: bytes, base: int) -> Any:
        return [e.decode(raw, base) for e in self.elements]

    def encode(self, value: Any, buf: bytearray, base: int, path: str) -> None:
        _check_sequence(value, len(self.elements), self.c_name, path)
        for i, (e, v) in enumerate(zip(self.elements, value, strict=True)):
            e.encode(v, buf, base, f"{path}[{i}]")


class ListArrayNode(Leaf):
    """A long array: one column holding a list per row (bytes for non-numeric elements).

    :attr:`element` is the element's plan at offset 0, used at each element's place for
    single values.
    """

    natural_role = "other"

    def __init__(
        self,
        path: str,
        offset: int,
        c_name: str,
        t: btf.Type,
        element: Node,
        length: int,
        element_format: str | None,
    ) -> None:
        size = element.size * length
        storage = (element_format, (length,)) if element_format else ("u1", (size,))
        super().__init__(path, offset, size, c_name, t, storage)
        self.element = element
        self.length = length
        self.numeric = element_format is not None

    def present(self, raw: np.ndarray) -> Column:
        return columns.list_column(raw) if self.numeric else columns.bytes_column(raw)

    def decode(self, raw: bytes, base: int) -> Any:
        start, step = base + self.offset, self.element.size
        return [self.element.decode(raw, start + i * step) for i in range(self.length)]

    def encode(self, value: Any, buf: bytearray, base: int, path: str) -> None:
        _check_sequence(value, self.length, self.c_name, path)
        start, step = base + self.offset, self.element.size
        for i, v in enumerate(value):
            self.element.encode(v, buf, start + i * step, f"{path}[{i}]")


class NothingNode(Node):
    """``void``, functions and forward declarations: no bytes, no column, ``None``."""

    def decode(self, raw: bytes, base: int) -> Any:
        return None

    def encode(self, value: Any, buf: bytearray, base: int, path: str) -> None:
        raise EncodeError(f"cannot encode a value of type {self.c_name}", path)
