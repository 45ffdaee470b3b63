"""The magics, driven through a real IPython InteractiveShell (``TestingShell``)."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

import bpfnb
from bpfnb.errors import CommandError, CompileError, VerifierError
from bpfnb.ui.magics import BpfMagics

from conftest import bpf_object_counts, settled_object_counts, wait_for_counts
from programs import (
    GETPID_COUNTER,
    MISSING_NULL_CHECK,
    MISSING_NULL_CHECK_LINE,
    SYNTAX_ERROR,
    SYNTAX_ERROR_LINE,
)
from shell import TestingShell
from workload import Workload


@pytest.fixture
def workload() -> Iterator[Workload]:
    with Workload() as w:
        yield w


def programs_named(name: str, expected: int, timeout: float = 5.0) -> int:
    """Count kernel programs called ``name``, polling until ``expected`` (frees are deferred)."""
    deadline = time.monotonic() + timeout
    while True:
        out = subprocess.run(["bpftool", "-j", "prog", "list"], capture_output=True, text=True)
        count = sum(1 for p in json.loads(out.stdout) if p.get("name") == name)
        if count == expected or time.monotonic() > deadline:
            return count
        time.sleep(0.05)


def test_cell_binds_program_and_counts_exactly(
    shell: TestingShell, workload: Workload, kernel: None
) -> None:
    before = settled_object_counts()
    shell.run(f"%%bpf syscalls --no-display\n{GETPID_COUNTER}")
    prog = shell.user_ns["syscalls"]
    assert isinstance(prog, bpfnb.Program)
    workload.run("getpid", 777)
    assert shell.run(f"syscalls.counts[{workload.pid}]") == 777
    listing = shell.run("%bpf list")
    assert isinstance(listing, pd.DataFrame)
    row = listing.set_index("name").loc["syscalls"]
    assert row["attach points"] == "tracepoint/syscalls/sys_enter_getpid"
    assert row["run count"] >= 777
    shell.run("%bpf stop syscalls")
    assert prog.closed
    assert wait_for_counts(before) == before


def test_fifty_reruns_leave_one_program_and_stop_all_cleans(
    shell: TestingShell, workload: Workload, kernel: None
) -> None:
    before = settled_object_counts()
    for _ in range(50):
        shell.run(f"%%bpf rerun --no-display\n{GETPID_COUNTER}")
    assert programs_named("on_getpid", 1) == 1
    workload.run("getpid", 42)
    assert shell.user_ns["rerun"].counts[workload.pid] == 42
    shell.run("%bpf stop --all")
    assert wait_for_counts(before) == before


def test_syntax_error_shows_cell_line_without_traceback(
    shell: TestingShell, kernel: None, capsys: pytest.CaptureFixture[str]
) -> None:
    result = shell.run_cell(f"%%bpf broken --no-display\n{SYNTAX_ERROR}")
    assert isinstance(result.error_in_exec, CompileError)
    out = capsys.readouterr()
    text = out.out + out.err
    assert f"line {SYNTAX_ERROR_LINE + 1}," in text  # gutter numbering: %%bpf is line 1
    assert "expected ';'" in text
    assert "Traceback" not in text and "site-packages" not in text
    assert "broken" not in shell.user_ns


def test_verifier_error_shows_cell_line(
    shell: TestingShell, kernel: None, capsys: pytest.CaptureFixture[str]
) -> None:
    before = settled_object_counts()
    result = shell.run_cell(f"%%bpf nocheck --no-display\n{MISSING_NULL_CHECK}")
    assert isinstance(result.error_in_exec, VerifierError)
    text = capsys.readouterr().out
    assert f"at cell line {MISSING_NULL_CHECK_LINE + 1}" in text  # %%bpf is line 1
    assert "map_value_or_null" in text and "hint:" in text
    assert "Traceback" not in text
    assert len(text.strip().splitlines()) <= 7
    assert wait_for_counts(before) == before


def test_failing_rerun_keeps_old_program_counting(
    shell: TestingShell, workload: Workload, kernel: None
) -> None:
    shell.run(f"%%bpf keep --no-display\n{GETPID_COUNTER}")
    old = shell.user_ns["keep"]
    loaded = settled_object_counts()
    result = shell.run_cell(f"%%bpf keep --no-display\n{MISSING_NULL_CHECK}")
    assert isinstance(result.error_in_exec, VerifierError)
    assert wait_for_counts(loaded) == loaded  # nothing of the failed version stayed
    assert shell.user_ns["keep"] is old and not old.closed and old.attached
    workload.run("getpid", 31)
    assert old.counts[workload.pid] == 31
    result = shell.run_cell(f"%%bpf keep --no-display\n{SYNTAX_ERROR}")
    assert isinstance(result.error_in_exec, CompileError)
    source = 'SEC("tracepoint/syscalls/sys_enter_no_such_call")\nint p(void *c) { return 0; }\n'
    result = shell.run_cell(f"%%bpf keep --no-display\n{source}")
    assert "sys_enter_no_such_call" in str(result.error_in_exec)  # loads, fails to attach
    assert wait_for_counts(loaded) == loaded
    assert shell.user_ns["keep"] is old and old.attached
    workload.run("getpid", 9)
    assert old.counts[workload.pid] == 40
    shell.run("%bpf stop keep")


def test_export_writes_csv(
    shell: TestingShell, workload: Workload, kernel: None, tmp_path: Path
) -> None:
    shell.run(f"%%bpf exp --no-display\n{GETPID_COUNTER}")
    workload.run("getpid", 12)
    path = tmp_path / "counts.csv"
    shell.run(f"%bpf export exp.counts {path}")
    frame = pd.read_csv(path)
    assert int(frame.loc[frame["key"] == workload.pid, "value"].iloc[0]) == 12
    result = shell.run_cell(f"%bpf export exp.nomap {path}")
    assert "no map 'nomap'" in str(result.error_in_exec)
    shell.run("%bpf stop exp")


def test_config_interval_and_doctor(
    shell: TestingShell, kernel: None, capsys: pytest.CaptureFixture[str]
) -> None:
    shell.run("%config BpfMagics.interval = 0.5")
    magics = shell.ip.magics_manager.registry["BpfMagics"]
    assert isinstance(magics, BpfMagics) and magics.interval == 0.5
    shell.run("%bpf doctor")
    text = capsys.readouterr().out
    for check in (
        "kernel BTF",
        "clang with the BPF target",
        "libbpf headers",
        "bpftool",
        "privileges",
        "tracefs",
    ):
        assert f"[ok  ] {check}" in text


def test_bad_magic_arguments_are_usage_errors(shell: TestingShell, kernel: None) -> None:
    result = shell.run_cell("%%bpf\nint x;")
    assert "needs a name" in str(result.error_in_exec)
    result = shell.run_cell("%bpf frobnicate")
    assert "unknown %bpf action" in str(result.error_in_exec)
    result = shell.run_cell("%bpf stop nothing_here")
    assert "no loaded program named 'nothing_here'" in str(result.error_in_exec)


def test_compile_only_loads_nothing(
    shell: TestingShell, kernel: None, capsys: pytest.CaptureFixture[str]
) -> None:
    before = settled_object_counts()
    shell.run(f"%%bpf conly --compile-only\n{GETPID_COUNTER}")
    text = capsys.readouterr().out
    assert "on_getpid [tracepoint/syscalls/sys_enter_getpid]" in text
    assert "counts (hash)" in text
    assert "conly" not in shell.user_ns
    assert bpf_object_counts() == before


def test_names_that_would_shadow_are_refused(shell: TestingShell, kernel: None) -> None:
    for name, why in (
        ("print", "is a Python builtin"),
        ("get_ipython", "is one of IPython's own names"),
        ("In", "is one of IPython's own names"),
        ("_", "is one of IPython's own names"),
        ("_i3", "is one of IPython's own names"),
    ):
        result = shell.run_cell(f"%%bpf {name} --no-display\n{GETPID_COUNTER}")
        assert isinstance(result.error_in_exec, CommandError), name
        assert why in str(result.error_in_exec)
    # nothing was broken by the attempts: later magics and builtins still work
    assert isinstance(shell.run("%bpf list"), pd.DataFrame)
    assert shell.run("print") is print
    shell.run("mine = 5")
    result = shell.run_cell(f"%%bpf mine --no-display\n{GETPID_COUNTER}")
    assert isinstance(result.error_in_exec, CommandError)
    assert "already holds a int" in str(result.error_in_exec) and "--force" in str(
        result.error_in_exec
    )
    assert shell.run("mine") == 5
    shell.run(f"%%bpf mine --no-display --force\n{GETPID_COUNTER}")
    assert isinstance(shell.user_ns["mine"], bpfnb.Program)
    shell.run(f"%%bpf mine --no-display\n{GETPID_COUNTER}")  # a program: re-run replaces it
    shell.run("%bpf stop mine")
