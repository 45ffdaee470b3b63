"""Views of libbpf-tools histograms: one ``slots`` array of counts per key.

A map of kind ``slots_histogram`` (see :func:`bpfnb.object.maptypes.slots_scheme`)
keeps ``struct hist { __u32 slots[N]; char comm[16]; }`` values: runqlat's per-process
run-queue latency, biolatency's per-disk I/O latency, cpudist's on-CPU time. Its view
is the keyed map it is (hash or array, per-CPU or not) whose :meth:`df` gives the
histogram frame of every key: the key columns, the value's other columns (``comm``),
then ``bucket``, ``low``, ``high``, ``count`` (see :func:`bpfnb.codec.histogram.slots_frame`).
``df(raw=True)`` gives the plain map.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from bpfnb.codec import histogram
from bpfnb.kernel import maps
from bpfnb.object import maptypes

__all__ = ["PerCpuSlotsHistogramMap", "SlotsHistogramMap"]

_ARRAY_TYPES = frozenset({maptypes.ARRAY, maptypes.PERCPU_ARRAY})


class SlotsHistogramMap(maps.HashMap):
    """A libbpf-tools histogram map: ``df()`` is one log2 histogram per key."""

    spec: Any

    def _counts(self, values: np.ndarray) -> np.ndarray:
        """The slot counts of every record, per-CPU values summed: ``(rows, slots)``."""
        names = values.dtype.names or ()
        if maptypes.SLOTS_MEMBER in names:
            counts = np.asarray(values[maptypes.SLOTS_MEMBER], dtype=np.uint64)
        else:  # short arrays are laid out as one field per element: slots[0], slots[1]...
            each = [n for n in names if n.startswith(f"{maptypes.SLOTS_MEMBER}[")]
            each.sort(key=lambda n: int(n[len(maptypes.SLOTS_MEMBER) + 1 : -1]))
            counts = np.stack([np.asarray(values[n], dtype=np.uint64) for n in each], axis=-1)
        if self.per_cpu:
            counts = counts.sum(axis=1, dtype=np.uint64)
        return counts.reshape(values.shape[0], -1)

    def df(self, per_cpu: bool = False, *, batch: bool = True, raw: bool = False) -> pd.DataFrame:
        """Return every key's histogram: key columns, text columns, ``bucket``, ``low``,
        ``high``, ``count``.

        Per key, empty slots before the first and after the last non-empty one are
        left out (keys with an empty histogram too). ``raw=True`` gives the plain map
        (a ``slots`` column of arrays).
        """
        keys, values = self.records(batch=batch)
        plain = self._frame(keys, values, per_cpu and self.per_cpu)
        if raw:
            return plain
        scheme = self.spec.histogram
        assert scheme is not None
        columns = plain.drop(columns=[c for c in plain.columns if c == "slots"])
        columns = columns[[c for c in columns.columns if not str(c).startswith("slots[")]]
        return histogram.slots_frame(scheme, columns, self._counts(values))

    # Arrays keep every index: their length and emptiness are an array's.
    def __len__(self) -> int:
        if self.spec.type in _ARRAY_TYPES:
            return int(self.spec.max_entries)
        return super().__len__()

    @property
    def full(self) -> bool:
        """Whether a new key finds no room (never for an array of histograms)."""
        return False if self.spec.type in _ARRAY_TYPES else super().full

    def clear(self) -> None:
        """Empty every histogram (an array's slots are zeroed, a hash's keys deleted)."""
        if self.spec.type not in _ARRAY_TYPES:
            super().clear()
            return
        maps.ArrayMap.clear(self)  # type: ignore[arg-type]


class PerCpuSlotsHistogramMap(maps._PerCpu, SlotsHistogramMap):
    """A per-CPU libbpf-tools histogram map (counts summed across CPUs)."""
