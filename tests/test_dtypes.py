"""Pure tests of BTF type -> numpy dtype / columns / Python values / bytes, and decoders."""

from __future__ import annotations

import errno
import ipaddress
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from bpfnb.codec import decoders
from bpfnb.codec.plan import MAX_ARRAY_COLUMNS, Codec, codec_for, raw_codec
from bpfnb.errors import MapTypeError
from bpfnb.object import btf
from bpfnb.object.spec import ObjectSpec

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def spec() -> ObjectSpec:
    return ObjectSpec.from_file(DATA / "types.bpf.o")


@pytest.fixture(scope="module")
def everything(spec: ObjectSpec) -> Codec:
    t = spec.find_type("struct everything")
    assert t is not None
    return codec_for(spec.btf, t)


# column, numpy dtype field format, field offset (bitfields read a byte span "col:bits")
EVERYTHING_FIELDS: list[tuple[str, Any, int]] = [
    ("c8", "u1", 0),
    ("s", "<i2", 2),
    ("i", "<i4", 4),
    ("big", "<u8", 8),
    ("sbig", "<i8", 16),
    ("ok", "u1", 24),
    ("name", ("u1", (8,)), 25),
    ("uname", ("u1", (4,)), 33),
    ("sname", ("u1", (3,)), 37),
    ("color", "<u4", 40),
    ("sign", "<u4", 44),
    ("bigenum", "<u8", 48),
    ("in.a", "<u2", 56),
    ("in.b", "<u8", 64),
    ("n.u", "<u4", 72),
    ("n.f", "<f4", 72),
    ("n.bytes", ("u1", (4,)), 72),
    ("arr[0]", "<u4", 76),
    ("arr[1]", "<u4", 80),
    ("arr[2]", "<u4", 84),
    ("ptr", "<u8", 88),
    ("fwd", "<u8", 96),
    ("cv", "<u4", 104),
    ("pid", "<u4", 108),
    ("fl", "<f4", 112),
    ("dbl", "<f8", 120),
    ("bf.lo:bits", ("u1", (1,)), 128),
    ("bf.mid:bits", ("u1", (2,)), 128),
    ("bf.neg:bits", ("u1", (1,)), 129),
    ("bf.flag:bits", ("u1", (1,)), 130),
    ("bf.wide:bits", ("u1", (6,)), 130),
    ("tiny", "u1", 136),
    ("anon.x", "<u2", 138),
    ("anon.y", "<u2", 140),
    ("alias1", "<u4", 144),
    ("alias2", "<i4", 144),
    ("matrix[0][0]", "<u2", 148),
    ("matrix[0][1]", "<u2", 150),
    ("matrix[1][0]", "<u2", 152),
    ("matrix[1][1]", "<u2", 154),
    ("tagged", "<i4", 156),
    ("uptr", "<u8", 160),
    ("rptr", "<u8", 168),
]


def test_everything_dtype(everything: Codec) -> None:
    dt = everything.dtype
    assert dt.itemsize == everything.size == 176
    assert dt.fields is not None
    got = [(name, dt.fields[name][0], dt.fields[name][1]) for name in dt.names or ()]
    want = [(n, np.dtype(f), o) for n, f, o in EVERYTHING_FIELDS]
    assert got == want
    assert everything.column_names == [n.removesuffix(":bits") for n, _, _ in EVERYTHING_FIELDS]
    assert everything.c_name == "struct everything" and not everything.scalar


VALUE: dict[str, Any] = {
    "c8": 255,
    "s": -2,
    "i": -100000,
    "big": 2**64 - 1,
    "sbig": -(2**63),
    "ok": True,
    "name": "héllo",
    "uname": "ab",
    "sname": "xyz",
    "color": "GREEN",
    "sign": "POS",
    "bigenum": 1,
    "in": {"a": 7, "b": 2**40},
    "n": {"u": 0x41424344},
    "arr": [1, 2, 3],
    "ptr": 0xFFFF888000000000,
    "fwd": 0,
    "cv": 9,
    "pid": 4242,
    "fl": 1.5,
    "dbl": -2.25,
    "bf": {"lo": 5, "mid": 511, "neg": -8, "flag": 1, "wide": 2**40 - 1},
    "tiny": "T2",
    "anon": {"x": 1, "y": 2},
    "alias1": 0xFFFFFFFF,
    "matrix": [[1, 2], [3, 4]],
    "tagged": -1,
    "uptr": 16,
    "rptr": 32,
}

# Column -> expected decoded value of VALUE.
EXPECTED_COLUMNS: dict[str, Any] = {
    "c8": 255,
    "s": -2,
    "i": -100000,
    "big": 2**64 - 1,
    "sbig": -(2**63),
    "ok": True,
    "name": "héllo",
    "uname": "ab",
    "sname": "xyz",
    "color": "GREEN",
    "sign": "POS",
    "bigenum": "SMALL",
    "in.a": 7,
    "in.b": 2**40,
    "n.u": 0x41424344,
    "n.f": np.frombuffer(b"DCBA", "<f4")[0],
    "n.bytes": "DCBA",
    "arr[0]": 1,
    "arr[1]": 2,
    "arr[2]": 3,
    "ptr": 0xFFFF888000000000,
    "fwd": 0,
    "cv": 9,
    "pid": 4242,
    "fl": 1.5,
    "dbl": -2.25,
    "bf.lo": 5,
    "bf.mid": 511,
    "bf.neg": -8,
    "bf.flag": 1,
    "bf.wide": 2**40 - 1,
    "tiny": "T2",
    "anon.x": 1,
    "anon.y": 2,
    "alias1": 0xFFFFFFFF,
    "alias2": -1,
    "matrix[0][0]": 1,
    "matrix[0][1]": 2,
    "matrix[1][0]": 3,
    "matrix[1][1]": 4,
    "tagged": -1,
    "uptr": 16,
    "rptr": 32,
}


def test_everything_round_trip(everything: Codec) -> None:
    raw = everything.to_bytes(VALUE)
    assert len(raw) == 176
    back = everything.to_python(raw)
    expected = dict(VALUE)
    expected["bigenum"] = "SMALL"
    expected["n"] = {"u": 0x41424344, "f": float(EXPECTED_COLUMNS["n.f"]), "bytes": "DCBA"}
    expected["alias2"] = -1
    assert back == expected
    assert everything.to_bytes(back) == raw  # decoded values encode back to the same bytes


def test_everything_columns(everything: Codec) -> None:
    raw = everything.to_bytes(VALUE)
    zero = bytes(176)
    arr = everything.from_buffer(raw + zero + raw)
    cols = everything.columns(arr)
    assert list(cols) == everything.column_names
    for name, want in EXPECTED_COLUMNS.items():
        col = cols[name]
        assert col[0] == want, name
        assert col[2] == want, name
    # Types of the decoded columns.
    assert isinstance(cols["color"], pd.Categorical)
    assert list(cols["color"].categories) == ["RED", "GREEN", "BLUE"]
    assert list(cols["color"]) == ["GREEN", "RED", "GREEN"]
    assert list(cols["sign"]) == ["POS", "ZERO", "POS"]
    assert cols["ok"].dtype == np.bool_ and list(cols["ok"]) == [True, False, True]
    assert cols["s"].dtype == np.int16 and cols["big"].dtype == np.uint64
    assert cols["fl"].dtype == np.float32 and cols["dbl"].dtype == np.float64
    assert cols["bf.neg"].dtype == np.int64 and cols["bf.lo"].dtype == np.uint64
    assert list(cols["name"]) == ["héllo", "", "héllo"]


def test_unknown_enum_values_stay_numbers(everything: Codec) -> None:
    value = dict(VALUE, color=9, tiny=200)
    raw = everything.to_bytes(value)
    cols = everything.columns(everything.from_buffer(everything.to_bytes(VALUE) + raw))
    assert cols["color"].dtype == object and list(cols["color"]) == ["GREEN", 9]
    assert list(cols["tiny"]) == ["T2", 200]
    back = everything.to_python(raw)
    assert back["color"] == 9 and back["tiny"] == 200


def test_char_arrays_stop_at_first_nul() -> None:
    arr_t = btf.Array(2, "", element=btf.Int(1, "char", size=1, signed=True, bits=8), length=8)
    c = codec_for(None, arr_t)
    assert c.scalar and c.c_name == "char[8]"
    raw = b"ab\0cd\0\0\0" + b"12345678" + b"\xff\xfeok\0\0\0\0"
    col = c.columns(c.from_buffer(raw))[""]
    assert list(col) == ["ab", "12345678", "\ufffd\ufffdok"]
    assert c.to_python(b"ab\0cd\0\0\0") == "ab"
    assert c.to_bytes("abc") == b"abc\0\0\0\0\0"
    assert c.to_bytes(b"12345678") == b"12345678"


def _u(name: str, size: int, tid: int = 1) -> btf.Int:
    return btf.Int(tid, name, size=size, bits=size * 8)


def test_scalars(spec: ObjectSpec) -> None:
    u32 = spec.find_type("u32")
    assert u32 is not None
    c = codec_for(spec.btf, u32)
    assert c.scalar and c.column_names == [""] and c.dtype.itemsize == 4
    assert c.to_bytes(7) == b"\x07\0\0\0" and c.to_python(b"\x07\0\0\0") == 7
    col = c.columns(c.from_buffer(np.arange(5, dtype="<u4").tobytes()))[""]
    assert col.dtype == np.uint32 and col.tolist() == [0, 1, 2, 3, 4]
    colors = spec.maps["colors"].key
    assert colors is not None
    ce = codec_for(spec.btf, colors)
    assert ce.to_bytes("BLUE") == b"\x07\0\0\0" and ce.to_bytes(5) == b"\x05\0\0\0"
    assert ce.to_python(b"\x07\0\0\0") == "BLUE" and ce.to_python(b"\x09\0\0\0") == 9


def test_bitfield_bytes(spec: ObjectSpec) -> None:
    t = spec.maps["bitmap"].value
    assert t is not None
    c = codec_for(spec.btf, t)
    raw = c.to_bytes({"lo": 5, "mid": 3, "neg": -1, "flag": 0, "wide": 1})
    # lo=5 (bits 0-2), mid=3 (bits 3-11), neg=-1 (bits 12-15), wide=1 at bit 17
    assert int.from_bytes(raw, "little") == 5 | (3 << 3) | (0xF << 12) | (1 << 17)
    assert c.to_python(raw) == {"lo": 5, "mid": 3, "neg": -1, "flag": 0, "wide": 1}
    assert c.to_bytes((5, 3, -1, 0, 1)) == raw  # tuple in field order


def test_padded_and_per_cpu_sum(spec: ObjectSpec) -> None:
    t = spec.find_type("struct key_t")
    assert t is not None
    c = codec_for(spec.btf, t)
    dt = c.padded_dtype(24)
    assert dt.itemsize == 24 and dt.names == c.dtype.names
    rec = [c.to_bytes({"pid": p, "comm": s}) + bytes(4) for p, s in [(1, ""), (2, "x"), (3, "")]]
    arr = c.from_buffer(b"".join(rec), itemsize=24).reshape(1, 3)
    summed = c.sum_columns(arr)
    assert summed["pid"].tolist() == [6] and list(summed["comm"]) == ["x"]
    with pytest.raises(ValueError, match="smaller"):
        c.padded_dtype(8)


def test_long_arrays_are_list_columns() -> None:
    n = MAX_ARRAY_COLUMNS + 1
    arr_t = btf.Array(2, "", element=_u("unsigned int", 4), length=n)
    st = btf.Struct(3, "hist", size=4 * n, members=[btf.Member("slots", arr_t, 0)])
    c = codec_for(None, st)
    assert c.column_names == ["slots"]
    raw = np.arange(n, dtype="<u4").tobytes()
    col = c.columns(c.from_buffer(raw * 2))["slots"]
    assert col[1] == list(range(n))
    short = btf.Array(4, "", element=_u("unsigned int", 4), length=MAX_ARRAY_COLUMNS)
    assert codec_for(None, short).column_names == [f"[{i}]" for i in range(MAX_ARRAY_COLUMNS)]


def test_wide_ints_and_raw() -> None:
    i128 = btf.Int(1, "__int128", size=16, signed=True, bits=128)
    c = codec_for(None, i128)
    raw = c.to_bytes(-(2**100))
    assert c.to_python(raw) == -(2**100)
    assert c.columns(c.from_buffer(raw))[""].tolist() == [-(2**100)]
    r = raw_codec(3)
    assert (
        r.c_name == "u8[3]"
        and r.to_bytes(b"abc") == b"abc"
        and r.to_bytes(0x10203) == b"\x03\x02\x01"
    )
    assert r.to_python(b"xyz") == b"xyz"
    assert r.columns(r.from_buffer(b"xyzabc"))[""].tolist() == [b"xyz", b"abc"]


ERRORS = [
    # value, message fragment
    (5, "key must be struct key_t {u32 pid; char comm[16]}: expected a dict of fields or a tuple"),
    ({"pid": 1}, "missing field(s) comm"),
    ({"pid": 1, "comm": "a", "x": 2}, "has no field 'x'"),
    ((1,), "expected 2 values (pid, comm), got 1"),
    ({"pid": -1, "comm": ""}, "field 'pid': -1 is out of range for u32 (0..4294967295)"),
    ({"pid": 2**32, "comm": ""}, "out of range for u32"),
    ({"pid": "1", "comm": ""}, "field 'pid': expected an int for u32, got '1'"),
    ({"pid": True, "comm": ""}, "expected an int for u32, got True"),
    (
        {"pid": 1, "comm": "x" * 17},
        "field 'comm': b'xxxxxxxxxxxxxxxxx' is 17 bytes, longer than char[16]",
    ),
    ({"pid": 1, "comm": 5}, "field 'comm': expected a str of at most 16 bytes"),
    (b"\0" * 3, "got 3 raw bytes, expected 20"),
]


@pytest.mark.parametrize(("value", "message"), ERRORS)
def test_key_errors(spec: ObjectSpec, value: Any, message: str) -> None:
    key = spec.maps["by_key"].key
    assert key is not None
    with pytest.raises(MapTypeError) as exc:
        codec_for(spec.btf, key).to_bytes(value, role="key")
    assert str(exc.value).startswith("key must be struct key_t {u32 pid; char comm[16]}")
    assert message in str(exc.value)
    assert isinstance(exc.value, TypeError)


VALUE_ERRORS = [
    ("color", "PURPLE", "'PURPLE' is not an enumerator of enum color (RED, GREEN, BLUE)"),
    ("arr", [1, 2], "field 'arr': expected 3 values for u32[3], got 2"),
    ("arr", "abc", "expected a sequence of 3 values"),
    ("arr", [1, 2, -3], "field 'arr[2]': -3 is out of range for u32"),
    ("bf", {"lo": 8, "mid": 0, "neg": 0, "flag": 0, "wide": 0}, "field 'bf.lo': 8 is out of range"),
    ("bf", {"lo": 0, "mid": 0, "neg": -9, "flag": 0, "wide": 0}, "-9 is out of range for int : 4"),
    ("ok", 2, "field 'ok': expected a bool for bool, got 2"),
    ("fl", "x", "expected a number for float"),
    ("n", {"u": 1, "f": 2.0}, "members u, f of union num give different bytes: give only one"),
    ("n", {}, "field 'n': give one member of union num"),
    ("c8", 256, "256 is out of range for u8 (0..255)"),
    ("s", -40000, "out of range for s16 (-32768..32767)"),
]


@pytest.mark.parametrize(("field", "bad", "message"), VALUE_ERRORS)
def test_value_errors(everything: Codec, field: str, bad: Any, message: str) -> None:
    value = dict(VALUE)
    value[field] = bad
    with pytest.raises(MapTypeError, match=r"^value must be struct everything ") as exc:
        everything.to_bytes(value)
    assert message in str(exc.value)


# -- decoders ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def event() -> Codec:
    spec = ObjectSpec.from_file(DATA / "decoders.bpf.o")
    t = spec.find_type("struct event")
    assert t is not None
    return codec_for(spec.btf, t)


def test_decoder_typedefs(event: Codec) -> None:
    now = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    wall = time.time_ns()
    raw = event.to_bytes(
        {
            "nr": "getpid",
            "err": "ENOENT",
            "ts": now,
            "saddr": "10.1.2.3",
            "daddr": "fe80::1",
            "stack": -14,
            "func": 0,
            "plain": 39,
        }
    )
    nr_getpid = (
        decoders.parse_unistd(decoders.UNISTD_64.read_text())[39]
        if (decoders.UNISTD_64.exists())
        else "getpid"
    )
    assert nr_getpid == "getpid"
    assert raw[:4] == (39).to_bytes(4, "little")  # x86_64 getpid
    assert raw[4:8] == (-errno.ENOENT).to_bytes(4, "little", signed=True)
    assert raw[16:20] == bytes([10, 1, 2, 3])  # network byte order in memory
    assert raw[20:36] == ipaddress.IPv6Address("fe80::1").packed
    back = event.to_python(raw)
    assert back["nr"] == "getpid" and back["err"] == "ENOENT" and back["plain"] == 39
    assert back["saddr"] == "10.1.2.3" and back["daddr"] == "fe80::1" and back["stack"] == -14
    assert abs(back["ts"].value - wall) < 50_000_000  # within 50 ms of the wall clock
    cols = event.columns(event.from_buffer(raw + bytes(len(raw))))
    assert list(cols["nr"]) == ["getpid", "read"]  # syscall 0 is read
    assert list(cols["err"]) == ["ENOENT", 0]
    assert list(cols["saddr"]) == ["10.1.2.3", "0.0.0.0"]
    assert list(cols["daddr"]) == ["fe80::1", "::"]
    assert list(cols["stack"]) == [-14, 0]
    assert cols["plain"].tolist() == [39, 0] and cols["plain"].dtype == np.uint32
    ts = pd.to_datetime(pd.Series(cols["ts"]))
    assert abs(pd.Timestamp(ts.iloc[0]).value - wall) < 50_000_000 and pd.isna(ts.iloc[1])


def test_syscall_table() -> None:
    include = Path(decoders.__file__).parent.parent / "include"
    text = (include / "bpfnb" / "syscalls_x86_64.h").read_text()
    fallback = decoders.parse_unistd(text)
    assert fallback[0] == "read" and fallback[39] == "getpid" and fallback[59] == "execve"
    assert len(fallback) > 300
    table = decoders.syscall_table()
    assert table[39] == "getpid"
    d = decoders.lookup(["bpfnb_syscall_t"])
    assert d is not None
    assert d.decode(np.array([39, 99999, 39], dtype=np.uint32)).tolist() == [
        "getpid",
        99999,
        "getpid",
    ]
    with pytest.raises(ValueError, match="unknown syscall"):
        d.encode_one("no_such_call")


def test_errno_and_ipv4_decoders() -> None:
    d = decoders.lookup(["x", "bpfnb_errno_t"])
    assert d is not None
    vals = np.array([-errno.EACCES, errno.EPERM, 0], dtype=np.int32)
    assert d.decode(vals).tolist() == ["EACCES", "EPERM", 0]
    assert d.decode(vals.view(np.uint32)).tolist() == ["EACCES", "EPERM", 0]
    v4 = decoders.lookup(["bpfnb_ipv4_t"])
    assert v4 is not None
    raw = np.frombuffer(bytes([127, 0, 0, 1, 192, 168, 1, 20]), dtype="<u4")
    assert v4.decode(raw).tolist() == ["127.0.0.1", "192.168.1.20"]
    assert v4.encode_one("127.0.0.1") == int(raw[0])
    assert decoders.lookup(["u32", "__u32"]) is None


def test_ksym_decoder(kernel: None) -> None:
    ks = decoders.Kallsyms()
    path = decoders.KALLSYMS
    lines = [ln.split() for ln in path.read_text().splitlines()[:5000]] if path.exists() else []
    text_syms = [(int(p[0], 16), p[2]) for p in lines if len(p) >= 3 and p[1] in "tT"]
    assert text_syms and text_syms[0][0] != 0, "kernel addresses are hidden (kptr_restrict)"
    addr, name = text_syms[len(text_syms) // 2]
    assert ks.address(name) == addr or ks.name(addr) == name
    got = ks.name(addr)
    assert isinstance(got, str) and got.split("+")[0]
    assert str(ks.name(addr + 1)).endswith("+0x1")
    assert ks.name(0) == 0
