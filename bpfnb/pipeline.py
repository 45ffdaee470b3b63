"""The load pipeline: build -> patch globals -> open -> configure -> load -> wrap -> attach.

The configure step (between libbpf's open and load) chooses the programs that load
(``programs=``, ``skip=``, variants), sizes the maps (``max_entries=``, defaults),
creates plain arrays and histograms ``BPF_F_MMAPABLE`` (unless ``mmap_arrays=False``)
and points maps at existing ones (``--keep-maps``, ``--use``, pins); attaching includes
the sampling events of ``SEC("perf_event")`` programs.

One owner of the sequence, used by the Python API (:func:`load`, which ``bpfnb.load``
is) and by the ``%%bpf`` magic alike. :func:`build_only` is the first half (compile and
describe; no kernel, no privileges), for ``--compile-only``.

Every step after the first kernel object exists runs under
:func:`bpfnb.kernel.loader.interrupts_deferred` and releases what it made when anything
fails (a compile, verifier or attach error, or Ctrl-C): a failed load leaves nothing in
the kernel. A Ctrl-C held during those steps undoes the load at their end (the program
is closed, a version it detached attached again) and is raised then.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bpfnb import diagnostics
from bpfnb.build import bcc as bcc_dialect
from bpfnb.build import compiler, eventtypes, headers, kfuncs, legacy_maps
from bpfnb.build.patch_globals import patch_object
from bpfnb.errors import BpfnbError, EventTypeError
from bpfnb.kernel import bpf, configure, loader, mmaparray, profiling, reuse, session, system
from bpfnb.kernel.bpf_abi import BPF_F_MMAPABLE
from bpfnb.kernel.program import HIDDEN_PREFIX, Program
from bpfnb.object import code, maptypes
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
    headers : list of str
        Texts of the user headers the cell includes (event types are found there too).
    notes : list of str
        What the build decided for the user (rewrites of the source).
    compiled : str
        The text clang compiled: ``source`` itself, or its line-for-line rewrite (BCC C,
        legacy maps). Messages quote ``source``.
    """

    name: str
    source: str
    data: bytes
    spec: ObjectSpec
    compile_result: compiler.CompileResult | None
    cell_file: str
    line_offset: int = 0
    headers: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    compiled: str = ""

    @classmethod
    def from_object(
        cls,
        name: str,
        data: bytes,
        *,
        source: str = "",
        cell_file: str | None = None,
        line_offset: int = 0,
        headers: list[str] | None = None,
        notes: list[str] | None = None,
        compiled: str = "",
    ) -> Built:
        """A ``Built`` from object bytes compiled elsewhere (shipped to a fleet worker).

        Parameters
        ----------
        name : str
            The program's name.
        data : bytes
            The object file's bytes (CO-RE: relocated against this kernel at load).
        source : str
            The cell's C text: error messages quote it and event types are found in it.
        cell_file : str, optional
            The file name clang saw (``NAME.bpf.c`` when not given).
        line_offset : int
            Lines before the cell's first C line in the user's editor.
        headers, notes, compiled
            As the build that made the bytes found them (see the attributes).
        """
        return cls(
            name,
            source,
            data,
            ObjectSpec.from_bytes(data),
            None,
            cell_file or f"{name}.bpf.c",
            line_offset,
            headers=list(headers or []),
            notes=list(notes or []),
            compiled=compiled,
        )

    def event_types(self) -> dict[str, str | EventTypeError | None]:
        """The event C type of every event stream map, found in the cell's text."""
        out: dict[str, str | EventTypeError | None] = {}
        for name, spec in self.spec.maps.items():
            if not maptypes.is_event_stream(spec.kind):
                continue
            try:
                out[name] = eventtypes.event_type_name(
                    self.compiled or self.source, name, self.headers
                )
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
    bcc: bool | None = None,
) -> Built:
    """Compile (when given C) and describe a program; needs no kernel and no privilege.

    ``bcc`` reads the source as BCC's C dialect (None: detect it).

    Raises
    ------
    CompileError, ToolMissingError
        With a short message quoting the cell.
    """
    source, object_path = _read_source(source_or_path)
    result = None
    cell_file = f"{name}.bpf.c"
    texts: list[str] = []
    compiled = source
    notes: list[str] = []
    if object_path is None:
        compiled, preamble, notes = _rewrite(source, bcc)
        texts = [h.text for h in headers.user_headers(source, include_dirs or [], cflags or [])]
        result = compiler.compile_cell(
            compiled,
            name,
            defines=dict(defines or {}),
            include_dirs=include_dirs or [],
            cflags=cflags or [],
            epilogue=eventtypes.epilogue(compiled, texts),
            line_offset=line_offset,
            preamble=preamble + kfuncs.preamble([compiled, *texts]),
            display_source=source,
        )
        object_path = result.object_path
        cell_file = result.source_name
    data = object_path.read_bytes()
    return Built(
        name,
        source,
        data,
        ObjectSpec.from_bytes(data),
        result,
        cell_file,
        line_offset,
        headers=texts,
        notes=notes,
        compiled=compiled,
    )


def _rewrite(source: str, bcc: bool | None) -> tuple[str, str, list[str]]:
    """The text clang compiles, its preamble and notes: BCC C and legacy maps rewritten.

    Both rewrites keep every line of the cell where it is.
    """
    text, preamble, notes = source, "", []
    if bcc if bcc is not None else bcc_dialect.is_bcc(source):
        done = bcc_dialect.rewrite(source, probe_style=_probe_style(source))
        text, preamble = done.text, done.preamble
        notes.append("read as BCC C (%%bpf --bcc): " + "; ".join(done.notes or ["no rewrite"]))
    if legacy_maps.has_legacy_maps(text):
        legacy = legacy_maps.rewrite(text)
        text = legacy.text
        notes += legacy.notes
    return text, preamble, notes


def _probe_style(source: str) -> str:
    """How BCC's ``kprobe__`` functions attach here: kprobes, else fentry when it loads."""
    if "kprobe__" not in source:
        return "kprobe"
    if system.kprobes_available():
        return "kprobe"
    return "fentry" if configure.kind_problem("fentry") is None else "kprobe"


@dataclass
class MapsAndSampling:
    """Load options of the map zoo: reused maps and perf_event sampling.

    Attributes
    ----------
    keep_maps_from : Program or None
        The previous version whose compatible maps are kept (``--keep-maps``).
    use : mapping of str to map view
        Map name -> another program's map to use instead (``--use PROG.MAP``).
    use_labels : mapping of str to str
        Map name -> ``PROG.MAP`` as the user wrote it.
    sample_freq, sample_period : int or None
        Sampling of ``SEC("perf_event")`` programs (default 99 Hz).
    """

    keep_maps_from: Program | None = None
    use: Mapping[str, Any] | None = None
    use_labels: Mapping[str, str] | None = None
    sample_freq: int | None = None
    sample_period: int | None = None


def load_built(
    built: Built,
    *,
    attach: bool = True,
    global_values: Mapping[str, Any] | None = None,
    extra: MapsAndSampling | None = None,
    programs: Sequence[str] | str | None = None,
    skip: Sequence[str] | str | None = None,
    max_entries: Mapping[str, int] | None = None,
    mmap_arrays: bool = True,
    on_loaded: Callable[[Program], None] | None = None,
) -> Program:
    """Load, wrap, attach and start a built program (the kernel half).

    ``programs``, ``skip``, ``max_entries`` and ``on_loaded`` are those of :func:`load`.
    ``mmap_arrays=False`` leaves array maps and histograms without ``BPF_F_MMAPABLE``
    (see :mod:`bpfnb.kernel.mmaparray`).
    Raises
    ------
    VerifierError, LoadError, AttachError, KernelFeatureError, PrivilegeError
        With a short message; nothing stays in the kernel.
    """
    system.ensure_privileges()
    return _load(
        built,
        attach=attach,
        global_values=global_values,
        extra=extra,
        programs=programs,
        skip=skip,
        max_entries=max_entries,
        mmap_arrays=mmap_arrays,
        on_loaded=on_loaded,
    )


def _make_arrays_mmapable(opened: loader.OpenObject, spec: ObjectSpec) -> None:
    """Configure phase: create plain arrays and histograms ``BPF_F_MMAPABLE``.

    Pinned maps keep their declared flags: libbpf reuses a pinned map only when its
    flags match, and the pin may come from a load with ``--no-mmap`` or another tool.
    So do arrays shaped like the inner maps of a map of maps: the kernel takes an inner
    map only when its flags equal the template's (static ``.values``, ``outer[k] =
    prog.inner``).
    """
    inner_shapes = {
        (m.inner.type, m.inner.key_size, m.inner.value_size)
        for m in spec.maps.values()
        if m.inner is not None
    }
    for name, map_spec in spec.maps.items():
        found = opened.maps.get(name)
        if (
            found is not None
            and not found.internal
            and found.autocreate
            and map_spec.pinning != maptypes.PIN_BY_NAME
            and (map_spec.type, map_spec.key_size, map_spec.value_size) not in inner_shapes
            and mmaparray.mmapable(map_spec)
        ):
            opened.set_map_flags(name, opened.map_flags(name) | BPF_F_MMAPABLE)


def _load(
    built: Built,
    *,
    attach: bool,
    global_values: Mapping[str, Any] | None,
    extra: MapsAndSampling | None = None,
    programs: Sequence[str] | str | None = None,
    skip: Sequence[str] | str | None = None,
    max_entries: Mapping[str, int] | None = None,
    mmap_arrays: bool = True,
    on_loaded: Callable[[Program], None] | None = None,
) -> Program:
    extra = extra or MapsAndSampling()
    sampling = profiling.sampling(extra.sample_freq, extra.sample_period)
    data = built.data
    if global_values:
        data = patch_object(data, built.spec, dict(global_values))
    notes = list(built.notes)

    with loader.interrupts_deferred() as deferral:
        opened = loader.open_object(data, built.spec, built.name)

        def failure(reason: str, log: str) -> BaseException:
            refused_map = configure.map_creation_error(
                log, opened, built.spec, built.source, built.line_offset
            )
            if refused_map is not None:
                return refused_map
            return diagnostics.load_error(
                reason, log, built.cell_file, built.source, line_offset=built.line_offset
            )

        try:
            _leave_out_unused_hidden_maps(opened, built.spec)
            initial = {name: p.autoload for name, p in opened.programs.items()}
            chosen = configure.select_programs(
                built.spec, initial, programs=programs, skip=skip, attach=attach
            )
            for name, on in chosen.load.items():
                if on != initial[name]:
                    opened.set_autoload(name, on)
            sized = configure.size_maps(opened, max_entries)
            # Kept, shared and mmapped maps are judged at the sizes the maps will be
            # created with (--max-entries, defaults), as the old ones were created.
            created = _as_created(built.spec, opened)
            if mmap_arrays:
                _make_arrays_mmapable(opened, created)
            plan = reuse.plan(
                created,
                keep_from=extra.keep_maps_from,
                use=extra.use,
                use_labels=extra.use_labels,
            )
            reuse.configure(opened, plan)
            notes += chosen.notes + sized
        except BaseException:
            opened.close()
            raise
        loaded = opened.load(failure=failure)
        prog: Program | None = None
        try:
            _sync_map_sizes(loaded)
            prog = Program(
                built.name,
                loaded,
                source=built.source,
                build=built.compile_result,
                event_types=built.event_types(),
                notes=notes,
            )
            prog.notes += plan.notes()
            if attach:
                # One version at a time counts into kept maps: the previous one stops
                # before this one starts (and starts again if this one cannot attach).
                previous = extra.keep_maps_from if plan.kept else None
                if previous is not None and not previous.closed:
                    previous.detach()
                loaded.attach()
                sampled = profiling.attach_sampling(loaded, sampling)
                if sampled:
                    prog.notes.append(f"perf_event programs sample {sampled}")
            prog.start()
        except BaseException:
            if prog is not None:
                prog.close()
            else:
                loaded.close()
            previous = extra.keep_maps_from if plan.kept else None
            if attach and previous is not None and not previous.closed:
                with contextlib.suppress(Exception):
                    previous.attach()
            raise
        session.register(prog)
        if on_loaded is not None and not deferral():
            # Handed over: an interrupt from now on is raised once it is bound.
            on_loaded(prog)
        else:
            # Ctrl-C during the load: the user asked to stop, so the load is undone.
            deferral.undo_on_interrupt(lambda: _undo(prog, extra, attach and bool(plan.kept)))
    return prog


def _undo(prog: Program, extra: MapsAndSampling, restore: bool) -> None:
    """Release a load the user interrupted; attach again the version it detached."""
    prog.close()
    previous = extra.keep_maps_from
    if restore and previous is not None and not previous.closed:
        previous.attach()


def _sync_map_sizes(loaded: loader.LoadedObject) -> None:
    """Give the spec the sizes the maps were created with (set or defaulted at open)."""
    for name, owned in loaded.map_fds.items():
        spec = loaded.spec.maps.get(name)
        if spec is None:
            continue
        created = bpf.map_info(owned.get()).max_entries
        if created != spec.max_entries:
            loaded.spec.maps[name] = dataclasses.replace(spec, max_entries=created)


def _as_created(spec: ObjectSpec, opened: loader.OpenObject) -> ObjectSpec:
    """``spec`` with the sizes the opened object's maps will be created with."""
    sized = {
        name: dataclasses.replace(m, max_entries=opened.maps[name].max_entries)
        for name, m in spec.maps.items()
        if name in opened.maps and opened.maps[name].max_entries != m.max_entries
    }
    if not sized:
        return spec
    out = copy.copy(spec)
    out.maps = {**spec.maps, **sized}
    return out


def _leave_out_unused_hidden_maps(opened: loader.OpenObject, spec: ObjectSpec) -> None:
    """Do not create bpfnb's own maps (``bpfnb_drops``) when no code refers to them."""
    used = code.referenced_maps(spec.functions)
    for name in opened.maps:
        if name.startswith(HIDDEN_PREFIX) and name not in used:
            opened.set_autocreate(name, False)


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
    sample_freq: int | None = None,
    sample_period: int | None = None,
    keep_maps_from: Program | None = None,
    use: Mapping[str, Any] | None = None,
    programs: Sequence[str] | str | None = None,
    skip: Sequence[str] | str | None = None,
    max_entries: Mapping[str, int] | None = None,
    bcc: bool | None = None,
    mmap_arrays: bool = True,
    on_loaded: Callable[[Program], None] | None = None,
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
    sample_freq, sample_period : int, optional
        ``SEC("perf_event")`` programs sample every online CPU this many times a
        second, or every this many events (default 99 Hz).
    keep_maps_from : Program, optional
        The previous version of the program: its maps whose declaration did not
        change are kept, contents included (``prog.notes`` says which).
    use : mapping of str to map, optional
        Map name -> a map of another loaded program to use instead of creating it
        (``use={"counts": producer.counts}``).
    programs : str or list of str, optional
        Load only these programs (``"a,b"`` or a list); the others stay in the object,
        unloaded. By default bpfnb loads every program, except that of alternative
        programs for one job (``tp_btf``/``raw_tp``, ``fentry``/``kprobe`` versions) it
        loads the first this kernel supports, and it leaves out programs whose attach
        point does not exist here; ``prog.notes`` says what it chose and why.
    skip : str or list of str, optional
        Leave these programs out.
    max_entries : mapping, optional
        Map name -> size, set before the maps are created (maps declared without
        ``max_entries`` get a default otherwise).
    bcc : bool, optional
        Read the source as BCC's C dialect (``counts.increment(key)``,
        ``TRACEPOINT_PROBE(...)``...); None detects it from the source.
    mmap_arrays : bool
        Create array maps and histograms ``BPF_F_MMAPABLE`` and read them through a
        shared mapping (see :mod:`bpfnb.kernel.mmaparray`); False opts out.
    on_loaded : callable, optional
        Called with the program once it is loaded and attached, with Ctrl-C still
        deferred: a caller binds the program there (``%%bpf`` binds the cell's name), so
        an interrupt either undoes the load (``on_loaded`` not called) or comes after
        the program is bound, never in between.

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
        bcc=bcc,
    )
    extra = MapsAndSampling(keep_maps_from, use, None, sample_freq, sample_period)
    return _load(
        built,
        attach=attach,
        global_values=globals,
        extra=extra,
        programs=programs,
        skip=skip,
        max_entries=max_entries,
        mmap_arrays=mmap_arrays,
        on_loaded=on_loaded,
    )
