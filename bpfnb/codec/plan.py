"""BTF types to one field plan, and the :class:`Codec` built on it.

:func:`codec_for` turns the BTF type of a map key or value (or a ring buffer event) into
a :class:`Codec`. The codec plans the type once: a tree of nodes
(:mod:`bpfnb.codec.nodes`, one class per kind of C value) that is the only place where
BTF kinds are told apart. The same tree gives

- the numpy structured dtype (explicit offsets, the C size as itemsize),
- the columns of a record array, vectorised (:meth:`Codec.columns`, and
  :meth:`Codec.sum_columns` for per-CPU values; see :mod:`bpfnb.codec.columns`),
- one value decoded from bytes (:meth:`Codec.to_python`) and encoded to bytes
  (:meth:`Codec.to_bytes`; see :mod:`bpfnb.codec.values`),
- each column's role and unit for dashboards (:attr:`Codec.column_roles`,
  :attr:`Codec.units`; see :mod:`bpfnb.codec.roles`).

Column rules
------------
- a scalar (int, enum, pointer, float, ``char[N]``, ``u8[N]``) is one column named
  ``""``; the caller names it (``key``/``value``, see :mod:`bpfnb.codec.frames`);
- struct and union fields keep their C names; nested fields are joined with ``.``
  (``in.a``); members of anonymous structs/unions appear under their own names;
- ``char[N]`` (plain ``char``, which BTF names ``"char"``) is text: ``str`` up to the
  first NUL (UTF-8, invalid bytes replaced);
- ``unsigned char[N]`` (so ``u8[N]``, ``__u8[N]``, ``uint8_t[N]``) is bytes: ``bytes`` of
  length N, NULs included, in an object column; it encodes from bytes/bytearray or from
  a list/tuple/array of ints 0..255, at most N of them (shorter values are
  zero-padded), so ``m[4] = m[1]`` copies the bytes exactly;
- ``signed char[N]`` (``s8[N]``) is small ints, like any other int array;
- enums become a pandas ``Categorical`` of enumerator names; when some value has no
  enumerator the column is an object column mixing names and numbers;
- fixed arrays of up to :data:`MAX_ARRAY_COLUMNS` elements (other than the byte arrays
  above) become one column per element (``arr[0]``, ``arr[1]``..., ``m[0][1]`` for 2-D);
  longer arrays become one column holding a list per row (bytes for non-numeric
  elements);
- bitfields are extracted (shift, mask, sign extension); pointers are unsigned ints;
  ``_Bool`` is bool; floats are floats; signed ints stay signed; ``__int128`` values
  are Python ints;
- a typedef known to :mod:`bpfnb.codec.decoders` (``bpfnb_syscall_t``,
  ``bpfnb_errno_t``, ``bpfnb_open_flags_t``...) selects a decoder that shows names,
  timestamps or addresses instead of numbers; unit typedefs (``bpfnb_ns_t``...) keep
  numbers and set the column's unit;
- :meth:`Codec.with_decoders` chooses decoders for given columns from Python
  (``{"saddr": "ipv4", "args": "argv"}``), for programs that keep addresses in plain
  integers.

Example
-------
>>> from bpfnb.object.spec import ObjectSpec
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
>>> key.column_roles                                                 # doctest: +SKIP
{'pid': 'id', 'comm': 'text'}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from bpfnb.codec import decoders
from bpfnb.codec.columns import Column
from bpfnb.codec.nodes import (
    FLOAT_FORMATS,
    INT_FORMATS,
    SINT_FORMATS,
    ArrayColumnsNode,
    BigIntNode,
    BitfieldNode,
    BoolNode,
    ByteArrayNode,
    DecodedNode,
    EnumNode,
    EnumTable,
    FloatNode,
    IntNode,
    Leaf,
    ListArrayNode,
    MemberPlan,
    Node,
    NothingNode,
    PointerNode,
    RawBytesNode,
    StructNode,
    TextNode,
)
from bpfnb.codec.values import BYTES_LIKE, EncodeError
from bpfnb.errors import DecoderError, MapTypeError
from bpfnb.object import btf

__all__ = ["MAX_ARRAY_COLUMNS", "Codec", "Column", "codec_for", "raw_codec"]

MAX_ARRAY_COLUMNS = 16
"""Arrays with at most this many elements (not byte arrays) get one column per element."""

DecoderChoice = str | decoders.Decoder | None
"""A decoder name (``"ipv4"``), a :class:`~bpfnb.codec.decoders.Decoder`, or None/plain."""


class _RawType(btf.Composite):
    """Opaque bytes of a known size (no BTF)."""

    kind = "raw"


def _join(prefix: str, name: str) -> str:
    if not name:
        return prefix  # anonymous struct/union member: its fields are ours
    return f"{prefix}.{name}" if prefix else name


def _is_text_char(r: btf.Int) -> bool:
    """Plain ``char`` (BTF names it ``char``; pahole may set the char encoding bit)."""
    return r.char or r.name == "char"


def _inside(path: str, outer: str) -> bool:
    """Whether column *path* is part of the value at *outer*."""
    if path == outer:
        return False
    return outer == "" or path.startswith(f"{outer}.") or path.startswith(f"{outer}[")


class _Planner:
    """BTF type -> plan tree: the one place that switches over BTF kinds.

    *overrides* maps field paths to decoders chosen from Python (None: no decoder, not
    even the typedef's); *labels* are the names the user gave them, for messages.
    """

    def __init__(
        self,
        overrides: Mapping[str, decoders.Decoder | None] | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> None:
        self.overrides = dict(overrides or {})
        self.labels = dict(labels or {})

    def plan(self, t: btf.Type, path: str, offset: int, *, own_decoder: bool = True) -> Node:
        c = btf.c_name(btf.strip_cv(t))
        r = btf.resolve(t)
        if isinstance(r, _RawType):
            return RawBytesNode(path, offset, r.size, c)
        if own_decoder:
            decoded = self._decoded(t, path, offset)
            if decoded is not None:
                return decoded
        if isinstance(r, btf.Int):
            return self._int(t, r, path, offset, c)
        if isinstance(r, btf.Enum):
            if r.size in INT_FORMATS:
                return EnumNode(path, offset, c, t, r)
            return BigIntNode(path, offset, c, t, r.size, r.signed)
        if isinstance(r, btf.Pointer):
            return PointerNode(path, offset, c, t)
        if isinstance(r, btf.Float):
            return FloatNode(path, offset, c, t, r)
        if isinstance(r, btf.Composite):
            return self._composite(t, r, path, offset, c)
        if isinstance(r, btf.Array):
            return self._array(t, r, path, offset, c)
        return NothingNode(path, offset, 0, c, t)  # void, functions, forward declarations

    def _decoded(self, t: btf.Type, path: str, offset: int) -> Node | None:
        if path in self.overrides:
            dec = self.overrides[path]
            if dec is None:
                return None
            fmt = dec.storage(t)
            if fmt is None:
                raise self._unfit(path, t, dec)
        else:
            found = decoders.lookup(btf.typedef_names(t))
            if found is None:
                return None
            dec, fmt = found, found.storage(t)
            if fmt is None:
                return None
        return DecodedNode(self.plan(t, path, offset, own_decoder=False), dec, fmt)

    def _unfit(self, path: str, t: btf.Type | None, dec: decoders.Decoder) -> DecoderError:
        label = self.labels.get(path, path)
        if t is None:
            return DecoderError(
                f"column {label!r} is a bitfield: it cannot be decoded as {dec.name!r} "
                "(no decoder reads bitfields)"
            )
        c = btf.c_name(btf.strip_cv(t))
        fit = decoders.fitting(t)
        fits = ", ".join([*fit, decoders.PLAIN])
        return DecoderError(
            f"column {label!r} ({c}) cannot be decoded as {dec.name!r}, which reads "
            f"{dec.reads}; decoders that fit {c}: {fits}"
        )

    def _int(self, t: btf.Type, r: btf.Int, path: str, offset: int, c: str) -> Node:
        if r.bool:
            return BoolNode(path, offset, c, t)
        if r.bits and r.bits < r.size * 8:
            return self._bits(path, offset * 8 + r.bit_offset, r.bits, r, c, c)
        if r.size not in INT_FORMATS:
            return BigIntNode(path, offset, c, t, r.size, r.signed)
        return IntNode(path, offset, c, t, r.size, r.signed)

    def _bits(
        self, path: str, bit_offset: int, bits: int, r: btf.Type, c: str, label: str
    ) -> BitfieldNode:
        """A bitfield of resolved type *r* (C name *c*), named *label* in messages."""
        signed = bool(getattr(r, "signed", False))
        if bit_offset % 8 + bits > 64:
            raise MapTypeError(f"bitfield {path!r} spans more than 8 bytes")
        if path in self.overrides and self.overrides[path] is not None:
            dec = self.overrides[path]
            assert dec is not None
            raise self._unfit(path, None, dec)
        if isinstance(r, btf.Enum):
            table = EnumTable(r, c)
            return BitfieldNode(path, bit_offset, bits, r.signed, label, None, enum=table)
        if isinstance(r, btf.Int) and r.bool:
            return BitfieldNode(path, bit_offset, bits, False, label, None, boolean=True)
        return BitfieldNode(path, bit_offset, bits, signed, label, None)

    def _composite(
        self, t: btf.Type, r: btf.Composite, path: str, offset: int, c: str
    ) -> StructNode:
        members: list[MemberPlan] = []
        for m in r.members:
            child = _join(path, m.name)
            node: Node
            if m.bitfield_size:
                mc = btf.c_name(btf.strip_cv(m.type))
                node = self._bits(
                    child,
                    offset * 8 + m.bit_offset,
                    m.bitfield_size,
                    btf.resolve(m.type),
                    mc,
                    f"{mc} : {m.bitfield_size}",
                )
            else:
                node = self.plan(m.type, child, offset + m.bit_offset // 8)
            members.append(MemberPlan(m.name, node))
        return StructNode(path, offset, r.size, c, t, members, isinstance(r, btf.Union))

    def _array(self, t: btf.Type, r: btf.Array, path: str, offset: int, c: str) -> Node:
        elem = btf.resolve(r.element)
        if isinstance(elem, btf.Int) and elem.size == 1 and not elem.bool:
            if _is_text_char(elem):
                return TextNode(path, offset, c, t, r.length)
            if not elem.signed:
                return ByteArrayNode(path, offset, c, t, r.length)
            # signed char[N]: small ints, planned like any int array below
        if r.length == 0:
            return ArrayColumnsNode(path, offset, 0, c, t, [])
        esize = btf.size_of(elem)
        if r.length <= MAX_ARRAY_COLUMNS:
            elements = [
                self.plan(r.element, f"{path}[{i}]", offset + i * esize) for i in range(r.length)
            ]
            return ArrayColumnsNode(path, offset, r.length * esize, c, t, elements)
        # One element planned at offset 0 (typedef decoders apply, Python choices don't).
        element = _Planner().plan(r.element, "", 0)
        fmt: str | None = None
        if isinstance(elem, btf.Float):
            fmt = FLOAT_FORMATS.get(elem.size)
        elif isinstance(elem, btf.Pointer):
            fmt = "<u8"
        elif isinstance(elem, btf.Int) and not elem.bool:
            fmt = (SINT_FORMATS if elem.signed else INT_FORMATS).get(elem.size)
        return ListArrayNode(path, offset, c, t, element, r.length, fmt)


def _unique(name: str, taken: set[str]) -> str:
    out, i = name, 1
    while out in taken:
        i += 1
        out = f"{name}#{i}"
    taken.add(out)
    return out


class Codec:
    """How to decode and encode one C type (a map key, a map value or an event).

    Attributes
    ----------
    type : btf.Type
        The BTF type.
    size : int
        ``sizeof`` the C type (or the record size given to :func:`codec_for`).
    dtype : numpy.dtype
        Structured dtype, explicit offsets, ``itemsize == size``. Field names are the
        column names (``"_"`` for a scalar); bitfields read their bytes through fields
        named ``"<column>:bits"``. A codec made by :meth:`with_decoders` keeps the dtype
        of the codec it came from (the layout of the records does not change).
    c_name : str
        The C type name (``"u32"``, ``"struct key_t"``).
    description : str
        The C type with its members, used in error messages.
    column_names : list of str
        Output columns in order (``[""]`` for a scalar).
    scalar : bool
        True when the type is one column that the caller should name.

    Parameters
    ----------
    t : btf.Type
        The type to plan.
    size : int, optional
        Record size when it differs from ``sizeof(t)``.
    overrides : mapping of str to Decoder or None, optional
        Field path -> decoder chosen from Python (None: plain); use
        :meth:`with_decoders`, which checks names and fit, rather than this.
    labels : mapping of str to str, optional
        Field path -> the name the user gave it, for messages.
    dtype : numpy.dtype, optional
        Keep this dtype instead of the plan's own (a codec made by
        :meth:`with_decoders` keeps the dtype of the codec it came from).
    """

    def __init__(
        self,
        t: btf.Type,
        size: int | None = None,
        *,
        overrides: Mapping[str, decoders.Decoder | None] | None = None,
        labels: Mapping[str, str] | None = None,
        dtype: np.dtype[Any] | None = None,
    ) -> None:
        self.type = t
        self.c_name = btf.c_name(btf.strip_cv(t))
        self.description = btf.describe(t)
        self.size = btf.size_of(t) if size is None else size
        self._overrides = dict(overrides or {})
        self._labels = dict(labels or {})
        self._root = _Planner(self._overrides, self._labels).plan(t, "", 0)
        self._columns: list[tuple[str, Leaf]] = []
        names: list[str] = []
        formats: list[Any] = []
        offsets: list[int] = []
        taken_columns: set[str] = set()
        taken_fields: set[str] = set()
        for leaf in self._root.leaves():
            col = _unique(leaf.path, taken_columns)
            self._columns.append((col, leaf))
            names.append(_unique((col + leaf.field_suffix) or "_", taken_fields))
            formats.append(leaf.storage)
            offsets.append(leaf.field_offset)
        self.dtype = (
            dtype
            if dtype is not None
            else np.dtype(
                {"names": names, "formats": formats, "offsets": offsets, "itemsize": self.size}
            )
        )
        self.column_names = [col for col, _ in self._columns]
        self.scalar = self.column_names == [""]
        self._roles = {col: leaf.role_and_unit() for col, leaf in self._columns}

    def __repr__(self) -> str:
        return f"<Codec {self.description} size={self.size}>"

    @property
    def plan(self) -> Node:
        """The root of the field plan (see :mod:`bpfnb.codec.nodes`)."""
        return self._root

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
        return {col: leaf.present(leaf.extract(arr)) for col, leaf in self._columns}

    def sum_columns(self, arr: np.ndarray) -> dict[str, Column]:
        """Decode per-CPU records of shape (n, ncpu), combining CPUs per row.

        Numeric columns (ints, floats, pointers, bitfields, unit typedefs) are summed in
        64 bits; bools are OR-ed; enums, strings, bytes and decoded values take the first
        CPU whose value is not zero.
        """
        if arr.ndim != 2:
            raise ValueError("sum_columns() expects an (n, ncpu) array of records")
        return {
            col: leaf.present(leaf.reduce_cpus(leaf.extract(arr))) for col, leaf in self._columns
        }

    # -- what columns mean -------------------------------------------------------------

    @property
    def column_roles(self) -> dict[str, str]:
        """Column -> role (``counter``, ``timestamp``, ``id``, ``flags``, ``duration``,
        ``text``, ``address``, ``enum``, ``bytes``, ``other``; see :mod:`bpfnb.codec.roles`).
        """
        return {col: role for col, (role, _) in self._roles.items()}

    @property
    def units(self) -> dict[str, str]:
        """Column -> unit (``ns``, ``us``, ``ms``, ``bytes``) for the columns that have one."""
        return {col: unit for col, (_, unit) in self._roles.items() if unit is not None}

    @property
    def column_decoders(self) -> dict[str, str]:
        """Column -> name of the decoder that shows it, for decoded columns only."""
        out: dict[str, str] = {}
        for col, leaf in self._columns:
            name = leaf.decoder_name()
            if name is not None:
                out[col] = name
        return out

    # -- decoders chosen from Python ---------------------------------------------------

    def _nodes(self) -> dict[str, Node]:
        out: dict[str, Node] = {}
        for node in self._root.walk():
            out.setdefault(node.path, node)
        return out

    def _path_of(self, name: str, nodes: Mapping[str, Node]) -> str:
        if name in nodes:
            return name
        for role in ("key", "value"):
            rest = name[len(role) :]
            if name.startswith(role) and (rest == "" or rest.startswith("[")) and rest in nodes:
                return rest
        shown = ", ".join(p or "value" for p in nodes)
        raise DecoderError(f"{self.c_name} has no column {name!r} (columns: {shown})")

    def decoders_for(self, column: str) -> list[str]:
        """Names of the decoders that fit *column* (a column, struct field or array)."""
        nodes = self._nodes()
        node = nodes[self._path_of(column, nodes)]
        if node.type is None or isinstance(node, BitfieldNode):
            return []
        return decoders.fitting(node.type)

    def with_decoders(self, choices: Mapping[str, DecoderChoice]) -> Codec:
        """A codec like this one whose given columns decode with the given decoders.

        Parameters
        ----------
        choices : mapping of str to str, Decoder or None
            Column (struct field ``saddr``, nested ``in.addr``, array ``daddr_v6``, or
            ``key``/``value`` for the whole value) -> decoder name: ``ipv4``, ``ipv6``,
            ``argv``, ``argv_str``, ``text``, ``binary``, ``syscall``, ``errno``,
            ``ktime``, ``ksym``, ``stackid``, ``open_flags``, ``ns``, ``us``, ``ms``,
            ``bytes`` (see :mod:`bpfnb.codec.decoders`), a
            :class:`~bpfnb.codec.decoders.Decoder`, or ``"plain"``/None to show the
            plain values (also turning a typedef's decoder off). Choices add to those
            of this codec; a later choice for a whole array or struct replaces earlier
            ones for its parts.

        Returns
        -------
        Codec
            A new codec with the same :attr:`dtype`; a decoded array or struct becomes
            one column named after it (``daddr_v6`` instead of ``daddr_v6[0]``...).

        Raises
        ------
        DecoderError
            For an unknown column or decoder, a decoder that does not fit the column's
            C type (naming the column, its C type and the decoders that fit), or two
            choices of which one is part of the other.
        """
        nodes = self._nodes()
        chosen: dict[str, decoders.Decoder | None] = {}
        labels = dict(self._labels)
        for name, choice in choices.items():
            path = self._path_of(name, nodes)
            chosen[path] = self._decoder(name, choice)
            labels[path] = name
        for path in chosen:
            for other in chosen:
                if _inside(path, other):
                    raise DecoderError(
                        f"column {labels[path]!r} is part of {labels[other] or 'value'!r}: "
                        "choose a decoder for one of them"
                    )
        merged = dict(self._overrides)
        for path, dec in chosen.items():
            merged = {p: d for p, d in merged.items() if not _inside(p, path)}
            for outer, d in merged.items():
                if d is not None and _inside(path, outer):
                    raise DecoderError(
                        f"column {labels[path]!r} is part of {labels.get(outer, outer)!r}, "
                        f"which is decoded as {d.name!r}"
                    )
            merged[path] = dec
        return Codec(self.type, self.size, overrides=merged, labels=labels, dtype=self.dtype)

    @staticmethod
    def _decoder(column: str, choice: DecoderChoice) -> decoders.Decoder | None:
        if choice is None or choice == decoders.PLAIN:
            return None
        if isinstance(choice, decoders.Decoder):
            return choice
        found = decoders.BY_NAME.get(choice) if isinstance(choice, str) else None
        if found is None:
            names = ", ".join([*decoders.BY_NAME, decoders.PLAIN])
            raise DecoderError(f"unknown decoder {choice!r} for column {column!r} ({names})")
        return found

    # -- single values ---------------------------------------------------------------

    def to_python(self, raw: bytes | bytearray | memoryview) -> Any:
        """Decode one value: int, float, bool, str, bytes, dict of fields or list."""
        raw = bytes(raw)
        if len(raw) < self.size:
            raise ValueError(f"{len(raw)} bytes is too short for {self.c_name} ({self.size})")
        return self._root.decode(raw, 0)

    def to_bytes(self, value: Any, role: str = "value") -> bytes:
        """Encode one value.

        Accepts an int (ints, enums, pointers), an enumerator name, a float, a str (or
        bytes) for ``char[N]``, bytes or a list of ints 0..255 for ``u8[N]``, a dict of
        fields or a tuple in field order for structs, a sequence for arrays, a decoded
        form for decoded columns (``"getpid"`` for a ``bpfnb_syscall_t``, ``"10.0.0.1"``
        for an ``ipv4`` column), or ``bytes`` of exactly :attr:`size` for any type.

        Raises
        ------
        MapTypeError
            Naming the expected C type, e.g. ``key must be struct key_t {u32 pid; char
            comm[16]}: field 'comm': ...``.
        """
        if isinstance(value, BYTES_LIKE) and not self._root.takes_bytes:
            raw = bytes(value)
            if len(raw) != self.size:
                raise MapTypeError(
                    f"{role} must be {self.description}: got {len(raw)} raw bytes, "
                    f"expected {self.size}"
                )
            return raw
        buf = bytearray(self.size)
        try:
            self._root.encode(value, buf, 0, "")
        except EncodeError as e:
            where = f"field {e.path!r}: " if e.path else ""
            raise MapTypeError(f"{role} must be {self.description}: {where}{e}") from None
        return bytes(buf)


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

    Values decode to ``bytes`` (one column) and encode from ``bytes`` of exactly *size*
    or from an int (little-endian).
    """
    return Codec(_RawType(0, f"u8[{size}]", size=size))
