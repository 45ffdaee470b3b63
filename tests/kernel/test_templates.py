"""bpf_templates/: discovery, and every template in the kernel with an exact answer."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from bpfnb.build import templates
from bpfnb.codec import histogram
from bpfnb.object import maptypes

from conftest import ROOT
from workload import SYS_getppid, Workload

EXPECTED = {"execsnoop", "opensnoop", "syscount", "syslat"}

# A helper process: prints its pid, then for each stdin line "open PATH K" or
# "exec PATH K" opens PATH (or runs it) K times, then prints "done".
HELPER = r"""
import os, subprocess, sys

print(os.getpid(), flush=True)
for line in sys.stdin:
    what, path, k = line.split()
    for _ in range(int(k)):
        if what == "open":
            try:
                os.close(os.open(path, os.O_RDONLY))
            except FileNotFoundError:
                pass
        else:
            subprocess.run([path], check=True)
    print("done", flush=True)
"""


class Helper:
    """A process that opens or executes a known path an exact number of times."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HELPER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.pid = int(self.proc.stdout.readline())

    def do(self, what: str, path: str, k: int) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"{what} {path} {k}\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().strip() == "done"

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


def _wait_for(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check() and time.monotonic() < deadline:
        time.sleep(0.05)


# -- discovery --------------------------------------------------------------------------


def test_templates_are_listed_with_descriptions() -> None:
    found = {t.name: t for t in templates.list_templates()}
    assert set(found) >= EXPECTED
    for t in found.values():
        assert t.description, t.name
        first = t.source.splitlines()[0]
        assert first.startswith("//") and t.description in first
        assert "kprobe" not in t.source  # tracepoints only
    assert templates.get_template("syscount.bpf.c").name == "syscount"
    # the editable install maps the package bpfnb.bpf_templates to bpf_templates/
    repo_templates = ROOT / "bpf_templates"
    assert templates.packaged_dir() == repo_templates
    assert {t.path.parent for t in found.values()} == {repo_templates}
    with pytest.raises(templates.TemplateNotFoundError, match=r"available: .*syscount"):
        templates.get_template("nope")


def test_describe_and_extra_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert templates.describe("/* Block comment. */\nint x;") == "Block comment."
    assert templates.describe("// Line comment\n") == "Line comment"
    assert templates.describe("int x;\n") == ""
    (tmp_path / "mine.bpf.c").write_text("// My own template\n")
    (tmp_path / "syscount.bpf.c").write_text("// Shadowing the shipped one\n")
    monkeypatch.setenv("BPFNB_TEMPLATES", str(tmp_path))
    found = {t.name: t for t in templates.list_templates()}
    assert found["mine"].description == "My own template"
    assert found["syscount"].path.parent == tmp_path


# -- kernel: exact answers ----------------------------------------------------------------


def _load(name: str, **kw: object) -> object:
    import bpfnb

    return bpfnb.load(templates.get_template(name).source, name=name, **kw)  # type: ignore[arg-type]


def test_syscount_counts_exactly(clean_kernel: tuple[int, int, int]) -> None:
    n = 777
    with Workload() as w, _load("syscount") as prog:
        w.run("getppid", n)
        df = prog.counts.df()  # type: ignore[attr-defined]
    mine = df[df["pid"] == w.pid]
    per_syscall = mine.groupby("syscall", observed=True)["value"].sum()
    assert int(per_syscall["getppid"]) == n
    assert set(mine["comm"]) == {"python"} or all(c.startswith("python") for c in mine["comm"])


def test_syscount_target_pid(clean_kernel: tuple[int, int, int]) -> None:
    with Workload() as w, _load("syscount", globals={"target_pid": w.pid}) as prog:
        w.run("getppid", 50)
        df = prog.counts.df()  # type: ignore[attr-defined]
    assert set(df["pid"]) == {w.pid}
    assert int(df.loc[df["syscall"] == "getppid", "value"].sum()) == 50


def test_syslat_histogram_counts_exactly(clean_kernel: tuple[int, int, int]) -> None:
    n = 400
    with Workload() as w:
        glob = {"target_pid": w.pid, "target_syscall": SYS_getppid}
        with _load("syslat", globals=glob) as prog:
            w.run("getppid", n)
            w.run("getpid", 30)  # filtered out
            lat_map = prog.latency  # type: ignore[attr-defined]
            assert maptypes.is_histogram(lat_map.spec.kind)
            lat = histogram.histogram_frame(lat_map.spec, lat_map.df())
            calls = prog.calls.df()  # type: ignore[attr-defined]
    assert int(lat["count"].sum()) == n
    assert lat["bucket"].str.match(r"^\[\d+[KMG]?(, \d+[KMG]?\))?\]?$").all()
    assert calls["key"].tolist() == ["getppid"] and calls["value"].tolist() == [n]


def test_opensnoop_sees_every_open(clean_kernel: tuple[int, int, int]) -> None:
    k = 37
    helper = Helper()
    try:
        with (
            tempfile.NamedTemporaryFile(prefix="bpfnb-open-") as f,
            _load("opensnoop", globals={"target_pid": helper.pid}) as prog,
        ):
            helper.do("open", f.name, k)
            helper.do("open", f.name + ".missing", 1)
            events = prog.events  # type: ignore[attr-defined]
            _wait_for(lambda: len(events.df()) >= k)
            time.sleep(0.2)
            df = events.df()
            lost = events.lost
    finally:
        helper.close()
    mine = df[df["filename"] == f.name]
    assert len(mine) == k and lost == 0
    assert set(mine["pid"]) == {helper.pid}
    assert (mine["fd"] >= 0).all()
    missing = df[df["filename"] == f.name + ".missing"]
    assert missing["fd"].tolist() == [-1] and missing["err"].tolist() == ["ENOENT"]


def test_execsnoop_sees_every_exec(clean_kernel: tuple[int, int, int]) -> None:
    k = 9
    true = "/usr/bin/true" if Path("/usr/bin/true").exists() else "/bin/true"
    helper = Helper()
    try:
        with _load("execsnoop") as prog:
            helper.do("exec", true, k)
            events = prog.events  # type: ignore[attr-defined]

            def mine() -> pd.DataFrame:
                df = events.df()
                return df[(df["ppid"] == helper.pid) & (df["filename"] == true)]

            _wait_for(lambda: len(mine()) >= k)
            time.sleep(0.2)
            got = mine()
            lost = events.lost
    finally:
        helper.close()
    assert len(got) == k and lost == 0
    assert set(got["comm"]) == {"true"}
    assert got["pid"].nunique() == k
