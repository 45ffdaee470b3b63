"""Pure tests of DataFrame building: column naming, per-CPU sums and columns, events."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from bpfnb.codec.frames import empty_frame, events_frame, role_name, to_frame
from bpfnb.codec.plan import Codec, codec_for
from bpfnb.object import btf
from bpfnb.object.spec import ObjectSpec

from conftest import DATA


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


def test_frames_of_decoded_codecs() -> None:
    """A codec with decoders keeps its dtype: the same records make the decoded frame."""
    spec = ObjectSpec.from_file(DATA / "codec.bpf.o")
    plain = _codec(spec, "struct conn")
    conn = plain.with_decoders({"saddr": "ipv4", "saddr_v6": "ipv6"})
    kc = _codec(spec, "__u32")
    raw = plain.to_bytes(
        {
            "saddr": int.from_bytes(bytes([192, 168, 1, 2]), "little"),
            "saddr4": b"",
            "daddr_v6": b"",
            "saddr_v6": [0, 0, 0, 0x01000000],
            "daddr128": 0,
            "peer": {"v4": 0},
            "dport": 22,
            "pid": 1,
            "ts_us": 0,
            "delta_ns": 0,
            "rx_bytes": 0,
            "flags": 0,
            "task": "sshd",
        }
    )
    keys = kc.from_buffer(np.array([9], dtype="<u4").tobytes())
    df = to_frame(kc, keys, conn, conn.from_buffer(raw))
    assert df.columns.tolist()[:6] == ["key", "saddr", "saddr4", "daddr_v6", "saddr_v6", "daddr128"]
    assert df["saddr"].tolist() == ["192.168.1.2"] and df["saddr_v6"].tolist() == ["::1"]
    assert df["saddr4"].tolist() == [bytes(4)] and df["task"].tolist() == ["sshd"]
    per_cpu = to_frame(kc, keys, conn, conn.from_buffer(raw + raw).reshape(1, 2), per_cpu=True)
    assert per_cpu["saddr[cpu1]"].tolist() == ["192.168.1.2"]
    assert per_cpu["dport[cpu0]"].tolist() == [22]
    empty = empty_frame(kc, conn)
    assert empty.columns.tolist() == df.columns.tolist() and len(empty) == 0


@pytest.mark.parametrize(
    ("type_name", "choices"),
    [
        ("struct blob", {}),
        ("struct blob", {"data": "ipv4", "raw": "argv", "mac": "binary", "name": "argv_str"}),
        ("struct conn", {"saddr4": "ipv4", "daddr_v6": "ipv6", "saddr_v6": "ipv6"}),
        ("struct conn", {"daddr128": "ipv6", "peer": "ipv6", "task": "text", "flags": "ns"}),
        ("struct exec_event", {"args": "argv"}),
        ("struct open_stat", {"count": "ktime", "flags": "plain"}),
    ],
)
def test_empty_frames_of_every_kind(type_name: str, choices: dict[str, str]) -> None:
    """A map with no entries still shows its columns, whatever decodes them."""
    spec = ObjectSpec.from_file(DATA / "codec.bpf.o")
    vc = _codec(spec, type_name).with_decoders(choices)
    kc = _codec(spec, "__u32")
    empty = empty_frame(kc, vc)
    assert empty.columns.tolist() == ["key", *(role_name("value", c) for c in vc.column_names)]
    assert len(empty) == 0
    per_cpu = empty_frame(kc, vc, ncpu=2)
    assert per_cpu.columns.tolist() == empty.columns.tolist() and len(per_cpu) == 0
