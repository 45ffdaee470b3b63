"""Pure tests of column roles and units: the name table, kinds, typedefs and frames."""

from __future__ import annotations

import pytest

from bpfnb.codec import roles
from bpfnb.codec.frames import frame_roles, frame_units
from bpfnb.codec.plan import codec_for, raw_codec
from bpfnb.object import btf
from bpfnb.object.spec import ObjectSpec

from conftest import DATA, codec_of

NAMES = [
    # field name, role, unit
    ("pid", "id", None),
    ("ppid", "id", None),
    ("tgid", "id", None),
    ("uid", "id", None),
    ("cpu", "id", None),
    ("fd", "id", None),
    ("kernel_stack_id", "id", None),
    ("stackid", "id", None),
    ("syscall_nr", "id", None),
    ("dport", "id", None),
    ("cgroup_id", "id", None),
    ("count", "counter", None),
    ("pid_count", "counter", None),  # the last token with a role wins
    ("calls", "counter", None),
    ("nr_pages", "counter", None),
    ("rx_bytes", "counter", "bytes"),
    ("bytes", "counter", "bytes"),
    ("len", "counter", None),
    ("ts", "timestamp", None),
    ("start_ns", "timestamp", "ns"),
    ("ts_us", "timestamp", "us"),
    ("timestamp", "timestamp", None),
    ("start_time", "timestamp", None),
    ("delta_ns", "duration", "ns"),
    ("lat", "duration", None),
    ("latency_us", "duration", "us"),
    ("wait_time", "duration", None),  # any duration token makes a duration
    ("runtime", "duration", None),
    ("total_ns", "duration", "ns"),  # a time unit turns a counter into a duration
    ("elapsed_ms", "duration", "ms"),
    ("foo_usec", "duration", "us"),
    ("flags", "flags", None),
    ("open_flags", "flags", None),
    ("oflags", "flags", None),
    ("mode", "flags", None),
    ("cpumask", "flags", None),
    ("saddr", "address", None),
    ("daddr_v6", "address", None),
    ("saddr4", "address", None),
    ("daddr128", "address", None),
    ("ip", "address", None),
    ("caller", "address", None),
    ("type", "enum", None),
    ("proto", "enum", None),
    ("state", "enum", None),
    ("err", "enum", None),
    ("errors", "counter", None),
    ("ret", "other", None),
    ("comm", None, None),
    ("value", None, None),
    ("", None, None),
    ("in.delta_ns", "duration", "ns"),  # only the column's own name counts
    ("hist[3]", None, None),
    ("Latency_NS", "duration", "ns"),
]


@pytest.mark.parametrize(("name", "role", "unit"), NAMES)
def test_name_roles(name: str, role: str | None, unit: str | None) -> None:
    assert roles.name_role(name) == (role, unit)


def test_the_table_uses_known_roles() -> None:
    assert {role for role, _ in roles.TOKEN_ROLES} <= set(roles.ROLES)
    assert set(roles.UNIT_TOKENS.values()) <= set(roles.UNITS)


def test_roles_by_kind_and_name(codec_spec: ObjectSpec) -> None:
    conn = codec_of(codec_spec, "struct conn")
    assert conn.column_roles == {
        "saddr": "address",  # a plain __u32, but its name says address
        "saddr4": "bytes",  # u8[4]: the kind wins over the name
        "daddr_v6": "bytes",
        "saddr_v6[0]": "address",
        "saddr_v6[1]": "address",
        "saddr_v6[2]": "address",
        "saddr_v6[3]": "address",
        "daddr128": "address",
        "peer.v4": "address",
        "peer.v6": "bytes",
        "dport": "id",
        "pid": "id",
        "ts_us": "timestamp",
        "delta_ns": "duration",
        "rx_bytes": "counter",
        "flags": "flags",
        "task": "text",
    }
    assert conn.units == {"ts_us": "us", "delta_ns": "ns", "rx_bytes": "bytes"}
    decoded = conn.with_decoders({"saddr4": "ipv4", "daddr_v6": "ipv6", "flags": "open_flags"})
    assert decoded.column_roles["saddr4"] == decoded.column_roles["daddr_v6"] == "address"
    assert decoded.column_roles["flags"] == "flags"
    blob = codec_of(codec_spec, "struct blob")
    assert blob.column_roles == {
        "data": "bytes",
        "raw": "bytes",
        "mac": "bytes",
        "name": "text",
        "deltas[0]": "counter",
        "deltas[1]": "counter",
        "deltas[2]": "counter",
    }


def test_roles_of_every_kind() -> None:
    spec = ObjectSpec.from_file(DATA / "types.bpf.o")
    t = spec.find_type("struct everything")
    assert t is not None
    got = codec_for(spec.btf, t).column_roles
    assert {k: got[k] for k in ("c8", "ok", "name", "color", "ptr", "fl", "bf.lo", "bf.flag")} == {
        "c8": "counter",  # plain ints with names that say nothing count
        "ok": "other",  # _Bool
        "name": "text",
        "color": "enum",
        "ptr": "address",
        "fl": "other",  # floats with names that say nothing
        "bf.lo": "counter",
        "bf.flag": "flags",  # an int bitfield whose name says flag
    }
    assert got["pid"] == "id" and got["tiny"] == "enum"
    assert raw_codec(8).column_roles == {"": "bytes"}
    i128 = btf.Int(1, "__int128", size=16, signed=True, bits=128)
    assert codec_for(None, i128).column_roles == {"": "other"}
    u64 = btf.Int(2, "unsigned long long", size=8, bits=64)
    assert codec_for(None, u64).column_roles == {"": "counter"} and codec_for(None, u64).units == {}


def test_frame_roles_and_units(codec_spec: ObjectSpec) -> None:
    stat = codec_of(codec_spec, "struct open_stat")
    u32 = btf.Int(1, "unsigned int", size=4, bits=32)
    key = codec_for(None, u32)
    got = frame_roles(key, stat)
    assert got["key"] == "id"  # a counter by type, but keys are not summed
    assert got["lat"] == "duration" and got["count"] == "counter" and list(got)[1] == "flags"
    assert frame_units(key, stat) == {"lat": "ns", "wait": "us", "slept": "ms", "moved": "bytes"}
    per_cpu = frame_units(key, stat, ncpu=2, per_cpu=True)
    assert per_cpu == {
        "lat[cpu0]": "ns",
        "lat[cpu1]": "ns",
        "wait[cpu0]": "us",
        "wait[cpu1]": "us",
        "slept[cpu0]": "ms",
        "slept[cpu1]": "ms",
        "moved[cpu0]": "bytes",
        "moved[cpu1]": "bytes",
    }
    assert frame_units(key, stat, ncpu=2) == frame_units(key, stat)  # summed across CPUs
    scalar = frame_roles(key, codec_for(None, u32))
    assert scalar == {"key": "id", "value": "counter"}
    assert frame_roles(None, stat) == stat.column_roles  # events: value columns only
    assert frame_roles(None, None) == {}


def test_frame_roles_follow_frame_names(codec_spec: ObjectSpec) -> None:
    """Value columns that clash with key columns are ``value.<name>`` in frames and roles."""
    conn = codec_of(codec_spec, "struct conn")
    ev = codec_of(codec_spec, "struct exec_event")
    got = frame_roles(conn, ev)
    assert got["pid"] == "id" and got["value.pid"] == "id" and got["args"] == "text"
    assert got["rx_bytes"] == "id"  # a key column
    assert frame_units(conn, ev) == {"ts_us": "us", "delta_ns": "ns", "rx_bytes": "bytes"}
