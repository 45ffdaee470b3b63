"""Kernel tests of bpfnb.maps: typed map views with exact answers.

One BPF program (compiled once per module) counts the syscalls of a ``Workload``
helper process whose pid it reads from a settings array written from Python; the tests
check the exact counts through every map class, the per-CPU sums, signed values,
struct keys with ``char comm[16]`` and an enum, and that batch and fallback reads give
identical frames. Maps created with ``syscall.map_create`` test LRU eviction and the
errors without any program.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import bpfnb
from bpfnb.errors import MapFullError, MapTypeError
from bpfnb.kernel import bpf as syscall
from bpfnb.kernel import cpus
from bpfnb.kernel.fd import OwnedFd
from bpfnb.kernel.maps import (
    ArrayIndexError,
    ArrayMap,
    HashMap,
    LruHashMap,
    LruPerCpuHashMap,
    Map,
    PerCpuArrayMap,
    PerCpuHashMap,
)
from bpfnb.kernel.views import map_for
from bpfnb.object import maptypes
from bpfnb.object.spec import MapSpec

from conftest import require_kernel, settled_object_counts, wait_for_counts
from workload import SYS_getpid, SYS_getppid, Workload

N_GETPID = 137
N_GETPPID = 41

SOURCE = r"""
struct cfg { u32 pid; s32 token; };
enum kind { KIND_OTHER = 0, KIND_GETPID = 1, KIND_GETPPID = 2 };
struct task_key { u32 pid; char comm[16]; enum kind kind; };

BPF_ARRAY(settings, struct cfg, 1);
BPF_HASH(counts, u32, u64, 1024);
BPF_PERCPU_ARRAY(pcpu, u64, 1);
BPF_PERCPU_HASH(pcpu_hash, u32, u64, 64);
BPF_LRU_PERCPU_HASH(lru_pcpu, u32, u64, 64);
BPF_ARRAY(echo, s64, 2);
BPF_HASH(by_task, struct task_key, u64, 64);
BPF_LRU_HASH(recent, u64, u32, 8);
BPF_ARRAY(lru_failures, u64, 1);

SEC("tracepoint/raw_syscalls/sys_enter")
int on_enter(struct trace_event_raw_sys_enter *ctx)
{
    u32 zero = 0, one_idx = 1;
    struct cfg *cfg = bpf_map_lookup_elem(&settings, &zero);
    if (!cfg || (bpf_get_current_pid_tgid() >> 32) != cfg->pid)
        return 0;
    u32 nr = ctx->id;
    if (nr != 39 && nr != 110)   /* getpid, getppid */
        return 0;
    u64 one = 1, *n = bpf_map_lookup_elem(&counts, &nr);
    if (n) __sync_fetch_and_add(n, 1);
    else bpf_map_update_elem(&counts, &nr, &one, BPF_NOEXIST);

    n = bpf_map_lookup_elem(&pcpu_hash, &nr);
    if (n) *n += 1;
    else bpf_map_update_elem(&pcpu_hash, &nr, &one, BPF_NOEXIST);
    n = bpf_map_lookup_elem(&lru_pcpu, &nr);
    if (n) *n += 1;
    else bpf_map_update_elem(&lru_pcpu, &nr, &one, BPF_NOEXIST);

    struct task_key tk = {};
    tk.pid = cfg->pid;
    bpf_get_current_comm(tk.comm, sizeof(tk.comm));
    tk.kind = nr == 39 ? KIND_GETPID : KIND_GETPPID;
    n = bpf_map_lookup_elem(&by_task, &tk);
    if (n) __sync_fetch_and_add(n, 1);
    else bpf_map_update_elem(&by_task, &tk, &one, BPF_NOEXIST);

    s64 *e = bpf_map_lookup_elem(&echo, &zero);
    if (e) *e = cfg->token;
    if (nr == 39) {
        u64 *c = bpf_map_lookup_elem(&pcpu, &zero);
        if (c) *c += 1;
        u64 now = bpf_ktime_get_ns();
        if (bpf_map_update_elem(&recent, &now, &nr, BPF_ANY)) {
            u64 *f = bpf_map_lookup_elem(&lru_failures, &zero);
            if (f) __sync_fetch_and_add(f, 1);
        }
    } else {
        e = bpf_map_lookup_elem(&echo, &one_idx);
        if (e) __sync_fetch_and_sub(e, 1);
    }
    return 0;
}
"""


@pytest.fixture(scope="module")
def traced() -> Iterator[tuple[bpfnb.Program, Workload]]:
    """The program, attached, after the workload made its exact syscalls."""
    require_kernel()
    before = settled_object_counts()
    prog = bpfnb.load(SOURCE, name="maps_test")
    try:
        with Workload() as work:
            prog.settings[0] = {"pid": work.pid, "token": -42}
            work.run("getpid", N_GETPID)
            work.run("getppid", N_GETPPID)
            yield prog, work
    finally:
        prog.close()
        # The kernel frees objects asynchronously: let later leak checks start clean.
        assert wait_for_counts(before) == before


def test_map_classes(traced: tuple[bpfnb.Program, Workload]) -> None:
    prog, _ = traced
    expected = {
        "settings": ArrayMap,
        "counts": HashMap,
        "pcpu": PerCpuArrayMap,
        "pcpu_hash": PerCpuHashMap,
        "lru_pcpu": LruPerCpuHashMap,
        "recent": LruHashMap,
    }
    for name, cls in expected.items():
        assert type(prog.maps[name]) is cls, name


def test_hash_counts_syscalls_exactly(traced: tuple[bpfnb.Program, Workload]) -> None:
    prog, _ = traced
    counts = prog.counts
    assert counts[SYS_getpid] == N_GETPID
    assert counts[SYS_getppid] == N_GETPPID
    assert len(counts) == 2
    assert sorted(counts) == [SYS_getpid, SYS_getppid]
    assert dict(counts.items()) == {SYS_getpid: N_GETPID, SYS_getppid: N_GETPPID}
    assert sorted(counts.values()) == sorted([N_GETPID, N_GETPPID])
    df = counts.df().sort_values("key").reset_index(drop=True)
    assert df.columns.tolist() == ["key", "value"]
    assert df["key"].tolist() == [SYS_getpid, SYS_getppid]
    assert df["value"].tolist() == [N_GETPID, N_GETPPID]
    with pytest.raises(KeyError):
        counts[12345]
    assert counts.get(12345, "none") == "none"
    assert 12345 not in counts and SYS_getpid in counts


def test_per_cpu_array_sums_to_n(traced: tuple[bpfnb.Program, Workload]) -> None:
    prog, _ = traced
    pcpu = prog.pcpu
    ncpu = cpus.possible_cpus()
    per_cpu = pcpu[0]
    assert isinstance(per_cpu, list) and len(per_cpu) == ncpu
    assert sum(per_cpu) == N_GETPID
    assert pcpu.sum(0) == N_GETPID
    assert len(pcpu) == 1
    df = pcpu.df()
    assert df.columns.tolist() == ["key", "value"]
    assert df["value"].tolist() == [N_GETPID]
    wide = pcpu.df(per_cpu=True)
    cpu_cols = [f"value[cpu{i}]" for i in range(ncpu)]
    assert wide.columns.tolist() == ["key", *cpu_cols]
    assert int(wide[cpu_cols].to_numpy().sum()) == N_GETPID
    assert wide[cpu_cols].iloc[0].tolist() == per_cpu


@pytest.mark.parametrize("name", ["pcpu_hash", "lru_pcpu"])
def test_per_cpu_hashes(traced: tuple[bpfnb.Program, Workload], name: str) -> None:
    prog, _ = traced
    m = prog.maps[name]
    assert isinstance(m, PerCpuHashMap | LruPerCpuHashMap)
    assert m.sum(SYS_getpid) == N_GETPID and m.sum(SYS_getppid) == N_GETPPID
    assert sum(m[SYS_getppid]) == N_GETPPID
    df = m.df().sort_values("key")
    assert df["value"].tolist() == [N_GETPID, N_GETPPID]
    wide = m.df(per_cpu=True).sort_values("key")
    cols = [c for c in wide.columns if c.startswith("value[cpu")]
    assert wide[cols].sum(axis=1).tolist() == [N_GETPID, N_GETPPID]


def test_per_cpu_writes_from_python(traced: tuple[bpfnb.Program, Workload]) -> None:
    prog, _ = traced
    m = prog.pcpu_hash
    ncpu = cpus.possible_cpus()
    m[7] = [10 * (i + 1) for i in range(ncpu)]  # one value per CPU
    assert m[7] == [10 * (i + 1) for i in range(ncpu)]
    assert m.sum(7) == 10 * ncpu * (ncpu + 1) // 2
    m[8] = 3  # the same value on every CPU
    assert m[8] == [3] * ncpu
    del m[7], m[8]
    assert 7 not in m and len(m) == 2


def test_values_written_from_python_reach_the_program(
    traced: tuple[bpfnb.Program, Workload],
) -> None:
    prog, work = traced
    assert prog.settings[0] == {"pid": work.pid, "token": -42}
    assert prog.echo[0] == -42  # copied by the program from settings
    prog.settings[0] = {"pid": work.pid, "token": 7}
    work.run("getppid", 1)
    assert prog.echo[0] == 7
    assert prog.echo[1] == -(N_GETPPID + 1)  # signed values read back negative
    assert prog.echo.df()["value"].tolist() == [7, -(N_GETPPID + 1)]
    assert prog.echo.df()["value"].dtype == np.int64
    prog.settings[0] = (work.pid, -42)  # a tuple in field order works too
    assert prog.settings[0]["token"] == -42
    # restore the counts the other tests expect
    prog.counts[SYS_getppid] = N_GETPPID
    prog.echo[1] = -N_GETPPID


def test_struct_key_with_comm_and_enum(traced: tuple[bpfnb.Program, Workload]) -> None:
    prog, work = traced
    comm = Path(f"/proc/{work.pid}/comm").read_text().strip()
    df = prog.by_task.df()
    assert df.columns.tolist() == ["pid", "comm", "kind", "value"]
    df = df.sort_values("kind").reset_index(drop=True)
    assert df["pid"].tolist() == [work.pid, work.pid]
    assert df["comm"].tolist() == [comm, comm]
    assert isinstance(df["kind"].dtype, pd.CategoricalDtype)
    assert df["kind"].astype(str).tolist() == ["KIND_GETPID", "KIND_GETPPID"]
    by_kind = dict(zip(df["kind"].astype(str), df["value"], strict=True))
    assert by_kind["KIND_GETPID"] == N_GETPID
    # Keys come back as named tuples usable as keys again; dicts work too.
    keys = list(prog.by_task)
    assert {k.kind for k in keys} == {"KIND_GETPID", "KIND_GETPPID"}
    key = next(k for k in keys if k.kind == "KIND_GETPID")
    assert prog.by_task[key] == N_GETPID
    assert prog.by_task[{"pid": work.pid, "comm": comm, "kind": "KIND_GETPID"}] == N_GETPID


def test_wrong_shapes_name_the_c_type(traced: tuple[bpfnb.Program, Workload]) -> None:
    prog, _ = traced
    with pytest.raises(MapTypeError, match="struct task_key"):
        prog.by_task[5]
    with pytest.raises(MapTypeError, match="struct task_key"):
        prog.by_task[{"pid": 1}]
    with pytest.raises(MapTypeError, match="u32"):
        prog.counts["getpid"]
    with pytest.raises(MapTypeError, match="u64"):
        prog.counts[1] = "many"
    with pytest.raises(MapTypeError, match="struct cfg"):
        prog.settings[0] = {"pid": 1, "token": 2, "extra": 3}
    with pytest.raises(MapTypeError, match="u32"):
        prog.counts[-1]
    with pytest.raises(ArrayIndexError, match=r"0\.\.0"):
        prog.settings[1] = {"pid": 1, "token": 2}


@pytest.mark.parametrize("name", ["counts", "pcpu_hash", "by_task", "settings", "pcpu", "recent"])
def test_batch_and_fallback_frames_are_identical(
    traced: tuple[bpfnb.Program, Workload], name: str
) -> None:
    prog, _ = traced
    m = prog.maps[name]
    key_cols = [c for c in m.df().columns if c in ("key", "pid", "comm", "kind")]
    batched = m.df(batch=True).sort_values(key_cols).reset_index(drop=True)
    walked = m.df(batch=False).sort_values(key_cols).reset_index(drop=True)
    assert len(batched) > 0
    pd.testing.assert_frame_equal(batched, walked)


def test_lru_in_program_never_fails(traced: tuple[bpfnb.Program, Workload]) -> None:
    prog, _ = traced
    assert prog.lru_failures[0] == 0
    assert 0 < len(prog.recent) <= 8
    assert set(prog.recent.df()["value"]) == {SYS_getpid}


# -- maps created from Python (no program) ----------------------------------------------


def _spec(name: str, map_type: int, key_size: int, value_size: int, max_entries: int) -> MapSpec:
    return MapSpec(name, map_type, None, None, key_size, value_size, max_entries, 0)


def test_lru_hash_at_capacity_evicts(clean_kernel: tuple[int, int, int]) -> None:
    cap = 32
    fd = OwnedFd(syscall.map_create(maptypes.LRU_HASH, 4, 8, cap, name="lru"), "lru")
    hfd = OwnedFd(syscall.map_create(maptypes.HASH, 4, 8, cap, name="full"), "full")
    try:
        lru = map_for(fd, _spec("lru", maptypes.LRU_HASH, 4, 8, cap))
        full = map_for(hfd, _spec("full", maptypes.HASH, 4, 8, cap))
        assert isinstance(lru, LruHashMap) and isinstance(full, HashMap)
        for i in range(cap):
            full[i] = i
        with pytest.raises(MapFullError, match="E2BIG"):
            full[cap] = cap
        for i in range(4 * cap):
            lru[i] = i  # never fails: old keys are evicted
        assert 0 < len(lru) <= cap
        assert lru[4 * cap - 1] == (4 * cap - 1).to_bytes(8, "little")
        full.clear()
        assert len(full) == 0
    finally:
        fd.close()
        hfd.close()


def test_array_del_and_clear_zero(clean_kernel: tuple[int, int, int]) -> None:
    fd = OwnedFd(syscall.map_create(maptypes.ARRAY, 4, 8, 4, name="arr"), "arr")
    try:
        arr = map_for(fd, _spec("arr", maptypes.ARRAY, 4, 8, 4))
        assert isinstance(arr, ArrayMap) and len(arr) == 4
        arr[1] = 5
        assert arr[1] == (5).to_bytes(8, "little")
        del arr[1]
        assert arr[1] == bytes(8)
        arr[2] = 9
        arr.clear()
        assert list(arr.values()) == [bytes(8)] * 4
    finally:
        fd.close()


def test_unknown_type_is_read_only_map(clean_kernel: tuple[int, int, int]) -> None:
    devmap_hash = maptypes.MAP_TYPE_IDS["devmap_hash"]  # a type bpfnb has no view for
    fd = OwnedFd(syscall.map_create(devmap_hash, 4, 4, 8, name="devs"), "devs")
    try:
        m = map_for(fd, _spec("devs", devmap_hash, 4, 4, 8))
        assert type(m) is Map
        assert len(m) == 0 and len(m.df()) == 0 and list(m) == []
    finally:
        fd.close()


SHORTHANDS = r"""
struct pair { u64 a; s64 b; };
BPF_HASH(h1);
BPF_HASH(h2, u32);
BPF_HASH(h3, u32, struct pair);
BPF_HASH(h4, u32, struct pair, 100);
BPF_LRU_HASH(lru, u16, u8, 4);
BPF_PERCPU_HASH(ph, u32, u64, 5);
BPF_LRU_PERCPU_HASH(lph, u32, u32, 6);
BPF_ARRAY(a1);
BPF_ARRAY(a2, s32);
BPF_ARRAY(a3, s32, 7);
BPF_PERCPU_ARRAY(pa, u64, 3);

SEC("tracepoint/syscalls/sys_enter_getpid")
int touch(void *ctx)
{
    u32 zero = 0;
    s32 *v = bpf_map_lookup_elem(&a3, &zero);
    if (v) *v += 1;
    return 0;
}
"""


def test_maps_h_shorthands(clean_kernel: tuple[int, int, int]) -> None:
    expected = {  # name: (type, key size, value size, max entries, class)
        "h1": (1, 8, 8, 10240, HashMap),
        "h2": (1, 4, 8, 10240, HashMap),
        "h3": (1, 4, 16, 10240, HashMap),
        "h4": (1, 4, 16, 100, HashMap),
        "lru": (9, 2, 1, 4, LruHashMap),
        "ph": (5, 4, 8, 5, PerCpuHashMap),
        "lph": (10, 4, 4, 6, LruPerCpuHashMap),
        "a1": (2, 4, 8, 10240, ArrayMap),
        "a2": (2, 4, 4, 10240, ArrayMap),
        "a3": (2, 4, 4, 7, ArrayMap),
        "pa": (6, 4, 8, 3, PerCpuArrayMap),
    }
    with bpfnb.load(SHORTHANDS, name="shorthands", attach=False) as prog:
        for name, (mtype, ks, vs, n, cls) in expected.items():
            m = prog.maps[name]
            info = syscall.map_info(m.fd)
            assert (info.type, info.key_size, info.value_size, info.max_entries) == (
                mtype,
                ks,
                vs,
                n,
            ), name
            assert type(m) is cls, name
        assert prog.h3.value_codec.c_name == "struct pair"
        prog.h3[1] = {"a": 1, "b": -2}
        assert prog.h3.df().to_dict("records") == [{"key": 1, "a": 1, "b": -2}]
        prog.a2[3] = -5
        assert prog.a2[3] == -5
