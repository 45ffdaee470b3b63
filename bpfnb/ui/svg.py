"""Small static SVG charts: sparklines in table rows, and the snapshots of the plots.

Pure. The live plots are bqplot widgets (:mod:`bpfnb.ui.plots`); these SVGs draw the
same data where widgets cannot live: a sparkline in each row of a live table, and the
static snapshot a saved notebook shows when its kernel is gone (rate lines, histogram
heatmap). Colours come from JupyterLab's CSS variables with fixed fallbacks, so the
charts follow the light and dark themes.
"""

from __future__ import annotations

import html
import math

import numpy as np

from bpfnb.ui import format as fmt

__all__ = ["PALETTE", "heatmap", "line_chart", "sparkline"]

#: Line colours (the category10 palette, readable on light and dark backgrounds).
PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)


def _points(values: np.ndarray, width: float, height: float, top: float, pad: float) -> str:
    n = len(values)
    step = (width - 2 * pad) / max(n - 1, 1)
    out = []
    for i, v in enumerate(values):
        y = 0.0 if not math.isfinite(v) else float(v)
        px = pad + i * step
        py = height - pad - (y / top) * (height - 2 * pad) if top > 0 else height - pad
        out.append(f"{px:.1f},{py:.1f}")
    return " ".join(out)


def sparkline(values: np.ndarray, width: int = 80, height: int = 16) -> str:
    """A tiny line of a key's recent rates (empty string with fewer than two points)."""
    v = np.asarray(values, dtype=np.float64)
    if len(v) < 2:
        return ""
    finite = v[np.isfinite(v)]
    top = float(finite.max()) if finite.size else 0.0
    pts = _points(v, width, height, top, 1.5)
    return (
        f'<svg class="bpfnb-spark" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" data-points="{len(v)}">'
        f'<polyline fill="none" stroke="var(--jp-brand-color1,#1976d2)" stroke-width="1.2" '
        f'points="{pts}"/></svg>'
    )


def line_chart(
    times: np.ndarray,
    series: list[tuple[str, np.ndarray]],
    *,
    title: str,
    unit: str = "/s",
    width: int = 640,
    height: int = 180,
) -> str:
    """A static line chart of rates over time (the snapshot of a rate plot).

    Parameters
    ----------
    times : ndarray
        Wall-clock seconds of the points.
    series : list of (label, values)
        One line per key.
    title : str
        Shown above the lines.
    unit : str
        Written after the top value of the y axis.
    """
    if len(times) < 2 or not series:
        return (
            f'<div class="bpfnb-foot bpfnb-chart" data-lines="0">{html.escape(title)}: '
            "(no history yet)</div>"
        )
    left, right, top_pad, bottom = 70, 150, 18, 20
    plot_w, plot_h = width - left - right, height - top_pad - bottom
    peak = max((float(np.nanmax(v)) for _, v in series if np.isfinite(v).any()), default=0.0)
    peak = peak if peak > 0 else 1.0
    t0, t1 = float(times[0]), float(times[-1])
    span = max(t1 - t0, 1e-9)
    parts = [
        f'<svg class="bpfnb-chart" data-lines="{len(series)}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-size="10" '
        'fill="var(--jp-ui-font-color1,#222)">',
        f'<text x="{left}" y="11">{html.escape(title)}</text>',
        f'<line x1="{left}" y1="{top_pad + plot_h}" x2="{left + plot_w}" y2="{top_pad + plot_h}" '
        'stroke="var(--jp-border-color1,#999)"/>',
        f'<line x1="{left}" y1="{top_pad}" x2="{left}" y2="{top_pad + plot_h}" '
        'stroke="var(--jp-border-color1,#999)"/>',
        f'<text x="{left - 4}" y="{top_pad + 8}" text-anchor="end">'
        f"{html.escape(fmt.format_number(peak))}{html.escape(unit)}</text>",
        f'<text x="{left - 4}" y="{top_pad + plot_h}" text-anchor="end">0</text>',
        f'<text x="{left}" y="{height - 4}">{fmt.format_clock(t0)}</text>',
        f'<text x="{left + plot_w}" y="{height - 4}" text-anchor="end">'
        f"{fmt.format_clock(t1)}</text>",
    ]
    for i, (label, values) in enumerate(series):
        colour = PALETTE[i % len(PALETTE)]
        pts = []
        for t, v in zip(times, values, strict=True):
            y = float(v) if math.isfinite(v) else 0.0
            px = left + (float(t) - t0) / span * plot_w
            py = top_pad + plot_h - y / peak * plot_h
            pts.append(f"{px:.1f},{py:.1f}")
        parts.append(
            f'<polyline class="bpfnb-line" fill="none" stroke="{colour}" stroke-width="1.5" '
            f'points="{" ".join(pts)}"/>'
        )
        ly = top_pad + 10 + i * 13
        parts.append(
            f'<rect x="{left + plot_w + 8}" y="{ly - 8}" width="10" height="3" fill="{colour}"/>'
            f'<text x="{left + plot_w + 22}" y="{ly}">{html.escape(label[:24])}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def heatmap(
    times: np.ndarray,
    labels: list[str],
    counts: np.ndarray,
    *,
    title: str,
    width: int = 640,
    cell_height: int = 12,
) -> str:
    """A static heatmap of a histogram over time: buckets as rows, intervals as columns."""
    if counts.size == 0 or counts.shape[1] == 0:
        return (
            f'<div class="bpfnb-foot bpfnb-heatmap" data-cells="0">{html.escape(title)}: '
            "(no intervals yet)</div>"
        )
    rows, cols = counts.shape
    left, top_pad = 110, 16
    plot_w = width - left - 10
    cell_w = plot_w / cols
    height = top_pad + rows * cell_height + 16
    peak = max(int(counts.max()), 1)
    parts = [
        f'<svg class="bpfnb-heatmap" data-cells="{int((counts > 0).sum())}" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" font-size="10" '
        'fill="var(--jp-ui-font-color1,#222)">',
        f'<text x="{left}" y="11">{html.escape(title)}</text>',
    ]
    for r in range(rows):
        # the highest bucket at the top, as a y axis
        y = top_pad + (rows - 1 - r) * cell_height
        parts.append(
            f'<text x="{left - 4}" y="{y + cell_height - 2}" text-anchor="end">'
            f"{html.escape(labels[r])}</text>"
        )
        for c in range(cols):
            value = int(counts[r, c])
            if not value:
                continue
            shade = 0.15 + 0.85 * math.sqrt(value / peak)
            parts.append(
                f'<rect x="{left + c * cell_w:.1f}" y="{y}" width="{cell_w + 0.2:.1f}" '
                f'height="{cell_height - 1}" fill="var(--jp-brand-color1,#1976d2)" '
                f'fill-opacity="{shade:.2f}"><title>{value}</title></rect>'
            )
    parts.append(
        f'<text x="{left}" y="{height - 3}">{fmt.format_clock(float(times[0]))}</text>'
        f'<text x="{width - 10}" y="{height - 3}" text-anchor="end">'
        f"{fmt.format_clock(float(times[-1]))}</text></svg>"
    )
    return "".join(parts)
