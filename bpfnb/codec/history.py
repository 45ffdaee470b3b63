"""Bounded histories of a map's refreshes: rates over time, histogram counts over time.

Pure (no kernel, no IPython). A live view feeds one recorder per map at every refresh;
the recorders keep a bounded number of points, so memory stays flat however long a
dashboard runs.

- :class:`RateHistory`: per refresh, the rows of a keyed map whose counters changed
  (at most ``max_keys`` rows, the fastest first), with their values and rates.
  :meth:`RateHistory.frame` is the long DataFrame behind ``prog.MAP.history()``
  (``time``, key columns, value columns, rate columns); :meth:`RateHistory.series`
  gives the rate of chosen keys at every point, for plots and sparklines. Keys are
  told apart by a 64-bit hash of their columns (:func:`key_ids`), so a refresh costs
  no string work; :meth:`RateHistory.labels` names them for display. A key that is not
  in a point did not change then (rate 0), or changed less than the ``max_keys``
  fastest keys of that point.
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
    "key_ids",
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


def key_ids(frame: pd.DataFrame, key_columns: list[str]) -> np.ndarray:
    """One 64-bit id per row, a hash of its key columns (row numbers without keys)."""
    if not key_columns or not len(frame):
        return np.arange(len(frame), dtype=np.uint64)
    return np.asarray(pd.util.hash_pandas_object(frame[key_columns], index=False).to_numpy())


@dataclass
class _Point:
    """One refresh: the rows kept, their key ids and an id -> rate lookup (made on use)."""

    time: float
    rows: pd.DataFrame
    ids: np.ndarray
    rate_column: str
    _rates: dict[int, float] | None = None

    def rate_of(self) -> dict[int, float]:
        if self._rates is None:
            rates = self.rows[self.rate_column].to_numpy(dtype=np.float64, na_value=np.nan)
            self._rates = dict(zip(self.ids.tolist(), rates.tolist(), strict=True))
        return self._rates


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
        ids: np.ndarray | None = None,
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
        ids : ndarray, optional
            The rows' key ids (:func:`key_ids`) when the caller has them already.
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
        kept = ids[moving] if ids is not None else key_ids(rows, key_columns)
        self._points.append(_Point(when, rows, np.asarray(kept, dtype=np.uint64), lead))

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

    def latest_top(self, n: int, window: int = 5) -> list[int]:
        """Ids of the ``n`` keys with the highest rates over the newest points.

        A key's score is its highest rate in the newest ``window`` points, so a key
        that just went quiet still leads for a few refreshes (its line drops to 0).
        Ties go to the smaller id, so the choice is stable.
        """
        best: dict[int, float] = {}
        for point in list(self._points)[-window:]:
            for key, rate in point.rate_of().items():
                if rate > best.get(key, 0.0):  # NaN (a new key) never wins
                    best[key] = rate
        ranked = sorted(best.items(), key=lambda item: (-item[1], item[0]))
        return [key for key, _ in ranked[:n]]

    def labels(self, ids: list[int]) -> list[str]:
        """Names of keys (``"1234 · getpid · cat"``), from the newest point holding each."""
        out: dict[int, str] = {}
        wanted = set(ids)
        for point in reversed(self._points):
            if not wanted:
                break
            found = np.flatnonzero(np.isin(point.ids, np.array(list(wanted), dtype=np.uint64)))
            if not len(found):
                continue
            names = key_labels(point.rows.iloc[found], self._key_columns)
            for i, name in zip(found, names, strict=True):
                out[int(point.ids[i])] = str(name)
                wanted.discard(int(point.ids[i]))
        return [out.get(i, str(i)) for i in ids]

    def series(self, ids: list[int], last: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The rate of each key of ``ids`` at every point (0 where it did not change).

        Parameters
        ----------
        ids : list of int
            Key ids (see :func:`key_ids`).
        last : int, optional
            Only the newest ``last`` points.

        Returns
        -------
        times : ndarray
            Wall-clock times of the points, shape ``(T,)``.
        rates : ndarray
            Shape ``(len(ids), T)``; NaN where a key was new (no rate yet).
        """
        points = list(self._points)
        if last is not None:
            points = points[-last:]
        times = np.array([p.time for p in points], dtype=np.float64)
        out = np.zeros((len(ids), len(points)), dtype=np.float64)
        for j, p in enumerate(points):
            lookup = p.rate_of()
            for i, key in enumerate(ids):
                out[i, j] = lookup.get(int(key), 0.0)
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
