"""Shared pytest fixtures.

The whole session runs with a private temp directory (``TMPDIR``, inherited by the
kernels and tools the tests start) and ends with a check that nothing is left: no BPF
object, no ``bpfnb-*`` temp entry (see :func:`nothing_left_after_the_session`).

Kernel tests use the ``kernel`` fixture (or the ``kernel`` marker plus
``require_kernel()``): outside CI they skip when the machine cannot run BPF
programs; with ``CI=true`` they fail instead, because a skipped kernel test hides
breakage.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
DATA = TESTS / "data"


def _kernel_problem() -> str | None:
    """Return why this machine cannot run kernel tests, or None when it can."""
    if os.geteuid() != 0:
        return "kernel tests need root"
    if not Path("/sys/kernel/btf/vmlinux").exists():
        return "no kernel BTF at /sys/kernel/btf/vmlinux"
    if shutil.which("clang") is None:
        return "clang is not installed (run `make setup`)"
    if shutil.which("bpftool") is None and not Path("/usr/sbin/bpftool").exists():
        return "bpftool is not installed (run `make setup`)"
    if not Path("/usr/include/bpf/bpf_helpers.h").exists():
        return "libbpf headers are missing (apt-get install libbpf-dev)"
    return None


def require_kernel() -> None:
    """Skip (locally) or fail (CI=true) when the kernel tests cannot run here."""
    problem = _kernel_problem()
    if problem is None:
        return
    if IN_CI:
        pytest.fail(f"kernel test cannot run in CI: {problem}")
    pytest.skip(problem)


@pytest.fixture
def kernel() -> None:
    """Require a BPF-capable kernel (fails under CI=true instead of skipping)."""
    require_kernel()


_FD_KINDS = {"anon_inode:bpf-prog": 0, "anon_inode:bpf-map": 1, "anon_inode:bpf_link": 2}


def own_bpf_fds() -> tuple[int, int, int]:
    """Return how many program, map and link fds this process holds."""
    counts = [0, 0, 0]
    for name in os.listdir("/proc/self/fd"):
        try:
            kind = _FD_KINDS.get(os.readlink(f"/proc/self/fd/{name}"))
        except OSError:
            continue
        if kind is not None:
            counts[kind] += 1
    return counts[0], counts[1], counts[2]


def bpf_object_counts() -> tuple[int, int, int]:
    """Return how many BPF programs, maps and links there are now.

    In CI (the only BPF user on its machine) these are the kernel's totals, so a
    leak anywhere, also in a child process, shows. Elsewhere other BPF users (and
    other test runs) come and go, so only the objects this process holds are
    counted.
    """
    if not IN_CI:
        return own_bpf_fds()
    return _kernel_object_counts()


def kernel_objects(what: str) -> list[dict[str, Any]]:
    """Every BPF ``what`` (``prog``, ``map`` or ``link``) in the kernel now, as bpftool lists it."""
    out = subprocess.run(
        ["bpftool", "-j", what, "list"], capture_output=True, text=True, check=True
    ).stdout
    objects: list[dict[str, Any]] = json.loads(out or "[]")
    return objects


def _kernel_object_counts() -> tuple[int, int, int]:
    progs, maps, links = (len(kernel_objects(what)) for what in ("prog", "map", "link"))
    return progs, maps, links


def settled_object_counts(timeout: float = 3.0) -> tuple[int, int, int]:
    """:func:`bpf_object_counts` once the kernel's deferred frees have run.

    The kernel frees maps and programs after RCU grace periods and from work queues
    (a prog array's slots are emptied that way), so objects an earlier test closed can
    still be counted for a few milliseconds. A baseline taken then would make the
    test's own check see them "vanish". In CI, wait until three reads 30 ms apart agree.
    """
    now = bpf_object_counts()
    if not IN_CI:
        return now
    deadline = time.monotonic() + timeout
    same = 0
    while same < 2 and time.monotonic() < deadline:
        time.sleep(0.03)
        again = _kernel_object_counts()
        same = same + 1 if again == now else 0
        now = again
    return now


def kernel_prog_ids() -> set[int]:
    """Return the ids of every BPF program loaded in the kernel now."""
    return {int(p["id"]) for p in kernel_objects("prog")}


def wait_for_counts(expected: tuple[int, int, int], timeout: float = 5.0) -> tuple[int, int, int]:
    """Poll until the kernel's object counts equal ``expected`` (frees are deferred)."""
    deadline = time.monotonic() + timeout
    now = bpf_object_counts()
    while now != expected and time.monotonic() < deadline:
        time.sleep(0.05)
        now = bpf_object_counts()
    return now


@pytest.fixture
def clean_kernel(kernel: None) -> Iterator[tuple[int, int, int]]:
    """Yield the kernel's object counts before the test; check nothing leaked after."""
    before = settled_object_counts()
    yield before
    after = wait_for_counts(before)
    assert after == before, f"BPF objects leaked: before {before}, after {after}"


@pytest.fixture(scope="module")
def shell() -> Iterator[Any]:
    """A real InteractiveShell with bpfnb loaded (see tests/shell.py); stops its programs."""
    from shell import TestingShell

    os.environ.setdefault(
        "BPFNB_CACHE_DIR", os.environ.get("BPFNB_TEST_CACHE", "/tmp/bpfnb-test-cache")
    )
    testing = TestingShell()
    yield testing
    testing.close()


def wait_until(check: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll ``check`` until it is true or ``timeout`` seconds passed; return its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()


def refresh_threads() -> list[str]:
    """Names of the live views' refresh threads running now."""
    return [t.name for t in threading.enumerate() if t.name.startswith("bpfnb-refresh-")]


@pytest.fixture(scope="module")
def codec_spec() -> Any:
    """The committed test object with libbpf-tools-style types (tests/data/codec.bpf.o)."""
    from bpfnb.object.spec import ObjectSpec

    return ObjectSpec.from_file(DATA / "codec.bpf.o")


def codec_of(spec: Any, name: str) -> Any:
    """The codec of a type of ``spec`` named in C (``"struct conn"``)."""
    from bpfnb.codec.plan import codec_for

    t = spec.find_type(name)
    assert t is not None, name
    return codec_for(spec.btf, t)


# --------------------------------------------------------------------------------------
# Nothing left after the whole session

#: Where bpfnb or the tests could leave ``bpfnb-*`` entries outside a test's tmp_path.
_SHARED_TEMP_DIRS = (Path("/tmp"), Path("/var/tmp"))
#: The compile cache the tests share on purpose (kept between runs).
_TEST_CACHE = Path(os.environ.get("BPFNB_TEST_CACHE", "/tmp/bpfnb-test-cache"))


#: Shared on purpose by the tests' helpers (tests/native.py's compiled stack target).
_TEST_HELPERS = ("bpfnb-stack-target-",)


def _bpfnb_entries(folder: Path) -> set[Path]:
    """The ``bpfnb-*`` files and folders directly in ``folder`` (the tests' own aside)."""
    try:
        found = {
            p
            for p in folder.iterdir()
            if p.name.startswith("bpfnb-") and not p.name.startswith(_TEST_HELPERS)
        }
    except OSError:
        return set()
    return found - {_TEST_CACHE}


def _kernel_object_ids() -> dict[str, set[int]]:
    """Ids of every BPF program, map and link in the kernel now."""
    return {what: {int(o["id"]) for o in kernel_objects(what)} for what in ("prog", "map", "link")}


def _private_temp_dir() -> Path:
    """A temp directory for this session only, world-writable and sticky like /tmp.

    Tests that drop privileges (``setpriv --reuid=65534``) must be able to use it as
    they would use /tmp.
    """
    folder = Path(tempfile.mkdtemp(prefix="pytest-bpfnb-session-"))
    folder.chmod(0o1777)
    return folder


@pytest.fixture(scope="session", autouse=True)
def nothing_left_after_the_session() -> Iterator[None]:
    """After the whole session: nothing left in the kernel and no temp files.

    Every temp file of this session (bpfnb's, the tests', those of the kernels and
    tools they start) goes to a private ``TMPDIR``; at the end it must hold no
    ``bpfnb-*`` entry. Under ``CI=true`` (the only BPF user on its machine) the
    kernel's programs, maps and links and the ``bpfnb-*`` entries of /tmp and
    /var/tmp must also be exactly those of before the session. Elsewhere, where other
    runs come and go, only this process's BPF fds are compared.
    """
    private = _private_temp_dir()
    saved = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = str(private)
    tempfile.tempdir = None  # recomputed from TMPDIR
    shared_before = {d: _bpfnb_entries(d) for d in _SHARED_TEMP_DIRS}
    kernel_before = _kernel_object_ids() if IN_CI and _kernel_problem() is None else None
    fds_before = own_bpf_fds()
    try:
        yield
        problems = []
        if not wait_until(lambda: own_bpf_fds() == fds_before, timeout=10):
            problems.append(f"this process holds BPF fds {own_bpf_fds()}, before {fds_before}")
        left = sorted(p.name for p in _bpfnb_entries(private))
        if left:
            problems.append(f"temp files left: {left}")
        if kernel_before is not None:

            def new_objects() -> dict[str, set[int]]:
                now = _kernel_object_ids()
                return {
                    k: ids - kernel_before[k] for k, ids in now.items() if ids - kernel_before[k]
                }

            if not wait_until(lambda: not new_objects(), timeout=10):
                problems.append(f"BPF objects left in the kernel: {new_objects()}")
        if IN_CI:
            for folder, before in shared_before.items():
                new = sorted(p.name for p in _bpfnb_entries(folder) - before)
                if new:
                    problems.append(f"left in {folder}: {new}")
        assert not problems, "after the whole session: " + "; ".join(problems)
    finally:
        if saved is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = saved
        tempfile.tempdir = None
        shutil.rmtree(private, ignore_errors=True)
