"""A minimal reader of 64-bit little-endian ELF relocatable objects.

Only what :mod:`bpfnb.spec` needs to describe a BPF object file: the section headers
(name, type, flags, contents) and the symbol table (name, binding, type, section index,
value, size); the ``SHT_REL`` relocation entries (which symbol each instruction
refers to; they are read, not applied); and what stack symbolization needs of
executables and shared libraries (:mod:`bpfnb.object.symbols`): the program headers
(``PT_LOAD`` segments map file offsets to addresses) and the dynamic symbol table
(``.dynsym``, all a stripped library keeps). Nothing is relocated, no dependency
on pyelftools.

Example
-------
>>> elf = ElfFile(open("prog.bpf.o", "rb").read())     # doctest: +SKIP
>>> elf.section(".BTF").data[:2]                          # doctest: +SKIP
b'\\x9f\\xeb'
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from bpfnb.errors import BtfError

SHT_NULL = 0
SHT_PROGBITS = 1
SHT_SYMTAB = 2
SHT_STRTAB = 3
SHT_NOBITS = 8
SHT_REL = 9
SHT_DYNSYM = 11

ET_EXEC = 2
ET_DYN = 3

PT_LOAD = 1
PF_X = 1

SHF_WRITE = 0x1
SHF_ALLOC = 0x2
SHF_EXECINSTR = 0x4

STB_LOCAL = 0
STB_GLOBAL = 1
STB_WEAK = 2

STT_NOTYPE = 0
STT_OBJECT = 1
STT_FUNC = 2
STT_SECTION = 3
STT_GNU_IFUNC = 10

SHN_UNDEF = 0

_EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
_SHDR = struct.Struct("<IIQQQQIIQQ")
_SYM = struct.Struct("<IBBHQQ")
_PHDR = struct.Struct("<IIQQQQQQ")
_REL = struct.Struct("<QQ")


class ElfError(BtfError):
    """The bytes are not a 64-bit little-endian ELF object this reader understands."""


@dataclass(frozen=True)
class Section:
    """One section header and its contents.

    Attributes
    ----------
    index : int
        Position in the section header table.
    name : str
        Section name from the section-name string table (e.g. ``".maps"``).
    type : int
        ``sh_type`` (``SHT_PROGBITS``, ``SHT_NOBITS``...).
    flags : int
        ``sh_flags`` (``SHF_EXECINSTR``...).
    size : int
        ``sh_size``; for ``SHT_NOBITS`` sections (``.bss``) ``data`` is empty.
    data : bytes
        The section contents (empty for ``SHT_NOBITS``).
    link, info, entsize : int
        The raw header fields of the same names.
    offset : int
        ``sh_offset``: where the contents start in the file.
    """

    index: int
    name: str
    type: int
    flags: int
    size: int
    data: bytes
    link: int
    info: int
    entsize: int
    offset: int = 0

    @property
    def executable(self) -> bool:
        """Whether the section holds code (``SHF_EXECINSTR``)."""
        return bool(self.flags & SHF_EXECINSTR)


@dataclass(frozen=True)
class Symbol:
    """One entry of the symbol table.

    Attributes
    ----------
    index : int
        Position in the symbol table.
    name : str
        Symbol name (empty for section symbols).
    bind : int
        ``STB_LOCAL``, ``STB_GLOBAL`` or ``STB_WEAK``.
    type : int
        ``STT_FUNC``, ``STT_OBJECT``, ``STT_SECTION``...
    section : int
        Index of the section the symbol is defined in (0 when undefined).
    value : int
        Offset of the symbol inside its section (relocatable objects).
    size : int
        Size of the symbol in bytes.
    """

    index: int
    name: str
    bind: int
    type: int
    section: int
    value: int
    size: int


@dataclass(frozen=True)
class Segment:
    """One program header (executables and shared libraries).

    Attributes
    ----------
    type : int
        ``p_type`` (:data:`PT_LOAD`...).
    flags : int
        ``p_flags`` (:data:`PF_X` for code).
    offset, vaddr, filesz, memsz : int
        Where the segment starts in the file and in memory, and its sizes there.
    """

    type: int
    flags: int
    offset: int
    vaddr: int
    filesz: int
    memsz: int


@dataclass(frozen=True)
class Relocation:
    """One ``SHT_REL`` entry: the symbol an instruction of a section refers to.

    Attributes
    ----------
    offset : int
        Byte offset of the instruction in the section the relocation applies to.
    symbol : int
        Index of the symbol in the symbol table.
    type : int
        ``R_BPF_*`` relocation type.
    """

    offset: int
    symbol: int
    type: int


def _cstr(table: bytes, offset: int) -> str:
    end = table.find(b"\0", offset)
    if end < 0:
        end = len(table)
    return table[offset:end].decode("utf-8", errors="replace")


class ElfFile:
    """Sections and symbols of an ELF64 little-endian object.

    Parameters
    ----------
    data : bytes
        The whole file.

    Raises
    ------
    ElfError
        When the data is not a 64-bit little-endian ELF file or is truncated.
    """

    def __init__(self, data: bytes) -> None:
        self.data = bytes(data)
        if len(self.data) < _EHDR.size or self.data[:4] != b"\x7fELF":
            raise ElfError("not an ELF file (bad magic)")
        if self.data[4] != 2 or self.data[5] != 1:
            raise ElfError("only 64-bit little-endian ELF objects are supported")
        fields = _EHDR.unpack_from(self.data, 0)
        self.type: int = fields[1]
        self.machine: int = fields[2]
        self.segments: list[Segment] = self._read_segments(fields[5], fields[9], fields[10])
        shoff, shentsize, shnum, shstrndx = fields[6], fields[11], fields[12], fields[13]
        if shoff == 0 or shnum == 0:
            raise ElfError("ELF file has no section headers")
        if shentsize != _SHDR.size or shoff + shnum * shentsize > len(self.data):
            raise ElfError("ELF section header table is truncated or malformed")
        raw = [_SHDR.unpack_from(self.data, shoff + i * shentsize) for i in range(shnum)]
        if shstrndx >= shnum:
            raise ElfError("ELF section-name string table index out of range")
        names = self._contents(raw[shstrndx])
        self.sections: list[Section] = []
        for i, (name, typ, flags, _addr, off, size, link, info, _align, entsize) in enumerate(raw):
            self.sections.append(
                Section(
                    index=i,
                    name=_cstr(names, name),
                    type=typ,
                    flags=flags,
                    size=size,
                    data=self._contents(raw[i]),
                    link=link,
                    info=info,
                    entsize=entsize,
                    offset=off,
                )
            )
        self._by_name: dict[str, Section] = {}
        for sec in self.sections:
            self._by_name.setdefault(sec.name, sec)
        self.symbols: list[Symbol] = self._read_symbols()

    def _contents(self, hdr: tuple[int, ...]) -> bytes:
        typ, offset, size = hdr[1], hdr[4], hdr[5]
        if typ in (SHT_NOBITS, SHT_NULL):
            return b""
        if offset + size > len(self.data):
            raise ElfError("ELF section extends past the end of the file")
        return self.data[offset : offset + size]

    def _read_segments(self, phoff: int, phentsize: int, phnum: int) -> list[Segment]:
        if not phoff or not phnum:
            return []
        if phentsize != _PHDR.size or phoff + phnum * phentsize > len(self.data):
            raise ElfError("ELF program header table is truncated or malformed")
        out = []
        for i in range(phnum):
            typ, flags, off, vaddr, _paddr, filesz, memsz, _align = _PHDR.unpack_from(
                self.data, phoff + i * phentsize
            )
            out.append(Segment(typ, flags, off, vaddr, filesz, memsz))
        return out

    def dynamic_symbols(self) -> list[Symbol]:
        """The dynamic symbol table (``.dynsym``), read on demand."""
        return self._read_symbols(SHT_DYNSYM)

    def _read_symbols(self, table: int = SHT_SYMTAB) -> list[Symbol]:
        symtab = next((s for s in self.sections if s.type == table), None)
        if symtab is None:
            return []
        if symtab.link >= len(self.sections):
            raise ElfError("symbol table string table index out of range")
        strtab = self.sections[symtab.link].data
        out = []
        for i in range(len(symtab.data) // _SYM.size):
            name, info, _other, shndx, value, size = _SYM.unpack_from(symtab.data, i * _SYM.size)
            out.append(
                Symbol(
                    index=i,
                    name=_cstr(strtab, name),
                    bind=info >> 4,
                    type=info & 0xF,
                    section=shndx,
                    value=value,
                    size=size,
                )
            )
        return out

    def section(self, name: str) -> Section | None:
        """Return the first section called *name*, or None."""
        return self._by_name.get(name)

    def symbols_in(self, section: int) -> list[Symbol]:
        """Symbols defined in section *section* (by index), sorted by value then index."""
        return sorted(
            (s for s in self.symbols if s.section == section), key=lambda s: (s.value, s.index)
        )

    def relocations(self, section: int) -> list[Relocation]:
        """The relocations applied to section *section* (by index), in file order."""
        out: list[Relocation] = []
        for rel in self.sections:
            if rel.type != SHT_REL or rel.info != section:
                continue
            for i in range(len(rel.data) // _REL.size):
                offset, info = _REL.unpack_from(rel.data, i * _REL.size)
                out.append(Relocation(offset, info >> 32, info & 0xFFFFFFFF))
        return out
