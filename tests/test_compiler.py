"""Compiler tests: real clang, the real prelude, the object cache and error mapping."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from bpfnb.build import compiler
from bpfnb.errors import CompileError
from bpfnb.object.spec import ObjectSpec

from programs import GETPID_COUNTER as COUNTER


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kernel: None) -> Path:
    """A private cache shared by the tests of this module (the prelude builds once)."""
    shared = Path(os.environ.get("BPFNB_TEST_CACHE", "/tmp/bpfnb-test-cache"))
    monkeypatch.setenv("BPFNB_CACHE_DIR", str(shared))
    return shared


def test_compiles_with_prelude_and_license(cache: Path) -> None:
    result = compiler.compile_cell(COUNTER, "syscalls", use_cache=False)
    spec = ObjectSpec.from_file(result.object_path)
    assert list(spec.maps) == ["counts"]
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
