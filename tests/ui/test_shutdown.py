"""Interpreter exit with programs loaded through an embedded IPython: no tracebacks.

A script that embeds IPython, loads programs with %%bpf (a ring buffer consumer and a
live dashboard running) and exits — after ``%bpf stop --all`` or without stopping
anything — must exit 0 and print nothing like ``Exception ignored in ... __del__`` at
shutdown, and leave none of its programs in the kernel.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from conftest import TESTS, kernel_prog_ids

SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
from programs import GETPID_COUNTER
from IPython.core.interactiveshell import InteractiveShell
ip = InteractiveShell.instance()
ip.run_cell("%load_ext bpfnb")
ring = "struct {{ __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 4096); }} "
cell = "%%bpf emb\\n" + GETPID_COUNTER + ring + "ev SEC(\\".maps\\");\\n"
assert ip.run_cell(cell).success
ip.run_cell("m = emb.counts; g = emb.globals; e = emb.ev")
print("ids", *[p["id"] for p in ip.user_ns["emb"].stats()["programs"].values()], flush=True)
ip.run_cell({last!r})
"""


@pytest.mark.parametrize("last", ["%bpf stop --all", "pass"])
def test_no_traceback_at_shutdown(kernel: None, last: str) -> None:
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(tests=str(TESTS), last=last)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    assert "Traceback" not in out and "Exception ignored" not in out, out
    ids = {
        int(w)
        for line in run.stdout.splitlines()
        if line.startswith("ids")
        for w in line.split()[1:]
    }
    assert ids
    deadline = time.monotonic() + 5
    while kernel_prog_ids() & ids and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not kernel_prog_ids() & ids
