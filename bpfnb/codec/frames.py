"""Raw key/value records -> pandas DataFrames, with the column naming rules of bpfnb.

Naming
------
- a scalar key is the column ``key`` and a scalar value the column ``value``; a
  top-level array key/value gets ``key[0]``, ``key[1]``... (``value[0]``...);
- struct fields keep their C names (nested ``outer.inner``); a value field whose name is
  also a key column is prefixed with ``value.``;
- per-CPU values (``values`` of shape ``(n, ncpu)``) are summed across CPUs by default
  (see :meth:`bpfnb.codec.plan.Codec.sum_columns`); with ``per_cpu=True`` every value
  column is repeated per CPU with a ``[cpuN]`` suffix: ``value[cpu0]``, ``value[cpu1]``...
  or ``count[cpu0]``... for struct values.

Roles and units
---------------
:func:`frame_roles` and :func:`frame_units` give the role and unit of every column of
the frame (see :mod:`bpfnb.codec.roles`), under the frame's column names. Key columns
identify rows, so a key column whose type says ``counter`` is an ``id`` there.

Example
-------
>>> kc = codec_for(spec.btf, spec.maps["counts"].key)        # doctest: +SKIP
>>> vc = codec_for(spec.btf, spec.maps["counts"].value)      # doctest: +SKIP
>>> keys = kc.from_buffer(key_bytes, n)                      # doctest: +SKIP
>>> values = vc.from_buffer(value_bytes, n)                  # doctest: +SKIP
>>> to_frame(kc, keys, vc, values).columns.tolist()          # doctest: +SKIP
['key', 'value']
>>> pcpu = vc.from_buffer(buf, n * ncpu, itemsize=8).reshape(n, ncpu)  # doctest: +SKIP
>>> to_frame(kc, keys, vc, pcpu, per_cpu=True).columns.tolist()         # doctest: +SKIP
['key', 'value[cpu0]', 'value[cpu1]']
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from bpfnb.codec.plan import Codec


def role_name(role: str, column: str) -> str:
    """Name a codec column for a role: ``""`` -> ``key``, ``"[0]"`` -> ``key[0]``."""
    if column == "":
        return role
    if column.startswith("["):
        return f"{role}{column}"
    return column


def _value_name(column: str, taken: set[str]) -> str:
    name = role_name("value", column)
    if name in taken:
        name = f"value.{column}"
    return name


def _frame_names(
    key_codec: Codec | None, value_codec: Codec | None
) -> tuple[dict[str, str], dict[str, str]]:
    """Frame column names of the key codec's and the value codec's columns."""
    keys = {c: role_name("key", c) for c in key_codec.column_names} if key_codec else {}
    taken = set(keys.values())
    values = {c: _value_name(c, taken) for c in value_codec.column_names} if value_codec else {}
    return keys, values


def _per_frame_column(
    key_info: dict[str, str],
    value_info: dict[str, str],
    key_codec: Codec | None,
    value_codec: Codec | None,
    ncpu: int,
    per_cpu: bool,
) -> dict[str, str]:
    key_names, value_names = _frame_names(key_codec, value_codec)
    out = {key_names[c]: v for c, v in key_info.items()}
    for c, v in value_info.items():
        if ncpu and per_cpu:
            for cpu in range(ncpu):
                out[f"{value_names[c]}[cpu{cpu}]"] = v
        else:
            out[value_names[c]] = v
    return out


def frame_roles(
    key_codec: Codec | None,
    value_codec: Codec | None,
    *,
    ncpu: int = 0,
    per_cpu: bool = False,
) -> dict[str, str]:
    """Frame column -> role, for the frame :func:`to_frame` builds from these codecs.

    Key columns that are ``counter`` by type are ``id`` here (keys are not summed).
    """
    key_roles = key_codec.column_roles if key_codec else {}
    key_roles = {c: "id" if r == "counter" else r for c, r in key_roles.items()}
    value_roles = value_codec.column_roles if value_codec else {}
    return _per_frame_column(key_roles, value_roles, key_codec, value_codec, ncpu, per_cpu)


def frame_units(
    key_codec: Codec | None,
    value_codec: Codec | None,
    *,
    ncpu: int = 0,
    per_cpu: bool = False,
) -> dict[str, str]:
    """Frame column -> unit (``ns``, ``us``, ``ms``, ``bytes``) for columns with a unit."""
    key_units = key_codec.units if key_codec else {}
    value_units = value_codec.units if value_codec else {}
    return _per_frame_column(key_units, value_units, key_codec, value_codec, ncpu, per_cpu)


def to_frame(
    key_codec: Codec | None,
    keys: np.ndarray | None,
    value_codec: Codec | None,
    values: np.ndarray | None,
    *,
    per_cpu: bool = False,
) -> pd.DataFrame:
    """Build the DataFrame of a map snapshot.

    Parameters
    ----------
    key_codec, keys : Codec and 1-D record array, or None
        Keys (None for value-only data such as ring buffer events).
    value_codec, values : Codec and record array, or None
        Values: 1-D, or 2-D ``(n, ncpu)`` for per-CPU maps (records may be padded to
        8-byte slots, see :meth:`Codec.padded_dtype`).
    per_cpu : bool
        For 2-D values: one column per CPU instead of the sum across CPUs.

    Returns
    -------
    pandas.DataFrame
        One row per record, columns named as described in the module docstring.
    """
    cols: dict[str, Any] = {}
    key_names, value_names = _frame_names(
        key_codec if keys is not None else None, value_codec if values is not None else None
    )
    if key_codec is not None and keys is not None:
        for name, col in key_codec.columns(keys).items():
            cols[key_names[name]] = col
    if value_codec is not None and values is not None:
        if values.ndim == 2:
            if per_cpu:
                for cpu in range(values.shape[1]):
                    for name, col in value_codec.columns(values[:, cpu]).items():
                        cols[f"{value_names[name]}[cpu{cpu}]"] = col
            else:
                for name, col in value_codec.sum_columns(values).items():
                    cols[value_names[name]] = col
        else:
            for name, col in value_codec.columns(values).items():
                cols[value_names[name]] = col
    if not cols:
        return pd.DataFrame()
    n = len(next(iter(cols.values())))
    # The columns are new arrays, or views of the caller's buffers, which every caller
    # hands over (fresh batch reads, copies of mappings and stores): no copy here.
    return pd.DataFrame(cols, index=pd.RangeIndex(n), copy=False)


def events_frame(value_codec: Codec, records: np.ndarray) -> pd.DataFrame:
    """DataFrame of events (ring buffer / perf records): the value columns only."""
    return to_frame(None, None, value_codec, records)


def empty_frame(
    key_codec: Codec | None, value_codec: Codec | None, *, ncpu: int = 0, per_cpu: bool = False
) -> pd.DataFrame:
    """The zero-row frame with the right columns (and dtypes) for an empty map."""
    keys = np.zeros(0, dtype=key_codec.dtype) if key_codec is not None else None
    values: np.ndarray | None = None
    if value_codec is not None:
        values = (
            np.zeros((0, ncpu), dtype=value_codec.dtype)
            if ncpu
            else np.zeros(0, dtype=value_codec.dtype)
        )
    return to_frame(key_codec, keys, value_codec, values, per_cpu=per_cpu)
