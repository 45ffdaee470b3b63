"""Compile a ``%%bpf`` cell into a BPF object file with clang.

The cell is compiled behind a *prelude*: the kernel's ``vmlinux.h`` (generated once
per kernel from /sys/kernel/btf/vmlinux with bpftool and cached), libbpf's
``bpf_helpers.h``, ``bpf_tracing.h`` and ``bpf_core_read.h``, and bpfnb's own
``bpfnb.h``. The prelude is precompiled into a clang PCH once per kernel, toolchain
and flag set, so a warm compile parses only the cell itself. Objects are cached by
content (source, flags, prelude, every file the cell includes).

The cell is written to ``NAME.bpf.c`` unchanged, followed by extra lines only at its
end (a GPL license section when the cell has none, then the event-type epilogue), so
clang's and the verifier's line numbers are the cell's own.

Everything here runs clang and bpftool without a shell, in private temporary
directories; cache directories are created with mode 0700.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from bpfnb.errors import CompileError, KernelFeatureError, ToolMissingError

VMLINUX_BTF = Path("/sys/kernel/btf/vmlinux")
INCLUDE_DIR = Path(__file__).resolve().parent.parent / "include"
LIBBPF_HEADERS = ("bpf/bpf_helpers.h", "bpf/bpf_tracing.h", "bpf/bpf_core_read.h")
SYSTEM_INCLUDE_DIRS = (Path("/usr/include"), Path("/usr/local/include"))
BASE_FLAGS = ("-target", "bpf", "-g", "-O2")
_LICENSE_RE = re.compile(r"""SEC\s*\(\s*"license"\s*\)""")
_DIAG_RE = re.compile(
    r"^(?P<file>[^:\n]+):(?P<line>\d+):(?P<col>\d+): "
    r"(?P<kind>fatal error|error|warning|note): (?P<msg>.*)$"
)
_ARCHES = {
    "x86_64": "x86",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv7l": "arm",
    "s390x": "s390",
    "ppc64le": "powerpc",
    "riscv64": "riscv",
    "loongarch64": "loongarch",
}


@dataclass(frozen=True)
class Diagnostic:
    """One clang diagnostic, located in the cell when ``in_cell`` is true.

    Attributes
    ----------
    kind : str
        ``error``, ``fatal error``, ``warning`` or ``note``.
    message : str
        clang's message.
    line, column : int
        Position; a cell line when ``in_cell``.
    file : str
        The file clang named (the cell file or a header).
    in_cell : bool
        Whether the position is in the cell itself.
    """

    kind: str
    message: str
    line: int
    column: int
    file: str
    in_cell: bool


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
    warnings : list of Diagnostic
        clang warnings located in the cell.
    source_name : str
        The file name clang saw (``NAME.bpf.c``), as it appears in line info.
    """

    object_path: Path
    cached: bool
    seconds: float
    source_name: str
    warnings: list[Diagnostic] = field(default_factory=list)


def cache_root() -> Path:
    """Return bpfnb's cache directory, created with mode 0700.

    ``$BPFNB_CACHE_DIR`` wins, then ``$XDG_CACHE_HOME/bpfnb``, then ``~/.cache/bpfnb``.
    """
    env = os.environ.get("BPFNB_CACHE_DIR")
    if env:
        root = Path(env)
    else:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        root = Path(base) / "bpfnb"
    return _private_dir(root)


def _private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    st = path.stat()
    if st.st_mode & 0o077:
        os.chmod(path, 0o700)
    if st.st_uid != os.geteuid():
        raise CompileError(
            f"cache directory {path} belongs to uid {st.st_uid}, not to this user: "
            "set BPFNB_CACHE_DIR to a directory of your own"
        )
    return path


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``directory`` (other processes building it wait)."""
    with open(directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def find_clang() -> str:
    """Return the path of clang, or raise ToolMissingError with the fix."""
    path = os.environ.get("BPFNB_CLANG") or shutil.which("clang")
    if not path:
        raise ToolMissingError(
            "clang is not installed: run `apt-get install clang llvm` (or `make setup`)"
        )
    return path


def find_bpftool() -> str:
    """Return the path of bpftool, or raise ToolMissingError with the fix."""
    path = shutil.which("bpftool") or next(
        (p for p in ("/usr/sbin/bpftool", "/sbin/bpftool") if os.access(p, os.X_OK)), None
    )
    if not path:
        raise ToolMissingError("bpftool is not installed: run `apt-get install bpftool`")
    return path


def libbpf_include_dir() -> Path:
    """Return the directory holding ``bpf/bpf_helpers.h``, or raise ToolMissingError."""
    for base in SYSTEM_INCLUDE_DIRS:
        if all((base / h).is_file() for h in LIBBPF_HEADERS):
            return base
    raise ToolMissingError(
        "libbpf headers (bpf/bpf_helpers.h) are missing: run `apt-get install libbpf-dev`"
    )


@lru_cache(maxsize=4)
def clang_version(clang: str) -> str:
    """Return clang's first version line (cached per process)."""
    out = subprocess.run([clang, "--version"], capture_output=True, text=True, check=False)
    return out.stdout.splitlines()[0] if out.stdout else clang


@lru_cache(maxsize=4)
def cpu_version(clang: str) -> str:
    """Return the newest ``-mcpu`` both clang and the running kernel accept.

    The kernel takes v4 (sign extension, byte swaps, 32-bit offsets) from 6.6 on and
    v3 (ALU32 atomics, 32-bit jumps) from 5.1 on; clang 14 knows up to v3.
    """
    out = subprocess.run(
        [clang, "-target", "bpf", "-mcpu=help", "-x", "c", "-", "-fsyntax-only"],
        input="",
        capture_output=True,
        text=True,
        check=False,
    )
    known = set(re.findall(r"\bv(\d)\b", out.stdout + out.stderr))
    kernel = tuple(int(x) for x in re.findall(r"\d+", platform.release())[:2])
    if "4" in known and kernel >= (6, 6):
        return "v4"
    return "v3"


def target_arch() -> str:
    """Return the ``__TARGET_ARCH_*`` suffix for this machine."""
    machine = platform.machine()
    try:
        return _ARCHES[machine]
    except KeyError:
        raise CompileError(f"bpf_tracing.h does not know this architecture: {machine}") from None


@lru_cache(maxsize=1)
def kernel_identity() -> str:
    """Return a short hash identifying the running kernel and its BTF."""
    if not VMLINUX_BTF.exists():
        raise KernelFeatureError(
            "the kernel has no BTF (/sys/kernel/btf/vmlinux is missing): bpfnb needs a kernel "
            "built with CONFIG_DEBUG_INFO_BTF=y"
        )
    uname = os.uname()
    digest = hashlib.sha256(f"{uname.release}\n{uname.version}\n".encode())
    digest.update(VMLINUX_BTF.read_bytes())
    return digest.hexdigest()[:16]


def vmlinux_header() -> Path:
    """Return the path of this kernel's ``vmlinux.h``, generating it when missing.

    The header lives in ``CACHE/kernel-ID/``, ID hashing the kernel's release, version
    and BTF, with a sidecar SHA-256: a truncated or altered file is regenerated.
    """
    directory = _private_dir(cache_root() / f"kernel-{kernel_identity()}")
    header = directory / "vmlinux.h"
    stamp = directory / "vmlinux.h.sha256"
    if _valid_stamp(header, stamp):
        return header
    with _locked(directory):
        if _valid_stamp(header, stamp):
            return header
        out = subprocess.run(
            [find_bpftool(), "btf", "dump", "file", str(VMLINUX_BTF), "format", "c"],
            capture_output=True,
            check=False,
        )
        if out.returncode != 0 or b"__VMLINUX_H__" not in out.stdout:
            raise ToolMissingError(
                "bpftool could not generate vmlinux.h from /sys/kernel/btf/vmlinux: "
                + out.stderr.decode(errors="replace").strip()
            )
        _write_atomic(header, out.stdout)
        _write_atomic(stamp, _sha256(out.stdout).encode())
    return header


def _valid_stamp(path: Path, stamp: Path) -> bool:
    try:
        return _sha256(path.read_bytes()) == stamp.read_text().strip()
    except OSError:
        return False


def _bpfnb_headers_digest() -> str:
    digest = hashlib.sha256()
    for header in sorted(INCLUDE_DIR.rglob("*.h")):
        digest.update(str(header.relative_to(INCLUDE_DIR)).encode())
        digest.update(header.read_bytes())
    return digest.hexdigest()


def _libbpf_headers_digest(include: Path) -> str:
    digest = hashlib.sha256()
    for header in sorted((include / "bpf").glob("*.h")):
        st = header.stat()
        digest.update(f"{header.name}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class Prelude:
    """A precompiled prelude: ``prelude.h`` and its PCH, for one flag set."""

    header: Path
    pch: Path
    flags: tuple[str, ...]


def _prelude_flags(clang: str, user_flags: Sequence[str]) -> tuple[str, ...]:
    return (
        *BASE_FLAGS,
        f"-mcpu={cpu_version(clang)}",
        f"-D__TARGET_ARCH_{target_arch()}",
        "-I",
        str(INCLUDE_DIR),
        *user_flags,
    )


def prelude(user_flags: Sequence[str] = ()) -> Prelude:
    """Return the precompiled prelude for ``user_flags``, building it when missing.

    Parameters
    ----------
    user_flags : sequence of str
        The cell's ``-D``/``-I``/``--cflags`` flags: the PCH must be built with the
        same macros and options as the cell.
    """
    clang = find_clang()
    include = libbpf_include_dir()
    vmlinux = vmlinux_header()
    flags = _prelude_flags(clang, user_flags)
    key = _sha256(
        json.dumps(
            [
                clang_version(clang),
                flags,
                str(vmlinux),
                _sha256(vmlinux.read_bytes()[:65536]) + str(vmlinux.stat().st_size),
                _bpfnb_headers_digest(),
                _libbpf_headers_digest(include),
            ]
        ).encode()
    )[:20]
    directory = _private_dir(cache_root() / f"prelude-{key}")
    header, pch = directory / "prelude.h", directory / "prelude.h.pch"
    result = Prelude(header, pch, flags)
    if (directory / "ok").exists() and pch.exists():
        return result
    with _locked(directory):
        if (directory / "ok").exists() and pch.exists():
            return result
        _build_prelude(clang, result, vmlinux)
    return result


def _prelude_text(vmlinux: Path) -> str:
    return (
        "/* bpfnb prelude: what every %%bpf cell is compiled behind */\n"
        f'#include "{vmlinux}"\n'
        + "".join(f"#include <{h}>\n" for h in LIBBPF_HEADERS)
        + '#include "bpfnb.h"\n'
    )


def _build_prelude(clang: str, pre: Prelude, vmlinux: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        (pre.header.parent / "ok").unlink()
    _write_atomic(pre.header, _prelude_text(vmlinux).encode())
    tmp_pch = pre.pch.with_name(f".{pre.pch.name}.{os.getpid()}")
    argv = [clang, *pre.flags, "-x", "c-header", str(pre.header), "-o", str(tmp_pch)]
    out = subprocess.run(argv, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        with contextlib.suppress(FileNotFoundError):
            tmp_pch.unlink()
        raise CompileError(
            "the bpfnb prelude (vmlinux.h, libbpf headers, bpfnb.h) does not compile with "
            f"these flags:\n{_first_lines(out.stderr, 12)}",
            log=out.stderr,
        )
    os.replace(tmp_pch, pre.pch)
    (pre.header.parent / "ok").write_text(clang_version(clang))


def _first_lines(text: str, n: int) -> str:
    lines = text.strip().splitlines()
    more = f"\n... ({len(lines) - n} more lines in err.log)" if len(lines) > n else ""
    return "\n".join(lines[:n]) + more


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


def user_flags(
    defines: dict[str, str] | None = None,
    include_dirs: Sequence[str] = (),
    cflags: Sequence[str] = (),
) -> list[str]:
    """Turn ``-D``/``-I``/``--cflags`` options into clang arguments (absolute ``-I``)."""
    flags: list[str] = []
    for name, value in (defines or {}).items():
        flags.append(f"-D{name}={value}")
    for directory in include_dirs:
        flags += ["-I", str(Path(directory).resolve())]
    flags += list(cflags)
    return flags


def _deps_valid(deps: list[list[object]]) -> bool:
    for path, size, mtime in deps:
        try:
            st = os.stat(str(path))
        except OSError:
            return False
        if st.st_size != size or st.st_mtime_ns != mtime:
            return False
    return True


def _parse_depfile(text: str, skip: set[str]) -> list[list[object]]:
    body = text.split(":", 1)[1] if ":" in text else ""
    paths = body.replace("\\\n", " ").split()
    deps: list[list[object]] = []
    for path in paths:
        if not os.path.isabs(path) or path in skip or path.startswith(str(INCLUDE_DIR)):
            continue  # the cell itself (relative, in the temporary directory) or the prelude
        st = os.stat(path)
        deps.append([path, st.st_size, st.st_mtime_ns])
    return deps


def compile_cell(
    source: str,
    name: str = "cell",
    *,
    defines: dict[str, str] | None = None,
    include_dirs: Sequence[str] = (),
    cflags: Sequence[str] = (),
    epilogue: str = "",
    use_cache: bool = True,
) -> CompileResult:
    """Compile the C text of a cell into a BPF object.

    Parameters
    ----------
    source : str
        The cell's C code, exactly as the user wrote it.
    name : str
        The program name; clang sees the file as ``NAME.bpf.c``.
    defines, include_dirs, cflags
        ``-D``, ``-I`` and ``--cflags`` of the cell.
    epilogue : str
        C text appended after the cell (and its license line).
    use_cache : bool
        Reuse an object compiled earlier from the same inputs.

    Returns
    -------
    CompileResult

    Raises
    ------
    CompileError
        clang rejected the cell; the message quotes the cell's own lines.
    ToolMissingError, KernelFeatureError
        clang, bpftool, headers or kernel BTF are missing.
    """
    start = time.perf_counter()
    extra = user_flags(defines, include_dirs, cflags)
    pre = prelude(extra)
    text = cell_text(source, epilogue)
    source_name = f"{name}.bpf.c"
    cwd = os.getcwd()
    key = _sha256(json.dumps([text, source_name, str(pre.pch), pre.flags, cwd]).encode())[:32]
    objects = _private_dir(cache_root() / "objects")
    obj, meta = objects / f"{key}.o", objects / f"{key}.json"
    if use_cache:
        hit = _cached_object(obj, meta)
        if hit is not None:
            return CompileResult(obj, True, time.perf_counter() - start, source_name, hit)
    with tempfile.TemporaryDirectory(prefix="bpfnb-cc-") as tmp:
        cell_path = Path(tmp) / source_name
        cell_path.write_text(text)
        out_path = Path(tmp) / "out.o"
        argv = [
            find_clang(),
            *pre.flags,
            "-include-pch",
            str(pre.pch),
            "-iquote",
            cwd,
            "-fno-color-diagnostics",
            "-fno-caret-diagnostics",
            "-MD",
            "-MF",
            "deps.d",
            "-c",
            source_name,
            "-o",
            str(out_path),
        ]
        run = subprocess.run(
            argv, cwd=tmp, capture_output=True, text=True, check=False, env=_clang_env()
        )
        if run.returncode != 0 and ("precompiled header" in run.stderr or "PCH file" in run.stderr):
            # The PCH went stale (a header changed under it): rebuild once.
            with _locked(pre.header.parent):
                _build_prelude(find_clang(), pre, vmlinux_header())
            run = subprocess.run(
                argv, cwd=tmp, capture_output=True, text=True, check=False, env=_clang_env()
            )
        diagnostics = parse_diagnostics(run.stderr, source_name)
        if run.returncode != 0:
            raise CompileError(
                format_compile_error(name, source, diagnostics, run.stderr),
                diagnostics,
                run.stderr,
            )
        warnings = [d for d in diagnostics if d.kind == "warning" and d.in_cell]
        deps = _parse_depfile((Path(tmp) / "deps.d").read_text(), {str(pre.header)})
        data = out_path.read_bytes()
    _write_atomic(obj, data)
    _write_atomic(
        meta,
        json.dumps(
            {"sha256": _sha256(data), "deps": deps, "warnings": [d.__dict__ for d in warnings]}
        ).encode(),
    )
    return CompileResult(obj, False, time.perf_counter() - start, source_name, warnings)


def _cached_object(obj: Path, meta: Path) -> list[Diagnostic] | None:
    try:
        info = json.loads(meta.read_text())
        data = obj.read_bytes()
    except (OSError, ValueError):
        return None
    if _sha256(data) != info.get("sha256") or not _deps_valid(info.get("deps", [])):
        return None
    return [Diagnostic(**d) for d in info.get("warnings", [])]


def _clang_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CPATH", "C_INCLUDE"))}
    env["LC_ALL"] = "C"
    return env


def parse_diagnostics(stderr: str, source_name: str) -> list[Diagnostic]:
    """Parse clang's stderr into diagnostics, marking those located in the cell."""
    result = []
    for raw in stderr.splitlines():
        m = _DIAG_RE.match(raw)
        if not m:
            continue
        file = m["file"]
        result.append(
            Diagnostic(
                kind=m["kind"],
                message=m["msg"],
                line=int(m["line"]),
                column=int(m["col"]),
                file=file,
                in_cell=Path(file).name == source_name,
            )
        )
    return result


def _prelude_clash(diagnostics: list[Diagnostic], error: Diagnostic) -> str | None:
    """Explain an error whose 'previous definition' note points into the prelude."""
    index = diagnostics.index(error)
    following = diagnostics[index + 1 : index + 2]
    if not following or following[0].kind != "note" or following[0].in_cell:
        return None
    header = Path(following[0].file).name
    if header != "vmlinux.h" and not header.startswith("bpf_"):
        return None
    name = re.search(r"'([^']+)'", error.message)
    what = f"'{name.group(1)}'" if name else "this name"
    return f"{what} is already defined by {header}, which every cell includes: rename it"


def format_compile_error(
    name: str, source: str, diagnostics: list[Diagnostic], stderr: str, limit: int = 5
) -> str:
    """Format clang's errors as a short message quoting the cell's own lines."""
    lines = source.splitlines()
    errors = [d for d in diagnostics if d.kind in ("error", "fatal error")]
    if not errors:
        return f"clang failed on cell {name!r}:\n{_first_lines(stderr, 10)}"
    count = len(errors)
    out = [f"clang: {count} error{'s' if count != 1 else ''} in cell {name!r}"]
    for diag in errors[:limit]:
        prelude_note = _prelude_clash(diagnostics, diag)
        if diag.in_cell:
            out.append(f"  line {diag.line}, col {diag.column}: {diag.message}")
            if 0 < diag.line <= len(lines):
                text = lines[diag.line - 1]
                out.append(f"  {diag.line:>4} | {text}")
                out.append(f"       | {' ' * (diag.column - 1)}^")
        else:
            where = (
                "the cell's appended lines"
                if Path(diag.file).name.endswith(".bpf.c")
                else (Path(diag.file).name)
            )
            out.append(f"  in {where}:{diag.line}: {diag.message}")
        if prelude_note:
            out.append(f"  hint: {prelude_note}")
    if count > limit:
        out.append(f"  ... and {count - limit} more (err.log has clang's whole output)")
    return "\n".join(out)
