"""Kernel tests of ring buffers and perf event arrays: exact event counts, exact losses."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import pytest

import bpfnb
from bpfnb.build import eventtypes
from bpfnb.errors import EventTypeError
from bpfnb.kernel.streams import PerfEventArray, RingBuffer

from workload import Workload

EVENT = "struct event { u32 pid; u32 tid; u64 seq; char comm[16]; };\n"

RING = (
    EVENT
    + r"""
struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, RING_SIZE);
} events SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 1 << 20);
} other SEC(".maps");

const volatile u32 target = 0;
u64 seq;

SEC("tracepoint/syscalls/sys_enter_getpid")
int on_getpid(void *ctx)
{
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    if (pid != target)
        return 0;
    u64 marker = pid;
    bpf_ringbuf_output(&other, &marker, sizeof(marker), 0);
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
)

PERF = (
    EVENT
    + r"""
struct {
    __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
    __uint(key_size, sizeof(u32));
    __uint(value_size, sizeof(u32));
} events SEC(".maps");

const volatile u32 target = 0;

SEC("tracepoint/syscalls/sys_enter_getpid")
int on_getpid(void *ctx)
{
    struct event e = {};
    u64 id = bpf_get_current_pid_tgid();
    if (id >> 32 != target)
        return 0;
    e.pid = id >> 32;
    e.tid = (u32)id;
    bpf_get_current_comm(e.comm, sizeof(e.comm));
    bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, &e, sizeof(e));
    return 0;
}
"""
)


def _comm(pid: int) -> str:
    return Path(f"/proc/{pid}/comm").read_text().strip()


def _wait_for(ring: RingBuffer | PerfEventArray, n: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while ring.received < n and time.monotonic() < deadline:
        time.sleep(0.01)


def test_ring_buffer_exact_events(clean_kernel: tuple[int, int, int]) -> None:
    n = 5000
    with Workload() as w:
        comm = _comm(w.pid)
        defines = {"RING_SIZE": str(1 << 20)}
        with bpfnb.load(RING, name="ringtest", defines=defines, globals={"target": w.pid}) as p:
            events = p.maps["events"]
            assert isinstance(events, RingBuffer) and events.running
            assert events.event_type == "struct event"
            assert not any(n.startswith("bpfnb_") for n in p.maps)  # hidden maps
            w.run("getpid", n)
            _wait_for(events, n)
            df = events.df()
            assert list(df.columns) == ["pid", "tid", "seq", "comm", "received_at"]
            mine = df[df["pid"] == w.pid]
            assert len(mine) == n
            assert set(mine["comm"]) == {comm}
            assert sorted(mine["seq"].tolist()) == list(range(n))
            assert events.lost == 0 and events.received == n and events.trimmed == 0
            assert str(df["received_at"].dtype) == "datetime64[ns]"
            newest = events.tail(7)
            assert list(newest.columns) == list(df.columns)
            assert newest["seq"].tolist() == df["seq"].tolist()[-7:]
            assert len(events.tail(n + 10)) == n
            other = p.maps["other"]
            assert isinstance(other, RingBuffer)
            _wait_for(other, n)
            assert other.event_type == "u64"
            assert other.df()["value"].tolist() == [w.pid] * n
            # an event stream has no keys: each keyed-map operation says what it supports
            assert len(events) == n
            for operation in (
                lambda: events.items(),
                lambda: events.values(),
                lambda: events.keys(),
                lambda: events.get(1),
                lambda: 1 in events,
                lambda: events[0],
                lambda: list(events),
            ):
                with pytest.raises(bpfnb.UnsupportedOperationError) as info:
                    operation()
                assert "ring buffer 'events' is an event stream" in str(info.value)
                assert "It supports df(), tail(n), len()" in str(info.value)


def test_small_ring_paused_counts_every_lost_event(clean_kernel: tuple[int, int, int]) -> None:
    n = 1000
    with Workload() as w:
        defines = {"RING_SIZE": "4096"}
        with bpfnb.load(RING, name="ringlost", defines=defines, globals={"target": w.pid}) as p:
            events = p.maps["events"]
            assert isinstance(events, RingBuffer)
            events.stop()
            w.run("getpid", n)
            got = events.drain()
            lost = events.lost
            assert 0 < got < n
            assert got + lost == n
            assert len(events.df()) == got
            # Losses are attributed to the ring that lost them, not to its neighbour.
            other = p.maps["other"]
            assert isinstance(other, RingBuffer)
            _wait_for(other, n)
            assert other.lost == 0 and other.received == n
            # After draining, the ring has room again: the next events arrive.
            events.start()
            w.run("getpid", 10)
            _wait_for(events, got + 10)
            assert events.received == got + 10 and events.lost == lost


def test_perf_event_array_exact_events(clean_kernel: tuple[int, int, int]) -> None:
    n = 3000
    with Workload() as w:
        comm = _comm(w.pid)
        with bpfnb.load(PERF, name="perftest", globals={"target": w.pid}) as p:
            events = p.maps["events"]
            assert isinstance(events, PerfEventArray)
            w.run("getpid", n)
            _wait_for(events, n)
            df = events.df()
            assert len(df) == n
            assert set(df["pid"]) == {w.pid} and set(df["comm"]) == {comm}
            assert events.lost == 0


def test_max_rows_record_and_callbacks(clean_kernel: tuple[int, int, int], tmp_path: Path) -> None:
    n = 2000
    batches: list[pd.DataFrame] = []
    with Workload() as w:
        defines = {"RING_SIZE": str(1 << 20)}
        with bpfnb.load(RING, name="ringrows", defines=defines, globals={"target": w.pid}) as p:
            events = p.maps["events"]
            assert isinstance(events, RingBuffer)
            events.max_rows = 150
            events.on_event(batches.append)
            path = events.record(tmp_path / "events.csv")
            assert path is not None
            w.run("getpid", n)
            _wait_for(events, n)
            assert events.flush(5.0)  # callbacks and recording run off the consumer
            df = events.df()
            assert len(df) == 150 and events.trimmed == n - 150
            assert df["seq"].tolist() == list(range(n - 150, n))  # the newest rows
            events.record(None)
            recorded = pd.read_csv(path)
            assert recorded["seq"].tolist() == list(range(n))
            assert sum(len(b) for b in batches) == n
            assert events.to_csv(tmp_path / "x.csv").read_text().count("\n") == 151
            assert not events.errors


AMBIGUOUS = r"""
struct a_ev { u32 x; };
struct b_ev { u64 y; };
struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 4096);
} events SEC(".maps");
DECLARE

SEC("tracepoint/syscalls/sys_enter_getppid")
int on_getppid(void *ctx)
{
    struct a_ev a = {1};
    struct b_ev b = {2};
    bpf_ringbuf_output(&events, &a, sizeof(a), 0);
    bpf_ringbuf_output(&events, &b, sizeof(b), 0);
    return 0;
}
"""


def test_ambiguous_event_type_lists_candidates(clean_kernel: tuple[int, int, int]) -> None:
    with bpfnb.load(AMBIGUOUS.replace("DECLARE", ""), name="ambig", attach=False) as p:
        events = p.maps["events"]
        assert isinstance(events, RingBuffer)
        with pytest.raises(EventTypeError, match=r"struct a_ev, struct b_ev"):
            events.df()
        events.event_type = "struct b_ev"  # override from Python
        assert list(events.df().columns) == ["y", "received_at"]
    declared = AMBIGUOUS.replace("DECLARE", "BPFNB_EVENT_TYPE(events, struct a_ev);")
    with bpfnb.load(declared, name="declared", attach=False) as p:
        declared_ring = p.maps["events"]
        assert isinstance(declared_ring, RingBuffer)
        assert declared_ring.event_type == "struct a_ev"
    assert eventtypes.candidates(declared, "events") == ["struct a_ev"]


DECODED = r"""
struct conn { u32 pid; u32 saddr; u8 daddr_v6[16]; char args[16]; };
struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 1 << 16); } conns SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __type(key, u32); __type(value, u64);
         __uint(max_entries, 16); } by_addr SEC(".maps");
const volatile u32 target = 0;

SEC("tracepoint/syscalls/sys_enter_getpid")
int on_getpid(void *ctx)
{
    if ((bpf_get_current_pid_tgid() >> 32) != target)
        return 0;
    struct conn *c = bpf_ringbuf_reserve(&conns, sizeof(*c), 0);
    if (!c)
        return 0;
    __builtin_memset(c, 0, sizeof(*c));
    c->pid = target;
    c->saddr = __builtin_bswap32(0x7f000001);    /* 127.0.0.1 as the kernel stores it */
    c->daddr_v6[15] = 1;                         /* ::1 */
    __builtin_memcpy(c->args, "ls\0-l\0/tmp", 11);
    bpf_ringbuf_submit(c, 0);
    u32 key = __builtin_bswap32(0x0a000001);     /* 10.0.0.1 */
    u64 one = 1, *n = bpf_map_lookup_elem(&by_addr, &key);
    if (n) __sync_fetch_and_add(n, 1);
    else bpf_map_update_elem(&by_addr, &key, &one, BPF_NOEXIST);
    return 0;
}
"""


def test_decode_columns_chosen_from_python(clean_kernel: tuple[int, int, int]) -> None:
    with Workload() as w, bpfnb.load(DECODED, name="decoded", globals={"target": w.pid}) as p:
        w.run("getpid", 3)
        _wait_for(p.conns, 3)
        raw = p.conns.df()
        assert raw["saddr"].tolist() == [0x0100007F] * 3  # a plain u32 until told
        p.conns.decode(saddr="ipv4", daddr_v6="ipv6", args="argv")
        df = p.conns.df()
        assert df["saddr"].tolist() == ["127.0.0.1"] * 3
        assert df["daddr_v6"].tolist() == ["::1"] * 3
        assert df["args"].tolist() == [["ls", "-l", "/tmp"]] * 3
        assert p.by_addr.decode(key="ipv4").df().to_dict("records") == [
            {"key": "10.0.0.1", "value": 3}
        ]
        with pytest.raises(bpfnb.BpfnbError, match="cannot be decoded as 'ipv6'"):
            p.conns.decode(pid="ipv6")
