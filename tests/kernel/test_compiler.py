"""Compiler tests: real clang, the real prelude, the object cache and error mapping."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from bpfnb.build import cache as cache_module
from bpfnb.build import compiler
from bpfnb.errors import CommandError, CompileError
from bpfnb.object.elf import ElfFile
from bpfnb.object.spec import ObjectSpec

from programs import GETPID_COUNTER as COUNTER
from programs import SYNTAX_ERROR, SYNTAX_ERROR_LINE


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kernel: None) -> Path:
    """A private cache shared by the tests of this module (the prelude builds once)."""
    shared = Path(os.environ.get("BPFNB_TEST_CACHE", "/tmp/bpfnb-test-cache"))
    monkeypatch.setenv("BPFNB_CACHE_DIR", str(shared))
    return shared


def test_compiles_with_prelude_and_license(cache: Path) -> None:
    result = compiler.compile_cell(COUNTER, "syscalls", use_cache=False)
    spec = ObjectSpec.from_file(result.object_path)
    assert list(spec.user_maps) == ["counts"]
    assert [(p.name, p.section) for p in spec.programs] == [
        ("on_getpid", "tracepoint/syscalls/sys_enter_getpid")
    ]
    assert spec.license == "GPL"
    assert result.source_name == "syscalls.bpf.c"


def test_cell_license_is_kept(cache: Path) -> None:
    source = COUNTER + 'char LICENSE[] SEC("license") = "Dual BSD/GPL";\n'
    spec = ObjectSpec.from_file(compiler.compile_cell(source, "lic").object_path)
    assert spec.license == "Dual BSD/GPL"


def test_object_cache_hit_and_corrupt_entry_rebuilt(cache: Path) -> None:
    source = COUNTER + "/* cache test */\n"
    first = compiler.compile_cell(source, "cached")
    second = compiler.compile_cell(source, "cached")
    assert second.cached and second.object_path == first.object_path
    first.object_path.write_bytes(b"garbage")
    third = compiler.compile_cell(source, "cached")
    assert not third.cached
    assert ObjectSpec.from_file(third.object_path).maps["counts"].max_entries == 10240


def test_cache_dirs_are_private(cache: Path) -> None:
    compiler.compile_cell(COUNTER, "private")
    for path in [cache, *(p for p in cache.iterdir() if p.is_dir())]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o700, path


def test_corrupt_vmlinux_header_is_regenerated(cache: Path) -> None:
    header = compiler.vmlinux_header()
    good = header.read_bytes()
    header.write_bytes(good[: len(good) // 2])
    assert compiler.vmlinux_header().read_bytes() == good


def test_defines_and_include_dirs_pass_through(cache: Path, tmp_path: Path) -> None:
    (tmp_path / "extra.h").write_text("#define FROM_HEADER 7\n")
    source = (
        '#include "extra.h"\n'
        "const volatile int from_define = VALUE;\n"
        "const volatile int from_header = FROM_HEADER;\n"
        'SEC("tracepoint/syscalls/sys_enter_getpid") int p(void *c) '
        "{ return from_define + from_header; }\n"
    )
    result = compiler.compile_cell(
        source, "flags", defines={"VALUE": "5"}, include_dirs=[str(tmp_path)]
    )
    spec = ObjectSpec.from_file(result.object_path)
    assert set(spec.globals) == {"from_define", "from_header"}
    with pytest.raises(CompileError, match="VALUE"):
        compiler.compile_cell(source, "flags", include_dirs=[str(tmp_path)])


def test_syntax_error_reports_cell_line(cache: Path) -> None:
    source = COUNTER.replace("u32 pid = ", "u32 pid = = ")
    with pytest.raises(CompileError) as info:
        compiler.compile_cell(source, "broken")
    message = str(info.value)
    line = source.splitlines().index("    u32 pid = = bpf_get_current_pid_tgid() >> 32;") + 1
    assert f"line {line}," in message
    assert "u32 pid = = bpf_get_current_pid_tgid()" in message
    assert "expected expression" in message
    assert "vmlinux" not in message and "prelude" not in message
    assert info.value.diagnostics[0].in_cell and info.value.diagnostics[0].line == line


def test_undeclared_identifier_points_at_column(cache: Path) -> None:
    with pytest.raises(CompileError) as info:
        compiler.compile_cell("int f(void)\n{\n    return missing_thing;\n}\n", "undecl")
    text = str(info.value)
    assert "line 3, col 12: use of undeclared identifier 'missing_thing'" in text
    assert "   3 |     return missing_thing;" in text


def test_warm_compile_uses_pch(cache: Path) -> None:
    compiler.compile_cell(COUNTER, "warm")  # make sure the prelude exists
    pre = compiler.prelude([])
    assert pre.pch.exists() and pre.pch.stat().st_size > 1_000_000
    result = compiler.compile_cell(COUNTER + "/* warm */\n", "warm", use_cache=False)
    assert not result.cached


def test_name_clash_with_vmlinux_gets_a_hint(cache: Path) -> None:
    source = (
        "struct {\n    __uint(type, BPF_MAP_TYPE_ARRAY);\n    __type(key, u32);\n"
        '    __type(value, u64);\n    __uint(max_entries, 1);\n} config SEC(".maps");\n'
    )
    with pytest.raises(CompileError) as info:
        compiler.compile_cell(source, "clash")
    text = str(info.value)
    assert "line 6, col 3: redefinition of 'config'" in text
    assert "hint: 'config' is already defined by vmlinux.h" in text


# -- line numbers as the notebook shows them ------------------------------------------------


@pytest.mark.parametrize("offset", [0, 1])
def test_compile_error_and_warning_lines_follow_the_offset(cache: Path, offset: int) -> None:
    with pytest.raises(CompileError) as info:
        compiler.compile_cell(SYNTAX_ERROR, "broken", line_offset=offset)
    shown = SYNTAX_ERROR_LINE + offset
    text = str(info.value)
    assert f"  line {shown}, col 47: expected ';' at end of declaration" in text
    assert f"  {shown:>4} |     u32 pid = bpf_get_current_pid_tgid() >> 32" in text
    assert info.value.diagnostics[0].line == shown
    warned = SYNTAX_ERROR.replace(
        "    u32 pid = bpf_get_current_pid_tgid() >> 32\n",
        '#warning "line four"\n    u32 pid = 1;\n',
    )
    for _ in range(2):  # compiled, then from the cache: the same lines
        result = compiler.compile_cell(warned, "warned", line_offset=offset)
        assert [(w.line, w.message) for w in result.warnings] == [
            (4 + offset, '"line four" [-W#warnings]')
        ]
    assert result.cached


# -- the object cache follows the include search path ---------------------------------------


def _global(path: Path, name: str) -> int:
    spec = ObjectSpec.from_file(path)
    var = spec.globals[name]
    section = ElfFile(path.read_bytes()).section(var.section)
    assert section is not None
    return int.from_bytes(section.data[var.offset : var.offset + var.size], "little")


SHADOW_CELL = (
    '#include "foo.h"\n'
    "const volatile int value = VAL;\n"
    'SEC("tracepoint/syscalls/sys_enter_getpid") int p(void *c) { return value; }\n'
)


def test_header_created_in_cwd_shadows_the_cached_one(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "inc").mkdir()
    (tmp_path / "work").mkdir()
    (tmp_path / "inc" / "foo.h").write_text("#define VAL 1\n")
    monkeypatch.chdir(tmp_path / "work")
    first = compiler.compile_cell(SHADOW_CELL, "shadow", include_dirs=[str(tmp_path / "inc")])
    assert _global(first.object_path, "value") == 1
    (tmp_path / "work" / "foo.h").write_text("#define VAL 2\n")  # found before -I now
    second = compiler.compile_cell(SHADOW_CELL, "shadow", include_dirs=[str(tmp_path / "inc")])
    assert not second.cached and _global(second.object_path, "value") == 2
    (tmp_path / "work" / "foo.h").unlink()
    third = compiler.compile_cell(SHADOW_CELL, "shadow", include_dirs=[str(tmp_path / "inc")])
    assert not third.cached and _global(third.object_path, "value") == 1
    assert compiler.compile_cell(SHADOW_CELL, "shadow", include_dirs=[str(tmp_path / "inc")]).cached


def test_header_created_in_an_earlier_include_dir_shadows(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    early, late = tmp_path / "early", tmp_path / "late"
    (late / "sub").mkdir(parents=True)
    (late / "sub" / "foo.h").write_text("#define VAL 3\n")
    monkeypatch.chdir(tmp_path)
    cell = SHADOW_CELL.replace('"foo.h"', "<sub/foo.h>")
    dirs = ["early", str(late)]  # "early" does not exist yet; relative to the cwd
    assert (
        _global(compiler.compile_cell(cell, "order", include_dirs=dirs).object_path, "value") == 3
    )
    (early / "sub").mkdir(parents=True)
    (early / "sub" / "foo.h").write_text("#define VAL 4\n")
    result = compiler.compile_cell(cell, "order", include_dirs=dirs)
    assert not result.cached and _global(result.object_path, "value") == 4
    # the same through --cflags with a relative -I (made absolute against the cwd)
    via_cflags = compiler.compile_cell(cell, "order", cflags=["-Iearly", f"-I{late}"])
    assert _global(via_cflags.object_path, "value") == 4


# -- libbpf-tools programs: #include "vmlinux.h" ----------------------------------------------


@pytest.mark.parametrize("spelling", ['"vmlinux.h"', "<vmlinux.h>"])
def test_vmlinux_include_is_the_cached_header(cache: Path, tmp_path: Path, spelling: str) -> None:
    (tmp_path / "vmlinux.h").write_text('#error "the tool\'s own vmlinux.h was used"\n')
    source = (
        f"#include {spelling}\n#include <bpf/bpf_helpers.h>\n#include <bpf/bpf_tracing.h>\n"
        'SEC("tp_btf/sched_switch")\n'
        "int BPF_PROG(on_switch, bool preempt, struct task_struct *prev) { return prev->pid; }\n"
    )
    for dirs in ([], [str(tmp_path)]):
        result = compiler.compile_cell(source, "tool", include_dirs=dirs, use_cache=False)
        assert [p.section for p in ObjectSpec.from_file(result.object_path).programs] == [
            "tp_btf/sched_switch"
        ]


# -- names and cache bounds -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["../../dir/x", "a/b", "", "x.y", "1abc", "x" * 200, "a\0b"])
def test_names_that_would_become_odd_paths_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setenv("BPFNB_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(CommandError, match="letters, digits and _"):
        compiler.compile_cell(COUNTER, name)
    assert not (tmp_path / "cache").exists() and not (tmp_path / "dir").exists()


def test_distinct_defines_keep_the_cache_bounded(
    kernel: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BPFNB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("BPFNB_CACHE_MAX_MB", "40")
    monkeypatch.setattr(cache_module, "GRACE_SECONDS", 0.0)
    preludes: list[Path] = []
    for i in range(4):
        compiler.compile_cell(COUNTER, "bounded", defines={"VARIANT": str(i)})
        preludes.append(compiler.prelude([f"-DVARIANT={i}"]).directory)
        assert cache_module.cache_size() <= 40 * 2**20
    assert len(set(preludes)) == 4
    assert [p.exists() for p in preludes] == [False, False, True, True]
    assert compiler.compile_cell(COUNTER, "bounded", defines={"VARIANT": "3"}).cached
