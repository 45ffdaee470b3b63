"""Maps with millions of entries: reading, clearing and closing stay bounded.

Times are compared with a baseline measured in the same test (the bare batch read of
the same map), never with absolute numbers; memory is compared with the size of what
was read.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Iterator

import numpy as np
import pytest

from bpfnb import pipeline
from bpfnb.kernel import bpf
from bpfnb.kernel.maps import HashMap
from bpfnb.kernel.program import Program

from conftest import kernel_objects, require_kernel, wait_until

pytestmark = pytest.mark.kernel

ENTRIES = 2_000_000
SOURCE = r"""
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, ENTRIES);
         __type(key, u32); __type(value, u64); } big SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_getpid")
int big_map(void *ctx)
{
    u32 k = 0;
    u64 *v = bpf_map_lookup_elem(&big, &k);
    if (v)
        __sync_fetch_and_add(v, 1);
    return 0;
}
"""


def _map_ids() -> set[int]:
    return {int(o["id"]) for o in kernel_objects("map")}


def _max_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@pytest.fixture
def prog(clean_kernel: tuple[int, int, int]) -> Iterator[Program]:
    require_kernel()
    loaded = pipeline.load(SOURCE, name="big_map", attach=False, defines={"ENTRIES": str(ENTRIES)})
    try:
        yield loaded
    finally:
        loaded.close()


def test_two_million_entries_read_clear_and_free(prog: Program) -> None:
    big = prog.maps["big"]
    assert isinstance(big, HashMap)
    keys = np.arange(ENTRIES, dtype=np.uint32)
    values = keys.astype(np.uint64) * 3
    assert big.update_records(keys, values) == ENTRIES
    assert big.full

    start = time.perf_counter()
    raw = bpf.map_lookup_batch(big.fd, 4, 8, ENTRIES)
    baseline = time.perf_counter() - start
    assert len(raw) == ENTRIES

    rss = _max_rss()
    start = time.perf_counter()
    frame = big.df()
    took = time.perf_counter() - start
    assert len(frame) == ENTRIES
    assert int(frame["key"].sum()) == ENTRIES * (ENTRIES - 1) // 2
    assert (frame["value"].to_numpy() == frame["key"].to_numpy().astype(np.uint64) * 3).all()
    # bounded: a small multiple of the bare kernel read (plus decoding slack)
    assert took < 10 * baseline + 2.0, f"df() took {took:.2f}s, the batch read {baseline:.2f}s"
    # memory: the peak grew by a small multiple of the data read (12 bytes a row)
    grown = _max_rss() - rss
    assert grown < 20 * ENTRIES * 12, f"df() of {ENTRIES} rows grew the peak RSS by {grown}"
    assert big[ENTRIES - 1] == 3 * (ENTRIES - 1)
    assert len(big) == ENTRIES
    del frame, raw

    start = time.perf_counter()
    big.clear()
    cleared = time.perf_counter() - start
    assert len(big) == 0 and big.df().empty
    assert cleared < 20 * baseline + 5.0, f"clear() took {cleared:.2f}s"
    big[7] = 1
    assert big.df().to_dict("records") == [{"key": 7, "value": 1}]

    map_id = bpf.map_info(big.fd).id
    assert map_id in _map_ids()
    prog.close()
    assert wait_until(lambda: map_id not in _map_ids(), 10.0), "the map outlived close()"
