"""``Program``: a compiled, loaded (and usually attached) BPF object with typed maps.

:func:`load` is the Python API behind ``%%bpf``: compile the C text (or take an
object file), load it through :mod:`bpfnb.loader`, attach every auto-attachable
program, wrap every map in its typed :class:`bpfnb.maps.Map` and start the ring
buffer consumers. Every live program is kept in a registry so ``%bpf list`` and
``%bpf stop --all`` see it, and so the interpreter's exit closes it.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from bpfnb.build import compiler, eventtypes
from bpfnb.errors import BpfnbError
from bpfnb.kernel import loader, system
from bpfnb.kernel.global_vars import GlobalData
from bpfnb.kernel.maps import Map, map_for
from bpfnb.object.spec import ObjectSpec

HIDDEN_PREFIX = "bpfnb_"
_REGISTRY: dict[int, Program] = {}
_REGISTRY_LOCK = threading.RLock()
_STATS_FD: int | None = None


class Program:
    """A loaded BPF object: its programs, attach points and typed maps.

    Use :func:`load` to make one. Maps are reachable as ``prog.maps["counts"]`` and
    as attributes (``prog.counts``). ``close()`` (or leaving a ``with`` block)
    detaches and unloads everything.

    Attributes
    ----------
    name : str
        The name the program was loaded under.
    source : str
        The C text of the cell (empty when loaded from an object file).
    spec : ObjectSpec
        Maps, programs and globals of the object.
    maps : Mapping of str to Map
        The user's maps (bpfnb's own hidden ``bpfnb_*`` maps excluded).
    """

    def __init__(
        self,
        name: str,
        loaded: loader.LoadedObject,
        source: str = "",
        compile_result: compiler.CompileResult | None = None,
    ) -> None:
        self.name = name
        self.source = source
        self.spec: ObjectSpec = loaded.spec
        self.compile_result = compile_result
        self.loaded_at = time.time()
        self._loaded = loaded
        self._lock = threading.RLock()
        self._closers: list[Any] = []
        maps: dict[str, Map] = {}
        hidden: dict[str, int] = {}
        for map_name, map_spec in self.spec.maps.items():
            fd = loaded.map_fds.get(map_name)
            if fd is None:
                continue
            if map_name.startswith(HIDDEN_PREFIX):
                hidden[map_name] = fd
                continue
            maps[map_name] = map_for(fd, map_spec, self.spec, source)
            maps[map_name].owner = self
        self._maps = maps
        self._hidden_fds = hidden
        for m in maps.values():
            connect = getattr(m, "attach_hidden_maps", None)
            if connect is not None:
                connect(hidden)

    # -- maps -------------------------------------------------------------------------
    @property
    def maps(self) -> Mapping[str, Map]:
        """The user's maps by C name."""
        return self._maps

    def __getattr__(self, attr: str) -> Map:
        maps = self.__dict__.get("_maps")
        if maps is not None and attr in maps:
            return maps[attr]
        raise AttributeError(
            f"program {self.__dict__.get('name', '?')!r} has no map or attribute {attr!r}"
            + (f" (maps: {', '.join(maps)})" if maps else "")
        )

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self._maps))

    @property
    def globals(self) -> GlobalData:
        """Global variables (``.rodata``, ``.data``, ``.bss``) by C name, decoded from BTF."""
        self._check_open()
        return GlobalData(self.spec, self._loaded.map_fds)

    # -- programs ---------------------------------------------------------------------
    @property
    def programs(self) -> list[loader.LoadedProgram]:
        """The object's programs (C function name, SEC(), attached or not)."""
        return list(self._loaded.programs.values())

    @property
    def attach_points(self) -> list[str]:
        """SEC() names of the attached programs."""
        return [p.section for p in self._loaded.programs.values() if p.attached]

    @property
    def attached(self) -> bool:
        """Whether any program is attached."""
        return any(p.attached for p in self._loaded.programs.values())

    @property
    def closed(self) -> bool:
        """Whether the program was closed (nothing left in the kernel)."""
        return self._loaded.closed

    def attach(self) -> list[str]:
        """Attach every auto-attachable program not attached yet; return their names."""
        self._check_open()
        with self._lock:
            return self._loaded.attach()

    def detach(self) -> None:
        """Detach every program; they and the maps stay loaded (maps stay readable)."""
        with self._lock:
            if not self.closed:
                self._loaded.detach()

    def stats(self) -> dict[str, Any]:
        """Return the kernel's run statistics of the programs.

        Returns
        -------
        dict
            ``run_cnt`` and ``run_time_ns`` summed over the programs, and
            ``programs``: per program name a dict with ``id``, ``section``,
            ``attached``, ``run_cnt``, ``run_time_ns``.
        """
        from bpfnb.kernel import bpf as syscall

        per: dict[str, dict[str, Any]] = {}
        total_cnt = total_ns = 0
        for prog in self._loaded.programs.values():
            row: dict[str, Any] = {
                "id": None,
                "section": prog.section,
                "attached": prog.attached,
                "run_cnt": 0,
                "run_time_ns": 0,
            }
            if prog.fd is not None and not self.closed:
                with contextlib.suppress(OSError, BpfnbError):
                    info = syscall.prog_info(prog.fd)
                    row.update(id=info.id, run_cnt=info.run_cnt, run_time_ns=info.run_time_ns)
            total_cnt += row["run_cnt"]
            total_ns += row["run_time_ns"]
            per[prog.name] = row
        return {"run_cnt": total_cnt, "run_time_ns": total_ns, "programs": per}

    # -- lifecycle --------------------------------------------------------------------
    def _check_open(self) -> None:
        if self.closed:
            raise BpfnbError(f"program {self.name!r} is closed")

    def on_close(self, callback: Any) -> None:
        """Call ``callback()`` when the program closes (used by live views)."""
        self._closers.append(callback)

    def close(self) -> None:
        """Stop views and consumers, detach, and release every kernel object. Idempotent."""
        with self._lock:
            if self.closed:
                return
            for callback in self._closers:
                with contextlib.suppress(Exception):
                    callback()
            self._closers.clear()
            for m in self._maps.values():
                with contextlib.suppress(Exception):
                    m.close()
            self._loaded.close()
        _unregister(self)

    def __enter__(self) -> Program:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else ("attached" if self.attached else "loaded")
        return (
            f"<bpfnb.Program {self.name!r} {state}: "
            f"programs={[p.name for p in self.programs]} maps={list(self._maps)}>"
        )


_SYSCTL_STATS = Path("/proc/sys/kernel/bpf_stats_enabled")
_SYSCTL_RESTORE: str | None = None


def _start_stats() -> None:
    """Keep the kernel's run-time statistics on while programs are loaded.

    BPF_ENABLE_STATS (needs CAP_SYS_ADMIN) keeps them on while its fd is open; without
    it, the ``kernel.bpf_stats_enabled`` sysctl is set and restored at the end.
    """
    global _STATS_FD, _SYSCTL_RESTORE
    if _STATS_FD is not None or _SYSCTL_RESTORE is not None:
        return
    from bpfnb.kernel import bpf as syscall

    try:
        _STATS_FD = syscall.enable_stats()
        return
    except (OSError, BpfnbError):
        pass
    with contextlib.suppress(OSError):
        previous = _SYSCTL_STATS.read_text().strip()
        if previous != "1":
            _SYSCTL_STATS.write_text("1\n")
            _SYSCTL_RESTORE = previous


def _stop_stats() -> None:
    global _STATS_FD, _SYSCTL_RESTORE
    if _STATS_FD is not None:
        with contextlib.suppress(OSError):
            os.close(_STATS_FD)
        _STATS_FD = None
    if _SYSCTL_RESTORE is not None:
        with contextlib.suppress(OSError):
            _SYSCTL_STATS.write_text(_SYSCTL_RESTORE + "\n")
        _SYSCTL_RESTORE = None


def _register(prog: Program) -> None:
    with _REGISTRY_LOCK:
        _REGISTRY[id(prog)] = prog
        _start_stats()


def _unregister(prog: Program) -> None:
    with _REGISTRY_LOCK:
        _REGISTRY.pop(id(prog), None)
        if not _REGISTRY:
            _stop_stats()


def programs() -> list[Program]:
    """Return every live (not closed) program of this process, oldest first."""
    with _REGISTRY_LOCK:
        return list(_REGISTRY.values())


def close_all() -> None:
    """Close every live program (the interpreter's exit does this too)."""
    for prog in programs():
        with contextlib.suppress(Exception):
            prog.close()


atexit.register(close_all)


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


def load(
    source_or_path: str | os.PathLike[str],
    name: str = "prog",
    attach: bool = True,
    defines: dict[str, str] | None = None,
    globals: dict[str, Any] | None = None,
    *,
    include_dirs: list[str] | None = None,
    cflags: list[str] | None = None,
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
    defines : dict, optional
        ``-D`` macros.
    globals : dict, optional
        Values for ``const volatile`` globals, set before load.
    include_dirs, cflags : list of str, optional
        ``-I`` directories and extra clang flags.

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
    source, object_path = _read_source(source_or_path)
    result = None
    cell_file = f"{name}.bpf.c"
    if object_path is None:
        result = compiler.compile_cell(
            source,
            name,
            defines=defines,
            include_dirs=include_dirs or [],
            cflags=cflags or [],
            epilogue=eventtypes.epilogue(source),
        )
        object_path = result.object_path
        cell_file = result.source_name
    spec = ObjectSpec.from_file(object_path)
    with _patched_globals(object_path, spec, globals or {}) as path:
        loaded = loader.load_object(path, spec=spec, cell_file=cell_file, source=source)
    prog: Program | None = None
    try:
        prog = Program(name, loaded, source, result)
        if attach:
            loaded.attach()
        for m in prog.maps.values():
            start = getattr(m, "start", None)
            if start is not None:
                start()
    except BaseException:
        for m in prog.maps.values() if prog is not None else []:
            with contextlib.suppress(Exception):
                m.close()
        loaded.close()
        raise
    _register(prog)
    return prog


@contextlib.contextmanager
def _patched_globals(object_path: Path, spec: ObjectSpec, values: dict[str, Any]) -> Iterator[Path]:
    """Yield an object path whose ``.rodata``/``.data`` globals hold ``values``."""
    if not values:
        yield object_path
        return
    from bpfnb.build.patch_globals import patch_object

    data = patch_object(object_path.read_bytes(), spec, values)
    import tempfile

    with tempfile.TemporaryDirectory(prefix="bpfnb-obj-") as tmp:
        path = Path(tmp) / object_path.name
        path.write_bytes(data)
        yield path
