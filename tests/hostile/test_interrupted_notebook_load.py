"""Ctrl-C during a slow load, in a real ipykernel: the notebook keeps working.

The cell's two programs take ~1.5 s to verify (see
:func:`programs.slow_verifier_source`). The notebook's stop button is pressed early,
in the middle, late in that load and right after it; each time the kernel must answer
``1+1`` at once, the cell must run again, and the kernel must hold exactly the objects
of the version bound to the cell's name: an interrupted load leaves nothing behind
(checked by object id in the kernel process's fds and by program name kernel-wide).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest

from conftest import kernel_objects, require_kernel, wait_until
from notebook_kernel import NotebookKernel, Reply
from programs import slow_verifier_source
from workload import Workload

pytestmark = pytest.mark.kernel

PROGRAMS = ("slow_verify_0", "slow_verify_1")
#: Fractions of an uninterrupted run of the cell at which stop is pressed.
POINTS = {"early": 0.15, "middle": 0.5, "late": 0.85, "right after": 1.05}


@pytest.fixture(scope="module")
def notebook() -> Iterator[NotebookKernel]:
    require_kernel()
    cache = os.environ.get("BPFNB_TEST_CACHE", "/tmp/bpfnb-test-cache")
    kernel = NotebookKernel(env={"BPFNB_CACHE_DIR": cache})
    try:
        assert kernel.run("%load_ext bpfnb").status == "ok"
        yield kernel
    finally:
        kernel.run("%bpf stop --all", timeout=30)
        kernel.close()


@pytest.fixture(scope="module")
def workload() -> Iterator[Workload]:
    """The process whose getppid calls the cell counts (the kernel makes its own)."""
    with Workload() as running:
        yield running


def _cell(workload: Workload) -> str:
    return f"%%bpf slowv --no-display --set target_tgid={workload.pid}\n" + slow_verifier_source()


def _bound_ids(notebook: NotebookKernel) -> set[int]:
    """Program ids of the version bound to ``slowv`` (empty when none is)."""
    reply = notebook.run(
        "print(sorted(r['id'] for r in slowv.stats()['programs'].values()) "
        "if 'slowv' in dir() and not slowv.closed else [])"
    )
    assert reply.status == "ok", reply
    return set(json.loads(reply.text.strip()))


def _named_in_kernel() -> set[int]:
    """Ids of every program named like the cell's programs, kernel-wide."""
    return {p["id"] for p in kernel_objects("prog") if p.get("name") in PROGRAMS}


def _check_holds_one_version(notebook: NotebookKernel) -> set[int]:
    bound = _bound_ids(notebook)
    assert len(bound) == len(PROGRAMS)
    # A replaced version is closed in the background (bpfnb's closer thread).
    wait_until(lambda: notebook.bpf_ids()["prog_id"] == bound)
    held = notebook.bpf_ids()
    assert held["prog_id"] == bound, f"the kernel process holds {held}, bound: {bound}"
    assert len(held["link_id"]) == len(PROGRAMS)
    assert _named_in_kernel() == bound
    return bound


def _comes_back_to(notebook: NotebookKernel, held: dict[str, set[int]]) -> bool:
    return wait_until(lambda: notebook.bpf_ids() == held)


def _answers_at_once(notebook: NotebookKernel) -> None:
    reply = notebook.run("1+1", timeout=15)
    assert reply.status == "ok" and reply.text.strip() == "2", reply
    assert reply.seconds < 10, f"1+1 took {reply.seconds:.1f} s"


def test_stop_pressed_during_a_slow_load(notebook: NotebookKernel, workload: Workload) -> None:
    cell = _cell(workload)
    # Compile once (cached from now on), then time one whole uninterrupted run.
    compiled = notebook.run(cell.replace("--no-display", "--no-display --compile-only"))
    assert compiled.status == "ok", compiled
    whole = notebook.run(cell)
    assert whole.status == "ok", whole
    assert "2 of 2 program(s) attached" in whole.text
    bound = _check_holds_one_version(notebook)

    seen: dict[str, Reply] = {}
    for point, fraction in POINTS.items():
        before = notebook.bpf_ids()
        reply = notebook.run(cell, interrupt_after=fraction * whole.seconds, timeout=120)
        seen[point] = reply
        # The load is undone (KeyboardInterrupt), or it completed (then an interrupt
        # may still arrive after the program was bound, while the cell reports).
        assert (reply.status, reply.ename) in {("ok", ""), ("error", "KeyboardInterrupt")}, (
            point,
            reply,
        )
        _answers_at_once(notebook)
        now = _check_holds_one_version(notebook)
        if reply.status == "error" and now == bound:
            # Interrupted before it was bound: undone, nothing of it stays.
            assert _comes_back_to(notebook, before), f"{point}: the undone load left objects"
        # Otherwise (completed, or interrupted after the new version was bound) the
        # new version is the only one held.
        bound = now
        # The next run of the cell works and replaces the version bound now.
        again = notebook.run(cell)
        assert again.status == "ok", (point, again)
        new = _check_holds_one_version(notebook)
        assert not new & bound, f"{point}: the old version was not replaced"
        bound = new

    # The stop button really interrupted the loads it was pressed during.
    assert seen["early"].ename == "KeyboardInterrupt"
    assert seen["middle"].ename == "KeyboardInterrupt"
    # The version loaded last counts exactly: each of its programs once per getppid.
    workload.run("getppid", 50)
    counted = notebook.run("print(slowv.slow_seen[0])")
    assert counted.text.strip() == str(50 * len(PROGRAMS)), counted
