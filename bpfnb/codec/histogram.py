"""Histogram buckets: bounds, labels and DataFrames, pure (no kernel, no IPython).

The C side (``bpfnb/include/bpfnb/hist.h``) declares histograms as array or per-CPU
array maps of ``u64`` counts whose key type names the bucket scheme:

* ``bpfnb_log2_bucket_t``: 65 log2 slots. Slot 0 counts the value 0, slot 1 the value
  1, slot ``k >= 2`` the values ``[2**(k-1), 2**k)``.
* a typedef ``bpfnb_lhist__MIN_MAX_STEP`` of ``bpfnb_linear_bucket_t``: slot 0 counts
  values below MIN, slot ``i`` in ``1..N`` counts ``[MIN + (i-1)*STEP, MIN + i*STEP)``
  and slot ``N+1`` counts values ``>= MAX``, with ``N = ceil((MAX - MIN) / STEP)``.

Labels follow bpftrace: ``[0]``, ``[1]``, ``[2, 4)``, ``[1K, 2K)``, ``[1M, 2M)``,
``(..., 10)``, ``[100, ...)``; K, M, G, T, P and E are powers of 1024.

Histogram maps have the kind ``histogram`` / ``percpu_histogram`` (see
:mod:`bpfnb.object.maptypes`, which reads the scheme from the key type); their views
build the histogram view with :func:`histogram_frame` from the map's plain DataFrame.

libbpf-tools histograms (kind ``slots_histogram``) hold one histogram per key in a
``slots`` array of the value, scheme ``log2_slots`` with N slots: slot 0 counts ``[0,
2)``, slot ``k`` counts ``[2**k, 2**(k+1))``, slot ``N-1`` counts ``[2**(N-1), ...)``.
:func:`slots_frame` turns the keys and their slot counts into one histogram frame with
the key columns first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bpfnb.errors import BpfnbError
from bpfnb.object import maptypes
from bpfnb.object.spec import MapSpec

LOG2_SLOTS = maptypes.LOG2_SLOTS
COLUMNS = ("bucket", "low", "high", "count")

_SUFFIXES = ("", "K", "M", "G", "T", "P", "E")


@dataclass(frozen=True)
class Histogram(maptypes.HistogramScheme):
    """A bucket scheme (:class:`bpfnb.object.maptypes.HistogramScheme`) with its math."""

    @classmethod
    def of(cls, scheme: maptypes.HistogramScheme) -> Histogram:
        """The scheme read from a map's key type, with bounds and labels."""
        if isinstance(scheme, Histogram):
            return scheme
        return cls(scheme.kind, scheme.min, scheme.max, scheme.step)

    @property
    def slots(self) -> int:
        """Number of slots of the map (under- and overflow slots included)."""
        if self.kind == "log2":
            return LOG2_SLOTS
        if self.kind == "log2_slots":
            return self.max
        return linear_buckets(self.min, self.max, self.step) + 2

    def bounds(self, slot: int) -> tuple[int, int | None]:
        """Return ``(low, high)`` of a slot: ``low <= v < high``; high None is unbounded."""
        if self.kind == "log2":
            return log2_bounds(slot)
        if self.kind == "log2_slots":
            return slots_bounds(slot, self.max)
        return linear_bounds(slot, self.min, self.max, self.step)

    def label(self, slot: int) -> str:
        """Return the bpftrace-style label of a slot, e.g. ``[1K, 2K)``."""
        if self.kind == "log2":
            return log2_label(slot)
        if self.kind == "log2_slots":
            low, high = slots_bounds(slot, self.max)
            return f"[{format_number(low)}, {format_number(high) if high else '...'})"
        return linear_label(slot, self.min, self.max, self.step)

    def slot_of(self, value: int) -> int:
        """Return the slot a value is counted in (what the C helpers compute)."""
        if self.kind == "log2":
            return log2_slot(value)
        if self.kind == "log2_slots":
            return min(max(int(value), 1).bit_length() - 1, self.max - 1)
        return linear_slot(value, self.min, self.max, self.step)


# --------------------------------------------------------------------------------------
# Bucket math
# --------------------------------------------------------------------------------------


def log2_slot(value: int) -> int:
    """Return the log2 slot of a non-negative value: 0 for 0, else ``floor(log2(v)) + 1``."""
    if value < 0:
        raise ValueError(f"log2 histograms count non-negative values, got {value}")
    return int(value).bit_length()


def log2_bounds(slot: int) -> tuple[int, int | None]:
    """Return ``(low, high)`` of a log2 slot; ``high`` is None for slot 64 (up to 2**64)."""
    if not 0 <= slot < LOG2_SLOTS:
        raise ValueError(f"log2 slot {slot} is outside 0..{LOG2_SLOTS - 1}")
    if slot == 0:
        return 0, 1
    if slot == LOG2_SLOTS - 1:
        return 1 << (slot - 1), None
    return 1 << (slot - 1), 1 << slot


def slots_bounds(slot: int, slots: int) -> tuple[int, int | None]:
    """Return ``(low, high)`` of a ``log2_slots`` slot (libbpf-tools' ``log2l`` slots)."""
    if not 0 <= slot < slots:
        raise ValueError(f"slot {slot} is outside 0..{slots - 1}")
    low = 0 if slot == 0 else 1 << slot
    return low, None if slot == slots - 1 else 1 << (slot + 1)


def linear_buckets(min_: int, max_: int, step: int) -> int:
    """Return the number of in-range buckets ``ceil((max - min) / step)``."""
    if step <= 0:
        raise ValueError(f"linear histogram step must be positive, got {step}")
    if max_ <= min_:
        raise ValueError(f"linear histogram max ({max_}) must be above min ({min_})")
    return -(-(max_ - min_) // step)


def linear_slot(value: int, min_: int, max_: int, step: int) -> int:
    """Return the linear slot of a value (0 below min, N+1 at or above max)."""
    n = linear_buckets(min_, max_, step)
    if value < min_:
        return 0
    if value >= max_:
        return n + 1
    return (value - min_) // step + 1


def linear_bounds(slot: int, min_: int, max_: int, step: int) -> tuple[int, int | None]:
    """Return ``(low, high)`` of a linear slot; the overflow slot has ``high`` None."""
    n = linear_buckets(min_, max_, step)
    if not 0 <= slot <= n + 1:
        raise ValueError(f"linear slot {slot} is outside 0..{n + 1}")
    if slot == 0:
        return 0, min_
    if slot == n + 1:
        return max_, None
    low = min_ + (slot - 1) * step
    return low, min(low + step, max_)


def format_number(value: int) -> str:
    """Format a bound bpftrace-style: exact multiples of 1024 get K, M, G, T, P, E."""
    if value == 0:
        return "0"
    n, i = value, 0
    while i < len(_SUFFIXES) - 1 and n % 1024 == 0:
        n //= 1024
        i += 1
    return f"{n}{_SUFFIXES[i]}"


def log2_label(slot: int) -> str:
    """Return the label of a log2 slot: ``[0]``, ``[1]``, ``[2, 4)``, ``[1K, 2K)``."""
    low, high = log2_bounds(slot)
    if slot <= 1:
        return f"[{low}]"
    top = "16E" if high is None else format_number(high)
    return f"[{format_number(low)}, {top})"


def linear_label(slot: int, min_: int, max_: int, step: int) -> str:
    """Return the label of a linear slot: ``(..., 0)``, ``[0, 10)``, ``[100, ...)``."""
    low, high = linear_bounds(slot, min_, max_, step)
    if slot == 0:
        return f"(..., {format_number(min_)})"
    if high is None:
        return f"[{format_number(low)}, ...)"
    return f"[{format_number(low)}, {format_number(high)})"


# --------------------------------------------------------------------------------------
# DataFrames
# --------------------------------------------------------------------------------------


def frame_from_counts(
    hist: maptypes.HistogramScheme,
    slots: np.ndarray | list[int],
    counts: np.ndarray | list[int],
    *,
    trim: bool = True,
    extra: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Build the histogram DataFrame from slot numbers and counts.

    Parameters
    ----------
    hist : Histogram
        The bucket scheme.
    slots, counts : array-like
        Slot numbers and their counts (any order; missing slots count 0).
    trim : bool
        Keep only the slots from the first to the last non-zero one (bpftrace's
        view); an all-zero histogram gives an empty frame. False keeps every slot.
    extra : DataFrame, optional
        Further per-slot columns (e.g. one per CPU), aligned with ``slots``.

    Returns
    -------
    DataFrame
        Columns ``bucket`` (label), ``low``, ``high`` (nullable UInt64; ``high`` is
        exclusive and NA when unbounded) and ``count``, one row per slot, in slot
        order, indexed by slot number.
    """
    hist = Histogram.of(hist)
    n = hist.slots
    slots_a = np.asarray(slots, dtype=np.int64)
    counts_a = np.asarray(counts, dtype=np.uint64)
    if slots_a.shape != counts_a.shape:
        raise ValueError("slots and counts must have the same length")
    inside = (slots_a >= 0) & (slots_a < n)
    full = np.zeros(n, dtype=np.uint64)
    np.add.at(full, slots_a[inside], counts_a[inside])
    if trim:
        nonzero = np.flatnonzero(full)
        first, last = (int(nonzero[0]), int(nonzero[-1]) + 1) if nonzero.size else (0, 0)
    else:
        first, last = 0, n
    index = range(first, last)
    bounds = [hist.bounds(s) for s in index]
    frame = pd.DataFrame(
        {
            "bucket": np.array([hist.label(s) for s in index], dtype=object),
            "low": pd.array([b[0] for b in bounds], dtype="UInt64"),
            "high": pd.array([b[1] for b in bounds], dtype="UInt64"),
            "count": full[first:last],
        },
        index=pd.RangeIndex(first, last, name="slot"),
    )
    if extra is not None and len(extra.columns):
        per_slot = extra.set_axis(slots_a, axis=0)
        per_slot = per_slot[inside].groupby(level=0).sum()
        frame = frame.join(per_slot.reindex(frame.index, fill_value=0))
    return frame


def histogram_frame(
    spec_or_hist: MapSpec | maptypes.HistogramScheme, df: pd.DataFrame, *, trim: bool = True
) -> pd.DataFrame:
    """Build the histogram DataFrame from a histogram map's plain DataFrame.

    Parameters
    ----------
    spec_or_hist : MapSpec or HistogramScheme
        The map's spec (its key type names the scheme) or the scheme itself.
    df : DataFrame
        The map's plain snapshot: a ``key`` column (slot numbers) and either a
        ``value`` column (counts, per-CPU values already summed) or one column per
        CPU (``df(per_cpu=True)``), which are summed into ``count`` and kept.
    trim : bool
        See :func:`frame_from_counts`.

    Returns
    -------
    DataFrame
        Columns ``bucket``, ``low``, ``high``, ``count`` (plus per-CPU columns).
    """
    if set(COLUMNS) <= set(df.columns):  # already a histogram frame
        return df
    if isinstance(spec_or_hist, maptypes.HistogramScheme):
        scheme: maptypes.HistogramScheme | None = spec_or_hist
    else:
        scheme = spec_or_hist.histogram
        if scheme is None:
            raise BpfnbError(f"map {spec_or_hist.name!r} is not a histogram")
    assert scheme is not None
    hist = Histogram.of(scheme)
    if "key" in df.columns:
        slots = df["key"].to_numpy(dtype=np.int64)
    else:
        slots = df.index.to_numpy(dtype=np.int64)
    rest = df.drop(columns=[c for c in ("key",) if c in df.columns])
    if "value" in rest.columns:
        counts = rest["value"].to_numpy(dtype=np.uint64)
        extra = rest.drop(columns=["value"]).select_dtypes("number")
    else:
        numeric = rest.select_dtypes("number")
        counts = numeric.to_numpy(dtype=np.uint64).sum(axis=1) if len(numeric.columns) else []
        extra = numeric
    return frame_from_counts(hist, slots, counts, trim=trim, extra=extra)


def slots_frame(
    scheme: maptypes.HistogramScheme,
    keys: pd.DataFrame,
    counts: np.ndarray,
    *,
    trim: bool = True,
) -> pd.DataFrame:
    """Build one histogram frame from per-key ``slots`` arrays.

    Parameters
    ----------
    scheme : HistogramScheme
        The ``log2_slots`` scheme (its ``max`` is the number of slots).
    keys : DataFrame
        One row per key: the key columns and any other value columns (``comm``).
    counts : numpy.ndarray
        ``(len(keys), slots)`` counts, per-CPU values already summed.
    trim : bool
        Per key, keep the slots from its first to its last non-zero one (keys whose
        histogram is all zero are left out); False keeps every slot of every key.

    Returns
    -------
    DataFrame
        The columns of ``keys``, then ``bucket``, ``low``, ``high`` (nullable UInt64;
        ``high`` exclusive, NA when unbounded) and ``count``, one row per key and slot,
        indexed by slot number.
    """
    hist = Histogram.of(scheme)
    n = hist.slots
    grid = np.asarray(counts, dtype=np.uint64).reshape(len(keys), n)
    index = np.arange(n)
    if trim:
        nonzero = grid != 0
        has = nonzero.any(axis=1)
        first = np.where(has, nonzero.argmax(axis=1), n)
        last = np.where(has, n - 1 - nonzero[:, ::-1].argmax(axis=1), -1)
        keep = (index >= first[:, None]) & (index <= last[:, None])
    else:
        keep = np.ones(grid.shape, dtype=bool)
    rows, slots = np.nonzero(keep)
    bounds = [hist.bounds(s) for s in range(n)]
    labels = np.array([hist.label(s) for s in range(n)], dtype=object)
    frame = keys.iloc[rows].reset_index(drop=True)
    frame["bucket"] = labels[slots]
    frame["low"] = pd.array([bounds[s][0] for s in slots], dtype="UInt64")
    frame["high"] = pd.array([bounds[s][1] for s in slots], dtype="UInt64")
    frame["count"] = grid[rows, slots]
    frame.index = pd.Index(slots, name="slot")
    return frame


def render_text(frame: pd.DataFrame, width: int = 40) -> str:
    """Render a histogram frame as bpftrace-style text bars (for terminals and logs)."""
    if frame.empty:
        return "(empty histogram)"
    top = int(frame["count"].max()) or 1
    label_w = max(len(str(b)) for b in frame["bucket"])
    count_w = max(len(str(int(c))) for c in frame["count"])
    lines = []
    for label, count in zip(frame["bucket"], frame["count"], strict=True):
        bar = "@" * round(int(count) * width / top)
        lines.append(f"{label:<{label_w}} {int(count):>{count_w}} |{bar:<{width}}|")
    return "\n".join(lines)
