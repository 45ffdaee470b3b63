"""Pure tests of decoders: by typedef, chosen per column from Python, flags and units."""

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
from bpfnb.codec.plan import Codec, codec_for
from bpfnb.errors import BpfnbError, DecoderError, MapTypeError
from bpfnb.object import btf
from bpfnb.object.spec import ObjectSpec

from conftest import DATA, codec_of


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


def test_ipv6_text_is_rfc5952() -> None:
    d = decoders.BY_NAME["ipv6"]
    packed = [ipaddress.IPv6Address(a).packed for a in ("fe80::1", "::ffff:1.2.3.4", "::")]
    values = np.frombuffer(b"".join(packed), dtype=np.uint8).reshape(3, 16)
    assert d.decode(values).tolist() == ["fe80::1", "::ffff:1.2.3.4", "::"]
    assert d.decode_one(packed[1]) == "::ffff:1.2.3.4"


# -- decoders chosen per column from Python ------------------------------------------------

CONN_DECODERS = {
    "saddr": "ipv4",
    "saddr4": "ipv4",
    "daddr_v6": "ipv6",
    "saddr_v6": "ipv6",
    "daddr128": "ipv6",
    "peer.v6": "ipv6",
}


def _conn_record(conn: Codec, saddr: bytes, v6: str) -> bytes:
    """A struct conn as a program fills it, every address copied from kernel memory."""
    packed = ipaddress.IPv6Address(v6).packed
    return conn.to_bytes(
        {
            "saddr": int.from_bytes(saddr, "little"),  # __be32: network order in memory
            "saddr4": bytes(reversed(saddr)),
            "daddr_v6": packed,
            "saddr_v6": np.frombuffer(packed, "<u4").tolist(),
            "daddr128": int.from_bytes(packed, "little"),
            "peer": {"v6": packed},
            "dport": 443,
            "pid": 7,
            "ts_us": 1,
            "delta_ns": 2,
            "rx_bytes": 3,
            "flags": 0,
            "task": "curl",
        }
    )


def test_addresses_stored_in_plain_types(codec_spec: ObjectSpec) -> None:
    plain = codec_of(codec_spec, "struct conn")
    raw = _conn_record(plain, bytes([10, 1, 2, 3]), "2001:db8::42")
    conn = plain.with_decoders(CONN_DECODERS)
    assert conn.dtype == plain.dtype and conn.size == plain.size
    assert conn.column_names == [
        "saddr",
        "saddr4",
        "daddr_v6",
        "saddr_v6",
        "daddr128",
        "peer.v4",
        "peer.v6",
        "dport",
        "pid",
        "ts_us",
        "delta_ns",
        "rx_bytes",
        "flags",
        "task",
    ]
    assert conn.column_decoders == CONN_DECODERS
    cols = conn.columns(conn.from_buffer(raw + bytes(conn.size)))
    assert list(cols["saddr"]) == ["10.1.2.3", "0.0.0.0"]
    assert list(cols["saddr4"]) == ["3.2.1.10", "0.0.0.0"]
    for name in ("daddr_v6", "saddr_v6", "daddr128", "peer.v6"):
        assert list(cols[name]) == ["2001:db8::42", "::"], name
    assert cols["peer.v4"].tolist() == [
        int.from_bytes(bytes([0x20, 0x01, 0x0D, 0xB8]), "little"),
        0,
    ]
    assert cols["dport"].tolist() == [443, 0] and cols["dport"].dtype == np.uint16
    value = conn.to_python(raw)
    assert value["saddr"] == "10.1.2.3" and value["saddr4"] == "3.2.1.10"
    assert value["saddr_v6"] == value["daddr128"] == value["peer"]["v6"] == "2001:db8::42"
    # Decoded values encode back to the same bytes (one member of the union is enough),
    # and so do the plain forms (ints, bytes, lists of ints).
    assert conn.to_bytes({**value, "peer": {"v6": value["peer"]["v6"]}}) == raw
    assert _conn_record(conn, bytes([10, 1, 2, 3]), "2001:db8::42") == raw
    # The codec it came from is unchanged.
    assert plain.to_python(raw)["saddr"] == int.from_bytes(bytes([10, 1, 2, 3]), "little")
    assert plain.column_decoders == {}


def test_decoded_address_errors(codec_spec: ObjectSpec) -> None:
    conn = codec_of(codec_spec, "struct conn").with_decoders(CONN_DECODERS)
    good = conn.to_python(_conn_record(conn, bytes(4), "::"))
    with pytest.raises(MapTypeError, match=r"field 'saddr': '10\.1\.2' is not a valid __u32: "):
        conn.to_bytes({**good, "saddr": "10.1.2", "peer": {"v4": 0}})
    with pytest.raises(MapTypeError, match=r"field 'saddr_v6': 'nope' is not a valid __u32\[4\]"):
        conn.to_bytes({**good, "saddr_v6": "nope", "peer": {"v4": 0}})


def test_per_cpu_decoded_columns_take_the_first_nonzero_cpu(codec_spec: ObjectSpec) -> None:
    conn = codec_of(codec_spec, "struct conn").with_decoders(CONN_DECODERS)
    zero = bytes(conn.size)
    raw = _conn_record(conn, bytes([10, 0, 0, 9]), "fe80::9")
    arr = conn.from_buffer(zero + raw + raw).reshape(1, 3)
    summed = conn.sum_columns(arr)
    assert list(summed["saddr"]) == ["10.0.0.9"] and list(summed["daddr_v6"]) == ["fe80::9"]
    assert summed["dport"].tolist() == [886] and summed["task"].tolist() == ["curl"]


def test_argv_buffers(codec_spec: ObjectSpec) -> None:
    ev = codec_of(codec_spec, "struct exec_event")
    argv = ev.with_decoders({"args": "argv"})
    joined = ev.with_decoders({"args": "argv_str"})
    raw = ev.to_bytes({"pid": 1, "args_count": 3, "args_size": 12, "args": b"ls\0-l\0/tmp\0"})
    gap = ev.to_bytes({"pid": 2, "args_count": 3, "args_size": 9, "args": b"echo\0\0h\xc3\xa9\0"})
    empty = ev.to_bytes({"pid": 3, "args_count": 0, "args_size": 0, "args": ""})
    assert ev.to_python(raw)["args"] == "ls"  # char[N] alone stops at the first NUL
    assert argv.to_python(raw)["args"] == ["ls", "-l", "/tmp"]
    assert joined.to_python(raw)["args"] == "ls -l /tmp"
    recs = ev.from_buffer(raw + gap + empty)
    assert list(argv.columns(recs)["args"]) == [["ls", "-l", "/tmp"], ["echo", "", "hé"], []]
    assert list(joined.columns(recs)["args"]) == ["ls -l /tmp", "echo  hé", ""]
    assert argv.column_roles["args"] == joined.column_roles["args"] == "text"
    assert argv.to_bytes(argv.to_python(raw)) == raw
    assert joined.to_bytes(joined.to_python(raw)) == raw
    assert argv.to_bytes({"pid": 3, "args_count": 0, "args_size": 0, "args": []}) == empty
    too_long = {"pid": 1, "args_count": 1, "args_size": 65, "args": ["x" * 64]}
    with pytest.raises(
        MapTypeError, match=r"field 'args': .* takes 65 bytes, more than char\[64\]"
    ):
        argv.to_bytes(too_long)
    with pytest.raises(MapTypeError, match=r"'args': 'ls' is not a valid char\[64\]: argv must"):
        argv.to_bytes({**too_long, "args": "ls"})
    with pytest.raises(
        MapTypeError, match=r"'args': expected a str of at most 64 bytes, got \[1, 2"
    ):
        argv.to_bytes({**too_long, "args": [1, 2]})  # ints are the plain form: char[64]


def test_typedef_decoders_by_name_and_plain(event: Codec) -> None:
    by_name = event.with_decoders({"plain": "syscall", "nr": "plain", "err": decoders.PLAIN})
    value = {
        "nr": 39,
        "err": -errno.ENOENT,
        "ts": 0,
        "saddr": "10.1.2.3",
        "daddr": "::1",
        "stack": 3,
        "func": 0,
        "plain": "getpid",
    }
    raw = by_name.to_bytes(value)
    plain_at = by_name.dtype.fields["plain"][1] if by_name.dtype.fields else -1
    assert raw[:4] == raw[plain_at : plain_at + 4] == (39).to_bytes(4, "little")
    back = by_name.to_python(raw)
    assert back["plain"] == "getpid" and back["nr"] == 39 and back["err"] == -errno.ENOENT
    assert event.to_python(raw)["nr"] == "getpid" and event.to_python(raw)["plain"] == 39
    cols = by_name.columns(by_name.from_buffer(raw + bytes(len(raw))))
    assert list(cols["plain"]) == ["getpid", "read"]
    assert cols["nr"].dtype == np.uint32 and cols["nr"].tolist() == [39, 0]
    assert by_name.column_decoders == {
        "ts": "ktime",
        "saddr": "ipv4",
        "daddr": "ipv6",
        "stack": "stackid",
        "func": "ksym",
        "plain": "syscall",
    }
    assert by_name.to_bytes({**back, "ts": 0}) == raw
    again = by_name.with_decoders({"plain": None, "err": "errno"})
    assert again.to_python(raw)["plain"] == 39 and again.to_python(raw)["err"] == "ENOENT"


def test_whole_value_names() -> None:
    u32 = btf.Int(1, "unsigned int", size=4, bits=32)
    c = codec_for(None, u32)
    for name in ("", "key", "value"):
        d = c.with_decoders({name: "ipv4"})
        assert d.scalar and d.column_names == [""]
        assert d.to_python(bytes([127, 0, 0, 1])) == "127.0.0.1"
        assert d.to_bytes("127.0.0.1", role="key") == bytes([127, 0, 0, 1])
    arr = codec_for(None, btf.Array(2, "", element=u32, length=4))
    packed = ipaddress.IPv6Address("fe80::1").packed
    whole = arr.with_decoders({"value": "ipv6"})
    assert whole.scalar and whole.dtype == arr.dtype
    assert whole.to_python(packed) == "fe80::1" and whole.to_bytes("fe80::1") == packed
    assert list(whole.columns(whole.from_buffer(packed))[""]) == ["fe80::1"]
    first = arr.with_decoders({"key[0]": "ipv4"})
    assert first.column_names == ["[0]", "[1]", "[2]", "[3]"]
    assert first.to_python(packed)[0] == "254.128.0.0"


WRONG_CHOICES = [
    # column, decoder, message fragments
    (
        "pid",
        "ipv6",
        "column 'pid' (__u32) cannot be decoded as 'ipv6', which reads 16 bytes (u8[16], "
        "u32[4], unsigned __int128, struct in6_addr); decoders that fit __u32: syscall, "
        "errno, ipv4, stackid, open_flags, ns, us, ms, bytes, plain",
    ),
    (
        "daddr_v6",
        "ktime",
        "column 'daddr_v6' (__u8[16]) cannot be decoded as 'ktime', which reads an 8-byte "
        "integer; decoders that fit __u8[16]: ipv6, argv, argv_str, text, binary, plain",
    ),
    ("task", "ipv4", "column 'task' (char[16]) cannot be decoded as 'ipv4', which reads 4 bytes"),
    ("dport", "ksym", "column 'dport' (__u16) cannot be decoded as 'ksym'"),
    ("saddr_v6[2]", "argv", "decoders that fit __u32: syscall, errno, ipv4, stackid"),
    ("nope", "ipv4", "struct conn has no column 'nope' (columns: value, saddr, saddr4,"),
    ("pid", "ipv5", "unknown decoder 'ipv5' for column 'pid' (syscall, errno, ktime, ipv4,"),
]


@pytest.mark.parametrize(("column", "decoder", "message"), WRONG_CHOICES)
def test_wrong_decoder_choices(
    codec_spec: ObjectSpec, column: str, decoder: str, message: str
) -> None:
    conn = codec_of(codec_spec, "struct conn")
    with pytest.raises(DecoderError) as exc:
        conn.with_decoders({column: decoder})
    assert message in str(exc.value)
    assert isinstance(exc.value, BpfnbError) and isinstance(exc.value, ValueError)


def test_bitfields_take_no_decoder() -> None:
    spec = ObjectSpec.from_file(DATA / "types.bpf.o")
    bits = spec.maps["bitmap"].value
    assert bits is not None
    c = codec_for(spec.btf, bits)
    with pytest.raises(DecoderError, match="column 'lo' is a bitfield"):
        c.with_decoders({"lo": "syscall"})
    assert c.decoders_for("lo") == []
    assert c.with_decoders({"lo": "plain"}).to_python(bytes(c.size))["lo"] == 0


def test_nested_choices(codec_spec: ObjectSpec) -> None:
    plain = codec_of(codec_spec, "struct conn")
    with pytest.raises(DecoderError, match=r"column 'saddr_v6\[1\]' is part of 'saddr_v6'"):
        plain.with_decoders({"saddr_v6": "ipv6", "saddr_v6[1]": "ipv4"})
    part = plain.with_decoders({"saddr_v6[0]": "ipv4"})
    assert part.column_decoders == {"saddr_v6[0]": "ipv4"}
    whole = part.with_decoders({"saddr_v6": "ipv6"})  # replaces the choice for its part
    assert whole.column_decoders == {"saddr_v6": "ipv6"}
    with pytest.raises(DecoderError, match="is part of 'saddr_v6', which is decoded as 'ipv6'"):
        whole.with_decoders({"saddr_v6[2]": "ipv4"})
    assert whole.with_decoders({"saddr_v6": "plain"}).column_names == plain.column_names
    both = whole.with_decoders({"saddr": "ipv4"})  # choices add up
    assert both.column_decoders == {"saddr": "ipv4", "saddr_v6": "ipv6"}


def test_decoders_for(codec_spec: ObjectSpec) -> None:
    conn = codec_of(codec_spec, "struct conn")
    assert conn.decoders_for("daddr_v6") == ["ipv6", "argv", "argv_str", "text", "binary"]
    assert conn.decoders_for("saddr_v6") == ["ipv6"]
    assert conn.decoders_for("daddr128") == ["ipv6"]
    assert conn.decoders_for("peer") == ["ipv6"]  # struct in6_addr-like unions read as bytes
    assert conn.decoders_for("ts_us") == [
        "syscall",
        "errno",
        "ktime",
        "stackid",
        "ksym",
        "open_flags",
        "ns",
        "us",
        "ms",
        "bytes",
    ]


class HexDecoder(decoders.Decoder):
    """A decoder written by a user: ints as hex text."""

    name = "hex"
    reads = "an integer"

    def decode_one(self, value: Any) -> Any:
        return hex(value)

    def encode_one(self, value: Any) -> Any:
        return int(value, 16)


def test_decoder_objects_are_accepted(codec_spec: ObjectSpec) -> None:
    conn = codec_of(codec_spec, "struct conn").with_decoders({"pid": HexDecoder(), "dport": "ms"})
    raw = _conn_record(conn, bytes(4), "::")
    assert conn.to_python(raw)["pid"] == "0x7"
    assert list(conn.columns(conn.from_buffer(raw))["pid"]) == ["0x7"]
    assert conn.to_bytes({**conn.to_python(raw), "pid": "0x7", "peer": {"v4": 0}}) == raw
    assert conn.units["dport"] == "ms" and conn.column_roles["dport"] == "duration"
    assert conn.column_decoders["pid"] == "hex"


class MacDecoder(decoders.Decoder):
    """A decoder written by a user that reads bytes: MAC addresses."""

    name = "mac"
    reads = "6 bytes"

    def storage(self, t: btf.Type) -> Any:
        return decoders.byte_image(t, 6)

    def decode_one(self, value: Any) -> Any:
        return ":".join(f"{b:02x}" for b in value)

    def encode_one(self, value: Any) -> Any:
        return bytes(int(part, 16) for part in value.split(":"))


def test_byte_decoders_get_bytes(codec_spec: ObjectSpec) -> None:
    blob = codec_of(codec_spec, "struct blob").with_decoders({"mac": MacDecoder()})
    good = {"data": b"", "raw": b"", "name": "", "deltas": [0, 0, 0]}
    raw = blob.to_bytes({**good, "mac": "00:1b:21:0a:ff:01"})
    assert blob.to_python(raw)["mac"] == "00:1b:21:0a:ff:01"
    cols = blob.columns(blob.from_buffer(raw + bytes(blob.size)))
    assert list(cols["mac"]) == ["00:1b:21:0a:ff:01", "00:00:00:00:00:00"]
    with pytest.raises(
        DecoderError, match=r"column 'data' \(__u8\[4\]\) cannot be decoded as 'mac'"
    ):
        blob.with_decoders({"data": MacDecoder()})


# -- open(2) flags ------------------------------------------------------------------------

OPEN_FLAG_TEXTS = [
    (0, "O_RDONLY"),
    (0o1 | 0o100 | 0o2000000, "O_WRONLY|O_CREAT|O_CLOEXEC"),
    (0o2 | 0o100 | 0o200 | 0o1000, "O_RDWR|O_CREAT|O_EXCL|O_TRUNC"),
    (0o4010000, "O_RDONLY|O_SYNC"),
    (0o10000, "O_RDONLY|O_DSYNC"),
    (0o20200002, "O_RDWR|O_TMPFILE"),
    (0o200000 | 0o400000, "O_RDONLY|O_DIRECTORY|O_NOFOLLOW"),
    (0o10000000 | 0o2000000, "O_RDONLY|O_CLOEXEC|O_PATH"),
    (0o4000 | 0o2000 | 0o1, "O_WRONLY|O_APPEND|O_NONBLOCK"),
    (0o40000 | 0o100000 | 0o1000000, "O_RDONLY|O_DIRECT|O_LARGEFILE|O_NOATIME"),
    (3, "O_ACCMODE"),
    ((1 << 30) | 1, "O_WRONLY|0x40000000"),
]


@pytest.mark.parametrize(("flags", "text"), OPEN_FLAG_TEXTS)
def test_open_flags_text(flags: int, text: str) -> None:
    d = decoders.BY_NAME["open_flags"]
    assert d.decode_one(flags) == text
    assert decoders.open_flags_value(text) == flags


def test_open_flags_match_this_system() -> None:
    """The table agrees with the C library's values on this x86_64 host."""
    import os

    names = ["O_CREAT", "O_EXCL", "O_NOCTTY", "O_TRUNC", "O_APPEND", "O_NONBLOCK", "O_DSYNC"]
    names += ["O_ASYNC", "O_DIRECT", "O_DIRECTORY", "O_NOFOLLOW", "O_NOATIME", "O_CLOEXEC"]
    names += ["O_SYNC", "O_PATH", "O_TMPFILE", "O_WRONLY", "O_RDWR"]
    for name in names:
        assert decoders.open_flags_value(name) == getattr(os, name), name
    mixed = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC
    assert decoders.open_flags_text(mixed) == "O_WRONLY|O_CREAT|O_CLOEXEC"
    values = np.array([mixed, os.O_RDONLY, mixed], dtype="<u4")
    assert decoders.BY_NAME["open_flags"].decode(values).tolist() == [
        "O_WRONLY|O_CREAT|O_CLOEXEC",
        "O_RDONLY",
        "O_WRONLY|O_CREAT|O_CLOEXEC",
    ]
    assert decoders.open_flags_value("O_NDELAY | 0x10 | 8") == os.O_NONBLOCK | 0x18
    with pytest.raises(ValueError, match="unknown open flag 'O_BOGUS'"):
        decoders.open_flags_value("O_RDONLY|O_BOGUS")


# -- the unit and flag typedefs ------------------------------------------------------------

STAT: dict[str, Any] = {
    "flags": "O_WRONLY|O_CREAT|O_CLOEXEC",
    "lat": 1500,
    "wait": 20,
    "slept": 3,
    "moved": 4096,
    "when": 0,
    "nr": "openat",
    "err": "ENOENT",
    "count": 1,
    "ratio": 0.5,
}


def test_flag_and_unit_typedefs(codec_spec: ObjectSpec) -> None:
    st = codec_of(codec_spec, "struct open_stat")
    assert st.units == {"lat": "ns", "wait": "us", "slept": "ms", "moved": "bytes"}
    assert st.column_roles == {
        "flags": "flags",
        "lat": "duration",
        "wait": "duration",
        "slept": "duration",
        "moved": "counter",
        "when": "timestamp",
        "nr": "id",
        "err": "enum",
        "count": "counter",
        "ratio": "other",
    }
    raw = st.to_bytes(STAT)
    assert int.from_bytes(raw[:4], "little") == 0o2000101
    back = st.to_python(raw)
    assert {k: v for k, v in back.items() if k != "when"} == {
        k: v for k, v in STAT.items() if k != "when"
    }
    assert pd.isna(back["when"])
    with pytest.raises(MapTypeError, match="'O_BOGUS' is not a valid bpfnb_open_flags_t"):
        st.to_bytes({**STAT, "flags": "O_BOGUS"})
    with pytest.raises(MapTypeError, match="field 'lat': expected an int for bpfnb_ns_t"):
        st.to_bytes({**STAT, "lat": 1.5})


def test_units_stay_numbers_summed_across_cpus(codec_spec: ObjectSpec) -> None:
    st = codec_of(codec_spec, "struct open_stat")
    cpu0 = st.to_bytes({**STAT, "lat": 2**63, "moved": 10, "count": 2})
    cpu1 = st.to_bytes({**STAT, "lat": 2**63 + 5, "moved": 32, "flags": "O_RDONLY", "count": 3})
    arr = st.from_buffer(cpu0 + cpu1).reshape(1, 2)
    summed = st.sum_columns(arr)
    assert summed["lat"].dtype == np.uint64 and summed["lat"].tolist() == [5]  # wraps like u64
    assert summed["moved"].tolist() == [42] and summed["count"].tolist() == [5]
    assert summed["slept"].tolist() == [6] and summed["wait"].tolist() == [40]
    assert list(summed["flags"]) == ["O_WRONLY|O_CREAT|O_CLOEXEC"]  # first non-zero CPU
    cols = st.columns(st.from_buffer(cpu0 + cpu1))
    assert cols["lat"].dtype == np.uint64 and cols["lat"].tolist() == [2**63, 2**63 + 5]
    assert list(cols["nr"]) == ["openat", "openat"] and list(cols["err"]) == ["ENOENT"] * 2
