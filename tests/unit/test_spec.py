"""Pure tests of ObjectSpec on the committed objects of tests/data."""

from __future__ import annotations

import pytest

from bpfnb.errors import BtfError
from bpfnb.object import btf
from bpfnb.object.spec import GlobalVar, MapSpec, ObjectSpec, ProgramSpec

from conftest import DATA


@pytest.fixture(scope="module")
def spec() -> ObjectSpec:
    return ObjectSpec.from_file(DATA / "types.bpf.o")


MAPS = [
    # name, type, type name, key C name, value C name, key size, value size, max, flags
    ("by_key", 1, "hash", "struct key_t", "struct everything", 20, 176, 128, 1),
    ("per_cpu", 6, "percpu_array", "u32", "u64", 4, 8, 4, 0),
    ("sized", 2, "array", None, None, 4, 12, 2, 0),
    ("events", 27, "ringbuf", None, None, 0, 0, 4096, 0),
    ("colors", 1, "hash", "enum color", "union num", 4, 4, 8, 0),
    ("bitmap", 1, "hash", "my_pid_t", "struct bits", 4, 8, 8, 0),
]


def test_maps(spec: ObjectSpec) -> None:
    assert list(spec.maps) == [m[0] for m in MAPS]
    got = [
        (
            m.name,
            m.type,
            m.type_name,
            None if m.key is None else btf.c_name(m.key),
            None if m.value is None else btf.c_name(m.value),
            m.key_size,
            m.value_size,
            m.max_entries,
            m.flags,
        )
        for m in spec.maps.values()
    ]
    assert got == MAPS
    assert isinstance(spec.maps["by_key"], MapSpec)


def test_programs(spec: ObjectSpec) -> None:
    assert spec.programs == [
        ProgramSpec("on_getpid", "tracepoint/syscalls/sys_enter_getpid"),
        ProgramSpec("on_exit_a", "tracepoint/syscalls/sys_exit_getpid"),
        ProgramSpec("on_exit_b", "tracepoint/syscalls/sys_exit_getpid"),
        ProgramSpec("second_section", "fentry/do_nanosleep"),
    ]  # the static subprogram `helper` in .text is not a program


GLOBALS = [
    ("target_pid", ".rodata", 0, 4, "const volatile u32"),
    ("pattern", ".rodata", 4, 8, "const volatile char[8]"),
    ("counter", ".data", 0, 8, "u64"),
    ("last_key", ".bss", 0, 20, "struct key_t"),
    ("hidden", ".bss", 20, 4, "volatile s32"),
]


def test_globals_and_license(spec: ObjectSpec) -> None:
    got = [(g.name, g.section, g.offset, g.size, btf.c_name(g.type)) for g in spec.globals.values()]
    assert got == GLOBALS
    assert isinstance(spec.globals["counter"], GlobalVar)
    assert spec.license == "Dual BSD/GPL"


def test_deterministic(spec: ObjectSpec) -> None:
    again = ObjectSpec.from_bytes((DATA / "types.bpf.o").read_bytes())
    assert repr(again) == repr(spec)
    assert [m.name for m in again.maps.values()] == list(spec.maps)


def test_struct_types_and_find_type(spec: ObjectSpec) -> None:
    structs = spec.struct_types()
    assert {"key_t", "everything", "inner", "bits"} <= set(structs)
    assert structs["key_t"].size == 20
    assert spec.find_type("struct key_t") is structs["key_t"]
    assert isinstance(spec.find_type("union num"), btf.Union)
    assert isinstance(spec.find_type("enum color"), btf.Enum)
    assert isinstance(spec.find_type("my_pid_t"), btf.Typedef)
    assert spec.find_type("key_t") is structs["key_t"]
    assert spec.find_type("struct nope") is None


def test_decoder_object() -> None:
    spec = ObjectSpec.from_file(DATA / "decoders.bpf.o")
    m = spec.maps["by_syscall"]
    assert m.key is not None and btf.c_name(m.key) == "bpfnb_syscall_t"
    assert spec.license == "GPL"
    assert [p.name for p in spec.programs] == ["on_enter"]


def test_errors() -> None:
    with pytest.raises(BtfError, match="bad magic"):
        ObjectSpec.from_bytes(b"not an object")
    data = (DATA / "types.bpf.o").read_bytes()
    # Rename the .BTF section (its name may share bytes with .rel.BTF) to hide it.
    assert b".BTF\0" in data
    with pytest.raises(BtfError, match=r"no \.BTF section"):
        ObjectSpec.from_bytes(data.replace(b".BTF\0", b".XYZ\0"))
