"""Pure tests of the cell-line messages: clang diagnostics, verifier and attach errors.

The cells and logs here are recorded from real clang and kernel runs; the kernel tests
of the same paths are in test_compiler.py and test_lifecycle.py.
"""

from __future__ import annotations

import pytest

from bpfnb.diagnostics import (
    Diagnostic,
    attach_error_message,
    format_compile_error,
    format_warnings,
    load_error,
    parse_diagnostics,
    quote_cell_line,
)
from bpfnb.errors import LoadError, VerifierError

# Line 4 dereferences a lookup result without a NULL check; the log is the kernel's.
NO_CHECK = """\
struct { __uint(type, BPF_MAP_TYPE_HASH); __type(key, u32); __type(value, u64); \
__uint(max_entries, 8); } counts SEC(".maps");
SEC("tracepoint/syscalls/sys_enter_getpid")
int on_getpid(void *ctx)
{   u32 key = 0; u64 *n = bpf_map_lookup_elem(&counts, &key); *n += 1;
    return 0;
}
"""
NO_CHECK_LINE_4 = "{   u32 key = 0; u64 *n = bpf_map_lookup_elem(&counts, &key); *n += 1;"
NO_CHECK_LOG = """\
libbpf: prog 'on_getpid': BPF program load failed: -EACCES
libbpf: prog 'on_getpid': -- BEGIN PROG LOAD LOG --
arg#0 reference type('UNKNOWN ') size cannot be determined: -22
0: R1=ctx() R10=fp0
; int on_getpid(void *ctx) @ nocheck.bpf.c:3
0: (b4) w1 = 0                        ; R1=0
; {   u32 key = 0; u64 *n = bpf_map_lookup_elem(&counts, &key); *n += 1; @ nocheck.bpf.c:4
1: (63) *(u32 *)(r10 -4) = r1         ; R1=0 R10=fp0 fp-8=0000????
2: (bf) r2 = r10                      ; R2=fp0 R10=fp0
;  @ nocheck.bpf.c:0
3: (07) r2 += -4                      ; R2=fp-4
; {   u32 key = 0; u64 *n = bpf_map_lookup_elem(&counts, &key); *n += 1; @ nocheck.bpf.c:4
4: (18) r1 = 0xffff88815ced4000       ; R1=map_ptr(map=counts,ks=4,vs=8)
6: (85) call bpf_map_lookup_elem#1    ; R0=map_value_or_null(id=1,map=counts,ks=4,vs=8)
7: (79) r1 = *(u64 *)(r0 +0)
R0 invalid mem access 'map_value_or_null'
processed 7 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0
-- END PROG LOAD LOG --
libbpf: prog 'on_getpid': failed to load: -EACCES
libbpf: failed to load object 'nocheck.bpf.o'
"""
# clang 14's output for a cell whose line 4 lacks a ';' and line 2 has a #warning.
CELL = """\
SEC("tracepoint/syscalls/sys_enter_getpid")
#warning "check me"
int on_getpid(void *ctx)
{   u32 pid = 1
    return pid; }
"""
STDERR = """\
broken.bpf.c:2:2: warning: "check me" [-W#warnings]
broken.bpf.c:4:16: error: expected ';' at end of declaration
"""


@pytest.mark.parametrize("offset", [0, 1])
def test_syntax_error_line_follows_the_offset(offset: int) -> None:
    diagnostics = parse_diagnostics(STDERR, "broken.bpf.c", cell_lines=5, line_offset=offset)
    error = diagnostics[1]
    assert (error.kind, error.line, error.column, error.in_cell) == ("error", 4 + offset, 16, True)
    text = format_compile_error("broken", CELL, diagnostics, STDERR, line_offset=offset)
    assert text.splitlines() == [
        "clang: 1 error in cell 'broken'",
        f"  line {4 + offset}, col 16: expected ';' at end of declaration",
        f"  {4 + offset:>4} | {{   u32 pid = 1",
        "       |                ^",
    ]


@pytest.mark.parametrize("offset", [0, 1])
def test_warning_line_follows_the_offset(offset: int) -> None:
    warnings = [
        d
        for d in parse_diagnostics(STDERR, "broken.bpf.c", cell_lines=5, line_offset=offset)
        if d.kind == "warning"
    ]
    assert [(w.line, w.message) for w in warnings] == [(2 + offset, '"check me" [-W#warnings]')]
    text = format_warnings("broken", CELL, warnings, line_offset=offset)
    assert f"  line {2 + offset}, col 2: " in text
    assert f'  {2 + offset:>4} | #warning "check me"' in text


@pytest.mark.parametrize("offset", [0, 1])
def test_recorded_verifier_log_line_follows_the_offset(offset: int) -> None:
    err = load_error(
        "BPF program load failed", NO_CHECK_LOG, "nocheck.bpf.c", NO_CHECK, line_offset=offset
    )
    assert isinstance(err, VerifierError)
    assert err.line == 4 + offset
    assert err.source_line == NO_CHECK_LINE_4
    assert err.program == "on_getpid"
    assert err.reason == "R0 invalid mem access 'map_value_or_null'"
    assert err.log == NO_CHECK_LOG
    lines = str(err).splitlines()
    assert lines[0] == f"the verifier rejected program 'on_getpid' at cell line {4 + offset}:"
    assert lines[1] == f"  {4 + offset:>4} | {NO_CHECK_LINE_4}"
    assert lines[2] == "  R0 invalid mem access 'map_value_or_null'"
    assert lines[3].startswith("hint: a pointer that may be NULL")


def test_load_error_without_verifier_log() -> None:
    log = "libbpf: map 'counts': failed to create: Invalid argument(-22)\n"
    err = load_error("load failed", log, "x.bpf.c", "int x;\n", line_offset=1)
    assert type(err) is LoadError
    assert str(err) == (
        "the kernel refused to load the object: map 'counts': failed to create: "
        "Invalid argument(-22)"
    )
    empty = load_error("Operation not permitted", "", "x.bpf.c", "")
    assert (
        str(empty)
        == "the kernel refused to load the object: the kernel refused the object (no log)"
    )


def test_verifier_line_in_appended_text_is_not_a_cell_line() -> None:
    log = NO_CHECK_LOG.replace("@ nocheck.bpf.c:4", "@ nocheck.bpf.c:9").replace(
        "@ nocheck.bpf.c:3", "@ nocheck.bpf.c:8"
    )
    err = load_error("failed", log, "nocheck.bpf.c", NO_CHECK, line_offset=1)
    assert isinstance(err, VerifierError)
    assert err.line is None and err.source_line is None
    assert str(err).splitlines()[:2] == [
        "the verifier rejected program 'on_getpid':",
        f"       | {NO_CHECK_LINE_4}",
    ]


def test_quote_cell_line() -> None:
    source = "a\nbb\nccc\n"
    assert quote_cell_line(source, 2) == ["     2 | bb"]
    assert quote_cell_line(source, 3, column=2, line_offset=1) == ["     4 | ccc", "       |  ^"]
    assert quote_cell_line(source, 0) == [] and quote_cell_line(source, 4) == []


def test_appended_lines_and_headers_are_not_shifted() -> None:
    stderr = (
        "c.bpf.c:7:1: error: unknown type name 'oops'\n"
        "/usr/include/bpf/bpf_helpers.h:10:3: error: boom\n"
        "c.bpf.c:1:5: note: here\n"
    )
    diags = parse_diagnostics(stderr, "c.bpf.c", cell_lines=3, line_offset=1)
    assert [(d.line, d.in_cell) for d in diags] == [(7, False), (10, False), (2, True)]
    text = format_compile_error("c", "int x;\n\n\n", diags, stderr, line_offset=1)
    assert "  in the lines bpfnb appends to the cell:7: unknown type name 'oops'" in text
    assert "  in bpf_helpers.h:10: boom" in text


def test_prelude_clash_hint_and_unparsed_output() -> None:
    stderr = (
        "clash.bpf.c:6:3: error: redefinition of 'config'\n"
        "/cache/kernel-1/vmlinux.h:100:8: note: previous definition is here\n"
    )
    source = '\n\n\n\n\n} config SEC(".maps");\n'
    diags = parse_diagnostics(stderr, "clash.bpf.c", line_offset=1)
    text = format_compile_error("clash", source, diags, stderr, line_offset=1)
    assert "  line 7, col 3: redefinition of 'config'" in text
    assert '     7 | } config SEC(".maps");' in text
    assert "hint: 'config' is already defined by vmlinux.h" in text
    assert format_compile_error("x", "", [], "clang: crashed\n") == (
        "clang failed on cell 'x':\nclang: crashed"
    )


def test_diagnostic_shift_only_moves_cell_lines() -> None:
    inside = Diagnostic("warning", "w", 3, 1, "c.bpf.c", True)
    header = Diagnostic("warning", "w", 3, 1, "h.h", False)
    assert inside.shifted(1).line == 4 and header.shifted(1).line == 3


def test_attach_error_messages() -> None:
    tp = attach_error_message(
        "p",
        "tracepoint/syscalls/sys_enter_nope",
        "tracepoint",
        "failed",
        "libbpf: prog 'p': failed to create BPF link: -ENOENT\n"
        "libbpf: prog 'p': failed to attach to tracepoint 'syscalls/sys_enter_nope': -ENOENT\n",
    )
    assert tp.splitlines() == [
        "cannot attach program 'p' to SEC(\"tracepoint/syscalls/sys_enter_nope\"): "
        "prog 'p': failed to attach to tracepoint 'syscalls/sys_enter_nope': -ENOENT",
        "hint: check the tracepoint exists: ls /sys/kernel/tracing/events/syscalls/sys_enter_nope "
        "(syscall tracepoints are syscalls/sys_enter_NAME and syscalls/sys_exit_NAME)",
    ]
    btf = attach_error_message("f", "fentry/do_nothing", "fentry", "Operation not permitted", "")
    assert btf.splitlines()[0] == (
        "cannot attach program 'f' to SEC(\"fentry/do_nothing\"): Operation not permitted"
    )
    assert "bpftool btf dump file /sys/kernel/btf/vmlinux" in btf
    plain = attach_error_message("u", "uprobe/x:y", "uprobe", "", "")
    assert plain == "cannot attach program 'u' to SEC(\"uprobe/x:y\")"
