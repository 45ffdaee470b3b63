"""Stack id columns -> ``stack`` and ``folded`` columns, and folded counts for flame graphs.

A map keyed or valued by stack ids (a ``bpfnb_stackid_t`` field, or a column named
``stack_id``, ``kstack``, ``ustack``, ``user_stack_id``...) holds numbers that index a
stack trace map of the same program. :func:`with_stacks` (called by every keyed map's
``df()``) adds two columns to such a frame:

- ``stack``: the frames of every stack id of the row, innermost first (kernel frames,
  which sit on top of user frames, come first), as ``func+0x1a`` texts;
- ``folded``: the same stack in Brendan Gregg's folded form, from the root down:
  the row's ``comm`` (when the map has one), then user frames, then kernel frames
  (``_[k]``), without offsets.

User frames resolve through the process given by the row's ``pid`` (or ``tgid``)
column (see :mod:`bpfnb.kernel.symbolize`). A stack id column refers to the program's
stack trace map named like it (``kstack`` -> ``kstacks``) or, failing that, to its
first stack trace map. Negative ids (``bpf_get_stackid`` errors, e.g. ``-EFAULT`` for
kernel threads' user stacks) add no frames.

:func:`folded_counts` turns such a map into folded stacks weighted by its first
numeric value column (the count), what flame graphs draw.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import pandas as pd

from bpfnb.codec import frames
from bpfnb.codec.plan import Codec
from bpfnb.codec.stacks import Frame, folded_line, format_folded, merge_counts
from bpfnb.errors import BpfnbError
from bpfnb.kernel.symbolize import symbolizer
from bpfnb.object import maptypes

STACK_COLUMN = "stack"
FOLDED_COLUMN = "folded"
_ID_NAME = re.compile(
    r"^(?:k|u|kern_?|kernel_?|user_?)?stack(?:_?id)?$|_stack_?id$|^stack_?id$", re.I
)
#: Kinds whose rows can count stacks (read without side effects).
COUNTING_KINDS = frozenset(
    {"hash", "lru_hash", "percpu_hash", "lru_percpu_hash", "array", "percpu_array"}
)
_PID_COLUMNS = ("pid", "tgid")
_ROOT_COLUMNS = ("comm",)


class StackSource(Protocol):
    """A stack trace map as the stack columns read it."""

    @property
    def name(self) -> str:
        """The map's C name."""
        ...

    @property
    def kind(self) -> str:
        """``"stack_trace"``."""
        ...

    def addresses_by_id(self) -> dict[int, tuple[int, ...]]:
        """Every stored stack: id -> addresses, innermost first."""
        ...


class KeyedSource(Protocol):
    """A keyed map whose frame may hold stack ids."""

    @property
    def name(self) -> str:
        """The map's C name."""
        ...

    @property
    def kind(self) -> str:
        """The map's kind."""
        ...

    @property
    def key_codec(self) -> Codec:
        """How keys decode."""
        ...

    @property
    def value_codec(self) -> Codec:
        """How values decode."""
        ...

    @property
    def owner(self) -> Any:
        """The program (its ``maps``), or None."""
        ...


def stack_id_columns(key_codec: Codec, value_codec: Codec, df: pd.DataFrame) -> list[str]:
    """The integer columns of ``df`` that hold stack ids, in frame order."""
    key_names, value_names = frames._frame_names(key_codec, value_codec)
    decoded = {key_names[c] for c, d in key_codec.column_decoders.items() if d == "stackid"}
    decoded |= {value_names[c] for c, d in value_codec.column_decoders.items() if d == "stackid"}
    out = []
    for col in df.columns:
        name = str(col)
        if name in (STACK_COLUMN, FOLDED_COLUMN) or df[col].dtype.kind not in "iu":
            continue
        if name in decoded or _ID_NAME.search(name.rsplit(".", 1)[-1]):
            out.append(name)
    return out


def declared_stack_columns(key_codec: Codec, value_codec: Codec) -> tuple[list[str], list[str]]:
    """The frame columns that hold stack ids, from the codecs alone: (key side, value side)."""
    key_names, value_names = frames._frame_names(key_codec, value_codec)

    def ids(codec: Codec, names: Mapping[str, str]) -> list[str]:
        fields: Mapping[str, Any] = codec.dtype.fields or {}
        decoded = codec.column_decoders
        out = []
        for col in codec.column_names:
            name = names[col]
            field = fields.get(col or "_")
            is_int = field is not None and field[0].kind in "iu"
            if decoded.get(col) == "stackid" or (
                is_int and _ID_NAME.search(name.rsplit(".", 1)[-1])
            ):
                out.append(name)
        return out

    return ids(key_codec, key_names), ids(value_codec, value_names)


def stack_sources(owner: Any) -> list[StackSource]:
    """The stack trace maps of a program (its ``maps`` of kind ``stack_trace``)."""
    if owner is None:
        return []
    maps: Mapping[str, Any] = owner.maps
    return [m for m in maps.values() if maptypes.is_stack_trace(m.kind)]


def source_for(column: str, sources: Sequence[StackSource]) -> StackSource:
    """The stack map a stack id column refers to: named like it, else the first."""
    bare = column.rsplit(".", 1)[-1].lower().removesuffix("_id").removesuffix("id")
    for src in sources:
        name = src.name.lower()
        if name in (bare, bare + "s") or bare in (name, name.removesuffix("s")):
            return src
    return sources[0]


def _row_pid(df: pd.DataFrame) -> np.ndarray | None:
    for col in _PID_COLUMNS:
        if col in df.columns and df[col].dtype.kind in "iu":
            return df[col].to_numpy()
    return None


def _row_root(df: pd.DataFrame) -> np.ndarray | None:
    for col in _ROOT_COLUMNS:
        if col in df.columns:
            return df[col].to_numpy()
    return None


def _stacks_of(
    df: pd.DataFrame, id_columns: Sequence[str], sources: Sequence[StackSource]
) -> tuple[list[list[Frame]], list[str]]:
    """Per row: the frames (innermost first) and the folded text."""
    chosen = {c: source_for(c, sources) for c in id_columns}
    tables = {id(s): s.addresses_by_id() for s in chosen.values()}
    resolve = symbolizer()
    pids = _row_pid(df)
    roots = _row_root(df)
    columns = [(df[c].to_numpy(), tables[id(chosen[c])]) for c in id_columns]
    stacks: list[list[Frame]] = []
    folded: list[str] = []
    for i in range(len(df)):
        pid = int(pids[i]) if pids is not None else None
        kernel_part: list[Frame] = []
        user_part: list[Frame] = []
        for ids, table in columns:
            sid = int(ids[i])
            addrs = table.get(sid) if sid >= 0 else None
            if not addrs:
                continue
            got = resolve.frames(addrs, pid)
            if got and got[0].kernel:
                kernel_part += got
            else:
                user_part += got
        row = kernel_part + user_part
        stacks.append(row)
        root = [str(roots[i])] if roots is not None and str(roots[i]) else []
        folded.append(folded_line(row, root) if row else ";".join([*root, "[no stack]"]))
    return stacks, folded


def with_stacks(view: KeyedSource, df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with ``stack`` and ``folded`` columns when it holds stack ids (else as is)."""
    if not len(df.columns) or maptypes.is_stack_trace(view.kind):
        return df
    sources = stack_sources(view.owner)  # cheap: most programs have no stack map
    if not sources:
        return df
    id_columns = stack_id_columns(view.key_codec, view.value_codec, df)
    if not id_columns:
        return df
    stacks, folded = _stacks_of(df, id_columns, sources)
    out = df.copy()
    texts = np.empty(len(stacks), dtype=object)
    texts[:] = [[f.text() for f in row] for row in stacks]
    out[STACK_COLUMN] = texts
    out[FOLDED_COLUMN] = folded
    return out


def weight_column(view: KeyedSource, df: pd.DataFrame) -> str | None:
    """The column that weighs each row in a flame graph: the first numeric value column."""
    _, value_names = frames._frame_names(view.key_codec, view.value_codec)
    for name in value_names.values():
        if name in df.columns and df[name].dtype.kind in "iuf":
            return name
    return None


def folded_counts(view: KeyedSource, df: pd.DataFrame) -> dict[str, int]:
    """Folded stack -> weight of a map frame that has a ``folded`` column.

    Raises
    ------
    BpfnbError
        When the map holds no stack ids.
    """
    if FOLDED_COLUMN not in df.columns:
        raise BpfnbError(
            f"map {view.name!r} has no stack id column (a bpfnb_stackid_t field or a "
            "column named stack_id / kstack / ustack) referring to a stack trace map "
            "of its program"
        )
    weight = weight_column(view, df)
    weights: Iterable[Any] = df[weight].to_numpy() if weight else np.ones(len(df), np.int64)
    return merge_counts(zip(df[FOLDED_COLUMN], (int(w) for w in weights), strict=True))


__all__ = [
    "COUNTING_KINDS",
    "FOLDED_COLUMN",
    "STACK_COLUMN",
    "StackSource",
    "declared_stack_columns",
    "folded_counts",
    "format_folded",
    "source_for",
    "stack_id_columns",
    "stack_sources",
    "with_stacks",
]
