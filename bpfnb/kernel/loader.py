"""Load and attach BPF objects: the only module that imports pylibbpf.

pylibbpf owns the object's lifecycle (open, load, attach, detach, close on
garbage collection). This module adds what it lacks: the verifier log that libbpf
writes to the process's C-level stderr (fd 2) is captured and parsed, the kernel
fds of the object's programs are found so their ids and run statistics can be read,
and kprobe sections fail early with a clear message on kernels without kprobes.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pylibbpf

from bpfnb.diagnostics import parse_load_log
from bpfnb.errors import AttachError, LoadError, VerifierError
from bpfnb.kernel import system
from bpfnb.object.spec import ObjectSpec, ProgramSpec

# SEC() prefixes libbpf attaches by itself (bpf_program__attach), with their kind.
AUTO_ATTACH = {
    "tracepoint": "tracepoint",
    "tp": "tracepoint",
    "raw_tracepoint": "raw_tp",
    "raw_tp": "raw_tp",
    "tp_btf": "tp_btf",
    "fentry": "fentry",
    "fexit": "fexit",
    "fmod_ret": "fmod_ret",
    "fentry.s": "fentry",
    "fexit.s": "fexit",
    "lsm": "lsm",
    "lsm.s": "lsm",
    "iter": "iter",
    "uprobe": "uprobe",
    "uretprobe": "uretprobe",
    "uprobe.s": "uprobe",
    "uretprobe.s": "uretprobe",
    "usdt": "usdt",
    "kprobe": "kprobe",
    "kretprobe": "kretprobe",
    "ksyscall": "ksyscall",
    "kretsyscall": "kretsyscall",
}
_STDERR_LOCK = threading.Lock()


@contextlib.contextmanager
def capture_stderr() -> Iterator[list[str]]:
    """Redirect the process's fd 2 into a temporary file; yield a list that gets its text.

    libbpf prints the verifier log with fprintf(stderr), which a notebook never
    shows. Only one capture runs at a time (fd 2 is process-wide).
    """
    out: list[str] = []
    with _STDERR_LOCK, tempfile.TemporaryFile() as tmp:
        saved = os.dup(2)
        try:
            os.dup2(tmp.fileno(), 2)
            yield out
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            out.append(tmp.read().decode(errors="replace"))


def _bpf_fds(kind: str) -> set[int]:
    """Return this process's open fds that are BPF objects of ``kind`` (prog/map/link)."""
    fds = set()
    target = f"anon_inode:bpf-{kind}"
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/self/fd/{name}") == target:
                fds.add(int(name))
    return fds


def attach_kind(section: str) -> str | None:
    """Return the attach kind of a SEC() name when libbpf attaches it by itself, else None.

    ``uprobe`` sections attach by themselves only with a target (``uprobe/PATH:FUNC``).
    """
    prefix, _, rest = section.partition("/")
    kind = AUTO_ATTACH.get(prefix)
    if kind is None or (kind in ("uprobe", "uretprobe", "usdt") and not rest):
        return None
    if kind in ("tracepoint",) and "/" not in rest:
        return None
    return kind


@dataclass
class LoadedProgram:
    """One program of a loaded object.

    Attributes
    ----------
    name : str
        C function name.
    section : str
        SEC() text; the attach point for auto-attached programs.
    fd : int or None
        The kernel fd of the program (owned by pylibbpf), when found.
    handle : object
        pylibbpf's BpfProgram.
    attached : bool
        Whether it is attached now.
    """

    name: str
    section: str
    fd: int | None
    handle: Any
    attached: bool = False


@dataclass
class LoadedObject:
    """A loaded object: pylibbpf's handle, its programs and map fds.

    Call :meth:`close` to detach everything and release the kernel objects.
    """

    path: Path
    spec: ObjectSpec
    handle: Any
    programs: dict[str, LoadedProgram]
    map_fds: dict[str, int]
    log: str = ""
    _closed: bool = field(default=False, repr=False)

    def attach(self) -> list[str]:
        """Attach every program whose SEC() libbpf can attach by itself.

        Returns
        -------
        list of str
            The names of the programs attached.

        Raises
        ------
        KernelFeatureError
            A kprobe program on a kernel without kprobes (nothing stays attached).
        AttachError
            libbpf could not attach one (nothing stays attached).
        """
        todo = [p for p in self.programs.values() if not p.attached and attach_kind(p.section)]
        for prog in todo:
            system.ensure_kprobes(prog.name, prog.section)
        if any(attach_kind(p.section) in ("tracepoint",) for p in todo):
            system.ensure_tracefs()
        done: list[str] = []
        try:
            for prog in todo:
                failure: Exception | None = None
                with capture_stderr() as err:
                    try:
                        prog.handle.attach()
                    except Exception as exc:  # pylibbpf raises BpfException / RuntimeError
                        failure = exc
                if failure is not None:
                    raise AttachError(_attach_message(prog, str(failure), err[0])) from None
                prog.attached = True
                done.append(prog.name)
        except BaseException:
            self.detach()
            raise
        return done

    def detach(self) -> None:
        """Detach every attached program (they stay loaded)."""
        for prog in self.programs.values():
            if prog.attached:
                with contextlib.suppress(Exception):
                    prog.handle.detach()
                prog.attached = False

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` ran."""
        return self._closed

    def close(self) -> None:
        """Detach and drop every reference to pylibbpf's objects, closing their fds."""
        if self._closed:
            return
        self.detach()
        for prog in self.programs.values():
            prog.handle = None
            prog.fd = None
        self.handle = None
        self.map_fds = {}
        self._closed = True


def _attach_message(prog: LoadedProgram, error: str, libbpf: str) -> str:
    details = [ln.removeprefix("libbpf: ") for ln in libbpf.splitlines() if ln.strip()]
    text = f'cannot attach program {prog.name!r} to SEC("{prog.section}")'
    if details:
        text += ": " + details[-1]
    elif error:
        text += f": {error}"
    kind = attach_kind(prog.section)
    if kind == "tracepoint":
        tp = prog.section.split("/", 1)[1]
        text += (
            f"\nhint: check the tracepoint exists: ls /sys/kernel/tracing/events/{tp} "
            "(syscall tracepoints are syscalls/sys_enter_NAME and syscalls/sys_exit_NAME)"
        )
    elif kind in ("fentry", "fexit", "tp_btf", "fmod_ret", "lsm"):
        text += "\nhint: check the kernel function exists in /sys/kernel/btf/vmlinux "
        text += "(bpftool btf dump file /sys/kernel/btf/vmlinux | grep FUNC)"
    return text


def load_object(
    path: str | os.PathLike[str],
    *,
    spec: ObjectSpec | None = None,
    cell_file: str = "",
    source: str = "",
) -> LoadedObject:
    """Open and load an object file; nothing is attached yet.

    Parameters
    ----------
    path : path-like
        The BPF object.
    spec : ObjectSpec, optional
        Its description (read from the file when omitted).
    cell_file : str
        The file name clang saw for the cell, to map verifier lines to the cell.
    source : str
        The cell's text, to quote the failing line.

    Returns
    -------
    LoadedObject

    Raises
    ------
    VerifierError
        The verifier rejected a program; ``err.log`` has libbpf's whole output.
    LoadError
        libbpf or the kernel refused the object for another reason.
    """
    system.ensure_privileges()
    path = Path(path)
    spec = spec or ObjectSpec.from_file(path)
    before = _bpf_fds("prog")
    handle: Any = None
    with capture_stderr() as err:
        try:
            handle = pylibbpf._BpfObject(str(path), {})
            handle.load()
            failure: Exception | None = None
        except Exception as exc:  # pylibbpf raises BpfException
            failure = exc
    log = err[0]
    if failure is not None:
        handle = None
        raise _load_error(failure, log, cell_file or path.name, source) from None
    try:
        new_fds = sorted(_bpf_fds("prog") - before)
        programs = _programs(handle, spec.programs, new_fds)
        map_fds = {name: handle.get_map(name).get_fd() for name in handle.get_map_names()}
    except BaseException:
        handle = None
        raise
    return LoadedObject(path, spec, handle, programs, map_fds, log)


def _programs(handle: Any, specs: list[ProgramSpec], fds: list[int]) -> dict[str, LoadedProgram]:
    from bpfnb.kernel import bpf as syscall

    by_name: dict[str, int] = {}
    fd: int | None
    for fd in fds:
        with contextlib.suppress(OSError, AttributeError):
            by_name.setdefault(syscall.prog_info(fd).name, fd)
    programs = {}
    for prog in specs:
        fd = by_name.get(prog.name[:15])
        programs[prog.name] = LoadedProgram(
            prog.name, prog.section, fd, handle.get_program(prog.name)
        )
    return programs


def _load_error(failure: Exception, log: str, cell_file: str, source: str) -> LoadError:
    parsed = parse_load_log(log, cell_file)
    if not parsed.verifier_log:
        message = f"the kernel refused to load the object: {parsed.reason or failure}"
        if parsed.hint:
            message += f"\nhint: {parsed.hint}"
        return LoadError(message, log)
    lines = source.splitlines()
    where = f" at cell line {parsed.line}" if parsed.line else ""
    message = f"the verifier rejected program {parsed.program!r}{where}:"
    if parsed.line and 0 < parsed.line <= len(lines):
        message += f"\n  {parsed.line:>4} | {lines[parsed.line - 1]}"
    elif parsed.source_text:
        message += f"\n       | {parsed.source_text}"
    message += f"\n  {parsed.reason}"
    if parsed.hint:
        message += f"\nhint: {parsed.hint}"
    return VerifierError(
        message,
        log,
        program=parsed.program,
        line=parsed.line,
        source_line=lines[parsed.line - 1] if parsed.line and parsed.line <= len(lines) else None,
        reason=parsed.reason,
        hint=parsed.hint,
    )
