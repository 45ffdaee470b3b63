"""Maps without keys: queues and stacks (push / pop / peek) and bloom filters.

``BPF_MAP_TYPE_QUEUE`` (first in, first out) and ``BPF_MAP_TYPE_STACK`` (last in,
first out) hold values only:

- ``q.push(v)`` adds a value (``overwrite=True`` drops the oldest when full), ``q.pop()``
  removes and returns the next one, ``q.peek()`` returns it and leaves it;
- ``q.drain()`` pops everything and returns it as a DataFrame (``position`` 0 is what
  popped first): the explicit way to empty the map;
- ``q.df()`` and ``len(q)`` never drain: the kernel cannot list a queue without
  popping, so they pop every value and push them back in the same order, holding the
  view's lock. A BPF program pushing or popping during those few microseconds can
  interleave with it.

``BPF_MAP_TYPE_BLOOM_FILTER`` holds hashes of values: ``x in bf`` tests a value
(False: certainly absent; True: present, or a false positive), ``bf.add(x)`` adds
one. It cannot be listed, so ``df()``, ``len()`` and iteration raise
:class:`~bpfnb.errors.UnsupportedOperationError` saying so.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

from bpfnb.codec import frames
from bpfnb.errors import BpfnbError, MapFullError, UnsupportedOperationError
from bpfnb.kernel import bpf_extra
from bpfnb.kernel.bpf_abi import BPF_ANY, BPF_EXIST
from bpfnb.kernel.maps import Map

_MISSING: Any = object()
POSITION_COLUMN = "position"


class QueueEmptyError(BpfnbError, IndexError):
    """``pop()`` or ``peek()`` of an empty queue or stack."""


class _Keyless(Map):
    """Maps whose elements are values only (no keys)."""

    @property
    def key_columns(self) -> list[str]:
        """No key columns."""
        return []

    def _value(self, value: Any) -> bytes:
        return self.value_codec.to_bytes(value, role="value")

    def __getitem__(self, key: Any) -> Any:
        raise UnsupportedOperationError(self._no_keys())

    def __setitem__(self, key: Any, value: Any) -> None:
        raise UnsupportedOperationError(self._no_keys())

    def __delitem__(self, key: Any) -> None:
        raise UnsupportedOperationError(self._no_keys())

    def _no_keys(self) -> str:
        return f"map {self.name!r} ({self.type_name}) has no keys: {self._supports}"

    _supports = ""


class QueueMap(_Keyless):
    """``BPF_MAP_TYPE_QUEUE``: values come out in the order they went in."""

    _supports = "use push(), pop(), peek(), drain(), df() and len()"
    #: Whether values come out last-in first.
    lifo = False

    @property
    def key_columns(self) -> list[str]:
        """``["position"]``: where each value is in pop order (0 comes out next)."""
        return [POSITION_COLUMN]

    def push(self, value: Any, *, overwrite: bool = False) -> None:
        """Add ``value``; when the map is full, drop the oldest (``overwrite``) or raise.

        Raises
        ------
        MapFullError
            The map holds ``max_entries`` values and ``overwrite`` is False.
        """
        raw = self._value(value)
        with self._lock:
            bpf_extra.map_push(
                self.fd, raw, BPF_EXIST if overwrite else BPF_ANY, what=f"map {self.name!r}"
            )

    def pop(self, default: Any = _MISSING) -> Any:
        """Remove and return the next value (``default`` when empty, if given).

        Raises
        ------
        QueueEmptyError
            The map is empty and no default was given.
        """
        with self._lock:
            raw = bpf_extra.map_pop(self.fd, self.spec.value_size, what=f"map {self.name!r}")
        if raw is None:
            if default is _MISSING:
                raise QueueEmptyError(f"{self.type_name} map {self.name!r} is empty")
            return default
        return self.value_codec.to_python(raw)

    def peek(self, default: Any = _MISSING) -> Any:
        """Return the next value without removing it (``default`` when empty, if given)."""
        with self._lock:
            raw = bpf_extra.map_peek(self.fd, self.spec.value_size, what=f"map {self.name!r}")
        if raw is None:
            if default is _MISSING:
                raise QueueEmptyError(f"{self.type_name} map {self.name!r} is empty")
            return default
        return self.value_codec.to_python(raw)

    # -- whole contents ----------------------------------------------------------------

    def _pop_all(self) -> list[bytes]:
        out: list[bytes] = []
        while True:
            raw = bpf_extra.map_pop(self.fd, self.spec.value_size, what=f"map {self.name!r}")
            if raw is None:
                return out
            out.append(raw)

    def _snapshot(self) -> list[bytes]:
        """Every value in pop order, pushed back so the map is left as it was."""
        with self._lock:
            items = self._pop_all()
            lost: list[bytes] = []
            for raw in reversed(items) if self.lifo else items:
                try:
                    bpf_extra.map_push(self.fd, raw, BPF_ANY, what=f"map {self.name!r}")
                except MapFullError:
                    lost.append(raw)  # a BPF program pushed meanwhile and filled it
        if lost:
            raise BpfnbError(
                f"map {self.name!r}: {len(lost)} value(s) could not be pushed back while "
                "reading it (a BPF program filled the map meanwhile): "
                + ", ".join(repr(self.value_codec.to_python(r)) for r in lost[:5])
            )
        return items

    def _frame_of(self, items: list[bytes]) -> pd.DataFrame:
        size = self.spec.value_size
        buf = np.frombuffer(b"".join(items) or bytes(size), dtype=self.value_codec.dtype)
        frame = frames.to_frame(None, None, self.value_codec, buf)
        if not items:
            frame = frame.iloc[:0]
        frame.insert(0, POSITION_COLUMN, np.arange(len(items), dtype=np.int64))
        return frame.reset_index(drop=True)

    def drain(self) -> pd.DataFrame:
        """Pop every value; return them as a DataFrame (``position`` 0 popped first)."""
        with self._lock:
            items = self._pop_all()
        return self._frame_of(items)

    def df(self, per_cpu: bool = False, *, batch: bool = True) -> pd.DataFrame:
        """The values in pop order (``position`` 0 comes out next); the map is left as is."""
        return self._frame_of(self._snapshot())

    def values_list(self) -> list[Any]:
        """The values in pop order as Python values; the map is left as is."""
        return [self.value_codec.to_python(r) for r in self._snapshot()]

    def __len__(self) -> int:
        """The number of values (read by popping and pushing back)."""
        return len(self._snapshot())

    def __iter__(self) -> Iterator[Any]:
        """Iterate over a snapshot of the values in pop order (the map is left as is)."""
        return iter(self.values_list())

    def __contains__(self, value: object) -> bool:
        return value in self.values_list()

    def clear(self) -> None:
        """Pop and drop every value."""
        with self._lock:
            self._pop_all()


class StackMap(QueueMap):
    """``BPF_MAP_TYPE_STACK``: the value pushed last comes out first."""

    lifo = True


class BloomFilterMap(_Keyless):
    """``BPF_MAP_TYPE_BLOOM_FILTER``: ``x in bf`` and ``bf.add(x)``; it cannot be listed."""

    _supports = "test values with `x in bf` and add them with bf.add(x)"

    @property
    def hashes(self) -> int:
        """The number of hash functions (``map_extra``; the kernel's default is 5)."""
        return self.spec.map_extra or 5

    def add(self, value: Any) -> None:
        """Add ``value`` to the filter."""
        raw = self._value(value)
        with self._lock:
            bpf_extra.bloom_add(self.fd, raw, what=f"map {self.name!r}")

    def __contains__(self, value: object) -> bool:
        """False when ``value`` was certainly never added; True when it may have been."""
        raw = self._value(value)
        with self._lock:
            return bpf_extra.bloom_contains(self.fd, raw, what=f"map {self.name!r}")

    def _unlistable(self) -> UnsupportedOperationError:
        return UnsupportedOperationError(
            f"bloom filter {self.name!r} cannot be listed: it keeps {self.hashes} hash bits "
            "per value, not the values; test values with `x in bf`"
        )

    def df(self, per_cpu: bool = False, *, batch: bool = True) -> pd.DataFrame:
        """Refused: a bloom filter cannot be listed."""
        raise self._unlistable()

    def __len__(self) -> int:
        raise self._unlistable()

    def __iter__(self) -> Iterator[Any]:
        raise self._unlistable()


__all__ = ["BloomFilterMap", "QueueEmptyError", "QueueMap", "StackMap"]
