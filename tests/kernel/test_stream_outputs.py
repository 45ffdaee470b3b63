"""Regression tests of what streams write and how they stop (issue 14's defects).

* ``record()`` / ``to_csv()`` / ``%bpf export`` never overwrite silently and never write
  through a planted symbolic link;
* a recording on a full disk stops, says so, and leaves no torn last row;
* an ``on_event`` callback that blocks does not hang stopping the program.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import bpfnb
from bpfnb.errors import OutputExistsError, RecordingError, StreamWarning
from bpfnb.kernel.streams import RingBuffer

from conftest import wait_until
from workload import Workload

RING = r"""
struct event { u32 pid; u32 tid; u64 seq; char comm[16]; };
BPFNB_EVENT_TYPE(events, struct event);

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 1 << 20);
} events SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __type(key, u32);
    __type(value, u64);
    __uint(max_entries, 16);
} counts SEC(".maps");

const volatile u32 target = 0;
u64 seq;

SEC("tracepoint/syscalls/sys_enter_getpid")
int on_getpid(void *ctx)
{
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    if (pid != target)
        return 0;
    u64 one = 1, *n = bpf_map_lookup_elem(&counts, &pid);
    if (n)
        __sync_fetch_and_add(n, 1);
    else
        bpf_map_update_elem(&counts, &pid, &one, BPF_NOEXIST);
    struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
    if (!e)
        return 0;
    e->pid = pid;
    e->tid = (u32)bpf_get_current_pid_tgid();
    e->seq = __sync_fetch_and_add(&seq, 1);
    bpf_get_current_comm(e->comm, sizeof(e->comm));
    bpf_ringbuf_submit(e, 0);
    return 0;
}
"""


@pytest.fixture
def workload() -> Iterator[Workload]:
    with Workload() as w:
        yield w


@pytest.fixture
def prog(clean_kernel: tuple[int, int, int], workload: Workload) -> Iterator[bpfnb.Program]:
    with bpfnb.load(RING, name="outputs", globals={"target": workload.pid}) as p:
        yield p


def _ring(prog: bpfnb.Program) -> RingBuffer:
    ring = prog.maps["events"]
    assert isinstance(ring, RingBuffer)
    return ring


def test_record_to_parquet_without_pyarrow_says_how(
    prog: bpfnb.Program, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # an environment without pyarrow
    target = tmp_path / "events.parquet"
    with pytest.raises(RecordingError, match=r"needs pyarrow .*pip install pyarrow"):
        _ring(prog).record(target)
    assert not target.exists()  # nothing created
    assert _ring(prog).warning is None  # the stream goes on, nothing to report


def test_record_refuses_an_existing_file(prog: bpfnb.Program, tmp_path: Path) -> None:
    target = tmp_path / "events.csv"
    target.write_text("precious\n")
    with pytest.raises(OutputExistsError, match="overwrite=True"):
        _ring(prog).record(target)
    assert target.read_text() == "precious\n"
    assert _ring(prog).record(target, overwrite=True) == target
    _ring(prog).record(None)
    assert target.read_text() == ""  # replaced, nothing received yet


def test_record_never_follows_a_planted_symlink(
    prog: bpfnb.Program, workload: Workload, tmp_path: Path
) -> None:
    secret = tmp_path / "shadow"
    secret.write_text("root:secret\n")
    os.chmod(secret, 0o600)
    planted = tmp_path / "events.csv"
    planted.symlink_to(secret)
    ring = _ring(prog)
    with pytest.raises(OutputExistsError, match="symbolic link"):
        ring.record(planted)
    # with overwrite the link itself is replaced, never the file it points at
    path = ring.record(planted, overwrite=True)
    workload.run("getpid", 10)
    assert wait_until(lambda: ring.received == 10)
    ring.record(None)
    assert secret.read_text() == "root:secret\n" and (secret.stat().st_mode & 0o777) == 0o600
    assert path == planted and not planted.is_symlink()
    assert len(planted.read_text().splitlines()) == 11


def test_to_csv_and_export_refuse_to_overwrite(
    prog: bpfnb.Program, workload: Workload, tmp_path: Path
) -> None:
    workload.run("getpid", 3)
    assert wait_until(lambda: _ring(prog).received == 3)
    out = tmp_path / "counts.csv"
    out.write_text("keep\n")
    with pytest.raises(OutputExistsError):
        prog.counts.to_csv(out)
    with pytest.raises(OutputExistsError):
        _ring(prog).to_csv(out)
    assert out.read_text() == "keep\n"
    link = tmp_path / "link.csv"
    link.symlink_to(out)
    with pytest.raises(OutputExistsError):
        prog.counts.to_csv(link)
    prog.counts.to_csv(link, overwrite=True)
    assert out.read_text() == "keep\n" and not link.is_symlink()
    assert "3" in link.read_text()
    assert _ring(prog).to_csv(out, overwrite=True) == out
    assert len(out.read_text().splitlines()) == 4


def test_export_magic_needs_force(
    shell: Any, clean_kernel: tuple[int, int, int], tmp_path: Path
) -> None:
    shell.run(f"%%bpf expf\n{RING}")
    out = tmp_path / "x.csv"
    out.write_text("keep\n")
    result = shell.run_cell(f"%bpf export expf.counts {out}")
    assert isinstance(result.error_in_exec, OutputExistsError)
    assert out.read_text() == "keep\n"
    shell.run(f"%bpf export expf.counts {out} --force")
    assert out.read_text().startswith("key,value")
    shell.run("%bpf stop expf")


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "full"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_record_on_a_full_disk_stops_and_says_so(
    prog: bpfnb.Program, workload: Workload, small_tmpfs: Path
) -> None:
    ring = _ring(prog)
    path = ring.record(small_tmpfs / "events.csv")
    assert path is not None
    for _ in range(40):  # ~60 bytes a row: 64 KiB fill up within a few thousand rows
        workload.run("getpid", 200)
        if ring.warning is not None:
            break
    assert wait_until(lambda: ring.warning is not None)
    assert "events.csv" in ring.warning and "No space left" in ring.warning
    assert any(isinstance(e, RecordingError) for e in ring.errors)
    with pytest.warns(StreamWarning, match="No space left"):
        ring.df()
    text = path.read_text()
    assert text.endswith("\n")  # no torn last row
    rows = list(csv.reader(text.splitlines()))
    assert rows[0] == ["pid", "tid", "seq", "comm", "received_at"]
    assert all(len(r) == 5 for r in rows) and len(rows) > 1
    seqs = [int(r[2]) for r in rows[1:]]
    assert seqs == list(range(len(seqs)))  # whole rows, in order, from the start
    # the recording stopped: nothing more is written
    size = path.stat().st_size
    workload.run("getpid", 50)
    assert wait_until(lambda: ring.received >= len(seqs) + 50)
    assert ring.flush(5.0) and path.stat().st_size == size


def test_a_blocking_callback_does_not_hang_stop(
    clean_kernel: tuple[int, int, int], workload: Workload
) -> None:
    release = threading.Event()
    entered = threading.Event()

    def stuck_callback(frame: object) -> None:
        entered.set()
        release.wait(60)

    prog = bpfnb.load(RING, name="stuck", globals={"target": workload.pid})
    try:
        ring = _ring(prog)
        ring.on_event(stuck_callback)
        workload.run("getpid", 5)
        assert entered.wait(5)
        workload.run("getpid", 5)
        assert wait_until(lambda: ring.received == 10)  # the consumer is not held up
        done = threading.Event()
        caught: list[warnings.WarningMessage] = []

        def stop() -> None:
            with warnings.catch_warnings(record=True) as seen:
                warnings.simplefilter("always")
                prog.close()
            caught.extend(seen)
            done.set()

        stopper = threading.Thread(target=stop)
        stopper.start()
        assert done.wait(10), "closing the program hung on the blocked callback"
        assert prog.closed
        messages = [str(w.message) for w in caught if issubclass(w.category, StreamWarning)]
        assert any("stuck_callback" in m and "did not return" in m for m in messages)
        assert "stuck_callback" in (ring.warning or "")
    finally:
        release.set()
        prog.close()
