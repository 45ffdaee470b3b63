"""Kernel tests of the configure phase and of what cells may now use.

Program choice (``programs=`` / ``skip=``), one variant per group of alternatives,
programs without an attach point left out, map sizes, kfunc prototypes, undeclared
functions, BCC errors on the user's line, and the views of the new map kinds.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import bpfnb
from bpfnb.errors import CommandError, CompileError, KernelFeatureError, LoadError
from bpfnb.kernel import configure, system
from bpfnb.ui.views import view_for

from workload import Workload

COUNTS = """
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __type(key, u32);
    __type(value, u64);
    __uint(max_entries, 1024);
} counts SEC(".maps");

const volatile u32 target = 0;

static __always_inline int count(u32 slot)
{
    if ((u32)(bpf_get_current_pid_tgid() >> 32) != target)
        return 0;
    u64 one = 1, *n = bpf_map_lookup_elem(&counts, &slot);
    if (n)
        __sync_fetch_and_add(n, 1);
    else
        bpf_map_update_elem(&counts, &slot, &one, BPF_NOEXIST);
    return 0;
}
"""

TWO_PROGRAMS = (
    COUNTS
    + """
SEC("tracepoint/syscalls/sys_enter_getpid")
int first(void *ctx) { return count(1); }

SEC("tracepoint/syscalls/sys_enter_getpid")
int second(void *ctx) { return count(2); }
"""
)


def _counts(prog: bpfnb.Program) -> dict[int, int]:
    return {
        int(k): int(v)
        for k, v in zip(prog.counts.df()["key"], prog.counts.df()["value"], strict=True)
    }


def test_programs_and_skip_choose_what_loads(clean_kernel: tuple[int, int, int]) -> None:
    with Workload() as w:
        with bpfnb.load(TWO_PROGRAMS, "pick", globals={"target": w.pid}, programs="second") as p:
            assert p.attach_points == ["tracepoint/syscalls/sys_enter_getpid"]
            assert [(x.name, x.loaded) for x in p.programs] == [("first", False), ("second", True)]
            w.run("getpid", 9)
            assert _counts(p) == {2: 9}
        with bpfnb.load(TWO_PROGRAMS, "pick", globals={"target": w.pid}, skip=["second"]) as p:
            w.run("getpid", 4)
            assert _counts(p) == {1: 4}
            assert p.notes == ["left out as asked: second"]
        with bpfnb.load(TWO_PROGRAMS, "pick", globals={"target": w.pid}) as p:
            w.run("getpid", 3)
            assert _counts(p) == {1: 3, 2: 3}  # same kind on one event: both wanted
    with pytest.raises(CommandError, match=r"no program 'third'.*first, second"):
        bpfnb.load(TWO_PROGRAMS, "pick", programs="first,third")


VARIANTS = (
    COUNTS
    + """
SEC("tp_btf/sys_enter")
int BPF_PROG(on_enter_btf, struct pt_regs *regs, long id) { return id == 39 ? count(1) : 0; }

SEC("raw_tp/sys_enter")
int BPF_PROG(on_enter_raw, struct pt_regs *regs, long id) { return id == 39 ? count(1) : 0; }

SEC("fentry/__x64_sys_getppid")
int BPF_PROG(fentry_getppid) { return count(2); }

SEC("tracepoint/syscalls/sys_enter_getppid")
int tp_getppid(void *ctx) { return count(2); }

SEC("tracepoint/syscalls/sys_enter_no_such_call")
int missing(void *ctx) { return count(3); }
"""
)


def test_one_variant_per_job_and_missing_attach_points(clean_kernel: tuple[int, int, int]) -> None:
    with Workload() as w, bpfnb.load(VARIANTS, "variants", globals={"target": w.pid}) as p:
        assert sorted(p.attach_points) == [
            "tp_btf/sys_enter",
            "tracepoint/syscalls/sys_enter_getppid",  # tracepoints before function hooks
        ]
        notes = "\n".join(p.notes)
        assert "loaded tp_btf (on_enter_btf), left out raw_tp (on_enter_raw)" in notes
        assert "loaded tracepoint (tp_getppid), left out fentry (fentry_getppid)" in notes
        assert "would count each event twice" in notes
        assert (
            "left out missing" in notes and "no tracepoint syscalls:sys_enter_no_such_call" in notes
        )
        w.run("getpid", 25)
        w.run("getppid", 7)
        assert _counts(p) == {1: 25, 2: 7}  # never twice


def test_kprobes_left_out_when_the_rest_can_run(
    clean_kernel: tuple[int, int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(system, "kprobes_available", lambda: False)
    source = (
        COUNTS
        + 'SEC("kprobe/do_sys_openat2")\nint probe(void *ctx) { return count(4); }\n'
        + 'SEC("tracepoint/syscalls/sys_enter_getpid")\nint tp(void *ctx) { return count(1); }\n'
    )
    with Workload() as w, bpfnb.load(source, "nokp", globals={"target": w.pid}) as p:
        assert p.attach_points == ["tracepoint/syscalls/sys_enter_getpid"]
        assert any("left out probe" in n and "CONFIG_KPROBES" in n for n in p.notes)
        w.run("getpid", 5)
        assert _counts(p) == {1: 5}
    every = 'SEC("fentry/do_nanosleep")\nint a(void *ctx) { return 0; }\n'
    every += 'SEC("kprobe/do_nanosleep")\nint b(void *ctx) { return 0; }\n'
    refused = configure.kind_problem("fentry")
    if refused is not None:  # this machine: fentry refused (lockdown), no kprobes
        with pytest.raises(KernelFeatureError, match="no program of the object can run") as info:
            bpfnb.load(every, "nothing")
        assert "fentry (a: the kernel refuses fentry/fexit programs" in str(info.value)
        assert "kprobe (b: this kernel has no kprobes" in str(info.value)


SIZES = """
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __type(key, u32);
    __type(value, u64);
} unsized SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
} ring SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_getpid")
int touch(void *ctx)
{
    u32 k = 0;
    u64 v = 1;
    bpf_map_update_elem(&unsized, &k, &v, BPF_ANY);
    bpf_ringbuf_output(&ring, &v, sizeof(v), 0);
    return 0;
}
"""


def test_map_sizes_defaults_and_choices(clean_kernel: tuple[int, int, int]) -> None:
    with bpfnb.load(SIZES, "sizes", attach=False) as p:
        assert p.unsized.max_entries == configure.DEFAULT_MAX_ENTRIES
        assert any("map unsized (hash) is declared without max_entries" in n for n in p.notes)
        assert any("map ring (ringbuf)" in n and "262144 bytes" in n for n in p.notes)
    with bpfnb.load(SIZES, "sizes", attach=False, max_entries={"unsized": 7, "ring": 8192}) as p:
        assert p.unsized.max_entries == 7 and p.ring.spec.max_entries == 8192
        assert not any("max_entries" in n for n in p.notes)
    with pytest.raises(CommandError, match="power of 2 and a multiple of 4096, not 5000"):
        bpfnb.load(SIZES, "sizes", attach=False, max_entries={"ring": 5000})
    with pytest.raises(CommandError, match=r"no map 'nope'.*unsized, ring"):
        bpfnb.load(SIZES, "sizes", attach=False, max_entries={"nope": 1})


REFUSED = """
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __type(key, u32);
    __type(value, u64);
    __uint(max_entries, 4);
    __uint(map_flags, BPF_F_NO_PREALLOC);
} slots SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_getpid")
int touch(void *ctx) { u32 k = 0; return bpf_map_lookup_elem(&slots, &k) != 0; }
"""


def test_a_map_the_kernel_refuses_is_named(clean_kernel: tuple[int, int, int]) -> None:
    with pytest.raises(LoadError) as info:
        bpfnb.load(REFUSED, "refused", attach=False).close()
    text = str(info.value)
    assert "the kernel refused to create map 'slots' (array, max_entries 4)" in text
    assert "BPF_F_NO_PREALLOC only applies to hashes" in text
    assert "Retrying without BTF" not in text


KFUNC = """
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __type(key, u32);
    __type(value, struct { char comm[16]; });
    __uint(max_entries, 16);
} comms SEC(".maps");

const volatile u32 target = 0;

SEC("tracepoint/syscalls/sys_enter_getpid")
int who(void *ctx)
{
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    if (pid != target || !bpf_ksym_exists(bpf_task_from_pid))
        return 0;
    struct task_struct *task = bpf_task_from_pid(pid);
    if (!task)
        return 0;
    struct { char comm[16]; } value = {};
    bpf_probe_read_kernel_str(value.comm, sizeof(value.comm), task->comm);
    bpf_task_release(task);
    bpf_map_update_elem(&comms, &pid, &value, BPF_ANY);
    return 0;
}
"""


def test_kfuncs_of_this_kernel_are_declared(clean_kernel: tuple[int, int, int]) -> None:
    with Workload() as w, bpfnb.load(KFUNC, "kfunc", globals={"target": w.pid}) as p:
        w.run("getpid", 1)
        comm = Path(f"/proc/{w.pid}/comm").read_text().strip()
        assert p.comms[w.pid] == {"comm": comm}


def test_undeclared_function_is_a_compile_error_with_a_hint() -> None:
    source = (
        'SEC("tracepoint/syscalls/sys_enter_getpid")\nint f(void *ctx)\n{\n'
        "    return bpf_htonx(1);\n}\n"
    )
    with pytest.raises(CompileError) as info:
        bpfnb.load(source, "undeclared", line_offset=1)
    text = str(info.value)
    assert "line 5" in text and "bpf_htonx" in text and "hint: nothing declares 'bpf_htonx'" in text
    ok = source.replace("bpf_htonx", "bpf_htonl")  # bpf_endian.h is in the prelude
    with bpfnb.load(ok, "endian", attach=False) as p:
        assert p.programs[0].loaded


def test_bcc_compile_error_quotes_the_users_line() -> None:
    source = (
        "BPF_HASH(counts, u32, u64);\n"
        "TRACEPOINT_PROBE(syscalls, sys_enter_getpid)\n"
        "{\n"
        "    u32 key = 1;\n"
        "    counts.increment(key)\n"
        "    return 0;\n"
        "}\n"
    )
    with pytest.raises(CompileError) as info:
        bpfnb.load(source, "bccerr", bcc=True, line_offset=1)
    assert str(info.value).splitlines() == [
        "clang: 1 error in cell 'bccerr'",
        "  line 6, col 26: expected ';' after expression",
        "     6 |     counts.increment(key)",
        "       |                          ^",
    ]


def test_views_of_new_kinds_refresh(clean_kernel: tuple[int, int, int], tmp_path: object) -> None:
    source = """
struct hist { __u32 slots[8]; char comm[16]; };
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __type(key, u32);
    __type(value, struct hist);
    __uint(max_entries, 16);
} hists SEC(".maps");
struct {
    __uint(type, BPF_MAP_TYPE_CGROUP_ARRAY);
    __type(key, u32);
    __type(value, u32);
    __uint(max_entries, 2);
} cgroups SEC(".maps");
const volatile u32 target = 0;
SEC("tracepoint/syscalls/sys_enter_getpid")
int fill(void *ctx)
{
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    if (pid != target)
        return 0;
    static struct hist zero;
    bpf_map_update_elem(&hists, &pid, &zero, BPF_NOEXIST);
    struct hist *h = bpf_map_lookup_elem(&hists, &pid);
    if (h) {
        __sync_fetch_and_add(&h->slots[3], 1);
        bpf_get_current_comm(h->comm, sizeof(h->comm));
    }
    return 0;
}
"""
    with Workload() as w, bpfnb.load(source, "kinds", globals={"target": w.pid}) as p:
        w.run("getpid", 6)
        assert p.hists.kind == "slots_histogram" and p.cgroups.kind == "cgroup_array"
        frame = p.hists.df()
        assert frame[["key", "bucket", "count"]].values.tolist() == [[w.pid, "[8, 16)", 6]]
        assert p.hists.df(raw=True)["slots[3]"].iloc[0] == 6  # a short array: one column each
        for view in (view_for(p.hists), view_for(p.cgroups)):
            view.refresh()
            assert view.error is None, view.error
        assert view_for(p.hists).kind == "histogram"
    assert os.getpid() > 0
