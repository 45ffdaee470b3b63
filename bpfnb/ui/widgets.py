"""Live views of BPF programs and maps in Jupyter: dashboard, tables, event tails, charts.

Views
-----
- :func:`live_table`: hash, array and per-CPU maps as a table that refreshes: sort by
  any column, top-N, the row count, a rate column (change per second since the last
  refresh) per numeric value column, and a per-CPU toggle.
- :func:`event_tail`: ring buffers and perf event arrays: the newest events, the total
  received, events per second and the number lost (always shown).
- :func:`histogram_chart`: histogram maps (``bpfnb/hist.h``) as labelled bars.
- :func:`dashboard`: a program's attach points, run count and time, pause / resume /
  stop controls, and one of the views above per map.

Refreshing
----------
Every view of one program is refreshed by ONE background thread (:class:`Refresher`),
which sets widget values, so views keep moving while another cell runs. The thread
stops when the program closes (``Program.on_close``) or its dashboard's Stop button is
pressed. Reads are serialised per view; the expensive part (reading the map) happens
once per refresh, and only the top-N rows are rendered as HTML.

Without ipywidgets (or without a widget frontend) every view still renders: each view
object carries ``_repr_html_`` / ``text/plain`` snapshots, so plain IPython and
nbconvert show a static table.

This module and ``magics`` are the only ones importing IPython / ipywidgets.
"""

from __future__ import annotations

import contextlib
import html
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pandas as pd

from bpfnb.codec import histogram
from bpfnb.object import maptypes

try:  # ipywidgets is a dependency, but the static fallback must work without it
    import ipywidgets as _w
except ImportError:  # pragma: no cover - exercised by the fallback test via monkeypatch
    _w = None

__all__ = [
    "DEFAULT_TOP_N",
    "Refresher",
    "dashboard",
    "event_tail",
    "histogram_chart",
    "live_table",
    "refresher_for",
    "view_for",
]

DEFAULT_TOP_N = 25
DEFAULT_TAIL_ROWS = 10
MAP_TYPE_ARRAY = 2
MAP_TYPE_PERF_EVENT_ARRAY = 4
MAP_TYPE_PERCPU_ARRAY = 6
MAP_TYPE_RINGBUF = 27

_CSS = """<style>
.bpfnb-view{font-family:var(--jp-ui-font-family,sans-serif);font-size:12px}
.bpfnb-title{font-weight:600;margin:6px 0 2px 0}
.bpfnb-table{border-collapse:collapse;margin:2px 0}
.bpfnb-table th,.bpfnb-table td{padding:1px 8px;border-bottom:1px solid #ddd;
 text-align:right;font-family:var(--jp-code-font-family,monospace);white-space:nowrap}
.bpfnb-table th{background:#f3f3f3;font-weight:600}
.bpfnb-table td.s{text-align:left}
.bpfnb-foot{color:#555;margin:2px 0}
.bpfnb-lost{color:#b00020;font-weight:600}
.bpfnb-err{color:#b00020}
.bpfnb-hist td.bar{width:320px;text-align:left}
.bpfnb-bar{display:inline-block;height:11px;background:#4a7bd0;vertical-align:middle}
</style>"""


# --------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------


def _fmt(value: Any) -> str:
    """Format one cell for HTML (escaped)."""
    if isinstance(value, float | np.floating):
        v = float(value)
        if np.isnan(v):
            return ""
        if v.is_integer() and abs(v) < 1e15:
            return str(int(v))
        return f"{v:.1f}" if abs(v) >= 10 else f"{v:.3g}"
    if value is None or value is pd.NA:
        return ""
    if isinstance(value, bytes):
        return html.escape(value.hex())
    return html.escape(str(value))


def _is_numeric(series: pd.Series) -> bool:
    return series.dtype.kind in "iuf"


def _key_columns(m: Any, df: pd.DataFrame) -> list[str]:
    """Return the key columns of a map's frame (from its key codec when it has one)."""
    codec = getattr(m, "key_codec", None)
    names = getattr(codec, "column_names", None)
    if names is not None:
        from bpfnb.codec.frames import role_name

        cols = [role_name("key", n) for n in names]
        if all(c in df.columns for c in cols):
            return cols
    if "key" in df.columns:
        return ["key"]
    return list(df.columns[:1])


def _html_table(
    df: pd.DataFrame, columns: list[str], *, css: str = "bpfnb-table", limit: int | None = None
) -> str:
    """Render the first ``limit`` rows of ``df`` as an HTML table (no index)."""
    rows = df if limit is None else df.iloc[:limit]
    parts = [f'<table class="{css}"><thead><tr>']
    parts += [f"<th>{html.escape(str(c))}</th>" for c in columns]
    parts.append("</tr></thead><tbody>")
    cols = [(rows[c].to_numpy(), not _is_numeric(rows[c])) for c in columns]
    for i in range(len(rows)):
        parts.append("<tr>")
        for values, is_text in cols:
            cls = ' class="s"' if is_text else ""
            parts.append(f"<td{cls}>{_fmt(values[i])}</td>")
        parts.append("</tr>")
    parts.append("</tbody></table>")
    return "".join(parts)


def _widgets_available() -> bool:
    return _w is not None


# --------------------------------------------------------------------------------------
# The refresh thread
# --------------------------------------------------------------------------------------


class Refresher:
    """The one background thread refreshing every view of a program.

    Parameters
    ----------
    name : str
        Thread name suffix (the program's name).
    interval : float
        Seconds between refreshes.
    is_closed : callable, optional
        Returns True once the program is closed; the thread then stops.
    """

    def __init__(
        self, name: str, interval: float = 1.0, is_closed: Callable[[], bool] | None = None
    ) -> None:
        self.name = name
        self.interval = max(float(interval), 0.05)
        self._is_closed = is_closed or (lambda: False)
        self._views: list[_View] = []
        self._lock = threading.Lock()  # guards _views
        self._busy = threading.Lock()  # held during one refresh pass
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._paused = False
        self._thread: threading.Thread | None = None
        self.refreshes = 0
        self.last_seconds = 0.0

    # -- views ----------------------------------------------------------------------
    def add(self, view: _View) -> None:
        """Refresh ``view`` from now on (starts the thread on first use)."""
        with self._lock:
            if view not in self._views:
                self._views.append(view)
        self.start()

    def remove(self, view: _View) -> None:
        """Stop refreshing ``view``."""
        with self._lock:
            if view in self._views:
                self._views.remove(view)

    @property
    def views(self) -> list[_View]:
        """The views refreshed, in order."""
        with self._lock:
            return list(self._views)

    # -- state ----------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """Whether the thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def paused(self) -> bool:
        """Whether refreshing is paused."""
        return self._paused

    @property
    def stopped(self) -> bool:
        """Whether :meth:`stop` was called (or the program closed)."""
        return self._stop.is_set()

    def start(self) -> None:
        """Start the thread unless it runs or was stopped."""
        if self.running or self._stop.is_set():
            return
        self._thread = threading.Thread(
            target=self._run, name=f"bpfnb-refresh-{self.name}", daemon=True
        )
        self._thread.start()

    def pause(self) -> None:
        """Freeze every view (the thread stays, idle)."""
        self._paused = True

    def resume(self) -> None:
        """Refresh again, at once."""
        self._paused = False
        self._wake.set()

    def set_interval(self, interval: float) -> None:
        """Change the refresh period (takes effect at once)."""
        self.interval = max(float(interval), 0.05)
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread and wait for a refresh in progress to end. Idempotent."""
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    # -- the work ---------------------------------------------------------------------
    def refresh_once(self) -> None:
        """Refresh every view once, now (in the calling thread)."""
        with self._busy:
            if self._is_closed():
                return
            start = time.perf_counter()
            for view in self.views:
                view.refresh()
            self.last_seconds = time.perf_counter() - start
            self.refreshes += 1

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._is_closed():
                self._stop.set()
                break
            if not self._paused:
                self.refresh_once()
            self._wake.wait(self.interval)
            self._wake.clear()
        for view in self.views:
            with contextlib.suppress(Exception):
                view.finish()


_REFRESHERS: dict[int, Refresher] = {}
_REFRESHERS_LOCK = threading.Lock()


def _owner_of(m: Any) -> Any:
    """Return the loaded Program that owns map ``m`` (None when there is none)."""
    try:
        from bpfnb.kernel.session import programs
    except ImportError:
        return None
    for prog in programs():
        if any(x is m for x in prog.maps.values()):
            return prog
    return None


def refresher_for(owner: Any, interval: float | None = None) -> Refresher:
    """Return the refresher of a program (or lone map), creating it at most once.

    A refresher stopped earlier (Stop button, program closed) is replaced by a new
    one only when the program is still open. ``interval=None`` keeps the interval of
    an existing refresher (1 s for a new one).
    """
    key = id(owner)
    with _REFRESHERS_LOCK:
        ref = _REFRESHERS.get(key)
        if ref is not None and not ref.stopped:
            if interval is not None and interval != ref.interval:
                ref.set_interval(interval)
            return ref
        owner_ref = weakref.ref(owner)

        def is_closed() -> bool:
            o = owner_ref()
            return o is None or bool(getattr(o, "closed", False))

        ref = Refresher(str(getattr(owner, "name", key)), interval or 1.0, is_closed)
        _REFRESHERS[key] = ref
    on_close = getattr(owner, "on_close", None)
    if on_close is not None:
        on_close(lambda: _drop_refresher(key, ref))
    return ref


def _drop_refresher(key: int, ref: Refresher) -> None:
    ref.stop()
    with _REFRESHERS_LOCK:
        if _REFRESHERS.get(key) is ref:
            del _REFRESHERS[key]


# --------------------------------------------------------------------------------------
# Views
# --------------------------------------------------------------------------------------


class _View:
    """Base of every view: renders HTML from a source; a widget when ipywidgets is there.

    Subclasses implement :meth:`_update` (read the source, keep what rendering needs)
    and :meth:`_render` (HTML of the current state, cheap).
    """

    kind = "view"

    def __init__(self, title: str) -> None:
        self.title = title
        self._lock = threading.RLock()
        self._error: str | None = None
        self._closed_note: str | None = None
        self._last_html = ""
        self.widget: Any = None
        self._body: Any = None
        self.refresh_count = 0

    # -- the work ---------------------------------------------------------------------
    def _update(self) -> None:
        raise NotImplementedError

    def _render(self) -> str:
        raise NotImplementedError

    def refresh(self) -> None:
        """Read the source and update the view (called by the refresher thread)."""
        with self._lock:
            try:
                self._update()
                self._error = None
            except Exception as exc:  # a failed read must not kill the refresh thread
                self._error = f"{type(exc).__name__}: {exc}"
            self.refresh_count += 1
            self._push()

    def finish(self, note: str = "stopped") -> None:
        """Mark the view as no longer refreshing."""
        with self._lock:
            self._closed_note = note
            self._push()

    def html(self) -> str:
        """The view's current HTML (a static snapshot)."""
        with self._lock:
            body = self._render()
            if self._error:
                body += f'<div class="bpfnb-err">refresh failed: {html.escape(self._error)}</div>'
            if self._closed_note:
                body += f'<div class="bpfnb-foot">({html.escape(self._closed_note)})</div>'
            return f'{_CSS}<div class="bpfnb-view bpfnb-{self.kind}">{body}</div>'

    def _push(self) -> None:
        text = self.html()
        if text != self._last_html:
            self._last_html = text
            if self._body is not None:
                self._body.value = text

    # -- display ----------------------------------------------------------------------
    def _repr_html_(self) -> str:
        return self.html()

    def __repr__(self) -> str:
        return f"<bpfnb {self.kind} view {self.title!r}>"


class _WidgetMixin:
    """Adds static text/html and text/plain to a widget's mime bundle (nbconvert)."""

    _bpfnb_view: _View

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = super()._repr_mimebundle_(**kwargs)  # type: ignore[misc]
        if isinstance(bundle, dict):
            bundle = dict(bundle)
            bundle["text/html"] = self._bpfnb_view.html()
            bundle["text/plain"] = repr(self._bpfnb_view)
        return bundle


def _box_class() -> type:
    assert _w is not None

    class BpfnbBox(_WidgetMixin, _w.VBox):
        """A VBox whose mime bundle also carries the view's static HTML."""

    return BpfnbBox


_BOX: type | None = None


def _make_box(view: Any, children: list[Any]) -> Any:
    global _BOX
    if _BOX is None:
        _BOX = _box_class()
    box = _BOX(children=children)
    box._bpfnb_view = view
    box.add_class("bpfnb")
    box.add_class(f"bpfnb-{getattr(view, 'kind', 'dashboard')}-widget")
    return box


class StaticView:
    """A view without widgets: ``_repr_html_`` shows the snapshot taken at creation."""

    def __init__(self, view: _View) -> None:
        self.view = view

    def refresh(self) -> None:
        """Take a new snapshot."""
        self.view.refresh()

    def _repr_html_(self) -> str:
        return self.view.html()

    def __repr__(self) -> str:
        return repr(self.view)


# -- live table ------------------------------------------------------------------------


class _RateTracker:
    """Change per second of numeric columns between two snapshots, matched by key."""

    def __init__(self) -> None:
        self._hashes: np.ndarray | None = None
        self._values: dict[str, np.ndarray] = {}
        self._time = 0.0

    def rates(
        self, df: pd.DataFrame, key_cols: list[str], value_cols: list[str], now: float
    ) -> dict[str, np.ndarray]:
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


class LiveTable(_View):
    """A map as a refreshing table (see :func:`live_table`)."""

    kind = "table"

    def __init__(self, m: Any, top_n: int = DEFAULT_TOP_N) -> None:
        spec = getattr(m, "spec", None)
        type_name = getattr(spec, "type_name", "") or getattr(m, "type_name", "")
        super().__init__(f"{m.name} ({type_name})" if type_name else str(m.name))
        self.map = m
        self.top_n = top_n
        self.per_cpu = False
        self.sort_by: str | None = None
        self.descending = True
        self._rates = _RateTracker()
        self._frame: pd.DataFrame = pd.DataFrame()
        self._key_cols: list[str] = []
        self._total: float = 0.0
        self._total_col: str | None = None
        self._updated = 0.0
        self._read_seconds = 0.0

    @property
    def can_per_cpu(self) -> bool:
        """Whether the map is per-CPU (the toggle is shown)."""
        return bool(getattr(self.map, "per_cpu", False))

    @property
    def frame(self) -> pd.DataFrame:
        """The last snapshot with its rate columns (all rows)."""
        with self._lock:
            return self._frame

    @property
    def total(self) -> float:
        """Sum of the first numeric value column over every row of the last snapshot."""
        return self._total

    def _update(self) -> None:
        start = time.perf_counter()
        df = self.map.df(per_cpu=self.per_cpu and self.can_per_cpu)
        now = time.monotonic()
        key_cols = _key_columns(self.map, df) if len(df.columns) else []
        value_cols = [c for c in df.columns if c not in key_cols and _is_numeric(df[c])]
        rates = self._rates.rates(df, key_cols, value_cols, now)
        if value_cols:
            for c in value_cols:
                df[f"{c}/s"] = rates[c]
        self._total_col = value_cols[0] if value_cols else None
        self._total = float(df[self._total_col].sum()) if self._total_col else 0.0
        self._key_cols = key_cols
        self._frame = df
        self._updated = time.time()
        self._read_seconds = time.perf_counter() - start
        self._on_columns(list(df.columns))

    def _on_columns(self, columns: list[str]) -> None:
        """Hook for the widget: the sortable columns may have changed."""

    def sorted_top(self) -> pd.DataFrame:
        """The top-N rows in the current sort order."""
        df = self._frame
        col = self.sort_by if self.sort_by in df.columns else self._total_col
        if col is not None and len(df):
            # top-N without sorting the whole frame when it is large
            if len(df) > 4 * self.top_n and _is_numeric(df[col]):
                if self.descending:
                    part = df.nlargest(self.top_n, col, keep="first")
                else:
                    part = df.nsmallest(self.top_n, col, keep="first")
                return part
            df = df.sort_values(col, ascending=not self.descending, kind="stable")
        return df.iloc[: self.top_n]

    def _render(self) -> str:
        df = self._frame
        title = f'<div class="bpfnb-title">{html.escape(self.title)}</div>'
        if not len(df.columns):
            return title + '<div class="bpfnb-foot">(no rows yet)</div>'
        top = self.sorted_top()
        table = _html_table(top, list(df.columns))
        shown = min(len(df), self.top_n)
        when = time.strftime("%H:%M:%S", time.localtime(self._updated)) if self._updated else "-"
        total = f"{self._total:.0f}" if self._total_col else ""
        foot = (
            f'<div class="bpfnb-foot bpfnb-summary" data-rows="{len(df)}" '
            f'data-total="{total}" data-refreshes="{self.refresh_count}">'
            f"rows: {len(df)} (top {shown} shown)"
            + (f" · total {html.escape(str(self._total_col))}: {total}" if total else "")
            + f" · updated {when} · read {self._read_seconds * 1000:.1f} ms</div>"
        )
        return title + table + foot


# -- event tail ------------------------------------------------------------------------


class EventTail(_View):
    """The newest events of a ring buffer / perf event array (see :func:`event_tail`)."""

    kind = "events"

    def __init__(self, ring: Any, rows: int = DEFAULT_TAIL_ROWS) -> None:
        super().__init__(f"{ring.name} (events)")
        self.ring = ring
        self.rows = rows
        self._tail: pd.DataFrame = pd.DataFrame()
        self.received = 0
        self.lost = 0
        self.rate = 0.0
        self._prev: tuple[float, int] | None = None

    def _read_tail(self) -> pd.DataFrame:
        tail = getattr(self.ring, "tail", None)
        if callable(tail):
            return pd.DataFrame(tail(self.rows))
        df = self.ring.df()
        return df.iloc[-self.rows :]

    def _update(self) -> None:
        now = time.monotonic()
        received = int(getattr(self.ring, "received", 0))
        self.lost = int(getattr(self.ring, "lost", 0))
        if self._prev is not None and now > self._prev[0]:
            self.rate = (received - self._prev[1]) / (now - self._prev[0])
        self._prev = (now, received)
        self.received = received
        self._tail = self._read_tail().iloc[::-1]

    def _render(self) -> str:
        title = f'<div class="bpfnb-title">{html.escape(self.title)}</div>'
        lost_cls = "bpfnb-lost" if self.lost else ""
        foot = (
            f'<div class="bpfnb-foot bpfnb-summary" data-received="{self.received}" '
            f'data-lost="{self.lost}" data-rate="{self.rate:.1f}">'
            f"received: {self.received} · {self.rate:.1f} events/s · "
            f'<span class="{lost_cls}">lost: {self.lost}</span></div>'
        )
        if not len(self._tail.columns):
            return title + foot + '<div class="bpfnb-foot">(no events yet)</div>'
        return title + foot + _html_table(self._tail, list(self._tail.columns))


# -- histogram chart -------------------------------------------------------------------


class HistogramChart(_View):
    """A histogram map as labelled bars (see :func:`histogram_chart`)."""

    kind = "histogram"

    def __init__(self, m: Any) -> None:
        super().__init__(f"{m.name} (histogram)")
        self.map = m
        self._hist = m.spec.histogram
        self._frame = pd.DataFrame(columns=list(histogram.COLUMNS))

    @property
    def frame(self) -> pd.DataFrame:
        """The last histogram frame (``bucket``, ``low``, ``high``, ``count``)."""
        with self._lock:
            return self._frame

    def _update(self) -> None:
        df = self.map.df()
        if not set(histogram.COLUMNS) <= set(df.columns):
            df = histogram.histogram_frame(self._hist or self.map.spec, df)
        self._frame = df

    def _render(self) -> str:
        title = f'<div class="bpfnb-title">{html.escape(self.title)}</div>'
        df = self._frame
        total = int(df["count"].sum()) if len(df) else 0
        foot = f'<div class="bpfnb-foot bpfnb-summary" data-total="{total}">total: {total}</div>'
        if not len(df):
            return title + '<div class="bpfnb-foot">(no values yet)</div>' + foot
        top = max(int(df["count"].max()), 1)
        parts = ['<table class="bpfnb-table bpfnb-hist"><tbody>']
        for label, count in zip(df["bucket"], df["count"], strict=True):
            pct = 100.0 * int(count) / top
            parts.append(
                f'<tr><td class="s">{html.escape(str(label))}</td><td>{int(count)}</td>'
                f'<td class="bar"><span class="bpfnb-bar" data-count="{int(count)}" '
                f'style="width:{pct:.1f}%"></span></td></tr>'
            )
        parts.append("</tbody></table>")
        return title + "".join(parts) + foot


# -- dashboard header ------------------------------------------------------------------


class ProgramHeader(_View):
    """A program's name, state, attach points and run statistics."""

    kind = "program"

    def __init__(self, program: Any, refresher: Refresher) -> None:
        super().__init__(str(program.name))
        self.program = program
        self.refresher = refresher
        self.stats: dict[str, Any] = {}
        self.note = ""

    def _update(self) -> None:
        if not getattr(self.program, "closed", False):
            self.stats = dict(self.program.stats())

    def _render(self) -> str:
        p = self.program
        if getattr(p, "closed", False):
            state = "closed"
        elif self.refresher.stopped:
            state = "stopped"
        elif self.refresher.paused:
            state = "paused"
        else:
            state = f"refreshing every {self.refresher.interval:g} s"
        points = list(getattr(p, "attach_points", []) if not getattr(p, "closed", False) else [])
        runs = int(self.stats.get("run_cnt", 0))
        ns = int(self.stats.get("run_time_ns", 0))
        avg = f"{ns / runs:.0f} ns/run" if runs else "-"
        attach = ", ".join(html.escape(a) for a in points) or "(not attached)"
        note = f" · {html.escape(self.note)}" if self.note else ""
        return (
            f'<div class="bpfnb-title">{html.escape(self.title)} '
            f'<span class="bpfnb-state" data-state="{html.escape(state)}">[{state}]</span></div>'
            f'<div class="bpfnb-foot bpfnb-summary" data-runs="{runs}" data-run-ns="{ns}">'
            f"attached: {attach} · runs: {runs} · run time: {ns / 1e6:.2f} ms · {avg}"
            f"{note}</div>"
        )


# --------------------------------------------------------------------------------------
# Widgets around the views
# --------------------------------------------------------------------------------------


def _html_widget(view: _View) -> Any:
    assert _w is not None
    body = _w.HTML(value=view.html())
    view._body = body
    view._last_html = body.value
    return body


def _table_widget(view: LiveTable) -> Any:
    assert _w is not None
    body = _html_widget(view)
    default = ("(total column)", "")
    sort = _w.Dropdown(
        description="sort by", options=[default], value="", layout={"width": "220px"}
    )
    desc = _w.Checkbox(
        value=True, description="descending", indent=False, layout={"width": "110px"}
    )
    top = _w.BoundedIntText(
        value=view.top_n, min=1, max=10000, description="top", layout={"width": "130px"}
    )
    percpu = _w.Checkbox(
        value=False,
        description="per CPU",
        indent=False,
        layout={"width": "90px", "display": "" if view.can_per_cpu else "none"},
    )
    controls = _w.HBox([sort, desc, top, percpu])

    def on_columns(columns: list[str]) -> None:
        options = [default, *((c, c) for c in columns)]
        if [tuple(o) for o in sort.options] != options:
            current = sort.value if sort.value in columns else ""
            sort.options = options
            sort.value = current

    view._on_columns = on_columns  # type: ignore[method-assign]

    def rerender(_: Any = None) -> None:
        with view._lock:
            view.sort_by = sort.value or None
            view.descending = bool(desc.value)
            view.top_n = int(top.value)
            view._push()

    def toggle_cpu(_: Any) -> None:
        with view._lock:
            view.per_cpu = bool(percpu.value)
            view._rates = _RateTracker()
        view.refresh()

    for control in (sort, desc, top):
        control.observe(rerender, names="value")
    percpu.observe(toggle_cpu, names="value")
    return _make_box(view, [controls, body])


def _simple_widget(view: _View) -> Any:
    return _make_box(view, [_html_widget(view)])


def _wrap(view: _View) -> Any:
    """Return the widget of a view (or a static view without ipywidgets)."""
    if not _widgets_available():
        return StaticView(view)
    widget = _table_widget(view) if isinstance(view, LiveTable) else _simple_widget(view)
    view.widget = widget
    return widget


def _is_event_map(m: Any) -> bool:
    t = getattr(getattr(m, "spec", None), "type", None)
    return t in {MAP_TYPE_RINGBUF, MAP_TYPE_PERF_EVENT_ARRAY} or hasattr(m, "received")


def view_for(m: Any) -> _View:
    """Return the right view (histogram, event tail or table) for a map, unwrapped."""
    if _is_event_map(m):
        return EventTail(m)
    if maptypes.is_histogram(m.spec.kind):
        return HistogramChart(m)
    return LiveTable(m)


def _start(views: Iterable[_View], owner: Any, interval: float | None) -> Refresher:
    ref = refresher_for(owner, interval)
    for view in views:
        view.refresh()  # the first content is there when the widget displays
        ref.add(view)
    return ref


def live_table(m: Any, interval: float | None = None, *, top_n: int = DEFAULT_TOP_N) -> Any:
    """Show a hash / array / per-CPU map as a table refreshing every ``interval`` s.

    Parameters
    ----------
    m : Map
        The map (``prog.counts``).
    interval : float, optional
        Seconds between refreshes; None keeps the program's current interval
        (the ``%%bpf --interval`` / ``BpfMagics.interval`` one).
    top_n : int
        Rows shown (the whole map is counted and sorted).

    Returns
    -------
    ipywidgets.VBox or StaticView
        Sort column, order, top-N and per-CPU controls above the table; rows, the
        total of the first value column and the refresh time below it. Each numeric
        value column ``c`` gets a rate column ``c/s``.
    """
    if _is_event_map(m):
        return event_tail(m, interval=interval)
    if maptypes.is_histogram(m.spec.kind):
        return histogram_chart(m, interval=interval)
    view = LiveTable(m, top_n=top_n)
    widget = _wrap(view)
    _start([view], _owner_of(m) or m, interval)
    return widget


def live_view(source: Any, interval: float | None = None) -> Any:
    """The live view of any map (what ``Map.live()`` shows)."""
    if _is_event_map(source):
        return event_tail(source, interval=interval)
    return live_table(source, interval=interval)


def event_tail(ring: Any, interval: float | None = None, *, rows: int = DEFAULT_TAIL_ROWS) -> Any:
    """Show the newest events of a ring buffer, with received, events/s and lost counts."""
    view = EventTail(ring, rows=rows)
    widget = _wrap(view)
    _start([view], _owner_of(ring) or ring, interval)
    return widget


def histogram_chart(m: Any, interval: float | None = None) -> Any:
    """Show a histogram map (``BPFNB_HIST`` / ``BPFNB_LINEAR_HIST``) as labelled bars."""
    view = HistogramChart(m)
    widget = _wrap(view)
    _start([view], _owner_of(m) or m, interval)
    return widget


class Dashboard:
    """What :func:`dashboard` returns: the widget plus handles for code and tests.

    Attributes
    ----------
    program : Program
    refresher : Refresher
    header : ProgramHeader
    views : dict of str to view
        One view per map.
    widget : ipywidgets.VBox or None
        None without ipywidgets (the object then renders as static HTML).
    """

    kind = "dashboard"

    def __init__(self, program: Any, interval: float) -> None:
        self.program = program
        self.refresher = refresher_for(program, interval)
        self.header = ProgramHeader(program, self.refresher)
        self.views: dict[str, _View] = {name: view_for(m) for name, m in program.maps.items()}
        self.widget: Any = None
        if _widgets_available():
            self.widget = self._build()
        _start([self.header, *self.views.values()], program, interval)

    def _build(self) -> Any:
        assert _w is not None
        header = _html_widget(self.header)
        pause = _w.Button(description="Pause", icon="pause", layout={"width": "100px"})
        resume = _w.Button(description="Resume", icon="play", layout={"width": "100px"})
        stop = _w.Button(
            description="Stop", icon="stop", button_style="danger", layout={"width": "100px"}
        )
        pause.on_click(lambda _: self.pause())
        resume.on_click(lambda _: self.resume())
        stop.on_click(lambda _: self.stop())
        self._buttons = (pause, resume, stop)
        children = [header, _w.HBox([pause, resume, stop])]
        for view in self.views.values():
            children.append(_wrap(view))
        return _make_box(self, children)

    def pause(self) -> None:
        """Freeze the views."""
        self.refresher.pause()
        self.header._push()

    def resume(self) -> None:
        """Refresh again."""
        self.refresher.resume()
        self.header._push()

    def stop(self) -> None:
        """Detach the programs, refresh once more and stop refreshing (maps stay readable)."""
        with contextlib.suppress(Exception):
            self.program.detach()
        with contextlib.suppress(Exception):
            self.refresher.refresh_once()
        self.refresher.stop()
        self.header.note = "detached; maps stay readable until the program is closed"
        self.header._push()
        if self.widget is not None:
            for b in self._buttons:
                b.disabled = True

    def html(self) -> str:
        """A static snapshot of the whole dashboard."""
        return self.header.html() + "".join(v.html() for v in self.views.values())

    def _repr_html_(self) -> str:
        return self.html()

    def _ipython_display_(self) -> None:
        from IPython.display import display

        if self.widget is not None:
            display(self.widget)
        else:
            display(StaticView(self.header))
            for v in self.views.values():
                display(StaticView(v))

    def __repr__(self) -> str:
        return f"<bpfnb dashboard {getattr(self.program, 'name', '?')!r}: {list(self.views)}>"


def dashboard(program: Any, interval: float = 1.0) -> Dashboard:
    """Build the live dashboard of a program (what ``%%bpf NAME`` displays).

    Parameters
    ----------
    program : Program
        A loaded program.
    interval : float
        Seconds between refreshes.

    Returns
    -------
    Dashboard
        Displays as the widget (or as static HTML without ipywidgets).
    """
    return Dashboard(program, interval)
