"""View models of live views: each reads its source and keeps what rendering needs.

- :class:`LiveTable`: hash, array and per-CPU maps: the whole snapshot, a rate column
  (change per second since the last refresh) and a total for each counter-like value
  column only (role ``counter`` or ``duration``: never timestamps, bitmasks or ids),
  a stable sort (ties keep the order of their keys), pages of at most
  :data:`MAX_PAGE_ROWS` rows, the cells that changed since the last refresh, the
  map's fill (``rows / max_entries``, full, updates dropped), and for per-CPU kinds a
  per-CPU switch whose ``[sum]`` column is what sorts and totals. Every refresh feeds
  the map's :class:`~bpfnb.codec.history.RateHistory` (``prog.MAP.history()``).
  A table without counter-like columns, or marked ``BPFNB_HIDDEN(map)`` in C, is a
  *helper* map: dashboards collapse it.
- :class:`EventTail`: ring buffers and perf event arrays: the newest events (a chosen
  number of rows), optionally only those meeting a filter (``comm == cat``), the
  event's own time when it has a timestamp field, the total received, events per
  second and the number lost.
- :class:`HistogramChart`: ``bpfnb/hist.h`` histograms: bucket ranges and counts in
  the values' unit, count / mean / p50 / p90 / p99 (estimated from the buckets), and
  the counts each bucket gained per refresh (a heatmap over time).
- :class:`ProgramHeader`: what the program does (``running``, ``detached``,
  ``stopped``) and what the view does (``live``, ``paused``, ``ended``), attach points
  and run statistics.

:func:`view_for` is the one place that turns a map's kind into a view. Views do not
render (see :mod:`bpfnb.ui.html`) and know nothing of ipywidgets (see
:mod:`bpfnb.ui.widgets`): whoever shows a view registers a callback with
:meth:`View.on_change`, called after every refresh and every change of its settings.
Each view guards its state with :attr:`View.lock`; callbacks run with it held.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from bpfnb.codec import frames
from bpfnb.codec import histogram as hist_codec
from bpfnb.codec import roles as codec_roles
from bpfnb.codec.history import HistogramHistory
from bpfnb.codec.histstats import HistogramSummary, summarize
from bpfnb.codec.plan import codec_for
from bpfnb.errors import MapTypeError
from bpfnb.object import maptypes, markers
from bpfnb.ui import eventfilter
from bpfnb.ui import format as fmt
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
    "MAX_PAGE_ROWS",
    "MAX_TAIL_ROWS",
    "EventTail",
    "HistogramChart",
    "LiveTable",
    "ProgramHeader",
    "RateTracker",
    "TablePage",
    "View",
    "amount_columns",
    "fills_up",
    "is_numeric",
    "marked_unit",
    "register_view",
    "view_for",
]

DEFAULT_TOP_N = 25
DEFAULT_TAIL_ROWS = 10
#: The most rows a table page renders (``top=10000`` pages instead of freezing a browser).
MAX_PAGE_ROWS = 200
#: The most events an event tail shows.
MAX_TAIL_ROWS = 500
#: Events a filtered tail decodes per refresh at most (newest first).
FILTER_SCAN = 20_000
#: Points of history a sparkline shows.
SPARK_POINTS = 60

_PER_CPU = re.compile(r"^(?P<base>.*)\[cpu\d+\]$")
SUM_SUFFIX = "[sum]"


def is_numeric(series: pd.Series) -> bool:
    """Whether a column holds numbers (integers or floats)."""
    return series.dtype.kind in "iuf"


def fills_up(kind: str) -> bool:
    """Whether inserts into a map of this kind fail once it is full (hash maps).

    Arrays always hold ``max_entries`` rows and LRU maps evict: neither drops.
    """
    return kind in ("hash", "percpu_hash")


def amount_columns(roles: dict[str, str], value_columns: list[str]) -> list[str]:
    """The value columns whose totals and rates mean something (counters, durations).

    Parameters
    ----------
    roles : dict
        Column -> role (:func:`bpfnb.codec.frames.frame_roles`).
    value_columns : list of str
        The value columns (not the keys), in order.
    """
    return [c for c in value_columns if roles.get(c) in fmt.AMOUNT_ROLES]


def marked_unit(source: MapSource) -> str | None:
    """The unit a cell gave a map with ``BPFNB_UNIT(map, type)``, None without one."""
    program = source.owner
    if program is None:
        return None
    marked = markers.unit_types(program.spec).get(source.name)
    if marked is None:
        return None
    return codec_for(program.spec.btf, marked).units.get("")


def _marked_hidden(source: MapSource) -> bool:
    program = source.owner
    return program is not None and source.name in markers.hidden_maps(program.spec)


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
    display_error : str or None
        The last error of a change callback (a widget or plot failing to update).
    """

    kind = "view"

    def __init__(self, title: str) -> None:
        self.title = title
        self.lock = threading.RLock()
        self.error: str | None = None
        self.finished_note: str | None = None
        self.refresh_count = 0
        self.display_error: str | None = None
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
            self._finished()
            self.changed()

    def _finished(self) -> None:
        """What a subclass forgets when the view ends (stale rates)."""

    def on_change(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` (with :attr:`lock` held) whenever the view changed."""
        with self.lock:
            self._listeners.append(callback)

    def changed(self) -> None:
        """Tell the callbacks the view changed (a failing one is reported, not raised)."""
        with self.lock:
            for callback in list(self._listeners):
                try:
                    callback()
                except Exception as exc:  # a broken display must not stop the refresher
                    self.display_error = f"{type(exc).__name__}: {exc}"

    def __repr__(self) -> str:
        return f"<bpfnb {self.kind} view {self.title!r}>"


# -- live table ------------------------------------------------------------------------


class RateTracker:
    """Change of numeric columns between two snapshots, matched by key."""

    def __init__(self) -> None:
        self._hashes: np.ndarray | None = None
        self._values: dict[str, np.ndarray] = {}
        self._time = 0.0
        self.hashes: np.ndarray = np.zeros(0, dtype=np.uint64)
        self.by_hash: np.ndarray = np.zeros(0, dtype=np.int64)
        self.seconds = 0.0

    def deltas(
        self, df: pd.DataFrame, key_cols: list[str], value_cols: list[str], now: float
    ) -> dict[str, np.ndarray]:
        """Return per value column the change of each row of ``df`` since the last call.

        Rows whose key was not in the previous snapshot get NaN, every row before
        the first call too. The snapshot is kept for the next call; :attr:`hashes`
        holds the key hashes of ``df`` (stable across refreshes), :attr:`by_hash` the
        rows in the order of their hashes and :attr:`seconds` the time between the two
        snapshots.
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
        self.seconds = dt if prev is not None else 0.0
        if prev is not None and len(prev) and n and dt > 0:
            idx = np.searchsorted(prev, hashes)
            idx[idx >= len(prev)] = 0
            found = prev[idx] == hashes
            for c in value_cols:
                old = self._values.get(c)
                if old is None:
                    continue
                out[c][found] = current[c][found] - old[idx[found]]
        order = np.argsort(hashes, kind="stable")
        self._hashes = hashes[order]
        self._values = {c: v[order] for c, v in current.items()}
        self._time = now
        self.hashes = hashes
        self.by_hash = order
        return out

    def rates(
        self, df: pd.DataFrame, key_cols: list[str], value_cols: list[str], now: float
    ) -> dict[str, np.ndarray]:
        """Change per second of each row (see :meth:`deltas`)."""
        deltas = self.deltas(df, key_cols, value_cols, now)
        if self.seconds <= 0:
            return {c: np.full(len(df), np.nan) for c in value_cols}
        return {c: d / self.seconds for c, d in deltas.items()}


@dataclass
class TablePage:
    """The rows of a table page as text, ready to render.

    Attributes
    ----------
    columns : list of str
    texts : list of list of str
        One list of cell texts per row.
    left : list of bool
        Per column: text (left-aligned) or number.
    changed : list of list of bool
        Per row and column: the value changed at the last refresh.
    widths : list of int
        Per column: its width in characters (only grows, so columns do not jump).
    sparks : list of ndarray
        Per row: its recent rates (empty without history).
    first : int
        Rank of the first row (0-based) in the sorted table.
    """

    columns: list[str]
    texts: list[list[str]]
    left: list[bool]
    changed: list[list[bool]]
    widths: list[int]
    sparks: list[np.ndarray] = field(default_factory=list)
    first: int = 0


class LiveTable(View):
    """A map as a refreshing table.

    Parameters
    ----------
    source : TableSource
        The map (``prog.counts``).
    top_n : int
        Rows per page (at most :data:`MAX_PAGE_ROWS`; the whole map is read, counted
        and sorted).

    Attributes
    ----------
    source : TableSource
    can_per_cpu : bool
        Whether the map's kind keeps values per CPU (the per-CPU switch is offered).
    per_cpu : bool
        Show one column per CPU (plus their ``[sum]``) instead of sums.
    sort_by : str or None
        The sort column; None sorts by the total column.
    descending : bool
    top_n : int
        Rows per page.
    page : int
        The page shown (0-based).
    marked_hidden : bool
        The cell marked the map ``BPFNB_HIDDEN``.
    helper : bool
        A helper map (marked hidden, or without counter-like columns).
    """

    kind = "table"

    def __init__(self, source: TableSource, top_n: int = DEFAULT_TOP_N) -> None:
        super().__init__(f"{source.name} ({source.spec.type_name})")
        self.source = source
        self.can_per_cpu = maptypes.is_per_cpu(source.kind)
        self.top_n = _clamp(top_n, 1, MAX_PAGE_ROWS)
        self.page = 0
        self.per_cpu = False
        self.sort_by: str | None = None
        self.descending = True
        self._roles = frames.frame_roles(source.key_codec, source.value_codec)
        self._units = frames.frame_units(source.key_codec, source.value_codec)
        keys = set(source.key_columns)
        self._value_columns = [c for c in self._roles if c not in keys]
        self._amounts = amount_columns(self._roles, self._value_columns)
        self.marked_hidden = _marked_hidden(source)
        self.helper = self.marked_hidden or not self._amounts
        self._rates = RateTracker()
        self._frame: pd.DataFrame = pd.DataFrame()
        self._order: np.ndarray = np.zeros(0, dtype=np.int64)
        self._order_key: tuple[Any, ...] = ()
        self._changed: dict[str, np.ndarray] = {}
        self._styles: dict[str, fmt.ColumnStyle] = {}
        self._widths: dict[str, int] = {}
        self._key_cols: list[str] = []
        self._totals: dict[str, float] = {}
        self._total_column: str | None = None
        self._rate_columns: list[str] = []
        self._updated = 0.0
        self._read_seconds = 0.0
        self.rows = 0
        self.max_entries = source.max_entries
        self.dropped = 0

    # -- what rendering reads ---------------------------------------------------------
    @property
    def frame(self) -> pd.DataFrame:
        """The last snapshot with its rate (and per-CPU ``[sum]``) columns, all rows."""
        with self.lock:
            return self._frame

    @property
    def columns(self) -> list[str]:
        """The columns of :attr:`frame` (the sortable ones)."""
        with self.lock:
            return [str(c) for c in self._frame.columns]

    @property
    def roles(self) -> dict[str, str]:
        """Column -> role, for the columns of the plain snapshot (see :mod:`bpfnb.codec.roles`)."""
        return dict(self._roles)

    @property
    def amount_columns(self) -> list[str]:
        """The value columns with totals and rates in the current mode."""
        with self.lock:
            return [c for c in self._totals]

    @property
    def rate_columns(self) -> list[str]:
        """The rate columns (``value/s``...) of the current mode."""
        with self.lock:
            return list(self._rate_columns)

    @property
    def total(self) -> float:
        """Sum of the total column over every row of the last snapshot."""
        with self.lock:
            column = self._total_column
            return self._totals.get(column, 0.0) if column else 0.0

    @property
    def totals(self) -> dict[str, float]:
        """Sum of each counter-like column over every row."""
        with self.lock:
            return dict(self._totals)

    @property
    def total_column(self) -> str | None:
        """The column :attr:`total` sums (None without a counter-like column)."""
        return self._total_column

    @property
    def updated(self) -> float:
        """Wall-clock time of the last successful read (0 before the first)."""
        return self._updated

    @property
    def read_seconds(self) -> float:
        """How long the last read took (snapshot, rates, order and history)."""
        return self._read_seconds

    @property
    def full(self) -> bool:
        """Whether the map is full and new keys are dropped."""
        return fills_up(self.source.kind) and self.max_entries > 0 and self.rows >= self.max_entries

    @property
    def evicting(self) -> bool:
        """Whether an LRU map is at capacity (new keys push the least recently used out)."""
        return self.source.kind.startswith("lru") and 0 < self.max_entries <= self.rows

    @property
    def page_count(self) -> int:
        """Pages of :attr:`top_n` rows."""
        with self.lock:
            return max(1, math.ceil(len(self._frame) / self.top_n))

    def style(self, column: str) -> fmt.ColumnStyle:
        """How the cells of ``column`` are written (unit, precision), from all its values."""
        with self.lock:
            return self._styles.get(column, fmt.TEXT)

    def sort_column(self) -> str | None:
        """The column the rows are sorted by now."""
        with self.lock:
            df = self._frame
            if self.sort_by in df.columns:
                return self.sort_by
            return self._total_column

    def _current_order(self) -> np.ndarray:
        """The row order for the current settings (recomputed when they changed)."""
        key = (self.sort_by, self.descending, len(self._frame))
        if key != self._order_key:
            self._order = self._ordering()
            self._order_key = key
        return self._order

    def _page_rows(self) -> np.ndarray:
        """Positions of the current page's rows; ties inside it in the order of their keys."""
        start = min(self.page, self.page_count - 1) * self.top_n
        rows = self._current_order()[start : start + self.top_n]
        column = self.sort_by if self.sort_by in self._frame.columns else self._total_column
        if column is None or len(rows) < 2 or not self._key_cols:
            return rows
        page = self._frame.iloc[rows]
        ranks = []
        for c in [column, *self._key_cols]:
            col = page[c]
            if is_numeric(col):
                values = col.to_numpy(dtype=np.float64, na_value=np.nan)
            else:
                values = pd.factorize(col.astype(str), sort=True)[0].astype(np.float64)
            if c == column and self.descending:
                values = -values
            ranks.append(np.where(np.isnan(values), np.inf, values))
        return np.asarray(rows[np.lexsort(ranks[::-1])])

    def sorted_top(self) -> pd.DataFrame:
        """The rows of the current page, in the current sort order."""
        with self.lock:
            return self._frame.iloc[self._page_rows()]

    def page_view(self) -> TablePage:
        """The current page as text, with the cells that changed and stable widths."""
        with self.lock:
            df = self._frame
            start = min(self.page, self.page_count - 1) * self.top_n
            rows = self._page_rows()
            columns = [str(c) for c in df.columns]
            shown = df.iloc[rows]
            texts_by_col = []
            left = []
            for c in columns:
                style = self._styles.get(c, fmt.TEXT)
                texts_by_col.append(fmt.apply_style(style, shown[c]))
                left.append(style.left)
            widths = []
            for c, col_texts in zip(columns, texts_by_col, strict=True):
                width = max([len(c), *(len(t) for t in col_texts)])
                self._widths[c] = max(self._widths.get(c, 0), width)
                widths.append(self._widths[c])
            changed_cols = [self._changed.get(c) for c in columns]
            cells = [[col[i] for col in texts_by_col] for i in range(len(rows))]
            changed = [
                [bool(ch[r]) if ch is not None else False for ch in changed_cols] for r in rows
            ]
            sparks: list[np.ndarray] = []
            history = self.source.rate_history
            if self._rate_columns and len(history) >= 2 and len(rows):
                ids = [int(i) for i in self._rates.hashes[rows]]
                _, series = history.series(ids, last=SPARK_POINTS)
                sparks = list(series)
            return TablePage(columns, cells, left, changed, widths, sparks, start)

    # -- settings -----------------------------------------------------------------------
    def set_order(self, sort_by: str | None, descending: bool, top_n: int) -> None:
        """Sort by ``sort_by`` (None: the total column) and show ``top_n`` rows a page."""
        with self.lock:
            self.sort_by = sort_by or None
            self.descending = descending
            self.top_n = _clamp(top_n, 1, MAX_PAGE_ROWS)
            self.page = 0
            self.changed()

    def set_page(self, page: int) -> None:
        """Show page ``page`` (0-based; clamped to the pages there are)."""
        with self.lock:
            self.page = _clamp(page, 0, self.page_count - 1)
            self.changed()

    def set_per_cpu(self, per_cpu: bool) -> None:
        """Show one column per CPU (or sums); reads the map again at once."""
        with self.lock:
            self.per_cpu = per_cpu
            self._rates = RateTracker()
            self._widths = {}
        self.refresh()

    def export_frame(self) -> pd.DataFrame:
        """Every row of the last snapshot, in the current sort order (for CSV export)."""
        with self.lock:
            return self._frame.iloc[self._current_order()].reset_index(drop=True)

    # -- the work -----------------------------------------------------------------------
    def _ordering(self) -> np.ndarray:
        """Row order: by the sort column; ties in the order of their key hashes.

        (Hashes stay the same between refreshes, so tied rows do not swap; inside the
        page shown, ties are then put in the order of their keys, see _page_rows.)
        """
        df = self._frame
        n = len(df)
        base = self._rates.by_hash if len(self._rates.by_hash) == n else np.arange(n)
        column = self.sort_by if self.sort_by in df.columns else self._total_column
        if column is None or not n:
            return base
        col = df[column]
        if is_numeric(col):
            values = col.to_numpy(dtype=np.float64, na_value=np.nan)[base]
            missing = np.isnan(values)
            values = np.where(missing, -np.inf if self.descending else np.inf, values)
            keys = -values if self.descending else values
        else:
            ranks = pd.factorize(col.astype(str), sort=True)[0][base].astype(np.float64)
            keys = -ranks if self.descending else ranks
        return np.asarray(base[np.argsort(keys, kind="stable")])

    def _update(self) -> None:
        start = time.perf_counter()
        per_cpu = self.per_cpu and self.can_per_cpu
        df = self.source.df(per_cpu=per_cpu)
        now = time.monotonic()
        key_cols = [c for c in self.source.key_columns if c in df.columns]
        if per_cpu:
            amounts = self._add_sums(df)
        else:
            amounts = [c for c in self._amounts if c in df.columns and is_numeric(df[c])]
        numeric = [c for c in df.columns if c not in key_cols and is_numeric(df[c])]
        deltas = self._rates.deltas(df, key_cols, numeric, now)
        seconds = self._rates.seconds
        rate_cols = []
        for c in amounts:
            rate = deltas[c] / seconds if seconds > 0 else np.full(len(df), np.nan)
            df[f"{c}/s"] = rate
            rate_cols.append(f"{c}/s")
        first = seconds <= 0
        self._changed = {
            c: (np.zeros(len(df), dtype=bool) if first else (deltas[c] != 0)) for c in numeric
        }
        self._totals = {c: float(df[c].sum()) for c in amounts}
        self._total_column = amounts[0] if amounts else None
        self._rate_columns = rate_cols
        self._styles = {c: self._style(c, df[c]) for c in df.columns}
        self._frame = df
        self._key_cols = key_cols
        self._order_key = ()
        self._current_order()
        self.rows = len(df)
        self.max_entries = self.source.max_entries
        self.dropped = self.source.dropped
        self._updated = time.time()
        if rate_cols and not first:
            self.source.rate_history.record(
                self._updated, df, key_cols, amounts, rate_cols, ids=self._rates.hashes
            )
        self._read_seconds = time.perf_counter() - start

    def _add_sums(self, df: pd.DataFrame) -> list[str]:
        """Add ``BASE[sum]`` (the sum over CPUs) for each counter-like per-CPU column."""
        bases: dict[str, list[str]] = {}
        for c in df.columns:
            m = _PER_CPU.match(str(c))
            if m is not None:
                bases.setdefault(m["base"], []).append(str(c))
        out = []
        for base, cols in bases.items():
            if self._roles.get(base) not in fmt.AMOUNT_ROLES:
                continue
            name = f"{base}{SUM_SUFFIX}"
            df[name] = df[cols].sum(axis=1)
            out.append(name)
        return out

    def _base(self, column: str) -> str:
        column = column.removesuffix("/s").removesuffix(SUM_SUFFIX)
        m = _PER_CPU.match(column)
        return m["base"] if m is not None else column

    def _style(self, column: str, values: pd.Series) -> fmt.ColumnStyle:
        base = self._base(str(column))
        return fmt.column_style(
            values,
            self._roles.get(base),
            self._units.get(base),
            rate=str(column).endswith("/s"),
        )

    def _finished(self) -> None:
        # rates end with the view: a stopped table must not show stale motion
        for c in self._rate_columns:
            if c in self._frame.columns:
                self._frame[c] = np.nan
        self._changed = {}


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(int(value), high))


# -- event tail ------------------------------------------------------------------------

#: The column bpfnb adds to events: when the consumer read their batch.
RECEIVED_AT = "received_at"


class EventTail(View):
    """The newest events of a ring buffer or perf event array.

    Attributes
    ----------
    source : EventSource
    rows : int
        Events shown (at most :data:`MAX_TAIL_ROWS`).
    filter : EventFilter
        Only events meeting it are shown (empty: every event).
    time_column : str or None
        The event's own time (a ``bpfnb_ktime_t`` field), else None: the tail then
        shows ``received_at``, when bpfnb read the event's batch.
    received, lost : int
        The source's counts at the last refresh.
    lost_note : str
        Why ``lost`` may miss events (submissions bpfnb cannot count), ``""`` when
        every drop is counted.
    warning : str or None
        The source's problem to show (a recording that stopped...).
    rate : float
        Events received per second between the last two refreshes.
    scanned, skipped : int
        With a filter: events checked against it, and events that arrived faster
        than a refresh decodes (:data:`FILTER_SCAN` a refresh) and were not checked.
    """

    kind = "events"

    def __init__(self, source: EventSource, rows: int = DEFAULT_TAIL_ROWS) -> None:
        super().__init__(f"{source.name} (events)")
        self.source = source
        self.rows = _clamp(rows, 1, MAX_TAIL_ROWS)
        self.filter = eventfilter.parse("")
        self._frame: pd.DataFrame = pd.DataFrame()
        self.received = 0
        self.lost = 0
        self.lost_note = ""
        self.warning: str | None = None
        self.rate = 0.0
        self.scanned = 0
        self.skipped = 0
        self._prev: tuple[float, int] | None = None
        self._matches: deque[pd.DataFrame] = deque()
        self._checked_upto: int | None = None
        codec = source.codec
        roles = frames.frame_roles(None, codec) if codec is not None else {}
        self._roles = roles
        self._units = frames.frame_units(None, codec) if codec is not None else {}
        self.time_column = next((c for c, r in roles.items() if r == "timestamp"), None)

    @property
    def frame(self) -> pd.DataFrame:
        """The events shown, newest first (time column first)."""
        with self.lock:
            return self._frame

    def set_rows(self, rows: int) -> None:
        """Show ``rows`` events (at most :data:`MAX_TAIL_ROWS`)."""
        with self.lock:
            self.rows = _clamp(rows, 1, MAX_TAIL_ROWS)
        self.refresh()

    def set_filter(self, text: str) -> None:
        """Show only events meeting ``text`` (see :mod:`bpfnb.ui.eventfilter`).

        Raises
        ------
        FilterError
            The text cannot be read (the previous filter stays).
        """
        parsed = eventfilter.parse(text)
        with self.lock:
            self.filter = parsed
            self._matches.clear()
            self._checked_upto = None
            self.scanned = self.skipped = 0
        self.refresh()

    def styles(self) -> dict[str, fmt.ColumnStyle]:
        """How each column of :attr:`frame` is written."""
        with self.lock:
            out = {}
            for c in self._frame.columns:
                name = str(c)
                out[name] = fmt.column_style(
                    self._frame[c], self._roles.get(name), self._units.get(name)
                )
            return out

    def export_frame(self) -> pd.DataFrame:
        """Every event kept in memory (meeting the filter), for CSV export."""
        frame = self.source.df()
        return self.filter.apply(frame) if self.filter else frame

    def _arrange(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The event's time (or ``received_at``) as the first column, as a time of day."""
        first = self.time_column if self.time_column in frame.columns else RECEIVED_AT
        if first == self.time_column and first in frame.columns and is_numeric(frame[first]):
            frame = frame.copy()
            frame[first] = _ktime_to_wall(frame[first])
        if first in frame.columns:
            rest = [c for c in frame.columns if c != first]
            if self.time_column is not None and self.time_column in frame.columns:
                rest = [c for c in rest if c != RECEIVED_AT]
            frame = frame[[first, *rest]]
        return frame.reset_index(drop=True)

    def _update(self) -> None:
        now = time.monotonic()
        received = self.source.received
        self.lost = self.source.lost
        self.lost_note = self.source.lost_note
        self.warning = self.source.warning
        if self._prev is not None and now > self._prev[0]:
            self.rate = (received - self._prev[1]) / (now - self._prev[0])
        self._prev = (now, received)
        self.received = received
        if not self.filter:
            self._frame = self._arrange(self.source.tail(self.rows).iloc[::-1])
            return
        # a new filter checks the newest events kept in memory first
        fresh = FILTER_SCAN if self._checked_upto is None else received - self._checked_upto
        take = min(fresh, FILTER_SCAN)
        if take > 0:
            batch = self.source.tail(take)
            self.scanned += len(batch)
            if self._checked_upto is not None:
                self.skipped += max(fresh - take, 0)
            found = self.filter.apply(batch)
            if len(found):
                self._matches.appendleft(found.iloc[::-1])
        self._checked_upto = received
        shown = pd.concat(list(self._matches), ignore_index=True) if self._matches else None
        if shown is None:
            self._frame = self._arrange(self.source.tail(0))
            return
        kept = shown.iloc[:MAX_TAIL_ROWS]  # more than shown: rows may grow
        self._matches = deque([kept])
        self._frame = self._arrange(kept.iloc[: self.rows])


def _ktime_to_wall(values: pd.Series) -> pd.Series:
    """``bpf_ktime_get_ns()`` values (CLOCK_MONOTONIC ns) as wall-clock times (UTC, naive).

    Values that cannot be monotonic nanoseconds (after now) stay numbers.
    """
    mono = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    raw = values.to_numpy(dtype=np.float64, na_value=np.nan)
    finite = raw[np.isfinite(raw)]
    if not finite.size or finite.min() < 0 or finite.max() > mono * 1.01:
        return values
    offset = time.time_ns() - mono
    return pd.Series(pd.to_datetime(raw + offset, unit="ns"), index=values.index)


# -- histogram chart -------------------------------------------------------------------


class HistogramChart(View):
    """A histogram map: its non-empty range of buckets, their counts, and how they grow.

    Parameters
    ----------
    source : HistogramSource
    unit : str, optional
        The unit of the values counted (``ns``, ``us``, ``ms``, ``bytes``); by default
        the one given with ``BPFNB_UNIT(map, type)`` in C, else what the map's name
        says (``lat_ns``), else none.

    Attributes
    ----------
    source : HistogramSource
    unit : str or None
    summary : HistogramSummary
        Count, mean and p50 / p90 / p99, estimated from the buckets.
    history : HistogramHistory
        What each bucket gained per refresh (the heatmap).
    """

    kind = "histogram"

    def __init__(self, source: HistogramSource, unit: str | None = None) -> None:
        super().__init__(f"{source.name} (histogram)")
        self.source = source
        self.unit = unit or marked_unit(source) or _name_unit(source.name)
        scheme = source.spec.histogram
        self._scheme = hist_codec.Histogram.of(scheme) if scheme is not None else None
        self._frame = pd.DataFrame(columns=list(hist_codec.COLUMNS))
        self.summary = HistogramSummary(0, None, None, None, None)
        self.history = HistogramHistory()

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

    def set_unit(self, unit: str | None) -> None:
        """Label buckets in ``unit`` (``ns``, ``us``, ``ms``, ``bytes`` or None)."""
        with self.lock:
            self.unit = unit
            self.changed()

    def value_text(self, value: float | None) -> str:
        """One value in the histogram's unit (``1.52 µs``), ``-`` for None."""
        if value is None:
            return "-"
        if self.unit in ("ns", "us", "ms"):
            return fmt.format_duration(value, self.unit)
        if self.unit == "bytes":
            return fmt.format_bytes(value)
        return fmt.format_number(value)

    def slot_label(self, slot: int, default: str = "") -> str:
        """The label of a bucket slot in the histogram's unit (``[2.05 µs, 4.10 µs)``).

        Without a unit, or without a bucket scheme, the frame's own label (``default``).
        """
        scheme = self._scheme
        if scheme is None:
            return default or str(slot)
        if self.unit is None:
            return scheme.label(slot)
        low, high = scheme.bounds(slot)
        text = self.value_text
        if scheme.kind == "linear" and slot == 0:
            return f"(..., {text(float(scheme.min))})"
        if high is None:
            return f"[{text(float(low))}, ...)"
        if high - low <= 1:
            return f"[{text(float(low))}]"
        return f"[{text(float(low))}, {text(float(high))})"

    def labels(self) -> list[str]:
        """Bucket labels of :attr:`frame` in the histogram's unit."""
        with self.lock:
            df = self._frame
            return [
                self.slot_label(int(slot), str(label))
                for slot, label in zip(df.index, df["bucket"], strict=True)
            ]

    def _update(self) -> None:
        frame = self.source.df()
        self.history.record(time.time(), frame)
        self.summary = summarize(frame)
        self._frame = frame


def _name_unit(name: str) -> str | None:
    return codec_roles.name_role(name)[1]


# -- program header --------------------------------------------------------------------


class ProgramHeader(View):
    """What a program does and what its dashboard does: one vocabulary.

    The program is ``running`` (attached: counting), ``detached`` (loaded, maps
    readable, nothing counts) or ``stopped`` (unloaded, as ``%bpf stop`` does). Its
    view is ``live`` (refreshing every N s), ``paused`` (frozen by Pause) or ``ended``
    (no more refreshes).

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
    runs_per_second, cpu_percent : float
        Runs per second and share of one CPU between the last two refreshes.
    """

    kind = "program"

    def __init__(self, program: ProgramSource, refresher: Refresher) -> None:
        super().__init__(program.name)
        self.program = program
        self.refresher = refresher
        self.stats: dict[str, Any] = {}
        self.attach_points: list[str] = []
        self.note = ""
        self.runs_per_second = 0.0
        self.cpu_percent = 0.0
        self._prev: tuple[float, int, int] | None = None

    @property
    def program_state(self) -> str:
        """``running``, ``detached`` or ``stopped``."""
        if self.program.closed:
            return "stopped"
        return "running" if self.program.attached else "detached"

    @property
    def view_state(self) -> str:
        """``live``, ``paused`` or ``ended``."""
        if self.program.closed or self.refresher.stopped:
            return "ended"
        return "paused" if self.refresher.paused else "live"

    @property
    def state(self) -> str:
        """Both states in words: ``running · live, every 1 s``."""
        program = {
            "running": "running",
            "detached": "detached: not counting, maps readable",
            "stopped": "stopped: unloaded",
        }[self.program_state]
        view = {
            "live": f"live, every {self.refresher.interval:g} s",
            "paused": "view paused",
            "ended": "view ended",
        }[self.view_state]
        if self.program_state == "stopped":
            return program
        return f"{program} · {view}"

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
            self.runs_per_second = self.cpu_percent = 0.0
            return
        self.stats = dict(self.program.stats())
        self.attach_points = list(self.program.attach_points)
        now = time.monotonic()
        if self._prev is not None and now > self._prev[0]:
            dt = now - self._prev[0]
            self.runs_per_second = max(self.runs - self._prev[1], 0) / dt
            self.cpu_percent = 100.0 * max(self.run_ns - self._prev[2], 0) / (dt * 1e9)
        self._prev = (now, self.runs, self.run_ns)

    def _finished(self) -> None:
        self.runs_per_second = self.cpu_percent = 0.0


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
