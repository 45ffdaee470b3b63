"""``record()`` onto a small tmpfs that fills up while events keep coming.

The recording must stop and say so (a :class:`StreamWarning` from the next call, the
stream's ``warning``), the file must end with a whole row, and the stream itself must
keep receiving events and recording elsewhere.
"""

from __future__ import annotations

import csv
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import bpfnb
from bpfnb.errors import RecordingError, StreamWarning
from bpfnb.kernel.streams import RingBuffer

from conftest import require_kernel, wait_until
from workload import Workload

pytestmark = pytest.mark.kernel

SOURCE = r"""
struct event { u64 seq; u32 pid; char pad[200]; };
BPFNB_EVENT_TYPE(flood, struct event);
struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 1 << 22); } flood SEC(".maps");
const volatile u32 target = 0;
u64 seq;

SEC("tracepoint/syscalls/sys_enter_getpid")
int full_tmpfs(void *ctx)
{
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    if (pid != target)
        return 0;
    struct event *e = bpf_ringbuf_reserve(&flood, sizeof(*e), 0);
    if (!e)
        return 0;
    __builtin_memset(e->pad, 'x', sizeof(e->pad) - 1);
    e->pad[sizeof(e->pad) - 1] = 0;
    e->pid = pid;
    e->seq = __sync_fetch_and_add(&seq, 1);
    bpf_ringbuf_submit(e, 0);
    return 0;
}
"""


@pytest.fixture
def tmpfs() -> Iterator[Path]:
    """A fresh 1 MiB tmpfs, unmounted after the test."""
    require_kernel()
    mount = Path(tempfile.mkdtemp(prefix="full-tmpfs-"))
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)
        mount.rmdir()


@pytest.fixture
def workload() -> Iterator[Workload]:
    with Workload() as w:
        yield w


@pytest.fixture
def ring(clean_kernel: tuple[int, int, int], workload: Workload) -> Iterator[RingBuffer]:
    with bpfnb.load(SOURCE, name="full_tmpfs", globals={"target": workload.pid}) as prog:
        stream = prog.maps["flood"]
        assert isinstance(stream, RingBuffer)
        yield stream


def _fill(ring: RingBuffer, workload: Workload) -> None:
    """Send events until the recording fails (1 MiB holds ~4000 rows of ~230 bytes)."""
    for _ in range(60):
        workload.run("getpid", 500)
        ring.flush(5.0)
        if ring.warning is not None:
            return
    pytest.fail("the tmpfs never filled up")


def test_csv_recording_stops_whole_and_the_stream_goes_on(
    ring: RingBuffer, workload: Workload, tmpfs: Path, tmp_path: Path
) -> None:
    path = ring.record(tmpfs / "events.csv")
    assert path is not None
    _fill(ring, workload)
    assert ring.warning is not None
    assert "events.csv" in ring.warning and "No space left" in ring.warning, ring.warning
    assert any(isinstance(e, RecordingError) for e in ring.errors)
    with pytest.warns(StreamWarning, match="No space left"):
        ring.df()
    text = path.read_text()
    assert text.endswith("\n")
    rows = list(csv.reader(text.splitlines()))
    assert rows[0] == ["seq", "pid", "pad", "received_at"]
    seqs = [int(r[0]) for r in rows[1:]]
    assert seqs and seqs == list(range(len(seqs)))
    assert all(len(r) == 4 and r[2] == "x" * 199 for r in rows[1:])
    # the stream keeps working: more events are received, and recording elsewhere works
    received = ring.received
    workload.run("getpid", 100)
    assert wait_until(lambda: ring.received == received + 100)
    elsewhere = ring.record(tmp_path / "more.csv")
    assert elsewhere is not None
    workload.run("getpid", 10)
    assert wait_until(lambda: ring.received == received + 110) and ring.flush(5.0)
    ring.record(None)
    more = list(csv.reader(elsewhere.read_text().splitlines()))
    assert [int(r[0]) for r in more[1:]] == list(range(received + 100, received + 110))


def test_recording_onto_a_tmpfs_that_is_already_full_fails_at_once(
    ring: RingBuffer, workload: Workload, tmpfs: Path
) -> None:
    filler = tmpfs / "filler"
    with open(filler, "wb") as f, pytest.raises(OSError):
        while True:
            f.write(b"\0" * 65536)
            f.flush()
    path = ring.record(tmpfs / "events.csv")
    assert path is not None
    workload.run("getpid", 20)
    assert wait_until(lambda: ring.warning is not None)
    assert "No space left" in ring.warning and "after 0 rows" in ring.warning, ring.warning
    assert path.read_text() == ""
    with pytest.warns(StreamWarning, match="No space left"):
        ring.record(None)
    assert wait_until(lambda: ring.received == 20)
    assert len(ring.df()) == 20
