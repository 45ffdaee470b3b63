"""The event tail's filter: ``comm == cat``, ``filename ~ passwd``, ``pid > 100``.

Pure. A filter is one or more conditions joined by ``and`` (or ``&&``):

==================  =========================================================
``COL == VALUE``    the cell reads ``VALUE`` (as shown, or numerically equal)
``COL != VALUE``    the opposite
``COL ~ TEXT``      the cell contains ``TEXT`` (case-insensitive); also
                    ``COL contains TEXT``
``COL > N``...      ``>``, ``>=``, ``<``, ``<=`` compare numbers
``TEXT``            any text column contains ``TEXT`` (case-insensitive)
==================  =========================================================

Values may be quoted (``filename == "/etc/passwd"``). An unknown column raises
:class:`FilterError` naming the columns there are.

Example
-------
>>> f = parse("comm == cat and pid > 10")
>>> frame = pd.DataFrame({"comm": ["cat", "cat", "sh"], "pid": [5, 50, 60]})
>>> f.mask(frame).tolist()
[False, True, False]
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bpfnb.errors import BpfnbError

__all__ = ["Condition", "EventFilter", "FilterError", "parse"]

_CONDITION = re.compile(
    r"^\s*(?P<col>[A-Za-z_][\w.\[\]]*)\s*(?P<op>==|!=|>=|<=|>|<|~|=|\bcontains\b)\s*(?P<value>.*?)\s*$"
)
_AND = re.compile(r"\s+(?:and|AND)\s+|\s*&&\s*")


class FilterError(BpfnbError):
    """A filter that cannot be read, or names a column the events do not have."""


@dataclass(frozen=True)
class Condition:
    """One condition: ``column op value``; ``column`` None searches every text column."""

    column: str | None
    op: str
    value: str

    def mask(self, frame: pd.DataFrame) -> np.ndarray:
        """Rows of ``frame`` meeting the condition."""
        if self.column is None:
            needle = self.value.lower()
            out = np.zeros(len(frame), dtype=bool)
            for name in frame.columns:
                col = frame[name]
                if col.dtype.kind in "iufbMm":
                    continue
                out |= col.astype(str).str.lower().str.contains(needle, regex=False).to_numpy()
            return out
        if self.column not in frame.columns:
            names = ", ".join(map(str, frame.columns))
            raise FilterError(f"no column {self.column!r} in the events (columns: {names})")
        col = frame[self.column]
        if self.op == "~":
            text = col.astype(str).str.lower()
            return text.str.contains(self.value.lower(), regex=False).to_numpy(dtype=bool)
        if self.op in ("==", "!="):
            equal = col.astype(str).to_numpy(dtype=object) == self.value
            number = _number(self.value)
            if number is not None and col.dtype.kind in "iuf":
                equal |= col.to_numpy(dtype=np.float64, na_value=np.nan) == number
            return equal if self.op == "==" else ~equal
        number = _number(self.value)
        if number is None:
            raise FilterError(f"{self.op} needs a number, got {self.value!r}")
        if col.dtype.kind not in "iuf":
            raise FilterError(f"column {self.column!r} holds text: use == or ~ with it")
        values = col.to_numpy(dtype=np.float64, na_value=np.nan)
        with np.errstate(invalid="ignore"):
            if self.op == ">":
                return values > number
            if self.op == ">=":
                return values >= number
            if self.op == "<":
                return values < number
            return values <= number


@dataclass(frozen=True)
class EventFilter:
    """Conditions that must all hold; the text the user typed."""

    text: str
    conditions: tuple[Condition, ...]

    def mask(self, frame: pd.DataFrame) -> np.ndarray:
        """Rows of ``frame`` meeting every condition."""
        out = np.ones(len(frame), dtype=bool)
        for condition in self.conditions:
            out &= condition.mask(frame)
        return out

    def apply(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The rows of ``frame`` meeting every condition."""
        if not self.conditions:
            return frame
        return frame[self.mask(frame)]

    def __bool__(self) -> bool:
        return bool(self.conditions)


def _number(text: str) -> float | None:
    try:
        return float(int(text, 0))
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return None


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        try:
            return str(shlex.split(text)[0])
        except ValueError:
            return text[1:-1]
    return text


def parse(text: str) -> EventFilter:
    """Read a filter (see the module docstring); an empty text filters nothing.

    Raises
    ------
    FilterError
        A condition without a value.
    """
    conditions = []
    for part in _AND.split(text.strip()):
        if not part.strip():
            continue
        m = _CONDITION.match(part)
        if m is None:
            conditions.append(Condition(None, "~", _unquote(part)))
            continue
        op = {"=": "==", "contains": "~"}.get(m["op"], m["op"])
        value = _unquote(m["value"])
        if not value:
            raise FilterError(f"{part.strip()!r}: a value is missing after {op}")
        conditions.append(Condition(m["col"], op, value))
    return EventFilter(text.strip(), tuple(conditions))
