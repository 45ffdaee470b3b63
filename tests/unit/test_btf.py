"""Pure tests of the ELF reader and the BTF parser on committed objects and hand-built BTF."""

from __future__ import annotations

import struct

import pytest

from bpfnb.errors import BtfError
from bpfnb.object import btf
from bpfnb.object.elf import SHF_EXECINSTR, STT_FUNC, ElfError, ElfFile

from conftest import DATA

TYPES_O = DATA / "types.bpf.o"


@pytest.fixture(scope="module")
def types() -> btf.Btf:
    elf = ElfFile(TYPES_O.read_bytes())
    sec = elf.section(".BTF")
    assert sec is not None
    return btf.Btf.from_bytes(sec.data)


# -- ELF ---------------------------------------------------------------------------------


def test_elf_sections_and_symbols() -> None:
    elf = ElfFile(TYPES_O.read_bytes())
    assert elf.machine == 247  # EM_BPF
    names = [s.name for s in elf.sections]
    for expected in (".BTF", ".maps", ".rodata", ".data", ".bss", "license", ".text"):
        assert expected in names
    enter = elf.section("tracepoint/syscalls/sys_enter_getpid")
    assert enter is not None and enter.flags & SHF_EXECINSTR and enter.executable
    funcs = [s.name for s in elf.symbols_in(enter.index) if s.type == STT_FUNC]
    assert funcs == ["on_getpid"]
    exits = elf.section("tracepoint/syscalls/sys_exit_getpid")
    assert exits is not None
    assert [s.name for s in elf.symbols_in(exits.index) if s.type == STT_FUNC] == [
        "on_exit_a",
        "on_exit_b",
    ]
    bss = elf.section(".bss")
    assert bss is not None and bss.data == b"" and bss.size == 24
    assert elf.section("nope") is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "bad magic"),
        (b"\x7fELF" + bytes(60), "64-bit little-endian"),
        (b"\x7fELF\x01\x01" + bytes(58), "64-bit little-endian"),
        (b"\x7fELF\x02\x02" + bytes(58), "64-bit little-endian"),
        (b"\x7fELF\x02\x01" + bytes(58), "no section headers"),
    ],
)
def test_elf_errors(data: bytes, message: str) -> None:
    with pytest.raises(ElfError, match=message):
        ElfFile(data)


def test_elf_truncated() -> None:
    data = TYPES_O.read_bytes()
    with pytest.raises(ElfError, match=r"truncated|past the end"):
        ElfFile(data[: len(data) - 100])


# -- BTF from clang ----------------------------------------------------------------------

EVERYTHING = [
    # name, byte offset, bitfield size, C declaration, size
    ("c8", 0, 0, "u8 c8", 1),
    ("s", 2, 0, "s16 s", 2),
    ("i", 4, 0, "s32 i", 4),
    ("big", 8, 0, "u64 big", 8),
    ("sbig", 16, 0, "s64 sbig", 8),
    ("ok", 24, 0, "bool ok", 1),
    ("name", 25, 0, "char name[8]", 8),
    ("uname", 33, 0, "unsigned char uname[4]", 4),
    ("sname", 37, 0, "signed char sname[3]", 3),
    ("color", 40, 0, "enum color color", 4),
    ("sign", 44, 0, "enum sign sign", 4),
    ("bigenum", 48, 0, "enum big bigenum", 8),
    ("in", 56, 0, "struct inner in", 16),
    ("n", 72, 0, "union num n", 4),
    ("arr", 76, 0, "u32 arr[3]", 12),
    ("ptr", 88, 0, "void *ptr", 8),
    ("fwd", 96, 0, "struct fwd_only *fwd", 8),
    ("cv", 104, 0, "const volatile u32 cv", 4),
    ("pid", 108, 0, "my_pid_t pid", 4),
    ("fl", 112, 0, "float fl", 4),
    ("dbl", 120, 0, "double dbl", 8),
    ("bf", 128, 0, "struct bits bf", 8),
    ("tiny", 136, 0, "enum tiny tiny", 1),
    ("anon", 138, 0, "struct {...} anon", 4),
    ("", 144, 0, "union {...}", 4),
    ("matrix", 148, 0, "u16 matrix[2][2]", 8),
    ("tagged", 156, 0, "int tagged", 4),
    ("uptr", 160, 0, "int *uptr", 8),
    ("rptr", 168, 0, "int * restrict rptr", 8),
]


def test_struct_members(types: btf.Btf) -> None:
    st = types.by_name("everything", btf.Struct)
    assert isinstance(st, btf.Struct)
    assert st.size == 176
    got = [
        (m.name, m.offset, m.bitfield_size, btf.declaration(m.type, m.name), btf.size_of(m.type))
        for m in st.members
    ]
    assert got == EVERYTHING


BITS = [("lo", 0, 3, True), ("mid", 3, 9, True), ("neg", 12, 4, True)]


def test_bitfields(types: btf.Btf) -> None:
    st = types.by_name("bits", btf.Struct)
    assert isinstance(st, btf.Struct) and st.size == 8
    got = [(m.name, m.bit_offset, m.bitfield_size) for m in st.members]
    assert got == [("lo", 0, 3), ("mid", 3, 9), ("neg", 12, 4), ("flag", 16, 1), ("wide", 17, 40)]
    neg = btf.resolve(st.members[2].type)
    assert isinstance(neg, btf.Int) and neg.signed and neg.size == 4
    assert btf.describe(st) == (
        "struct bits {unsigned int lo : 3; unsigned int mid : 9; int neg : 4; u8 flag : 1; "
        "u64 wide : 40}"
    )


INTS = [
    # C name, size, signed, char, bool
    ("unsigned char", 1, False, False, False),
    ("char", 1, True, False, False),  # clang marks plain char SIGNED, not CHAR, on BPF
    ("signed char", 1, True, False, False),
    ("short", 2, True, False, False),
    ("unsigned short", 2, False, False, False),
    ("int", 4, True, False, False),
    ("unsigned int", 4, False, False, False),
    ("long long", 8, True, False, False),
    ("unsigned long long", 8, False, False, False),
    ("_Bool", 1, False, False, True),
]


@pytest.mark.parametrize(("name", "size", "signed", "char", "is_bool"), INTS)
def test_ints(
    types: btf.Btf, name: str, size: int, signed: bool, char: bool, is_bool: bool
) -> None:
    t = types.by_name(name, btf.Int)
    assert isinstance(t, btf.Int)
    assert (t.size, t.signed, t.char, t.bool, t.bits, t.bit_offset) == (
        size,
        signed,
        char,
        is_bool,
        size * 8,
        0,
    )
    assert btf.c_name(t) == name


def test_enums(types: btf.Btf) -> None:
    color = types.by_name("color", btf.Enum)
    assert isinstance(color, btf.Enum) and not isinstance(color, btf.Enum64)
    assert [(v.name, v.value) for v in color.members] == [("RED", 0), ("GREEN", 5), ("BLUE", 7)]
    assert color.size == 4
    tiny = types.by_name("tiny", btf.Enum)
    assert isinstance(tiny, btf.Enum) and tiny.size == 1
    big = types.by_name("big", btf.Enum)
    assert isinstance(big, btf.Enum) and big.size == 8
    assert btf.describe(color) == "enum color {RED, GREEN, BLUE}"


def test_union_and_anonymous(types: btf.Btf) -> None:
    num = types.by_name("num", btf.Union)
    assert isinstance(num, btf.Union) and num.size == 4
    assert [(m.name, m.bit_offset) for m in num.members] == [("u", 0), ("f", 0), ("bytes", 0)]
    st = types.by_name("everything", btf.Struct)
    assert isinstance(st, btf.Struct)
    anon_union = btf.resolve(st.members[24].type)
    assert isinstance(anon_union, btf.Union) and anon_union.name == ""
    assert [m.name for m in anon_union.members] == ["alias1", "alias2"]


def test_typedef_chain_and_qualifiers(types: btf.Btf) -> None:
    t = types.by_name("my_pid_t", btf.Typedef)
    assert isinstance(t, btf.Typedef)
    assert list(btf.typedef_names(t)) == ["my_pid_t", "pid_t2", "u32"]
    r = btf.resolve(t)
    assert isinstance(r, btf.Int) and r.name == "unsigned int"
    assert types.resolve(t) is r and types.size_of(t) == 4
    st = types.by_name("everything", btf.Struct)
    assert isinstance(st, btf.Struct)
    cv = st.members[17].type
    assert isinstance(cv, btf.Const) and isinstance(cv.target, btf.Volatile)
    assert btf.c_name(cv) == "const volatile u32"
    assert btf.strip_cv(cv) is cv.target.target


def test_pointers_fwd_tags(types: btf.Btf) -> None:
    st = types.by_name("everything", btf.Struct)
    assert isinstance(st, btf.Struct)
    by = {m.name: m.type for m in st.members}
    ptr = by["ptr"]
    assert isinstance(ptr, btf.Pointer) and isinstance(ptr.target, btf.Void)
    fwd = by["fwd"]
    assert isinstance(fwd, btf.Pointer) and isinstance(fwd.target, btf.Fwd)
    assert not fwd.target.union and btf.c_name(fwd.target) == "struct fwd_only"
    with pytest.raises(BtfError, match="has no size"):
        btf.size_of(fwd.target)
    uptr = by["uptr"]
    assert isinstance(uptr, btf.Pointer) and isinstance(uptr.target, btf.TypeTag)
    assert uptr.target.name == "user"
    rptr = by["rptr"]
    assert isinstance(rptr, btf.Restrict) and isinstance(rptr.target, btf.Pointer)
    tags = types.all_of(btf.DeclTag)
    assert [(t.name, t.target is st, t.component_idx) for t in tags] == [("tagged", True, 26)]


def test_floats_arrays(types: btf.Btf) -> None:
    assert [(f.name, f.size) for f in types.all_of(btf.Float)] == [("float", 4), ("double", 8)]
    st = types.by_name("everything", btf.Struct)
    assert isinstance(st, btf.Struct)
    matrix = st.members[25].type
    assert isinstance(matrix, btf.Array) and matrix.length == 2
    assert isinstance(matrix.element, btf.Array) and btf.c_name(matrix) == "u16[2][2]"
    assert btf.size_of(matrix) == 8


def test_funcs_vars_datasecs(types: btf.Btf) -> None:
    funcs = {f.name: f for f in types.all_of(btf.Func)}
    assert set(funcs) == {"on_getpid", "helper", "on_exit_a", "on_exit_b", "second_section"}
    assert funcs["helper"].linkage == 0 and funcs["on_getpid"].linkage == 1
    proto = funcs["helper"].proto
    assert isinstance(proto, btf.FuncProto)
    assert [(p.name, btf.c_name(p.type)) for p in proto.params] == [("x", "int")]
    assert btf.c_name(proto.ret) == "int"
    secs = {d.name: [v.var.name for v in d.vars] for d in types.all_of(btf.DataSec)}
    assert secs[".maps"] == ["by_key", "per_cpu", "sized", "events", "colors", "bitmap"]
    assert secs[".bss"] == ["last_key", "hidden"]
    var = types.by_name("counter", btf.Var)
    assert isinstance(var, btf.Var) and btf.c_name(var.target) == "u64"
    assert types.types[0] is btf.VOID and btf.c_name(btf.VOID) == "void"


# -- hand-built BTF: what clang 14 cannot emit (ENUM64, signed enums) and errors -----------


class _Builder:
    """Writes BTF blobs for tests (kinds and encodings from the kernel's btf.rst)."""

    def __init__(self) -> None:
        self.types = b""
        self.strings = b"\0"

    def s(self, text: str) -> int:
        off = len(self.strings)
        self.strings += text.encode() + b"\0"
        return off

    def add(self, name: str, kind: int, vlen: int, size_or_type: int, extra: bytes = b"") -> None:
        info = (kind << 24) | vlen
        self.add_raw(name, info, size_or_type, extra)

    def add_raw(self, name: str, info: int, size_or_type: int, extra: bytes = b"") -> None:
        self.types += struct.pack("<III", self.s(name) if name else 0, info, size_or_type) + extra

    def blob(self, magic: int = 0xEB9F) -> bytes:
        hdr = struct.pack(
            "<HBBIIIII", magic, 1, 0, 24, 0, len(self.types), len(self.types), len(self.strings)
        )
        return hdr + self.types + self.strings


def test_enum64_and_signed_enum() -> None:
    b = _Builder()
    # [1] enum64 big (unsigned): SMALL=1, HUGE=2**40
    b.add_raw(
        "big",
        (btf.KIND_ENUM64 << 24) | 2,
        8,
        struct.pack("<III", b.s("SMALL"), 1, 0) + struct.pack("<III", b.s("HUGE"), 0, 1 << 8),
    )
    # [2] signed enum64 with a negative value
    b.add_raw(
        "sbig",
        (1 << 31) | (btf.KIND_ENUM64 << 24) | 1,
        8,
        struct.pack("<III", b.s("MINUS"), 0xFFFFFFFF, 0xFFFFFFFF),
    )
    # [3] signed 32-bit enum: kind_flag set
    b.add_raw(
        "sign",
        (1 << 31) | (btf.KIND_ENUM << 24) | 2,
        4,
        struct.pack("<Ii", b.s("NEG"), -2) + struct.pack("<Ii", b.s("POS"), 3),
    )
    # [4] union fwd
    b.add_raw("uf", (1 << 31) | (btf.KIND_FWD << 24), 0)
    t = btf.Btf.from_bytes(b.blob())
    big, sbig, sign, uf = t.types[1:]
    assert isinstance(big, btf.Enum64) and not big.signed
    assert [(v.name, v.value) for v in big.members] == [("SMALL", 1), ("HUGE", 1 << 40)]
    assert isinstance(sbig, btf.Enum64) and sbig.signed and sbig.members[0].value == -1
    assert isinstance(sign, btf.Enum) and sign.signed
    assert [v.value for v in sign.members] == [-2, 3]
    assert isinstance(uf, btf.Fwd) and uf.union and btf.c_name(uf) == "union uf"
    assert btf.c_name(big) == "enum big"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda blob: b"\x9e" + blob[1:], "bad BTF magic"),
        (lambda blob: blob[:2] + b"\x02" + blob[3:], "unsupported BTF version"),
        (lambda blob: blob[:10], "shorter than its header"),
        (lambda blob: blob[:-3], "past the end"),
    ],
)
def test_btf_header_errors(mutate: object, message: str) -> None:
    b = _Builder()
    b.add("int", btf.KIND_INT, 0, 4, struct.pack("<I", (1 << 24) | 32))
    blob = b.blob()
    assert callable(mutate)
    with pytest.raises(BtfError, match=message):
        btf.Btf.from_bytes(mutate(blob))


def test_btf_unknown_kind_and_dangling_id() -> None:
    b = _Builder()
    b.add("x", 30, 0, 0)
    with pytest.raises(BtfError, match="unknown BTF kind 30"):
        btf.Btf.from_bytes(b.blob())
    b = _Builder()
    b.add("p", btf.KIND_PTR, 0, 7)
    with pytest.raises(BtfError, match="type id 7"):
        btf.Btf.from_bytes(b.blob())
    b = _Builder()
    b.add("int", btf.KIND_INT, 0, 4)  # missing the int encoding word
    with pytest.raises(BtfError, match="truncated"):
        btf.Btf.from_bytes(b.blob())
