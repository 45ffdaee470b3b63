"""Describe a compiled BPF object: its maps, programs, global variables and license.

:class:`ObjectSpec` reads an ELF object (pure Python, no kernel): BTF-defined maps from
the ``.maps`` data section (``__uint(type, ...)``, ``__type(key, ...)``...), programs
from the executable sections and the function symbols in them, global variables from
the ``.rodata*``, ``.data*`` and ``.bss`` data sections, and the ``license`` section.
Everything is ordered deterministically (section order, then symbol order).

Example
-------
>>> spec = ObjectSpec.from_file("tests/data/types.bpf.o")      # doctest: +SKIP
>>> spec.maps["per_cpu"].type, spec.maps["per_cpu"].value_size  # doctest: +SKIP
(6, 8)
>>> [p.name for p in spec.programs][:1]                          # doctest: +SKIP
['on_getpid']
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from bpfnb.errors import BtfError
from bpfnb.object import btf, code, maptypes
from bpfnb.object.elf import STT_FUNC, STT_OBJECT, ElfFile

_GLOBAL_PREFIXES = (".rodata", ".data", ".bss")
#: Names of the maps bpfnb's prelude defines for itself (``bpfnb_drops``).
HIDDEN_PREFIX = "bpfnb_"


@dataclass(frozen=True)
class MapSpec:
    """A map as declared in the object.

    Attributes
    ----------
    name : str
        The C variable name of the map.
    type : int
        ``enum bpf_map_type`` value (see :mod:`bpfnb.object.maptypes`).
    key, value : btf.Type or None
        Key and value types when given with ``__type``; None with ``__uint(key_size..)``
        or for maps without keys/values (ring buffers).
    key_size, value_size : int
        Sizes in bytes (from the types, or from ``key_size``/``value_size``).
    max_entries : int
        ``max_entries`` (0 when not given).
    flags : int
        ``map_flags``.
    histogram : maptypes.HistogramScheme or None
        The bucket scheme of a ``bpfnb/hist.h`` histogram, or of a libbpf-tools
        ``slots`` histogram value.
    inner : MapSpec or None
        Map-in-map: the inner map template of ``__array(values, struct {...})``.
    pinning : int
        ``__uint(pinning, ...)``: :data:`~bpfnb.object.maptypes.PIN_BY_NAME` or 0.
    map_extra : int
        ``__uint(map_extra, ...)`` (bloom filters: the number of hash functions).
    values : str
        What ``__array(values, ...)`` holds: ``"maps"`` (map-in-map), ``"programs"``
        (program arrays) or ``""`` when the map has no such member.
    kind : str
        What every dispatch reads (see :func:`bpfnb.object.maptypes.kind_of`):
        ``"hash"``, ``"percpu_array"``, ``"histogram"``, ``"ringbuf"``...
    """

    name: str
    type: int
    key: btf.Type | None
    value: btf.Type | None
    key_size: int
    value_size: int
    max_entries: int
    flags: int
    histogram: maptypes.HistogramScheme | None = None
    inner: MapSpec | None = None
    pinning: int = 0
    map_extra: int = 0
    values: str = ""
    kind: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", maptypes.kind_of(self.type, self.histogram))

    @property
    def type_name(self) -> str:
        """The kernel's name of the map type, e.g. ``"percpu_hash"``."""
        return maptypes.type_name(self.type)

    @property
    def per_cpu(self) -> bool:
        """Whether values hold one slot per possible CPU."""
        return maptypes.is_per_cpu(self.kind)


@dataclass(frozen=True)
class ProgramSpec:
    """A BPF program: its C function name and its ``SEC()`` text."""

    name: str
    section: str


@dataclass(frozen=True)
class GlobalVar:
    """A global variable in ``.rodata*``, ``.data*`` or ``.bss``."""

    name: str
    section: str
    offset: int
    size: int
    type: btf.Type


def _map_int(member: btf.Member, map_name: str) -> int:
    """Decode ``__uint(name, val)``: ``int (*name)[val]`` -> val."""
    t = btf.resolve(member.type)
    if isinstance(t, btf.Pointer):
        arr = btf.resolve(t.target)
        if isinstance(arr, btf.Array):
            return arr.length
    raise BtfError(
        f"map {map_name!r}: member {member.name!r} must be declared with __uint(), "
        f"got {btf.c_name(member.type)}"
    )


def _map_type(member: btf.Member, map_name: str) -> btf.Type:
    """Decode ``__type(name, T)``: ``typeof(T) *name`` -> T."""
    t = btf.resolve(member.type)
    if isinstance(t, btf.Pointer):
        return t.target
    raise BtfError(
        f"map {map_name!r}: member {member.name!r} must be declared with __type(), "
        f"got {btf.c_name(member.type)}"
    )


def _map_values(member: btf.Member, map_name: str) -> tuple[str, MapSpec | None]:
    """Decode ``__array(values, T)``: ``typeof(T) *values[]``.

    Returns ``("maps", inner template)`` for map-in-map (T is a map definition struct)
    and ``("programs", None)`` for program arrays (T is a function type).
    """
    t = btf.resolve(member.type)
    if isinstance(t, btf.Array):
        ptr = btf.resolve(t.element)
        if isinstance(ptr, btf.Pointer):
            target = btf.resolve(ptr.target)
            if isinstance(target, btf.FuncProto):
                return "programs", None
            if isinstance(target, btf.Struct):
                return "maps", _parse_map(f"{map_name}.values", target)
    raise BtfError(
        f"map {map_name!r}: member 'values' must be declared with __array(values, ...), "
        f"got {btf.c_name(member.type)}"
    )


def _parse_map(name: str, t: btf.Type) -> MapSpec:
    st = btf.resolve(t)
    if not isinstance(st, btf.Struct):
        raise BtfError(
            f"map {name!r} in .maps is a {btf.c_name(t)}, not a BTF map definition "
            "(struct { __uint(type, ...); ... })"
        )
    map_type = max_entries = flags = key_size = value_size = 0
    key: btf.Type | None = None
    value: btf.Type | None = None
    pinning = map_extra = 0
    values = ""
    inner: MapSpec | None = None
    for m in st.members:
        if m.name == "type":
            map_type = _map_int(m, name)
        elif m.name == "max_entries":
            max_entries = _map_int(m, name)
        elif m.name == "map_flags":
            flags = _map_int(m, name)
        elif m.name == "key_size":
            key_size = _map_int(m, name)
        elif m.name == "value_size":
            value_size = _map_int(m, name)
        elif m.name == "key":
            key = _map_type(m, name)
        elif m.name == "value":
            value = _map_type(m, name)
        elif m.name == "values":
            values, inner = _map_values(m, name)
        elif m.name == "pinning":
            pinning = _map_int(m, name)
        elif m.name == "map_extra":
            map_extra = _map_int(m, name)
    if key is not None:
        size = btf.size_of(key)
        if key_size and key_size != size:
            raise BtfError(
                f"map {name!r}: key_size {key_size} differs from sizeof({btf.c_name(key)})"
            )
        key_size = size
    if value is not None:
        size = btf.size_of(value)
        if value_size and value_size != size:
            raise BtfError(
                f"map {name!r}: value_size {value_size} differs from sizeof({btf.c_name(value)})"
            )
        value_size = size
    if values and not value_size:
        value_size = 4  # a map fd / program fd from user space, an id when read back
    histogram = maptypes.histogram_scheme(name, map_type, key) or maptypes.slots_scheme(
        map_type, value
    )
    return MapSpec(
        name,
        map_type,
        key,
        value,
        key_size,
        value_size,
        max_entries,
        flags,
        histogram,
        inner=inner,
        pinning=pinning,
        map_extra=map_extra,
        values=values,
    )


class ObjectSpec:
    """Maps, programs, globals and license of one BPF object file.

    Attributes
    ----------
    btf : btf.Btf
        Every type of the object.
    maps : dict of str to MapSpec
        BTF-defined maps in ``.maps`` order.
    programs : list of ProgramSpec
        Programs in section order, then by offset inside the section. Subprograms in
        ``.text`` are not programs.
    globals : dict of str to GlobalVar
        Variables of ``.rodata*``, ``.data*`` and ``.bss``, by section then offset.
    license : str or None
        The ``license`` section text.
    """

    def __init__(
        self,
        btf_: btf.Btf,
        maps: dict[str, MapSpec],
        programs: list[ProgramSpec],
        globals_: dict[str, GlobalVar],
        license_: str | None,
    ) -> None:
        self.btf = btf_
        self.maps = maps
        self.programs = programs
        self.globals = globals_
        self.license = license_
        self._elf: ElfFile | None = None
        self._functions: dict[str, code.FunctionCode] | None = None

    def __repr__(self) -> str:
        return (
            f"<ObjectSpec maps={list(self.maps)} programs={[p.name for p in self.programs]} "
            f"globals={list(self.globals)}>"
        )

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> ObjectSpec:
        """Read an object file (see :meth:`from_bytes`)."""
        return cls.from_bytes(Path(path).read_bytes())

    @classmethod
    def from_bytes(cls, data: bytes) -> ObjectSpec:
        """Describe an object from its bytes.

        Raises
        ------
        BtfError
            When the ELF or BTF data is malformed, the object has no ``.BTF`` section, or a
            map definition is not a BTF-defined map.
        """
        elf = ElfFile(data)
        sec = elf.section(".BTF")
        if sec is None:
            raise BtfError("the object has no .BTF section (compile with clang -g)")
        types = btf.Btf.from_bytes(sec.data)
        datasecs = {d.name: d for d in types.all_of(btf.DataSec)}

        maps: dict[str, MapSpec] = {}
        maps_sec = elf.section(".maps")
        if ".maps" in datasecs:
            order = _symbol_offsets(elf, ".maps")
            entries = sorted(
                datasecs[".maps"].vars, key=lambda v: (order.get(v.var.name, v.offset), v.var.name)
            )
            for v in entries:
                if isinstance(v.var, btf.Var):
                    maps[v.var.name] = _parse_map(v.var.name, v.var.target)
        elif maps_sec is not None and maps_sec.size:
            raise BtfError("the .maps section has no BTF description")

        programs: list[ProgramSpec] = []
        for s in elf.sections:
            if not s.executable or s.name == ".text" or not s.size:
                continue
            for sym in elf.symbols_in(s.index):
                if sym.type == STT_FUNC and sym.name:
                    programs.append(ProgramSpec(sym.name, s.name))

        globals_: dict[str, GlobalVar] = {}
        for s in elf.sections:
            if not s.name.startswith(_GLOBAL_PREFIXES) or s.name not in datasecs:
                continue
            order = _symbol_offsets(elf, s.name)
            found = []
            for v in datasecs[s.name].vars:
                if not isinstance(v.var, btf.Var):
                    continue
                offset = order.get(v.var.name, v.offset)
                found.append(
                    GlobalVar(v.var.name, s.name, offset, btf.size_of(v.var.target), v.var.target)
                )
            for g in sorted(found, key=lambda g: (g.offset, g.name)):
                globals_[g.name] = g

        license_: str | None = None
        lic = elf.section("license")
        if lic is not None:
            license_ = lic.data.split(b"\0", 1)[0].decode("utf-8", errors="replace")
        spec = cls(types, maps, programs, globals_, license_)
        spec._elf = elf
        return spec

    @property
    def functions(self) -> dict[str, code.FunctionCode]:
        """What each function refers to (maps, helpers), read on first use.

        Empty for a spec not read from an object file.
        """
        if self._functions is None:
            self._functions = code.functions(self._elf) if self._elf is not None else {}
        return self._functions

    @property
    def user_maps(self) -> dict[str, MapSpec]:
        """The maps the user declared: :attr:`maps` without bpfnb's own (``bpfnb_*``)."""
        return {n: m for n, m in self.maps.items() if not n.startswith(HIDDEN_PREFIX)}

    def struct_types(self) -> dict[str, btf.Struct]:
        """Every named struct of the object's BTF, by name (first definition wins)."""
        out: dict[str, btf.Struct] = {}
        for t in self.btf.all_of(btf.Struct):
            if t.name:
                out.setdefault(t.name, t)
        return out

    def find_type(self, name: str) -> btf.Type | None:
        """Find a type of the object by C name (see :func:`find_type`)."""
        return find_type(self.btf, name)


def find_type(types: btf.Btf, name: str) -> btf.Type | None:
    """Find a type by C name: ``"struct event"``, ``"union u"``, ``"enum e"`` or a bare name.

    The one C-name -> BTF type lookup of bpfnb. Whitespace and ``const``/``volatile``
    are ignored; a bare name matches a typedef first, then a struct, union, enum, int
    or float of that name.
    """
    name = " ".join(w for w in name.split() if w not in ("const", "volatile"))
    for prefix, cls in (("struct ", btf.Struct), ("union ", btf.Union), ("enum ", btf.Enum)):
        if name.startswith(prefix):
            return types.by_name(name[len(prefix) :].strip(), cls)
    kinds: tuple[type[btf.Type], ...] = (
        btf.Typedef,
        btf.Struct,
        btf.Union,
        btf.Enum,
        btf.Int,
        btf.Float,
    )
    for kind in kinds:
        t = types.by_name(name, kind)
        if t is not None:
            return t
    return None


def _symbol_offsets(elf: ElfFile, section: str) -> dict[str, int]:
    """Offsets of the named object symbols of *section* (clang may leave BTF offsets 0)."""
    sec = elf.section(section)
    if sec is None:
        return {}
    return {
        s.name: s.value
        for s in elf.symbols_in(sec.index)
        if s.name and s.type in (STT_OBJECT, 0) and s.type != STT_FUNC
    }
