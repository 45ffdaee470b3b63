"""Symlinks planted by an unprivileged user (uid 65534, through ``setpriv``) are never followed.

The attacker owns the directory the user (root) writes into and plants, beforehand, a
link at every name bpfnb will write there (exports, records, the compile cache) pointing
at a root-owned victim. bpfnb must refuse or replace the link itself; the victim must
keep its content and mode, and nothing may be created through a link.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from bpfnb import pipeline
from bpfnb.build import cache
from bpfnb.errors import BpfnbError, OutputExistsError
from bpfnb.kernel.program import Program

from conftest import require_kernel, wait_until
from workload import Workload

pytestmark = pytest.mark.kernel

NOBODY = 65534
SOURCE = r"""
const volatile u32 target = 0;
struct event { u32 pid; };
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 16);
         __type(key, u32); __type(value, u64); } plant_counts SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 4096); } plant_events SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_getpid")
int symlink_plants(void *ctx)
{
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    if (pid != target)
        return 0;
    u64 one = 1, *n = bpf_map_lookup_elem(&plant_counts, &pid);
    if (n)
        __sync_fetch_and_add(n, 1);
    else
        bpf_map_update_elem(&plant_counts, &pid, &one, BPF_ANY);
    struct event *e = bpf_ringbuf_reserve(&plant_events, sizeof(*e), 0);
    if (e) {
        e->pid = pid;
        bpf_ringbuf_submit(e, 0);
    }
    return 0;
}
"""


def as_nobody(*argv: str) -> None:
    """Run a command as uid/gid 65534 with no supplementary groups."""
    subprocess.run(
        ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *argv],
        check=True,
        capture_output=True,
    )


@pytest.fixture
def field() -> Iterator[tuple[Path, Path, Path]]:
    """(attacker's directory, victim file, victim directory), all fresh.

    In the temp directory (pytest's own tmp_path is closed to other users).
    """
    if shutil.which("setpriv") is None:
        pytest.fail("setpriv (util-linux) is missing")
    tmp_path = Path(tempfile.mkdtemp(prefix="plants-"))
    tmp_path.chmod(0o755)
    attacker = tmp_path / "shared"
    attacker.mkdir()
    os.chown(attacker, NOBODY, NOBODY)
    victim = tmp_path / "victim.txt"
    victim.write_text("secret\n")
    victim.chmod(0o600)
    victim_dir = tmp_path / "victim-dir"
    victim_dir.mkdir(mode=0o700)
    yield attacker, victim, victim_dir
    assert victim.read_text() == "secret\n", "the victim file was written through a link"
    assert victim.stat().st_mode & 0o777 == 0o600 and victim.stat().st_uid == 0
    assert list(victim_dir.iterdir()) == [], "files were created through a linked directory"
    assert victim_dir.stat().st_mode & 0o777 == 0o700
    shutil.rmtree(tmp_path)


@pytest.fixture(scope="module")
def workload() -> Iterator[Workload]:
    with Workload() as running:
        yield running


@pytest.fixture(scope="module")
def prog(workload: Workload) -> Iterator[Program]:
    require_kernel()
    loaded = pipeline.load(SOURCE, name="symlink_plants", globals={"target": workload.pid})
    try:
        yield loaded
    finally:
        loaded.close()


def _plant(attacker: Path, name: str, target: Path) -> Path:
    link = attacker / name
    as_nobody("ln", "-s", str(target), str(link))
    assert link.is_symlink() and link.lstat().st_uid == NOBODY
    return link


def test_an_export_refuses_or_replaces_a_planted_link(
    field: tuple[Path, Path, Path], prog: Program, workload: Workload
) -> None:
    attacker, victim, _ = field
    workload.run("getpid", 3)
    link = _plant(attacker, "counts.csv", victim)
    with pytest.raises(OutputExistsError, match="a symbolic link"):
        prog.plant_counts.to_csv(link)
    written = prog.plant_counts.to_csv(link, overwrite=True)
    assert not written.is_symlink() and written.stat().st_uid == 0
    assert written.read_text().splitlines()[1:] == [f"{workload.pid},3"]


def test_a_record_refuses_a_planted_link(field: tuple[Path, Path, Path], prog: Program) -> None:
    attacker, victim, _ = field
    link = _plant(attacker, "events.csv", victim)
    with pytest.raises(OutputExistsError, match="a symbolic link"):
        prog.plant_events.record(link)
    assert prog.plant_events.record(None) is None


def test_a_record_replaces_a_planted_link_only_when_asked(
    field: tuple[Path, Path, Path], prog: Program, workload: Workload
) -> None:
    attacker, victim, _ = field
    link = _plant(attacker, "events.csv", victim)
    ring = prog.plant_events
    written = ring.record(link, overwrite=True)
    try:
        received = ring.received
        workload.run("getpid", 5)
        assert wait_until(lambda: ring.received == received + 5), (received, ring.received)
    finally:
        ring.record(None)
    assert written == link and not link.is_symlink() and link.stat().st_uid == 0
    rows = [line.split(",") for line in link.read_text().splitlines()]
    assert rows[0] == ["pid", "received_at"]
    assert [row[0] for row in rows[1:]] == [str(workload.pid)] * 5


def test_a_planted_cache_link_is_refused(
    field: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    attacker, _, victim_dir = field
    link = _plant(attacker, "cache", victim_dir)
    monkeypatch.setenv("BPFNB_CACHE_DIR", str(link))
    with pytest.raises(BpfnbError, match="cache"):
        cache.cache_root()
    with pytest.raises(BpfnbError, match="cache"):
        pipeline.build_only(SOURCE, "symlink_plants")


def test_a_cache_in_a_directory_the_attacker_owns_is_refused(
    field: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    attacker, _, _ = field
    as_nobody("mkdir", "-m", "0777", str(attacker / "cache"))
    monkeypatch.setenv("BPFNB_CACHE_DIR", str(attacker / "cache"))
    with pytest.raises(BpfnbError, match="cache"):
        cache.cache_root()
    assert (attacker / "cache").stat().st_mode & 0o777 == 0o777, "it was repaired, not refused"
