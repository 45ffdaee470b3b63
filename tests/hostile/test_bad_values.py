"""Wrong keys and values from Python: refused with a message naming the real cause.

Every refused write leaves the map as it was; messages stay readable whatever was
passed (a megabyte of bytes, a list of a thousand ints).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from bpfnb import pipeline
from bpfnb.errors import MapTypeError
from bpfnb.kernel import cpus
from bpfnb.kernel.maps import ArrayIndexError
from bpfnb.kernel.program import Program

from conftest import require_kernel

pytestmark = pytest.mark.kernel

SOURCE = r"""
struct val { u32 a; u16 b; char name[8]; u8 raw[4]; };
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 16);
         __type(key, u32); __type(value, struct val); } s SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 4);
         __type(key, u32); __type(value, s8); } a SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PERCPU_HASH); __uint(max_entries, 4);
         __type(key, u32); __type(value, u64); } pc SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_getpid")
int hostile_values(void *ctx)
{
    u32 k = 0;
    struct val *v = bpf_map_lookup_elem(&s, &k);
    if (v)
        v->a++;
    return 0;
}
"""


@pytest.fixture(scope="module")
def prog() -> Iterator[Program]:
    require_kernel()
    loaded = pipeline.load(SOURCE, name="hostile_values")
    try:
        yield loaded
    finally:
        loaded.close()


def _refused(m: Any, key: Any, value: Any, error: type[Exception], says: str) -> str:
    before = m.df().to_dict("records")
    with pytest.raises(error) as raised:
        m[key] = value
    message = str(raised.value)
    assert says in message, message
    assert m.df().to_dict("records") == before, "a refused write changed the map"
    return message


def test_a_per_cpu_value_list_of_the_wrong_length_says_so(prog: Program) -> None:
    n = cpus.possible_cpus()
    message = _refused(prog.pc, 0, [1] * (n + 98), MapTypeError, "is per-CPU")
    assert message == (
        f"map 'pc' is per-CPU: give one value for all {n} possible CPUs or a list of "
        f"exactly {n} (one per CPU), got a list of {n + 98}"
    )
    prog.pc[0] = list(range(1, n + 1))
    assert prog.pc[0] == list(range(1, n + 1))
    prog.pc[1] = 7
    assert prog.pc[1] == [7] * n


def test_messages_stay_short_whatever_was_passed(prog: Program) -> None:
    fields = {"a": 1, "b": 2, "name": "x", "raw": b""}
    huge = os.urandom(1 << 20)
    message = _refused(prog.s, 1, {**fields, "raw": huge}, MapTypeError, "1048576 bytes")
    assert len(message) < 400, message
    message = _refused(prog.s, 1, {**fields, "raw": "x" * 100_000}, MapTypeError, "u8[4]")
    assert len(message) < 400, message
    message = _refused(prog.s, 1, list(range(1000)), MapTypeError, "expected 4 values")
    assert len(message) < 400, message
    message = _refused(prog.s, 1, {**fields, "a": "y" * 100_000}, MapTypeError, "expected an int")
    assert len(message) < 400, message


@pytest.mark.parametrize("mmapped", [True, False])
def test_a_negative_array_index_is_an_index_error(kernel: None, mmapped: bool) -> None:
    loaded = pipeline.load(SOURCE, name="hostile_values", attach=False, mmap_arrays=mmapped)
    try:
        m = loaded.a
        assert m.mmapped == mmapped
        message = _refused(m, -1, 1, ArrayIndexError, "")
        assert message == "array map 'a' has indexes 0..3, got -1"
        with pytest.raises(KeyError):
            m[-1]
        assert -1 not in m and 4 not in m and 3 in m
    finally:
        loaded.close()
