"""What each function of a BPF object refers to: maps, helpers, subprogram calls (pure).

Read from the instructions and the ``SHT_REL`` relocations of the object's executable
sections, without applying anything. bpfnb uses it to decide which of its own hidden
maps a program needs (a map no function refers to is not created), to check that every
call of a submitting helper is counted (see ``bpfnb/events.h``), and to tell which
maps alternative programs share.

Example
-------
>>> funcs = functions(ElfFile(open("prog.bpf.o", "rb").read()))      # doctest: +SKIP
>>> funcs["on_getpid"].maps, sorted(funcs["on_getpid"].helpers)      # doctest: +SKIP
(frozenset({'counts'}), [1, 2, 14])
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from bpfnb.object.elf import STT_FUNC, ElfFile

#: ``BPF_JMP | BPF_CALL``: a helper call (src_reg 0), bpf-to-bpf call (1) or kfunc call (2).
CALL = 0x85
PSEUDO_CALL = 1
_INSN = struct.Struct("<BBhi")

#: Helper ids of ``enum bpf_func_id`` bpfnb cares about.
HELPER_IDS: dict[str, int] = {
    "bpf_map_update_elem": 2,
    "bpf_perf_event_output": 25,
    "bpf_map_push_elem": 87,
    "bpf_ringbuf_output": 130,
    "bpf_ringbuf_reserve": 131,
    "bpf_ringbuf_reserve_dynptr": 198,
}
#: Helpers that submit an event to a ring buffer or perf event array.
SUBMIT_HELPERS = frozenset(
    HELPER_IDS[n]
    for n in (
        "bpf_perf_event_output",
        "bpf_ringbuf_output",
        "bpf_ringbuf_reserve",
        "bpf_ringbuf_reserve_dynptr",
    )
)
HELPER_NAMES: dict[int, str] = {v: k for k, v in HELPER_IDS.items()}


@dataclass(frozen=True)
class FunctionCode:
    """What one function (a program or a subprogram in ``.text``) refers to.

    Attributes
    ----------
    name : str
        The C function name.
    section : str
        Its section (the SEC() text for programs, ``.text`` for subprograms).
    program : bool
        Whether it is a program (an entry point), not a subprogram.
    maps : frozenset of str
        Maps its instructions load (``&map`` relocations).
    helpers : frozenset of int
        Helper ids it calls.
    calls_subprograms : bool
        Whether it calls other BPF functions (bpf-to-bpf calls).
    """

    name: str
    section: str
    program: bool
    maps: frozenset[str]
    helpers: frozenset[int]
    calls_subprograms: bool


def functions(elf: ElfFile) -> dict[str, FunctionCode]:
    """Summarise every function of an object, by name (section order, then offset)."""
    maps_sec = elf.section(".maps")
    maps_index = maps_sec.index if maps_sec is not None else -1
    symbols = elf.symbols
    out: dict[str, FunctionCode] = {}
    for sec in elf.sections:
        if not sec.executable or not sec.size:
            continue
        refs: dict[int, str] = {}
        for rel in elf.relocations(sec.index):
            if 0 <= rel.symbol < len(symbols):
                sym = symbols[rel.symbol]
                if sym.section == maps_index and sym.name:
                    refs[rel.offset] = sym.name
        funcs = [s for s in elf.symbols_in(sec.index) if s.type == STT_FUNC and s.name]
        for func in funcs:
            end = func.value + func.size if func.size else sec.size
            maps: set[str] = set()
            helpers: set[int] = set()
            calls = False
            for offset in range(func.value, min(end, len(sec.data)) - 7, 8):
                code, regs, _off, imm = _INSN.unpack_from(sec.data, offset)
                if offset in refs:
                    maps.add(refs[offset])
                if code == CALL:
                    src = regs >> 4
                    if src == 0:
                        helpers.add(imm)
                    elif src == PSEUDO_CALL:
                        calls = True
            out[func.name] = FunctionCode(
                func.name,
                sec.name,
                sec.name != ".text",
                frozenset(maps),
                frozenset(helpers),
                calls,
            )
    return out


def subprogram_maps(funcs: dict[str, FunctionCode]) -> frozenset[str]:
    """Maps referred to by subprograms (``.text``), which any program may call."""
    return frozenset(m for f in funcs.values() if not f.program for m in f.maps)


def maps_of_program(funcs: dict[str, FunctionCode], name: str) -> frozenset[str]:
    """Maps a program refers to, itself or (approximately) through subprograms it calls."""
    func = funcs[name]
    if func.calls_subprograms:
        return func.maps | subprogram_maps(funcs)
    return func.maps


def referenced_maps(funcs: dict[str, FunctionCode]) -> frozenset[str]:
    """Every map some function refers to."""
    return frozenset(m for f in funcs.values() for m in f.maps)


__all__ = [
    "HELPER_IDS",
    "HELPER_NAMES",
    "SUBMIT_HELPERS",
    "FunctionCode",
    "functions",
    "maps_of_program",
    "referenced_maps",
    "subprogram_maps",
]
