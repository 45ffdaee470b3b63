"""HTML and CSS of the view models: what the widgets show, and static snapshots.

:func:`render` turns any view of :mod:`bpfnb.ui.views` into a self-contained HTML
fragment (its CSS included), read under the view's lock. The same fragment is the
value of the view's live HTML widget. :func:`snapshot` renders a whole dashboard as
static HTML, plots included (as SVG): the output a saved notebook shows once the
kernel that drew the live dashboard is gone. Its CSS hides it in JupyterLab while the
live widget just above it is alive, and hides that widget's "model not found" error
once it is not.

Colours come from JupyterLab's CSS variables (light and dark themes), with fixed
fallbacks elsewhere. Rows are compact (16 px), text columns and their headers are
left-aligned, numbers right-aligned; column widths only grow; cells that changed at
the last refresh flash briefly (``td.chg``).

Elements carry ``data-*`` attributes with the raw figures (``data-total``,
``data-rows``, ``data-max``, ``data-dropped``, ``data-received``, ``data-lost``,
``data-count``...) so tests and tools read numbers, not formatted text.
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pandas as pd

from bpfnb.ui import format as fmt
from bpfnb.ui import svg
from bpfnb.ui.top import ProgramsTop
from bpfnb.ui.views import (
    EventTail,
    HistogramChart,
    LiveTable,
    ProgramHeader,
    TablePage,
    View,
)

__all__ = [
    "CSS",
    "SNAPSHOT_CSS",
    "StaticView",
    "cell",
    "register_body",
    "render",
    "snapshot",
    "table",
]

CSS = """<style>
.bpfnb-view{font-family:var(--jp-ui-font-family,sans-serif);font-size:12px;
 color:var(--jp-ui-font-color1,#212121);line-height:1.3}
.bpfnb-title{font-weight:600;margin:6px 0 2px 0}
.bpfnb-table{border-collapse:collapse;margin:2px 0}
.bpfnb-table th,.bpfnb-table td{padding:0 6px;height:16px;line-height:16px;
 border-bottom:1px solid var(--jp-border-color2,#e0e0e0);text-align:right;
 font-family:var(--jp-code-font-family,monospace);font-size:12px;white-space:nowrap;
 color:var(--jp-ui-font-color1,#212121)}
.bpfnb-table th{background:var(--jp-layout-color2,#eeeeee);font-weight:600}
.bpfnb-table th.s,.bpfnb-table td.s{text-align:left}
.bpfnb-table td.rank{color:var(--jp-ui-font-color2,#616161)}
.bpfnb-table td.chg{animation:bpfnb-flash .8s ease-out}
@keyframes bpfnb-flash{from{background:var(--jp-warn-color3,#ffe9a8)}to{background:transparent}}
.bpfnb-foot{color:var(--jp-ui-font-color2,#555);margin:2px 0}
.bpfnb-warn{color:var(--jp-warn-color0,#a15c00);font-weight:600}
.bpfnb-lost,.bpfnb-err{color:var(--jp-error-color1,#b00020);font-weight:600}
.bpfnb-hist td.bar{width:320px;text-align:left}
.bpfnb-bar{display:inline-block;height:11px;background:var(--jp-brand-color1,#1976d2);
 vertical-align:middle}
.bpfnb-spark{vertical-align:middle}
.bpfnb-state{font-weight:400;color:var(--jp-ui-font-color2,#555)}
.bpfnb-stale-note{color:var(--jp-warn-color0,#a15c00);font-weight:600;margin:2px 0}
.bpfnb-stale .bpfnb-live-body{opacity:.55}
</style>"""

#: JupyterLab only: a snapshot output hides while the widget output above it is live,
#: and the widget output above hides ("model not found") once it is not.
SNAPSHOT_CSS = """<style>
.jp-OutputArea-child:has(.bpfnb-live) + .jp-OutputArea-child:has(.bpfnb-snapshot)
 {display:none}
.jp-OutputArea-child:not(:has(.bpfnb-live)):has(+ .jp-OutputArea-child .bpfnb-snapshot)
 {display:none}
.bpfnb-snapshot-note{color:var(--jp-warn-color0,#a15c00);font-weight:600;margin:4px 0}
</style>"""


def cell(value: Any) -> str:
    """Format one value on its own (escaped): numbers with separators, NaN empty."""
    if isinstance(value, float | np.floating | int | np.integer) and not isinstance(value, bool):
        return html.escape(fmt.format_number(float(value)))
    if value is None or value is pd.NA:
        return ""
    if isinstance(value, bytes):
        return html.escape(value.hex())
    return html.escape(str(value))


def _header(columns: list[str], left: list[bool], widths: list[int] | None) -> str:
    parts = []
    for i, (c, is_text) in enumerate(zip(columns, left, strict=True)):
        cls = ' class="s"' if is_text else ""
        style = f' style="min-width:{widths[i]}ch"' if widths else ""
        parts.append(f"<th{cls}{style}>{html.escape(c)}</th>")
    return "".join(parts)


def table(
    df: pd.DataFrame,
    columns: list[str],
    *,
    css: str = "bpfnb-table",
    limit: int | None = None,
    styles: dict[str, fmt.ColumnStyle] | None = None,
) -> str:
    """Render the first ``limit`` rows of ``df`` as an HTML table (no index).

    Text columns (and their headers) are left-aligned (``class="s"``), numbers
    right-aligned; each column is written with its style (:func:`bpfnb.ui.format.column_style`).
    """
    rows = df if limit is None else df.iloc[:limit]
    styles = styles or {}
    chosen = [styles.get(c) or fmt.column_style(rows[c], None, None) for c in columns]
    texts = [fmt.apply_style(s, rows[c]) for s, c in zip(chosen, columns, strict=True)]
    left = [s.left for s in chosen]
    parts = [f'<table class="{css}"><thead><tr>', _header(columns, left, None)]
    parts.append("</tr></thead><tbody>")
    for i in range(len(rows)):
        parts.append("<tr>")
        for col_texts, is_text in zip(texts, left, strict=True):
            cls = ' class="s"' if is_text else ""
            parts.append(f"<td{cls}>{html.escape(col_texts[i])}</td>")
        parts.append("</tr>")
    parts.append("</tbody></table>")
    return "".join(parts)


def _page_table(page: TablePage, static: bool = False) -> str:
    sparks = bool(page.sparks)
    parts = ['<table class="bpfnb-table"><thead><tr>']
    parts.append(_header(page.columns, page.left, page.widths))
    if sparks:
        parts.append('<th class="s">trend</th>')
    parts.append("</tr></thead><tbody>")
    for r, row in enumerate(page.texts):
        parts.append("<tr>")
        for c, text in enumerate(row):
            classes = []
            if page.left[c]:
                classes.append("s")
            if page.changed[r][c] and not static:
                classes.append("chg")
            cls = f' class="{" ".join(classes)}"' if classes else ""
            parts.append(f"<td{cls}>{html.escape(text)}</td>")
        if sparks:
            parts.append(f'<td class="s">{svg.sparkline(page.sparks[r])}</td>')
        parts.append("</tr>")
    parts.append("</tbody></table>")
    return "".join(parts)


def _title(view: View, extra: str = "") -> str:
    return f'<div class="bpfnb-title">{html.escape(view.title)}{extra}</div>'


def _fill(view: LiveTable) -> str:
    """``rows / max_entries``, and the full-map warning with the dropped count."""
    rows, cap, dropped = view.rows, view.max_entries, view.dropped
    attrs = (
        f'data-rows="{rows}" data-max="{cap}" data-full="{int(view.full)}" data-dropped="{dropped}"'
    )
    text = f"rows: {fmt.thousands(rows)}"
    if cap:
        text += f" / {fmt.thousands(cap)} max_entries"
    parts = [f'<div class="bpfnb-foot bpfnb-fill" {attrs}>{text}']
    if view.evicting:
        parts.append(
            ' · <span class="bpfnb-warn bpfnb-evicting">at capacity: the least recently '
            "used keys are evicted</span>"
        )
    if view.full:
        parts.append(
            ' · <span class="bpfnb-warn bpfnb-full">map full: new keys are dropped '
            "(raise max_entries)</span>"
        )
    if dropped:
        parts.append(
            f' · <span class="bpfnb-lost bpfnb-dropped">{fmt.thousands(dropped)} updates '
            "dropped: map full</span>"
        )
    parts.append("</div>")
    return "".join(parts)


def _live_table(view: LiveTable, static: bool) -> str:
    df = view.frame
    hidden = " · helper map" if view.helper else ""
    title = _title(view, f'<span class="bpfnb-state">{hidden}</span>' if hidden else "")
    if not len(df.columns):
        return title + '<div class="bpfnb-foot">(no rows yet)</div>'
    page = view.page_view()
    n = len(df)
    updated = view.updated
    when = fmt.format_clock(updated) if updated else "-"
    column = view.total_column
    totals = view.totals
    total_attr = f"{view.total:.0f}" if column else ""
    sums = " · ".join(
        f"total {html.escape(c)}: {html.escape(fmt.apply_style(view.style(c), [v])[0])}"
        for c, v in totals.items()
    )
    last = min(page.first + len(page.texts), n)
    shown = f"rows {page.first + 1:,} to {last:,} of {n:,}" if n else "no rows"
    if n > view.top_n:
        shown += f" · page {page.first // view.top_n + 1} of {view.page_count}"
    sort = view.sort_column()
    order = f" · sorted by {html.escape(sort)} {'↓' if view.descending else '↑'}" if sort else ""
    foot = (
        f'<div class="bpfnb-foot bpfnb-summary" data-rows="{n}" '
        f'data-total="{total_attr}" data-refreshes="{view.refresh_count}">'
        f"{shown}{order}" + (f" · {sums}" if sums else "") + f" · updated {when} · read "
        f"{view.read_seconds * 1000:.1f} ms</div>"
    )
    body = title + _fill(view) + _page_table(page, static) + foot
    if static and view.rate_columns:
        body += _rate_chart(view)
    return body


def _rate_chart(view: LiveTable, lines: int = 5) -> str:
    history = view.source.rate_history
    ids = history.latest_top(lines)
    times, rates = history.series(ids)
    labels = history.labels(ids)
    column = view.rate_columns[0] if view.rate_columns else "rate"
    return svg.line_chart(
        times,
        list(zip(labels, rates, strict=True)),
        title=f"{view.source.name}: {column}, top {len(labels)} keys",
        unit="/s",
    )


def _event_tail(view: EventTail) -> str:
    lost_cls = "bpfnb-lost" if view.lost else ""
    filtered = ""
    if view.filter:
        filtered = (
            f" · filter <code>{html.escape(view.filter.text)}</code>: "
            f"{fmt.thousands(len(view.frame))} shown of {fmt.thousands(view.scanned)} checked"
        )
        if view.skipped:
            filtered += f" ({fmt.thousands(view.skipped)} arrived too fast to check)"
    time_note = ""
    if view.time_column is None:
        time_note = " · received_at: when bpfnb read the event's batch"
    foot = (
        f'<div class="bpfnb-foot bpfnb-summary" data-received="{view.received}" '
        f'data-lost="{view.lost}" data-rate="{view.rate:.1f}" data-shown="{len(view.frame)}">'
        f"received: {fmt.thousands(view.received)} · {fmt.format_number(round(view.rate, 1))} "
        f'events/s · <span class="{lost_cls}">lost: {fmt.thousands(view.lost)}</span>'
        f"{filtered}{time_note}</div>"
    )
    if view.lost_note:
        foot += (
            '<div class="bpfnb-foot bpfnb-warn bpfnb-lost-note">lost may miss events: '
            f"{html.escape(view.lost_note)}</div>"
        )
    if view.warning:
        foot += (
            f'<div class="bpfnb-foot bpfnb-lost bpfnb-warning">{html.escape(view.warning)}</div>'
        )
    df = view.frame
    if not len(df.columns) or not len(df):
        return _title(view) + foot + '<div class="bpfnb-foot">(no events yet)</div>'
    styles = view.styles()
    return _title(view) + foot + table(df, [str(c) for c in df.columns], styles=styles)


def _histogram_chart(view: HistogramChart, static: bool) -> str:
    df = view.frame
    s = view.summary
    total = view.total
    unit = f" · unit {html.escape(view.unit)}" if view.unit else ""
    stats = (
        f"count: {fmt.thousands(total)} · mean ≈ {view.value_text(s.mean)} · p50 ≈ "
        f"{view.value_text(s.p50)} · p90 ≈ {view.value_text(s.p90)} · p99 ≈ "
        f"{view.value_text(s.p99)}{unit}"
    )
    foot = (
        f'<div class="bpfnb-foot bpfnb-summary" data-total="{total}" '
        f'data-p50="{s.p50 if s.p50 is not None else ""}" '
        f'data-p99="{s.p99 if s.p99 is not None else ""}">{stats}</div>'
    )
    if not len(df):
        return _title(view) + '<div class="bpfnb-foot">(no values yet)</div>' + foot
    top = max(int(df["count"].max()), 1)
    parts = ['<table class="bpfnb-table bpfnb-hist"><tbody>']
    for label, count in zip(view.labels(), df["count"], strict=True):
        pct = 100.0 * int(count) / top
        parts.append(
            f'<tr><td class="s">{html.escape(label)}</td><td>{fmt.thousands(int(count))}</td>'
            f'<td class="bar"><span class="bpfnb-bar" data-count="{int(count)}" '
            f'style="width:{pct:.1f}%"></span></td></tr>'
        )
    parts.append("</tbody></table>")
    body = _title(view) + "".join(parts) + foot
    if static:
        times, slots, labels, counts = view.history.matrix()
        labels = [view.slot_label(s, x) for s, x in zip(slots, labels, strict=True)]
        body += svg.heatmap(
            times, labels, counts, title=f"{view.source.name}: values per bucket per refresh"
        )
    return body


def _program_header(view: ProgramHeader, static: bool) -> str:
    if static:
        state, data_state = "snapshot: not live", "snapshot"
    else:
        state, data_state = view.state, view.program_state
    runs, ns = view.runs, view.run_ns
    avg = f"{fmt.format_duration(ns / runs)}/run" if runs else "-"
    points = view.attach_points if view.program_state != "stopped" else []
    attach = ", ".join(html.escape(a) for a in points) or "(not attached)"
    note = f" · {html.escape(view.note)}" if view.note else ""
    live = ""
    if view.program_state == "running" and not static:
        live = (
            f" · {fmt.format_number(round(view.runs_per_second, 1))} runs/s · "
            f"{view.cpu_percent:.2f}% CPU"
        )
    return (
        f'<div class="bpfnb-title">{html.escape(view.title)} '
        f'<span class="bpfnb-state" data-state="{data_state}" data-view="{view.view_state}">'
        f"[{html.escape(state)}]</span></div>"
        f'<div class="bpfnb-foot bpfnb-summary" data-runs="{runs}" data-run-ns="{ns}">'
        f"attached: {attach} · runs: {fmt.thousands(runs)} · run time: "
        f"{fmt.format_duration(ns)} · {avg}{live}{note}</div>"
    )


def _top(view: ProgramsTop) -> str:
    df = view.frame
    title = _title(view, f' <span class="bpfnb-state">[{len(df)} loaded]</span>')
    if not len(df):
        return title + '<div class="bpfnb-foot">(no bpfnb program is loaded)</div>'
    styles = {
        "runs/s": fmt.column_style(df["runs/s"], "counter", None, rate=True),
        "avg ns/run": fmt.column_style(df["avg ns/run"], "duration", "ns"),
        "%CPU": fmt.ColumnStyle("amount", 2, 1.0, "%"),
        "runs": fmt.column_style(df["runs"], "counter", None),
    }
    foot = (
        '<div class="bpfnb-foot">runs/s, avg ns/run and %CPU (100 = one CPU) between '
        "the last two refreshes, from the kernel's run statistics</div>"
    )
    return title + table(df, [str(c) for c in df.columns], styles=styles) + foot


#: Bodies of the views other modules define (:mod:`bpfnb.ui.flamegraph`...), by class.
_BODIES: dict[type[View], Callable[[Any], str]] = {}


def register_body(cls: type[View], render_body: Callable[[Any], str]) -> None:
    """Draw views of class ``cls`` with ``render_body(view) -> HTML`` (live and snapshot)."""
    _BODIES[cls] = render_body


def _body(view: View, static: bool) -> str:
    extra = _BODIES.get(type(view))
    if extra is not None:
        return extra(view)
    if isinstance(view, LiveTable):
        return _live_table(view, static)
    if isinstance(view, EventTail):
        return _event_tail(view)
    if isinstance(view, HistogramChart):
        return _histogram_chart(view, static)
    if isinstance(view, ProgramHeader):
        return _program_header(view, static)
    if isinstance(view, ProgramsTop):
        return _top(view)
    return _title(view)


def render(view: View, *, static: bool = False) -> str:
    """The HTML of a view's current state (CSS included), with its error or end note.

    ``static=True`` renders for a snapshot: plots drawn as SVG, no live state claimed.
    """
    with view.lock:
        body = _body(view, static)
        if view.error:
            body += f'<div class="bpfnb-err">refresh failed: {html.escape(view.error)}</div>'
        if view.display_error:
            body += (
                f'<div class="bpfnb-err">display failed: {html.escape(view.display_error)}</div>'
            )
        if view.finished_note and not static:
            body += f'<div class="bpfnb-foot">({html.escape(view.finished_note)})</div>'
    return f'{CSS}<div class="bpfnb-view bpfnb-{view.kind}">{body}</div>'


def snapshot(views: Iterable[View], *, taken: float | None = None, collapsed: int = 0) -> str:
    """A static snapshot of views (a whole dashboard), for a saved notebook.

    Parameters
    ----------
    views : iterable of View
        The header first, then the map views shown.
    taken : float, optional
        When the snapshot was taken (``time.time()``; now by default).
    collapsed : int
        Helper maps left out (said in the note).
    """
    taken = time.time() if taken is None else taken
    note = (
        '<div class="bpfnb-snapshot-note">static snapshot taken at '
        f"{fmt.format_clock(taken)}: not live (the kernel that drew this dashboard is gone; "
        "run the cell again for a live view)"
        + (f"; {collapsed} helper map(s) not shown" if collapsed else "")
        + "</div>"
    )
    body = "".join(render(v, static=True) for v in views)
    return f'{SNAPSHOT_CSS}<div class="bpfnb-snapshot" data-taken="{taken:.3f}">{note}{body}</div>'


class StaticView:
    """A view shown without widgets: ``_repr_html_`` renders its current state.

    Parameters
    ----------
    view : View
        Refreshed by its refresher like a widget's view; each display shows the
        state at that moment.
    """

    def __init__(self, view: View) -> None:
        self.view = view

    def refresh(self) -> None:
        """Read the source again now."""
        self.view.refresh()

    def html(self) -> str:
        """The view's current HTML."""
        return render(self.view)

    def _repr_html_(self) -> str:
        return render(self.view)

    def __repr__(self) -> str:
        return repr(self.view)
