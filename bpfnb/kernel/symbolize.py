"""Addresses of stack traces -> function names: ``/proc/kallsyms``, ``/proc/PID/maps``, ELF.

Kernel addresses resolve through ``/proc/kallsyms`` (``do_sys_openat2+0x5a``); it is
read once and again when an address misses (BPF programs and modules loaded later add
symbols). User addresses resolve through the process's mappings: the mapping holding
the address gives the file and the file offset, the file's ``PT_LOAD`` segments give
the ELF address, and its function symbols (``.symtab``, else ``.dynsym``) the name.

Files are read with bpfnb's own ELF reader (:mod:`bpfnb.object.elf`): symbolization
needs section headers, symbol tables and program headers only, which it already parsed
for BPF objects, so no pyelftools dependency (and no DWARF: names, not lines). Files
are opened through ``/proc/PID/root`` (processes in containers) or, for files deleted
since they were mapped, ``/proc/PID/map_files``.

Everything is cached (kernel table, mappings per pid, symbol tables per file, frames
per address) and shared by the process through :func:`symbolizer`; a process's
mappings stay known after it exits, so its stacks still resolve.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bpfnb.codec.stacks import Frame
from bpfnb.errors import BpfnbError
from bpfnb.object import symbols
from bpfnb.object.elf import ElfFile, Segment
from bpfnb.object.symbols import Mapping, SymbolTable

KALLSYMS = Path("/proc/kallsyms")
PROC = Path("/proc")
#: Seconds before a missing kernel symbol makes /proc/kallsyms be read again.
KERNEL_RELOAD_AFTER = 2.0
#: Seconds before a user address outside every known mapping makes maps be read again.
MAPS_RELOAD_AFTER = 0.5
_MAX_PIDS = 512
_MAX_FILES = 128
_MAX_FRAMES = 200_000


@dataclass
class _ElfSymbols:
    table: SymbolTable
    segments: list[Segment]


class _Lru(OrderedDict[object, object]):
    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def put(self, key: object, value: object) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.limit:
            self.popitem(last=False)


class Symbolizer:
    """Resolves kernel and user addresses to :class:`~bpfnb.codec.stacks.Frame`s.

    Parameters
    ----------
    kallsyms : Path
        The kernel symbol file.
    proc : Path
        Where procfs is mounted.
    """

    def __init__(self, kallsyms: Path = KALLSYMS, proc: Path = PROC) -> None:
        self.kallsyms = kallsyms
        self.proc = proc
        self._lock = threading.RLock()
        self._kernel: SymbolTable | None = None
        self._kernel_loaded = 0.0
        self._maps: _Lru = _Lru(_MAX_PIDS)  # pid -> (loaded at, mappings)
        self._files: _Lru = _Lru(_MAX_FILES)  # file identity -> _ElfSymbols | None
        self._frames: _Lru = _Lru(_MAX_FRAMES)  # (pid, addr) -> Frame

    # -- the public calls ------------------------------------------------------------

    def frames(self, addresses: Sequence[int], pid: int | None = None) -> list[Frame]:
        """Frames of the addresses of one stack (user addresses need the ``pid``)."""
        with self._lock:
            return [self.frame(a, pid) for a in addresses]

    def frame(self, addr: int, pid: int | None = None) -> Frame:
        """The frame of one address."""
        kernel = symbols.is_kernel_address(addr)
        key = (None if kernel else pid, addr)
        with self._lock:
            found = self._frames.get(key)
            if isinstance(found, Frame):
                return found
            made = self._kernel_frame(addr) if kernel else self._user_frame(addr, pid)
            if made.symbol is not None or made.module is not None:
                self._frames.put(key, made)
            return made

    def forget(self, pid: int) -> None:
        """Drop what is cached about process ``pid``."""
        with self._lock:
            self._maps.pop(pid, None)
            for key in [k for k in self._frames if isinstance(k, tuple) and k[0] == pid]:
                del self._frames[key]

    # -- kernel ------------------------------------------------------------------------

    def _kernel_table(self, missed: bool) -> SymbolTable:
        now = time.monotonic()
        stale = missed and now - self._kernel_loaded > KERNEL_RELOAD_AFTER
        if self._kernel is None or stale:
            try:
                text = self.kallsyms.read_text()
            except OSError as exc:
                raise BpfnbError(f"cannot read {self.kallsyms}: {exc}") from exc
            self._kernel = symbols.kallsyms_table(text)
            self._kernel_loaded = now
        return self._kernel

    def _kernel_frame(self, addr: int) -> Frame:
        found = self._kernel_table(False).lookup(addr)
        if found is None:
            found = self._kernel_table(True).lookup(addr)
        if found is None:
            return Frame(addr, kernel=True)
        return Frame(addr, found[0], found[1], None, kernel=True)

    # -- user --------------------------------------------------------------------------

    def _mappings(self, pid: int, missed: bool) -> list[Mapping]:
        now = time.monotonic()
        cached = self._maps.get(pid)
        if isinstance(cached, tuple):
            loaded, maps = cached
            if not missed or now - loaded < MAPS_RELOAD_AFTER:
                return list(maps)
        try:
            text = (self.proc / str(pid) / "maps").read_text()
        except OSError:  # the process exited: keep what we knew
            return list(cached[1]) if isinstance(cached, tuple) else []
        maps = symbols.parse_maps(text)
        self._maps.put(pid, (now, maps))
        return maps

    def _user_frame(self, addr: int, pid: int | None) -> Frame:
        if pid is None:
            return Frame(addr)
        mapping = symbols.find_mapping(self._mappings(pid, False), addr)
        if mapping is None:
            mapping = symbols.find_mapping(self._mappings(pid, True), addr)
        if mapping is None:
            return Frame(addr)
        file_offset = addr - mapping.start + mapping.offset
        module = mapping.basename.strip("[]")
        if not mapping.file_backed:
            return Frame(addr, None, addr - mapping.start, module)
        elf = self._elf(pid, mapping)
        if elf is None:
            return Frame(addr, None, file_offset, module)
        vaddr = symbols.file_offset_to_vaddr(elf.segments, file_offset)
        found = elf.table.lookup(vaddr) if vaddr is not None else None
        if found is None:
            return Frame(addr, None, file_offset, module)
        return Frame(addr, found[0], found[1], module)

    def _elf(self, pid: int, mapping: Mapping) -> _ElfSymbols | None:
        path = mapping.path.removesuffix(" (deleted)")
        candidates = [
            self.proc / str(pid) / "root" / path.lstrip("/"),
            self.proc / str(pid) / "map_files" / f"{mapping.start:x}-{mapping.end:x}",
        ]
        for candidate in candidates:
            try:
                st = os.stat(candidate)
            except OSError:
                continue
            if st.st_ino != mapping.inode:
                continue  # replaced on disk since it was mapped: try the mapped copy
            ident = (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)
            if ident in self._files:
                cached = self._files[ident]
                return cached if isinstance(cached, _ElfSymbols) else None
            try:
                elf = ElfFile(candidate.read_bytes())
                made: _ElfSymbols | None = _ElfSymbols(
                    symbols.elf_function_table(elf), list(elf.segments)
                )
            except (OSError, BpfnbError):
                made = None
            self._files.put(ident, made)
            return made
        return None


_SHARED: Symbolizer | None = None
_SHARED_LOCK = threading.Lock()


def symbolizer() -> Symbolizer:
    """The process's shared symbolizer (its caches serve every stack map)."""
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is None:
            _SHARED = Symbolizer()
        return _SHARED


__all__ = ["Symbolizer", "symbolizer"]
