"""Pure tests of verifier-log parsing: cell line, key message and hint."""

from __future__ import annotations

import pytest

from bpfnb.diagnostics import hint_for, parse_load_log

NULL_LOG = """\
libbpf: prog 'on_enter': BPF program load failed: -EACCES
libbpf: prog 'on_enter': -- BEGIN PROG LOAD LOG --
arg#0 reference type('UNKNOWN ') size cannot be determined: -22
0: R1=ctx() R10=fp0
; u32 pid = bpf_get_current_pid_tgid() >> 32; @ syscalls.bpf.c:11
0: (85) call bpf_get_current_pid_tgid#14      ; R0=scalar()
; u64 *n = bpf_map_lookup_elem(&counts, &pid); @ syscalls.bpf.c:12
7: (85) call bpf_map_lookup_elem#1    ; R0=map_value_or_null(id=1,map=counts,ks=4,vs=8)
; *n += 1; @ syscalls.bpf.c:13
8: (79) r1 = *(u64 *)(r0 +0)
R0 invalid mem access 'map_value_or_null'
processed 8 insns (limit 1000000) max_states_per_insn 0 total_states 1 peak_states 1 mark_read 0
-- END PROG LOAD LOG --
libbpf: prog 'on_enter': failed to load: -EACCES
libbpf: failed to load object 'syscalls.o'
"""


def test_null_check_log() -> None:
    failure = parse_load_log(NULL_LOG, "syscalls.bpf.c")
    assert failure.program == "on_enter"
    assert failure.line == 13
    assert failure.source_text == "*n += 1;"
    assert failure.reason == "R0 invalid mem access 'map_value_or_null'"
    assert failure.hint is not None and "NULL" in failure.hint
    assert failure.verifier_log.startswith("arg#0")


def test_annotations_of_other_files_are_ignored() -> None:
    log = NULL_LOG.replace("@ syscalls.bpf.c:13", "@ /usr/include/bpf/bpf_helpers.h:99")
    assert parse_load_log(log, "syscalls.bpf.c").line == 12


def test_log_without_program_block() -> None:
    log = (
        "libbpf: map 'counts': failed to create: Invalid argument(-22)\n"
        "libbpf: failed to load object 'x.o'\n"
    )
    failure = parse_load_log(log, "x.bpf.c")
    assert failure.program == "" and failure.line is None
    assert failure.reason == "map 'counts': failed to create: Invalid argument(-22)"


@pytest.mark.parametrize(
    ("message", "word"),
    [
        ("R0 invalid mem access 'map_value_or_null'", "NULL"),
        ("R1 invalid mem access 'ringbuf_mem_or_null'", "NULL"),
        ("back-edge from insn 12 to 5", "loop"),
        ("infinite loop detected at insn 7", "loop"),
        ("invalid read from stack R2 off=-64 size=8", "stack"),
        ("invalid access to map value, value_size=8 off=8 size=8", "bounds"),
        (
            "R1 min value is negative, either use unsigned index or do a if (index >=0) check.",
            "bounds",
        ),
        ("program of this type cannot use helper bpf_probe_write_user#36", "program type"),
        ("unknown func bpf_foo#999", "program type"),
        ("Unreleased reference id=2 alloc_insn=5", "bpf_ringbuf_submit"),
        ("cannot call GPL-restricted function from non-GPL compatible program", "GPL"),
        ("BPF program is too large. Processed 1000001 insn", "too large"),
        ("R1 invalid mem access 'scalar'", "BPF_CORE_READ"),
        ("The sequence of 8193 jumps is too complex.", "too large"),
        ("R3 !read_ok", "initialise"),
    ],
)
def test_hints(message: str, word: str) -> None:
    hint = hint_for(message)
    assert hint is not None and word in hint


def test_no_hint_for_unknown_message() -> None:
    assert hint_for("something entirely new") is None


def test_whole_log_noise_gives_no_hint() -> None:
    log = NULL_LOG.replace("R0 invalid mem access 'map_value_or_null'", "some new rejection")
    failure = parse_load_log(log, "syscalls.bpf.c")
    assert failure.reason == "some new rejection"
    assert failure.hint is None
