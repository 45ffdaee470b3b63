"""Pure tests of what issue 9 added around the build: variants, options, kfunc
prototypes, event types in headers, slots histograms, compile hints, object code."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bpfnb.build import command, eventtypes, headers, kfuncs
from bpfnb.codec import histogram
from bpfnb.diagnostics import format_compile_error, parse_diagnostics
from bpfnb.errors import CommandError
from bpfnb.object import btf, code, maptypes, variants
from bpfnb.object.spec import ObjectSpec, ProgramSpec

from conftest import DATA

# -- variants --------------------------------------------------------------------------------


def spec_of(*programs: tuple[str, str]) -> ObjectSpec:
    return ObjectSpec(
        btf.Btf([btf.VOID], b"\0"), {}, [ProgramSpec(n, s) for n, s in programs], {}, None
    )


def groups_of(*programs: tuple[str, str]) -> list[list[tuple[str, tuple[str, ...]]]]:
    found = variants.variant_groups(spec_of(*programs))
    return [[(a.label, a.programs) for a in g.alternatives] for g in found]


def test_same_event_different_kinds_are_alternatives() -> None:
    assert groups_of(
        ("sched_wakeup", "tp_btf/sched_wakeup"),
        ("sched_switch", "tp_btf/sched_switch"),
        ("handle_sched_wakeup", "raw_tp/sched_wakeup"),
        ("handle_sched_switch", "raw_tp/sched_switch"),
    ) == [
        [("tp_btf", ("sched_wakeup",)), ("raw_tp", ("handle_sched_wakeup",))],
        [("tp_btf", ("sched_switch",)), ("raw_tp", ("handle_sched_switch",))],
    ]
    # fentry before kprobe, fexit before kretprobe, entry and exit apart
    assert groups_of(
        ("kprobe_read", "kprobe/vfs_read"),
        ("fentry_read", "fentry/vfs_read"),
        ("read_exit", "kretprobe/vfs_read"),
        ("read_fexit", "fexit/vfs_read"),
    ) == [
        [("fentry", ("fentry_read",)), ("kprobe", ("kprobe_read",))],
        [("fexit", ("read_fexit",)), ("kretprobe", ("read_exit",))],
    ]


def test_same_kind_or_different_events_are_not_alternatives() -> None:
    assert (
        groups_of(
            ("a", "tracepoint/syscalls/sys_enter_open"),
            ("b", "tracepoint/syscalls/sys_enter_openat"),
        )
        == []
    )
    assert groups_of(("count", "tp_btf/sched_switch"), ("trace", "tp_btf/sched_switch")) == []


def test_handler_names_join_variants_on_different_hooks() -> None:
    assert variants.handler_base("sched_switch_btf") == "sched_switch"
    assert variants.handler_base("tp_btf_sched_switch") == "sched_switch"
    assert variants.handler_base("handle_sched_switch") == "sched_switch"
    assert variants.handler_base("fentry_vfs_read") == "vfs_read"
    assert groups_of(
        ("io_start_btf", "tp_btf/block_io_start"), ("io_start", "fentry/blk_account_io_start")
    ) == [[("tp_btf", ("io_start_btf",)), ("fentry", ("io_start",))]]


def test_generic_prefixes_do_not_make_variants() -> None:
    assert (
        groups_of(
            ("handle_exec", "tracepoint/sched/sched_process_exec"),
            ("trace_exec", "kprobe/do_execve"),
        )
        == []
    )


def test_covering_tracepoint_and_the_kill_syscalls() -> None:
    assert groups_of(
        ("kill_entry", "tracepoint/syscalls/sys_enter_kill"),
        ("kill_exit", "tracepoint/syscalls/sys_exit_kill"),
        ("sig_trace", "tracepoint/signal/signal_generate"),
    ) == [
        [
            ("signal_generate", ("sig_trace",)),
            ("sys_enter_kill, sys_exit_kill", ("kill_entry", "kill_exit")),
        ]
    ]


# -- cell options ------------------------------------------------------------------------------


def test_program_and_map_options() -> None:
    args = command.parse_cell_args(
        "t --programs a,b --programs c --skip d --max-entries start=4096 --max-entries x=0x10 --bcc"
    )
    assert args.programs == ["a", "b", "c"] and args.skip == ["d"]
    assert args.max_entries == {"start": 4096, "x": 16} and args.bcc is True
    plain = command.parse_cell_args("t")
    assert plain.programs is None and plain.skip == [] and plain.bcc is None
    for bad, message in (
        ("t --max-entries start=big", "whole number"),
        ("t --max-entries start=0", "positive"),
        ("t --programs 'a b'", "C function names"),
    ):
        with pytest.raises(CommandError, match=message):
            command.parse_cell_args(bad)


# -- kfunc prototypes --------------------------------------------------------------------------


def test_kfunc_prototypes_from_btf() -> None:
    s32 = btf.Typedef(1, "s32", btf.Int(2, "int", 4, True))
    task = btf.Struct(3, "task_struct", 8)
    ptask = btf.Pointer(4, "", task)
    cb = btf.Pointer(
        5,
        "",
        btf.FuncProto(
            6, "", btf.Int(7, "int", 4, True), [btf.Param("", btf.Pointer(8, "", btf.VOID))]
        ),
    )
    const_ptr = btf.Const(9, "", btf.Pointer(10, "", btf.Int(11, "char", 1, True)))
    from_pid = btf.Func(
        12, "bpf_task_from_pid", btf.FuncProto(13, "", ptask, [btf.Param("pid", s32)]), 1
    )
    with_cb = btf.Func(
        14,
        "bpf_call_me",
        btf.FuncProto(15, "", btf.VOID, [btf.Param("fn", cb), btf.Param("name", const_ptr)]),
        1,
    )
    plain = btf.Func(16, "not_a_kfunc", btf.FuncProto(17, "", btf.VOID, []), 1)
    tags = [btf.DeclTag(18, "bpf_kfunc", from_pid), btf.DeclTag(19, "bpf_kfunc", with_cb)]
    types = btf.Btf([btf.VOID, s32, task, ptask, cb, from_pid, with_cb, plain, *tags], b"\0")
    table = kfuncs.prototypes_from_btf(types)
    assert table == {
        "bpf_call_me": (
            "extern void bpf_call_me(int (*fn)(void *), char *const name) __weak __ksym;"
        ),
        "bpf_task_from_pid": "extern struct task_struct *bpf_task_from_pid(s32 pid) __weak __ksym;",
    }
    cell = "int f(void) { struct task_struct *t = bpf_task_from_pid(1); return !!t; }"
    assert kfuncs.needed([cell], table) == ["bpf_task_from_pid"]
    declared = "extern struct task_struct *bpf_task_from_pid(int pid) __ksym;\n" + cell
    assert kfuncs.needed([declared], table) == []  # the cell's own declaration wins
    own = "static int bpf_task_from_pid(int x) { return x; }\n" + cell
    assert kfuncs.needed([own], table) == []


# -- event types in headers --------------------------------------------------------------------


def test_wrappers_and_header_types(tmp_path: object) -> None:
    header = """
struct hdr_event { int pid; };
struct other { long x; };
static __always_inline void *reserve_buf(__u64 size)
{ return bpf_ringbuf_reserve(&events, size, 0); }
static __always_inline long submit_buf(void *ctx, void *buf, __u64 size)
{ return bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, buf, size); }
"""
    cell = """
int f(void *ctx) {
    struct hdr_event *e;
    e = reserve_buf(sizeof(*e));
    submit_buf(ctx, e, sizeof(*e));
    return 0;
}
"""
    wrappers = eventtypes.all_wrappers([cell, header])
    assert wrappers["reserve_buf"] == eventtypes.Wrapper("bpf_ringbuf_reserve", "events", None, 0)
    assert wrappers["submit_buf"] == eventtypes.Wrapper("bpf_perf_event_output", "events", 1, 2)
    assert eventtypes.event_type_name(cell, "events", [header]) == "struct hdr_event"
    epilogue = eventtypes.epilogue(cell, [header])
    assert "struct hdr_event *__bpfnb_anchor_0" in epilogue
    assert "struct other *__bpfnb_anchor_1" in epilogue


def test_user_headers_are_found_in_the_cell_directories(tmp_path: object) -> None:
    from pathlib import Path

    base = Path(str(tmp_path))
    (base / "inc").mkdir()
    (base / "inc" / "a.h").write_text(
        '#include "b.h"\n#include <vmlinux.h>\n#include <bpf/bpf_helpers.h>\n'
    )
    (base / "inc" / "b.h").write_text("struct b { int x; };\n")
    found = headers.user_headers('#include "a.h"\n#include <stdio.h>\n', [str(base / "inc")])
    assert [h.path.name for h in found] == ["a.h", "b.h"]
    tools = headers.user_headers(
        (DATA / "libbpf-tools" / "opensnoop.bpf.c").read_text(), [str(DATA / "libbpf-tools")]
    )
    assert {h.path.name for h in tools} >= {"compat.bpf.h", "opensnoop.h", "path_helpers.bpf.h"}


# -- slots histograms ----------------------------------------------------------------------------


def _hist_struct(*members: tuple[str, btf.Type]) -> btf.Struct:
    return btf.Struct(1, "hist", 0, [btf.Member(n, t, 0) for n, t in members])


def test_slots_histogram_recognition() -> None:
    u32 = btf.Int(2, "unsigned int", 4)
    u64 = btf.Int(3, "long long unsigned int", 8)
    char = btf.Int(4, "char", 1, True)
    slots = btf.Array(5, "", u32, u32, 26)
    comm = btf.Array(6, "", char, u32, 16)
    hist = _hist_struct(("slots", slots), ("comm", comm))
    scheme = maptypes.slots_scheme(maptypes.HASH, hist)
    assert scheme == maptypes.HistogramScheme("log2_slots", 0, 26, 0)
    assert maptypes.kind_of(maptypes.HASH, scheme) == "slots_histogram"
    assert maptypes.kind_of(maptypes.PERCPU_ARRAY, scheme) == "percpu_slots_histogram"
    assert maptypes.is_histogram("slots_histogram") and maptypes.is_per_cpu(
        "percpu_slots_histogram"
    )
    info = _hist_struct(("count", u64), ("slots", slots))  # hardirqs' struct info: counters too
    assert maptypes.slots_scheme(maptypes.HASH, info) is None
    assert maptypes.slots_scheme(maptypes.RINGBUF, hist) is None


def test_slots_frame_per_key() -> None:
    scheme = maptypes.HistogramScheme("log2_slots", 0, 5, 0)
    keys = pd.DataFrame({"key": [7, 8, 9], "comm": ["a", "b", "c"]})
    counts = np.array([[0, 3, 0, 1, 0], [0, 0, 0, 0, 0], [2, 0, 0, 0, 9]], dtype=np.uint32)
    frame = histogram.slots_frame(scheme, keys, counts)
    assert frame["key"].tolist() == [7, 7, 7, 9, 9, 9, 9, 9]
    assert frame["bucket"].tolist() == [
        "[2, 4)", "[4, 8)", "[8, 16)", "[0, 2)", "[2, 4)", "[4, 8)", "[8, 16)", "[16, ...)",
    ]  # fmt: skip
    assert frame["count"].tolist() == [3, 0, 1, 2, 0, 0, 0, 9]
    assert frame["low"].tolist()[:2] == [2, 4] and pd.isna(frame["high"].iloc[-1])
    assert histogram.Histogram.of(scheme).slot_of(1) == 0
    assert histogram.Histogram.of(scheme).slot_of(5) == 2
    assert histogram.Histogram.of(scheme).slot_of(10**9) == 4


# -- compile hints -------------------------------------------------------------------------------


def test_prelude_clash_hint_only_for_redefinitions() -> None:
    stderr = (
        "c.bpf.c:2:3: error: too many arguments to function call, expected 3, have 4\n"
        "/usr/include/bpf/bpf_helper_defs.h:50:14: note: 'bpf_probe_read' declared here\n"
    )
    diags = parse_diagnostics(stderr, "c.bpf.c", line_offset=1)
    text = format_compile_error("c", "\nx\n", diags, stderr, line_offset=1)
    assert "too many arguments" in text and "rename it" not in text
    clash = (
        "c.bpf.c:2:5: error: redefinition of 'bpf_map_lookup_elem' as different kind of symbol\n"
        "/usr/include/bpf/bpf_helper_defs.h:50:14: note: previous definition is here\n"
    )
    diags = parse_diagnostics(clash, "c.bpf.c", line_offset=1)
    text = format_compile_error("c", "\nx\n", diags, clash, line_offset=1)
    assert "'bpf_map_lookup_elem' is already defined by bpf_helper_defs.h" in text


def test_implicit_declaration_hint() -> None:
    stderr = (
        "c.bpf.c:1:9: error: implicit declaration of function 'bpf_htonx' is invalid in C99 "
        "[-Werror,-Wimplicit-function-declaration]\n"
    )
    diags = parse_diagnostics(stderr, "c.bpf.c", line_offset=1)
    text = format_compile_error("c", "int x = bpf_htonx(1);\n", diags, stderr, line_offset=1)
    assert "hint: nothing declares 'bpf_htonx'" in text


# -- object code ---------------------------------------------------------------------------------


def test_functions_refer_to_maps_and_helpers() -> None:
    spec = ObjectSpec.from_file(DATA / "types.bpf.o")
    funcs = spec.functions
    assert list(funcs) == ["helper", "on_getpid", "on_exit_a", "on_exit_b", "second_section"]
    on_getpid = funcs["on_getpid"]
    assert on_getpid.program and on_getpid.calls_subprograms
    assert on_getpid.maps == set(spec.maps)  # it touches every map of the object
    assert on_getpid.helpers == {1}  # bpf_map_lookup_elem
    assert not funcs["helper"].program and funcs["helper"].section == ".text"
    assert funcs["on_exit_b"].maps == frozenset() and not funcs["on_exit_b"].calls_subprograms
    assert code.referenced_maps(funcs) == set(spec.maps)
    assert code.maps_of_program(funcs, "on_exit_a") == code.subprogram_maps(funcs) == frozenset()
