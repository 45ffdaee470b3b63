"""Summary statistics of a bucketed histogram: count, mean and percentiles, estimated.

Pure. A histogram map keeps counts per bucket, not the values, so the mean and the
percentiles are estimates: a percentile is interpolated linearly inside the bucket
where the cumulative count reaches it, and the mean takes each bucket's midpoint
(``[0]`` and ``[1]``-style single-value buckets are exact). An open-ended bucket
(``[100, ...)``, or log2's last one) counts at its lower bound.

Example
-------
>>> import pandas as pd
>>> f = pd.DataFrame({"low": [0, 10], "high": [10, 20], "count": [50, 50]})
>>> s = summarize(f)
>>> (s.count, s.mean, s.p50)
(100, 10.0, 10.0)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["PERCENTILES", "HistogramSummary", "percentile", "summarize"]

#: The percentiles a summary gives.
PERCENTILES = (50, 90, 99)


@dataclass(frozen=True)
class HistogramSummary:
    """Count, estimated mean and estimated p50 / p90 / p99 (None when empty)."""

    count: int
    mean: float | None
    p50: float | None
    p90: float | None
    p99: float | None


def _bounds(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    low = frame["low"].to_numpy(dtype=np.float64, na_value=np.nan)
    high = frame["high"].to_numpy(dtype=np.float64, na_value=np.nan)
    counts = frame["count"].to_numpy(dtype=np.float64)
    # an open-ended bucket (high NA) is taken at its lower bound; [v] buckets are exact
    high = np.where(np.isnan(high), low, high)
    low = np.where(np.isnan(low), high, low)
    return low, high, counts


def percentile(frame: pd.DataFrame, q: float) -> float | None:
    """Estimate the ``q``-th percentile (0..100) of the values a histogram counted.

    Parameters
    ----------
    frame : DataFrame
        A histogram frame: ``low``, ``high`` (exclusive; NA when unbounded), ``count``.
    q : float
        The percentile.

    Returns
    -------
    float or None
        None for an empty histogram.
    """
    if not len(frame):
        return None
    low, high, counts = _bounds(frame)
    total = counts.sum()
    if total <= 0:
        return None
    rank = total * min(max(q, 0.0), 100.0) / 100.0
    cumulative = np.cumsum(counts)
    i = int(np.searchsorted(cumulative, rank, side="left"))
    i = min(i, len(counts) - 1)
    before = cumulative[i] - counts[i]
    inside = (rank - before) / counts[i] if counts[i] else 0.0
    width = high[i] - low[i]
    # single-value buckets ([0], [1]) have high == low + 1: the value is low itself
    if width <= 1:
        return float(low[i])
    return float(low[i] + inside * width)


def summarize(frame: pd.DataFrame) -> HistogramSummary:
    """Count, mean and p50 / p90 / p99 of a histogram frame (see :func:`percentile`)."""
    if not len(frame):
        return HistogramSummary(0, None, None, None, None)
    low, high, counts = _bounds(frame)
    total = int(counts.sum())
    if total <= 0:
        return HistogramSummary(0, None, None, None, None)
    mid = np.where(high - low <= 1, low, (low + high) / 2.0)
    mean = float((mid * counts).sum() / total)
    p50, p90, p99 = (percentile(frame, q) for q in PERCENTILES)
    return HistogramSummary(total, mean, p50, p90, p99)
