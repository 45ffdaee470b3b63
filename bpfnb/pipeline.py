"""The load pipeline: build -> patch globals -> open -> load -> wrap -> attach -> start.

One owner of the sequence, used by the Python API (:func:`load`, which ``bpfnb.load``
is) and by the ``%%bpf`` magic alike. :func:`build_only` is the first half (compile and
describe; no kernel, no privileges), for ``--compile-only``.

Every step after the first kernel object exists runs under
:func:`bpfnb.kernel.loader.interrupts_deferred` and releases what it made when anything
fails (a compile, verifier or attach error, or Ctrl-C): a failed load leaves nothing in
the kernel.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bpfnb import diagnostics
from bpfnb.build import compiler, eventtypes
from bpfnb.build.patch_globals import patch_object
from bpfnb.errors import BpfnbError, EventTypeError
from bpfnb.kernel import loader, mmaparray, session, system
from bpfnb.kernel.bpf_abi import BPF_F_MMAPABLE
from bpfnb.kernel.program import Program
from bpfnb.object import maptypes
from bpfnb.object.spec import ObjectSpec


@dataclass
class Built:
    """What the build half produced.

    Attributes
    ----------
    name : str
        The program's name.
    source : str
        The C text (empty for an object file).
    data : bytes
        The object file's bytes.
    spec : ObjectSpec
        Its description.
    compile_result : CompileResult or None
        clang's result (None for an object file).
    cell_file : str
        The file name clang saw for the cell (``NAME.bpf.c``), as line info names it.
    line_offset : int
        Lines before the cell's first C line in the user's editor (1 for ``%%bpf``).
    """

    name: str
    source: str
    data: bytes
    spec: ObjectSpec
    compile_result: compiler.CompileResult | None
    cell_file: str
    line_offset: int = 0

    def event_types(self) -> dict[str, str | EventTypeError | None]:
        """The event C type of every event stream map, found in the cell's text."""
        out: dict[str, str | EventTypeError | None] = {}
        for name, spec in self.spec.maps.items():
            if not maptypes.is_event_stream(spec.kind):
                continue
            try:
                out[name] = eventtypes.event_type_name(self.source, name)
            except EventTypeError as err:
                out[name] = err
        return out


def _read_source(source_or_path: str | os.PathLike[str]) -> tuple[str, Path | None]:
    """Return (C text, object path): exactly one of them is meaningful."""
    if isinstance(source_or_path, os.PathLike) or (
        isinstance(source_or_path, str)
        and "\n" not in source_or_path
        and source_or_path.endswith((".c", ".o"))
    ):
        path = Path(source_or_path)
        if not path.is_file():
            raise BpfnbError(f"no such file: {path}")
        if path.suffix == ".o":
            return "", path
        return path.read_text(), None
    return str(source_or_path), None


def build_only(
    source_or_path: str | os.PathLike[str],
    name: str = "prog",
    *,
    defines: Mapping[str, str] | None = None,
    include_dirs: list[str] | None = None,
    cflags: list[str] | None = None,
    line_offset: int = 0,
) -> Built:
    """Compile (when given C) and describe a program; needs no kernel and no privilege.

    Raises
    ------
    CompileError, ToolMissingError
        With a short message quoting the cell.
    """
    source, object_path = _read_source(source_or_path)
    result = None
    cell_file = f"{name}.bpf.c"
    if object_path is None:
        result = compiler.compile_cell(
            source,
            name,
            defines=dict(defines or {}),
            include_dirs=include_dirs or [],
            cflags=cflags or [],
            epilogue=eventtypes.epilogue(source),
            line_offset=line_offset,
        )
        object_path = result.object_path
        cell_file = result.source_name
    data = object_path.read_bytes()
    return Built(name, source, data, ObjectSpec.from_bytes(data), result, cell_file, line_offset)


def load_built(
    built: Built,
    *,
    attach: bool = True,
    global_values: Mapping[str, Any] | None = None,
    mmap_arrays: bool = True,
) -> Program:
    """Load, wrap, attach and start a built program (the kernel half).

    ``mmap_arrays=False`` leaves array maps and histograms without ``BPF_F_MMAPABLE``
    (see :mod:`bpfnb.kernel.mmaparray`).

    Raises
    ------
    VerifierError, LoadError, AttachError, KernelFeatureError, PrivilegeError
        With a short message; nothing stays in the kernel.
    """
    system.ensure_privileges()
    return _load(built, attach=attach, global_values=global_values, mmap_arrays=mmap_arrays)


def _make_arrays_mmapable(opened: loader.OpenObject, spec: ObjectSpec) -> None:
    """Configure phase: create plain arrays and histograms ``BPF_F_MMAPABLE``."""
    for name, map_spec in spec.maps.items():
        found = opened.maps.get(name)
        if found is not None and not found.internal and mmaparray.mmapable(map_spec):
            opened.set_map_flags(name, opened.map_flags(name) | BPF_F_MMAPABLE)


def _load(
    built: Built,
    *,
    attach: bool,
    global_values: Mapping[str, Any] | None,
    mmap_arrays: bool = True,
) -> Program:
    data = built.data
    if global_values:
        data = patch_object(data, built.spec, dict(global_values))

    def failure(reason: str, log: str) -> BaseException:
        return diagnostics.load_error(
            reason, log, built.cell_file, built.source, line_offset=built.line_offset
        )

    with loader.interrupts_deferred():
        opened = loader.open_object(data, built.spec, built.name)
        if mmap_arrays:
            try:
                _make_arrays_mmapable(opened, built.spec)
            except BaseException:
                opened.close()
                raise
        loaded = opened.load(failure=failure)
        prog: Program | None = None
        try:
            prog = Program(
                built.name,
                loaded,
                source=built.source,
                build=built.compile_result,
                event_types=built.event_types(),
            )
            if attach:
                loaded.attach()
            prog.start()
        except BaseException:
            if prog is not None:
                prog.close()
            else:
                loaded.close()
            raise
        session.register(prog)
    return prog


def load(
    source_or_path: str | os.PathLike[str],
    name: str = "prog",
    attach: bool = True,
    defines: Mapping[str, str] | None = None,
    globals: Mapping[str, Any] | None = None,
    *,
    include_dirs: list[str] | None = None,
    cflags: list[str] | None = None,
    line_offset: int = 0,
    mmap_arrays: bool = True,
) -> Program:
    """Compile (when given C), load and attach a BPF program.

    Parameters
    ----------
    source_or_path : str or path-like
        C text of a cell, a path to a ``.c`` file, or a compiled ``.o`` object.
    name : str
        The program's name (and the cell's file name for clang, ``NAME.bpf.c``).
    attach : bool
        Attach every auto-attachable program (tracepoint, raw_tp, tp_btf, fentry,
        fexit, uprobe with a target...).
    defines : mapping, optional
        ``-D`` macros.
    globals : mapping, optional
        Values for ``const volatile`` globals, set before load.
    include_dirs, cflags : list of str, optional
        ``-I`` directories and extra clang flags.
    line_offset : int
        Lines before the C text in the user's editor (messages use its numbering).
    mmap_arrays : bool
        Create array maps and histograms ``BPF_F_MMAPABLE`` and read them through a
        shared mapping (see :mod:`bpfnb.kernel.mmaparray`); False opts out.

    Returns
    -------
    Program

    Raises
    ------
    CompileError, VerifierError, LoadError, AttachError, KernelFeatureError,
    PrivilegeError, ToolMissingError
        With a short message; nothing stays loaded in the kernel.
    """
    system.ensure_privileges()
    built = build_only(
        source_or_path,
        name,
        defines=defines,
        include_dirs=include_dirs,
        cflags=cflags,
        line_offset=line_offset,
    )
    return _load(built, attach=attach, global_values=globals, mmap_arrays=mmap_arrays)
