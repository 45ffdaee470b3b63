"""A ring buffer flood for a few seconds into a stream that keeps 10 rows.

Every getpid of the workload offers 32 events. The stream's memory stays bounded,
every offered event is either received or counted lost (exactly), and stopping the
consumer in the middle of the flood returns within a second.
"""

from __future__ import annotations

import resource
import threading
import time
from collections.abc import Iterator

import pytest

import bpfnb
from bpfnb.kernel.streams import RingBuffer

from conftest import wait_until
from workload import Workload

pytestmark = pytest.mark.kernel

PER_CALL = 32
SOURCE = r"""
struct event { u64 seq; u32 pid; u32 i; };
BPFNB_EVENT_TYPE(flood, struct event);
struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 1 << 16); } flood SEC(".maps");
const volatile u32 target = 0;
u64 seq;

SEC("tracepoint/syscalls/sys_enter_getpid")
int flood_ring(void *ctx)
{
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    if (pid != target)
        return 0;
    for (u32 i = 0; i < PER_CALL; i++) {
        struct event *e = bpf_ringbuf_reserve(&flood, sizeof(*e), 0);
        if (!e)
            continue;
        e->seq = __sync_fetch_and_add(&seq, 1);
        e->pid = pid;
        e->i = i;
        bpf_ringbuf_submit(e, 0);
    }
    return 0;
}
"""


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


@pytest.fixture
def workload() -> Iterator[Workload]:
    with Workload() as w:
        yield w


def test_a_flood_into_ten_rows_is_bounded_exact_and_stops_fast(
    clean_kernel: tuple[int, int, int], workload: Workload
) -> None:
    with bpfnb.load(
        SOURCE,
        name="flood",
        globals={"target": workload.pid},
        defines={"PER_CALL": str(PER_CALL)},
    ) as prog:
        ring = prog.maps["flood"]
        assert isinstance(ring, RingBuffer)
        ring.max_rows = 10
        calls = 0
        done = threading.Event()

        def flood() -> None:
            nonlocal calls
            deadline = time.monotonic() + 3.0
            while time.monotonic() < deadline:
                workload.run("getpid", 20_000)
                calls += 20_000
            done.set()

        before = _rss()
        flooder = threading.Thread(target=flood)
        flooder.start()
        peak = 0
        while not done.wait(0.1):
            peak = max(peak, _rss())
            if ring.received > 0:
                assert len(ring.df()) <= 10
        flooder.join()
        assert calls >= 20_000
        offered = calls * PER_CALL
        assert wait_until(lambda: ring.received + ring.lost == offered, 10.0), (
            f"received {ring.received} + lost {ring.lost} != offered {offered}"
        )
        assert ring.lost > 0 and ring.received > 0, "not a flood: nothing was lost"
        frame = ring.df()
        assert len(frame) == 10 and ring.trimmed == ring.received - 10
        assert frame["seq"].is_monotonic_increasing
        assert peak - before < 64 << 20, f"memory grew by {(peak - before) >> 20} MiB"

        # stop in the middle of a second flood: within a second
        flooder = threading.Thread(target=workload.run, args=("getpid", 200_000))
        flooder.start()
        assert wait_until(lambda: ring.received > offered - ring.lost + 1000)
        start = time.monotonic()
        ring.stop()
        stopped = time.monotonic() - start
        flooder.join()
        assert stopped < 1.0, f"stop() took {stopped:.2f}s during a flood"
        assert not ring.running
        # nothing was lost uncounted on the way: restarted, the stream accounts for all
        ring.start()
        offered += 200_000 * PER_CALL
        assert wait_until(lambda: ring.received + ring.lost == offered, 10.0), (
            f"received {ring.received} + lost {ring.lost} != offered {offered}"
        )
