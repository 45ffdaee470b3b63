"""Compile a ``%%bpf`` cell into a BPF object file with clang.

The cell is compiled behind a *prelude*: the kernel's ``vmlinux.h`` (see
:mod:`bpfnb.build.toolchain`), libbpf's ``bpf_helpers.h``, ``bpf_tracing.h`` and
``bpf_core_read.h``, and bpfnb's own ``bpfnb.h``. The prelude is precompiled into a
clang PCH once per kernel, toolchain and flag set, so a warm compile parses only the
cell itself. Objects are cached by content (source, flags, prelude, include search
path) and validated against every file the compile read and every earlier place in
the include search path where a same-named header would have been found first (see
:class:`bpfnb.build.cache.Dependencies`).

The cell is written to ``NAME.bpf.c`` unchanged, followed by extra lines only at its
end (a GPL license section when the cell has none, then the event-type epilogue), so
clang's and the verifier's line numbers are the cell's own; messages add the
``line_offset`` of the cell (see :mod:`bpfnb.diagnostics`). Declarations a particular
cell needs before its first line (the kernel's kfunc prototypes it calls, see
:mod:`bpfnb.build.kfuncs`) go in a *preamble* file clang includes first
(``-include``), so they move no cell line either. A call of an undeclared function is
an error (``-Werror=implicit-function-declaration``), not a link failure in libbpf.

``#include "vmlinux.h"`` and ``#include <vmlinux.h>`` (the first line of libbpf-tools
programs) find the running kernel's cached ``vmlinux.h`` before any other, also before a
copy in a directory given with ``-I``; it is the header the prelude already holds, so the
include adds nothing.

Everything here runs clang without a shell, in private temporary directories.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bpfnb.build import cache
from bpfnb.build.cache import cache_root
from bpfnb.build.toolchain import (
    INCLUDE_DIR,
    LIBBPF_HEADERS,
    SYSTEM_INCLUDE_DIRS,
    VMLINUX_BTF,
    clang_version,
    cpu_version,
    find_bpftool,
    find_clang,
    kernel_dir,
    kernel_identity,
    libbpf_include_dir,
    system_include_dirs,
    target_arch,
    vmlinux_header,
)
from bpfnb.diagnostics import (
    Diagnostic,
    first_lines,
    format_compile_error,
    parse_diagnostics,
)
from bpfnb.errors import CommandError, CompileError

# Names other modules (kernel/system.py, benchmarks/compile.py) import from here.
__all__ = [
    "BASE_FLAGS",
    "INCLUDE_DIR",
    "LIBBPF_HEADERS",
    "SYSTEM_INCLUDE_DIRS",
    "VMLINUX_BTF",
    "CompileResult",
    "Diagnostic",
    "Prelude",
    "cache_root",
    "cell_text",
    "check_name",
    "clang_version",
    "compile_cell",
    "cpu_version",
    "find_bpftool",
    "find_clang",
    "format_compile_error",
    "include_search_path",
    "kernel_identity",
    "libbpf_include_dir",
    "parse_diagnostics",
    "prelude",
    "target_arch",
    "user_flags",
    "vmlinux_header",
]

BASE_FLAGS = ("-target", "bpf", "-g", "-O2")
OBJECT_FORMAT = "bpfnb-object-2"  # part of every object key: bump when the entry format changes
MAX_NAME = 128
_LICENSE_RE = re.compile(r"""SEC\s*\(\s*"license"\s*\)""")
_STALE_PCH = ("precompiled header", "PCH file")
# clang options that take a directory, and which part of the search path they feed.
_DIR_OPTIONS = {"-iquote": "quote", "-I": "angle", "-isystem": "system", "-idirafter": "after"}


@dataclass
class CompileResult:
    """What :func:`compile_cell` produced.

    Attributes
    ----------
    object_path : Path
        The compiled object (in the cache; do not modify it).
    cached : bool
        True when the object came from the cache without running clang.
    seconds : float
        Wall time of the whole call.
    source_name : str
        The file name clang saw (``NAME.bpf.c``), as it appears in line info.
    warnings : list of Diagnostic
        clang warnings located in the cell, with the lines the user sees (cell line
        plus ``line_offset``).
    """

    object_path: Path
    cached: bool
    seconds: float
    source_name: str
    warnings: list[Diagnostic] = field(default_factory=list)


def check_name(name: str) -> str:
    """Return ``name`` when it can name a cell file (identifier characters only).

    Raises
    ------
    CommandError
        ``name`` is empty, too long, or holds anything but letters, digits and ``_``
        (a ``/`` or ``..`` would put files outside bpfnb's directories).
    """
    if not isinstance(name, str) or not name.isidentifier() or len(name) > MAX_NAME:
        raise CommandError(
            f"program name {name!r} is not valid: use letters, digits and _ "
            f"(not starting with a digit, at most {MAX_NAME} characters)"
        )
    return name


# -- flags and the include search path ----------------------------------------------------------


def _split_dir_option(tokens: Sequence[str], i: int) -> tuple[str, str, int] | None:
    """Read a directory option at ``tokens[i]``: (option, directory, tokens used) or None."""
    token = tokens[i]
    option = next((o for o in _DIR_OPTIONS if token.startswith(o)), None)
    if option is None:
        return None
    if token != option:
        return option, token[len(option) :], 1
    if i + 1 < len(tokens):
        return option, tokens[i + 1], 2
    return None


def _absolute_dirs(flags: Sequence[str], base: str) -> list[str]:
    """Make the directories of ``-I``/``-iquote``/``-isystem``/``-idirafter`` absolute."""
    out: list[str] = []
    i = 0
    while i < len(flags):
        found = _split_dir_option(flags, i)
        if found is None:
            out.append(flags[i])
            i += 1
            continue
        option, directory, used = found
        out += [option, os.path.join(base, directory)]
        i += used
    return out


def user_flags(
    defines: dict[str, str] | None = None,
    include_dirs: Sequence[str] = (),
    cflags: Sequence[str] = (),
) -> list[str]:
    """Turn ``-D``/``-I``/``--cflags`` options into clang arguments.

    Include directories (``-I DIR`` and directory options inside ``cflags``) are made
    absolute against the current directory: clang runs in a temporary one.
    """
    flags: list[str] = []
    for name, value in (defines or {}).items():
        flags.append(f"-D{name}={value}")
    for directory in include_dirs:
        flags += ["-I", str(Path(directory).resolve())]
    flags += _absolute_dirs(cflags, os.getcwd())
    return flags


def _dir_options(flags: Sequence[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {kind: [] for kind in _DIR_OPTIONS.values()}
    i = 0
    while i < len(flags):
        option = _split_dir_option(flags, i)
        if option is None:
            i += 1
            continue
        found[_DIR_OPTIONS[option[0]]].append(option[1])
        i += option[2]
    return found


def include_search_path(
    flags: Sequence[str], quote_dirs: Sequence[str], clang: str | None = None
) -> list[str]:
    """Return clang's include search path for a compile with ``flags``, in order.

    Parameters
    ----------
    flags : sequence of str
        The compile's flags (directory options are read from them).
    quote_dirs : sequence of str
        ``-iquote`` directories given outside ``flags``, searched first.
    clang : str, optional
        The clang whose default directories end the list (found when omitted).

    Returns
    -------
    list of str
        ``-iquote`` directories, then ``-I``, ``-isystem``, clang's defaults and
        ``-idirafter`` ones. Directories that do not exist yet are kept: a header
        created there later would be found.
    """
    options = _dir_options(flags)
    ordered = [
        *quote_dirs,
        *options["quote"],
        *options["angle"],
        *options["system"],
        *system_include_dirs(clang or find_clang()),
        *options["after"],
    ]
    return [os.path.normpath(d) for d in dict.fromkeys(ordered)]


# -- the prelude ------------------------------------------------------------------------------


def _bpfnb_headers_digest() -> str:
    names = sorted(INCLUDE_DIR.rglob("*.h"))
    return cache.sha256(
        b"".join(str(h.relative_to(INCLUDE_DIR)).encode() + h.read_bytes() for h in names)
    )


def _libbpf_headers_digest(include: Path) -> str:
    parts = []
    for header in sorted((include / "bpf").glob("*.h")):
        st = header.stat()
        parts.append(f"{header.name}:{st.st_size}:{st.st_mtime_ns}\n")
    return cache.sha256("".join(parts).encode())


@dataclass(frozen=True)
class Prelude:
    """A precompiled prelude: ``prelude.h`` and its PCH, for one flag set."""

    header: Path
    pch: Path
    flags: tuple[str, ...]

    @property
    def directory(self) -> Path:
        """The cache entry holding the prelude."""
        return self.header.parent

    def ready(self) -> bool:
        """Whether the PCH was built completely."""
        return (self.directory / "ok").exists() and self.pch.exists()


def _prelude_flags(clang: str, user: Sequence[str], kernel: Path) -> tuple[str, ...]:
    return (
        *BASE_FLAGS,
        f"-mcpu={cpu_version(clang)}",
        f"-D__TARGET_ARCH_{target_arch()}",
        "-I",
        str(kernel),
        "-I",
        str(INCLUDE_DIR),
        *user,
    )


def _prelude_for(clang: str, user: Sequence[str]) -> tuple[Prelude, Path]:
    vmlinux = vmlinux_header()
    flags = _prelude_flags(clang, user, vmlinux.parent)
    key = cache.sha256(
        json.dumps(
            [
                clang_version(clang),
                flags,
                str(vmlinux),
                (vmlinux.parent / "vmlinux.h.sha256").read_text().strip(),
                _bpfnb_headers_digest(),
                _libbpf_headers_digest(libbpf_include_dir()),
            ]
        ).encode()
    )[:20]
    directory = cache_root() / f"prelude-{key}"
    return Prelude(directory / "prelude.h", directory / "prelude.h.pch", flags), vmlinux


@contextlib.contextmanager
def _held_prelude(clang: str, user: Sequence[str]) -> Iterator[Prelude]:
    """Yield a ready prelude for ``user`` flags, holding its lock shared (no eviction)."""
    for _ in range(5):
        pre, vmlinux = _prelude_for(clang, user)
        cache.private_dir(pre.directory)
        with cache.locked(pre.directory, shared=True) as live:
            if live and pre.ready():
                cache.mark_used(pre.directory)
                yield pre
                return
        with cache.locked(pre.directory) as live:
            if live and not pre.ready():
                _build_prelude(clang, pre, vmlinux)
                cache.mark_used(pre.directory)
                built = True
            else:
                built = False
        if built:
            _prune(keep=[pre.directory])
    raise CompileError(f"the prelude in {pre.directory} keeps being removed while it is built")


def prelude(user_flags: Sequence[str] = ()) -> Prelude:
    """Return the precompiled prelude for ``user_flags``, building it when missing.

    Parameters
    ----------
    user_flags : sequence of str
        The cell's ``-D``/``-I``/``--cflags`` flags: the PCH must be built with the
        same macros and options as the cell.
    """
    with _held_prelude(find_clang(), user_flags) as pre:
        return pre


def _prelude_text(vmlinux: Path) -> str:
    return (
        "/* bpfnb prelude: what every %%bpf cell is compiled behind */\n"
        f'#include "{vmlinux}"\n'
        + "".join(f"#include <{h}>\n" for h in LIBBPF_HEADERS)
        + '#include "bpfnb.h"\n'
    )


def _build_prelude(clang: str, pre: Prelude, vmlinux: Path) -> None:
    """Build the PCH (the caller holds the prelude's lock exclusively)."""
    with contextlib.suppress(FileNotFoundError):
        (pre.directory / "ok").unlink()
    cache.write_atomic(pre.header, _prelude_text(vmlinux).encode())
    tmp_pch = pre.pch.with_name(f".{pre.pch.name}.{os.getpid()}")
    argv = [clang, *pre.flags, "-x", "c-header", str(pre.header), "-o", str(tmp_pch)]
    out = subprocess.run(argv, capture_output=True, text=True, check=False, env=_clang_env())
    if out.returncode != 0:
        with contextlib.suppress(FileNotFoundError):
            tmp_pch.unlink()
        raise CompileError(
            "the bpfnb prelude (vmlinux.h, libbpf headers, bpfnb.h) does not compile with "
            f"these flags:\n{first_lines(out.stderr, 12)}",
            log=out.stderr,
        )
    os.replace(tmp_pch, pre.pch)
    cache.write_atomic(pre.directory / "ok", clang_version(clang).encode())


def _invalidate_prelude(pre: Prelude) -> None:
    """Mark a prelude whose PCH went stale (a header changed under it) for a rebuild."""
    with cache.locked(pre.directory) as live:
        if live:
            with contextlib.suppress(FileNotFoundError):
                (pre.directory / "ok").unlink()


# -- the cell ---------------------------------------------------------------------------------


def cell_text(source: str, epilogue: str = "") -> str:
    """Return the text clang compiles: the cell, then lines appended at its end.

    A GPL license section is added when the cell has none. Nothing is inserted
    before or inside the cell, so its line numbers are unchanged.
    """
    text = source if source.endswith("\n") else source + "\n"
    if not _LICENSE_RE.search(source):
        text += 'char _bpfnb_license[] SEC("license") = "GPL";\n'
    if epilogue:
        text += epilogue if epilogue.endswith("\n") else epilogue + "\n"
    return text


def _depfile_paths(text: str) -> list[str]:
    """Absolute paths named by a clang ``-MD`` file (the cell itself is relative)."""
    body = text.split(":", 1)[1] if ":" in text else ""
    paths = re.split(r"(?<!\\)\s+", body.replace("\\\n", " ").strip())
    return [p.replace("\\ ", " ") for p in paths if os.path.isabs(p.replace("\\ ", " "))]


def _clang_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CPATH", "C_INCLUDE"))}
    env["LC_ALL"] = "C"
    return env


def _prune(keep: Sequence[Path]) -> None:
    """Bound the cache after a write; a failure to prune never fails a compile."""
    with contextlib.suppress(OSError):
        cache.prune(keep=[*keep, kernel_dir()])


def compile_cell(
    source: str,
    name: str = "cell",
    *,
    defines: dict[str, str] | None = None,
    include_dirs: Sequence[str] = (),
    cflags: Sequence[str] = (),
    epilogue: str = "",
    use_cache: bool = True,
    line_offset: int = 0,
    preamble: str = "",
    display_source: str | None = None,
) -> CompileResult:
    """Compile the C text of a cell into a BPF object.

    Parameters
    ----------
    source : str
        The cell's C code, exactly as the user wrote it.
    name : str
        The program name (identifier characters only); clang sees the file as
        ``NAME.bpf.c``.
    defines, include_dirs, cflags
        ``-D``, ``-I`` and ``--cflags`` of the cell.
    epilogue : str
        C text appended after the cell (and its license line).
    use_cache : bool
        Reuse an object compiled earlier from the same inputs.
    line_offset : int
        Added to the cell lines named in errors and warnings: 1 for a ``%%bpf`` cell
        (the notebook numbers the ``%%bpf`` line as 1), 0 for files and plain text.
    preamble : str
        C text clang reads before the cell (``-include``); it moves no cell line.
    display_source : str, optional
        The text errors quote, when ``source`` is a line-preserving rewrite of what
        the user wrote (the BCC dialect); by default ``source``.

    Returns
    -------
    CompileResult

    Raises
    ------
    CompileError
        clang rejected the cell; the message quotes the cell's own lines.
    CommandError
        ``name`` is not an identifier.
    ToolMissingError, KernelFeatureError, CacheError
        clang, bpftool, headers or kernel BTF are missing, or the cache is unsafe.
    """
    start = time.perf_counter()
    check_name(name)
    clang = find_clang()
    extra = user_flags(defines, include_dirs, cflags)
    cell = _Cell(
        name,
        source,
        cell_text(source, epilogue),
        f"{name}.bpf.c",
        line_offset,
        preamble,
        source if display_source is None else display_source,
    )
    for _ in range(2):
        with _held_prelude(clang, extra) as pre:
            result = _compile_with(clang, pre, cell, use_cache)
        if result is None:
            _invalidate_prelude(pre)  # its PCH went stale: rebuilt on the next round
            continue
        if not result.cached:
            _prune(keep=[pre.directory])
        result.seconds = time.perf_counter() - start
        return result
    raise CompileError(f"clang keeps rejecting the precompiled prelude in {pre.directory}")


@dataclass(frozen=True)
class _Cell:
    name: str
    source: str
    text: str
    source_name: str
    line_offset: int
    preamble: str = ""
    shown: str = ""


def _compile_with(clang: str, pre: Prelude, cell: _Cell, use_cache: bool) -> CompileResult | None:
    """Compile ``cell`` with a held prelude; None when clang found the PCH stale."""
    quote_dirs = [str(kernel_dir()), os.getcwd()]
    key = cache.sha256(
        json.dumps(
            [
                OBJECT_FORMAT,
                cell.text,
                cell.source_name,
                str(pre.pch),
                pre.flags,
                quote_dirs,
                cell.preamble,
            ]
        ).encode()
    )[:32]
    if use_cache:
        hit = cache.lookup_object(key)
        if hit is not None:
            stored = [Diagnostic(**d) for d in hit.extra.get("warnings", [])]
            shown = [d.shifted(cell.line_offset) for d in stored]
            return CompileResult(hit.path, True, 0.0, cell.source_name, shown)
    with tempfile.TemporaryDirectory(prefix="bpfnb-cc-") as tmp:
        run = _run_clang(
            clang, pre, quote_dirs, cell.text, cell.source_name, Path(tmp), cell.preamble
        )
        if run.returncode != 0 and any(s in run.stderr for s in _STALE_PCH):
            return None
        raw = parse_diagnostics(
            run.stderr, cell.source_name, cell_lines=len(cell.source.splitlines())
        )
        if run.returncode != 0:
            shown = [_on_shown_line(d, cell).shifted(cell.line_offset) for d in raw]
            message = format_compile_error(
                cell.name, cell.shown, shown, run.stderr, line_offset=cell.line_offset
            )
            raise CompileError(message, shown, run.stderr)
        deps = cache.Dependencies.scan(
            _depfile_paths((Path(tmp) / "deps.d").read_text()),
            include_search_path(pre.flags, quote_dirs, clang),
        )
        data = (Path(tmp) / "out.o").read_bytes()
    warnings = [d for d in raw if d.kind == "warning" and d.in_cell]
    obj = cache.store_object(key, data, deps, {"warnings": [d.__dict__ for d in warnings]})
    shown = [d.shifted(cell.line_offset) for d in warnings]
    return CompileResult(obj, False, 0.0, cell.source_name, shown)


def _on_shown_line(diag: Diagnostic, cell: _Cell) -> Diagnostic:
    """Keep a column inside the user's line when clang saw a rewritten, longer one."""
    if not diag.in_cell or cell.shown is cell.source:
        return diag
    compiled = cell.source.splitlines()
    shown = cell.shown.splitlines()
    index = diag.line - 1
    if not 0 <= index < min(len(compiled), len(shown)) or compiled[index] == shown[index]:
        return diag
    column = min(diag.column, len(shown[index].rstrip()) + 1)
    return dataclasses.replace(diag, column=column)


def _run_clang(
    clang: str,
    pre: Prelude,
    quote_dirs: Sequence[str],
    text: str,
    source_name: str,
    tmp: Path,
    preamble: str = "",
) -> subprocess.CompletedProcess[str]:
    (tmp / source_name).write_text(text)
    extra: list[str] = []
    if preamble:
        preamble_name = source_name.removesuffix(".bpf.c") + ".preamble.h"
        (tmp / preamble_name).write_text(preamble)
        extra = ["-include", preamble_name]
    argv = [
        clang,
        *pre.flags,
        "-include-pch",
        str(pre.pch),
        *extra,
        "-Werror=implicit-function-declaration",
        *(arg for d in quote_dirs for arg in ("-iquote", d)),
        "-fno-color-diagnostics",
        "-fno-caret-diagnostics",
        "-MD",
        "-MF",
        "deps.d",
        "-c",
        source_name,
        "-o",
        "out.o",
    ]
    return subprocess.run(
        argv, cwd=tmp, capture_output=True, text=True, check=False, env=_clang_env()
    )
