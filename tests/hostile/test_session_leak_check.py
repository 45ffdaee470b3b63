"""The session-level check of tests/conftest.py catches what a run leaves behind.

A tiny test suite next to a copy of our conftest leaves a temp file, or a BPF map fd;
its session must end in an error naming the leftover.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import TESTS, require_kernel

LEAKS = {
    "temp file": (
        "import os, tempfile\n"
        "def test_leaves_a_temp_file():\n"
        "    fd, _ = tempfile.mkstemp(prefix='bpfnb-cc-')\n"
        "    os.close(fd)\n",
        "temp files left: ['bpfnb-cc-",
    ),
    "map fd": (
        "from bpfnb.kernel import bpf\n"
        "KEPT = []\n"
        "def test_leaves_a_map():\n"
        "    KEPT.append(bpf.map_create(2, 4, 8, 1, name='leak'))\n",
        "this process holds BPF fds (0, 1, 0), before (0, 0, 0)",
    ),
}


def _run(tmp_path: Path, body: str) -> str:
    shutil.copy(TESTS / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_leak.py").write_text(body)
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS")}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_leak.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0, done.stdout
    return done.stdout


@pytest.mark.parametrize("leak", sorted(LEAKS))
def test_the_session_check_names_what_was_left(tmp_path: Path, leak: str) -> None:
    if leak == "map fd":
        require_kernel()
    body, message = LEAKS[leak]
    out = _run(tmp_path, body)
    assert "1 passed, 1 error" in out, out
    assert "after the whole session: " + message in out, out
