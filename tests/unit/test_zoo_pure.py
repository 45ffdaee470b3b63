"""The pure parts of the map zoo: symbol tables, folded stacks, flame graph layout, LPM
prefixes, map kinds, reuse compatibility, the new cell options, flame graph HTML."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from bpfnb.build.command import parse_cell_args, parse_line_args
from bpfnb.codec.lpm import LpmKey, mask
from bpfnb.codec.stacks import (
    Frame,
    build_tree,
    folded_line,
    format_folded,
    layout,
    merge_counts,
    parse_folded,
    strip_offset,
)
from bpfnb.errors import CommandError, MapTypeError
from bpfnb.kernel.reuse import incompatibility
from bpfnb.object import btf, maptypes, symbols
from bpfnb.object.elf import PT_LOAD, ElfFile
from bpfnb.object.spec import MapSpec
from bpfnb.ui.flamegraph import render_graph
from bpfnb.ui.summary import usage_of

# -- symbols ------------------------------------------------------------------------------

KALLSYMS = """\
0000000000000000 A fixed_percpu_data
ffffffff81000000 T _stext
ffffffff81000000 T _text
ffffffff81000100 t helper
ffffffff81000200 D some_data
ffffffffc0000000 t mod_func\t[mymod]
"""


def test_kallsyms_table() -> None:
    table = symbols.kallsyms_table(KALLSYMS)
    assert len(table) == 3  # one symbol per address, text symbols only
    assert table.name(0xFFFFFFFF81000000) in ("_stext", "_text")
    assert table.name(0xFFFFFFFF81000105) == "helper+0x5"
    assert table.name(0xFFFFFFFF81000205) == "helper+0x105"  # data is not a function
    assert table.lookup(0xFFFFFFFFC0000010) == ("mod_func", 0x10)
    assert table.lookup(0x1000) is None
    assert symbols.is_kernel_address(0xFFFFFFFF81000000)
    assert not symbols.is_kernel_address(0x7F0000000000)


def test_symbol_sizes_bound_lookups() -> None:
    table = symbols.SymbolTable([(0x1000, 0x10, "a"), (0x2000, 0, "b")])
    assert table.lookup(0x100F) == ("a", 0xF)
    assert table.lookup(0x1010) is None  # past a's size, before b
    assert table.lookup(0x9000) == ("b", 0x7000)  # unknown size: up to the next


MAPS = """\
55d0c0000000-55d0c0001000 r--p 00000000 08:01 1234 /usr/bin/prog
55d0c0001000-55d0c0002000 r-xp 00001000 08:01 1234 /usr/bin/prog
7f0000000000-7f0000021000 rw-p 00000000 00:00 0
7f0000100000-7f0000200000 r-xp 00028000 08:01 99 /usr/lib/libc.so.6 (deleted)
7ffd00000000-7ffd00002000 r-xp 00000000 00:00 0 [vdso]
"""


def test_parse_maps_and_find() -> None:
    maps = symbols.parse_maps(MAPS)
    assert len(maps) == 5
    code = symbols.find_mapping(maps, 0x55D0C0001234)
    assert code is not None and code.executable and code.offset == 0x1000
    assert code.basename == "prog" and code.file_backed
    lib = symbols.find_mapping(maps, 0x7F0000100010)
    assert lib is not None and lib.deleted and lib.basename == "libc.so.6"
    vdso = symbols.find_mapping(maps, 0x7FFD00000010)
    assert vdso is not None and not vdso.file_backed and vdso.basename == "[vdso]"
    assert symbols.find_mapping(maps, 0x10) is None
    assert symbols.find_mapping(maps, 0x7F0000021000) is None  # end is exclusive


def test_elf_function_table_of_a_real_executable() -> None:
    from native import build_stack_target

    elf = ElfFile(build_stack_target().read_bytes())
    table = symbols.elf_function_table(elf)
    starts = {s.name: s.value for s in elf.symbols if s.name.startswith("bpfnb_")}
    assert set(starts) >= {"bpfnb_leaf_syscall", "bpfnb_recurse", "bpfnb_outer_frame"}
    addr = starts["bpfnb_recurse"]
    assert table.lookup(addr + 3) == ("bpfnb_recurse", 3)
    # file offset -> ELF address through the PT_LOAD segments (PIE or not)
    seg = next(s for s in elf.segments if s.type == PT_LOAD and s.vaddr <= addr < s.vaddr + s.memsz)
    offset = addr - seg.vaddr + seg.offset
    assert symbols.file_offset_to_vaddr(elf.segments, offset) == addr
    # a stripped library keeps .dynsym
    libc = next(
        (p for p in ("/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libc.so.6")),
        None,
    )
    if libc is not None and sys.platform == "linux":
        lib = ElfFile(Path(libc).read_bytes())
        assert any(s.name == "getpid" for s in lib.dynamic_symbols())
        assert (
            symbols.elf_function_table(lib).lookup(
                next(s.value for s in lib.dynamic_symbols() if s.name == "getpid")
            )
            is not None
        )


# -- folded stacks and flame graph layout ---------------------------------------------------


def test_frames_and_folded_lines() -> None:
    k = Frame(0xFFFFFFFF81000105, "do_sys_openat2", 0x5A, None, kernel=True)
    u = Frame(0x401000, "main", 0x1A, "prog")
    lib = Frame(0x7F0000001000, None, 0x1234, "libc.so.6")
    lost = Frame(0x7F00DEAD0000)
    assert [f.text() for f in (k, u, lib, lost)] == [
        "do_sys_openat2+0x5a",
        "main+0x1a",
        "libc.so.6+0x1234",
        "0x7f00dead0000",
    ]
    assert [f.folded_name() for f in (k, u, lib, lost)] == [
        "do_sys_openat2_[k]",
        "main",
        "[libc.so.6]",
        "[unknown]",
    ]
    # innermost first in, root first out
    assert folded_line([k, u, lib], ["bash"]) == "bash;[libc.so.6];main;do_sys_openat2_[k]"
    assert folded_line([Frame(1, "a;b")]) == "a:b"
    assert strip_offset("main+0x1a") == "main" and strip_offset("main") == "main"


def test_folded_text_round_trip() -> None:
    counts = {"a;b;c": 3, "a;b": 2, "x y;z": 1}
    text = format_folded(counts)
    assert text == "a;b 2\na;b;c 3\nx y;z 1\n"
    assert parse_folded(text + "a;b 5\n\n") == {"a;b": 7, "a;b;c": 3, "x y;z": 1}
    assert merge_counts([("a", 1), ("a", 2), ("", 5), ("b", 0)]) == {"a": 3}


def test_tree_and_layout() -> None:
    tree = build_tree({"main;work;spin": 6, "main;work;idle": 2, "main;io": 2, "other": 0})
    assert tree.value == 10 and tree.find(["main", "work"]).value == 8  # type: ignore[union-attr]
    assert tree.find(["main", "work"]).self_value == 0  # type: ignore[union-attr]
    rects = {r.path: r for r in layout(tree)}
    assert rects[""].width == 1.0 and rects[""].name == "all"
    io, work = rects["main;io"], rects["main;work"]
    assert (io.x, io.width, io.depth) == (0.0, 0.2, 2)  # callees sorted by name
    assert (work.x, work.width) == (0.2, 0.8)
    spin = rects["main;work;spin"]
    assert spin.x == pytest.approx(0.4) and spin.width == pytest.approx(0.6) and spin.depth == 3
    narrow = layout(tree, min_width=0.25)
    assert {r.path for r in narrow} == {"", "main", "main;work", "main;work;spin"}
    widest = layout(tree, max_rects=3)
    assert [r.path for r in widest] == ["", "main", "main;work"]
    assert layout(build_tree({}))[0].value == 0


def test_flamegraph_html() -> None:
    html = render_graph({"main;<work>;spin_[k]": 3, "main;idle": 1}, "g1")
    assert 'id="g1" data-total="4" data-frames="5"' in html
    assert 'data-n="&lt;work&gt;"' in html and "<work>" not in html
    frames = re.findall(r'class="bpfnb-fg-f" style="left:([\d.]+)%;width:([\d.]+)%', html)
    assert len(frames) == 5
    assert "onclick=" in html and "onmouseover=" in html and "bpfnbFlameZoom" in html
    assert "(no samples yet)" in render_graph({}, "g2")
    assert "prog.bf.add(x)" in usage_of("bloom_filter", "bf")


# -- LPM keys -----------------------------------------------------------------------------------


def test_lpm_keys() -> None:
    v4 = LpmKey(8)
    raw = v4.encode("10.1.2.77/24")
    assert raw == bytes([24, 0, 0, 0, 10, 1, 2, 0]) and v4.text(raw) == "10.1.2.0/24"
    assert v4.encode("10.1.2.3") == bytes([32, 0, 0, 0, 10, 1, 2, 3])
    assert v4.encode((16, "10.9.0.0")) == v4.encode("10.9.0.0/16")
    assert v4.matches(raw, v4.address_bytes("10.1.2.200"))
    assert not v4.matches(raw, v4.address_bytes("10.1.3.1"))
    with pytest.raises(MapTypeError, match="out of range"):
        v4.encode("10.0.0.0/33")
    with pytest.raises(MapTypeError, match="has 16 bytes; this trie's data has 4"):
        v4.encode("2001:db8::/32")
    with pytest.raises(MapTypeError, match="not an ipv4 address"):
        v4.encode("ten/8")
    v6 = LpmKey(20)
    assert v6.text(v6.encode("2001:db8::1/32")) == "2001:db8::/32"
    raw6 = LpmKey(6)
    assert raw6.family == "bytes" and raw6.text(raw6.encode("0a0b/12")) == "0a00/12"
    assert mask(b"\xff\xff", 9) == b"\xff\x80" and mask(b"\xff", 0) == b"\x00"


def test_lpm_key_of_a_padded_struct() -> None:
    u32 = btf.Int(id=1, name="u32", size=4)
    u8 = btf.Int(id=2, name="u8", size=1)
    data = btf.Array(id=3, name="", element=u8, index=u32, length=2)
    key = btf.Struct(
        id=4,
        name="k",
        size=8,
        members=[btf.Member("prefixlen", u32, 0), btf.Member("data", data, 32)],
    )
    layout_ = LpmKey.of_type(8, key)
    assert layout_.data_size == 2 and layout_.max_prefixlen == 16
    assert layout_.encode("0a0b/16") == bytes([16, 0, 0, 0, 0x0A, 0x0B, 0, 0])


# -- kinds and reuse ----------------------------------------------------------------------------


def test_kinds_of_the_zoo() -> None:
    assert maptypes.is_stack_trace("stack_trace")
    assert maptypes.is_queue("queue") and maptypes.is_queue("stack")
    assert maptypes.is_map_in_map("hash_of_maps")
    assert maptypes.is_object_storage("cgrp_storage")
    assert not maptypes.is_listable("bloom_filter") and not maptypes.is_listable("devmap")
    assert maptypes.is_listable("lpm_trie") and maptypes.is_listable("task_storage")
    assert maptypes.is_writable("lpm_trie") and not maptypes.is_writable("queue")


def _spec(name: str, value_size: int = 8, max_entries: int = 64, **kw: object) -> MapSpec:
    return MapSpec(name, maptypes.HASH, None, None, 4, value_size, max_entries, 0, **kw)  # type: ignore[arg-type]


def test_incompatibility_reasons() -> None:
    assert incompatibility(_spec("a"), _spec("a")) is None
    assert incompatibility(_spec("a", 4), _spec("a")) == "value type changed: 8 bytes -> 4 bytes"
    assert incompatibility(_spec("a", max_entries=9), _spec("a")) == "max_entries changed: 64 -> 9"
    other = MapSpec("a", maptypes.LRU_HASH, None, None, 4, 8, 64, 0)
    assert incompatibility(other, _spec("a")) == "type changed: hash -> lru_hash"
    assert incompatibility(_spec("a", map_extra=3), _spec("a")) == "map_extra changed: 0 -> 3"


# -- cell options ---------------------------------------------------------------------------------


def test_zoo_cell_options() -> None:
    args = parse_cell_args("p --sample-freq 49 --keep-maps --use producer.counts --use t=a.b")
    assert (args.sample_freq, args.sample_period, args.keep_maps) == (49, None, True)
    assert args.use == {"counts": "producer.counts", "t": "a.b"}
    plain = parse_cell_args("p")
    assert plain.keep_maps is None and plain.use == {} and plain.sample_freq is None
    assert parse_cell_args("p --sample-period 100000").sample_period == 100000
    with pytest.raises(CommandError, match="exclude each other"):
        parse_cell_args("p --sample-freq 9 --sample-period 9")
    with pytest.raises(CommandError, match="positive"):
        parse_cell_args("p --sample-freq 0")
    with pytest.raises(CommandError, match=r"PROG\.MAP"):
        parse_cell_args("p --use counts")
    assert parse_line_args("pins").action == "pins"
    assert parse_line_args("unpin counts").name == "counts"
    assert parse_line_args("unpin --all").all
    with pytest.raises(CommandError, match="unpin NAME"):
        parse_line_args("unpin")
