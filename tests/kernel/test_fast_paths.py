"""Kernel tests of the fast paths: mmapped arrays and saturated ring buffers.

No timing is asserted: each test proves a fast path returns exactly what the slow path
(or the kernel's own count) says.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import bpfnb
from bpfnb.codec import histogram
from bpfnb.errors import ClosedError
from bpfnb.kernel import bpf
from bpfnb.kernel.maps import ArrayMap, HistogramMap, Map
from bpfnb.kernel.streams import RingBuffer

from conftest import wait_until
from workload import Workload

ARRAYS = r"""
struct pair { u64 count; u32 last_tid; u8 flag; };   /* 16 bytes with padding */
struct small { u32 a; u16 b; };                       /* 8 bytes: slot == value size */
struct odd { u8 x[3]; };                              /* 3 bytes in 8-byte slots */

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __type(key, u32);
    __type(value, struct pair);
    __uint(max_entries, 1024);
} pairs SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __type(key, u32);
    __type(value, struct odd);
    __uint(max_entries, 5);
} odds SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __type(key, u32);
    __type(value, struct small);
    __uint(max_entries, 7);
} smalls SEC(".maps");

BPFNB_HIST(lat);

const volatile u32 target = 0;

SEC("tracepoint/syscalls/sys_enter_getpid")
int on_getpid(void *ctx)
{
    u64 id = bpf_get_current_pid_tgid();
    if ((id >> 32) != target)
        return 0;
    u32 slot = 17;
    struct pair *p = bpf_map_lookup_elem(&pairs, &slot);
    if (p) {
        __sync_fetch_and_add(&p->count, 1);
        p->last_tid = (u32)id;
    }
    bpfnb_hist_log2(&lat, bpf_ktime_get_ns() & 0xffff);
    return 0;
}
"""


def _batch_frame(view: Map) -> pd.DataFrame:
    """The map read the slow way: one BPF_MAP_LOOKUP_BATCH through the kernel."""
    raw = Map.read_raw(view, batch=True)
    assert raw.method != "mmap"
    keys, values = view._views(raw.keys, raw.values)
    return view._frame(keys, values, False)


def test_mmapped_arrays_equal_the_batch_read(clean_kernel: tuple[int, int, int]) -> None:
    n = 3000
    with Workload() as w:
        with bpfnb.load(ARRAYS, name="mmarrays", globals={"target": w.pid}) as p:
            pairs, odds, smalls, lat = p.pairs, p.odds, p.smalls, p.lat
            assert isinstance(pairs, ArrayMap) and isinstance(lat, HistogramMap)
            assert pairs.mmapped and odds.mmapped and smalls.mmapped and lat.mmapped
            w.run("getpid", n)
            # what the BPF program wrote is read through the mapping
            assert pairs[17]["count"] == n
            assert pairs.df()["count"].sum() == n
            assert int(lat.df()["count"].sum()) == n
            # writes from Python go to the kernel's memory (the batch read sees them)
            pairs[3] = {"count": 42, "last_tid": 7, "flag": 1}
            odds[4] = {"x": [1, 2, 3]}
            smalls[6] = {"a": 0xDEADBEEF, "b": 0xBEEF}
            raw = bpf.map_lookup(pairs.fd, (3).to_bytes(4, "little"), 16)
            assert int.from_bytes(raw[:8], "little") == 42
            for view in (pairs, odds, smalls, lat):
                fast = view.df(raw=True) if isinstance(view, HistogramMap) else view.df()
                assert fast.equals(_batch_frame(view)), view.name
            assert lat.df().equals(histogram.histogram_frame(lat.spec, _batch_frame(lat)))
            assert odds[4] == {"x": b"\x01\x02\x03"} and smalls[6] == {"a": 0xDEADBEEF, "b": 0xBEEF}
            del pairs[3]
            assert pairs[3] == {"count": 0, "last_tid": 0, "flag": 0}
            with pytest.raises(KeyError):
                pairs[5000]
            smalls.clear()
            assert not np.asarray(Map.read_raw(smalls).values).any()
        with pytest.raises(ClosedError):
            pairs.df()
        with pytest.raises(ClosedError):
            pairs[1]


def test_mmap_opt_out(clean_kernel: tuple[int, int, int]) -> None:
    with bpfnb.load(ARRAYS, name="nommap", attach=False, mmap_arrays=False) as p:
        assert not p.pairs.mmapped and not p.lat.mmapped
        p.pairs[2] = {"count": 5, "last_tid": 1, "flag": 0}
        assert p.pairs.df()["count"].tolist()[2] == 5


SATURATE = r"""
struct event { u64 seq; u64 call; };
BPFNB_EVENT_TYPE(events, struct event);

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, RING_SIZE);
} events SEC(".maps");

const volatile u32 target = 0;
u64 calls;

static long emit(u64 i, void *call)
{
    struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
    if (!e)
        return 0;
    e->seq = i;
    e->call = *(u64 *)call;
    bpf_ringbuf_submit(e, 0);
    return 0;
}

SEC("tracepoint/syscalls/sys_enter_getpid")
int on_getpid(void *ctx)
{
    if ((bpf_get_current_pid_tgid() >> 32) != target)
        return 0;
    u64 call = __sync_fetch_and_add(&calls, 1);
    bpf_loop(PER_CALL, emit, &call, 0);
    return 0;
}
"""
PER_CALL = 64


@pytest.mark.parametrize("consumer_running", [False, True])
def test_saturated_ring_received_plus_lost_is_submitted(
    clean_kernel: tuple[int, int, int], consumer_running: bool
) -> None:
    n = 2000  # getpid calls: 128,000 records of 24 bytes into a 64 KiB ring
    defines = {"RING_SIZE": str(64 << 10), "PER_CALL": str(PER_CALL)}
    load = {"name": "saturate", "defines": defines}
    with Workload() as w, bpfnb.load(SATURATE, **load, globals={"target": w.pid}) as p:
        ring = p.events
        assert isinstance(ring, RingBuffer)
        ring.max_rows = 1000  # the store wraps many times
        if not consumer_running:
            ring.stop()
        w.run("getpid", n)
        ring.drain()
        assert wait_until(lambda: ring.available() == 0)
        ring.drain()
        assert ring.received + ring.lost == n * PER_CALL
        assert ring.lost > 0  # the producer did outrun the ring
        assert len(ring) == min(1000, ring.received) == len(ring.df())
        assert ring.trimmed == ring.received - len(ring)
        df = ring.df()
        # the newest rows, in order: (call, seq) strictly increasing
        order = df["call"].to_numpy() * PER_CALL + df["seq"].to_numpy()
        assert (np.diff(order.astype(np.int64)) > 0).all()
        tail = ring.tail(10)
        assert tail.equals(df.iloc[-10:].reset_index(drop=True))


# Arrays next to the map zoo and bpfnb's map sizes: `inner_a` has the shape of the
# outer map's inner template, `sized` is declared without max_entries, `other` is a
# plain array of another shape.
MMAP_AND_ZOO = r"""
struct inner {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 4);
    __type(key, u32);
    __type(value, u64);
};
struct inner inner_a SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
    __uint(max_entries, 4);
    __type(key, u32);
    __array(values, struct inner);
} outer SEC(".maps") = {
    .values = { [0] = (void *)&inner_a },
};

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __type(key, u32);
    __type(value, u32);
} sized SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __type(key, u32);
    __type(value, struct { u64 a; u64 b; });
    __uint(max_entries, 8);
} other SEC(".maps");

const volatile u32 target = 0;

SEC("tracepoint/syscalls/sys_enter_getpid")
int on_getpid(void *ctx)
{
    if ((bpf_get_current_pid_tgid() >> 32) != target)
        return 0;
    u32 zero = 0, last = 63;
    void *inner = bpf_map_lookup_elem(&outer, &zero);
    if (inner) {
        u64 *n = bpf_map_lookup_elem(inner, &zero);
        if (n) __sync_fetch_and_add(n, 1);
    }
    u32 *s = bpf_map_lookup_elem(&sized, &last);
    if (s) __sync_fetch_and_add(s, 1);
    return 0;
}
"""


@pytest.mark.parametrize("entries", [None, 64])
def test_mmapped_arrays_with_inner_maps_and_sizes(
    clean_kernel: tuple[int, int, int], entries: int | None
) -> None:
    n = 25
    sizes = {"sized": entries} if entries else None
    with (
        Workload() as w,
        bpfnb.load(MMAP_AND_ZOO, name="mmzoo", globals={"target": w.pid}, max_entries=sizes) as p,
    ):
        size = entries or 10240  # bpfnb's default for a map declared without one
        assert p.sized.mmapped and p.other.mmapped
        assert not p.inner_a.mmapped  # an inner map keeps the template's flags
        assert len(p.sized) == size and p.sized.max_entries == size
        w.run("getpid", n)
        assert p.outer[0][0] == n == p.inner_a[0]
        assert p.sized[63] == n
        df = p.sized.df()
        assert len(df) == size and df["value"].tolist()[63] == n
        assert df.equals(_batch_frame(p.sized))
        p.outer[1] = p.inner_a  # the same map in a second slot: the kernel takes it
        w.run("getpid", n)
        assert p.outer[1][0] == 2 * n
