"""``BPF_MAP_TYPE_LPM_TRIE``: longest-prefix-match maps keyed by prefixes.

Keys read and write as prefixes (see :mod:`bpfnb.codec.lpm`): ``m["10.1.0.0/16"] =
v``, ``m["10.1.0.0/16"]``, ``del m["10.1.0.0/16"]``; iteration yields prefix texts and
``df()`` has a ``prefix`` column then the value columns. ``m.longest_match(addr)``
returns the value of the longest stored prefix containing ``addr`` (the kernel's own
lookup), and ``m.longest_prefix(addr)`` which prefix that is.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

from bpfnb.codec import frames
from bpfnb.codec.lpm import LpmKey
from bpfnb.errors import BpfKeyError
from bpfnb.kernel import bpf
from bpfnb.kernel.fd import OwnedFd
from bpfnb.kernel.maps import HashMap
from bpfnb.object.spec import MapSpec, ObjectSpec

PREFIX_COLUMN = "prefix"


class LpmTrieMap(HashMap):
    """An LPM trie: prefixes as keys, ``longest_match(address)``."""

    def __init__(self, fd: OwnedFd, spec: MapSpec, obj: ObjectSpec | None = None) -> None:
        super().__init__(fd, spec, obj)
        self.lpm = LpmKey.of_type(spec.key_size, spec.key)

    @property
    def key_columns(self) -> list[str]:
        """``["prefix"]``."""
        return [PREFIX_COLUMN]

    def _key_bytes(self, key: Any) -> bytes:
        return self.lpm.encode(key)

    def _decoded_keys(self, keys: np.ndarray) -> list[Any]:
        return [self.lpm.text(row.tobytes()) for row in keys]

    def _frame(self, keys: np.ndarray, values: np.ndarray, per_cpu: bool) -> pd.DataFrame:
        value_frame = frames.to_frame(
            None,
            None,
            self.value_codec,
            values if len(values) else np.zeros(1, values.dtype),
        )
        if not len(values):
            value_frame = value_frame.iloc[:0]
        rows = keys.reshape(len(keys), self.spec.key_size)
        texts = [self.lpm.text(k.tobytes()) for k in rows]
        value_frame.insert(0, PREFIX_COLUMN, pd.Series(texts, dtype=object))
        return value_frame.reset_index(drop=True)

    def _views(self, keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        v = (
            values.reshape(-1).view(self.value_codec.dtype)
            if len(keys)
            else np.empty(0, self.value_codec.dtype)
        )
        return keys.reshape(len(keys), self.spec.key_size), v

    def __iter__(self) -> Iterator[Any]:
        """Iterate over the stored prefixes (as text)."""
        return iter(self._decoded_keys(self.read_raw().keys))

    def longest_match(self, address: Any, default: Any = None) -> Any:
        """The value of the longest stored prefix holding ``address`` (``default`` if none)."""
        data = self.lpm.address_bytes(address)
        key = self.lpm.encode((self.lpm.max_prefixlen, data))
        with self._lock:
            try:
                raw = bpf.map_lookup(self.fd, key, self.value_bytes, what=f"map {self.name!r}")
            except BpfKeyError:
                return default
        return self._decode_value(raw)

    def longest_prefix(self, address: Any) -> str | None:
        """The longest stored prefix holding ``address`` (as text), None when none does."""
        data = self.lpm.address_bytes(address)
        best: tuple[int, str] | None = None
        for row in self.read_raw().keys:
            raw = row.tobytes()
            if self.lpm.matches(raw, data):
                length = self.lpm.split(raw)[0]
                if best is None or length > best[0]:
                    best = (length, self.lpm.text(raw))
        return best[1] if best else None


__all__ = ["LpmTrieMap"]
