"""The worker side of a fleet: the plugin that owns programs, and the remote calls.

:class:`ProgramHost` is a Dask ``WorkerPlugin`` (registered by
:func:`bpfnb.fleet.connect`, so the scheduler also installs it on workers that join
later). On its worker it holds the :class:`~bpfnb.kernel.program.Program` s loaded for
notebooks, each under a load id and its notebook's *owner* id (the Dask client's id),
until the notebook stops it, its lease runs out (the notebook went away without
stopping it), or the worker closes. A program lives in the worker's process: when the
process dies, the kernel drops everything it loaded.

The notebook reaches the plugin with ``Client.run`` and the ``remote_*`` functions
below (pickled by reference: the worker runs its own installed bpfnb). Each does its
blocking work on a thread (the worker's event loop keeps its heartbeats) and returns
a value or a :class:`RemoteFailure`, never raises: expected failures (a verifier
rejection, a refused secret) cross the wire as a type name and a message.

Everything kernel-side reuses the single-machine path: the shipped object bytes
become a :class:`~bpfnb.pipeline.Built` (:meth:`Built.from_object`) and
:func:`bpfnb.pipeline.load_built` loads and attaches them; decoders (syscall names,
kernel symbols) run here, on the host that produced the data.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
from distributed import WorkerPlugin

import bpfnb
from bpfnb.errors import FleetError
from bpfnb.fleet import auth
from bpfnb.kernel import system
from bpfnb.kernel.maps import Map
from bpfnb.kernel.program import Program
from bpfnb.kernel.streams import EventStream
from bpfnb.pipeline import Built, load_built

__all__ = [
    "PLUGIN_NAME",
    "Held",
    "LoadRequest",
    "LoadResult",
    "ProgramHost",
    "RemoteFailure",
    "host_label",
    "remote_attach",
    "remote_close",
    "remote_close_owner",
    "remote_detach",
    "remote_info",
    "remote_load",
    "remote_programs",
    "remote_read_events",
    "remote_read_map",
    "remote_status",
    "remote_touch",
]

PLUGIN_NAME = "bpfnb-fleet"
#: How often the lease thread looks for programs whose notebook went away (seconds).
LEASE_CHECK_SECONDS = 0.5
#: The doctor checks that matter on a worker (it needs no compiler).
WORKER_CHECKS = ("kernel BTF", "privileges", "tracefs", "bpffs", "kprobes")

T = TypeVar("T")


@dataclass(frozen=True)
class RemoteFailure:
    """An error on a worker, sent back as data (exception classes need not unpickle).

    Attributes
    ----------
    host : str
        The worker's host label.
    error_type : str
        The exception's class name (``VerifierError``, ``NotAuthorisedError``...).
    message : str
        Its message.
    """

    host: str
    error_type: str
    message: str

    def __str__(self) -> str:
        return f"{self.error_type}: {self.message}"


@dataclass
class LoadRequest:
    """Everything a worker needs to load a program compiled in the notebook.

    Attributes
    ----------
    load_id : str
        Unique per load (a re-run of the cell gets a new one).
    owner : str
        The notebook's id (its Dask client's id).
    name : str
        The program's name.
    data : bytes
        The CO-RE object's bytes.
    source : str
        The cell's C text (error messages quote it; event types are read from it).
    cell_file : str
        The file name clang saw.
    line_offset : int
        Lines before the C text in the notebook cell.
    attach : bool
        Attach after loading.
    globals : dict
        ``const volatile`` values for every host.
    host_globals : dict
        Host label -> values for that host only (win over :attr:`globals`).
    timestamp : float
        When the notebook made the request (``time.time()``).
    signature : str or None
        :func:`bpfnb.fleet.auth.sign` of :meth:`digest` with the fleet secret.
    replaces : str or None
        The load id of the previous version, closed once this one is attached.
    lease : float or None
        Seconds without a word from the notebook after which the program is closed.
    programs, skip, max_entries, mmap_arrays
        Which programs load, map sizes and mmapped arrays (see :func:`bpfnb.pipeline.load`).
    compiled, headers, notes
        What the notebook's build found (:class:`~bpfnb.pipeline.Built`): the text
        clang compiled (a BCC cell's rewrite), the user headers' texts (event types
        are read from both) and the build's notes.
    """

    load_id: str
    owner: str
    name: str
    data: bytes
    source: str
    cell_file: str
    line_offset: int = 0
    attach: bool = True
    globals: dict[str, Any] = field(default_factory=dict)
    host_globals: dict[str, dict[str, Any]] = field(default_factory=dict)
    timestamp: float = 0.0
    signature: str | None = None
    replaces: str | None = None
    lease: float | None = None
    programs: list[str] | None = None
    skip: list[str] = field(default_factory=list)
    max_entries: dict[str, int] = field(default_factory=dict)
    mmap_arrays: bool = True
    compiled: str = ""
    headers: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def globals_text(self) -> str:
        """The global values and load options as canonical text (the signature covers it)."""
        return json.dumps(
            {
                "all": self.globals,
                "hosts": self.host_globals,
                "load": {
                    "programs": self.programs,
                    "skip": self.skip,
                    "max_entries": self.max_entries,
                    "mmap_arrays": self.mmap_arrays,
                },
            },
            sort_keys=True,
            default=repr,
        )

    def digest(self) -> bytes:
        """What the signature covers (see :func:`bpfnb.fleet.auth.request_digest`)."""
        return auth.request_digest(self.name, self.data, self.globals_text(), self.timestamp)

    def globals_for(self, host: str) -> dict[str, Any]:
        """The global values of ``host``."""
        return {**self.globals, **self.host_globals.get(host, {})}


@dataclass(frozen=True)
class LoadResult:
    """What a worker tells about a program it loaded.

    Attributes
    ----------
    host : str
    attach_points : list of str
    program_ids : dict of str to int
        BPF program name -> kernel program id (``bpftool prog show id N``).
    maps : dict of str to list of str or None
        The user's maps: name -> the key columns of its ``df()`` (None for an event
        stream).
    """

    host: str
    attach_points: list[str]
    program_ids: dict[str, int]
    maps: dict[str, list[str] | None]


@dataclass
class Held:
    """A program held for a notebook.

    Attributes
    ----------
    owner : str
    program : Program
    lease : float or None
    last_seen : float
        ``time.monotonic()`` of the notebook's last word.
    """

    owner: str
    program: Program
    lease: float | None
    last_seen: float = field(default_factory=time.monotonic)

    def expired(self, now: float) -> bool:
        """Whether the lease ran out."""
        return self.lease is not None and now - self.last_seen > self.lease


def _expired_at(now: float) -> Callable[[Held], bool]:
    """Whether a held program's lease ran out at ``now``."""
    return lambda held: held.expired(now)


def host_label(worker: Any) -> str:
    """The host column's value for ``worker``: its Dask name (``dask worker --name``)."""
    return str(worker.name if worker.name is not None else worker.address)


class ProgramHost(WorkerPlugin):
    """The Dask worker plugin that owns the fleet's programs on its worker.

    Nothing is set up before :meth:`setup` runs on the worker: the instance the
    notebook pickles carries no state, and the secret is read from the worker's own
    environment (:func:`bpfnb.fleet.auth.local_secret`), never from the notebook.
    """

    name = PLUGIN_NAME
    idempotent = True  # registering again (another notebook) keeps the running one

    def __init__(self) -> None:
        self.host = ""
        self.secret: str | None = None
        self._held: dict[str, Held] = {}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()  # type: ignore[misc]

    # -- plugin lifecycle -------------------------------------------------------------

    def setup(self, worker: Any) -> None:
        """Read the secret, start the lease thread."""
        self.host = host_label(worker)
        self.secret = auth.local_secret()
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._expire_loop, name="bpfnb-fleet-lease", daemon=True
        )
        self._thread.start()

    def teardown(self, worker: Any) -> None:
        """Close every program (the worker is closing)."""
        self._stop.set()
        self.close_where(lambda held: True)

    def _expire_loop(self) -> None:
        while not self._stop.wait(LEASE_CHECK_SECONDS):
            self.close_where(_expired_at(time.monotonic()))

    # -- programs ---------------------------------------------------------------------

    def load(self, request: LoadRequest) -> LoadResult:
        """Check the request's signature, load and attach it; replace the old version.

        Raises
        ------
        NotAuthorisedError
            When the worker has a secret and the request does not prove it.
        BpfnbError
            Any load error (verifier, attach, privilege, kernel feature).
        """
        auth.verify(
            self.secret, request.digest(), request.signature, request.timestamp, host=self.host
        )
        built = Built.from_object(
            request.name,
            request.data,
            source=request.source,
            cell_file=request.cell_file,
            line_offset=request.line_offset,
            headers=request.headers,
            notes=request.notes,
            compiled=request.compiled,
        )
        program = load_built(
            built,
            attach=request.attach,
            global_values=request.globals_for(self.host),
            programs=request.programs,
            skip=request.skip,
            max_entries=request.max_entries,
            mmap_arrays=request.mmap_arrays,
        )
        with self._lock:
            self._held[request.load_id] = Held(request.owner, program, request.lease)
            old = self._held.pop(request.replaces, None) if request.replaces else None
        if old is not None:
            old.program.close(wait=False)
        stats = program.stats()["programs"]
        return LoadResult(
            host=self.host,
            attach_points=program.attach_points,
            program_ids={n: int(s["id"]) for n, s in stats.items() if s["id"] is not None},
            maps={
                n: list(m.key_columns) if isinstance(m, Map) else None
                for n, m in program.maps.items()
            },
        )

    def program(self, load_id: str) -> Program:
        """The program of ``load_id``.

        Raises
        ------
        FleetError
            When this worker holds no such program (stopped, replaced, lease ran out,
            or the worker restarted since).
        """
        with self._lock:
            held = self._held.get(load_id)
        if held is None or held.program.closed:
            raise FleetError(
                f"host {self.host} holds no such program (stopped, replaced, its lease ran "
                "out, or the worker restarted since it was loaded)"
            )
        return held.program

    def close(self, load_ids: list[str]) -> int:
        """Close the given programs; return how many were held."""
        ids = set(load_ids)
        return self.close_where(lambda held: False, ids)

    def close_where(self, predicate: Callable[[Held], bool], ids: set[str] | None = None) -> int:
        """Close the programs matching ``predicate`` (or listed in ``ids``)."""
        with self._lock:
            gone = [
                i for i, h in self._held.items() if (ids is not None and i in ids) or predicate(h)
            ]
            closing = [self._held.pop(i) for i in gone]
        for held in closing:
            with contextlib.suppress(Exception):
                held.program.close()
        return len(closing)

    def touch(self, owner: str) -> int:
        """Renew the leases of ``owner``'s programs; return how many it holds here."""
        now = time.monotonic()
        with self._lock:
            mine = [h for h in self._held.values() if h.owner == owner]
            for held in mine:
                held.last_seen = now
        return len(mine)

    def rows(self) -> list[dict[str, Any]]:
        """One row per program held: load id, owner, name, attach points, program ids."""
        with self._lock:
            items = list(self._held.items())
        out = []
        for load_id, held in items:
            stats = held.program.stats()["programs"] if not held.program.closed else {}
            out.append(
                {
                    "host": self.host,
                    "load_id": load_id,
                    "owner": held.owner,
                    "name": held.program.name,
                    "attach_points": held.program.attach_points,
                    "program_ids": [s["id"] for s in stats.values() if s["id"] is not None],
                }
            )
        return out


# -- remote calls (Client.run) ---------------------------------------------------------


def _plugin(worker: Any) -> ProgramHost:
    plugin = worker.plugins.get(PLUGIN_NAME)
    if not isinstance(plugin, ProgramHost):
        raise FleetError(
            f"worker {host_label(worker)} has no bpfnb fleet plugin: connect with "
            "bpfnb.fleet.connect(), which installs it"
        )
    return plugin


async def _offload(worker: Any, work: Callable[[], T]) -> T | RemoteFailure:
    """Run ``work`` on a thread; return its value, or the failure it raised."""

    def guarded() -> T | RemoteFailure:
        try:
            return work()
        except Exception as exc:
            return RemoteFailure(host_label(worker), type(exc).__name__, str(exc))

    return await asyncio.get_running_loop().run_in_executor(None, guarded)


async def remote_info(dask_worker: Any = None) -> dict[str, Any] | RemoteFailure:
    """The worker's host, kernel, BTF, privileges (``doctor``'s checks) and programs."""

    def info() -> dict[str, Any]:
        plugin = dask_worker.plugins.get(PLUGIN_NAME)
        checks = [c for c in system.doctor() if c.name in WORKER_CHECKS]
        failed = [f"{c.name}: {c.detail}" for c in checks if not c.ok and not c.optional]
        return {
            "host": host_label(dask_worker),
            "address": dask_worker.address,
            "hostname": socket.gethostname(),
            "pid": os.getpid(),
            "kernel": os.uname().release,
            "btf": Path("/sys/kernel/btf/vmlinux").exists(),
            "privileges": next(c.detail for c in checks if c.name == "privileges"),
            "ready": not failed,
            "problems": "; ".join(failed),
            "secret required": isinstance(plugin, ProgramHost) and plugin.secret is not None,
            "programs": len(plugin.rows()) if isinstance(plugin, ProgramHost) else 0,
            "bpfnb": bpfnb.__version__,
        }

    return await _offload(dask_worker, info)


async def remote_load(request: LoadRequest, dask_worker: Any = None) -> LoadResult | RemoteFailure:
    """Load and attach ``request`` on this worker."""
    return await _offload(dask_worker, lambda: _plugin(dask_worker).load(request))


def _map_of(worker: Any, load_id: str, map_name: str) -> Map | EventStream:
    program = _plugin(worker).program(load_id)
    found = program.maps.get(map_name)
    if found is None:
        raise FleetError(f"program {program.name!r} has no map {map_name!r}")
    return found


async def remote_read_map(
    load_id: str,
    map_name: str,
    per_cpu: bool = False,
    decoders: Mapping[str, Any] | None = None,
    dask_worker: Any = None,
) -> pd.DataFrame | RemoteFailure:
    """A snapshot of a keyed map (decoded here, with the notebook's chosen decoders)."""

    def read() -> pd.DataFrame:
        view = _map_of(dask_worker, load_id, map_name)
        if not isinstance(view, Map):
            raise FleetError(f"map {map_name!r} is an event stream: read it with df()/tail()")
        if decoders:
            view.decode(dict(decoders))
        return view.df(per_cpu=per_cpu)

    return await _offload(dask_worker, read)


async def remote_read_events(
    load_id: str,
    map_name: str,
    tail: int | None = None,
    decoders: Mapping[str, Any] | None = None,
    dask_worker: Any = None,
) -> tuple[pd.DataFrame, int, int] | RemoteFailure:
    """The events kept by a stream (its newest ``tail`` when given), received, lost."""

    def read() -> tuple[pd.DataFrame, int, int]:
        view = _map_of(dask_worker, load_id, map_name)
        if not isinstance(view, EventStream):
            raise FleetError(f"map {map_name!r} is not an event stream")
        if decoders:
            view.decode(dict(decoders))
        received, lost = view.received, view.lost
        frame = view.df() if tail is None else view.tail(tail)
        return frame, received, lost

    return await _offload(dask_worker, read)


async def remote_status(load_id: str, dask_worker: Any = None) -> dict[str, Any] | RemoteFailure:
    """A program's state: attached, attach points, run statistics, stream counters,
    warnings and notes, and per keyed map its capacity and dropped updates."""

    def status() -> dict[str, Any]:
        program = _plugin(dask_worker).program(load_id)
        streams = {s.name: (s.received, s.lost) for s in program.streams}
        keyed = {n: m for n, m in program.maps.items() if isinstance(m, Map)}
        return {
            "attached": program.attached,
            "attach_points": program.attach_points,
            "stats": program.stats(),
            "streams": streams,
            "warnings": {s.name: s.warning for s in program.streams if s.warning},
            "lost_notes": {s.name: s.lost_note for s in program.streams if s.lost_note},
            "maps": {n: (m.max_entries, m.dropped) for n, m in keyed.items()},
        }

    return await _offload(dask_worker, status)


async def remote_detach(load_id: str, dask_worker: Any = None) -> bool | RemoteFailure:
    """Detach a program (its maps stay readable)."""

    def detach() -> bool:
        _plugin(dask_worker).program(load_id).detach()
        return True

    return await _offload(dask_worker, detach)


async def remote_attach(load_id: str, dask_worker: Any = None) -> list[str] | RemoteFailure:
    """Attach a program's programs again (after a detach); their names."""
    return await _offload(dask_worker, lambda: _plugin(dask_worker).program(load_id).attach())


async def remote_close(load_ids: list[str], dask_worker: Any = None) -> int | RemoteFailure:
    """Close programs; returns how many this worker held."""
    return await _offload(dask_worker, lambda: _plugin(dask_worker).close(list(load_ids)))


async def remote_close_owner(owner: str, dask_worker: Any = None) -> int | RemoteFailure:
    """Close every program of a notebook."""
    return await _offload(
        dask_worker, lambda: _plugin(dask_worker).close_where(lambda h: h.owner == owner)
    )


async def remote_touch(owner: str, dask_worker: Any = None) -> int | RemoteFailure:
    """Renew a notebook's leases."""
    return await _offload(dask_worker, lambda: _plugin(dask_worker).touch(owner))


async def remote_programs(dask_worker: Any = None) -> list[dict[str, Any]] | RemoteFailure:
    """Every program the worker holds (for every notebook)."""

    def rows() -> list[dict[str, Any]]:
        plugin = dask_worker.plugins.get(PLUGIN_NAME)
        return plugin.rows() if isinstance(plugin, ProgramHost) else []

    return await _offload(dask_worker, rows)
