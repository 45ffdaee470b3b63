"""The tools and kernel facts a compile depends on.

Finding clang, bpftool and libbpf's headers; clang's version, the newest ``-mcpu``
both clang and the running kernel accept, the ``__TARGET_ARCH_*`` of this machine,
clang's default include directories; the running kernel's identity (release, version
and a hash of its BTF) and its ``vmlinux.h``, generated once per kernel with bpftool and
kept in the cache (``kernel-ID/vmlinux.h``, with a SHA-256 sidecar).

Tools run without a shell; every failure is a :class:`~bpfnb.errors.ToolMissingError`
or :class:`~bpfnb.errors.KernelFeatureError` that says what to install or enable.
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

from bpfnb.build import cache
from bpfnb.errors import CompileError, KernelFeatureError, ToolMissingError

VMLINUX_BTF = Path("/sys/kernel/btf/vmlinux")
INCLUDE_DIR = Path(__file__).resolve().parent.parent / "include"
LIBBPF_HEADERS = ("bpf/bpf_helpers.h", "bpf/bpf_tracing.h", "bpf/bpf_core_read.h")
SYSTEM_INCLUDE_DIRS = (Path("/usr/include"), Path("/usr/local/include"))
_ARCHES = {
    "x86_64": "x86",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv7l": "arm",
    "s390x": "s390",
    "ppc64le": "powerpc",
    "riscv64": "riscv",
    "loongarch64": "loongarch",
}
# vmlinux.h files checked against their sidecar in this process: path -> (size, mtime, ino).
_CHECKED: dict[str, tuple[int, int, int]] = {}


def find_clang() -> str:
    """Return the path of clang, or raise ToolMissingError with the fix."""
    path = os.environ.get("BPFNB_CLANG") or shutil.which("clang")
    if not path:
        raise ToolMissingError(
            "clang is not installed: run `apt-get install clang llvm` (or `make setup`)"
        )
    return path


def find_bpftool() -> str:
    """Return the path of bpftool, or raise ToolMissingError with the fix."""
    path = shutil.which("bpftool") or next(
        (p for p in ("/usr/sbin/bpftool", "/sbin/bpftool") if os.access(p, os.X_OK)), None
    )
    if not path:
        raise ToolMissingError("bpftool is not installed: run `apt-get install bpftool`")
    return path


def libbpf_include_dir() -> Path:
    """Return the directory holding ``bpf/bpf_helpers.h``, or raise ToolMissingError."""
    for base in SYSTEM_INCLUDE_DIRS:
        if all((base / h).is_file() for h in LIBBPF_HEADERS):
            return base
    raise ToolMissingError(
        "libbpf headers (bpf/bpf_helpers.h) are missing: run `apt-get install libbpf-dev`"
    )


@lru_cache(maxsize=4)
def clang_version(clang: str) -> str:
    """Return clang's first version line (cached per process)."""
    out = subprocess.run([clang, "--version"], capture_output=True, text=True, check=False)
    return out.stdout.splitlines()[0] if out.stdout else clang


@lru_cache(maxsize=4)
def cpu_version(clang: str) -> str:
    """Return the newest ``-mcpu`` both clang and the running kernel accept.

    The kernel takes v4 (sign extension, byte swaps, 32-bit offsets) from 6.6 on and
    v3 (ALU32 atomics, 32-bit jumps) from 5.1 on; clang 14 knows up to v3.
    """
    out = subprocess.run(
        [clang, "-target", "bpf", "-mcpu=help", "-x", "c", "-", "-fsyntax-only"],
        input="",
        capture_output=True,
        text=True,
        check=False,
    )
    known = set(re.findall(r"\bv(\d)\b", out.stdout + out.stderr))
    kernel = tuple(int(x) for x in re.findall(r"\d+", platform.release())[:2])
    if "4" in known and kernel >= (6, 6):
        return "v4"
    return "v3"


@lru_cache(maxsize=4)
def system_include_dirs(clang: str) -> tuple[str, ...]:
    """Return the directories clang searches for ``<...>`` by default with ``-target bpf``.

    Read from ``clang -v`` once per process (clang's resource directory,
    ``/usr/local/include``, ``/usr/include``...).
    """
    out = subprocess.run(
        [clang, "-target", "bpf", "-E", "-v", "-x", "c", "-", "-o", os.devnull],
        input="",
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "LC_ALL": "C"},
    )
    dirs: list[str] = []
    inside = False
    for line in out.stderr.splitlines():
        if line.startswith("#include <...> search starts here"):
            inside = True
        elif line.startswith("End of search list"):
            break
        elif inside and line.startswith(" "):
            dirs.append(os.path.normpath(line.strip().removesuffix(" (framework directory)")))
    return tuple(dirs) or tuple(str(d) for d in reversed(SYSTEM_INCLUDE_DIRS))


def target_arch() -> str:
    """Return the ``__TARGET_ARCH_*`` suffix for this machine."""
    machine = platform.machine()
    try:
        return _ARCHES[machine]
    except KeyError:
        raise CompileError(f"bpf_tracing.h does not know this architecture: {machine}") from None


@lru_cache(maxsize=1)
def kernel_identity() -> str:
    """Return a short hash identifying the running kernel and its BTF."""
    if not VMLINUX_BTF.exists():
        raise KernelFeatureError(
            "the kernel has no BTF (/sys/kernel/btf/vmlinux is missing): bpfnb needs a kernel "
            "built with CONFIG_DEBUG_INFO_BTF=y"
        )
    uname = os.uname()
    digest = hashlib.sha256(f"{uname.release}\n{uname.version}\n".encode())
    digest.update(VMLINUX_BTF.read_bytes())
    return digest.hexdigest()[:16]


def kernel_dir() -> Path:
    """Return the running kernel's cache directory (it holds ``vmlinux.h``)."""
    return cache.private_dir(cache.cache_root() / f"kernel-{kernel_identity()}")


def vmlinux_header() -> Path:
    """Return the path of this kernel's ``vmlinux.h``, generating it when missing.

    The header lives in ``CACHE/kernel-ID/``, ID hashing the kernel's release, version
    and BTF, with a sidecar SHA-256: a truncated or altered file is regenerated. A
    file already checked in this process is checked again only when its size,
    modification time or inode changed.
    """
    for _ in range(3):
        directory = kernel_dir()
        header = directory / "vmlinux.h"
        stamp = directory / "vmlinux.h.sha256"
        if _valid_stamp(header, stamp):
            return header
        with cache.locked(directory) as live:
            if not live:
                continue
            if _valid_stamp(header, stamp):
                return header
            out = subprocess.run(
                [find_bpftool(), "btf", "dump", "file", str(VMLINUX_BTF), "format", "c"],
                capture_output=True,
                check=False,
            )
            if out.returncode != 0 or b"__VMLINUX_H__" not in out.stdout:
                raise ToolMissingError(
                    "bpftool could not generate vmlinux.h from /sys/kernel/btf/vmlinux: "
                    + out.stderr.decode(errors="replace").strip()
                )
            cache.write_atomic(header, out.stdout)
            cache.write_atomic(stamp, cache.sha256(out.stdout).encode())
            return header
    raise ToolMissingError(
        f"could not create vmlinux.h in {cache.cache_root()}: it keeps vanishing"
    )


def _valid_stamp(path: Path, stamp: Path) -> bool:
    try:
        st = os.stat(path)
        signature = (st.st_size, st.st_mtime_ns, st.st_ino)
        if _CHECKED.get(str(path)) == signature:
            return True
        valid = cache.sha256(path.read_bytes()) == stamp.read_text().strip()
    except OSError:
        return False
    if valid:
        _CHECKED[str(path)] = signature
    return valid
