"""View models of live views: each reads its source and keeps what rendering needs.

- :class:`LiveTable`: hash, array and per-CPU maps: the whole snapshot with a rate
  column (change per second since the last refresh) per numeric value column, sorted
  top-N rows, the row count and the total of the first value column, and a per-CPU
  switch for per-CPU kinds.
- :class:`EventTail`: ring buffers and perf event arrays: the newest events, the total
  received, events per second and the number lost.
- :class:`HistogramChart`: ``bpfnb/hist.h`` histograms: bucket ranges and counts.
- :class:`ProgramHeader`: a program's state, attach points and run statistics.

:func:`view_for` is the one place that turns a map's kind into a view. Views do not
render (see :mod:`bpfnb.ui.html`) and know nothing of ipywidgets (see
:mod:`bpfnb.ui.widgets`): whoever shows a view registers a callback with
:meth:`View.on_change`, called after every refresh and every change of its settings.
Each view guards its state with :attr:`View.lock`; callbacks run with it held.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from bpfnb.codec import histogram
from bpfnb.errors import MapTypeError
from bpfnb.object import maptypes
from bpfnb.ui.refresh import Refresher
from bpfnb.ui.sources import (
    EventSource,
    HistogramSource,
    MapSource,
    ProgramSource,
    TableSource,
    is_event_source,
    is_histogram_source,
    is_table_source,
)

__all__ = [
    "DEFAULT_TAIL_ROWS",
    "DEFAULT_TOP_N",
    "EventTail",
    "HistogramChart",
    "LiveTable",
    "ProgramHeader",
    "RateTracker",
    "View",
    "is_numeric",
    "register_view",
    "view_for",
]

DEFAULT_TOP_N = 25
DEFAULT_TAIL_ROWS = 10


def is_numeric(series: pd.Series) -> bool:
    """Whether a column holds numbers (integers or floats)."""
    return series.dtype.kind in "iuf"


class View:
    """Base of every view: refresh with error capture, change callbacks, a lock.

    Subclasses implement :meth:`_update`: read the source and keep what rendering
    needs. A failed read is kept in :attr:`error` (and shown) instead of stopping the
    refresh thread.

    Attributes
    ----------
    title : str
        What the view shows, e.g. ``"counts (hash)"``.
    lock : threading.RLock
        Held while the view reads its source or is rendered.
    error : str or None
        The error of the last refresh, None when it succeeded.
    finished_note : str or None
        Why the view no longer refreshes (``"stopped"``), None while it does.
    refresh_count : int
        Refreshes done.
    """

    kind = "view"

    def __init__(self, title: str) -> None:
        self.title = title
        self.lock = threading.RLock()
        self.error: str | None = None
        self.finished_note: str | None = None
        self.refresh_count = 0
        self._listeners: list[Callable[[], None]] = []

    def _update(self) -> None:
        raise NotImplementedError

    def refresh(self) -> None:
        """Read the source and update the view (called by the refresher thread)."""
        with self.lock:
            try:
                self._update()
                self.error = None
            except Exception as exc:  # a failed read must not kill the refresh thread
                self.error = f"{type(exc).__name__}: {exc}"
            self.refresh_count += 1
            self.changed()

    def finish(self, note: str = "stopped") -> None:
        """Mark the view as no longer refreshing."""
        with self.lock:
            self.finished_note = note
            self.changed()

    def on_change(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` (with :attr:`lock` held) whenever the view changed."""
        with self.lock:
            self._listeners.append(callback)

    def changed(self) -> None:
        """Tell the callbacks the view changed."""
        with self.lock:
            for callback in list(self._listeners):
                callback()

    def __repr__(self) -> str:
        return f"<bpfnb {self.kind} view {self.title!r}>"


# -- live table ------------------------------------------------------------------------


class RateTracker:
    """Change per second of numeric columns between two snapshots, matched by key."""

    def __init__(self) -> None:
        self._hashes: np.ndarray | None = None
        self._values: dict[str, np.ndarray] = {}
        self._time = 0.0

    def rates(
        self, df: pd.DataFrame, key_cols: list[str], value_cols: list[str], now: float
    ) -> dict[str, np.ndarray]:
        """Return per value column the change per second of each row of ``df``.

        Rows whose key was not in the previous snapshot get NaN. The snapshot is
        kept for the next call.
        """
        n = len(df)
        if n and key_cols:
            hashes = pd.util.hash_pandas_object(df[key_cols], index=False).to_numpy()
        else:
            hashes = np.arange(n, dtype=np.uint64)
        current = {c: df[c].to_numpy(dtype=np.float64, na_value=np.nan) for c in value_cols}
        out = {c: np.full(n, np.nan) for c in value_cols}
        prev = self._hashes
        dt = now - self._time
        if prev is not None and len(prev) and n and dt > 0:
            idx = np.searchsorted(prev, hashes)
            idx[idx >= len(prev)] = 0
            found = prev[idx] == hashes
            for c in value_cols:
                old = self._values.get(c)
                if old is None:
                    continue
                r = out[c]
                r[found] = (current[c][found] - old[idx[found]]) / dt
        order = np.argsort(hashes, kind="stable")
        self._hashes = hashes[order]
        self._values = {c: v[order] for c, v in current.items()}
        self._time = now
        return out


class LiveTable(View):
    """A map as a refreshing table.

    Parameters
    ----------
    source : TableSource
        The map (``prog.counts``).
    top_n : int
        Rows shown (the whole map is counted and sorted).

    Attributes
    ----------
    source : TableSource
    can_per_cpu : bool
        Whether the map's kind keeps values per CPU (the per-CPU switch is offered).
    per_cpu : bool
        Show one column per CPU instead of sums.
    sort_by : str or None
        The sort column; None sorts by the total column.
    descending : bool
    top_n : int
    """

    kind = "table"

    def __init__(self, source: TableSource, top_n: int = DEFAULT_TOP_N) -> None:
        super().__init__(f"{source.name} ({source.spec.type_name})")
        self.source = source
        self.can_per_cpu = maptypes.is_per_cpu(source.kind)
        self.top_n = top_n
        self.per_cpu = False
        self.sort_by: str | None = None
        self.descending = True
        self._rates = RateTracker()
        self._frame: pd.DataFrame = pd.DataFrame()
        self._total = 0.0
        self._total_column: str | None = None
        self._updated = 0.0
        self._read_seconds = 0.0

    # -- what rendering reads ---------------------------------------------------------
    @property
    def frame(self) -> pd.DataFrame:
        """The last snapshot with its rate columns (all rows)."""
        with self.lock:
            return self._frame

    @property
    def columns(self) -> list[str]:
        """The columns of :attr:`frame` (the sortable ones)."""
        with self.lock:
            return [str(c) for c in self._frame.columns]

    @property
    def total(self) -> float:
        """Sum of the first numeric value column over every row of the last snapshot."""
        return self._total

    @property
    def total_column(self) -> str | None:
        """The column :attr:`total` sums (None without a numeric value column)."""
        return self._total_column

    @property
    def updated(self) -> float:
        """Wall-clock time of the last successful read (0 before the first)."""
        return self._updated

    @property
    def read_seconds(self) -> float:
        """How long the last read took (snapshot and rates)."""
        return self._read_seconds

    def sorted_top(self) -> pd.DataFrame:
        """The top-N rows in the current sort order."""
        with self.lock:
            df = self._frame
            col = self.sort_by if self.sort_by in df.columns else self._total_column
            top_n, descending = self.top_n, self.descending
        if col is not None and len(df):
            # top-N without sorting the whole frame when it is large
            if len(df) > 4 * top_n and is_numeric(df[col]):
                if descending:
                    return df.nlargest(top_n, col, keep="first")
                return df.nsmallest(top_n, col, keep="first")
            df = df.sort_values(col, ascending=not descending, kind="stable")
        return df.iloc[:top_n]

    # -- settings -----------------------------------------------------------------------
    def set_order(self, sort_by: str | None, descending: bool, top_n: int) -> None:
        """Sort by ``sort_by`` (None: the total column) and show ``top_n`` rows."""
        with self.lock:
            self.sort_by = sort_by or None
            self.descending = descending
            self.top_n = max(int(top_n), 1)
            self.changed()

    def set_per_cpu(self, per_cpu: bool) -> None:
        """Show one column per CPU (or sums); reads the map again at once."""
        with self.lock:
            self.per_cpu = per_cpu
            self._rates = RateTracker()
        self.refresh()

    # -- the work -----------------------------------------------------------------------
    def _update(self) -> None:
        start = time.perf_counter()
        df = self.source.df(per_cpu=self.per_cpu and self.can_per_cpu)
        now = time.monotonic()
        key_cols = [c for c in self.source.key_columns if c in df.columns]
        value_cols = [c for c in df.columns if c not in key_cols and is_numeric(df[c])]
        rates = self._rates.rates(df, key_cols, value_cols, now)
        for c in value_cols:
            df[f"{c}/s"] = rates[c]
        self._total_column = value_cols[0] if value_cols else None
        self._total = float(df[self._total_column].sum()) if self._total_column else 0.0
        self._frame = df
        self._updated = time.time()
        self._read_seconds = time.perf_counter() - start


# -- event tail ------------------------------------------------------------------------


class EventTail(View):
    """The newest events of a ring buffer or perf event array.

    Attributes
    ----------
    source : EventSource
    rows : int
        Events shown.
    received, lost : int
        The source's counts at the last refresh.
    warning : str or None
        The source's problem to show (a recording that stopped...).
    rate : float
        Events received per second between the last two refreshes.
    """

    kind = "events"

    def __init__(self, source: EventSource, rows: int = DEFAULT_TAIL_ROWS) -> None:
        super().__init__(f"{source.name} (events)")
        self.source = source
        self.rows = rows
        self._frame: pd.DataFrame = pd.DataFrame()
        self.received = 0
        self.lost = 0
        self.warning: str | None = None
        self.rate = 0.0
        self._prev: tuple[float, int] | None = None

    @property
    def frame(self) -> pd.DataFrame:
        """The newest events, newest first."""
        with self.lock:
            return self._frame

    def _update(self) -> None:
        now = time.monotonic()
        received = self.source.received
        self.lost = self.source.lost
        self.warning = self.source.warning
        if self._prev is not None and now > self._prev[0]:
            self.rate = (received - self._prev[1]) / (now - self._prev[0])
        self._prev = (now, received)
        self.received = received
        self._frame = self.source.tail(self.rows).iloc[::-1]


# -- histogram chart -------------------------------------------------------------------


class HistogramChart(View):
    """A histogram map: its non-empty range of buckets with their counts.

    Attributes
    ----------
    source : HistogramSource
    """

    kind = "histogram"

    def __init__(self, source: HistogramSource) -> None:
        super().__init__(f"{source.name} (histogram)")
        self.source = source
        self._frame = pd.DataFrame(columns=list(histogram.COLUMNS))

    @property
    def frame(self) -> pd.DataFrame:
        """The last histogram frame (``bucket``, ``low``, ``high``, ``count``)."""
        with self.lock:
            return self._frame

    @property
    def total(self) -> int:
        """The sum of the counts."""
        with self.lock:
            return int(self._frame["count"].sum()) if len(self._frame) else 0

    def _update(self) -> None:
        self._frame = self.source.df()


# -- program header --------------------------------------------------------------------


class ProgramHeader(View):
    """A program's name, refresh state, attach points and run statistics.

    Attributes
    ----------
    program : ProgramSource
    refresher : Refresher
        The refresher of the program's views (its state is shown).
    stats : dict
        The program's run statistics at the last refresh.
    attach_points : list of str
        Its attach points at the last refresh.
    note : str
        A note shown after the statistics.
    """

    kind = "program"

    def __init__(self, program: ProgramSource, refresher: Refresher) -> None:
        super().__init__(program.name)
        self.program = program
        self.refresher = refresher
        self.stats: dict[str, Any] = {}
        self.attach_points: list[str] = []
        self.note = ""

    @property
    def state(self) -> str:
        """``closed``, ``stopped``, ``paused`` or ``refreshing every N s``."""
        if self.program.closed:
            return "closed"
        if self.refresher.stopped:
            return "stopped"
        if self.refresher.paused:
            return "paused"
        return f"refreshing every {self.refresher.interval:g} s"

    @property
    def runs(self) -> int:
        """Runs of the program's BPF programs (kernel statistics)."""
        return int(self.stats.get("run_cnt", 0))

    @property
    def run_ns(self) -> int:
        """Their total run time in nanoseconds."""
        return int(self.stats.get("run_time_ns", 0))

    def set_note(self, note: str) -> None:
        """Show ``note`` after the statistics."""
        with self.lock:
            self.note = note
            self.changed()

    def _update(self) -> None:
        if self.program.closed:
            self.attach_points = []
            return
        self.stats = dict(self.program.stats())
        self.attach_points = list(self.program.attach_points)


# -- kind -> view ----------------------------------------------------------------------

#: Builders of the views other modules define for the kinds they know
#: (:mod:`bpfnb.ui.flamegraph`, :mod:`bpfnb.ui.summary`), asked first, in order.
ViewBuilder = Callable[[MapSource], "View | None"]
_EXTRA_VIEWS: list[ViewBuilder] = []


def register_view(builder: ViewBuilder) -> None:
    """Let ``builder(source)`` return the view of the kinds it knows (None for others)."""
    if builder not in _EXTRA_VIEWS:
        _EXTRA_VIEWS.append(builder)


def view_for(source: MapSource) -> View:
    """Return the view of a map: event tail, histogram chart or table, by its kind.

    Views registered with :func:`register_view` (flame graphs, summaries of maps that
    cannot be listed) come first.
    """
    for build in _EXTRA_VIEWS:
        made = build(source)
        if made is not None:
            return made
    if is_event_source(source):
        return EventTail(source)
    if is_histogram_source(source):
        return HistogramChart(source)
    if is_table_source(source):
        return LiveTable(source)
    raise MapTypeError(f"map {source.name!r}: no live view for kind {source.kind!r}")
