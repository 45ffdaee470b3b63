"""A program running on a fleet, and its maps as one DataFrame with a ``host`` column.

:func:`load` compiles the cell once, here (CO-RE object bytes: each worker's libbpf
relocates them against its own kernel's BTF), ships the bytes to the chosen workers,
which load and attach them, and returns a :class:`FleetProgram`. A worker whose kernel
cannot run it answers why (verifier, missing feature, privileges, refused secret);
the others go on, and a :class:`FleetWarning` names the host.

The program's maps are proxies with the same reading interface as a single machine's
(``df()``, ``tail()``, ``received``, ``lost``, ``decode()``, ``sql()``, ``live()``):
each read asks every host at once (:meth:`bpfnb.fleet.cluster.Fleet.call`) and
concatenates the answers with a leading ``host`` column. A host that stopped
answering (its worker died or left) is named in a :class:`FleetWarning` and the rows
of the others are returned.

The proxies satisfy the UI's Protocols (:mod:`bpfnb.ui.sources`): the dashboard
shows a fleet program like a local one. Keys, values and events decode with codecs
built here from the object's BTF (the columns' roles and units); capacities, dropped
updates and lost-event notes come with each host's status.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import pandas as pd

from bpfnb import outfile, pipeline
from bpfnb.codec import sql
from bpfnb.codec.history import RateHistory
from bpfnb.codec.plan import Codec, codec_for, raw_codec
from bpfnb.errors import BpfnbError, ClosedError, FleetError, UnsupportedOperationError
from bpfnb.fleet import cluster, worker
from bpfnb.fleet.cluster import LOST, Fleet
from bpfnb.fleet.worker import LoadRequest, LoadResult, RemoteFailure
from bpfnb.kernel import live
from bpfnb.kernel.streams.store import RECEIVED_AT
from bpfnb.object import maptypes
from bpfnb.object.spec import MapSpec, ObjectSpec, find_type

__all__ = [
    "HOST",
    "FleetMap",
    "FleetProgram",
    "FleetStream",
    "FleetWarning",
    "HostState",
    "close_all",
    "load",
    "programs",
]

#: The leading column of every gathered DataFrame.
HOST = "host"
#: How long a program's per-host status is reused by the dashboard's readers (seconds).
STATUS_MAX_AGE = 0.25


class FleetWarning(UserWarning):
    """A host did not answer or did not load the program; the others' rows are returned."""


@dataclass
class HostState:
    """Where a fleet program stands on one host.

    Attributes
    ----------
    host : str
    address : str
        The worker's address when the program was loaded.
    state : str
        ``running``, ``failed`` (never loaded there), ``lost`` (the worker died or
        left) or ``stopped``.
    error : str
        Why it failed or was lost.
    attach_points : list of str
    program_ids : dict of str to int
        BPF program name -> kernel id on that host.
    maps : dict of str to list of str or None
        The maps the host reported: key columns, None for event streams.
    """

    host: str
    address: str
    state: str
    error: str = ""
    attach_points: list[str] = field(default_factory=list)
    program_ids: dict[str, int] = field(default_factory=dict)
    maps: dict[str, list[str] | None] = field(default_factory=dict)


def _concat(frames: Mapping[str, pd.DataFrame]) -> pd.DataFrame | None:
    """The frames of every host, one after the other, with a leading ``host`` column."""
    parts = []
    for host, frame in frames.items():
        part = frame.copy(deep=False)
        part.insert(0, HOST, host)
        parts.append(part)
    if not parts:
        return None
    return pd.concat(parts, ignore_index=True)


def _sum_hosts(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Sum the numeric columns of rows with equal ``keys`` across hosts."""
    rest = [c for c in frame.columns if c != HOST and c not in keys]
    if not keys:
        return frame.drop(columns=[HOST])
    numeric = [c for c in rest if frame[c].dtype.kind in "iuf"]
    how: dict[str, str] = {c: ("sum" if c in numeric else "first") for c in rest}
    grouped = frame.groupby(keys, sort=False, dropna=False).agg(how) if how else None
    if grouped is None:
        return frame[keys].drop_duplicates().reset_index(drop=True)
    out = grouped.reset_index()
    for c in numeric:
        out[c] = out[c].astype(frame[c].dtype)
    return out


class FleetProgram:
    """A program loaded on several hosts: what ``%%bpf NAME --fleet`` binds.

    Maps are reachable as ``prog.maps["counts"]`` and ``prog.counts``; their
    ``df()`` gathers every host with a leading ``host`` column.

    Attributes
    ----------
    name : str
    source : str
        The cell's C text.
    spec : ObjectSpec
    compile_result : CompileResult or None
    fleet : Fleet
    load_id : str
        This version's id on the workers.
    hosts : dict of str to HostState
        Every host the program was sent to.
    loaded_at : float
        ``time.time()`` when the hosts had loaded it.
    """

    kind = "fleet"

    def __init__(
        self,
        fleet: Fleet,
        built: pipeline.Built,
        load_id: str,
        hosts: dict[str, HostState],
    ) -> None:
        self.fleet = fleet
        self.name = built.name
        self.source = built.source
        self.spec: ObjectSpec = built.spec
        self.compile_result = built.compile_result
        self.load_id = load_id
        self.hosts = hosts
        self.loaded_at = time.time()
        self._lock = threading.RLock()
        self._closed = False
        self._closers: list[Callable[[], None]] = []
        self._status: dict[str, dict[str, Any]] = {}
        self._status_at = 0.0
        event_types = built.event_types()
        reported: dict[str, list[str] | None] = {}
        for state in hosts.values():
            reported.update(state.maps)
        self._maps: dict[str, FleetMap | FleetStream] = {}
        for map_name, map_spec in self.spec.maps.items():
            if map_name not in reported:
                continue  # bpfnb's hidden maps, global data
            key_columns = reported[map_name]
            if key_columns is None:
                event_type = event_types.get(map_name)
                self._maps[map_name] = FleetStream(
                    self, map_spec, event_type if isinstance(event_type, str) else None
                )
            else:
                self._maps[map_name] = FleetMap(self, map_spec, key_columns)
        fleet.on_close(self._fleet_closed)

    # -- maps -----------------------------------------------------------------------------

    @property
    def maps(self) -> Mapping[str, FleetMap | FleetStream]:
        """The user's maps by C name."""
        return self._maps

    def __getattr__(self, attr: str) -> FleetMap | FleetStream:
        maps = self.__dict__.get("_maps")
        if maps is not None and attr in maps:
            return maps[attr]
        raise AttributeError(
            f"fleet program {self.__dict__.get('name', '?')!r} has no map or attribute {attr!r}"
            + (f" (maps: {', '.join(maps)})" if maps else "")
        )

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self._maps))

    @property
    def streams(self) -> list[FleetStream]:
        """The maps that are event streams."""
        return [m for m in self._maps.values() if isinstance(m, FleetStream)]

    # -- hosts ----------------------------------------------------------------------------

    def running_hosts(self) -> dict[str, str]:
        """Host -> worker address of the hosts where the program runs."""
        with self._lock:
            return {h: s.address for h, s in self.hosts.items() if s.state == "running"}

    def program_ids(self) -> dict[str, list[int]]:
        """Host -> the kernel ids of the program's BPF programs there."""
        return {h: sorted(s.program_ids.values()) for h, s in self.hosts.items()}

    def gather(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Call ``function`` on every running host; return the successful answers.

        A host whose worker is gone becomes ``lost``; it and any host whose call failed
        are named in a :class:`FleetWarning`, and so are hosts lost earlier (their rows
        are missing from every answer).

        Raises
        ------
        ClosedError
            When the program was stopped.
        """
        self._check_open()
        answers = self.fleet.call(function, self.running_hosts(), *args, **kwargs)
        good: dict[str, Any] = {}
        problems: list[str] = []
        with self._lock:
            for host, answer in answers.items():
                if not isinstance(answer, RemoteFailure):
                    good[host] = answer
                    continue
                if answer.error_type == LOST or "holds no such program" in answer.message:
                    state = self.hosts[host]
                    state.state, state.error = "lost", answer.message
                else:
                    problems.append(f"host {host}: {answer}")
            for host, state in self.hosts.items():
                if state.state == "lost":
                    problems.append(state.error or f"host {host} was lost")
        if problems:
            asked = len(good) + len(set(problems))
            warnings.warn(
                FleetWarning(
                    f"{self.name}: answers from {len(good)} of {asked} host(s) only; "
                    + "; ".join(sorted(set(problems)))
                ),
                stacklevel=3,
            )
        return dict(sorted(good.items()))

    def status(self, max_age: float = 0.0) -> pd.DataFrame:
        """One row per host: state, attach points, run count, events received and lost.

        Parameters
        ----------
        max_age : float
            Reuse an answer at most this old (seconds).
        """
        current = self._host_status(max_age)
        rows = []
        for host, state in sorted(self.hosts.items()):
            answer = current.get(host)
            streams = answer["streams"] if answer else {}
            rows.append(
                {
                    HOST: host,
                    "state": state.state,
                    "address": state.address,
                    "attach points": ", ".join(answer["attach_points"] if answer else []),
                    "run count": int(answer["stats"]["run_cnt"]) if answer else 0,
                    "run time ns": int(answer["stats"]["run_time_ns"]) if answer else 0,
                    "received": sum(r for r, _ in streams.values()),
                    "lost": sum(lost for _, lost in streams.values()),
                    "error": state.error,
                }
            )
        return pd.DataFrame(rows)

    def _host_status(self, max_age: float) -> dict[str, dict[str, Any]]:
        with self._lock:
            if self._closed:
                return {}
            if time.monotonic() - self._status_at <= max_age:
                return dict(self._status)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FleetWarning)  # shown in the host column
            answers = self.gather(worker.remote_status, self.load_id)
        with self._lock:
            self._status = answers
            self._status_at = time.monotonic()
            for host, answer in answers.items():
                self.hosts[host].attach_points = list(answer["attach_points"])
        return dict(answers)

    # -- programs ---------------------------------------------------------------------------

    @property
    def attach_points(self) -> list[str]:
        """``HOST:SEC`` of every attached program, on every running host."""
        with self._lock:
            return [
                f"{host}:{point}"
                for host, state in sorted(self.hosts.items())
                if state.state == "running"
                for point in state.attach_points
            ]

    @property
    def attached(self) -> bool:
        """Whether any program is attached on any running host."""
        return bool(self.attach_points)

    @property
    def closed(self) -> bool:
        """Whether the program was stopped (on every host)."""
        return self._closed

    def stats(self) -> dict[str, Any]:
        """Run statistics summed over the hosts; ``programs`` keyed ``HOST/PROGRAM``."""
        current = self._host_status(STATUS_MAX_AGE)
        per: dict[str, Any] = {}
        for host, answer in current.items():
            for prog, row in answer["stats"]["programs"].items():
                per[f"{host}/{prog}"] = row
        return {
            "run_cnt": sum(int(a["stats"]["run_cnt"]) for a in current.values()),
            "run_time_ns": sum(int(a["stats"]["run_time_ns"]) for a in current.values()),
            "programs": per,
        }

    def detach(self) -> None:
        """Detach on every host (maps stay readable)."""
        if self._closed:
            return
        self.gather(worker.remote_detach, self.load_id)
        with self._lock:
            for state in self.hosts.values():
                state.attach_points = []
            self._status_at = 0.0

    def attach(self) -> list[str]:
        """Attach again on every running host (after :meth:`detach`).

        Returns
        -------
        list of str
            ``HOST/PROGRAM`` of the programs attached now.

        Raises
        ------
        ClosedError
            When the program was stopped.
        """
        answers = self.gather(worker.remote_attach, self.load_id)
        with self._lock:
            self._status_at = 0.0
        self._host_status(0.0)  # the attach points shown next
        return [f"{host}/{name}" for host, names in answers.items() for name in names]

    def map_status(self, map_name: str) -> dict[str, tuple[int, int]]:
        """Host -> ``(max_entries, dropped)`` of a keyed map on each answering host."""
        current = self._host_status(STATUS_MAX_AGE)
        out: dict[str, tuple[int, int]] = {}
        for host, answer in current.items():
            found = answer.get("maps", {}).get(map_name)
            if found is not None:
                out[host] = (int(found[0]), int(found[1]))
        return out

    def on_close(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` when the program is stopped."""
        self._closers.append(callback)

    def close(self, *, wait: bool = True) -> None:
        """Stop the program on every host (nothing of it stays there). Idempotent.

        ``wait`` is accepted for symmetry with :meth:`bpfnb.Program.close`: each
        worker waits for its own kernel's detach.
        """
        with self._lock:
            if self._closed:
                return
            targets = self.running_hosts()
        if targets and not self.fleet.closed:
            with contextlib.suppress(Exception):
                self.fleet.call(worker.remote_close, targets, [self.load_id])
        self._mark_closed("stopped")

    def _fleet_closed(self) -> None:
        self._mark_closed("stopped")

    def _mark_closed(self, state: str) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for host_state in self.hosts.values():
                if host_state.state == "running":
                    host_state.state = state
            callbacks, self._closers = self._closers, []
        for callback in callbacks:
            with contextlib.suppress(Exception):
                callback()
        _unregister(self)

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError(f"fleet program {self.name!r} is stopped")

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        running = sorted(self.running_hosts())
        state = "stopped" if self._closed else f"running on {len(running)} host(s)"
        return f"<bpfnb.fleet.FleetProgram {self.name!r} {state}: maps={list(self._maps)}>"


class _FleetView:
    """What every fleet map proxy shares: name, spec, kind, owner, decoders."""

    def __init__(self, owner: FleetProgram, spec: MapSpec) -> None:
        self._owner = owner
        self.spec = spec
        self.name = spec.name
        self._decoders: dict[str, Any] = {}
        self.rate_history = RateHistory()

    @property
    def kind(self) -> str:
        """The map's kind (``spec.kind``)."""
        return self.spec.kind

    @property
    def type_name(self) -> str:
        """The map type as the kernel names it."""
        return self.spec.type_name

    @property
    def owner(self) -> FleetProgram:
        """The fleet program the map belongs to."""
        return self._owner

    @property
    def closed(self) -> bool:
        """Whether the program was stopped."""
        return self._owner.closed

    def decode(self, choices: Mapping[str, Any] | None = None, /, **columns: Any) -> Self:
        """Decode the given columns with the given decoders (on each host); return the map.

        Same names as :meth:`bpfnb.kernel.maps.Map.decode`; checked by each host at the
        next read.
        """
        self._decoders.update({**(choices or {}), **columns})
        return self

    def live(self, interval: float | None = None) -> Any:
        """A live view refreshing every ``interval`` seconds (ipywidgets)."""
        return live.live(self, interval)

    def history(self) -> pd.DataFrame:
        """Rates over time, fed by its live view (as :meth:`bpfnb.kernel.maps.Map.history`)."""
        return self.rate_history.frame()

    def _unsupported(self, operation: str) -> UnsupportedOperationError:
        return UnsupportedOperationError(
            f"fleet map {self.name!r}: {operation} is not supported on a fleet (read with "
            "df(), or change the map on one host with that host's own notebook)"
        )

    def __setitem__(self, key: object, value: object) -> None:
        raise self._unsupported("writing")

    def __delitem__(self, key: object) -> None:
        raise self._unsupported("deleting")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._owner.name}.{self.name} ({self.type_name})>"


class FleetMap(_FleetView):
    """A keyed map (hash, array, per-CPU, histogram) gathered from every host.

    Attributes
    ----------
    name : str
    spec : MapSpec
    """

    def __init__(self, owner: FleetProgram, spec: MapSpec, key_columns: list[str]) -> None:
        super().__init__(owner, spec)
        self._key_columns = list(key_columns)
        obj = owner.spec
        self._key_codec = _codec(obj, spec.key, spec.key_size)
        self._value_codec = _codec(obj, spec.value, spec.value_size)

    @property
    def key_columns(self) -> list[str]:
        """``host`` then the map's own key columns (what identifies a row)."""
        return [HOST, *self._key_columns]

    @property
    def key_codec(self) -> Codec:
        """How keys decode (with the decoders chosen with :meth:`decode`)."""
        names = set(self._key_columns) | {"key"}
        return _with(self._key_codec, {n: c for n, c in self._decoders.items() if n in names})

    @property
    def value_codec(self) -> Codec:
        """How values decode (with the decoders chosen with :meth:`decode`)."""
        names = set(self._key_columns) | {"key"}
        chosen = {n.removeprefix("value."): c for n, c in self._decoders.items() if n not in names}
        return _with(self._value_codec, chosen)

    @property
    def max_entries(self) -> int:
        """The map's capacity on one host (the largest any running host reports)."""
        sizes = [size for size, _ in self._owner.map_status(self.name).values()]
        return max(sizes, default=self.spec.max_entries)

    def capacities(self) -> dict[str, int]:
        """Host -> the map's capacity there (the hosts answering now)."""
        return {h: size for h, (size, _) in self._owner.map_status(self.name).items()}

    @property
    def dropped(self) -> int:
        """Updates the programs could not store for lack of room, summed over the hosts."""
        return sum(d for _, d in self._owner.map_status(self.name).values())

    def df(self, per_cpu: bool = False, *, by_host: bool = True) -> pd.DataFrame:
        """A snapshot of the map on every host, read at once.

        Parameters
        ----------
        per_cpu : bool
            For per-CPU maps: one column per CPU.
        by_host : bool
            True: every host's rows with a leading ``host`` column. False: rows with
            equal keys summed across hosts (histograms: counts per bucket).

        Returns
        -------
        pandas.DataFrame
        """
        frames = self._owner.gather(
            worker.remote_read_map, self._owner.load_id, self.name, per_cpu, self._decoders
        )
        frame = _concat(frames)
        if frame is None:
            frame = pd.DataFrame(columns=[HOST, *self._key_columns])
        if by_host:
            return frame
        if maptypes.is_histogram(self.kind):
            return self._sum_histogram(frame)
        return _sum_hosts(frame, self._key_columns)

    @staticmethod
    def _sum_histogram(frame: pd.DataFrame) -> pd.DataFrame:
        if not len(frame):
            return frame.drop(columns=[HOST])
        keys = ["bucket", "low", "high"]
        out = frame.groupby(keys, sort=False)["count"].sum().reset_index()
        return out.sort_values("low", kind="stable").reset_index(drop=True)

    def sum(self, per_cpu: bool = False) -> pd.DataFrame:
        """:meth:`df` summed across hosts (``df(by_host=False)``)."""
        return self.df(per_cpu=per_cpu, by_host=False)

    def sql(self, statement: str, per_cpu: bool = False) -> pd.DataFrame:
        """Query the gathered snapshot (with its ``host`` column) with DuckDB.

        The table is named like the map: ``prog.counts.sql("select host, sum(value)
        from counts group by host")``.
        """
        return sql.query(statement, {self.name: lambda: self.df(per_cpu=per_cpu)})

    def to_csv(
        self, path: str | os.PathLike[str], per_cpu: bool = False, *, overwrite: bool = False
    ) -> Path:
        """Write :meth:`df` to a new CSV file and return its path.

        Raises
        ------
        OutputExistsError
            When ``path`` exists and ``overwrite`` is False (see
            :mod:`bpfnb.outfile`: a symbolic link is never written through).
        """
        data = self.df(per_cpu=per_cpu).to_csv(None, index=False).encode()
        return outfile.write_new(path, data, overwrite=overwrite)


class FleetStream(_FleetView):
    """A ring buffer or perf event array consumed on every host.

    Each host keeps its events in its own bounded store; reads gather them with a
    ``host`` column. ``received`` and ``lost`` are sums over the hosts;
    :meth:`per_host` gives them host by host.
    """

    def __init__(self, owner: FleetProgram, spec: MapSpec, event_type: str | None = None) -> None:
        super().__init__(owner, spec)
        self._counts: dict[str, tuple[int, int]] = {}
        self._codec: Codec | None = None
        found = find_type(owner.spec.btf, event_type) if event_type is not None else None
        if found is not None:
            self._codec = codec_for(owner.spec.btf, found)

    @property
    def codec(self) -> Codec | None:
        """How events decode (None while they are undecoded bytes)."""
        if self._codec is None:
            return None
        return _with(self._codec, self._decoders)

    def _read(self, tail: int | None) -> pd.DataFrame:
        answers = self._owner.gather(
            worker.remote_read_events, self._owner.load_id, self.name, tail, self._decoders
        )
        self._counts = {h: (a[1], a[2]) for h, a in answers.items()}
        frame = _concat({h: a[0] for h, a in answers.items()})
        return frame if frame is not None else pd.DataFrame(columns=[HOST])

    def df(self) -> pd.DataFrame:
        """Every event kept on every host, with a leading ``host`` column."""
        return self._read(None)

    def tail(self, n: int = 20) -> pd.DataFrame:
        """The newest ``n`` events across the hosts (by ``received_at``)."""
        frame = self._read(n)
        if RECEIVED_AT in frame.columns and len(frame):
            frame = frame.sort_values(RECEIVED_AT, kind="stable")
        return frame.iloc[-n:].reset_index(drop=True) if n else frame.iloc[0:0]

    def per_host(self) -> pd.DataFrame:
        """Events received and lost on each host."""
        status = self._owner.status(max_age=STATUS_MAX_AGE)
        rows = []
        for _, row in status.iterrows():
            answer = self._owner._status.get(str(row[HOST]))
            received, lost = answer["streams"].get(self.name, (0, 0)) if answer else (0, 0)
            rows.append(
                {HOST: row[HOST], "state": row["state"], "received": received, "lost": lost}
            )
        return pd.DataFrame(rows, columns=[HOST, "state", "received", "lost"])

    def _totals(self) -> tuple[int, int]:
        current = self._owner._host_status(STATUS_MAX_AGE)
        pairs = [a["streams"].get(self.name, (0, 0)) for a in current.values()]
        return sum(p[0] for p in pairs), sum(p[1] for p in pairs)

    @property
    def received(self) -> int:
        """Events received on every host since the program loaded."""
        return self._totals()[0]

    @property
    def lost(self) -> int:
        """Events the kernels could not deliver, summed over the hosts."""
        return self._totals()[1]

    @property
    def lost_note(self) -> str:
        """Why :attr:`lost` may miss events on the hosts (``""`` when every drop is counted)."""
        current = self._owner._host_status(STATUS_MAX_AGE)
        notes = {a.get("lost_notes", {}).get(self.name, "") for a in current.values()}
        return "; ".join(sorted(n for n in notes if n))

    @property
    def warning(self) -> str | None:
        """The hosts' newest stream problems (``host H: ...``, one per host), or None."""
        current = self._owner._host_status(STATUS_MAX_AGE)
        found = [
            f"host {host}: {answer.get('warnings', {})[self.name]}"
            for host, answer in sorted(current.items())
            if self.name in answer.get("warnings", {})
        ]
        return "; ".join(found) or None

    def sql(self, statement: str) -> pd.DataFrame:
        """Query every host's events (with their ``host`` column) with DuckDB.

        The table is named like the map: ``prog.events.sql("select host, comm,
        count(*) from events group by all")``.
        """
        return sql.query(statement, {self.name: self.df})

    def to_csv(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        """Write :meth:`df` to a new CSV file and return its path (as :meth:`FleetMap.to_csv`)."""
        data = self.df().to_csv(None, index=False).encode()
        return outfile.write_new(path, data, overwrite=overwrite)


def _codec(obj: ObjectSpec, t: Any, size: int) -> Codec:
    """The codec of a key or value: from BTF when declared with a type, else raw bytes."""
    return raw_codec(size) if t is None else codec_for(obj.btf, t, size)


def _with(codec: Codec, choices: Mapping[str, Any]) -> Codec:
    """``codec`` with the user's decoders (as it is without them when they do not fit:
    the hosts say why at the next read)."""
    if not choices:
        return codec
    try:
        return codec.with_decoders(choices)
    except BpfnbError:
        return codec


# -- loading ------------------------------------------------------------------------------


def _group(failures: Mapping[str, RemoteFailure]) -> str:
    """Failures with one line per distinct message: ``hosts 0, 2: VerifierError: ...``."""
    by_message: dict[str, list[str]] = {}
    for host, failure in sorted(failures.items()):
        by_message.setdefault(str(failure), []).append(host)
    lines = []
    for message, hosts in by_message.items():
        label = "host" if len(hosts) == 1 else "hosts"
        lines.append(f"{label} {', '.join(hosts)}: {message}")
    return "\n".join(lines)


def _names(values: Sequence[str] | str | None) -> list[str] | None:
    """``"a,b"`` or a list of names -> a list (None stays None)."""
    if values is None:
        return None
    if isinstance(values, str):
        values = [values]
    return [n.strip() for v in values for n in v.split(",") if n.strip()]


def load(
    source_or_path: str | os.PathLike[str],
    name: str = "prog",
    *,
    hosts: list[str] | None = None,
    attach: bool = True,
    defines: Mapping[str, str] | None = None,
    globals: Mapping[str, Any] | None = None,
    host_globals: Mapping[str, Mapping[str, Any]] | None = None,
    include_dirs: list[str] | None = None,
    cflags: list[str] | None = None,
    line_offset: int = 0,
    fleet: Fleet | None = None,
    replaces: FleetProgram | None = None,
    programs: Sequence[str] | str | None = None,
    skip: Sequence[str] | str | None = None,
    max_entries: Mapping[str, int] | None = None,
    bcc: bool | None = None,
    mmap_arrays: bool = True,
) -> FleetProgram:
    """Compile here once, then load and attach on every chosen host of the fleet.

    Parameters
    ----------
    source_or_path : str or path-like
        C text, a ``.c`` file or a compiled ``.o``.
    name : str
        The program's name.
    hosts : list of str, optional
        Worker names (``dask worker --name``); None: every worker.
    attach, defines, include_dirs, cflags, line_offset
        As for :func:`bpfnb.load`.
    globals : mapping, optional
        ``const volatile`` values for every host.
    host_globals : mapping, optional
        Host -> values for that host only (a per-host filter: ``{"web1":
        {"target_pid": 4242}}``).
    fleet : Fleet, optional
        Default: the connected one (:func:`bpfnb.fleet.connect`).
    replaces : FleetProgram, optional
        The previous version: stopped once this one runs (a re-run cell).
    programs, skip, max_entries, bcc, mmap_arrays
        As for :func:`bpfnb.load` (every host makes the same choice of programs
        from its own kernel's features).

    Returns
    -------
    FleetProgram

    Raises
    ------
    CompileError
        With the cell's line numbers (compiling happens here).
    FleetError
        When no host could load it (each host's reason), or for an unknown host.
    """
    fleet = fleet or cluster.current()
    built = pipeline.build_only(
        source_or_path,
        name,
        defines=defines,
        include_dirs=include_dirs,
        cflags=cflags,
        line_offset=line_offset,
        bcc=bcc,
    )
    targets = fleet.resolve(hosts)
    per_host = {str(h): dict(v) for h, v in (host_globals or {}).items()}
    unknown = sorted(set(per_host) - set(targets))
    if unknown:
        raise FleetError(
            f"host_globals names host(s) the program is not sent to: {', '.join(unknown)} "
            f"(hosts: {', '.join(targets)})"
        )
    request = fleet.request(
        LoadRequest(
            load_id=uuid.uuid4().hex,
            owner=fleet.owner,
            name=name,
            data=built.data,
            source=built.source,
            cell_file=built.cell_file,
            line_offset=built.line_offset,
            attach=attach,
            globals=dict(globals or {}),
            host_globals=per_host,
            replaces=replaces.load_id if replaces is not None else None,
            programs=_names(programs),
            skip=_names(skip) or [],
            max_entries=dict(max_entries or {}),
            mmap_arrays=mmap_arrays,
            compiled=built.compiled,
            headers=list(built.headers),
            notes=list(built.notes),
        )
    )
    answers = fleet.call(worker.remote_load, targets, request)
    failures = {h: a for h, a in answers.items() if isinstance(a, RemoteFailure)}
    loaded = {h: a for h, a in answers.items() if isinstance(a, LoadResult)}
    if not loaded:
        raise FleetError(f"{name}: no host could load it\n{_group(failures)}")
    states: dict[str, HostState] = {}
    for host, address in targets.items():
        result = loaded.get(host)
        if result is None:
            states[host] = HostState(host, address, "failed", str(failures[host]))
            continue
        states[host] = HostState(
            host,
            address,
            "running",
            "",
            list(result.attach_points),
            dict(result.program_ids),
            dict(result.maps),
        )
    prog = FleetProgram(fleet, built, request.load_id, states)
    if failures:
        warnings.warn(
            FleetWarning(
                f"{name}: loaded on {len(loaded)} of {len(targets)} host(s); "
                f"not on:\n{_group(failures)}"
            ),
            stacklevel=2,
        )
    if replaces is not None:
        replaces.close()
    _register(prog)
    return prog


# -- this notebook's fleet programs -----------------------------------------------------------

_PROGRAMS: dict[int, FleetProgram] = {}
_PROGRAMS_LOCK = threading.Lock()


def _register(prog: FleetProgram) -> None:
    with _PROGRAMS_LOCK:
        _PROGRAMS[id(prog)] = prog


def _unregister(prog: FleetProgram) -> None:
    with _PROGRAMS_LOCK:
        _PROGRAMS.pop(id(prog), None)


def programs() -> list[FleetProgram]:
    """Every running fleet program of this notebook, oldest first."""
    with _PROGRAMS_LOCK:
        return list(_PROGRAMS.values())


def close_all() -> None:
    """Stop every fleet program of this notebook on every host."""
    for prog in programs():
        with contextlib.suppress(Exception):
            prog.close()


atexit.register(close_all)
