"""Maps that outlive a re-run, maps shared between programs, pinned maps.

- ``keep_maps_from``: count N getpid calls, load a changed program body that keeps the
  map, count M more: the map says N + M; a map whose value type changed is recreated
  and the program's notes say why;
- ``use``: a consumer program uses the producer's map; both count into it; closing the
  producer leaves the map to the consumer;
- pinning by name: a second load (after the first closed) finds the pinned map with its
  counts; ``unpin`` removes it; nothing stays pinned.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import bpfnb
from bpfnb import pipeline
from bpfnb.errors import MapTypeError
from bpfnb.kernel import reuse
from bpfnb.object import maptypes

from workload import Workload

COUNTER = r"""
BPF_HASH(counts, u32, u64, 1024);
BPF_HASH(last, u32, u32, 16);
const volatile u32 target = 0;

SEC("tracepoint/syscalls/sys_enter_getpid")
int on_getpid(void *ctx)
{
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    if (pid != target)
        return 0;
    u64 one = 1, *n = bpf_map_lookup_elem(&counts, &pid);
    if (n) __sync_fetch_and_add(n, 1);
    else bpf_map_update_elem(&counts, &pid, &one, BPF_NOEXIST);
    return 0;
}
"""
# Another body (a different hook and arithmetic) with the same `counts`; `last` changes type.
CHANGED = r"""
BPF_HASH(counts, u32, u64, 1024);
BPF_HASH(last, u32, u64, 16);
const volatile u32 target = 0;

SEC("tp_btf/sys_enter")
int BPF_PROG(on_enter, struct pt_regs *regs, long id)
{
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    if (id != 39 || pid != target)
        return 0;
    u64 one = 1, *n = bpf_map_lookup_elem(&counts, &pid);
    if (n) *n += 1;
    else bpf_map_update_elem(&counts, &pid, &one, BPF_NOEXIST);
    return 0;
}
"""
CONSUMER = r"""
BPF_HASH(counts, u32, u64, 1024);
const volatile u32 target = 0;

SEC("tracepoint/syscalls/sys_enter_getppid")
int on_getppid(void *ctx)
{
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    if (pid != target)
        return 0;
    u64 ten = 10, *n = bpf_map_lookup_elem(&counts, &pid);
    if (n) __sync_fetch_and_add(n, 10);
    else bpf_map_update_elem(&counts, &pid, &ten, BPF_NOEXIST);
    return 0;
}
"""
PINNED = r"""
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __type(key, u32);
    __type(value, u64);
    __uint(max_entries, 64);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} pinned_counts SEC(".maps");
const volatile u32 target = 0;

SEC("tracepoint/syscalls/sys_enter_getpid")
int on_getpid(void *ctx)
{
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    if (pid != target)
        return 0;
    u64 one = 1, *n = bpf_map_lookup_elem(&pinned_counts, &pid);
    if (n) __sync_fetch_and_add(n, 1);
    else bpf_map_update_elem(&pinned_counts, &pid, &one, BPF_NOEXIST);
    return 0;
}
"""


@pytest.fixture
def workload(kernel: None) -> Iterator[Workload]:
    with Workload() as w:
        yield w


def test_keep_maps_counts_continue(clean_kernel: tuple[int, int, int], workload: Workload) -> None:
    n, m = 29, 13
    first = bpfnb.load(COUNTER, name="kept", globals={"target": workload.pid})
    with first:
        workload.run("getpid", n)
        first.last[1] = 7
        assert first.counts[workload.pid] == n
        second = bpfnb.load(
            CHANGED, name="kept", globals={"target": workload.pid}, keep_maps_from=first
        )
        with second:
            # the previous version stopped counting into the kept map (no double counts)
            assert not first.attached and second.attached
            assert second.counts[workload.pid] == n  # carried over
            assert second.notes[:2] == [
                "kept maps (contents carried over): counts",
                "recreated maps: last (value type changed: u32 -> u64)",
            ]
            assert second.last.get(1) is None and first.last[1] == 7
            workload.run("getpid", m)
            assert second.counts[workload.pid] == n + m == first.counts[workload.pid]
            first.close()
            workload.run("getpid", m)
            assert second.counts[workload.pid] == n + 2 * m


def test_keep_maps_attach_failure_restores_previous(
    clean_kernel: tuple[int, int, int], workload: Workload
) -> None:
    with bpfnb.load(COUNTER, name="kept2", globals={"target": workload.pid}) as first:
        broken = COUNTER.replace("sys_enter_getpid", "sys_enter_no_such_call")
        with pytest.raises(bpfnb.AttachError):
            bpfnb.load(broken, name="kept2", keep_maps_from=first)
        assert first.attached
        workload.run("getpid", 3)
        assert first.counts[workload.pid] == 3


def test_use_shares_a_map(clean_kernel: tuple[int, int, int], workload: Workload) -> None:
    producer = bpfnb.load(COUNTER, name="producer", globals={"target": workload.pid})
    try:
        consumer = bpfnb.load(
            CONSUMER,
            name="consumer",
            globals={"target": workload.pid},
            use={"counts": producer.counts},
        )
    except BaseException:
        producer.close()
        raise
    with consumer:
        assert consumer.notes == ["map counts is producer.counts (shared)"]
        workload.run("getpid", 5)
        workload.run("getppid", 2)
        assert producer.counts[workload.pid] == 5 + 20 == consumer.counts[workload.pid]
        producer.close()
        workload.run("getppid", 1)
        assert consumer.counts[workload.pid] == 35
    other = bpfnb.load(COUNTER, name="p2", globals={"target": 1})
    with other, pytest.raises(MapTypeError, match="differs: value type changed: u32 -> u64"):
        bpfnb.load(CONSUMER, name="c2", use={"counts": other.last})


@pytest.fixture
def pin_dir(kernel: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private folder on the bpf filesystem for this test's pins; must end empty."""
    folder = Path(f"/sys/fs/bpf/bpfnb-test-{os.getpid()}")
    monkeypatch.setenv(reuse.PIN_DIR_ENV, str(folder))
    yield folder
    leftovers = sorted(p.name for p in folder.iterdir()) if folder.exists() else []
    for name in leftovers:
        (folder / name).unlink()
    if folder.exists():
        folder.rmdir()
    assert leftovers == [], f"pins leaked: {leftovers}"


def test_pinned_map_survives_the_program(
    clean_kernel: tuple[int, int, int], workload: Workload, pin_dir: Path
) -> None:
    n, m = 8, 3
    spec = pipeline.build_only(PINNED, "pin0").spec.maps["pinned_counts"]
    assert spec.pinning == maptypes.PIN_BY_NAME
    with bpfnb.load(PINNED, name="pin1", globals={"target": workload.pid}) as first:
        assert first.notes == [f"map pinned_counts pinned at {pin_dir / 'pinned_counts'}"]
        workload.run("getpid", n)
    # the program is gone, its map is pinned
    pins = reuse.pins()
    assert [(p.name, p.type, p.key_size, p.value_size, p.max_entries) for p in pins] == [
        ("pinned_counts", "hash", 4, 8, 64)
    ]
    with bpfnb.load(PINNED, name="pin2", globals={"target": workload.pid}) as second:
        assert second.pinned_counts[workload.pid] == n
        workload.run("getpid", m)
        assert second.pinned_counts[workload.pid] == n + m
        assert reuse.pins()[0].id == pins[0].id
    assert reuse.unpin("pinned_counts") == ["pinned_counts"]
    assert reuse.pins() == []
    with pytest.raises(bpfnb.BpfnbError, match="no pinned map named 'nope'"):
        reuse.unpin("nope")


# A map declared without max_entries (bpfnb sizes it) and a 16-entry map the program
# fills with keys from `first_key` on: updates past its room are dropped and counted.
SIZED_BY_BPFNB = r"""
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __type(key, u32);
    __type(value, u64);
} counts SEC(".maps");
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __type(key, u32);
    __type(value, u64);
    __uint(max_entries, 16);
} small SEC(".maps");
const volatile u32 target = 0;
const volatile u32 first_key = 0;
u32 next_key;

SEC("tracepoint/syscalls/sys_enter_getpid")
int on_getpid(void *ctx)
{
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    if (pid != target)
        return 0;
    u64 one = 1, *n = bpf_map_lookup_elem(&counts, &pid);
    if (n) __sync_fetch_and_add(n, 1);
    else bpf_map_update_elem(&counts, &pid, &one, BPF_NOEXIST);
    u32 key = first_key + __sync_fetch_and_add(&next_key, 1);
    bpf_map_update_elem(&small, &key, &one, BPF_ANY);
    return 0;
}
"""


def test_keep_maps_compares_the_sizes_maps_are_created_with(
    clean_kernel: tuple[int, int, int], workload: Workload
) -> None:
    """Kept maps sized by bpfnb or --max-entries; drops counted by each version."""
    pid = workload.pid
    first = bpfnb.load(SIZED_BY_BPFNB, name="sized", globals={"target": pid})
    with first:
        assert first.counts.max_entries == 10240
        assert any("map counts (hash) is declared without max_entries" in n for n in first.notes)
        workload.run("getpid", 40)
        assert first.small.full and first.small.dropped == 24
        second = bpfnb.load(
            SIZED_BY_BPFNB,
            name="sized",
            globals={"target": pid, "first_key": 1000},
            keep_maps_from=first,
        )
        with second:
            assert "kept maps (contents carried over): counts, small" in second.notes
            assert second.counts[pid] == 40 and len(second.small) == 16
            workload.run("getpid", 10)  # 10 new keys: the kept map has no room
            assert second.counts[pid] == 50
            assert second.small.dropped == 10 and first.small.dropped == 24
            # a size the user sets differs from the old one: created anew, says why
            third = bpfnb.load(
                SIZED_BY_BPFNB,
                name="sized",
                globals={"target": pid},
                keep_maps_from=second,
                max_entries={"counts": 512},
            )
            with third:
                assert "recreated maps: counts (max_entries changed: 10240 -> 512)" in third.notes
                assert "kept maps (contents carried over): small" in third.notes
                assert third.counts.max_entries == 512 and len(third.counts) == 0
                workload.run("getpid", 3)
                fourth = bpfnb.load(
                    SIZED_BY_BPFNB,
                    name="sized",
                    globals={"target": pid},
                    keep_maps_from=third,
                    max_entries={"counts": 512},
                )
                with fourth:
                    assert "kept maps (contents carried over): counts, small" in fourth.notes
                    assert fourth.counts[pid] == 3


def test_use_of_a_missing_map_names_only_the_users_maps(
    clean_kernel: tuple[int, int, int], workload: Workload
) -> None:
    with bpfnb.load(COUNTER, name="p3", globals={"target": 1}) as other:
        assert "bpfnb_drops" in pipeline.build_only(CONSUMER, "c3").spec.maps
        with pytest.raises(MapTypeError, match=r"no map named 'nosuch' \(maps: counts\);"):
            bpfnb.load(CONSUMER, name="c3", use={"nosuch": other.counts})


PINNED_ARRAY = r"""
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __type(key, u32);
    __type(value, u64);
    __uint(max_entries, 8);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} pinned_slots SEC(".maps");
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __type(key, u32);
    __type(value, u64);
    __uint(max_entries, 8);
} slots SEC(".maps");
const volatile u32 target = 0;

SEC("tracepoint/syscalls/sys_enter_getpid")
int on_getpid(void *ctx)
{
    if ((bpf_get_current_pid_tgid() >> 32) != target)
        return 0;
    u32 k = 2;
    u64 *a = bpf_map_lookup_elem(&pinned_slots, &k), *b = bpf_map_lookup_elem(&slots, &k);
    if (a) __sync_fetch_and_add(a, 1);
    if (b) __sync_fetch_and_add(b, 1);
    return 0;
}
"""


def test_pinned_and_kept_arrays_with_and_without_mmap(
    clean_kernel: tuple[int, int, int], workload: Workload, pin_dir: Path
) -> None:
    """A pinned array keeps its declared flags, so loads with and without --no-mmap share it."""
    n, m = 6, 4
    pid = workload.pid
    first = bpfnb.load(PINNED_ARRAY, name="parr", globals={"target": pid})
    with first:
        assert first.slots.mmapped and not first.pinned_slots.mmapped
        workload.run("getpid", n)
        second = bpfnb.load(
            PINNED_ARRAY,
            name="parr",
            globals={"target": pid},
            mmap_arrays=False,
            keep_maps_from=first,
        )
        with second:
            assert "kept maps (contents carried over): slots" in second.notes
            assert second.slots.mmapped  # the kept map is the mmapped one
            assert second.pinned_slots[2] == n == second.slots[2]
            workload.run("getpid", m)
            assert second.pinned_slots[2] == n + m == second.slots[2] == first.slots[2]
    assert reuse.unpin("pinned_slots") == ["pinned_slots"]
