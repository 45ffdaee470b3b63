"""Bounded histories of a map's refreshes: rates over time, histogram counts over time.

Pure (no kernel, no IPython). A live view feeds one recorder per map at every refresh;
the recorders keep a bounded number of points, so memory stays flat however long a
dashboard runs.

- :class:`RateHistory`: per refresh, the rows of a keyed map whose counters changed
  (at most ``max_keys`` rows, the fastest first), with their values and rates.
  :meth:`RateHistory.frame` is the long DataFrame behind ``prog.MAP.history()``
  (``time``, key columns, value columns, rate columns); :meth:`RateHistory.series`
  gives the rate of chosen keys at every point, for plots and sparklines. A key that
  is not in a point did not change then (rate 0), or changed less than the
  ``max_keys`` fastest keys of that point.
- :class:`HistogramHistory`: per refresh, how many values each bucket of a histogram
  gained since the previous refresh: the matrix of a heatmap over time (bpftrace's
  ``hist`` per interval).

Example
-------
>>> h = RateHistory(max_points=3)
>>> f = pd.DataFrame({"key": [1, 2], "value": [10, 5], "value/s": [2.0, 0.0]})
>>> h.record(100.0, f, ["key"], ["value"], ["value/s"])
>>> h.frame()[["key", "value", "value/s"]].values.tolist()
[[1, 10, 2.0]]
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "DEFAULT_MAX_KEYS",
    "DEFAULT_MAX_POINTS",
    "HistogramHistory",
    "RateHistory",
    "key_labels",
]

#: Refreshes kept (5 minutes at one refresh per second).
DEFAULT_MAX_POINTS = 300
#: Rows kept per refresh: the keys whose counters changed fastest.
DEFAULT_MAX_KEYS = 1000

LABEL_SEPARATOR = " · "


def key_labels(frame: pd.DataFrame, key_columns: list[str]) -> np.ndarray:
    """One text label per row naming its key (``"1234 · getpid · cat"``)."""
    n = len(frame)
    if not key_columns:
        return np.array([str(i) for i in range(n)], dtype=object)
    parts = [frame[c].astype(str).to_numpy(dtype=object) for c in key_columns]
    if len(parts) == 1:
        return parts[0]
    out = parts[0].copy()
    for p in parts[1:]:
        out = out + LABEL_SEPARATOR + p
    return out


@dataclass
class _Point:
    """One refresh: the rows kept and a label -> row lookup (made on first use)."""

    time: float
    rows: pd.DataFrame
    labels: np.ndarray
    rate_column: str
    _by_label: dict[str, float] | None = None

    def rate_of(self) -> dict[str, float]:
        if self._by_label is None:
            rates = self.rows[self.rate_column].to_numpy(dtype=np.float64, na_value=np.nan)
            self._by_label = dict(zip(self.labels.tolist(), rates.tolist(), strict=True))
        return self._by_label


class RateHistory:
    """A bounded history of a keyed map's refreshes (see the module docstring).

    Parameters
    ----------
    max_points : int
        Refreshes kept; older ones are dropped.
    max_keys : int
        Rows kept per refresh: those whose first rate column is highest (rows with an
        unknown rate, new keys, come after them).
    """

    def __init__(
        self, max_points: int = DEFAULT_MAX_POINTS, max_keys: int = DEFAULT_MAX_KEYS
    ) -> None:
        self.max_points = max(int(max_points), 1)
        self.max_keys = max(int(max_keys), 1)
        self._points: deque[_Point] = deque(maxlen=self.max_points)
        self._key_columns: list[str] = []
        self._value_columns: list[str] = []
        self._rate_columns: list[str] = []

    def __len__(self) -> int:
        """Points (refreshes) kept."""
        return len(self._points)

    @property
    def rate_columns(self) -> list[str]:
        """The rate columns of the last point recorded."""
        return list(self._rate_columns)

    def clear(self) -> None:
        """Forget every point."""
        self._points.clear()

    def record(
        self,
        when: float,
        frame: pd.DataFrame,
        key_columns: list[str],
        value_columns: list[str],
        rate_columns: list[str],
    ) -> None:
        """Keep one refresh.

        Parameters
        ----------
        when : float
            Wall-clock time of the snapshot (``time.time()``).
        frame : DataFrame
            The snapshot with its rate columns.
        key_columns, value_columns, rate_columns : list of str
            Which columns name the key, hold counters, hold their rates (per second).
            Without a rate column nothing is recorded.
        """
        if not rate_columns:
            return
        if (key_columns, value_columns, rate_columns) != (
            self._key_columns,
            self._value_columns,
            self._rate_columns,
        ):
            self._points.clear()  # the columns changed (per-CPU switch): a new history
            self._key_columns = list(key_columns)
            self._value_columns = list(value_columns)
            self._rate_columns = list(rate_columns)
        lead = rate_columns[0]
        rates = frame[lead].to_numpy(dtype=np.float64, na_value=np.nan)
        moving = np.flatnonzero(rates != 0)  # NaN (a new key) counts as moving
        if len(moving) > self.max_keys:
            known = np.where(np.isnan(rates[moving]), -np.inf, rates[moving])
            top = np.argpartition(-known, self.max_keys - 1)[: self.max_keys]
            moving = np.sort(moving[top])
        columns = [*key_columns, *value_columns, *rate_columns]
        rows = frame.iloc[moving][columns].reset_index(drop=True)
        self._points.append(_Point(when, rows, key_labels(rows, key_columns), lead))

    def frame(self) -> pd.DataFrame:
        """Every point as one long DataFrame.

        Returns
        -------
        DataFrame
            ``time`` (datetime64: the refresh's UTC wall clock, like ``received_at``),
            the key columns, the value columns and their rate columns (``value/s``...),
            one row per key that changed at that refresh.
        """
        columns = ["time", *self._key_columns, *self._value_columns, *self._rate_columns]
        points = list(self._points)
        if not points:
            return pd.DataFrame(columns=columns)
        out = pd.concat([p.rows for p in points], ignore_index=True)
        stamps = np.array([int(p.time * 1e9) for p in points], dtype="datetime64[ns]")
        out.insert(0, "time", np.repeat(stamps, [len(p.rows) for p in points]))
        return out[columns]

    def times(self) -> np.ndarray:
        """Wall-clock times of the points (seconds since the epoch)."""
        return np.array([p.time for p in self._points], dtype=np.float64)

    def latest_top(self, n: int, window: int = 5) -> list[str]:
        """Labels of the ``n`` keys with the highest rates over the newest points.

        A key's score is its highest rate in the newest ``window`` points, so a key
        that just went quiet still leads for a few refreshes (its line drops to 0).
        """
        best: dict[str, float] = {}
        for point in list(self._points)[-window:]:
            for label, rate in point.rate_of().items():
                if rate > best.get(label, 0.0):  # NaN (a new key) never wins
                    best[label] = rate
        ranked = sorted(best.items(), key=lambda item: (-item[1], item[0]))
        return [label for label, _ in ranked[:n]]

    def series(self, labels: list[str], last: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The rate of each key of ``labels`` at every point (0 where it did not change).

        Parameters
        ----------
        labels : list of str
            Key labels (see :func:`key_labels`).
        last : int, optional
            Only the newest ``last`` points.

        Returns
        -------
        times : ndarray
            Wall-clock times of the points, shape ``(T,)``.
        rates : ndarray
            Shape ``(len(labels), T)``; NaN where a key was new (no rate yet).
        """
        points = list(self._points)
        if last is not None:
            points = points[-last:]
        times = np.array([p.time for p in points], dtype=np.float64)
        out = np.zeros((len(labels), len(points)), dtype=np.float64)
        for j, p in enumerate(points):
            lookup = p.rate_of()
            for i, label in enumerate(labels):
                out[i, j] = lookup.get(label, 0.0)
        return times, out


class HistogramHistory:
    """Counts gained per bucket between refreshes of a histogram (a heatmap's matrix).

    Parameters
    ----------
    max_points : int
        Intervals kept.
    """

    def __init__(self, max_points: int = 120) -> None:
        self.max_points = max(int(max_points), 1)
        self._times: deque[float] = deque(maxlen=self.max_points)
        self._deltas: deque[dict[int, int]] = deque(maxlen=self.max_points)
        self._labels: dict[int, str] = {}
        self._previous: dict[int, int] | None = None

    def __len__(self) -> int:
        """Intervals kept."""
        return len(self._times)

    def clear(self) -> None:
        """Forget every interval (the next record starts a new baseline)."""
        self._times.clear()
        self._deltas.clear()
        self._previous = None

    def record(self, when: float, frame: pd.DataFrame) -> None:
        """Keep the counts each bucket gained since the previous call.

        Parameters
        ----------
        when : float
            Wall-clock time of the snapshot.
        frame : DataFrame
            A histogram frame (``bucket``, ``low``, ``high``, ``count``) indexed by
            slot number, cumulative counts as the map holds them.
        """
        slots = [int(s) for s in frame.index]
        counts = frame["count"].to_numpy(dtype=np.int64).tolist()
        for slot, label in zip(slots, frame["bucket"].tolist(), strict=True):
            self._labels.setdefault(slot, str(label))
        current = dict(zip(slots, counts, strict=True))
        if self._previous is None:
            self._previous = current
            return
        previous = self._previous
        delta = {s: c - previous.get(s, 0) for s, c in current.items()}
        self._previous = current
        self._times.append(when)
        self._deltas.append({s: d for s, d in delta.items() if d > 0})

    def matrix(self) -> tuple[np.ndarray, list[int], list[str], np.ndarray]:
        """The heatmap: intervals as columns, buckets (low to high) as rows.

        Returns
        -------
        times : ndarray
            End time of each interval (wall clock, seconds), shape ``(T,)``.
        slots, labels : list
            The bucket slots that gained values in any kept interval, and their labels.
        counts : ndarray
            Shape ``(len(slots), T)``: values each bucket gained in each interval.
        """
        slots = sorted({s for d in self._deltas for s in d})
        index = {s: i for i, s in enumerate(slots)}
        out = np.zeros((len(slots), len(self._deltas)), dtype=np.int64)
        for j, d in enumerate(self._deltas):
            for s, c in d.items():
                out[index[s], j] = c
        labels = [self._labels.get(s, str(s)) for s in slots]
        return np.array(self._times, dtype=np.float64), slots, labels, out
