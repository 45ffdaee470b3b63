"""Live plots with bqplot: rates over time for tables, a heatmap over time for histograms.

bqplot (ipywidgets-native d3 charts, maintained, JupyterLab 4 support) sends numpy
arrays as binary buffers and updates one mark's arrays in place, so a refresh costs a
small message and no re-layout of the page. Each plot follows a view and is updated
by the view's refresher thread after the view refreshed:

- :class:`RatePlot`: the top-N keys of a table by current rate, as lines of their
  rate over the map's :class:`~bpfnb.codec.history.RateHistory`. A key keeps its
  colour while it stays in the top N.
- :class:`HeatmapPlot`: values counted per bucket per refresh of a histogram
  (:class:`~bpfnb.codec.history.HistogramHistory`): bpftrace's ``hist`` per interval.

The static snapshots draw the same data as SVG (:mod:`bpfnb.ui.svg`).
"""

from __future__ import annotations

from typing import Any

import bqplot
import numpy as np

from bpfnb.ui.svg import PALETTE
from bpfnb.ui.views import HistogramChart, LiveTable

__all__ = ["DEFAULT_LINES", "PLOT_POINTS", "HeatmapPlot", "RatePlot"]

#: Lines drawn: the keys with the highest rates.
DEFAULT_LINES = 5
#: Points of history drawn (2 minutes at one refresh per second).
PLOT_POINTS = 120


def _layout(height: str) -> dict[str, str]:
    return {"height": height, "width": "100%", "min_width": "420px", "max_width": "900px"}


class RatePlot:
    """Lines of the top keys' rates over time (see the module docstring).

    Parameters
    ----------
    view : LiveTable
        The table whose map's history is drawn.
    lines : int
        Keys drawn.

    Attributes
    ----------
    figure : bqplot.Figure
        The widget.
    mark : bqplot.Lines
        Its lines (``x``: times, ``y``: one row of rates per key, ``labels``: keys).
    names : bqplot.Label
        Each key's name at the end of its line.
    """

    def __init__(self, view: LiveTable, lines: int = DEFAULT_LINES) -> None:
        self.view = view
        self.lines = lines
        self._slots: dict[str, int] = {}
        self._drawn = (-1, 0.0)
        x = bqplot.DateScale()
        y = bqplot.LinearScale(min=0.0)
        self.mark = bqplot.Lines(
            x=np.zeros(0, dtype="datetime64[ms]"),
            y=np.zeros((0, 0)),
            scales={"x": x, "y": y},
            labels=[],
            display_legend=False,
            stroke_width=1.5,
        )
        # each line's key, written right of its last point (in the figure's margin)
        self.names = bqplot.Label(
            x=np.zeros(0, dtype="datetime64[ms]"),
            y=np.zeros(0),
            text=[],
            scales={"x": x, "y": y},
            x_offset=6,
            y_offset=4,
            default_size=11,
            font_weight="normal",
            apply_clip=False,
        )
        self.y = y
        axis_x = bqplot.Axis(scale=x, tick_format="%H:%M:%S", num_ticks=5)
        self.axis_y = bqplot.Axis(scale=y, side="left", tick_format=".3s", num_ticks=4)
        self.figure = bqplot.Figure(
            marks=[self.mark, self.names],
            axes=[axis_x, self.axis_y],
            title=f"{view.source.name}: rates of the top {lines} keys (per second)",
            fig_margin={"top": 30, "bottom": 25, "left": 55, "right": 190},
            padding_y=0.0,
            layout={**_layout("220px"), "display": "none"},  # shown with its first lines
            animation_duration=0,
        )
        self.figure.add_class("bpfnb-rate-plot")

    def _colours(self, labels: list[str]) -> list[str]:
        for gone in [k for k in self._slots if k not in labels]:
            del self._slots[gone]
        used = set(self._slots.values())
        for label in labels:
            if label not in self._slots:
                free = next(i for i in range(len(PALETTE) + len(labels)) if i not in used)
                self._slots[label] = free
                used.add(free)
        return [PALETTE[self._slots[label] % len(PALETTE)] for label in labels]

    def update(self) -> None:
        """Draw the newest history (only when a refresh added a point)."""
        history = self.view.source.rate_history
        times = history.times()
        state = (len(history), float(times[-1]) if len(times) else 0.0)
        if state == self._drawn:
            return
        self._drawn = state
        ids = history.latest_top(self.lines)
        if not ids:
            return  # nothing moved lately: keep the last lines
        stamps, rates = history.series(ids, last=PLOT_POINTS)
        labels = history.labels(ids)
        x = (stamps * 1000).astype("int64").astype("datetime64[ms]")
        colours = self._colours(labels)
        y = np.nan_to_num(rates, nan=0.0)
        peak = float(y.max()) if y.size else 0.0
        top = peak * 1.08 if peak > 0 else 1.0
        with self.mark.hold_sync(), self.names.hold_sync(), self.y.hold_sync():
            self.y.min = 0.0
            self.y.max = top
            self.axis_y.tick_values = np.linspace(0.0, top, 4)
            self.mark.x = x
            self.mark.y = y
            self.mark.labels = labels
            self.mark.colors = colours
            self.names.x = np.repeat(x[-1:], len(labels))
            self.names.y = _dodge(y[:, -1], top * 0.09, top)
            self.names.text = [label[:28] for label in labels]
            self.names.colors = colours
        if self.figure.layout.display == "none":
            self.figure.layout.display = ""


def _dodge(ends: np.ndarray, gap: float, top: float) -> np.ndarray:
    """Label heights near the lines' ends, at least ``gap`` apart and below ``top``."""
    order = np.argsort(ends, kind="stable")
    placed = np.asarray(ends, dtype=np.float64)[order].copy()
    for i in range(1, len(placed)):
        placed[i] = max(placed[i], placed[i - 1] + gap)
    overflow = placed[-1] - top if len(placed) else 0.0
    if overflow > 0:
        placed -= overflow
    out = np.empty_like(placed)
    out[order] = placed
    return out


class HeatmapPlot:
    """A histogram's values per bucket per refresh, as a heatmap (see the module docstring).

    Parameters
    ----------
    view : HistogramChart

    Attributes
    ----------
    figure : bqplot.Figure
    mark : bqplot.GridHeatMap
        ``color``: log(1 + values) per bucket (rows) and interval (columns); ``row``:
        bucket labels; ``column``: seconds ago.
    """

    def __init__(self, view: HistogramChart) -> None:
        self.view = view
        self._drawn = (-1, 0.0)
        rows = bqplot.OrdinalScale()
        columns = bqplot.LinearScale()
        colour = bqplot.ColorScale(scheme="Blues", min=0.0)
        # bqplot squeezes ``color``: a 1 x 1 matrix fails its check, so start at 2 x 2
        self.mark = bqplot.GridHeatMap(
            color=np.zeros((2, 2)),
            scales={"row": rows, "column": columns, "color": colour},
            null_color="transparent",
            stroke="transparent",
        )
        axis_rows = bqplot.Axis(scale=rows, side="left")
        axis_columns = bqplot.Axis(scale=columns, label="seconds ago", num_ticks=5)
        self.figure = bqplot.Figure(
            marks=[self.mark],
            axes=[axis_rows, axis_columns],
            title=f"{view.source.name}: values per bucket per refresh (colour: log scale)",
            fig_margin={"top": 30, "bottom": 40, "left": 110, "right": 10},
            layout=_layout("260px"),
            animation_duration=0,
        )
        self.figure.add_class("bpfnb-heatmap-plot")

    def update(self) -> None:
        """Draw the newest intervals (only when a refresh added one)."""
        history = self.view.history
        times, slots, labels, counts = history.matrix()
        state = (len(times), float(times[-1]) if len(times) else 0.0)
        if state == self._drawn or len(times) < 2 or not len(labels):
            return
        self._drawn = state
        if len(slots) == 1:  # at least two rows (bqplot squeezes a single one away)
            slots = [*slots, slots[0] + 1]
            labels = [*labels, ""]
            counts = np.vstack([counts, np.zeros_like(counts)])
        ago = times - times[-1]
        shown_labels = [self.view.slot_label(s, x) for s, x in zip(slots, labels, strict=True)]
        with self.mark.hold_sync():
            # rows and columns are checked against the colour matrix: set it first
            self.mark.color = np.log1p(counts.astype(np.float64))
            self.mark.row = shown_labels
            self.mark.column = ago
        height = f"{max(200, 13 * len(shown_labels) + 80)}px"
        if self.figure.layout.height != height:
            self.figure.layout.height = height


def plot_for(view: Any) -> RatePlot | HeatmapPlot | None:
    """The plot of a view: rates for a table with counters, a heatmap for a histogram."""
    if isinstance(view, LiveTable) and not view.helper:
        return RatePlot(view)
    if isinstance(view, HistogramChart):
        return HeatmapPlot(view)
    return None
