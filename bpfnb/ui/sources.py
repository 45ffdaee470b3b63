"""What the UI reads from the kernel layer: small typed Protocols, nothing else.

The UI never probes kernel objects with ``getattr``/``hasattr`` and never scans the
program registry: a view is built for a source whose ``kind`` (computed once on the
map's spec, see :mod:`bpfnb.object.maptypes`) says what it is, and a map knows the
program that owns it (``owner``). The kernel classes satisfy these Protocols
structurally; they do not import this module.

:func:`is_event_source`, :func:`is_histogram_source` and :func:`is_table_source` read
a source's ``kind`` with the predicates of :mod:`bpfnb.object.maptypes` and narrow its
type for the type checker; :func:`bpfnb.ui.views.view_for` is the one place using them.

================================  ===============================================
Protocol                          satisfied by (``bpfnb.kernel``)
================================  ===============================================
:class:`ProgramSource`            ``Program``
:class:`TableSource`              hash, array, per-CPU and other keyed map views
:class:`HistogramSource`          ``hist.h`` histogram maps (kind ``*histogram``)
:class:`EventSource`              ring buffers and perf event arrays
================================  ===============================================
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeGuard, runtime_checkable

import pandas as pd

from bpfnb.codec.history import RateHistory
from bpfnb.codec.plan import Codec
from bpfnb.object import maptypes
from bpfnb.object.spec import MapSpec, ObjectSpec


@runtime_checkable
class MapSource(Protocol):
    """What every map view offers the UI."""

    @property
    def name(self) -> str:
        """The C name of the map."""
        ...

    @property
    def kind(self) -> str:
        """The map's kind (``spec.kind``): ``"hash"``, ``"histogram"``, ``"ringbuf"``..."""
        ...

    @property
    def spec(self) -> MapSpec:
        """The map as declared in the object."""
        ...

    @property
    def owner(self) -> ProgramSource | None:
        """The program the map belongs to (None for a map opened on its own)."""
        ...

    @property
    def closed(self) -> bool:
        """Whether the map was closed (its program stopped or was replaced)."""
        ...


class TableSource(MapSource, Protocol):
    """A map shown as a table: keys and values as DataFrame rows.

    Whether values are kept per CPU is told by its kind
    (:func:`bpfnb.object.maptypes.is_per_cpu`); then ``df(per_cpu=True)`` gives one
    column per CPU.
    """

    @property
    def key_columns(self) -> list[str]:
        """The names of the key columns of :meth:`df` (``["key"]`` for a scalar key)."""
        ...

    @property
    def key_codec(self) -> Codec:
        """How keys decode: their columns' roles and units (``Codec.column_roles``)."""
        ...

    @property
    def value_codec(self) -> Codec:
        """How values decode: their columns' roles and units."""
        ...

    @property
    def max_entries(self) -> int:
        """The map's capacity."""
        ...

    @property
    def dropped(self) -> int:
        """Inserts that failed because the map was full (counted in the kernel)."""
        ...

    @property
    def rate_history(self) -> RateHistory:
        """The map's bounded history of refreshes, fed by its live view (``history()``)."""
        ...

    def df(self, per_cpu: bool = False) -> pd.DataFrame:
        """A snapshot of the map."""
        ...


class HistogramSource(MapSource, Protocol):
    """A histogram map: ``df()`` has ``bucket``, ``low``, ``high``, ``count``."""

    def df(self, per_cpu: bool = False) -> pd.DataFrame:
        """The histogram's non-empty range of buckets."""
        ...


class EventSource(MapSource, Protocol):
    """An event stream (ring buffer, perf event array)."""

    @property
    def received(self) -> int:
        """Events received since the program loaded."""
        ...

    @property
    def lost(self) -> int:
        """Events the kernel could not deliver (counted in the kernel)."""
        ...

    @property
    def lost_note(self) -> str:
        """Why :attr:`lost` may miss events (``""`` when every drop is counted)."""
        ...

    @property
    def warning(self) -> str | None:
        """A problem to show (a recording that stopped, a stuck callback), or None."""
        ...

    @property
    def codec(self) -> Codec | None:
        """How events decode (their columns' roles: which one is the event's time)."""
        ...

    def tail(self, n: int = 20) -> pd.DataFrame:
        """The newest ``n`` events."""
        ...

    def df(self) -> pd.DataFrame:
        """Every event kept in memory."""
        ...


class ProgramSource(Protocol):
    """What the dashboard reads from and does to a program."""

    @property
    def name(self) -> str:
        """The name the program was loaded under."""
        ...

    @property
    def closed(self) -> bool:
        """Whether the program was closed (nothing left in the kernel)."""
        ...

    @property
    def spec(self) -> ObjectSpec:
        """The loaded object: its BTF carries ``BPFNB_HIDDEN`` / ``BPFNB_UNIT`` markers."""
        ...

    @property
    def loaded_at(self) -> float:
        """``time.time()`` of the load."""
        ...

    @property
    def attached(self) -> bool:
        """Whether any of its programs is attached."""
        ...

    @property
    def attach_points(self) -> list[str]:
        """SEC() names of the attached programs."""
        ...

    @property
    def maps(self) -> Mapping[str, MapSource]:
        """The user's maps by C name."""
        ...

    def stats(self) -> dict[str, Any]:
        """Kernel run statistics: ``run_cnt``, ``run_time_ns`` and ``programs``."""
        ...

    def attach(self) -> list[str]:
        """Attach every auto-attachable program not attached yet."""
        ...

    def detach(self) -> None:
        """Detach every program (maps stay readable)."""
        ...

    def close(self, *, wait: bool = True) -> None:
        """Detach and unload everything (``wait=False``: the kernel side in the background)."""
        ...

    def on_close(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` when the program closes."""
        ...


def is_event_source(source: MapSource) -> TypeGuard[EventSource]:
    """Whether ``source`` is an event stream (ring buffer, perf event array)."""
    return maptypes.is_event_stream(source.kind)


def is_histogram_source(source: MapSource) -> TypeGuard[HistogramSource]:
    """Whether ``source`` is a ``hist.h`` histogram."""
    return maptypes.is_histogram(source.kind)


def is_table_source(source: MapSource) -> TypeGuard[TableSource]:
    """Whether ``source`` is shown as a table: every kind but streams and histograms."""
    return not (maptypes.is_event_stream(source.kind) or maptypes.is_histogram(source.kind))


__all__ = [
    "EventSource",
    "HistogramSource",
    "MapSource",
    "ProgramSource",
    "TableSource",
    "is_event_source",
    "is_histogram_source",
    "is_table_source",
]
