"""Every notebook in notebooks/ runs headless with nbclient (real kernel, real BPF).

Each notebook runs in a temp copy with ``BPFNB_OUT`` pointing at a temp folder; no
cell may fail, and the numbers the notebooks print and the CSV files they write are
checked against what the notebook made happen (known child processes and counts).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

import nbformat
import pandas as pd
import pytest
from nbclient import NotebookClient

from conftest import ROOT, require_kernel

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CELL_TIMEOUT = 120


def _execute(notebook: Path, tmp: Path) -> tuple[Any, Path]:
    out = tmp / "out"
    out.mkdir()
    copy = tmp / notebook.name
    shutil.copy(notebook, copy)
    nb = nbformat.read(copy, as_version=4)
    old = os.environ.get("BPFNB_OUT")
    os.environ["BPFNB_OUT"] = str(out)
    try:
        client = NotebookClient(
            nb,
            timeout=CELL_TIMEOUT,
            kernel_name="python3",
            resources={"metadata": {"path": str(tmp)}},
        )
        client.execute()
    finally:
        if old is None:
            os.environ.pop("BPFNB_OUT", None)
        else:
            os.environ["BPFNB_OUT"] = old
    return nb, out


def _texts(nb: Any) -> str:
    """Every stream and text/plain output of the notebook, joined."""
    parts = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            if o.get("output_type") == "stream":
                parts.append(o.get("text", ""))
            elif "data" in o:
                parts.append(str(o["data"].get("text/plain", "")))
    return "\n".join(parts)


def _html_outputs(nb: Any) -> list[str]:
    return [
        str(o["data"]["text/html"])
        for cell in nb.cells
        for o in cell.get("outputs", [])
        if "data" in o and "text/html" in o["data"]
    ]


def test_every_notebook_is_checked() -> None:
    assert {p.name for p in NOTEBOOKS} >= {"quickstart.ipynb"}
    assert len(NOTEBOOKS) >= 2
    for path in NOTEBOOKS:
        assert path.stem in CHECKS, f"{path.name} has no output checks in this file"


def check_quickstart(nb: Any, out: Path) -> None:
    text = _texts(nb)
    m = re.search(r"getppid calls by pid (\d+): (\d+)", text)
    assert m is not None, text[-2000:]
    child_pid, calls = int(m[1]), int(m[2])
    assert calls == 1000
    m = re.search(r"execs of (\S+) seen: (\d+); lost: (\d+)", text)
    assert m is not None
    true_path, execs, lost = m[1], int(m[2]), int(m[3])
    assert (execs, lost) == (5, 0)
    m = re.search(r"latency samples: (\d+) in (\d+) buckets", text)
    assert m is not None and int(m[1]) > 0 and int(m[2]) > 0
    assert "stopped 3 program(s)" in text
    # the dashboards left static HTML (nbconvert fallback) with the live table's summary
    html = "\n".join(_html_outputs(nb))
    assert "bpfnb-summary" in html and "bpfnb-histogram" in html
    # the CSV files
    syscalls = pd.read_csv(out / "syscalls.csv")
    mine = syscalls[(syscalls["pid"] == child_pid) & (syscalls["syscall"] == "getppid")]
    assert int(mine["value"].sum()) == 1000
    execs_csv = pd.read_csv(out / "execs.csv")
    kernel_pids = set(execs_csv.loc[execs_csv["filename"] == true_path, "ppid"])
    assert len(execs_csv[execs_csv["filename"] == true_path]) >= 5 and kernel_pids
    hist = pd.read_csv(out / "latency_hist.csv")
    assert list(hist.columns[:4]) == ["bucket", "low", "high", "count"]
    assert int(hist["count"].sum()) == int(re.findall(r"latency samples: (\d+)", text)[0])
    per_syscall = pd.read_csv(out / "per_syscall.csv", index_col=0)
    assert int(per_syscall.loc["getppid", "calls"]) >= 1000


def check_files_opened(nb: Any, out: Path) -> None:
    text = _texts(nb)
    m = re.search(r"opens of (\S+) by the command: (\d+) \(expected (\d+)\)", text)
    assert m is not None, text[-2000:]
    assert int(m[2]) == int(m[3]) == 3
    m = re.search(r"failed opens of the missing file: (\d+) ENOENT", text)
    assert m is not None and int(m[1]) == 1
    opens = pd.read_csv(out / "opens.csv")
    assert {"pid", "comm", "filename", "fd", "err"} <= set(opens.columns)
    per_file = pd.read_csv(out / "opens_per_file.csv")
    assert len(per_file) > 0


def check_fleet(nb: Any, out: Path) -> None:
    text = _texts(nb)
    assert "connected to tcp://127.0.0.1:" in text and "3 worker(s) (0, 1, 2)" in text
    found = re.findall(r"getpid calls on host (\d) by pid (\d+): (\d+) \(expected (\d+)\)", text)
    assert [(h, int(n), int(e)) for h, _, n, e in found] == [
        ("0", 1000, 1000),
        ("1", 2000, 2000),
        ("2", 3000, 3000),
    ]
    counts = pd.read_csv(out / "fleet_counts.csv", dtype={"host": str})
    assert list(counts.columns) == ["host", "key", "value"]
    assert counts.sort_values("host")["value"].tolist() == [1000, 2000, 3000]
    assert sorted(counts["key"].tolist()) == sorted(int(pid) for _, pid, _, _ in found)
    per_comm = pd.read_csv(out / "fleet_per_comm.csv", dtype={"host": str})
    assert per_comm.values.tolist() == [
        [h, f"fleetwl-{c}", 10 * (int(c) + 1)] for h in "012" for c in "012"
    ]
    assert "lost on every host: 0" in text
    assert "stopped 2 program(s)" in text
    html = "\n".join(_html_outputs(nb))
    assert "bpfnb-hosts" in html and 'data-state="running"' in html


CHECKS = {
    "quickstart": check_quickstart,
    "files_opened": check_files_opened,
    "fleet": check_fleet,
}


@pytest.mark.kernel
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(notebook: Path, tmp_path: Path) -> None:
    require_kernel()
    nb, out = _execute(notebook, tmp_path)
    CHECKS[notebook.stem](nb, out)
