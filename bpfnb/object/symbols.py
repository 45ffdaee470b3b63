"""Symbol tables for stack traces: kernel symbols, process mappings, ELF functions.

Pure: every function here takes text or an :class:`~bpfnb.object.elf.ElfFile` and
returns tables; reading ``/proc`` and the files is the job of
:mod:`bpfnb.kernel.symbolize`.

- :func:`kallsyms_table` parses ``/proc/kallsyms`` text into a :class:`SymbolTable` of
  kernel text symbols (an address resolves to the last symbol at or below it:
  ``do_sys_openat2+0x5a``).
- :func:`parse_maps` parses ``/proc/PID/maps`` into :class:`Mapping` rows; a user
  address resolves to the mapping holding it, then to a file offset.
- :func:`elf_function_table` reads the function symbols of an executable or shared
  library (``.symtab``, else ``.dynsym``) into a :class:`SymbolTable` in the ELF's own
  address space, and :func:`file_offset_to_vaddr` maps a file offset to that space
  through the ``PT_LOAD`` segments (so PIE executables and libraries resolve wherever
  they were loaded).

Example
-------
>>> table = kallsyms_table("ffffffff81000000 T _stext\\nffffffff81000100 t helper\\n")
>>> table.name(0xFFFFFFFF81000105)
'helper+0x5'
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bpfnb.object.elf import PT_LOAD, STT_FUNC, STT_GNU_IFUNC, ElfFile, Segment

#: Addresses at or above this are kernel addresses (x86-64 and arm64 canonical split).
KERNEL_ADDRESS_MIN = 0xFFFF_8000_0000_0000


def is_kernel_address(addr: int) -> bool:
    """Whether ``addr`` is in the kernel's half of the address space."""
    return addr >= KERNEL_ADDRESS_MIN


class SymbolTable:
    """Function start addresses, sizes and names, sorted for address lookups.

    Parameters
    ----------
    entries : iterable of (address, size, name)
        Size 0 means unknown (the symbol then extends to the next one).
    """

    def __init__(self, entries: Iterable[tuple[int, int, str]]) -> None:
        rows = sorted({(a, s, n) for a, s, n in entries if a}, key=lambda r: (r[0], -r[1]))
        # keep one symbol per address: the largest (aliases share an address)
        starts: list[int] = []
        sizes: list[int] = []
        names: list[str] = []
        for addr, size, name in rows:
            if starts and starts[-1] == addr:
                continue
            starts.append(addr)
            sizes.append(size)
            names.append(name)
        self._starts = starts
        self._sizes = sizes
        self._names = names

    def __len__(self) -> int:
        return len(self._starts)

    def lookup(self, addr: int) -> tuple[str, int] | None:
        """Return ``(name, offset)`` of the symbol holding ``addr``, None when none does.

        A symbol with a known size holds ``[start, start + size)``; one of unknown size
        holds everything up to the next symbol.
        """
        i = bisect.bisect_right(self._starts, addr) - 1
        if i < 0:
            return None
        offset = addr - self._starts[i]
        size = self._sizes[i]
        if size and offset >= size:
            return None
        return self._names[i], offset

    def name(self, addr: int) -> str | None:
        """``name+0xOFF`` (``name`` at the symbol's start) of ``addr``, None when unknown."""
        found = self.lookup(addr)
        if found is None:
            return None
        name, offset = found
        return f"{name}+{offset:#x}" if offset else name


def kallsyms_table(text: str) -> SymbolTable:
    """Kernel text symbols (``t``/``T``/``w``/``W``) of ``/proc/kallsyms`` text.

    Module symbols keep their name (the ``[module]`` column is dropped). Addresses that
    read as 0 (kallsyms hidden from unprivileged readers) are skipped.
    """
    entries: list[tuple[int, int, str]] = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 3 or parts[1] not in ("t", "T", "w", "W"):
            continue
        try:
            addr = int(parts[0], 16)
        except ValueError:
            continue
        if addr:
            entries.append((addr, 0, parts[2]))
    return SymbolTable(entries)


@dataclass(frozen=True)
class Mapping:
    """One line of ``/proc/PID/maps``.

    Attributes
    ----------
    start, end : int
        The address range ``[start, end)``.
    perms : str
        ``r-xp`` style permissions.
    offset : int
        File offset of ``start``.
    inode : int
        The file's inode (0 for anonymous memory).
    path : str
        The file, ``[vdso]``-style pseudo name, or empty.
    """

    start: int
    end: int
    perms: str
    offset: int
    inode: int
    path: str

    @property
    def executable(self) -> bool:
        """Whether the mapping holds code."""
        return "x" in self.perms

    @property
    def file_backed(self) -> bool:
        """Whether a file backs the mapping (not anonymous, not ``[vdso]``)."""
        return self.inode != 0 and self.path.startswith("/")

    @property
    def deleted(self) -> bool:
        """Whether the file was deleted or replaced since it was mapped."""
        return self.path.endswith(" (deleted)")

    @property
    def basename(self) -> str:
        """The file name without its folder (``libc.so.6``)."""
        return self.path.removesuffix(" (deleted)").rsplit("/", 1)[-1] or self.path


def parse_maps(text: str) -> list[Mapping]:
    """Parse ``/proc/PID/maps`` text, sorted by start address."""
    out: list[Mapping] = []
    for line in text.splitlines():
        parts = line.split(maxsplit=5)
        if len(parts) < 5 or "-" not in parts[0]:
            continue
        lo, hi = parts[0].split("-", 1)
        try:
            out.append(
                Mapping(
                    start=int(lo, 16),
                    end=int(hi, 16),
                    perms=parts[1],
                    offset=int(parts[2], 16),
                    inode=int(parts[4]),
                    path=parts[5].strip() if len(parts) > 5 else "",
                )
            )
        except ValueError:
            continue
    out.sort(key=lambda m: m.start)
    return out


def find_mapping(mappings: list[Mapping], addr: int) -> Mapping | None:
    """The mapping holding ``addr`` (``mappings`` sorted by start), or None."""
    lo, hi = 0, len(mappings)
    while lo < hi:
        mid = (lo + hi) // 2
        if mappings[mid].start <= addr:
            lo = mid + 1
        else:
            hi = mid
    if lo and addr < mappings[lo - 1].end:
        return mappings[lo - 1]
    return None


def elf_function_table(elf: ElfFile) -> SymbolTable:
    """The functions of an executable or shared library, at their ELF addresses.

    ``.symtab`` when the file has one (unstripped), plus ``.dynsym`` (what stripped
    libraries keep); defined ``STT_FUNC`` and ``STT_GNU_IFUNC`` symbols only.
    """
    entries = [
        (s.value, s.size, s.name)
        for s in (*elf.symbols, *elf.dynamic_symbols())
        if s.type in (STT_FUNC, STT_GNU_IFUNC) and s.section and s.name
    ]
    return SymbolTable(entries)


def file_offset_to_vaddr(segments: Sequence[Segment], offset: int) -> int | None:
    """The ELF virtual address of file offset ``offset`` (through ``PT_LOAD``), or None.

    ``segments`` are the file's program headers (:attr:`ElfFile.segments`).
    """
    for seg in segments:
        if seg.type == PT_LOAD and seg.offset <= offset < seg.offset + max(seg.filesz, 1):
            return offset - seg.offset + seg.vaddr
    return None


__all__ = [
    "KERNEL_ADDRESS_MIN",
    "Mapping",
    "SymbolTable",
    "elf_function_table",
    "file_offset_to_vaddr",
    "find_mapping",
    "is_kernel_address",
    "kallsyms_table",
    "parse_maps",
]
