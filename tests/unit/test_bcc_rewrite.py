"""Pure tests of the BCC dialect rewrite: maps, methods, probes, lines kept."""

from __future__ import annotations

import pytest

from bpfnb.build import bcc, legacy_maps, tpformat
from bpfnb.errors import CompileError

from conftest import DATA


def fake_struct(category: str, event: str, name: str) -> str:
    return f"struct {name} {{ int field; }};"


def rewrite(source: str, **kw: object) -> bcc.Rewritten:
    return bcc.rewrite(source, tracepoint_struct=fake_struct, **kw)  # type: ignore[arg-type]


def test_maps_become_btf_maps() -> None:
    source = "\n".join(
        [
            "BPF_HASH(counts, u32, u64, 512);",
            'BPF_TABLE("lru_hash", struct key_t, u64, lru, 64);',
            'BPF_F_TABLE("hash", u32, u64, nopre, 16, BPF_F_NO_PREALLOC);',
            "BPF_HISTOGRAM(dist);",
            "BPF_HISTOGRAM(bykey, struct key_t, 128);",
            "BPF_PERF_OUTPUT(events);",
            "BPF_RINGBUF_OUTPUT(ring, 8);",
            "BPF_STACK_TRACE(stacks, 1024);",
            "BPF_QUEUE(queue, u64, 32);",
            "BPF_LPM_TRIE(trie, struct lpm_key, u8, 128);",
            "BPF_PROG_ARRAY(jumps, 4);",
            "BPF_CGROUP_ARRAY(cgroups, 1);",
            "BPF_ARRAY(inner, u64, 4);",
            'BPF_ARRAY_OF_MAPS(outer, "inner", 2);',
        ]
    )
    out = rewrite(source)
    lines = out.text.splitlines()
    assert len(lines) == len(source.splitlines())
    assert lines[0] == (
        "struct { __uint(type, BPF_MAP_TYPE_HASH); __type(key, u32); __type(value, u64); "
        '__uint(max_entries, 512); } counts SEC(".maps");'
    )
    assert "BPF_MAP_TYPE_LRU_HASH" in lines[1] and "__type(key, struct key_t)" in lines[1]
    assert "__uint(map_flags, BPF_F_NO_PREALLOC)" in lines[2]
    assert "__type(key, bpfnb_log2_bucket_t)" in lines[3] and "max_entries, 65" in lines[3]
    assert "BPF_MAP_TYPE_HASH" in lines[4] and "max_entries, 128" in lines[4]
    assert "PERF_EVENT_ARRAY" in lines[5] and "max_entries" not in lines[5]
    assert "__uint(max_entries, (8) * 4096)" in lines[6]
    assert "STACK_TRACE" in lines[7] and "PERF_MAX_STACK_DEPTH" in lines[7]
    assert "BPF_MAP_TYPE_QUEUE" in lines[8] and "__type(key" not in lines[8]
    assert "LPM_TRIE" in lines[9] and "BPF_F_NO_PREALLOC" in lines[9]
    assert "PROG_ARRAY" in lines[10] and "CGROUP_ARRAY" in lines[11]
    assert "__array(values, typeof(inner))" in lines[13]
    assert list(out.maps) == [
        "counts", "lru", "nopre", "dist", "bykey", "events", "ring", "stacks", "queue",
        "trie", "jumps", "cgroups", "inner", "outer",
    ]  # fmt: skip


def test_methods_become_helper_calls() -> None:
    source = """BPF_HASH(counts, u32, u64);
BPF_PERF_OUTPUT(events);
BPF_RINGBUF_OUTPUT(ring, 4);
BPF_STACK_TRACE(stacks, 64);
int f(void *ctx) {
    u32 k = 1; u64 zero = 0, *v = counts.lookup(&k);
    v = counts.lookup_or_try_init(&k, &zero);
    counts.update(&k, &zero); counts.insert(&k, &zero); counts.delete(&k);
    counts.increment(k); counts.atomic_increment(k, 5);
    events.perf_submit(ctx, &zero, sizeof(zero));
    ring.ringbuf_output(&zero, sizeof(zero), 0);
    int id = stacks.get_stackid(ctx, 0);
    bpf_trace_printk("hello %d\\n", id);
    char *s = "counts.lookup(&k)"; // counts.delete(&k)
    return 0;
}
"""
    text = rewrite(source).text
    assert text.count("\n") == source.count("\n")
    body = text.splitlines()
    assert "bpf_map_lookup_elem(&counts, BPFNB_BCC_PTR(&k))" in body[5]
    assert (
        "bpfnb_bcc_lookup_or_try_init(&counts, BPFNB_BCC_PTR(&k), BPFNB_BCC_PTR(&zero))" in body[6]
    )
    assert (
        "bpf_map_update_elem(&counts, BPFNB_BCC_PTR(&k), BPFNB_BCC_PTR(&zero), BPF_ANY)" in body[7]
    )
    assert "BPF_NOEXIST" in body[7] and "bpf_map_delete_elem(&counts, BPFNB_BCC_PTR(&k))" in body[7]
    assert "bpfnb_bcc_increment(&counts, k, 1)" in body[8]
    assert "bpfnb_bcc_increment(&counts, k, 5)" in body[8]
    assert "bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, &zero, sizeof(zero))" in body[9]
    assert "bpf_ringbuf_output(&ring, &zero, sizeof(zero), 0)" in body[10]
    assert "bpf_get_stackid(ctx, &stacks, 0)" in body[11]
    assert body[12].strip().startswith("bpf_printk(")
    assert '"counts.lookup(&k)"' in body[13] and "// counts.delete(&k)" in body[13]


def test_probes_and_includes() -> None:
    source = """#include <uapi/linux/ptrace.h>
#include <net/sock.h>
#include "mine.h"
TRACEPOINT_PROBE(sched, sched_process_exit) { return args->field; }
RAW_TRACEPOINT_PROBE(sched_switch) { return 0; }
KFUNC_PROBE(do_unlinkat, int dfd, struct filename *name) { return 0; }
KRETFUNC_PROBE(do_unlinkat, int dfd, struct filename *name, long ret) { return 0; }
int kprobe__do_sys_openat2(struct pt_regs *ctx, int dfd, const char *name) { return 0; }
int kretprobe__do_sys_openat2(struct pt_regs *ctx) { return PT_REGS_RC(ctx); }
"""
    out = rewrite(source)
    lines = out.text.splitlines()
    assert lines[0] == "" and lines[1] == "" and lines[2] == '#include "mine.h"'
    assert lines[3].startswith(
        "struct tracepoint__sched__sched_process_exit { int field; }; "
        'SEC("tracepoint/sched/sched_process_exit") int tracepoint__sched__sched_process_exit('
        "struct tracepoint__sched__sched_process_exit *args)"
    )
    assert lines[4].startswith(
        'SEC("raw_tracepoint/sched_switch") int raw_tracepoint__sched_switch('
        "struct bpf_raw_tracepoint_args *ctx)"
    )
    assert lines[5].startswith(
        'SEC("fentry/do_unlinkat") int BPF_PROG(kfunc__do_unlinkat, int dfd, struct filename *name)'
    )
    assert lines[6].startswith('SEC("fexit/do_unlinkat") int BPF_PROG(kretfunc__do_unlinkat,')
    assert lines[7].startswith(
        'SEC("kprobe/do_sys_openat2") int BPF_KPROBE(kprobe__do_sys_openat2, int dfd, '
        "const char *name)"
    )
    assert lines[8].startswith(
        'SEC("kretprobe/do_sys_openat2") int kretprobe__do_sys_openat2(struct pt_regs *ctx)'
    )
    assert "PT_REGS_RC(ctx)" in lines[8]
    assert any("uapi/linux/ptrace.h" in n for n in out.notes)


def test_kprobe_functions_as_fentry_where_kprobes_are_missing() -> None:
    source = (
        "int kprobe__do_sys_openat2(struct pt_regs *ctx, int dfd) { return dfd; }\n"
        "int kretprobe__do_sys_openat2(struct pt_regs *ctx) { return PT_REGS_RC(ctx) < 0; }\n"
    )
    out = rewrite(source, probe_style="fentry")
    first, second = out.text.splitlines()
    assert first.startswith(
        'SEC("fentry/do_sys_openat2") int BPF_PROG(kprobe__do_sys_openat2, int dfd)'
    )
    assert second == (
        'SEC("fexit/do_sys_openat2") int kretprobe__do_sys_openat2(unsigned long long *ctx) '
        "{ return bpfnb_fexit_ret(ctx) < 0; }"
    )
    assert any("no kprobes" in n for n in out.notes)


def test_kernel_pointer_reads() -> None:
    source = """struct data_t { u32 pid; };
int f(void *ctx) {
    struct task_struct *task = (typeof(task))bpf_get_current_task();
    struct data_t d = {}, *dp = &d;
    d.pid = task->real_parent->tgid;
    u64 t = task->start_time;
    bpf_probe_read_kernel(&d, sizeof(d), &task->comm);
    dp->pid = 1;
    return sizeof(task->comm);
}
"""
    lines = rewrite(source).text.splitlines()
    assert lines[4].strip() == "d.pid = BPF_CORE_READ(task, real_parent, tgid);"
    assert lines[5].strip() == "u64 t = BPF_CORE_READ(task, start_time);"
    assert "&task->comm" in lines[6] and "dp->pid = 1" in lines[7]
    assert "sizeof(task->comm)" in lines[8]


def test_detection() -> None:
    assert bcc.is_bcc("TRACEPOINT_PROBE(a, b) { return 0; }")
    assert bcc.is_bcc("BPF_HASH(c, u32);\nint f(void *x) { u32 k = 0; c.increment(k); return 0; }")
    assert bcc.is_bcc("int kprobe__vfs_read(struct pt_regs *ctx) { return 0; }")
    libbpf_style = (
        'BPF_HASH(c, u32);\nSEC("tp/x/y") int f(void *x) { u32 k = 0;'
        " bpf_map_lookup_elem(&c, &k); return 0; }"
    )
    assert not bcc.is_bcc(libbpf_style)
    assert not bcc.is_bcc('SEC("kprobe/x") int kprobe__x(void *ctx) { return 0; }')
    assert not bcc.is_bcc("/* TRACEPOINT_PROBE(a, b) */ int x;")


def test_errors_name_the_line() -> None:
    with pytest.raises(CompileError, match=r"line 2: c\.update\(\) takes 2 argument"):
        rewrite("BPF_HASH(c);\nint f(void) { c.update(1); return 0; }")
    with pytest.raises(CompileError, match="unknown table type"):
        rewrite('BPF_TABLE("nope", u32, u64, t, 1);')


def test_the_test_programs_rewrite_line_for_line() -> None:
    for path in sorted((DATA / "bcc").glob("*.c")):
        source = path.read_text()
        if path.name == "uprobe_target.c":
            continue
        assert bcc.is_bcc(source) or path.name == "seed_maps.c", path.name
        out = rewrite(source)
        assert out.text.count("\n") == source.count("\n"), path.name


def test_legacy_maps() -> None:
    source = """struct bpf_map_def SEC("maps") typed = {
    .type = BPF_MAP_TYPE_HASH,
    .key_size = sizeof(u32),
    .value_size = sizeof(u64),
    .max_entries = 64,
};
BPF_ANNOTATE_KV_PAIR(typed, u32, u64);
struct bpf_map_def positional __attribute__((section("maps"), used)) =
    { BPF_MAP_TYPE_ARRAY, sizeof(int), sizeof(int), 4, 0 };
struct bpf_map_def after = { .type = BPF_MAP_TYPE_ARRAY, .key_size = 4, .value_size = 8,
    .max_entries = 1 } SEC("maps");
struct bpf_map_def { unsigned int type; };
"""
    out = legacy_maps.rewrite(source)
    assert out.maps == ["typed", "positional", "after"]
    lines = out.text.splitlines()
    assert len(lines) == len(source.splitlines())
    assert lines[0] == (
        "struct { __uint(type, BPF_MAP_TYPE_HASH); __type(key, u32); __type(value, u64); "
        '__uint(max_entries, 64); } typed SEC(".maps")'
    )
    assert lines[6] == ""  # the annotation, used up
    assert lines[7] == (
        "struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(key_size, sizeof(int)); "
        '__uint(value_size, sizeof(int)); __uint(max_entries, 4); } positional SEC(".maps")'
    )
    assert '} after SEC(".maps")' in lines[9]
    assert lines[11] == "struct bpf_map_def { unsigned int type; };"
    assert "raw bytes" in out.notes[1] and "raw bytes" not in out.notes[0]
    with pytest.raises(CompileError, match=r"line 1: legacy map 'x' has no \.type"):
        legacy_maps.rewrite('struct bpf_map_def SEC("maps") x = { .key_size = 4 };')
    assert legacy_maps.rewrite("int x;").text == "int x;"


FORMAT = """name: demo
ID: 1
format:
	field:unsigned short common_type;	offset:0;	size:2;	signed:0;
	field:unsigned char common_flags;	offset:2;	size:1;	signed:0;
	field:unsigned char common_preempt_count;	offset:3;	size:1;	signed:0;
	field:int common_pid;	offset:4;	size:4;	signed:1;

	field:int __syscall_nr;	offset:8;	size:4;	signed:1;
	field:int dfd;	offset:16;	size:8;	signed:0;
	field:const char * filename;	offset:24;	size:8;	signed:0;
	field:char comm[16];	offset:32;	size:16;	signed:0;
	field:__data_loc char[] name;	offset:48;	size:4;	signed:0;
	field:u8 odd;	offset:53;	size:1;	signed:0;
	field:__u16 ports[2];	offset:56;	size:4;	signed:0;
"""


def test_tracepoint_struct_from_format() -> None:
    fields = tpformat.parse_format(FORMAT)
    assert [f.offset for f in fields] == [0, 2, 3, 4, 8, 16, 24, 32, 48, 53, 56]
    text = tpformat.struct_text("tp", fields)
    assert text == (
        "struct tp { __u16 common_type; __u8 common_flags; __u8 common_preempt_count; "
        "__s32 common_pid; __s32 __syscall_nr; __u64 dfd; const char * filename; "
        "char comm[16]; __u32 data_loc_name; char __pad9[1]; __u8 odd; char __pad10[2]; "
        "__u16 ports[2]; };"
    )
    with pytest.raises(CompileError, match="no tracepoint nosuch:event"):
        tpformat.tracepoint_struct("nosuch", "event", "x")
