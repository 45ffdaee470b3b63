"""What the machine offers: privileges, tracefs and bpffs, kernel features, doctor checks.

Kernel layer. ``ensure_*`` functions fix what they can (mounting tracefs when root)
and raise a :class:`BpfnbError` naming the exact fix otherwise. :func:`doctor` runs
every check and reports each one without raising.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bpfnb.build import cache, toolchain
from bpfnb.errors import BpfnbError, KernelFeatureError, PrivilegeError
from bpfnb.object import sections

CAP_PERFMON = 38
CAP_BPF = 39
CAP_SYS_ADMIN = 21
TRACEFS = Path("/sys/kernel/tracing")
DEBUGFS_TRACING = Path("/sys/kernel/debug/tracing")
BPFFS = Path("/sys/fs/bpf")
KPROBE_PMU = Path("/sys/bus/event_source/devices/kprobe")


def effective_capabilities() -> int:
    """Return the process's effective capability mask (CapEff of /proc/self/status)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16)
    return 0


def has_bpf_privileges() -> bool:
    """Return True when the process may load and attach tracing programs."""
    if os.geteuid() == 0:
        return True
    caps = effective_capabilities()
    bpf = bool(caps & (1 << CAP_BPF)) and bool(caps & (1 << CAP_PERFMON))
    return bpf or bool(caps & (1 << CAP_SYS_ADMIN))


def ensure_privileges() -> None:
    """Raise PrivilegeError, with what to do, when the process cannot load programs."""
    if not has_bpf_privileges():
        raise PrivilegeError(
            "loading BPF programs needs root or CAP_BPF + CAP_PERFMON: start Jupyter as "
            "root (sudo jupyter lab ...) or grant the interpreter the capabilities: "
            'sudo setcap cap_bpf,cap_perfmon+ep "$(readlink -f $(which python3))"'
        )


def tracefs_path() -> Path | None:
    """Return where tracefs is mounted (with its ``events`` folder), or None."""
    for path in (TRACEFS, DEBUGFS_TRACING):
        if (path / "events").is_dir():
            return path
    return None


def _mount(fstype: str, target: Path) -> str | None:
    mount = shutil.which("mount") or "/bin/mount"
    run = subprocess.run(
        [mount, "-t", fstype, fstype, str(target)], capture_output=True, text=True, check=False
    )
    return None if run.returncode == 0 else (run.stderr.strip() or f"exit {run.returncode}")


def ensure_tracefs() -> Path:
    """Return the tracefs mount point, mounting tracefs when it is missing and we are root.

    Raises
    ------
    KernelFeatureError
        When tracefs is not mounted and cannot be mounted here.
    """
    found = tracefs_path()
    if found:
        return found
    problem = "not root"
    if os.geteuid() == 0 and TRACEFS.is_dir():
        problem = _mount("tracefs", TRACEFS) or ""
        found = tracefs_path()
        if found:
            return found
    raise KernelFeatureError(
        "tracefs is not mounted, so tracepoints cannot be attached "
        f"({problem or 'mount failed'}): run `sudo mount -t tracefs tracefs {TRACEFS}`"
    )


def bpffs_mounted() -> bool:
    """Return True when a bpf filesystem is mounted at /sys/fs/bpf."""
    try:
        mounts = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return False
    return any(line.split()[1:3] == [str(BPFFS), "bpf"] for line in mounts)


def ensure_bpffs() -> Path:
    """Return the bpf filesystem mount point, mounting it when it is missing and we are root.

    Raises
    ------
    KernelFeatureError
        When bpffs is not mounted at /sys/fs/bpf and cannot be mounted here (pinning
        maps needs it).
    """
    if bpffs_mounted():
        return BPFFS
    problem = "not root"
    if os.geteuid() == 0 and BPFFS.is_dir():
        problem = _mount("bpf", BPFFS) or ""
        if bpffs_mounted():
            return BPFFS
    raise KernelFeatureError(
        "the bpf filesystem is not mounted, so maps cannot be pinned "
        f"({problem or 'mount failed'}): run `sudo mount -t bpf bpf {BPFFS}`"
    )


def kprobes_available() -> bool:
    """Return True when the kernel can attach kprobes (kprobe PMU or kprobe_events)."""
    if KPROBE_PMU.exists():
        return True
    tracefs = tracefs_path()
    return bool(tracefs and (tracefs / "kprobe_events").exists())


def ensure_section_supported(program: str, section: str) -> None:
    """Raise KernelFeatureError when ``section`` needs what this machine lacks.

    kprobes need CONFIG_KPROBES; tracepoints need tracefs (mounted here when missing
    and root).
    """
    need = sections.needs(section)
    if need == "kprobes" and not kprobes_available():
        raise KernelFeatureError(
            f'program {program!r} (SEC("{section}")) needs kprobes, but this kernel is '
            "built without CONFIG_KPROBES (no kprobe PMU in /sys/bus/event_source/devices). "
            'Use a tracepoint (SEC("tracepoint/syscalls/sys_enter_openat")), a raw '
            'tracepoint (SEC("tp_btf/sched_switch")) or fentry/fexit '
            '(SEC("fentry/do_sys_openat2")) where the kernel allows them, or load it with '
            "--no-attach"
        )
    if need == "tracefs":
        ensure_tracefs()


@dataclass(frozen=True)
class Check:
    """One doctor check.

    Attributes
    ----------
    name : str
        What was checked.
    ok : bool
        Whether it passed.
    detail : str
        What was found (a version, a path).
    fix : str
        What to do when it failed; empty when it passed.
    optional : bool
        A failure only limits what can be done (bpffs, kprobes).
    """

    name: str
    ok: bool
    detail: str
    fix: str = ""
    optional: bool = False


def _check(name: str, fn: Callable[[], Check], fix: str = "", optional: bool = False) -> Check:
    """Run one check; whatever it raises becomes a failed check that says so."""
    try:
        return fn()
    except BpfnbError as err:
        return Check(name, False, "missing", str(err))
    except PermissionError as err:
        where = f" ({err.filename})" if err.filename else ""
        return Check(
            name,
            False,
            f"cannot check as uid {os.geteuid()}: permission denied{where}",
            fix or "run bpfnb (and this check) as root or with CAP_BPF + CAP_PERFMON",
            optional,
        )
    except Exception as err:  # a check must report, never raise
        return Check(name, False, f"check failed: {type(err).__name__}: {err}", fix, optional)


def _found(name: str, fn: Callable[[], object]) -> Callable[[], Check]:
    return lambda: Check(name, True, str(fn()))


def _btf_check() -> Check:
    btf = toolchain.VMLINUX_BTF
    if not btf.exists():
        return Check(
            "kernel BTF", False, "missing", "use a kernel built with CONFIG_DEBUG_INFO_BTF=y"
        )
    return Check("kernel BTF", True, f"{btf} ({btf.stat().st_size // 1024} KiB)")


def _clang_check() -> Check:
    clang = toolchain.find_clang()
    run = subprocess.run([clang, "-print-targets"], capture_output=True, text=True, check=False)
    if "bpf" not in run.stdout:
        raise KernelFeatureError(f"{clang} has no BPF target: install Debian's clang")
    version = f"{toolchain.clang_version(clang)}, -mcpu={toolchain.cpu_version(clang)}"
    return Check("clang with the BPF target", True, version)


def _privileges_check() -> Check:
    if has_bpf_privileges():
        return Check("privileges", True, "root" if os.geteuid() == 0 else "CAP_BPF + CAP_PERFMON")
    return Check(
        "privileges", False, f"uid {os.geteuid()} without CAP_BPF/CAP_PERFMON", _privilege_fix()
    )


def _tracefs_check() -> Check:
    tracefs = tracefs_path()
    if tracefs:
        return Check("tracefs", True, str(tracefs))
    return Check(
        "tracefs",
        False,
        "not mounted",
        f"bpfnb mounts it when run as root; or `sudo mount -t tracefs tracefs {TRACEFS}`",
    )


def _bpffs_check() -> Check:
    if bpffs_mounted():
        return Check("bpffs", True, str(BPFFS))
    return Check(
        "bpffs",
        False,
        "not mounted (only needed for pinning)",
        f"`sudo mount -t bpf bpf {BPFFS}`",
        optional=True,
    )


def _kprobes_check() -> Check:
    if kprobes_available():
        return Check("kprobes", True, "available")
    return Check(
        "kprobes",
        False,
        "CONFIG_KPROBES is off",
        "use tracepoints, tp_btf or fentry/fexit programs",
        optional=True,
    )


def _cache_check() -> Check:
    where = cache.cache_location()
    used, limit = cache.cache_size(), cache.size_limit()
    return Check(
        "cache",
        True,
        f"{where}: {used / 2**20:.1f} MiB of {limit / 2**20:.0f} MiB (BPFNB_CACHE_MAX_MB)",
    )


def doctor() -> list[Check]:
    """Run every environment check and return their results (never raises).

    A check that cannot run (e.g. tracefs is root-only and the user is not root)
    reports that instead of raising.
    """
    root_only = "tracefs is readable by root only: run bpfnb as root"
    checks: list[tuple[str, Callable[[], Check], str]] = [
        ("kernel BTF", _btf_check, ""),
        ("clang with the BPF target", _clang_check, "apt-get install clang llvm"),
        (
            "libbpf headers",
            _found("libbpf headers", lambda: toolchain.libbpf_include_dir() / "bpf/bpf_helpers.h"),
            "apt-get install libbpf-dev",
        ),
        ("bpftool", _found("bpftool", toolchain.find_bpftool), "apt-get install bpftool"),
        ("privileges", _privileges_check, ""),
        ("tracefs", _tracefs_check, root_only),
        ("bpffs", _bpffs_check, f"as root: mount -t bpf bpf {BPFFS}"),
        ("kprobes", _kprobes_check, root_only),
        ("cache", _cache_check, "set BPFNB_CACHE_DIR to a directory of your own"),
    ]
    optional = {"bpffs", "kprobes"}
    return [_check(name, fn, fix, name in optional) for name, fn, fix in checks]


def _privilege_fix() -> str:
    try:
        ensure_privileges()
    except PrivilegeError as err:
        return str(err)
    return ""


def format_checks(checks: list[Check]) -> str:
    """Render doctor checks as aligned text lines."""
    width = max(len(c.name) for c in checks)
    lines = []
    for c in checks:
        mark = "ok  " if c.ok else ("warn" if c.optional else "FAIL")
        lines.append(f"[{mark}] {c.name:<{width}}  {c.detail}")
        if c.fix:
            lines.append(f"       {'':<{width}}  fix: {c.fix}")
    return "\n".join(lines)
