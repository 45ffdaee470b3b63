"""Environment checks: doctor, privileges, tracefs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bpfnb.kernel import system

ROOT = Path(__file__).resolve().parent.parent


def test_doctor_cli_passes_here(kernel: None) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "bpfnb", "doctor"], capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stdout + run.stderr
    for name in ("kernel BTF", "clang with the BPF target", "libbpf headers", "bpftool"):
        assert f"[ok  ] {name}" in run.stdout


def test_tracefs_is_available(kernel: None) -> None:
    path = system.ensure_tracefs()
    assert (path / "events" / "syscalls").is_dir()


def test_unprivileged_user_gets_privilege_error_before_compiling(
    kernel: None, tmp_path: Path
) -> None:
    if not Path("/usr/bin/setpriv").exists():
        pytest.fail("setpriv (util-linux) is missing")
    script = (
        "import bpfnb, sys\n"
        "try:\n"
        "    bpfnb.load('this is not C at all', name='x')\n"
        "except bpfnb.PrivilegeError as e:\n"
        "    print('PRIVILEGE:', e)\n"
    )
    env = dict(os.environ, BPFNB_CACHE_DIR=str(tmp_path / "cache"), HOME=str(tmp_path))
    os.chmod(tmp_path, 0o777)
    run = subprocess.run(
        [
            "/usr/bin/setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            sys.executable,
            "-c",
            script,
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert "PRIVILEGE:" in run.stdout, run.stdout + run.stderr
    assert "CAP_BPF" in run.stdout and "setcap" in run.stdout
    assert not (tmp_path / "cache").exists()  # nothing compiled


def test_kprobe_sections_are_recognised() -> None:
    assert system.section_needs_kprobes("kprobe/do_sys_openat2")
    assert system.section_needs_kprobes("kretprobe/vfs_read")
    assert system.section_needs_kprobes("ksyscall/openat")
    assert not system.section_needs_kprobes("tracepoint/syscalls/sys_enter_openat")
    assert not system.section_needs_kprobes("fentry/do_sys_openat2")
