"""Pure tests of the field plan: BTF type -> numpy dtype / columns / Python values / bytes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from bpfnb.codec.plan import MAX_ARRAY_COLUMNS, Codec, codec_for, raw_codec
from bpfnb.errors import MapTypeError
from bpfnb.object import btf
from bpfnb.object.spec import ObjectSpec

from conftest import DATA


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
    ("sname[0]", "i1", 37),
    ("sname[1]", "i1", 38),
    ("sname[2]", "i1", 39),
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
    "uname": b"ab",
    "sname": [120, -1, 5],
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
    "uname": b"ab\0\0",  # unsigned char[4]: bytes, zero-padded
    "sname[0]": 120,  # signed char[3]: small ints
    "sname[1]": -1,
    "sname[2]": 5,
    "color": "GREEN",
    "sign": "POS",
    "bigenum": "SMALL",
    "in.a": 7,
    "in.b": 2**40,
    "n.u": 0x41424344,
    "n.f": np.frombuffer(b"DCBA", "<f4")[0],
    "n.bytes": b"DCBA",
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
    expected["uname"] = b"ab\0\0"
    expected["n"] = {"u": 0x41424344, "f": float(EXPECTED_COLUMNS["n.f"]), "bytes": b"DCBA"}
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
    assert list(cols["uname"]) == [b"ab\0\0", bytes(4), b"ab\0\0"]
    assert cols["sname[1]"].dtype == np.int8 and list(cols["sname[1]"]) == [-1, 0, -1]


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


# -- byte arrays are bytes, char arrays text, signed char arrays ints -------------------------


@pytest.fixture(scope="module")
def blob() -> Codec:
    spec = ObjectSpec.from_file(DATA / "codec.bpf.o")
    t = spec.find_type("struct blob")
    assert t is not None
    return codec_for(spec.btf, t)


U8 = btf.Int(1, "unsigned char", size=1, bits=8)
U8X4 = btf.Array(2, "", element=btf.Typedef(3, "__u8", target=U8), length=4)


def test_byte_array_decodes_to_bytes(blob: Codec) -> None:
    """A u8 data[4] holding {0, 1, 2, 3} is those 4 bytes, not '' (text up to a NUL)."""
    raw = blob.to_bytes(
        {"data": [0, 1, 2, 3], "raw": b"", "mac": b"\xaa\xbb", "name": "eth0", "deltas": [1, -2, 3]}
    )
    value = blob.to_python(raw)
    assert value == {
        "data": b"\x00\x01\x02\x03",
        "raw": bytes(20),
        "mac": b"\xaa\xbb\0\0\0\0",  # uint8_t[6]
        "name": "eth0",  # char[8] stays text
        "deltas": [1, -2, 3],  # __s8[3] is small ints
    }
    assert blob.column_names == [
        "data",
        "raw",
        "mac",
        "name",
        "deltas[0]",
        "deltas[1]",
        "deltas[2]",
    ]
    cols = blob.columns(blob.from_buffer(raw + bytes(blob.size)))
    assert cols["data"].dtype == object and list(cols["data"]) == [b"\0\1\2\3", bytes(4)]
    assert list(cols["mac"]) == [b"\xaa\xbb\0\0\0\0", bytes(6)]
    assert list(cols["name"]) == ["eth0", ""]
    assert cols["deltas[1]"].dtype == np.int8 and cols["deltas[1]"].tolist() == [-2, 0]
    u8 = codec_for(None, U8X4)
    assert u8.scalar and u8.c_name == "__u8[4]"
    assert u8.to_python(b"\0\1\2\3") == b"\0\1\2\3"
    assert list(u8.columns(u8.from_buffer(b"\0\1\2\3"))[""]) == [b"\0\1\2\3"]


def test_byte_array_round_trip_copies_bytes(blob: Codec) -> None:
    """``m[4] = m[1]``: what a byte array decodes to encodes back to the same bytes."""
    record = (
        b"\0\1\2\3"  # data
        + bytes(range(20))  # raw: starts with a NUL
        + b"\0\0\0\0\0\x01"  # mac: NULs first
        + b"x\0\0\0\0\0\0\0"  # name
        + b"\x7f\x80\xff"  # deltas: 127, -128, -1
    )
    assert len(record) == blob.size
    value = blob.to_python(record)
    assert value["deltas"] == [127, -128, -1]
    assert blob.to_bytes(value) == record
    u8 = codec_for(None, U8X4)
    for raw in (b"\0\1\2\3", b"\0\0\0\0", b"\xff\0\0\x01"):
        assert u8.to_bytes(u8.to_python(raw)) == raw


@pytest.mark.parametrize(
    "value",
    [
        [0, 1, 2, 3],
        (0, 1, 2, 3),
        np.arange(4, dtype=np.uint8),
        b"\0\1\2\3",
        bytearray(b"\0\1\2\3"),
        memoryview(b"\0\1\2\3"),
    ],
)
def test_byte_array_accepts_bytes_and_lists_of_ints(blob: Codec, value: Any) -> None:
    assert codec_for(None, U8X4).to_bytes(value) == b"\0\1\2\3"
    raw = blob.to_bytes({"data": value, "raw": b"", "mac": b"", "name": "", "deltas": [0, 0, 0]})
    assert blob.to_python(raw)["data"] == b"\0\1\2\3"


def test_byte_array_shorter_values_are_zero_padded(blob: Codec) -> None:
    u8 = codec_for(None, U8X4)
    assert u8.to_bytes([7]) == u8.to_bytes(b"\x07") == b"\x07\0\0\0"
    assert u8.to_bytes([]) == u8.to_bytes(b"") == bytes(4)
    raw = blob.to_bytes({"data": [9], "raw": [1, 2], "mac": b"", "name": "", "deltas": (0, 0, 0)})
    assert blob.to_python(raw)["raw"] == b"\1\2" + bytes(18)


BYTE_ERRORS = [
    ([1, 2, 3, 4, 5], r"value must be __u8\[4\]: b'\\x01\\x02\\x03\\x04\\x05' is 5 bytes, longer"),
    (b"12345", r"b'12345' is 5 bytes, longer than __u8\[4\]"),
    ([1, 256], r"field '\[1\]': 256 is out of range for a byte \(0..255\)"),
    ([-1], r"field '\[0\]': -1 is out of range for a byte"),
    ([1.5], r"field '\[0\]': expected an int for a byte, got 1.5"),
    ("abcd", r"expected bytes or a list of at most 4 ints 0..255 for __u8\[4\], got 'abcd'"),
    (7, r"expected bytes or a list of at most 4 ints 0..255 for __u8\[4\], got 7"),
]


@pytest.mark.parametrize(("value", "message"), BYTE_ERRORS)
def test_byte_array_errors(value: Any, message: str) -> None:
    with pytest.raises(MapTypeError, match=message):
        codec_for(None, U8X4).to_bytes(value)


def test_byte_array_field_errors_name_the_field(blob: Codec) -> None:
    good = {"data": b"", "raw": b"", "mac": b"", "name": "", "deltas": [0, 0, 0]}
    with pytest.raises(MapTypeError, match=r"field 'mac': b'1234567' is 7 bytes, longer than"):
        blob.to_bytes({**good, "mac": b"1234567"})
    with pytest.raises(MapTypeError, match=r"field 'data\[2\]': 300 is out of range for a byte"):
        blob.to_bytes({**good, "data": [1, 2, 300]})
    with pytest.raises(MapTypeError, match=r"field 'deltas': expected a sequence of 3 values"):
        blob.to_bytes({**good, "deltas": "abc"})


def test_long_and_flexible_byte_arrays() -> None:
    u32 = _u("unsigned int", 4)
    long_bytes = btf.Array(2, "", element=U8, length=100)
    flex_bytes = btf.Array(3, "", element=U8, length=0)
    flex_text = btf.Array(4, "", element=btf.Int(5, "char", size=1, signed=True, bits=8), length=0)
    st = btf.Struct(
        6,
        "msg",
        size=104,
        members=[
            btf.Member("len", u32, 0),
            btf.Member("payload", long_bytes, 32),
            btf.Member("tail", flex_bytes, 832),
            btf.Member("more", flex_text, 832),
        ],
    )
    c = codec_for(None, st)
    assert c.column_names == ["len", "payload"]  # flexible array members have no column
    raw = c.to_bytes({"len": 3, "payload": b"\0ab", "tail": b"", "more": ""})
    assert c.to_python(raw) == {"len": 3, "payload": b"\0ab" + bytes(97), "tail": b"", "more": ""}
    assert list(c.columns(c.from_buffer(raw))["payload"]) == [b"\0ab" + bytes(97)]


def test_per_cpu_byte_arrays_take_the_first_nonzero_cpu(blob: Codec) -> None:
    zero = bytes(blob.size)
    one = blob.to_bytes(
        {"data": [0, 0, 0, 5], "raw": b"", "mac": b"", "name": "a", "deltas": [1, 2, 3]}
    )
    arr = blob.from_buffer(zero + one + one).reshape(1, 3)
    summed = blob.sum_columns(arr)
    assert list(summed["data"]) == [b"\0\0\0\5"] and list(summed["name"]) == ["a"]
    assert summed["deltas[2]"].tolist() == [6]


# -- one plan drives everything ---------------------------------------------------------------

EVERYTHING_NODES = {
    "c8": "IntNode",
    "ok": "BoolNode",
    "name": "TextNode",
    "uname": "ByteArrayNode",
    "sname[0]": "IntNode",
    "color": "EnumNode",
    "n.f": "FloatNode",
    "n.bytes": "ByteArrayNode",
    "ptr": "PointerNode",
    "bf.lo": "BitfieldNode",
    "bf.flag": "BitfieldNode",
    "tiny": "EnumNode",
    "alias2": "IntNode",
    "matrix[1][0]": "IntNode",
}


def test_plan_nodes(everything: Codec) -> None:
    """Every column comes from one leaf of the codec's plan, one node class per kind."""
    leaves = {leaf.path: leaf for leaf in everything.plan.leaves()}
    assert list(leaves) == everything.column_names
    for column, kind in EVERYTHING_NODES.items():
        assert type(leaves[column]).__name__ == kind, column
    nodes = {node.path: type(node).__name__ for node in everything.plan.walk()}
    assert nodes[""] == "StructNode" and nodes["in"] == "StructNode" and nodes["n"] == "StructNode"
    for array in ("arr", "matrix", "matrix[0]", "sname"):
        assert nodes[array] == "ArrayColumnsNode", array
    long = codec_for(None, btf.Array(2, "", element=_u("unsigned int", 4), length=40))
    assert type(long.plan).__name__ == "ListArrayNode"
    assert type(codec_for(None, btf.Int(1, "__int128", size=16, signed=True, bits=128)).plan) is (
        type(codec_for(None, btf.Int(1, "unsigned __int128", size=16, bits=128)).plan)
    )
    assert type(raw_codec(4).plan).__name__ == "RawBytesNode"
