"""Environment checks: doctor, privileges, tracefs."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from bpfnb.kernel import system
from bpfnb.object import sections

from programs import GETPID_COUNTER


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
    assert sections.needs("kprobe/do_sys_openat2") == "kprobes"
    assert sections.needs("kretprobe/vfs_read") == "kprobes"
    assert sections.needs("ksyscall/openat") == "kprobes"
    assert sections.needs("tracepoint/syscalls/sys_enter_openat") == "tracefs"
    assert sections.needs("fentry/do_sys_openat2") == "trampoline"
    assert sections.attach_kind("tp/sched/sched_switch") == "tracepoint"
    assert sections.attach_kind("tp/sched") is None
    assert sections.attach_kind("uprobe") is None
    assert sections.attach_kind("perf_event") is None
    assert sections.hook_of("tracepoint/sched/sched_switch") == "sched_switch"
    assert sections.hook_of("tp_btf/sched_switch") == sections.hook_of("raw_tp/sched_switch")


def test_compile_only_needs_no_privileges(kernel: None) -> None:
    """``%%bpf NAME --compile-only`` works for a user without BPF privileges."""
    with tempfile.TemporaryDirectory(prefix="bpfnb-nobody-") as tmp:
        _compile_only_as_nobody(Path(tmp))


def _compile_only_as_nobody(tmp_path: Path) -> None:
    if not Path("/usr/bin/setpriv").exists():
        pytest.fail("setpriv (util-linux) is missing")
    cell = "%%bpf cc --compile-only\n" + GETPID_COUNTER
    script = (
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "ip = InteractiveShell.instance()\n"
        "assert ip.run_cell('%load_ext bpfnb').success\n"
        f"result = ip.run_cell({cell!r})\n"
        "print('RESULT:', result.success, repr(result.error_in_exec))\n"
    )
    env = dict(os.environ, BPFNB_CACHE_DIR=str(tmp_path / "cache"), HOME=str(tmp_path))
    os.chmod(tmp_path, 0o777)
    run = subprocess.run(
        ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
         "--inh-caps=-all", sys.executable, "-c", script],
        capture_output=True, text=True, env=env, cwd=tmp_path, check=False, timeout=120,
    )  # fmt: skip
    assert "RESULT: True None" in run.stdout, run.stdout + run.stderr
    assert "cc: compiled in" in run.stdout and "on_getpid [tracepoint/syscalls" in run.stdout
    objects = list((tmp_path / "cache").rglob("*.o"))
    assert objects and all(o.stat().st_uid == 65534 for o in objects)


def test_doctor_reports_for_an_unprivileged_user(kernel: None) -> None:
    """``python -m bpfnb doctor`` as uid 65534: every check reports, nothing raises."""
    with tempfile.TemporaryDirectory(prefix="bpfnb-nobody-") as tmp:
        os.chmod(tmp, 0o777)
        env = dict(os.environ, BPFNB_CACHE_DIR=str(Path(tmp) / "cache"), HOME=tmp)
        run = subprocess.run(
            ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
             "--inh-caps=-all", sys.executable, "-m", "bpfnb", "doctor"],
            capture_output=True, text=True, env=env, cwd=tmp, check=False, timeout=120,
        )  # fmt: skip
    out = run.stdout + run.stderr
    assert "Traceback" not in out and run.returncode == 1, out  # 1: a required check failed
    assert "[FAIL] privileges" in out and "setcap" in out
    names = [line[7:].split()[0] for line in run.stdout.splitlines() if line.startswith("[")]
    assert {"kernel", "clang", "privileges", "tracefs", "bpffs", "kprobes", "cache"} <= set(names)
    assert "[ok  ] cache" in out and "MiB" in out
