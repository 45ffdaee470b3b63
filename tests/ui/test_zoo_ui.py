"""The map zoo in the UI: every kind in a dashboard without "refresh failed", flame graph
views, and the magics' new options (``--keep-maps``, ``--use``, ``--sample-freq``,
``%bpf pins`` / ``%bpf unpin``)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

import bpfnb
from bpfnb.build import templates
from bpfnb.kernel import reuse
from bpfnb.ui import html
from bpfnb.ui.dashboard import dashboard, live_view
from bpfnb.ui.flamegraph import FlameGraph
from bpfnb.ui.summary import MapSummary
from bpfnb.ui.views import LiveTable

from native import SPIN_FUNCTION, StackTarget
from programs import GETPID_COUNTER
from shell import TestingShell
from workload import Workload
from zoo_programs import (
    LPM,
    MAP_IN_MAP,
    QUEUES,
    STACK_COUNTER,
    STORAGE,
    TAIL_CALLS,
    USER_RING,
)

#: map name -> the view its kind gets.
EXPECTED_VIEWS = {
    "fifo": LiveTable,
    "lifo": LiveTable,
    "seen": MapSummary,
    "routes": LiveTable,
    "routes6": LiveTable,
    "tags": LiveTable,
    "found": LiveTable,
    "outer": LiveTable,
    "by_pid": LiveTable,
    "inner_a": LiveTable,
    "inner_b": LiveTable,
    "jumps": LiveTable,
    "per_task": LiveTable,
    "per_cgroup": LiveTable,
    "per_socket": LiveTable,
    "per_inode": LiveTable,
    "requests": MapSummary,
    "stacks": FlameGraph,
    "counts": LiveTable,
}


@pytest.fixture
def workload(kernel: None) -> Iterator[Workload]:
    with Workload() as w:
        yield w


def test_dashboard_shows_every_kind(kernel: None, workload: Workload) -> None:
    seen: dict[str, type] = {}
    for name, source in [
        ("dq", QUEUES),
        ("dl", LPM),
        ("dm", MAP_IN_MAP),
        ("dt", TAIL_CALLS),
        ("ds", STORAGE),
        ("du", USER_RING),
        ("dk", STACK_COUNTER),
    ]:
        with bpfnb.load(source, name=name, globals={"target": workload.pid}) as prog:
            if name == "dl":
                prog.routes["10.0.0.0/8"] = 1
            if name == "ds":
                prog.per_task[workload.pid] = 3
            workload.run("getpid", 3)
            board = dashboard(prog, interval=60)
            try:
                # helper maps (no counter-like column: prog arrays, maps of maps...) are
                # collapsed: show them, so every view is refreshed and drawn
                board.show_helpers(True)
                board.refresher.refresh_once()
                for map_name, view in board.views.items():
                    seen[map_name] = type(view)
                    assert view.error is None, (map_name, view.error)
                page = board.html()
                assert "refresh failed" not in page
                if name == "dl":
                    assert "10.0.0.0/8" in page and "172.16.0.0/12" in page
                if name == "dq":
                    assert "a bloom filter cannot be listed" in page
                    assert board.views["fifo"].total == 6  # 1 + 2 + 3, not drained
                    assert len(prog.fifo) == 3
                if name == "ds":
                    assert board.views["per_task"].total == 3 + 3
                if name == "dt":
                    assert "step1" in page
                if name == "dk":
                    graph = board.views["stacks"]
                    assert isinstance(graph, FlameGraph) and graph.total == 3
            finally:
                board.stop()
    assert seen == EXPECTED_VIEWS


def test_flame_graph_view_follows_samples(kernel: None) -> None:
    source = templates.get_template("profile").source
    target = StackTarget("spin", 1)
    prog = bpfnb.load(source, name="liveprof", globals={"target_pid": target.pid})
    with target, prog:
        board = dashboard(prog, interval=60)
        try:
            fg = board.views["stacks"]
            assert isinstance(fg, FlameGraph) and fg.total == 0
            assert "(no samples yet)" in html.render(fg)
            target.run()
            board.refresher.refresh_once()
            assert fg.total == int(prog.counts.df()["value"].sum()) > 0
            page = html.render(fg)
            assert f'data-n="{SPIN_FUNCTION}"' in page
            assert f'id="{fg.graph_id}"' in page and "refresh failed" not in page
            shown = live_view(prog.stacks, interval=60)
            assert "bpfnb-flamegraph" in (
                shown.html() if isinstance(shown, html.StaticView) else html.render(fg)
            )
        finally:
            board.stop()


# -- magics -----------------------------------------------------------------------------------

CONSUMER = r"""
BPF_HASH(counts, u32, u64, 10240);

SEC("tracepoint/syscalls/sys_enter_getppid")
int on_getppid(void *ctx)
{
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    u64 ten = 10, *n = bpf_map_lookup_elem(&counts, &pid);
    if (n)
        __sync_fetch_and_add(n, 10);
    else
        bpf_map_update_elem(&counts, &pid, &ten, BPF_NOEXIST);
    return 0;
}
"""


def test_keep_maps_and_use_in_cells(
    shell: TestingShell, workload: Workload, capsys: pytest.CaptureFixture[str]
) -> None:
    shell.run(f"%%bpf kcount --no-display\n{GETPID_COUNTER}")
    first = shell.user_ns["kcount"]
    workload.run("getpid", 21)
    changed = GETPID_COUNTER.replace("u64 one = 1", "u64 one = 1 /* changed */")
    capsys.readouterr()
    shell.run(f"%%bpf kcount --no-display --keep-maps\n{changed}")
    assert "kept maps (contents carried over): counts" in capsys.readouterr().out
    second = shell.user_ns["kcount"]
    assert second is not first and first.closed
    assert second.counts[workload.pid] == 21
    workload.run("getpid", 4)
    assert second.counts[workload.pid] == 25
    # the configured default, then a plain re-run that starts over
    shell.run("%config BpfMagics.keep_maps = True")
    try:
        shell.run(f"%%bpf kcount --no-display\n{GETPID_COUNTER}")
        assert shell.user_ns["kcount"].counts[workload.pid] == 25
    finally:
        shell.run("%config BpfMagics.keep_maps = False")
    shell.run(f"%%bpf kcount --no-display\n{GETPID_COUNTER}")
    assert shell.user_ns["kcount"].counts.get(workload.pid) is None
    workload.run("getpid", 2)
    # another cell uses kcount's map
    capsys.readouterr()
    shell.run(f"%%bpf consumer --no-display --use kcount.counts\n{CONSUMER}")
    assert "map counts is kcount.counts (shared)" in capsys.readouterr().out
    workload.run("getppid", 3)
    assert shell.user_ns["kcount"].counts[workload.pid] == 2 + 30
    assert shell.user_ns["consumer"].counts[workload.pid] == 32
    result = shell.run_cell(f"%%bpf c2 --no-display --use nothere.counts\n{CONSUMER}")
    assert "no loaded program named 'nothere'" in str(result.error_in_exec)
    result = shell.run_cell(f"%%bpf c2 --no-display --use kcount.nomap\n{CONSUMER}")
    assert "has no map 'nomap'" in str(result.error_in_exec)
    shell.run("%bpf stop kcount")
    shell.run("%bpf stop consumer")


PINNED = r"""
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __type(key, u32);
    __type(value, u64);
    __uint(max_entries, 4);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} shown_pin SEC(".maps");
"""


@pytest.fixture
def pin_dir(kernel: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    folder = Path(f"/sys/fs/bpf/bpfnb-uitest-{os.getpid()}")
    monkeypatch.setenv(reuse.PIN_DIR_ENV, str(folder))
    yield folder
    leftovers = sorted(p.name for p in folder.iterdir()) if folder.exists() else []
    for name in leftovers:
        (folder / name).unlink()
    if folder.exists():
        folder.rmdir()
    assert leftovers == [], f"pins leaked: {leftovers}"


def test_pins_and_unpin_magics(
    shell: TestingShell, pin_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shell.run(f"%%bpf pinned --no-display\n{PINNED}")
    shell.run("pinned.shown_pin[2] = 42")
    shell.run("%bpf stop pinned")
    listing = shell.run("%bpf pins")
    assert isinstance(listing, pd.DataFrame)
    assert listing[["name", "type", "max_entries"]].values.tolist() == [["shown_pin", "array", 4]]
    shell.run(f"%%bpf pinned --no-display\n{PINNED}")
    assert shell.user_ns["pinned"].shown_pin[2] == 42
    shell.run("%bpf stop pinned")
    capsys.readouterr()
    shell.run("%bpf unpin shown_pin")
    assert "unpinned 1 map(s): shown_pin" in capsys.readouterr().out
    shell.run("%bpf unpin --all")
    assert "unpinned 0 map(s)" in capsys.readouterr().out
    result = shell.run_cell("%bpf unpin shown_pin")
    assert "no pinned map named 'shown_pin'" in str(result.error_in_exec)


def test_sample_freq_option(
    shell: TestingShell, kernel: None, capsys: pytest.CaptureFixture[str]
) -> None:
    source = """
u64 samples = 0;

SEC("perf_event")
int on_sample(struct bpf_perf_event_data *ctx)
{
    __sync_fetch_and_add(&samples, 1);
    return 0;
}
"""
    capsys.readouterr()
    shell.run(f"%%bpf sampler --no-display --sample-freq 49\n{source}")
    out = capsys.readouterr().out
    assert "1 of 1 program(s) attached" in out
    assert "perf_event programs sample" in out and "at 49 Hz" in out
    assert shell.user_ns["sampler"].attach_points == ["perf_event"]
    result = shell.run_cell(f"%%bpf s2 --sample-freq 9 --sample-period 9\n{source}")
    assert "exclude each other" in str(result.error_in_exec)
    shell.run("%bpf stop sampler")
