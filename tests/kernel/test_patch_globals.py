"""``--set VAR=VALUE``: C's conversions for const volatile globals, on real objects."""

from __future__ import annotations

import os
import struct
from typing import Any

import pytest

import bpfnb
from bpfnb.build import compiler
from bpfnb.build.patch_globals import int_literal, patch_object, wrap
from bpfnb.errors import BpfnbError, MapTypeError
from bpfnb.object.elf import ElfFile
from bpfnb.object.spec import ObjectSpec

from conftest import require_kernel
from workload import SYS_getpid, Workload

GLOBALS = """\
enum mode { MODE_A, MODE_B = 5 };
const volatile uid_t targ_uid = 0;
const volatile u8 small = 0;
const volatile s16 neg = 0;
const volatile bool flag = false;
const volatile char name[8] = "";
const volatile int x = 0;
const volatile enum mode mode = MODE_A;
const volatile double ratio = 0;
const volatile bpfnb_syscall_t target_syscall = 0;
const volatile u64 big = 0;
int in_bss;
SEC("tracepoint/syscalls/sys_enter_getpid")
int p(void *ctx) { return targ_uid + small + neg + flag + name[0] + x + mode + big + in_bss; }
"""


TEST_CACHE = os.environ.get("BPFNB_TEST_CACHE", "/tmp/bpfnb-test-cache")


@pytest.fixture(scope="module")
def obj() -> tuple[bytes, ObjectSpec]:
    require_kernel()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BPFNB_CACHE_DIR", TEST_CACHE)
        path = compiler.compile_cell(GLOBALS, "globals").object_path
        return path.read_bytes(), ObjectSpec.from_file(path)


def _read(data: bytes, spec: ObjectSpec, name: str, signed: bool = False) -> int:
    var = spec.globals[name]
    section = ElfFile(data).section(var.section)
    assert section is not None
    raw = section.data[var.offset : var.offset + var.size]
    return int.from_bytes(raw, "little", signed=signed)


def _set(obj: tuple[bytes, ObjectSpec], name: str, value: Any, signed: bool = False) -> int:
    data, spec = obj
    return _read(patch_object(data, spec, {name: value}), spec, name, signed)


@pytest.mark.parametrize(
    ("name", "text", "expected", "signed"),
    [
        ("targ_uid", "-1", 4294967295, False),  # libbpf-tools' "no filter"
        ("targ_uid", "1000", 1000, False),
        ("x", "0x10", 16, True),
        ("x", "010", 8, True),  # octal, as in C
        ("x", "0b101", 5, True),
        ("x", "-5", -5, True),
        ("x", "42u", 42, True),
        ("x", "'A'", 65, True),
        ("x", "1000000000000", 1000000000000 % 2**32 - 2**32, True),  # modulo 2^32
        ("x", "0xffffffff", -1, True),
        ("small", "300", 44, False),
        ("small", "-1", 255, False),
        ("neg", "-2", -2, True),
        ("neg", "40000", 40000 - 65536, True),
        ("big", "18446744073709551615", 2**64 - 1, False),
        ("big", "-1", 2**64 - 1, False),
        ("flag", "true", 1, False),
        ("flag", "false", 0, False),
        ("flag", "5", 1, False),  # non-zero is true
        ("flag", "0", 0, False),
        ("mode", "MODE_B", 5, False),
        ("mode", "1", 1, False),
        ("target_syscall", "getpid", SYS_getpid, False),
        ("target_syscall", "39", 39, False),
    ],
)
def test_set_converts_like_c(
    obj: tuple[bytes, ObjectSpec], name: str, text: str, expected: int, signed: bool
) -> None:
    assert _set(obj, name, text, signed) == expected


def test_strings_floats_and_python_values(obj: tuple[bytes, ObjectSpec]) -> None:
    data, spec = obj
    for text, stored in [
        ("abc", b"abc\0\0\0\0\0"),
        ('"abc"', b"abc\0\0\0\0\0"),
        ("abcdefgh", b"abcdefgh"),  # C allows exactly N characters
    ]:
        patched = patch_object(data, spec, {"name": text})
        var = spec.globals["name"]
        section = ElfFile(patched).section(var.section)
        assert section is not None
        assert section.data[var.offset : var.offset + 8] == stored
    ratio = spec.globals["ratio"]
    for value, expected in [("1.5", 1.5), ("2", 2.0), ("2.5f", 2.5), ("1e3", 1000.0), (0.25, 0.25)]:
        patched = patch_object(data, spec, {"ratio": value})
        section = ElfFile(patched).section(ratio.section)
        assert section is not None
        assert struct.unpack_from("<d", section.data, ratio.offset)[0] == expected
    assert _set(obj, "flag", True) == 1
    assert _set(obj, "x", -7, signed=True) == -7
    assert _set(obj, "targ_uid", 4294967295) == 4294967295
    with pytest.raises(
        MapTypeError, match=r"\(const volatile uid_t targ_uid\) to -1: .*0\.\.4294967295"
    ):
        patch_object(*obj, {"targ_uid": -1})  # Python values are exact; "-1" is C text


SET = r"cannot set '(\w+)' \(const volatile "


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("x", "abc", SET + r"int x\) to 'abc': 'abc' is not a C integer literal"),
        ("x", "1.5", SET + r"int x\) to '1.5': '1.5' is not a C integer literal"),
        ("x", 1.5, SET + r"int x\) to 1.5: expected an integer"),
        ("x", "08", SET + r"int x\) to '08': '08' is not a C integer literal"),
        ("big", "18446744073709551616", SET + r"u64 big\) .* does not fit in 64 bits"),
        ("flag", "yes", SET + r"bool flag\) to 'yes': 'yes' is not a C integer literal"),
        ("name", "abcdefghi", SET + r"char name\[8\]\) .* is 9 bytes, more than the 8"),
        ("mode", "MODE_C", SET + r"enum mode mode\) .* enumerator \(MODE_A, MODE_B\)"),
        ("ratio", "fast", SET + r"double ratio\) .* not a C floating-point literal"),
        ("target_syscall", "nope", SET + r"bpfnb_syscall_t target_syscall\) to 'nope'"),
    ],
)
def test_values_c_would_reject(
    obj: tuple[bytes, ObjectSpec], name: str, value: Any, message: str
) -> None:
    data, spec = obj
    with pytest.raises(MapTypeError, match=message):
        patch_object(data, spec, {name: value})


def test_unknown_and_bss_variables(obj: tuple[bytes, ObjectSpec]) -> None:
    data, spec = obj
    with pytest.raises(BpfnbError, match="'nope': it is not a global"):
        patch_object(data, spec, {"nope": "1"})
    with pytest.raises(BpfnbError, match=r"'in_bss': it is in \.bss"):
        patch_object(data, spec, {"in_bss": "1"})


def test_literal_helpers() -> None:
    assert [int_literal(t) for t in ("0", "-0x1F", "0B11", "017", "7UL", "'\\n'", "true")] == [
        0,
        -31,
        3,
        15,
        7,
        10,
        1,
    ]
    assert wrap(-1, 32, False) == 2**32 - 1 and wrap(2**31, 32, True) == -(2**31)
    for bad in ("", "0x", "1.0", "abc", "--1", "1 2"):
        with pytest.raises(ValueError):
            int_literal(bad)


TOOL = """\
const volatile uid_t targ_uid = 0;
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __type(key, u32);
    __type(value, u64);
    __uint(max_entries, 1024);
} counts SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_getpid")
int on_getpid(void *ctx)
{
    u32 uid = (u32)bpf_get_current_uid_gid();
    if (targ_uid != (uid_t)-1 && uid != targ_uid)
        return 0;
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    u64 one = 1, *n = bpf_map_lookup_elem(&counts, &pid);
    if (n)
        __sync_fetch_and_add(n, 1);
    else
        bpf_map_update_elem(&counts, &pid, &one, BPF_NOEXIST);
    return 0;
}
"""


def test_minus_one_means_no_filter_in_the_kernel(
    clean_kernel: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BPFNB_CACHE_DIR", TEST_CACHE)
    with Workload() as w:
        with bpfnb.load(TOOL, name="uidfilter", globals={"targ_uid": "-1"}) as prog:
            w.run("getpid", 321)
            assert prog.counts[w.pid] == 321
        with bpfnb.load(TOOL, name="uidfilter", globals={"targ_uid": "4242"}) as prog:
            w.run("getpid", 50)
            assert w.pid not in prog.counts
