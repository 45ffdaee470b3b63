"""Kernel tests of drop counting: every lost event and every dropped update is counted.

Each case makes the kernel drop data on purpose (a small ring with its consumer
paused, a 16-entry hash fed 40 keys) and checks the exact sum: received + lost ==
submitted, stored + dropped == offered.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import bpfnb
from bpfnb.kernel.streams import PerfEventArray, RingBuffer

from workload import Workload

LONG_RING = "a_ring_whose_name_is_forty_characters_xx"
assert len(LONG_RING) == 40

EVENT = "struct event { u32 pid; u64 seq; };\n"
FILTER = """
const volatile u32 target = 0;
u64 seq;
"""


def _ring_cell(ring: str, body: str) -> str:
    return (
        EVENT
        + FILTER
        + f"""
struct {{
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 4096);
}} {ring} SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_getpid")
int on_getpid(void *ctx)
{{
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    if (pid != target)
        return 0;
{body}
    return 0;
}}
"""
    )


RESERVE_BODY = """
    struct event *e = bpf_ringbuf_reserve(&{ring}, sizeof(*e), 0);
    if (!e)
        return 0;
    e->pid = pid;
    e->seq = __sync_fetch_and_add(&seq, 1);
    bpf_ringbuf_submit(e, 0);
"""

POINTER_BODY = """
    void *rb = &events;
    struct event e = {.pid = pid, .seq = __sync_fetch_and_add(&seq, 1)};
    bpf_ringbuf_output(rb, &e, sizeof(e), 0);
"""

DYNPTR_BODY = """
    struct bpf_dynptr ptr;
    struct event e = {.pid = pid, .seq = __sync_fetch_and_add(&seq, 1)};
    if (bpf_ringbuf_reserve_dynptr(&events, sizeof(e), 0, &ptr)) {
        bpf_ringbuf_discard_dynptr(&ptr, 0);
        return 0;
    }
    bpf_dynptr_write(&ptr, 0, &e, sizeof(e), 0);
    bpf_ringbuf_submit_dynptr(&ptr, 0);
"""


def _overflow(prog: bpfnb.Program, ring: str, w: Workload, n: int) -> tuple[int, int]:
    """Make ``n`` events with the consumer paused; return (received, lost)."""
    stream = prog.maps[ring]
    assert isinstance(stream, (RingBuffer, PerfEventArray))
    stream.stop()
    w.run("getpid", n)
    got = stream.drain()
    return got, stream.lost


@pytest.mark.parametrize(
    ("ring", "body"),
    [
        (LONG_RING, RESERVE_BODY.format(ring=LONG_RING)),
        ("events", POINTER_BODY),
        ("events", DYNPTR_BODY),
    ],
    ids=["forty_char_name", "ring_through_pointer", "reserve_dynptr"],
)
def test_every_lost_ring_event_is_counted(
    clean_kernel: tuple[int, int, int], ring: str, body: str
) -> None:
    n = 1000
    with Workload() as w:
        cell = _ring_cell(ring, body)
        with bpfnb.load(cell, name="drops_ring", globals={"target": w.pid}) as p:
            got, lost = _overflow(p, ring, w, n)
            assert 0 < got < n
            assert got + lost == n
            assert p.maps[ring].lost_note == ""
            assert len(p.maps[ring].df()) == got


PERF_CELL = (
    EVENT
    + FILTER
    + """
struct {
    __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
    __uint(key_size, sizeof(u32));
    __uint(value_size, sizeof(u32));
} events SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_getpid")
int on_getpid(void *ctx)
{
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    if (pid != target)
        return 0;
    struct event e = {.pid = pid, .seq = __sync_fetch_and_add(&seq, 1)};
    bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, &e, sizeof(e));
    return 0;
}
"""
)


def test_one_page_perf_buffer_counts_every_lost_sample(
    clean_kernel: tuple[int, int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(PerfEventArray, "pages", 1)
    n = 3000
    with Workload() as w, bpfnb.load(PERF_CELL, name="drops_perf", globals={"target": w.pid}) as p:
        got, lost = _overflow(p, "events", w, n)
        assert 0 < got < n
        # No later sample arrives to carry a PERF_RECORD_LOST: the count is still exact.
        assert got + lost == n
        events = p.maps["events"]
        events.start()
        w.run("getpid", 5)
        deadline = time.monotonic() + 5
        while events.received < got + 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert events.received == got + 5 and events.lost == lost


def test_helper_reached_through_a_header_counts_and_types(
    clean_kernel: tuple[int, int, int], tmp_path: Path
) -> None:
    (tmp_path / "submit.h").write_text(
        """
#ifndef SUBMIT_H
#define SUBMIT_H
struct hdr_event { u32 pid; u64 seq; };
struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 4096);
} events SEC(".maps");
static __always_inline long submit_event(void *data, u64 size)
{
    return bpf_ringbuf_output(&events, data, size, 0);
}
#endif
"""
    )
    cell = (
        '#include "submit.h"\n'
        + FILTER
        + """
SEC("tracepoint/syscalls/sys_enter_getpid")
int on_getpid(void *ctx)
{
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    if (pid != target)
        return 0;
    struct hdr_event e = {.pid = pid, .seq = __sync_fetch_and_add(&seq, 1)};
    submit_event(&e, sizeof(e));
    return 0;
}
"""
    )
    n = 1000
    with (
        Workload() as w,
        bpfnb.load(
            cell, name="drops_hdr", include_dirs=[str(tmp_path)], globals={"target": w.pid}
        ) as p,
    ):
        events = p.maps["events"]
        assert events.event_type == "struct hdr_event"
        got, lost = _overflow(p, "events", w, n)
        assert 0 < got < n and got + lost == n
        df = events.df()
        assert set(df["pid"]) == {w.pid}
        events.event_type = None
        events.event_type = "struct hdr_event"  # a header type is found by name
        assert list(events.df()["seq"]) == list(df["seq"])


def test_uncounted_submissions_are_said_plainly(clean_kernel: tuple[int, int, int]) -> None:
    body = """
    struct event e = {.pid = pid};
    (bpf_ringbuf_output)(&events, &e, sizeof(e), 0);
"""
    with bpfnb.load(_ring_cell("events", body), name="drops_note", attach=False) as p:
        note = p.maps["events"].lost_note
        assert "on_getpid() calls bpf_ringbuf_output without bpfnb's counting wrapper" in note


HASH_CELL = """
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __type(key, u32);
    __type(value, u64);
    __uint(max_entries, 16);
} small SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __type(key, u32);
    __type(value, u64);
    __uint(max_entries, 64);
} roomy SEC(".maps");

const volatile u32 target = 0;
u32 next_key;

SEC("tracepoint/syscalls/sys_enter_getpid")
int on_getpid(void *ctx)
{
    if ((u32)(bpf_get_current_pid_tgid() >> 32) != target)
        return 0;
    u32 key = __sync_fetch_and_add(&next_key, 1);
    u64 one = 1;
    bpf_map_update_elem(&small, &key, &one, BPF_ANY);
    bpf_map_update_elem(&roomy, &key, &one, BPF_NOEXIST);
    bpf_map_update_elem(&roomy, &key, &one, BPF_NOEXIST); /* -EEXIST: not a drop */
    return 0;
}
"""


def test_full_hash_counts_dropped_updates(clean_kernel: tuple[int, int, int]) -> None:
    with Workload() as w, bpfnb.load(HASH_CELL, name="drops_hash", globals={"target": w.pid}) as p:
        small, roomy = p.maps["small"], p.maps["roomy"]
        assert small.dropped == 0 and not small.full
        w.run("getpid", 40)
        assert len(small) == 16 and small.full
        assert small.dropped == 24
        assert len(roomy) == 40 and roomy.dropped == 0 and not roomy.full
