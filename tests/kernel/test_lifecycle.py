"""Kernel tests of the Python API: load, count exactly, replace, stop, errors, no leaks."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import bpfnb
from bpfnb.errors import AttachError, KernelFeatureError, VerifierError
from bpfnb.kernel import system

from conftest import (
    TESTS,
    bpf_object_counts,
    kernel_prog_ids,
    settled_object_counts,
    wait_for_counts,
)
from programs import GETPID_COUNTER, MISSING_NULL_CHECK, MISSING_NULL_CHECK_LINE
from workload import Workload


@pytest.fixture(autouse=True)
def _cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "BPFNB_CACHE_DIR", os.environ.get("BPFNB_TEST_CACHE", "/tmp/bpfnb-test-cache")
    )


@pytest.fixture
def workload() -> Iterator[Workload]:
    with Workload() as w:
        yield w


def test_counts_exactly_n_getpid_calls(clean_kernel: object, workload: Workload) -> None:
    with bpfnb.load(GETPID_COUNTER, name="syscalls") as prog:
        assert prog.attach_points == ["tracepoint/syscalls/sys_enter_getpid"]
        workload.run("getpid", 1000)
        assert prog.counts[workload.pid] == 1000
        frame = prog.counts.df()
        assert list(frame.columns) == ["key", "value"]
        assert int(frame.loc[frame["key"] == workload.pid, "value"].iloc[0]) == 1000
        workload.run("getpid", 234)
        assert prog.counts[workload.pid] == 1234
        stats = prog.stats()
        assert stats["run_cnt"] >= 1234
        assert stats["programs"]["on_getpid"]["attached"]
    assert prog.closed


def test_program_api_and_no_attach(clean_kernel: object, workload: Workload) -> None:
    prog = bpfnb.load(GETPID_COUNTER, name="quiet", attach=False)
    try:
        assert prog.attach_points == [] and not prog.attached
        workload.run("getpid", 50)
        assert len(prog.counts) == 0
        assert prog.attach() == ["on_getpid"]
        workload.run("getpid", 7)
        assert prog.counts[workload.pid] == 7
        prog.detach()
        workload.run("getpid", 5)
        assert prog.counts[workload.pid] == 7  # detached: maps still readable, no counting
        assert prog.maps["counts"] is prog.counts
        assert prog in bpfnb.programs()
        with pytest.raises(AttributeError, match="maps: counts"):
            _ = prog.nope
    finally:
        prog.close()
    assert prog not in bpfnb.programs()


def test_verifier_error_names_cell_line_and_leaves_nothing(
    clean_kernel: tuple[int, int, int],
) -> None:
    with pytest.raises(VerifierError) as info:
        bpfnb.load(MISSING_NULL_CHECK, name="nocheck")
    err = info.value
    assert err.line == MISSING_NULL_CHECK_LINE
    assert err.reason == "R0 invalid mem access 'map_value_or_null'"
    assert err.hint is not None and "NULL" in err.hint
    assert f"cell line {MISSING_NULL_CHECK_LINE}" in str(err)
    assert "*n += 1;" in str(err)
    assert "BEGIN PROG LOAD LOG" in err.log
    assert len(str(err).splitlines()) <= 5
    assert wait_for_counts(clean_kernel) == clean_kernel


def test_kprobe_without_kprobes_is_a_clear_error(
    clean_kernel: tuple[int, int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    # This kernel has no kprobes; elsewhere, pretend so: the check is what is tested.
    monkeypatch.setattr(system, "kprobes_available", lambda: False)
    source = 'SEC("kprobe/do_sys_openat2")\nint probe(void *ctx) { return 0; }\n'
    with pytest.raises(KernelFeatureError, match="CONFIG_KPROBES") as info:
        bpfnb.load(source, name="kp")
    assert "fentry" in str(info.value) and "tracepoint" in str(info.value)
    with bpfnb.load(source, name="kp", attach=False) as prog:
        assert not prog.attached


def test_missing_tracepoint_is_an_attach_error(clean_kernel: tuple[int, int, int]) -> None:
    source = 'SEC("tracepoint/syscalls/sys_enter_no_such_call")\nint p(void *ctx) { return 0; }\n'
    with pytest.raises(AttachError, match="sys_enter_no_such_call") as info:
        bpfnb.load(source, name="notp")
    assert "/sys/kernel/tracing/events" in str(info.value)


def test_load_from_object_and_c_file(
    clean_kernel: object, workload: Workload, tmp_path: Path
) -> None:
    path = tmp_path / "count.c"
    path.write_text(GETPID_COUNTER)
    with bpfnb.load(path, name="fromfile") as prog:
        workload.run("getpid", 11)
        assert prog.counts[workload.pid] == 11
        obj = prog.compile_result.object_path  # type: ignore[union-attr]
    with bpfnb.load(str(obj), name="fromobj") as prog:
        workload.run("getpid", 3)
        assert prog.counts[workload.pid] == 3


def test_close_all_returns_kernel_to_start(kernel: None) -> None:
    before = settled_object_counts()
    progs = [bpfnb.load(GETPID_COUNTER, name=f"p{i}") for i in range(3)]
    assert bpf_object_counts()[0] >= before[0] + 3
    bpfnb.close_all()
    assert all(p.closed for p in progs)
    assert wait_for_counts(before) == before


FILTERED_COUNTER = """\
const volatile u32 target_pid = 0;
const volatile u64 step = 1;

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __type(key, u32);
    __type(value, u64);
    __uint(max_entries, 1);
} total SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_getpid")
int on_getpid(void *ctx)
{
    u32 zero = 0;
    u64 *n;
    if (target_pid && (bpf_get_current_pid_tgid() >> 32) != target_pid)
        return 0;
    n = bpf_map_lookup_elem(&total, &zero);
    if (n)
        __sync_fetch_and_add(n, step);
    return 0;
}
"""


def test_set_const_volatile_globals(clean_kernel: object, workload: Workload) -> None:
    with bpfnb.load(
        FILTERED_COUNTER, name="filtered", globals={"target_pid": str(workload.pid), "step": 3}
    ) as prog:
        workload.run("getpid", 100)
        os.getpid()  # another process's calls are filtered out
        assert prog.total[0] == 300


def test_set_unknown_global_is_clear(clean_kernel: tuple[int, int, int]) -> None:
    with pytest.raises(bpfnb.BpfnbError, match="settable const volatile globals: step, target_pid"):
        bpfnb.load(FILTERED_COUNTER, name="filtered", globals={"nope": 1})
    with pytest.raises(bpfnb.MapTypeError):
        bpfnb.load(FILTERED_COUNTER, name="filtered", globals={"target_pid": -1})


def test_globals_read_and_write(clean_kernel: object, workload: Workload) -> None:
    source = FILTERED_COUNTER.replace(
        "__sync_fetch_and_add(n, step);", "__sync_fetch_and_add(n, step * extra);"
    ).replace(
        "const volatile u64 step = 1;", "const volatile u64 step = 1;\nu64 extra = 1;\nu32 hits;"
    )
    with bpfnb.load(source, name="glob", globals={"target_pid": workload.pid, "step": 2}) as prog:
        assert prog.globals["target_pid"] == workload.pid
        assert prog.globals["step"] == 2 and prog.globals["extra"] == 1
        workload.run("getpid", 10)
        assert prog.total[0] == 20
        prog.globals["extra"] = 5
        workload.run("getpid", 10)
        assert prog.total[0] == 20 + 100
        with pytest.raises(bpfnb.BpfnbError, match="frozen at load"):
            prog.globals["step"] = 3
        frame = prog.globals.df()
        assert frame.set_index("name").loc["extra", "value"] == 5
        assert set(frame["section"]) == {".rodata", ".data", ".bss"}


def test_maps_of_a_closed_program_refuse_reads(clean_kernel: object, workload: Workload) -> None:
    prog = bpfnb.load(GETPID_COUNTER, name="gone")
    counts = prog.counts
    workload.run("getpid", 4)
    assert counts[workload.pid] == 4
    prog.close()
    assert counts.closed
    with pytest.raises(bpfnb.BpfnbError, match="closed: its program was stopped or replaced"):
        counts.df()
    with pytest.raises(bpfnb.BpfnbError, match="closed"):
        _ = counts[workload.pid]


def test_globals_of_a_closed_program_refuse_reads(clean_kernel: object, workload: Workload) -> None:
    source = GETPID_COUNTER + "u64 extra = 7;\nconst volatile u32 limit = 3;\n"
    prog = bpfnb.load(source, name="globgone")
    g = prog.globals
    assert g["extra"] == 7 and g["limit"] == 3
    prog.close()
    for name in ("extra", "limit"):
        with pytest.raises(bpfnb.ClosedError, match="is closed: its program was stopped"):
            _ = g[name]
    with pytest.raises(bpfnb.ClosedError, match="closed"):
        g["extra"] = 1
    with pytest.raises(bpfnb.ClosedError, match="program 'globgone' is closed"):
        _ = prog.globals


def test_interpreter_exit_leaves_nothing_loaded(kernel: None, tmp_path: Path) -> None:
    script = (
        "import sys, bpfnb\n"
        f"sys.path.insert(0, {str(TESTS)!r})\n"
        "from programs import GETPID_COUNTER\n"
        "prog = bpfnb.load(GETPID_COUNTER, name='atexit_test')\n"
        "ids = [p['id'] for p in prog.stats()['programs'].values()]\n"
        "print('loaded', prog.attached, *ids, flush=True)\n"
        "sys.stdin.readline()\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdin is not None
    words = proc.stdout.readline().split()
    assert words[:2] == ["loaded", "True"]
    ids = [int(w) for w in words[2:]]
    assert len(ids) == 1 and kernel_prog_ids() >= set(ids)
    proc.stdin.close()  # the interpreter exits without close(): atexit cleans up
    assert proc.wait(timeout=30) == 0
    deadline = time.monotonic() + 5
    while kernel_prog_ids() & set(ids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not kernel_prog_ids() & set(ids)


def test_interrupt_during_load_leaves_nothing(
    clean_kernel: tuple[int, int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    from bpfnb.kernel import loader

    def interrupted(self: loader.LoadedObject) -> list[str]:
        raise KeyboardInterrupt

    monkeypatch.setattr(loader.LoadedObject, "attach", interrupted)
    with pytest.raises(KeyboardInterrupt):
        bpfnb.load(GETPID_COUNTER, name="interrupted")
    assert not [p for p in bpfnb.programs() if p.name == "interrupted"]
