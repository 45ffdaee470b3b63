"""Stack traces, CPU profiling and flame graphs, against a native process with known stacks.

- a getpid counter keyed by ``{pid, ustack, kstack, comm}`` sees the deep recursion of
  ``tests/data/stack_target.c``: its frames, innermost first, are exactly the C
  functions, in order, under the kernel's syscall entry frames;
- the ``profile`` template (``SEC("perf_event")`` at ``--sample-freq``) samples a
  process spinning in a uniquely named function: at least 80 % of its samples carry
  that frame;
- ``offcputime`` (sched_switch) charges a process's sleeps to the nanosleep stack.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import bpfnb
from bpfnb.build import templates
from bpfnb.codec.stacks import parse_folded, strip_offset
from bpfnb.kernel.stacks import StackTraceMap
from bpfnb.ui.flamegraph import FlameGraphSnapshot

from native import SPIN_FUNCTION, StackTarget
from zoo_programs import STACK_COUNTER

DEPTH, CALLS = 7, 25
#: The target's own frames, innermost first (bpfnb_recurse runs DEPTH + 1 times).
USER_FRAMES = [
    "bpfnb_leaf_syscall",
    *["bpfnb_recurse"] * (DEPTH + 1),
    "bpfnb_outer_frame",
    "main",
]


def test_stack_of_deep_recursion(clean_kernel: tuple[int, int, int], tmp_path: Path) -> None:
    target = StackTarget("recurse", DEPTH, CALLS)
    prog = bpfnb.load(STACK_COUNTER, name="stacks", globals={"target": target.pid})
    with target, prog:
        target.run()
        stacks = prog.stacks
        assert isinstance(stacks, StackTraceMap) and stacks.depth == 127
        df = prog.counts.df()
        assert len(df) == 1 and int(df["value"].iloc[0]) == CALLS
        row = df.iloc[0]
        assert row["comm"] == "stack_target" and row["ustack"] >= 0 and row["kstack"] >= 0
        frames = list(row["stack"])
        # kernel frames first (they sit on top of the user frames), all resolved
        kernel = frames[: frames.index(next(f for f in frames if "bpfnb_" in f))]
        assert kernel and not any(f.startswith("0x") for f in kernel)
        assert any(strip_offset(f) == "do_syscall_64" for f in kernel)
        user = [strip_offset(f) for f in frames[len(kernel) :]]
        assert user[: len(USER_FRAMES)] == USER_FRAMES
        # the stack map alone, with the pid found next to the stack id
        assert [strip_offset(f) for f in stacks.stack(int(row["ustack"]), target.pid)][
            : len(USER_FRAMES)
        ] == USER_FRAMES
        assert stacks.stack(int(row["kstack"])) == kernel
        table = stacks.df()
        assert sorted(table["stack_id"]) == sorted([int(row["ustack"]), int(row["kstack"])])
        # folded: comm, then user frames from main down, then kernel frames (_[k])
        folded = row["folded"]
        assert folded.startswith("stack_target;")
        assert ";".join(reversed(USER_FRAMES)) in folded
        assert folded.endswith("_[k]")
        assert stacks.folded() == {folded: CALLS} == prog.counts.folded()
        out = stacks.to_folded(tmp_path / "out.folded")
        assert parse_folded(out.read_text()) == {folded: CALLS}
        graph = stacks.flamegraph()
        assert isinstance(graph, FlameGraphSnapshot)
        html = graph._repr_html_()
        assert f'data-total="{CALLS}"' in html and 'data-n="bpfnb_leaf_syscall"' in html


def test_profile_template_finds_the_spinning_function(
    clean_kernel: tuple[int, int, int],
) -> None:
    source = templates.get_template("profile").source
    with (
        StackTarget("spin", 2) as target,
        bpfnb.load(
            source, name="profile", globals={"target_pid": target.pid}, sample_freq=199
        ) as prog,
    ):
        assert prog.attach_points == ["perf_event"]
        assert any("199 Hz" in note for note in prog.notes), prog.notes
        target.run()
        df = prog.counts.df()
        assert set(df["pid"]) == {target.pid}
        total = int(df["value"].sum())
        spinning = df["stack"].map(lambda s: any(f.startswith(SPIN_FUNCTION) for f in s))
        hits = int(df[spinning]["value"].sum())
        assert total >= 50, df
        assert hits / total >= 0.8, (hits, total)
        counts = prog.stacks.folded()
        assert sum(counts.values()) == total
        assert sum(n for stack, n in counts.items() if SPIN_FUNCTION in stack) == hits


def test_sample_period(clean_kernel: tuple[int, int, int]) -> None:
    source = r"""
const volatile u32 target = 0;
u64 samples = 0;

SEC("perf_event")
int on_sample(struct bpf_perf_event_data *ctx)
{
    if ((bpf_get_current_pid_tgid() >> 32) == target)
        __sync_fetch_and_add(&samples, 1);
    return 0;
}
"""
    target = StackTarget("spin", 1)
    # cpu-clock counts nanoseconds: one sample per millisecond of CPU time
    prog = bpfnb.load(
        source, name="period", globals={"target": target.pid}, sample_period=1_000_000
    )
    with target, prog:
        assert any("every 1000000 events" in note for note in prog.notes), prog.notes
        target.run()
        assert prog.globals["samples"] >= 100


def test_offcputime_template_charges_sleeps(clean_kernel: tuple[int, int, int]) -> None:
    code = "import sys, time; print(1, flush=True); sys.stdin.readline(); "
    code += "[time.sleep(0.1) for _ in range(5)]; print('done', flush=True)"
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdin is not None
        proc.stdout.readline()
        source = templates.get_template("offcputime").source
        with bpfnb.load(source, name="offcpu", globals={"target_pid": proc.pid}) as prog:
            proc.stdin.write("go\n")
            proc.stdin.flush()
            assert proc.stdout.readline().strip() == "done"
            proc.stdin.close()
            proc.wait(timeout=10)  # nothing of it runs (or blocks) any more
            df = prog.offcpu.df()
            assert set(df["pid"]) == {proc.pid}
            asleep = df[df["folded"].str.contains("nanosleep")]
            # 5 sleeps of 100 ms, in microseconds
            assert 500_000 <= int(asleep["value"].sum()) < 5_000_000, asleep
            counts = prog.stacks.folded()
            assert sum(counts.values()) == int(df["value"].sum())
    finally:
        if proc.stdin and not proc.stdin.closed:
            proc.stdin.close()
        proc.wait(timeout=10)


@pytest.mark.parametrize("name", ["profile", "offcputime"])
def test_templates_have_a_flame_graph(clean_kernel: tuple[int, int, int], name: str) -> None:
    from bpfnb.ui.dashboard import dashboard
    from bpfnb.ui.flamegraph import FlameGraph

    with bpfnb.load(templates.get_template(name).source, name=name) as prog:
        board = dashboard(prog, interval=60)
        try:
            assert isinstance(board.views["stacks"], FlameGraph)
            assert "refresh failed" not in board.html()
        finally:
            board.stop()
