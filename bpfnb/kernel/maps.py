"""Typed views of BPF maps: Python mappings and pandas DataFrames over an owned map fd.

:func:`bpfnb.kernel.views.map_for` picks the class from the map's kind
(``spec.kind``, see :mod:`bpfnb.object.maptypes`):

============================  ==========================
kind                          class
============================  ==========================
hash                          :class:`HashMap`
lru_hash                      :class:`LruHashMap`
array                         :class:`ArrayMap`
percpu_hash                   :class:`PerCpuHashMap`
percpu_array                  :class:`PerCpuArrayMap`
lru_percpu_hash               :class:`LruPerCpuHashMap`
histogram / percpu_histogram  :class:`HistogramMap` / :class:`PerCpuHistogramMap`
ringbuf / perf_event_array    event streams (:mod:`bpfnb.kernel.streams`)
the rest of the map zoo       see :mod:`bpfnb.kernel.views`
anything else                 :class:`Map` (read-only: ``df()``, iteration)
============================  ==========================

A map keyed or valued by stack ids gains ``stack`` and ``folded`` columns in ``df()``
and has ``folded()``, ``to_folded(path)`` and ``flamegraph()`` (see
:mod:`bpfnb.kernel.stackcols`).

Keys and values are decoded from the BTF the compiler wrote into the object
(:mod:`bpfnb.codec`): ``m[k]`` takes a key as an int (scalar keys), a tuple in field
order or a dict of fields (struct keys), and returns the value as an int, float, str,
bytes or a dict of fields. Iterating over a map with a struct key yields hashable named
tuples, which can be used as keys again. A key or value of the wrong shape raises
:class:`~bpfnb.errors.MapTypeError` naming the C type.

Per-CPU maps keep one value per possible CPU: ``m[k]`` returns a *list* with one
decoded value per CPU, ``m.sum(k)`` their sum, and ``m[k] = v`` sets every CPU to ``v``
(or CPU ``i`` to ``v[i]`` when ``v`` is a list with one value per CPU). ``df()`` sums
across CPUs; ``df(per_cpu=True)`` gives one column per CPU (``value[cpu0]``...).

Reads take one ``BPF_MAP_LOOKUP_BATCH`` pass into numpy buffers (a get-next-key walk on
kernels or map types without batch support). Each view has a lock, so a live widget
refreshing from another thread and a cell writing to the map do not interleave their
bpf(2) sequences. The fd is an :class:`~bpfnb.kernel.fd.OwnedFd` shared with the
program: once the program closes, every read raises :class:`~bpfnb.errors.ClosedError`.
"""

from __future__ import annotations

import contextlib
import threading
from collections import namedtuple
from collections.abc import ItemsView, Iterator, Mapping, MutableMapping, ValuesView
from pathlib import Path
from typing import Any, Self

import numpy as np
import pandas as pd

from bpfnb import outfile
from bpfnb.codec import frames, histogram, sql
from bpfnb.codec.history import RateHistory
from bpfnb.codec.plan import Codec, DecoderChoice, codec_for, raw_codec
from bpfnb.codec.values import is_int
from bpfnb.errors import (
    BpfInvalidError,
    BpfKeyError,
    BpfnbError,
    MapFullError,
    MapTypeError,
)
from bpfnb.kernel import bpf, cpus, drops, flamegraph_hook, live, stackcols
from bpfnb.kernel.bpf_abi import BPF_ANY
from bpfnb.kernel.drops import DropCounter
from bpfnb.kernel.fd import OwnedFd
from bpfnb.kernel.mmaparray import MmapArray
from bpfnb.object.spec import MapSpec, ObjectSpec

__all__ = [
    "ArrayIndexError",
    "ArrayMap",
    "HashMap",
    "HistogramMap",
    "LruHashMap",
    "LruPerCpuHashMap",
    "Map",
    "PerCpuArrayMap",
    "PerCpuHashMap",
    "PerCpuHistogramMap",
]


def _codec(obj: ObjectSpec | None, t: Any, size: int) -> Codec:
    """The codec of a key or value: from BTF when declared with a type, else raw bytes."""
    if t is None:
        return raw_codec(size)
    return codec_for(obj.btf if obj is not None else None, t, size)


def _hashable(value: Any) -> Any:
    """Turn a decoded key (dicts, lists) into a hashable value usable as a key again."""
    if isinstance(value, dict):
        cls = _tuple_class(tuple(value))
        return cls(*(_hashable(v) for v in value.values()))
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    return value


_TUPLE_CLASSES: dict[tuple[str, ...], type] = {}


def _tuple_class(fields: tuple[str, ...]) -> type:
    found = _TUPLE_CLASSES.get(fields)
    if found is not None:
        return found
    made: type = namedtuple("Key", fields, rename=True)  # type: ignore[misc]
    _TUPLE_CLASSES[fields] = made
    return made


class Map:
    """A BPF map over its fd, readable as a DataFrame.

    The base class serves map types without a dedicated view: ``df()``, ``len()`` and
    iteration work when the kernel can list the keys (get-next-key); writes raise.

    Parameters
    ----------
    fd : OwnedFd
        The map fd, shared with (and closed by) the program that owns the map.
    spec : MapSpec
        The map as declared in the object.
    obj : ObjectSpec, optional
        The object (for its BTF).

    Attributes
    ----------
    name : str
        The C name of the map.
    spec : MapSpec
        Its declaration.
    owner : Program or None
        The program the map belongs to (set by it).
    key_codec, value_codec : Codec
        How keys and values decode and encode.
    """

    writable = False

    def __init__(self, fd: OwnedFd, spec: MapSpec, obj: ObjectSpec | None = None) -> None:
        self._fd = fd
        self.spec = spec
        self.obj = obj
        self.name = spec.name
        self.owner: Any = None
        self._lock = threading.RLock()
        self.key_codec = _codec(obj, spec.key, spec.key_size)
        self.value_codec = _codec(obj, spec.value, spec.value_size)
        self.per_cpu = spec.per_cpu
        self.ncpus = cpus.possible_cpus() if self.per_cpu else 1
        self.slot = cpus.value_slot_size(spec.value_size) if self.per_cpu else spec.value_size
        self.value_bytes = cpus.value_buffer_size(self.per_cpu, spec.value_size)
        self.rate_history = RateHistory()

    # -- description --------------------------------------------------------------------

    @property
    def type_name(self) -> str:
        """The map type as the kernel names it (``hash``, ``percpu_array``...)."""
        return self.spec.type_name

    @property
    def kind(self) -> str:
        """The map's kind (see :mod:`bpfnb.object.maptypes`)."""
        return self.spec.kind

    @property
    def key_columns(self) -> list[str]:
        """The key columns of :meth:`df`."""
        return [frames.role_name("key", c) for c in self.key_codec.column_names]

    @property
    def max_entries(self) -> int:
        """The map's capacity."""
        return self.spec.max_entries

    # -- what the kernel refused ------------------------------------------------------

    _drops: DropCounter | None = None
    _map_id = 0

    def count_drops_with(self, counter: DropCounter | None) -> None:
        """Read :attr:`dropped` from ``counter`` (the program's ``bpfnb_drops``)."""
        self._drops = counter
        if counter is not None:
            self._map_id = bpf.map_info(self.fd).id

    @property
    def dropped(self) -> int:
        """Updates the programs could not store for lack of room, counted in the kernel.

        Every ``bpf_map_update_elem`` / ``bpf_map_push_elem`` of this map in the
        program's C that failed with ``-E2BIG`` (no free element: the map is full, or
        an array index is past ``max_entries``) or ``-ENOMEM`` (no memory for a new
        element). ``-EEXIST`` / ``-ENOENT`` from ``BPF_NOEXIST`` / ``BPF_EXIST`` are
        the program's own choice and are not counted. 0 for objects not compiled by
        bpfnb.
        """
        if self._drops is None:
            self._fd.get()  # a closed map still raises ClosedError
            return 0
        return self._drops.count(self._map_id, drops.FULL)

    @property
    def full(self) -> bool:
        """Whether the map holds ``max_entries`` keys, so a new key finds no room."""
        return self.max_entries > 0 and len(self) >= self.max_entries

    def history(self) -> pd.DataFrame:
        """Rates over time: the bounded history of this map's live view refreshes.

        Returns
        -------
        pandas.DataFrame
            Long form: ``time``, the key columns, the counter columns and their rates
            (``value/s``...), one row per key that changed at a refresh (see
            :class:`bpfnb.codec.history.RateHistory`). Empty until a live view
            (dashboard or ``live()``) has refreshed the map twice.
        """
        return self.rate_history.frame()

    def decode(
        self, choices: Mapping[str, DecoderChoice] | None = None, /, **columns: DecoderChoice
    ) -> Self:
        """Decode the given columns with the given decoders from now on; return the map.

        ``prog.conns.decode(saddr="ipv4", daddr_v6="ipv6")``. Columns are named as in
        :meth:`df`: key columns (``key``, struct key fields) choose the key's decoder,
        every other name (also ``value`` and ``value.FIELD``) the value's. Decoders:
        ``ipv4``, ``ipv6``, ``argv``, ``argv_str``, ``text``, ``binary``, ``syscall``,
        ``errno``, ``ktime``, ``ksym``, ``stackid``, ``open_flags``... or ``"plain"``
        (see :meth:`bpfnb.codec.plan.Codec.with_decoders`).

        Raises
        ------
        DecoderError
            For an unknown column or a decoder that does not fit its C type.
        """
        wanted = {**(choices or {}), **columns}
        key_names = set(self.key_columns) | {"key"}
        on_key = {n: c for n, c in wanted.items() if n in key_names}
        on_value = {n.removeprefix("value."): c for n, c in wanted.items() if n not in key_names}
        with self._lock:
            if on_key:
                self.key_codec = self.key_codec.with_decoders(on_key)
            if on_value:
                self.value_codec = self.value_codec.with_decoders(on_value)
        return self

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self.name!r}: {self.key_codec.c_name} -> "
            f"{self.value_codec.c_name}, max_entries={self.spec.max_entries}>"
        )

    # -- raw reads ----------------------------------------------------------------------

    def read_raw(self, *, batch: bool = True) -> bpf.Batch:
        """Read every record as raw bytes (one batch pass, or get-next-key + lookup).

        Parameters
        ----------
        batch : bool
            Use BPF_MAP_LOOKUP_BATCH (falling back when unsupported); False forces the
            get-next-key + lookup walk.

        Returns
        -------
        bpf.Batch
            ``keys`` (n, key_size) and ``values`` (n, value bytes) uint8 arrays.
        """
        with self._lock:
            if batch and self._batch_ok:
                out = bpf.map_lookup_batch(
                    self.fd,
                    self.spec.key_size,
                    self.value_bytes,
                    max(self.spec.max_entries, 1),
                    what=f"map {self.name!r}",
                )
                if not out.batched:
                    self._batch_ok = False
                return out
            return bpf.map_lookup_fallback(
                self.fd, self.spec.key_size, self.value_bytes, what=f"map {self.name!r}"
            )

    _batch_ok = True

    def records(self, *, batch: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Read every record as numpy structured arrays.

        Returns
        -------
        keys : numpy.ndarray
            1-D array of ``key_codec.dtype``.
        values : numpy.ndarray
            1-D array of ``value_codec.dtype``, or for per-CPU maps a 2-D array
            (rows, CPUs) of records padded to 8-byte slots.
        """
        raw = self.read_raw(batch=batch)
        return self._views(raw.keys, raw.values)

    def _views(self, keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = keys.shape[0]
        k = keys.reshape(-1).view(self.key_codec.dtype) if n else np.empty(0, self.key_codec.dtype)
        if self.per_cpu:
            dt = self.value_codec.padded_dtype(self.slot)
            v = (
                values.reshape(-1).view(dt).reshape(n, self.ncpus)
                if n
                else np.empty((0, self.ncpus), dt)
            )
        else:
            v = (
                values.reshape(-1).view(self.value_codec.dtype)
                if n
                else np.empty(0, self.value_codec.dtype)
            )
        return k, v

    # -- DataFrames ---------------------------------------------------------------------

    def df(self, per_cpu: bool = False, *, batch: bool = True) -> pd.DataFrame:
        """Return a snapshot of the map as a DataFrame.

        Parameters
        ----------
        per_cpu : bool
            For per-CPU maps: one column per CPU instead of the sum across CPUs.
        batch : bool
            Read with BPF_MAP_LOOKUP_BATCH (False: get-next-key + lookup).

        Returns
        -------
        pandas.DataFrame
            Key columns then value columns: ``key``/``value`` for scalars, C field names
            (nested joined by ``.``) for structs.
        """
        keys, values = self.records(batch=batch)
        return stackcols.with_stacks(self, self._frame(keys, values, per_cpu))

    def plain_df(self) -> pd.DataFrame:
        """:meth:`df` without the ``stack`` / ``folded`` columns stack ids add."""
        keys, values = self.records()
        return self._frame(keys, values, False)

    # -- stacks (maps keyed or valued by stack ids, see bpfnb.kernel.stackcols) ---------

    def folded(self) -> dict[str, int]:
        """Folded stack -> count, for maps holding stack ids (weights: the first value)."""
        return stackcols.folded_counts(self, self.df())

    def to_folded(self, path: str | Path) -> Path:
        """Write :meth:`folded` in Brendan Gregg's folded format; return the path."""
        out = Path(path)
        out.write_text(stackcols.format_folded(self.folded()))
        return out

    def flamegraph(self, title: str | None = None) -> Any:
        """An interactive flame graph (icicle) of :meth:`folded`: click zooms, hover names."""
        return flamegraph_hook.flamegraph(self, title=title)

    def _frame(self, keys: np.ndarray, values: np.ndarray, per_cpu: bool) -> pd.DataFrame:
        if keys.shape[0] == 0:
            # An empty map: decode one zero record for the columns and dtypes, keep none.
            k = np.zeros(1, dtype=keys.dtype)
            v = np.zeros((1, *values.shape[1:]), dtype=values.dtype)
            return self._frame(k, v, per_cpu).iloc[:0].reset_index(drop=True)
        return frames.to_frame(
            self.key_codec, keys, self.value_codec, values, per_cpu=per_cpu and self.per_cpu
        )

    def to_csv(self, path: str | Path, per_cpu: bool = False, *, overwrite: bool = False) -> Path:
        """Write :meth:`df` to a new CSV file and return its path.

        Raises
        ------
        OutputExistsError
            When ``path`` exists and ``overwrite`` is False (see :mod:`bpfnb.outfile`:
            a symbolic link is never written through).
        """
        data = self.df(per_cpu=per_cpu).to_csv(None, index=False).encode()
        return outfile.write_new(path, data, overwrite=overwrite)

    def live(self, interval: float | None = None) -> Any:
        """Show the map as a view that refreshes every ``interval`` seconds (ipywidgets)."""
        return live.live(self, interval)

    def sql(self, statement: str, per_cpu: bool = False) -> pd.DataFrame:
        """Query a snapshot of the map with DuckDB; the table is named like the map.

        ``prog.counts.sql("select key, value from counts order by value desc limit 5")``
        (see :func:`bpfnb.codec.sql.query`; raises ``SqlError``).
        """
        return sql.query(statement, {self.name: lambda: self.df(per_cpu=per_cpu)})

    @property
    def fd(self) -> int:
        """The map fd number; raises ClosedError once the program closed the map."""
        return self._fd.get()

    @property
    def closed(self) -> bool:
        """Whether the map's program closed it (its fd is no longer ours)."""
        return self._fd.closed

    # -- Python values ------------------------------------------------------------------

    def _key_bytes(self, key: Any) -> bytes:
        return self.key_codec.to_bytes(key, role="key")

    def _decode_value(self, raw: bytes) -> Any:
        if not self.per_cpu:
            return self.value_codec.to_python(raw)
        return [
            self.value_codec.to_python(raw[i * self.slot : i * self.slot + self.spec.value_size])
            for i in range(self.ncpus)
        ]

    def _lookup(self, key: Any) -> bytes:
        kb = self._key_bytes(key)
        with self._lock:
            try:
                return bpf.map_lookup(self.fd, kb, self.value_bytes, what=f"map {self.name!r}")
            except BpfKeyError:
                raise KeyError(key) from None

    def __getitem__(self, key: Any) -> Any:
        return self._decode_value(self._lookup(key))

    def get(self, key: Any, default: Any = None) -> Any:
        """Return ``self[key]``, or ``default`` when the key is not in the map."""
        try:
            return self[key]
        except KeyError:
            return default

    def __contains__(self, key: object) -> bool:
        try:
            self._lookup(key)
        except KeyError:
            return False
        return True

    def _decoded_keys(self, keys: np.ndarray) -> list[Any]:
        raw = keys.tobytes()
        size = self.spec.key_size
        return [
            _hashable(self.key_codec.to_python(raw[i * size : (i + 1) * size]))
            for i in range(keys.shape[0])
        ]

    def _decoded_items(self) -> list[tuple[Any, Any]]:
        raw = self.read_raw()
        keys = self._decoded_keys(raw.keys)
        vals = raw.values.tobytes()
        vb = self.value_bytes
        return [(k, self._decode_value(vals[i * vb : (i + 1) * vb])) for i, k in enumerate(keys)]

    def __iter__(self) -> Iterator[Any]:
        """Iterate over the keys of a snapshot (named tuples for struct keys)."""
        raw = self.read_raw()
        return iter(self._decoded_keys(raw.keys))

    def __len__(self) -> int:
        """The number of keys in the map now."""
        return len(self.read_raw())

    def items(self) -> ItemsView[Any, Any]:
        """A view of ``(key, value)`` pairs, read in one batch pass per iteration."""
        return _SnapshotItems(self)

    def values(self) -> ValuesView[Any]:
        """A view of the values, read in one batch pass per iteration."""
        return _SnapshotValues(self)

    def __setitem__(self, key: Any, value: Any) -> None:
        raise BpfnbError(f"map {self.name!r} ({self.type_name}) is read-only in bpfnb")

    def __delitem__(self, key: Any) -> None:
        raise BpfnbError(f"map {self.name!r} ({self.type_name}) is read-only in bpfnb")


class _WritableMap(Map, MutableMapping[Any, Any]):
    """A map whose keys and values can be set and deleted from Python."""

    writable = True

    def _value_bytes(self, value: Any) -> bytes:
        codec = self.value_codec
        if not self.per_cpu:
            return codec.to_bytes(value, role="value")
        elem_is_array = codec.c_name.endswith("]")
        if (
            isinstance(value, list)
            and len(value) == self.ncpus
            and (not elem_is_array or all(isinstance(v, (list, tuple, str, bytes)) for v in value))
        ):
            parts = [codec.to_bytes(v, role="value") for v in value]
        elif isinstance(value, list) and not elem_is_array:
            raise MapTypeError(
                f"map {self.name!r} is per-CPU: give one value for all {self.ncpus} possible "
                f"CPUs or a list of exactly {self.ncpus} (one per CPU), got a list of "
                f"{len(value)}"
            )
        else:
            parts = [codec.to_bytes(value, role="value")] * self.ncpus
        pad = b"\0" * (self.slot - self.spec.value_size)
        return b"".join(p + pad for p in parts)

    def __setitem__(self, key: Any, value: Any) -> None:
        kb = self._key_bytes(key)
        vb = self._value_bytes(value)
        with self._lock:
            bpf.map_update(self.fd, kb, vb, BPF_ANY, what=f"map {self.name!r}")

    def __delitem__(self, key: Any) -> None:
        kb = self._key_bytes(key)
        with self._lock:
            try:
                bpf.map_delete(self.fd, kb, what=f"map {self.name!r}")
            except BpfKeyError:
                raise KeyError(key) from None

    def clear(self) -> None:
        """Delete every key (one batch delete; key by key where batch is unsupported)."""
        with self._lock:
            raw = self.read_raw()
            if not len(raw):
                return
            try:
                bpf.map_delete_batch(self.fd, raw.keys, what=f"map {self.name!r}")
            except (BpfInvalidError, BpfKeyError):
                for row in raw.keys:
                    with contextlib.suppress(BpfKeyError):
                        bpf.map_delete(self.fd, row.tobytes(), what=f"map {self.name!r}")

    def update_records(self, keys: np.ndarray, values: np.ndarray) -> int:
        """Write many raw records at once (BPF_MAP_UPDATE_BATCH); return the count.

        ``keys`` and ``values`` are arrays with one record per row whose rows have the
        map's key size and value size (all CPU slots for per-CPU maps).
        """
        k = np.ascontiguousarray(keys).view(np.uint8).reshape(len(keys), -1)
        v = np.ascontiguousarray(values).view(np.uint8).reshape(len(values), -1)
        if k.shape[1] != self.spec.key_size or v.shape[1] != self.value_bytes:
            raise MapTypeError(
                f"map {self.name!r}: records must be {self.spec.key_size}-byte keys and "
                f"{self.value_bytes}-byte values, got {k.shape[1]} and {v.shape[1]}"
            )
        with self._lock:
            return bpf.map_update_batch(self.fd, k, v, what=f"map {self.name!r}")


class _SnapshotItems(ItemsView[Any, Any]):
    """``items()`` of a map: each iteration reads the whole map in one pass."""

    _mapping: Map

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        return iter(self._mapping._decoded_items())


class _SnapshotValues(ValuesView[Any]):
    """``values()`` of a map: each iteration reads the whole map in one pass."""

    _mapping: Map

    def __iter__(self) -> Iterator[Any]:
        return iter(v for _, v in self._mapping._decoded_items())


class HashMap(_WritableMap):
    """``BPF_MAP_TYPE_HASH``: keys come and go; ``len()`` counts the keys present."""


class LruHashMap(HashMap):
    """``BPF_MAP_TYPE_LRU_HASH``: at capacity, inserting evicts the least recently used key."""


class ArrayIndexError(BpfnbError, IndexError):
    """An array map index outside ``0..max_entries-1``."""


class ArrayMap(_WritableMap):
    """``BPF_MAP_TYPE_ARRAY``: keys are the indexes ``0..max_entries-1``, always present.

    ``m[i] = v`` with ``i`` out of range raises :class:`ArrayIndexError`; ``m[i]``
    raises :class:`KeyError`. ``del m[i]`` and ``clear()`` set elements to zero (array
    elements cannot be removed); ``len()`` is ``max_entries``.

    Arrays created ``BPF_F_MMAPABLE`` (bpfnb's default for plain arrays and histograms,
    see :mod:`bpfnb.kernel.mmaparray`) are read and written through a shared mapping:
    ``df()`` is a memory copy plus decoding, ``m[i]`` and ``m[i] = v`` touch memory
    only (:attr:`mmapped`). ``df(batch=False)`` still walks the map with bpf(2).
    """

    _mmap: MmapArray | None = None

    def __init__(self, fd: OwnedFd, spec: MapSpec, obj: ObjectSpec | None = None) -> None:
        super().__init__(fd, spec, obj)
        if not self.per_cpu and spec.max_entries > 0 and spec.key_size == 4:
            with contextlib.suppress(OSError, BpfnbError):
                if MmapArray.flags_say_mmapable(bpf.map_info(fd.get()).flags):
                    self._mmap = MmapArray(fd, spec.max_entries, spec.value_size)

    @property
    def mmapped(self) -> bool:
        """Whether the values are read and written through the shared mapping."""
        return self._mmap is not None

    def _index(self, key: Any) -> int:
        return int.from_bytes(self._key_bytes(key), "little")

    def _outside(self, key: Any) -> bool:
        """An int index outside ``0..max_entries-1`` (a negative one too: not "not a u32")."""
        return is_int(key) and not 0 <= int(key) < self.spec.max_entries

    def read_raw(self, *, batch: bool = True) -> bpf.Batch:
        """Every record as raw bytes: a copy of the mapping for mmapped arrays."""
        mapped = self._mmap
        if mapped is None or not batch:
            return super().read_raw(batch=batch)
        values = mapped.values()
        n = self.spec.max_entries
        keys = np.arange(n, dtype="<u4").view(np.uint8).reshape(n, 4)  # the frame owns it
        return bpf.Batch(keys, values, batched=True, calls=0, method="mmap")

    def _lookup(self, key: Any) -> bytes:
        if self._outside(key):
            raise KeyError(key)
        mapped = self._mmap
        if mapped is None:
            return super()._lookup(key)
        index = self._index(key)
        if not 0 <= index < self.spec.max_entries:
            raise KeyError(key)
        return mapped.read(index)

    def __setitem__(self, key: Any, value: Any) -> None:
        if self._outside(key):
            raise ArrayIndexError(
                f"array map {self.name!r} has indexes 0..{self.spec.max_entries - 1}, got {key!r}"
            )
        mapped = self._mmap
        if mapped is not None:
            index = self._index(key)
            if not 0 <= index < self.spec.max_entries:
                raise ArrayIndexError(
                    f"array map {self.name!r} has indexes 0..{self.spec.max_entries - 1}, "
                    f"got {key!r}"
                )
            mapped.write(index, self._value_bytes(value))
            return
        try:
            super().__setitem__(key, value)
        except MapFullError:
            raise ArrayIndexError(
                f"array map {self.name!r} has indexes 0..{self.spec.max_entries - 1}, got {key!r}"
            ) from None

    def __len__(self) -> int:
        return self.spec.max_entries

    @property
    def full(self) -> bool:
        """Always False: an array's indexes are fixed, it never runs out of keys."""
        return False

    def __delitem__(self, key: Any) -> None:
        if key not in self:
            raise KeyError(key)
        if self._mmap is not None:
            self._mmap.zero(self._index(key))
            return
        kb = self._key_bytes(key)
        with self._lock:
            bpf.map_update(self.fd, kb, bytes(self.value_bytes), what=f"map {self.name!r}")

    def clear(self) -> None:
        """Set every element to zero."""
        n = self.spec.max_entries
        if n == 0:
            return
        if self._mmap is not None:
            self._mmap.zero()
            return
        keys = np.arange(n, dtype=np.uint32).view(np.uint8).reshape(n, 4)
        if self.spec.key_size != 4:
            raise MapTypeError(f"array map {self.name!r} has a {self.spec.key_size}-byte key")
        with self._lock:
            bpf.map_update_batch(
                self.fd, keys, np.zeros((n, self.value_bytes), np.uint8), what=f"map {self.name!r}"
            )


class _PerCpu:
    """Mixin of the per-CPU maps."""

    def sum(self, key: Any) -> Any:
        """Return the value of ``key`` summed across CPUs (a dict of fields for structs)."""
        m: Map = self  # type: ignore[assignment]
        raw = m._lookup(key)
        arr = np.frombuffer(raw, dtype=m.value_codec.padded_dtype(m.slot)).reshape(1, m.ncpus)
        cols = m.value_codec.sum_columns(arr)
        out = {name: _scalar(col) for name, col in cols.items()}
        if m.value_codec.scalar:
            return out[""]
        return out


def _scalar(col: Any) -> Any:
    v = col[0]
    return v.item() if isinstance(v, np.generic) else v


class PerCpuHashMap(_PerCpu, HashMap):
    """``BPF_MAP_TYPE_PERCPU_HASH``: ``m[k]`` is a list with one value per possible CPU."""


class LruPerCpuHashMap(_PerCpu, LruHashMap):
    """``BPF_MAP_TYPE_LRU_PERCPU_HASH``: per-CPU values, least recently used keys evicted."""


class PerCpuArrayMap(_PerCpu, ArrayMap):
    """``BPF_MAP_TYPE_PERCPU_ARRAY``: ``m[i]`` is a list with one value per possible CPU."""


class _Histogram:
    """Mixin for ``hist.h`` histograms: ``df()`` gives bucket ranges and counts."""

    spec: MapSpec

    def df(self, per_cpu: bool = False, *, batch: bool = True, raw: bool = False) -> pd.DataFrame:
        """Return the histogram: ``bucket`` label, ``low``, ``high`` and ``count``.

        Empty buckets before the first and after the last non-empty one are left
        out; ``raw=True`` gives the array itself (``key``/``value``).
        """
        frame: pd.DataFrame = super().df(per_cpu=per_cpu, batch=batch)  # type: ignore[misc]
        return frame if raw else histogram.histogram_frame(self.spec, frame)


class HistogramMap(_Histogram, ArrayMap):
    """A log2 or linear histogram declared with ``BPFNB_HIST`` / ``BPFNB_LINEAR_HIST``."""


class PerCpuHistogramMap(_Histogram, PerCpuArrayMap):
    """A per-CPU histogram (``BPFNB_PERCPU_HIST`` / ``BPFNB_PERCPU_LINEAR_HIST``)."""
