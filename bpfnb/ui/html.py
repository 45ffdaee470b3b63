"""HTML and CSS of the view models: what the widgets show, and static snapshots.

:func:`render` turns any view of :mod:`bpfnb.ui.views` into a self-contained HTML
fragment (its CSS included), read under the view's lock. The same fragment is the
value of the view's ``ipywidgets.HTML`` and the static snapshot that plain IPython,
nbconvert and the widget's ``text/html`` fallback show (:class:`StaticView`).

Elements carry ``data-*`` attributes with the raw figures (``data-total``,
``data-received``, ``data-lost``, ``data-count``...) so tests and tools read numbers,
not formatted text.
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from bpfnb.ui.views import (
    EventTail,
    HistogramChart,
    LiveTable,
    ProgramHeader,
    View,
    is_numeric,
)

__all__ = ["CSS", "StaticView", "cell", "register_body", "render", "table"]

CSS = """<style>
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


def cell(value: Any) -> str:
    """Format one table cell (escaped): integral floats without ``.0``, NaN empty."""
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


def table(
    df: pd.DataFrame, columns: list[str], *, css: str = "bpfnb-table", limit: int | None = None
) -> str:
    """Render the first ``limit`` rows of ``df`` as an HTML table (no index).

    Text columns are left-aligned (``class="s"``), numbers right-aligned.
    """
    rows = df if limit is None else df.iloc[:limit]
    parts = [f'<table class="{css}"><thead><tr>']
    parts += [f"<th>{html.escape(str(c))}</th>" for c in columns]
    parts.append("</tr></thead><tbody>")
    cols = [(rows[c].to_numpy(), not is_numeric(rows[c])) for c in columns]
    for i in range(len(rows)):
        parts.append("<tr>")
        for values, is_text in cols:
            cls = ' class="s"' if is_text else ""
            parts.append(f"<td{cls}>{cell(values[i])}</td>")
        parts.append("</tr>")
    parts.append("</tbody></table>")
    return "".join(parts)


def _title(view: View) -> str:
    return f'<div class="bpfnb-title">{html.escape(view.title)}</div>'


def _live_table(view: LiveTable) -> str:
    df = view.frame
    if not len(df.columns):
        return _title(view) + '<div class="bpfnb-foot">(no rows yet)</div>'
    shown = min(len(df), view.top_n)
    updated = view.updated
    when = time.strftime("%H:%M:%S", time.localtime(updated)) if updated else "-"
    column = view.total_column
    total = f"{view.total:.0f}" if column else ""
    foot = (
        f'<div class="bpfnb-foot bpfnb-summary" data-rows="{len(df)}" '
        f'data-total="{total}" data-refreshes="{view.refresh_count}">'
        f"rows: {len(df)} (top {shown} shown)"
        + (f" · total {html.escape(str(column))}: {total}" if total else "")
        + f" · updated {when} · read {view.read_seconds * 1000:.1f} ms</div>"
    )
    return _title(view) + table(view.sorted_top(), [str(c) for c in df.columns]) + foot


def _event_tail(view: EventTail) -> str:
    lost_cls = "bpfnb-lost" if view.lost else ""
    foot = (
        f'<div class="bpfnb-foot bpfnb-summary" data-received="{view.received}" '
        f'data-lost="{view.lost}" data-rate="{view.rate:.1f}">'
        f"received: {view.received} · {view.rate:.1f} events/s · "
        f'<span class="{lost_cls}">lost: {view.lost}</span></div>'
    )
    if view.warning:
        foot += (
            f'<div class="bpfnb-foot bpfnb-lost bpfnb-warning">{html.escape(view.warning)}</div>'
        )

    df = view.frame
    if not len(df.columns):
        return _title(view) + foot + '<div class="bpfnb-foot">(no events yet)</div>'
    return _title(view) + foot + table(df, [str(c) for c in df.columns])


def _histogram_chart(view: HistogramChart) -> str:
    df = view.frame
    total = view.total
    foot = f'<div class="bpfnb-foot bpfnb-summary" data-total="{total}">total: {total}</div>'
    if not len(df):
        return _title(view) + '<div class="bpfnb-foot">(no values yet)</div>' + foot
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
    return _title(view) + "".join(parts) + foot


def _program_header(view: ProgramHeader) -> str:
    state = html.escape(view.state)
    runs, ns = view.runs, view.run_ns
    avg = f"{ns / runs:.0f} ns/run" if runs else "-"
    points = view.attach_points if state != "closed" else []
    attach = ", ".join(html.escape(a) for a in points) or "(not attached)"
    note = f" · {html.escape(view.note)}" if view.note else ""
    return (
        f'<div class="bpfnb-title">{html.escape(view.title)} '
        f'<span class="bpfnb-state" data-state="{state}">[{state}]</span></div>'
        f'<div class="bpfnb-foot bpfnb-summary" data-runs="{runs}" data-run-ns="{ns}">'
        f"attached: {attach} · runs: {runs} · run time: {ns / 1e6:.2f} ms · {avg}"
        f"{note}</div>"
    )


#: Bodies of the views other modules define (:mod:`bpfnb.ui.flamegraph`...), by class.
_BODIES: dict[type[View], Callable[[Any], str]] = {}


def register_body(cls: type[View], render_body: Callable[[Any], str]) -> None:
    """Draw views of class ``cls`` with ``render_body(view) -> HTML``."""
    _BODIES[cls] = render_body


def _body(view: View) -> str:
    extra = _BODIES.get(type(view))
    if extra is not None:
        return extra(view)
    if isinstance(view, LiveTable):
        return _live_table(view)
    if isinstance(view, EventTail):
        return _event_tail(view)
    if isinstance(view, HistogramChart):
        return _histogram_chart(view)
    if isinstance(view, ProgramHeader):
        return _program_header(view)
    return _title(view)


def render(view: View) -> str:
    """The HTML of a view's current state (CSS included), with its error or end note."""
    with view.lock:
        body = _body(view)
        if view.error:
            body += f'<div class="bpfnb-err">refresh failed: {html.escape(view.error)}</div>'
        if view.finished_note:
            body += f'<div class="bpfnb-foot">({html.escape(view.finished_note)})</div>'
    return f'{CSS}<div class="bpfnb-view bpfnb-{view.kind}">{body}</div>'


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
