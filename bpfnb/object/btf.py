"""Parse the ``.BTF`` section of a BPF object into a small type model.

BTF (BPF Type Format) is the compact type information clang writes with ``-g``. This
module reads its header, type section and string section into Python objects: one
class per BTF kind (:class:`Int`, :class:`Struct`, :class:`Enum`, ...), linked to each
other by reference (a :class:`Pointer`'s ``target`` is the pointed-to type object).
Type id 0 is :data:`VOID`.

Example
-------
>>> b = Btf.from_bytes(elf.section(".BTF").data)        # doctest: +SKIP
>>> key = b.by_name("key_t", Struct)                    # doctest: +SKIP
>>> [m.name for m in key.members], b.size_of(key), c_name(key)   # doctest: +SKIP
(['pid', 'comm'], 20, 'struct key_t')
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import ClassVar, TypeVar

from bpfnb.errors import BtfError

BTF_MAGIC = 0xEB9F

KIND_INT = 1
KIND_PTR = 2
KIND_ARRAY = 3
KIND_STRUCT = 4
KIND_UNION = 5
KIND_ENUM = 6
KIND_FWD = 7
KIND_TYPEDEF = 8
KIND_VOLATILE = 9
KIND_CONST = 10
KIND_RESTRICT = 11
KIND_FUNC = 12
KIND_FUNC_PROTO = 13
KIND_VAR = 14
KIND_DATASEC = 15
KIND_FLOAT = 16
KIND_DECL_TAG = 17
KIND_TYPE_TAG = 18
KIND_ENUM64 = 19

INT_SIGNED = 1
INT_CHAR = 2
INT_BOOL = 4

POINTER_SIZE = 8

_HDR = struct.Struct("<HBBIIIII")
_TYPE = struct.Struct("<III")


# --------------------------------------------------------------------------------------
# The type model
# --------------------------------------------------------------------------------------


@dataclass(eq=False, repr=False)
class Type:
    """Base of every BTF type. ``id`` is the BTF type id, ``name`` may be empty."""

    id: int
    name: str

    kind: ClassVar[str] = "type"

    def __repr__(self) -> str:
        return f"<btf.{type(self).__name__} #{self.id} {c_name(self)!r}>"


@dataclass(eq=False, repr=False)
class Void(Type):
    """Type id 0: ``void``."""

    kind: ClassVar[str] = "void"


VOID = Void(0, "")


@dataclass(eq=False, repr=False)
class Int(Type):
    """An integer type (``BTF_KIND_INT``), also ``char`` and ``_Bool``."""

    size: int = 0
    signed: bool = False
    char: bool = False
    bool: bool = False
    bit_offset: int = 0
    bits: int = 0

    kind: ClassVar[str] = "int"


@dataclass(eq=False, repr=False)
class Float(Type):
    """A floating point type (``BTF_KIND_FLOAT``)."""

    size: int = 0

    kind: ClassVar[str] = "float"


@dataclass(eq=False, repr=False)
class Pointer(Type):
    """A pointer (``BTF_KIND_PTR``); ``target`` is the pointed-to type."""

    target: Type = VOID

    kind: ClassVar[str] = "ptr"


@dataclass(eq=False, repr=False)
class Array(Type):
    """A fixed-size array (``BTF_KIND_ARRAY``) of ``length`` ``element`` values."""

    element: Type = VOID
    index: Type = VOID
    length: int = 0

    kind: ClassVar[str] = "array"


@dataclass(eq=False)
class Member:
    """A struct or union member.

    ``bit_offset`` counts from the start of the enclosing struct; ``bitfield_size`` is 0
    for ordinary members and the width in bits for bitfields. ``name`` is empty for an
    anonymous struct/union member.
    """

    name: str
    type: Type
    bit_offset: int
    bitfield_size: int = 0

    @property
    def offset(self) -> int:
        """Byte offset of the member (of its first byte for a bitfield)."""
        return self.bit_offset // 8


@dataclass(eq=False, repr=False)
class Composite(Type):
    """Base of :class:`Struct` and :class:`Union`."""

    size: int = 0
    members: list[Member] = field(default_factory=list)


@dataclass(eq=False, repr=False)
class Struct(Composite):
    """A struct (``BTF_KIND_STRUCT``)."""

    kind: ClassVar[str] = "struct"


@dataclass(eq=False, repr=False)
class Union(Composite):
    """A union (``BTF_KIND_UNION``)."""

    kind: ClassVar[str] = "union"


@dataclass(frozen=True)
class EnumValue:
    """One enumerator: its name and value."""

    name: str
    value: int


@dataclass(eq=False, repr=False)
class Enum(Type):
    """An enum of up to 32 bits (``BTF_KIND_ENUM``); ``signed`` from the kind flag."""

    size: int = 4
    signed: bool = False
    members: list[EnumValue] = field(default_factory=list)

    kind: ClassVar[str] = "enum"


@dataclass(eq=False, repr=False)
class Enum64(Enum):
    """A 64-bit enum (``BTF_KIND_ENUM64``)."""

    kind: ClassVar[str] = "enum64"


@dataclass(eq=False, repr=False)
class Fwd(Type):
    """A forward declaration (``struct foo;`` or ``union foo;`` when ``union``)."""

    union: bool = False

    kind: ClassVar[str] = "fwd"


@dataclass(eq=False, repr=False)
class Qualifier(Type):
    """Base of typedefs and qualifiers: one ``target`` type."""

    target: Type = VOID


@dataclass(eq=False, repr=False)
class Typedef(Qualifier):
    """A typedef (``BTF_KIND_TYPEDEF``)."""

    kind: ClassVar[str] = "typedef"


@dataclass(eq=False, repr=False)
class Const(Qualifier):
    """``const`` (``BTF_KIND_CONST``)."""

    kind: ClassVar[str] = "const"


@dataclass(eq=False, repr=False)
class Volatile(Qualifier):
    """``volatile`` (``BTF_KIND_VOLATILE``)."""

    kind: ClassVar[str] = "volatile"


@dataclass(eq=False, repr=False)
class Restrict(Qualifier):
    """``restrict`` (``BTF_KIND_RESTRICT``)."""

    kind: ClassVar[str] = "restrict"


@dataclass(eq=False, repr=False)
class TypeTag(Qualifier):
    """``__attribute__((btf_type_tag("...")))`` (``BTF_KIND_TYPE_TAG``)."""

    kind: ClassVar[str] = "type_tag"


@dataclass(frozen=True)
class Param:
    """A function parameter (name may be empty)."""

    name: str
    type: Type


@dataclass(eq=False, repr=False)
class FuncProto(Type):
    """A function prototype: return type and parameters."""

    ret: Type = VOID
    params: list[Param] = field(default_factory=list)

    kind: ClassVar[str] = "func_proto"


@dataclass(eq=False, repr=False)
class Func(Type):
    """A function (``BTF_KIND_FUNC``); ``linkage`` 0 static, 1 global, 2 extern."""

    proto: Type = VOID
    linkage: int = 0

    kind: ClassVar[str] = "func"


@dataclass(eq=False, repr=False)
class Var(Type):
    """A global variable (``BTF_KIND_VAR``)."""

    target: Type = VOID
    linkage: int = 0

    kind: ClassVar[str] = "var"


@dataclass(frozen=True)
class VarSecinfo:
    """A variable placed in a :class:`DataSec` at ``offset`` with ``size`` bytes."""

    var: Type
    offset: int
    size: int


@dataclass(eq=False, repr=False)
class DataSec(Type):
    """A data section (``.maps``, ``.bss``, ``.rodata``...) and its variables."""

    size: int = 0
    vars: list[VarSecinfo] = field(default_factory=list)

    kind: ClassVar[str] = "datasec"


@dataclass(eq=False, repr=False)
class DeclTag(Type):
    """``btf_decl_tag``: tags ``target`` (or its member/param ``component_idx``)."""

    target: Type = VOID
    component_idx: int = -1

    kind: ClassVar[str] = "decl_tag"


T = TypeVar("T", bound=Type)

_QUALIFIERS = (Typedef, Const, Volatile, Restrict, TypeTag)


# --------------------------------------------------------------------------------------
# Helpers on types
# --------------------------------------------------------------------------------------


def resolve(t: Type) -> Type:
    """Strip typedefs, const, volatile, restrict and type tags."""
    seen = 0
    while isinstance(t, _QUALIFIERS):
        t = t.target
        seen += 1
        if seen > 1000:
            raise BtfError("BTF typedef/qualifier chain is cyclic")
    return t


def strip_cv(t: Type) -> Type:
    """Strip const, volatile, restrict and type tags but keep typedefs."""
    while isinstance(t, (Const, Volatile, Restrict, TypeTag)):
        t = t.target
    return t


def typedef_names(t: Type) -> Iterator[str]:
    """Yield the names of the typedefs on the way from *t* to its resolved type."""
    while isinstance(t, _QUALIFIERS):
        if isinstance(t, Typedef):
            yield t.name
        t = t.target


def size_of(t: Type) -> int:
    """Size in bytes of a value of type *t*.

    Raises
    ------
    BtfError
        For types without a size (void, functions, forward declarations).
    """
    depth = 0
    while True:
        t = resolve(t)
        if isinstance(t, (Int, Float, Enum, Composite, DataSec)):
            return t.size
        if isinstance(t, Pointer):
            return POINTER_SIZE
        if isinstance(t, Array):
            return t.length * size_of(t.element)
        if isinstance(t, Var):
            t = t.target
            depth += 1
            if depth < 100:
                continue
        raise BtfError(f"type {c_name(t)!r} ({t.kind}) has no size")


def c_name(t: Type) -> str:
    """C spelling of a type, e.g. ``u32``, ``struct key_t``, ``char[16]``, ``u8 *``."""
    if isinstance(t, Void):
        return "void"
    if isinstance(t, (Int, Float, Typedef)):
        return t.name or f"<anonymous {t.kind}>"
    if isinstance(t, Struct):
        return f"struct {t.name}" if t.name else "struct {...}"
    if isinstance(t, Union):
        return f"union {t.name}" if t.name else "union {...}"
    if isinstance(t, Enum):
        return f"enum {t.name}" if t.name else "enum {...}"
    if isinstance(t, Fwd):
        return f"{'union' if t.union else 'struct'} {t.name}"
    if isinstance(t, Pointer):
        inner = c_name(t.target)
        return f"{inner} *" if not inner.endswith("*") else f"{inner}*"
    if isinstance(t, Array):
        dims = ""
        while isinstance(t, Array):
            dims += f"[{t.length}]"
            t = t.element
        return f"{c_name(t)}{dims}"
    if isinstance(t, Const):
        return f"const {c_name(t.target)}"
    if isinstance(t, Volatile):
        return f"volatile {c_name(t.target)}"
    if isinstance(t, Restrict):
        return f"{c_name(t.target)} restrict"
    if isinstance(t, TypeTag):
        return c_name(t.target)
    if isinstance(t, FuncProto):
        params = ", ".join(c_name(p.type) for p in t.params) or "void"
        return f"{c_name(t.ret)} (*)({params})"
    if isinstance(t, (Func, Var, DataSec, DeclTag)):
        return t.name
    return t.name or t.kind


def declaration(t: Type, name: str) -> str:
    """C declaration of *name* with type *t*, e.g. ``char comm[16]`` or ``u32 pid``."""
    dims = ""
    while isinstance(t, Array):
        dims += f"[{t.length}]"
        t = t.element
    base = c_name(t)
    sep = "" if base.endswith("*") else " "
    return f"{base}{sep}{name}{dims}" if name else f"{base}{dims}"


def describe(t: Type) -> str:
    """C name plus, for a struct or union, its members, for error messages.

    Example: ``struct key_t {u32 pid; char comm[16]}``.
    """
    r = strip_cv(t)
    inner = resolve(r)
    if isinstance(inner, (Struct, Union)):
        parts = []
        for m in inner.members:
            decl = declaration(m.type, m.name)
            if m.bitfield_size:
                decl += f" : {m.bitfield_size}"
            parts.append(decl)
        return f"{c_name(r)} {{{'; '.join(parts)}}}"
    if isinstance(inner, Enum) and inner.members:
        names = ", ".join(v.name for v in inner.members[:8])
        more = ", ..." if len(inner.members) > 8 else ""
        return f"{c_name(r)} {{{names}{more}}}"
    return c_name(r)


# --------------------------------------------------------------------------------------
# The parser
# --------------------------------------------------------------------------------------


class Btf:
    """All types of one ``.BTF`` section.

    Attributes
    ----------
    types : list of Type
        Indexed by type id; ``types[0]`` is :data:`VOID`.
    strings : bytes
        The raw string section.
    """

    def __init__(self, types: list[Type], strings: bytes) -> None:
        self.types = types
        self.strings = strings
        self._names: dict[str, list[Type]] = {}
        for t in types:
            if t.name:
                self._names.setdefault(t.name, []).append(t)

    # -- lookups ---------------------------------------------------------------------

    def __getitem__(self, type_id: int) -> Type:
        try:
            return self.types[type_id]
        except IndexError:
            raise BtfError(f"BTF type id {type_id} out of range") from None

    def __len__(self) -> int:
        return len(self.types)

    def by_name(self, name: str, kind: type[T] | None = None) -> T | Type | None:
        """Return the first type called *name* (optionally of class *kind*), or None.

        Example: ``btf.by_name("key_t", btf.Struct)``.
        """
        for t in self._names.get(name, []):
            if kind is None or isinstance(t, kind):
                return t
        return None

    def all_of(self, kind: type[T]) -> list[T]:
        """Every type of class *kind*, in id order."""
        return [t for t in self.types if isinstance(t, kind)]

    @staticmethod
    def resolve(t: Type) -> Type:
        """Strip typedefs and qualifiers (see :func:`resolve`)."""
        return resolve(t)

    @staticmethod
    def size_of(t: Type) -> int:
        """Size of a type in bytes (see :func:`size_of`)."""
        return size_of(t)

    @staticmethod
    def c_name(t: Type) -> str:
        """C spelling of a type (see :func:`c_name`)."""
        return c_name(t)

    # -- parsing ---------------------------------------------------------------------

    @classmethod
    def from_bytes(cls, data: bytes) -> Btf:
        """Parse a whole ``.BTF`` section.

        Raises
        ------
        BtfError
            On a bad magic, a truncated section, an unknown kind or a dangling type id.
        """
        if len(data) < _HDR.size:
            raise BtfError("BTF section is shorter than its header")
        magic, version, _flags, hdr_len, type_off, type_len, str_off, str_len = _HDR.unpack_from(
            data, 0
        )
        if magic != BTF_MAGIC:
            raise BtfError(f"bad BTF magic {magic:#x} (big-endian BTF is not supported)")
        if version != 1:
            raise BtfError(f"unsupported BTF version {version}")
        tstart, sstart = hdr_len + type_off, hdr_len + str_off
        if tstart + type_len > len(data) or sstart + str_len > len(data):
            raise BtfError("BTF type or string section extends past the end of .BTF")
        strings = bytes(data[sstart : sstart + str_len])
        return cls._parse(bytes(data[tstart : tstart + type_len]), strings)

    @classmethod
    def _parse(cls, buf: bytes, strings: bytes) -> Btf:
        def name_at(off: int) -> str:
            if off >= len(strings) and off:
                raise BtfError(f"BTF string offset {off} out of range")
            end = strings.find(b"\0", off)
            return strings[off : end if end >= 0 else len(strings)].decode(
                "utf-8", errors="replace"
            )

        types: list[Type] = [VOID]
        # Links from a type to the ids it refers to, fixed up once all types exist.
        fixups: list[tuple[Type, str, int]] = []
        member_fix: list[tuple[Member, int]] = []
        param_fix: list[tuple[list[Param], int, str, int]] = []
        sec_fix: list[tuple[DataSec, int, int, int]] = []
        pos = 0
        n = len(buf)

        def u32s(count: int) -> tuple[int, ...]:
            nonlocal pos
            if pos + 4 * count > n:
                raise BtfError("BTF type section is truncated")
            vals = struct.unpack_from(f"<{count}I", buf, pos)
            pos += 4 * count
            return vals

        while pos < n:
            tid = len(types)
            name_off, info, size_or_type = u32s(3)
            name = name_at(name_off)
            kind = (info >> 24) & 0x1F
            vlen = info & 0xFFFF
            kflag = bool(info >> 31)
            t: Type
            if kind == KIND_INT:
                (enc,) = u32s(1)
                e = (enc >> 24) & 0xF
                t = Int(
                    tid,
                    name,
                    size=size_or_type,
                    signed=bool(e & INT_SIGNED),
                    char=bool(e & INT_CHAR),
                    bool=bool(e & INT_BOOL),
                    bit_offset=(enc >> 16) & 0xFF,
                    bits=enc & 0xFF,
                )
            elif kind == KIND_PTR:
                t = Pointer(tid, name)
                fixups.append((t, "target", size_or_type))
            elif kind == KIND_ARRAY:
                elem, index, nelems = u32s(3)
                t = Array(tid, name, length=nelems)
                fixups.append((t, "element", elem))
                fixups.append((t, "index", index))
            elif kind in (KIND_STRUCT, KIND_UNION):
                comp: Composite = (Struct if kind == KIND_STRUCT else Union)(
                    tid, name, size=size_or_type
                )
                for _ in range(vlen):
                    m_name, m_type, m_off = u32s(3)
                    if kflag:
                        bit_off, bf = m_off & 0xFFFFFF, m_off >> 24
                    else:
                        bit_off, bf = m_off, 0
                    m = Member(name_at(m_name), VOID, bit_off, bf)
                    comp.members.append(m)
                    member_fix.append((m, m_type))
                t = comp
            elif kind == KIND_ENUM:
                en = Enum(tid, name, size=size_or_type, signed=kflag)
                for _ in range(vlen):
                    v_name, v_val = u32s(2)
                    val = v_val - (1 << 32) if (kflag and v_val & 0x80000000) else v_val
                    en.members.append(EnumValue(name_at(v_name), val))
                t = en
            elif kind == KIND_ENUM64:
                e64 = Enum64(tid, name, size=size_or_type, signed=kflag)
                for _ in range(vlen):
                    v_name, lo, hi = u32s(3)
                    val = (hi << 32) | lo
                    if kflag and val & (1 << 63):
                        val -= 1 << 64
                    e64.members.append(EnumValue(name_at(v_name), val))
                t = e64
            elif kind == KIND_FWD:
                t = Fwd(tid, name, union=kflag)
            elif kind in (KIND_TYPEDEF, KIND_VOLATILE, KIND_CONST, KIND_RESTRICT, KIND_TYPE_TAG):
                qcls: type[Qualifier] = {
                    KIND_TYPEDEF: Typedef,
                    KIND_VOLATILE: Volatile,
                    KIND_CONST: Const,
                    KIND_RESTRICT: Restrict,
                    KIND_TYPE_TAG: TypeTag,
                }[kind]
                t = qcls(tid, name)
                fixups.append((t, "target", size_or_type))
            elif kind == KIND_FUNC:
                t = Func(tid, name, linkage=vlen)
                fixups.append((t, "proto", size_or_type))
            elif kind == KIND_FUNC_PROTO:
                fp = FuncProto(tid, name)
                fixups.append((fp, "ret", size_or_type))
                for i in range(vlen):
                    p_name, p_type = u32s(2)
                    fp.params.append(Param(name_at(p_name), VOID))
                    param_fix.append((fp.params, i, fp.params[i].name, p_type))
                t = fp
            elif kind == KIND_VAR:
                (linkage,) = u32s(1)
                t = Var(tid, name, linkage=linkage)
                fixups.append((t, "target", size_or_type))
            elif kind == KIND_DATASEC:
                ds = DataSec(tid, name, size=size_or_type)
                for _ in range(vlen):
                    v_type, v_off, v_size = u32s(3)
                    sec_fix.append((ds, v_type, v_off, v_size))
                t = ds
            elif kind == KIND_FLOAT:
                t = Float(tid, name, size=size_or_type)
            elif kind == KIND_DECL_TAG:
                (comp_idx,) = u32s(1)
                if comp_idx == 0xFFFFFFFF:
                    comp_idx = -1
                t = DeclTag(tid, name, component_idx=comp_idx)
                fixups.append((t, "target", size_or_type))
            else:
                raise BtfError(f"unknown BTF kind {kind} for type id {tid}")
            types.append(t)

        def get(type_id: int) -> Type:
            if type_id >= len(types):
                raise BtfError(f"BTF refers to type id {type_id}, but has {len(types)} types")
            return types[type_id]

        for obj, attr, ref in fixups:
            setattr(obj, attr, get(ref))
        for m, ref in member_fix:
            m.type = get(ref)
        for params, idx, pname, ref in param_fix:
            params[idx] = Param(pname, get(ref))
        for ds, ref, off, size in sec_fix:
            ds.vars.append(VarSecinfo(get(ref), off, size))
        return cls(types, strings)
