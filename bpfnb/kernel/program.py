"""``Program``: a loaded (and usually attached) BPF object with typed maps.

What ``bpfnb.load()`` returns and ``%%bpf NAME`` binds. The program owns the
:class:`~bpfnb.kernel.loader.LoadedObject` (programs, links, map fds) and one view per
user map, built by :func:`bpfnb.kernel.views.map_for` from the map's kind; each view
knows its owner (``view.owner is prog``). bpfnb's own hidden maps (``bpfnb_*``) are
used, not shown: ``bpfnb_drops`` counts, per map, the events lost and the updates
dropped in the kernel (see :mod:`bpfnb.kernel.drops`). :meth:`Program.close` stops the
views' consumers, closes the map fds they share (so stale views raise instead of
reading a reused fd), detaches and unloads.

``prog.notes`` lists what bpfnb decided for the user while building and loading (the
variant of a program it chose and why, programs skipped, map sizes it set, maps kept or
shared, pins, sampling events).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

from bpfnb.errors import BpfnbError, ClosedError, EventTypeError
from bpfnb.kernel import bpf, drops, maps, session, views
from bpfnb.kernel.global_vars import GlobalData
from bpfnb.kernel.loader import LoadedObject, LoadedProgram
from bpfnb.kernel.streams import EventStream
from bpfnb.object import code
from bpfnb.object.spec import ObjectSpec

HIDDEN_PREFIX = "bpfnb_"


class Program:
    """A loaded BPF object: its programs, attach points and typed maps.

    Use :func:`bpfnb.load` to make one. Maps are reachable as ``prog.maps["counts"]`` and
    as attributes (``prog.counts``). ``close()`` (or leaving a ``with`` block)
    detaches and unloads everything.

    Parameters
    ----------
    name : str
        The name it is loaded under.
    loaded : LoadedObject
        The loaded object; the program owns it from now on.
    source : str
        The C text of the cell (empty when loaded from an object file).
    build : object, optional
        What the build step produced (``bpfnb.build.compiler.CompileResult``).
    event_types : mapping, optional
        Ring buffer / perf array name -> event C type (or the error saying why unknown).
    notes : list of str, optional
        What bpfnb decided while building and loading (shown with the cell).

    Attributes
    ----------
    name : str
    source : str
    spec : ObjectSpec
        Maps, programs and globals of the object.
    compile_result : CompileResult or None
    loaded_at : float
        ``time.time()`` of the load.
    notes : list of str
        What bpfnb decided or did that the user should hear about: the variant of a
        program it loaded and why, programs left out, map sizes it set, rewrites of the
        source, maps kept from the previous version or shared with another program,
        pins, sampling events.
    """

    def __init__(
        self,
        name: str,
        loaded: LoadedObject,
        *,
        source: str = "",
        build: Any = None,
        event_types: Mapping[str, str | EventTypeError | None] | None = None,
        notes: list[str] | None = None,
    ) -> None:
        self.name = name
        self.notes: list[str] = list(notes or [])
        self.source = source
        self.spec: ObjectSpec = loaded.spec
        self.compile_result = build
        self.loaded_at = time.time()
        self._loaded = loaded
        self._lock = threading.RLock()
        self._closers: list[Callable[[], None]] = []
        self._closed = False
        drops_fd = loaded.map_fds.get(drops.DROPS_MAP)
        counter = drops.DropCounter(drops_fd) if drops_fd is not None else None
        types = event_types or {}
        self._maps: dict[str, views.MapView] = {}
        for map_name, map_spec in self.spec.maps.items():
            fd = loaded.map_fds.get(map_name)
            if fd is None or map_name.startswith(HIDDEN_PREFIX):
                continue
            view = views.map_for(
                fd, map_spec, self.spec, event_type=types.get(map_name), lost=counter
            )
            if isinstance(view, maps.Map):
                view.count_drops_with(counter)
            view.owner = self
            self._maps[map_name] = view
        self._note_uncounted(source)

    def _note_uncounted(self, source: str) -> None:
        """Tell each stream whose submissions cannot all be counted why (``lost_note``)."""
        uncounted = drops.uncounted_submissions(self.spec, source)
        funcs = self.spec.functions
        for func_name, why in uncounted.items():
            func = funcs.get(func_name)
            used = (
                code.maps_of_program(funcs, func_name)
                if func is not None and func.program
                else frozenset(self._maps)
            )
            for stream in self.streams:
                if stream.name in used and not stream.lost_note:
                    stream.lost_note = why

    # -- maps ---------------------------------------------------------------------------

    @property
    def maps(self) -> Mapping[str, views.MapView]:
        """The user's maps by C name."""
        return self._maps

    def __getattr__(self, attr: str) -> views.MapView:
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
    def streams(self) -> list[EventStream]:
        """The maps that are event streams (ring buffers, perf event arrays)."""
        return [m for m in self._maps.values() if isinstance(m, EventStream)]

    @property
    def globals(self) -> GlobalData:
        """Global variables (``.rodata``, ``.data``, ``.bss``) by C name, decoded from BTF."""
        self._check_open()
        return GlobalData(self.spec, self._loaded.map_fds)

    # -- programs -----------------------------------------------------------------------

    @property
    def programs(self) -> list[LoadedProgram]:
        """The object's programs (C function name, SEC(), loaded, attached)."""
        return list(self._loaded.programs.values())

    def program_fd(self, name: str) -> int | None:
        """The kernel fd of loaded program ``name`` (owned by the program), None if not loaded."""
        self._check_open()
        if name not in self._loaded.programs:
            return None
        return self._loaded.program_fd(name)

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
        """Whether the program was closed (nothing of it stays in the kernel)."""
        return self._closed

    def attach(self) -> list[str]:
        """Attach every auto-attachable program not attached yet; return their names."""
        self._check_open()
        with self._lock:
            return self._loaded.attach()

    def start(self) -> None:
        """Start the event streams' consumers (``bpfnb.load`` does it after attaching)."""
        for stream in self.streams:
            stream.start()

    def detach(self) -> None:
        """Detach every program; they and the maps stay loaded (maps stay readable)."""
        with self._lock:
            if not self._closed:
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
            fd = None if self._closed else self._loaded.program_fd(prog.name)
            if fd is not None:
                with contextlib.suppress(OSError, BpfnbError):
                    info = bpf.prog_info(fd)
                    row.update(id=info.id, run_cnt=info.run_cnt, run_time_ns=info.run_time_ns)
            total_cnt += row["run_cnt"]
            total_ns += row["run_time_ns"]
            per[prog.name] = row
        return {"run_cnt": total_cnt, "run_time_ns": total_ns, "programs": per}

    # -- lifecycle ----------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError(f"program {self.name!r} is closed")

    def on_close(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` when the program closes (used by live views)."""
        self._closers.append(callback)

    def close(self, *, wait: bool = True) -> None:
        """Stop views and consumers, detach, and release every kernel object. Idempotent.

        Parameters
        ----------
        wait : bool
            False hands the detach and unload to the background closer (the maps are
            closed to readers at once; :func:`bpfnb.close_all` and the interpreter's exit
            wait for the kernel side).
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            callbacks, self._closers = self._closers, []
            for callback in callbacks:
                with contextlib.suppress(Exception):
                    callback()
            for stream in self.streams:
                with contextlib.suppress(Exception):
                    stream.close()
            for fd in self._loaded.map_fds.values():
                fd.close()  # readers of the views get ClosedError from now on
            if wait:
                self._loaded.close()
            else:
                session.close_later(self.name, self._loaded.close)
        session.unregister(self)

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
