"""Why the kernel refused to create a map, read from its declaration, and where it is.

When map creation fails with a bare ``-EINVAL``, :func:`refusal_cause` names the
declaration's mistake (no key, no value, an array key that is not a 4-byte index, an
unknown type number, a map of maps without its inner map) and
:func:`declaration_line` finds the cell line that declares the map, for quoting.
"""

from __future__ import annotations

import re

from bpfnb.object import maptypes
from bpfnb.object.spec import MapSpec

#: Kinds indexed by a u32 (their key must be exactly 4 bytes).
_INDEXED = frozenset(
    {"array", "percpu_array", "prog_array", "perf_event_array", "array_of_maps", "cgroup_array"}
    | {"histogram", "percpu_histogram"}
)
#: Kinds keyed by bytes the program chooses (a key is needed).
_KEYED = frozenset({"hash", "lru_hash", "percpu_hash", "lru_percpu_hash", "lpm_trie"})
_KEYED = _KEYED | {"hash_of_maps", "slots_histogram", "percpu_slots_histogram"}


def refusal_cause(spec: MapSpec) -> str | None:
    """The declaration's mistake that makes the kernel refuse ``spec``, or None."""
    if spec.type not in maptypes.MAP_TYPES:
        return (
            f"has map type {spec.type}, which is not a map type bpfnb or this kernel knows "
            "(use a BPF_MAP_TYPE_* name)"
        )
    kind = spec.kind
    if kind in _INDEXED and spec.key_size != 4:
        if spec.key_size == 0:
            return "has no key (key size 0): an array's key is a 4-byte index (u32)"
        return f"has a key of {spec.key_size} bytes: an array's key is a 4-byte index (u32)"
    if kind in _KEYED and spec.key_size == 0:
        return "has no key (key size 0): add __type(key, ...)"
    if maptypes.is_map_in_map(kind) and spec.inner is None:
        return "needs its inner map: declare the values with __array(values, struct {...})"
    if (kind in _KEYED or kind in _INDEXED) and spec.value_size == 0:
        return "has no value (value size 0): add __type(value, ...)"
    return None


def declaration_line(source: str, name: str) -> int | None:
    """The 1-based line of ``source`` that declares map ``name`` (its ``SEC`` line)."""
    word = re.compile(rf"\b{re.escape(name)}\b")
    for number, text in enumerate(source.splitlines(), 1):
        if "SEC" in text and ("maps" in text) and word.search(text):
            return number
    return None


__all__ = ["declaration_line", "refusal_cause"]
