"""Pure tests of DataFrame building: column naming, per-CPU sums and columns, events."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from bpfnb.codec.frames import empty_frame, events_frame, role_name, to_frame
from bpfnb.codec.plan import Codec, codec_for
from bpfnb.object import btf
from bpfnb.object.spec import ObjectSpec

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def spec() -> ObjectSpec:
    return ObjectSpec.from_file(DATA / "types.bpf.o")


def _codec(spec: ObjectSpec, name: str) -> Codec:
    t = spec.find_type(name)
    assert t is not None
    return codec_for(spec.btf, t)


def test_scalar_key_value(spec: ObjectSpec) -> None:
    kc, vc = _codec(spec, "u32"), _codec(spec, "u64")
    keys = kc.from_buffer(np.array([3, 1, 2], dtype="<u4").tobytes())
    values = vc.from_buffer(np.array([30, 10, 20], dtype="<u8").tobytes())
    df = to_frame(kc, keys, vc, values)
    assert df.columns.tolist() == ["key", "value"]
    assert df["key"].tolist() == [3, 1, 2] and df["value"].tolist() == [30, 10, 20]
    assert df["key"].dtype == np.uint32 and df["value"].dtype == np.uint64
    assert isinstance(df.index, pd.RangeIndex)


def test_struct_key_and_clash(spec: ObjectSpec) -> None:
    kc = _codec(spec, "struct key_t")
    keys = kc.from_buffer(
        kc.to_bytes({"pid": 1, "comm": "bash"}) + kc.to_bytes({"pid": 2, "comm": "sshd"})
    )
    vc = _codec(spec, "struct key_t")  # value fields clash with key fields
    values = vc.from_buffer(
        vc.to_bytes({"pid": 10, "comm": "a"}) + vc.to_bytes({"pid": 20, "comm": "b"})
    )
    df = to_frame(kc, keys, vc, values)
    assert df.columns.tolist() == ["pid", "comm", "value.pid", "value.comm"]
    assert df["comm"].tolist() == ["bash", "sshd"] and df["value.pid"].tolist() == [10, 20]


def test_enum_key_categorical(spec: ObjectSpec) -> None:
    kc, vc = _codec(spec, "enum color"), _codec(spec, "union num")
    keys = kc.from_buffer(b"".join(kc.to_bytes(c) for c in ("BLUE", "RED")))
    values = vc.from_buffer(vc.to_bytes({"bytes": b"hi"}) + vc.to_bytes({"u": 7}))
    df = to_frame(kc, keys, vc, values)
    assert df.columns.tolist() == ["key", "u", "f", "bytes"]
    assert df["key"].dtype == "category" and df["key"].tolist() == ["BLUE", "RED"]
    # u8 bytes[4] is bytes (all 4 of them), not text up to the first NUL
    assert df["bytes"].tolist() == [b"hi\0\0", b"\x07\0\0\0"] and df["u"].tolist() == [0x6968, 7]


def test_top_level_array_columns() -> None:
    u16 = btf.Int(1, "unsigned short", size=2, bits=16)
    arr = btf.Array(2, "", element=u16, length=2)
    c = codec_for(None, arr)
    recs = c.from_buffer(np.array([1, 2, 3, 4], dtype="<u2").tobytes())
    df = to_frame(c, recs, c, recs)
    assert df.columns.tolist() == ["key[0]", "key[1]", "value[0]", "value[1]"]
    assert df.values.tolist() == [[1, 2, 1, 2], [3, 4, 3, 4]]
    assert role_name("key", "") == "key" and role_name("value", "a.b") == "a.b"


def _percpu(vc: Codec, rows: list[list[Any]]) -> np.ndarray:
    """Per-CPU records as the kernel returns them: each CPU's value in an 8-byte slot."""
    slot = (vc.size + 7) // 8 * 8
    buf = b"".join(vc.to_bytes(v) + bytes(slot - vc.size) for row in rows for v in row)
    return vc.from_buffer(buf, itemsize=slot).reshape(len(rows), len(rows[0]))


def test_per_cpu_scalar(spec: ObjectSpec) -> None:
    kc, vc = _codec(spec, "u32"), _codec(spec, "u32")
    keys = kc.from_buffer(np.array([0, 1], dtype="<u4").tobytes())
    values = _percpu(vc, [[1, 2, 3], [4294967295, 1, 0]])
    df = to_frame(kc, keys, vc, values)
    assert df.columns.tolist() == ["key", "value"]
    assert df["value"].tolist() == [6, 4294967296]  # summed in 64 bits, no wrap-around
    df = to_frame(kc, keys, vc, values, per_cpu=True)
    assert df.columns.tolist() == ["key", "value[cpu0]", "value[cpu1]", "value[cpu2]"]
    assert df.iloc[0].tolist() == [0, 1, 2, 3]
    assert df[["value[cpu0]", "value[cpu1]", "value[cpu2]"]].sum(axis=1).tolist() == [6, 4294967296]


def test_per_cpu_struct(spec: ObjectSpec) -> None:
    kc, vc = _codec(spec, "u32"), _codec(spec, "struct inner")
    keys = kc.from_buffer(np.array([5], dtype="<u4").tobytes())
    values = _percpu(vc, [[{"a": 1, "b": 10}, {"a": 2, "b": 20}]])
    df = to_frame(kc, keys, vc, values)
    assert df.columns.tolist() == ["key", "a", "b"] and df.iloc[0].tolist() == [5, 3, 30]
    df = to_frame(kc, keys, vc, values, per_cpu=True)
    assert df.columns.tolist() == ["key", "a[cpu0]", "b[cpu0]", "a[cpu1]", "b[cpu1]"]
    assert df.iloc[0].tolist() == [5, 1, 10, 2, 20]


def test_events_and_empty(spec: ObjectSpec) -> None:
    vc = _codec(spec, "struct key_t")
    recs = vc.from_buffer(vc.to_bytes((7, "cat")) + vc.to_bytes((8, "dog")))
    df = events_frame(vc, recs)
    assert df.columns.tolist() == ["pid", "comm"] and df["comm"].tolist() == ["cat", "dog"]
    scalar = _codec(spec, "u64")
    assert events_frame(scalar, scalar.from_buffer(bytes(8))).columns.tolist() == ["value"]
    empty = empty_frame(_codec(spec, "u32"), vc)
    assert empty.columns.tolist() == ["key", "pid", "comm"] and len(empty) == 0
    pc = empty_frame(_codec(spec, "u32"), scalar, ncpu=2, per_cpu=True)
    assert pc.columns.tolist() == ["key", "value[cpu0]", "value[cpu1]"]
    assert to_frame(None, None, None, None).empty
