"""Tests of bpfnb.syscall on real kernel maps created with bpf(2) (no BTF, no clang).

Every map is created by the test itself and closed at the end, so the ``clean_kernel``
fixture can check that nothing leaked.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest

from bpfnb import errors
from bpfnb.errors import BpfnbError, PrivilegeError
from bpfnb.kernel import bpf as syscall
from bpfnb.kernel import cpus
from bpfnb.kernel.bpf_abi import BPF_EXIST, BPF_NOEXIST
from bpfnb.object.maptypes import MAP_TYPE_IDS as T


@contextmanager
def new_map(
    map_type: int, key_size: int, value_size: int, max_entries: int, flags: int = 0, name: str = ""
) -> Iterator[int]:
    """Create a map and close its fd afterwards."""
    fd = syscall.map_create(map_type, key_size, value_size, max_entries, flags, name)
    try:
        yield fd
    finally:
        os.close(fd)


def u32(n: int) -> bytes:
    return n.to_bytes(4, "little")


def u64(n: int) -> bytes:
    return n.to_bytes(8, "little", signed=n < 0)


# -- pure ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", [0]),
        ("0-1\n", [0, 1]),
        ("0-3,5,7-8", [0, 1, 2, 3, 5, 7, 8]),
        ("2,0", [0, 2]),
        ("", []),
    ],
)
def test_parse_cpu_list(text: str, expected: list[int]) -> None:
    assert cpus.parse_cpu_list(text) == expected


def test_possible_cpus_matches_sysfs() -> None:
    with open("/sys/devices/system/cpu/possible") as f:
        expected = cpus.parse_cpu_list(f.read())
    assert cpus.possible_cpus() == len(expected)
    assert list(cpus.possible_cpu_ids()) == expected


@pytest.mark.parametrize(("size", "slot"), [(1, 8), (4, 8), (8, 8), (9, 16), (16, 16), (20, 24)])
def test_value_slot_size(size: int, slot: int) -> None:
    assert cpus.value_slot_size(size) == slot


def test_value_buffer_size_per_cpu() -> None:
    n = cpus.possible_cpus()
    assert cpus.value_buffer_size(True, 4) == 8 * n
    assert cpus.value_buffer_size(True, 12) == 16 * n
    assert cpus.value_buffer_size(False, 12) == 12


def test_errors_are_oserrors_and_bpfnb_errors() -> None:
    e = errors.MapFullError(errno.E2BIG, "BPF_MAP_UPDATE_ELEM", "map 'x'")
    assert isinstance(e, OSError) and isinstance(e, BpfnbError)
    assert e.errno == errno.E2BIG
    assert str(e) == "bpf(BPF_MAP_UPDATE_ELEM) on map 'x' failed: E2BIG (Argument list too long)"
    assert isinstance(errors.BpfPermissionError(errno.EPERM, "BPF_MAP_CREATE"), PrivilegeError)
    assert issubclass(errors.BpfKeyError, KeyError)


# -- kernel ----------------------------------------------------------------------------


def test_elem_ops_and_errors(clean_kernel: tuple[int, int, int]) -> None:
    with new_map(T["hash"], 4, 8, 4, name="elems") as fd:
        syscall.map_update(fd, u32(1), u64(-5))
        assert syscall.map_lookup(fd, u32(1), 8) == u64(-5)
        with pytest.raises(KeyError):
            syscall.map_lookup(fd, u32(2), 8)
        with pytest.raises(errors.KeyExistsError, match=r"BPF_MAP_UPDATE_ELEM.*EEXIST"):
            syscall.map_update(fd, u32(1), u64(0), BPF_NOEXIST)
        with pytest.raises(KeyError):
            syscall.map_update(fd, u32(9), u64(0), BPF_EXIST)
        for k in (2, 3, 4):
            syscall.map_update(fd, u32(k), u64(k))
        with pytest.raises(errors.MapFullError, match="E2BIG") as full:
            syscall.map_update(fd, u32(5), u64(5))
        assert full.value.errno == errno.E2BIG
        with pytest.raises(errors.BpfInvalidError, match="BPF_MAP_LOOKUP_ELEM"):
            syscall.map_lookup(fd, u32(1), 8, flags=0xFF00)
        syscall.map_delete(fd, u32(1))
        with pytest.raises(KeyError):
            syscall.map_delete(fd, u32(1))
        keys = sorted(int.from_bytes(k, "little") for k in syscall.map_keys(fd, 4))
        assert keys == [2, 3, 4]
        assert syscall.map_get_next_key(fd, None, 4) is not None


def test_map_info_and_ids(clean_kernel: tuple[int, int, int]) -> None:
    with new_map(T["lru_hash"], 8, 24, 77, name="info_test") as fd:
        info = syscall.map_info(fd)
        assert (info.type, info.key_size, info.value_size, info.max_entries) == (9, 8, 24, 77)
        assert info.name == "info_test" and info.type_name == "lru_hash"
        assert info.id in syscall.map_ids()
        other = syscall.map_get_fd_by_id(info.id)
        try:
            assert syscall.map_info(other) == info
        finally:
            os.close(other)
    with pytest.raises(KeyError):
        syscall.map_get_fd_by_id(2**31 - 1)


def test_batch_read_equals_fallback(clean_kernel: tuple[int, int, int]) -> None:
    n = 5000
    with new_map(T["hash"], 4, 16, n) as fd:
        keys = np.arange(n, dtype=np.uint32) * 7
        values = np.stack([keys.astype(np.uint64), -keys.astype(np.int64).view(np.uint64)], 1)
        assert syscall.map_update_batch(fd, keys, values) == n
        full = syscall.map_lookup_batch(fd, 4, 16, n)
        assert full.batched and len(full) == n
        walk = syscall.map_lookup_fallback(fd, 4, 16)
        assert not walk.batched and len(walk) == n
        # Small batches: hash buckets holding several keys need the ENOSPC growth path.
        small = syscall.map_lookup_batch(fd, 4, 16, n, chunk=1)
        assert small.calls > 1 and len(small) == n

        def table(b: syscall.Batch) -> dict[int, tuple[int, int]]:
            k = b.keys.reshape(-1).view(np.uint32)
            v = b.values.reshape(-1).view(np.int64).reshape(-1, 2)
            return {int(a): (int(x), int(y)) for a, (x, y) in zip(k, v, strict=True)}

        expected = {7 * i: (7 * i, -7 * i) for i in range(n)}
        assert table(full) == expected
        assert table(walk) == expected
        assert table(small) == expected
        assert syscall.map_delete_batch(fd, keys[:100]) == 100
        assert len(syscall.map_lookup_batch(fd, 4, 16, n)) == n - 100
        with pytest.raises(KeyError):
            syscall.map_delete_batch(fd, keys[:1])


def test_empty_and_array_batches(clean_kernel: tuple[int, int, int]) -> None:
    with new_map(T["hash"], 4, 8, 16) as fd:
        assert len(syscall.map_lookup_batch(fd, 4, 8, 16)) == 0
    with new_map(T["array"], 4, 4, 10) as fd:
        syscall.map_update(fd, u32(3), u32(33))
        b = syscall.map_lookup_batch(fd, 4, 4, 10)
        assert b.keys.reshape(-1).view(np.uint32).tolist() == list(range(10))
        assert b.values.reshape(-1).view(np.uint32).tolist() == [0, 0, 0, 33] + [0] * 6
        with pytest.raises(errors.MapFullError):
            syscall.map_update(fd, u32(10), u32(1))
        with pytest.raises(errors.BpfInvalidError):
            syscall.map_delete(fd, u32(3))


def test_batch_unsupported_falls_back(clean_kernel: tuple[int, int, int]) -> None:
    # Stack trace maps have no batch operations: the read walks keys instead.
    with new_map(T["stack_trace"], 4, 8 * 127, 16) as fd:
        b = syscall.map_lookup_batch(fd, 4, 8 * 127, 16)
        assert not b.batched and len(b) == 0
        with pytest.raises(errors.BpfNotSupportedError, match=r"BPF_MAP_LOOKUP_BATCH.*ENOTSUPP"):
            syscall.map_lookup_batch(fd, 4, 8 * 127, 16, fallback=False)


def test_per_cpu_values_use_8_byte_slots(clean_kernel: tuple[int, int, int]) -> None:
    ncpu = cpus.possible_cpus()
    vbytes = cpus.value_buffer_size(True, 4)
    with new_map(T["percpu_hash"], 4, 4, 8) as fd:
        value = b"".join(u32(100 + i) + b"\0" * 4 for i in range(ncpu))
        syscall.map_update(fd, u32(1), value)
        assert syscall.map_lookup(fd, u32(1), vbytes) == value
        b = syscall.map_lookup_batch(fd, 4, vbytes, 8)
        per_cpu = b.values.reshape(ncpu * len(b), 8)[:, :4].copy().view(np.uint32).ravel()
        assert per_cpu.tolist() == [100 + i for i in range(ncpu)]


def test_map_create_errors(clean_kernel: tuple[int, int, int]) -> None:
    with pytest.raises(errors.BpfInvalidError, match="BPF_MAP_CREATE"):
        syscall.map_create(T["hash"], 0, 8, 4, name="bad")


def test_enable_stats_fd(clean_kernel: tuple[int, int, int]) -> None:
    fd = syscall.enable_stats()
    try:
        assert fd >= 0
    finally:
        os.close(fd)
