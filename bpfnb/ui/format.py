"""How numbers, times and units read in the dashboard (pure: no IPython, no widgets).

Rules, one place:

- counters and other amounts get thousands separators (``1,234,567``); ids (pids,
  cpus, fds), enums and single values such as return codes do not (``pid 12345``);
- a column has ONE precision and ONE unit, chosen from all its values
  (:func:`column_style`), so digits line up and do not jump between refreshes;
- durations in ns / µs / ms are scaled to the unit that reads best for the column's
  typical (median) value: ``1.52 µs``, ``12.3 ms``; byte amounts to B / KiB / MiB...;
- rates (``value/s``) keep the unit of what they count, per second (``12.3 ms/s``);
- bitmasks and addresses that no decoder named are shown in hex (``0x8241``);
- times of day read ``HH:MM:SS.mmm``; relative times ``-1.234 s``.

Example
-------
>>> thousands(1234567)
'1,234,567'
>>> format_duration(1523)
'1.52 µs'
>>> style = column_style(np.array([1500.0, 2500.0]), "duration", "ns")
>>> apply_style(style, np.array([1500.0, 2500.0]))
['1.50 µs', '2.50 µs']
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "AMOUNT_ROLES",
    "ColumnStyle",
    "apply_style",
    "column_style",
    "format_bytes",
    "format_clock",
    "format_duration",
    "format_number",
    "format_relative",
    "thousands",
]

#: Roles whose sums and rates mean something (see :mod:`bpfnb.codec.roles`).
AMOUNT_ROLES = ("counter", "duration")

_NS_PER = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}
_TIME_STEPS: tuple[tuple[str, float], ...] = (("ns", 1.0), ("µs", 1e3), ("ms", 1e6), ("s", 1e9))
_BYTE_STEPS: tuple[tuple[str, float], ...] = (
    ("B", 1.0),
    ("KiB", 1024.0),
    ("MiB", 1024.0**2),
    ("GiB", 1024.0**3),
    ("TiB", 1024.0**4),
)


def thousands(value: int) -> str:
    """An integer with thousands separators: ``1,234,567``."""
    return f"{int(value):,}"


def _decimals(top: float) -> int:
    """Decimals for numbers up to ``top``: 3 significant digits, at least 0."""
    if top >= 100 or top == 0:
        return 0
    if top >= 10:
        return 1
    return 2


def format_number(value: float) -> str:
    """One number on its own: integers with separators, others with 3 significant digits."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    v = float(value)
    if v.is_integer() and abs(v) < 1e18:
        return thousands(int(v))
    return f"{v:,.{_decimals(abs(v))}f}"


def _pick(steps: tuple[tuple[str, float], ...], magnitude: float) -> tuple[str, float]:
    label, factor = steps[0]
    for name, size in steps:
        if magnitude >= size:
            label, factor = name, size
    return label, factor


def format_duration(ns: float, unit: str = "ns") -> str:
    """One duration given in ``unit`` (ns, us, ms, s), scaled: ``1.52 µs``, ``3 ns``."""
    if ns is None or (isinstance(ns, float) and math.isnan(ns)):
        return ""
    value = float(ns) * _NS_PER.get(unit, 1.0)
    label, factor = _pick(_TIME_STEPS, abs(value))
    scaled = value / factor
    if factor == 1.0 and scaled.is_integer():
        return f"{int(scaled):,} ns"
    return f"{scaled:,.{_decimals(abs(scaled))}f} {label}"


def format_bytes(n: float) -> str:
    """One amount of bytes, scaled: ``512 B``, ``1.50 KiB``, ``12.3 MiB``."""
    if n is None or (isinstance(n, float) and math.isnan(n)):
        return ""
    label, factor = _pick(_BYTE_STEPS, abs(float(n)))
    scaled = float(n) / factor
    if factor == 1.0:
        return f"{format_number(scaled)} B"
    return f"{scaled:,.{_decimals(abs(scaled))}f} {label}"


def format_clock(when: Any) -> str:
    """A time of day with milliseconds, ``HH:MM:SS.mmm``, in local time.

    ``when`` is seconds since the epoch or a timestamp (naive ones are UTC).
    """
    if when is None or when is pd.NaT:
        return ""
    if isinstance(when, float | int):
        if isinstance(when, float) and math.isnan(when):
            return ""
        return _clock_ms(round(when * 1000))
    ts = pd.Timestamp(when)
    if ts is pd.NaT:
        return ""
    # naive times are UTC (as bpfnb's decoders make them); shown in local time
    return _clock_ms(ts.value // 1_000_000)


def _clock_ms(ms: int) -> str:
    seconds, rest = divmod(int(ms), 1000)
    return time.strftime("%H:%M:%S", time.localtime(seconds)) + f".{rest:03d}"


def format_relative(seconds: float) -> str:
    """A time relative to now in seconds: ``-1.234 s``, ``-2 min 05 s``."""
    if math.isnan(seconds):
        return ""
    if abs(seconds) < 60:
        return f"{seconds:+.3f} s"
    sign = "-" if seconds < 0 else "+"
    minutes, rest = divmod(abs(seconds), 60)
    return f"{sign}{int(minutes)} min {int(rest):02d} s"


@dataclass(frozen=True)
class ColumnStyle:
    """How one column's cells are written (see :func:`column_style`).

    Attributes
    ----------
    kind : str
        ``amount`` (separators, fixed decimals), ``plain`` (no separators), ``hex``,
        ``clock`` (times of day), ``text``.
    decimals : int
        Digits after the point, the same for every cell.
    factor : float
        Values are divided by it (scaling to ``unit``).
    unit : str
        Written after each number (``µs``, ``MiB/s``), empty for none.
    left : bool
        Left-aligned (text) rather than right-aligned (numbers).
    """

    kind: str
    decimals: int = 0
    factor: float = 1.0
    unit: str = ""
    left: bool = False


TEXT = ColumnStyle("text", left=True)


def _finite(values: np.ndarray) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    return v[np.isfinite(v)]


def _typical(values: np.ndarray) -> float:
    """The column's typical magnitude: the median of its non-zero absolute values."""
    v = np.abs(values)
    v = v[v > 0]
    return float(np.median(v)) if v.size else 0.0


def _amount(values: np.ndarray, unit: str = "", factor: float = 1.0) -> ColumnStyle:
    finite = _finite(values) / factor
    integral = bool(np.all(finite == np.round(finite))) if finite.size else True
    decimals = 0 if integral and factor == 1.0 else _decimals(_typical(finite))
    return ColumnStyle("amount", decimals, factor, unit)


def column_style(
    values: np.ndarray | pd.Series, role: str | None, unit: str | None, *, rate: bool = False
) -> ColumnStyle:
    """Choose how a column is written from its role, unit and values.

    Parameters
    ----------
    values : array-like
        Every value of the column (not only the rows shown): the precision and the
        unit scale are chosen once for all of them.
    role : str or None
        The column's role (:mod:`bpfnb.codec.roles`): ``counter``, ``duration``,
        ``timestamp``, ``id``, ``flags``, ``address``, ``enum``...
    unit : str or None
        ``ns``, ``us``, ``ms`` or ``bytes``.
    rate : bool
        The column is a rate (``X/s``) of a column with this role and unit.

    Returns
    -------
    ColumnStyle
    """
    series = values if isinstance(values, pd.Series) else pd.Series(values)
    kind = series.dtype.kind
    if kind == "M" or isinstance(series.dtype, pd.DatetimeTZDtype):
        return ColumnStyle("clock")
    if kind == "m":
        return ColumnStyle("timedelta")
    if kind not in "iuf":
        return TEXT
    per = "/s" if rate else ""
    raw = series.to_numpy(dtype=np.float64, na_value=np.nan)
    if unit in _NS_PER:
        ns = _finite(raw) * _NS_PER[str(unit)]
        label, factor = _pick(_TIME_STEPS, _typical(ns))
        style = _amount(ns, label + per, factor)
        return ColumnStyle("amount", style.decimals, factor / _NS_PER[str(unit)], label + per)
    if unit == "bytes":
        label, factor = _pick(_BYTE_STEPS, _typical(_finite(raw)))
        return _amount(raw, label + per, factor)
    if rate:
        return _amount(raw)
    if role in ("flags", "address"):
        return ColumnStyle("hex") if kind in "iu" else ColumnStyle("plain")
    if role in ("id", "enum", "other") and kind in "iu":
        return ColumnStyle("plain")
    return _amount(raw)


def apply_style(style: ColumnStyle, values: np.ndarray | pd.Series | list[Any]) -> list[str]:
    """Write the cells of a column with its style (NaN / NA / None -> empty)."""
    series = values if isinstance(values, pd.Series) else pd.Series(values)
    if style.kind == "clock":
        return [format_clock(v) for v in series.tolist()]
    if style.kind == "timedelta":
        out = []
        for v in series.tolist():
            out.append("" if v is pd.NaT or v is None else format_duration(v.value))
        return out
    if style.kind == "text":
        return [_text(v) for v in series.tolist()]
    raw = series.to_numpy(dtype=np.float64, na_value=np.nan)
    if style.kind == "hex":
        ints = series.tolist()
        return [("" if _missing(v) else hex(int(v))) for v in ints]
    if style.kind == "plain":
        return [("" if math.isnan(v) else format_number(v).replace(",", "")) for v in raw]
    unit = f" {style.unit}" if style.unit else ""
    scaled = raw / style.factor
    fmt = f"{{:,.{style.decimals}f}}"
    return [("" if math.isnan(v) else fmt.format(v) + unit) for v in scaled]


def _missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def _text(value: Any) -> str:
    if _missing(value):
        return ""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list | tuple):
        return " ".join(str(v) for v in value)
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    return str(value)
