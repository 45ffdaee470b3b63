"""The one table of BPF map types, and the *kind* every dispatch in bpfnb reads.

Pure: no kernel. ``enum bpf_map_type`` (include/uapi/linux/bpf.h) is written here
once, with what bpfnb needs to know about each type. :func:`kind_of` turns a map's
type and key type into its *kind*: the kernel's name for the type (``"hash"``,
``"percpu_array"``...), except that arrays keyed by a ``bpfnb/hist.h`` bucket typedef
are ``"histogram"`` / ``"percpu_histogram"``. :class:`bpfnb.object.spec.MapSpec`
computes the kind once; the map views, the program, the widgets and the dashboard all
read ``spec.kind`` and the predicates below, never the raw type number.

The histogram bucket scheme (:class:`HistogramScheme`) is read from the key's typedef
names here too, because it decides the kind:

* ``bpfnb_log2_bucket_t``: 65 log2 slots;
* a typedef ``bpfnb_lhist__MIN_MAX_STEP`` of ``bpfnb_linear_bucket_t``: linear slots.

libbpf-tools keep their histograms the other way round: the *value* is a struct whose
``slots`` member is an array of ``u32``/``u64`` counts (``struct hist { __u32
slots[26]; char comm[16]; }``), one histogram per key. A map whose value is such a
struct (a ``slots`` array and nothing else but text fields) has the kind
``slots_histogram`` (``percpu_slots_histogram`` for per-CPU maps), scheme
``log2_slots``: slot 0 counts values 0 and 1, slot ``k`` the values ``[2**k,
2**(k+1))``, the last slot everything above (what ``log2l()`` of ``bits.bpf.h`` and
the tools' ``MAX_SLOTS`` clamp compute).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from bpfnb.errors import BtfError
from bpfnb.object import btf


@dataclass(frozen=True)
class MapType:
    """What bpfnb knows about one ``enum bpf_map_type`` value.

    Attributes
    ----------
    id : int
        The enum value.
    name : str
        The kernel's name (``BPF_MAP_TYPE_`` stripped, lower case), as bpftool prints it.
    per_cpu : bool
        Values hold one slot per possible CPU.
    listable : bool
        Keys can be listed with get-next-key / batch lookups.
    """

    id: int
    name: str
    per_cpu: bool = False
    listable: bool = True


_TYPES = (
    MapType(0, "unspec", listable=False),
    MapType(1, "hash"),
    MapType(2, "array"),
    MapType(3, "prog_array"),
    MapType(4, "perf_event_array"),
    MapType(5, "percpu_hash", per_cpu=True),
    MapType(6, "percpu_array", per_cpu=True),
    MapType(7, "stack_trace"),
    MapType(8, "cgroup_array"),
    MapType(9, "lru_hash"),
    MapType(10, "lru_percpu_hash", per_cpu=True),
    MapType(11, "lpm_trie"),
    MapType(12, "array_of_maps"),
    MapType(13, "hash_of_maps"),
    MapType(14, "devmap"),
    MapType(15, "sockmap"),
    MapType(16, "cpumap"),
    MapType(17, "xskmap"),
    MapType(18, "sockhash"),
    MapType(19, "cgroup_storage"),
    MapType(20, "reuseport_sockarray"),
    MapType(21, "percpu_cgroup_storage", per_cpu=True),
    MapType(22, "queue", listable=False),
    MapType(23, "stack", listable=False),
    MapType(24, "sk_storage", listable=False),
    MapType(25, "devmap_hash"),
    MapType(26, "struct_ops", listable=False),
    MapType(27, "ringbuf", listable=False),
    MapType(28, "inode_storage", listable=False),
    MapType(29, "task_storage", listable=False),
    MapType(30, "bloom_filter", listable=False),
    MapType(31, "user_ringbuf", listable=False),
    MapType(32, "cgrp_storage", listable=False),
    MapType(33, "arena", listable=False),
)

#: Every known map type by enum value.
MAP_TYPES: dict[int, MapType] = {t.id: t for t in _TYPES}
#: Enum value by kernel name (``"hash"`` -> 1).
MAP_TYPE_IDS: dict[str, int] = {t.name: t.id for t in _TYPES}

HASH = MAP_TYPE_IDS["hash"]
ARRAY = MAP_TYPE_IDS["array"]
PERF_EVENT_ARRAY = MAP_TYPE_IDS["perf_event_array"]
PERCPU_HASH = MAP_TYPE_IDS["percpu_hash"]
PERCPU_ARRAY = MAP_TYPE_IDS["percpu_array"]
LRU_HASH = MAP_TYPE_IDS["lru_hash"]
LRU_PERCPU_HASH = MAP_TYPE_IDS["lru_percpu_hash"]
RINGBUF = MAP_TYPE_IDS["ringbuf"]

#: Kinds whose keys and values are set and deleted from Python.
WRITABLE_KINDS = frozenset(
    {"hash", "lru_hash", "array", "percpu_hash", "percpu_array", "lru_percpu_hash"}
    | {"histogram", "percpu_histogram", "slots_histogram", "percpu_slots_histogram"}
    | {"lpm_trie", "array_of_maps", "hash_of_maps", "prog_array", "cgroup_array"}
    | {"task_storage", "inode_storage", "sk_storage", "cgrp_storage"}
)
#: Kinds that stream events to a consumer instead of holding keys.
EVENT_STREAM_KINDS = frozenset({"ringbuf", "perf_event_array"})
#: Kinds shown as histograms.
HISTOGRAM_KINDS = frozenset(
    {"histogram", "percpu_histogram", "slots_histogram", "percpu_slots_histogram"}
)
#: Histogram kinds with one histogram per key (a ``slots`` array in each value).
SLOTS_HISTOGRAM_KINDS = frozenset({"slots_histogram", "percpu_slots_histogram"})


def type_name(map_type: int) -> str:
    """The kernel's name of a map type (``"percpu_hash"``), ``"typeN"`` when unknown."""
    known = MAP_TYPES.get(map_type)
    return known.name if known is not None else f"type{map_type}"


def is_per_cpu(kind: str) -> bool:
    """Whether maps of this kind keep one value per possible CPU."""
    if kind in ("percpu_histogram", "percpu_slots_histogram"):
        return True
    known = MAP_TYPE_IDS.get(kind)
    return known is not None and MAP_TYPES[known].per_cpu


def is_event_stream(kind: str) -> bool:
    """Whether maps of this kind are event streams (ring buffer, perf event array)."""
    return kind in EVENT_STREAM_KINDS


def is_histogram(kind: str) -> bool:
    """Whether maps of this kind are histograms (``hist.h`` or libbpf-tools' ``slots``)."""
    return kind in HISTOGRAM_KINDS


def is_slots_histogram(kind: str) -> bool:
    """Whether maps of this kind hold one ``slots`` histogram per key."""
    return kind in SLOTS_HISTOGRAM_KINDS


def is_writable(kind: str) -> bool:
    """Whether bpfnb writes keys and values of this kind from Python."""
    return kind in WRITABLE_KINDS


# --------------------------------------------------------------------------------------
# The rest of the map zoo: stack traces, queues, tries, map-in-map, object storage
# --------------------------------------------------------------------------------------

#: Kinds shown as flame graphs (stack ids -> frames).
STACK_TRACE_KINDS = frozenset({"stack_trace"})
#: FIFO / LIFO maps without keys: push, pop, peek.
QUEUE_KINDS = frozenset({"queue", "stack"})
#: Maps whose values are other maps.
MAP_IN_MAP_KINDS = frozenset({"array_of_maps", "hash_of_maps"})
#: Storage attached to kernel objects (a task, an inode, a socket, a cgroup).
STORAGE_KINDS = frozenset({"task_storage", "inode_storage", "sk_storage", "cgrp_storage"})
#: Kinds whose elements cannot be listed at all: shown as a summary, never as rows.
UNLISTABLE_KINDS = frozenset({"bloom_filter", "user_ringbuf"})
#: Kinds bpfnb has a view for; the others get the read-only ``Map`` (and a summary).
VIEWED_KINDS = (
    frozenset({"hash", "lru_hash", "array", "percpu_hash", "percpu_array", "lru_percpu_hash"})
    | HISTOGRAM_KINDS
    | EVENT_STREAM_KINDS
    | STACK_TRACE_KINDS
    | QUEUE_KINDS
    | MAP_IN_MAP_KINDS
    | STORAGE_KINDS
    | UNLISTABLE_KINDS
    | {"lpm_trie", "prog_array", "cgroup_array"}
)

#: ``__uint(pinning, LIBBPF_PIN_BY_NAME)``.
PIN_BY_NAME = 1
#: ``map_flags`` of stack trace maps that store build ids instead of addresses.
BPF_F_STACK_BUILD_ID = 1 << 5


def is_stack_trace(kind: str) -> bool:
    """Whether maps of this kind hold stack traces (shown as flame graphs)."""
    return kind in STACK_TRACE_KINDS


def is_queue(kind: str) -> bool:
    """Whether maps of this kind are queues or stacks (push / pop / peek)."""
    return kind in QUEUE_KINDS


def is_map_in_map(kind: str) -> bool:
    """Whether the values of maps of this kind are other maps."""
    return kind in MAP_IN_MAP_KINDS


def is_object_storage(kind: str) -> bool:
    """Whether maps of this kind are task / inode / socket / cgroup storage."""
    return kind in STORAGE_KINDS


def is_listable(kind: str) -> bool:
    """Whether bpfnb can show the elements of maps of this kind as rows.

    Bloom filters and user ring buffers cannot be listed; kinds without a bpfnb view
    (device maps, socket maps, struct_ops, arenas...) are not listed either.
    """
    return kind in VIEWED_KINDS and kind not in UNLISTABLE_KINDS


# --------------------------------------------------------------------------------------
# Histograms (bpfnb/hist.h): the bucket scheme is named by the key's typedef
# --------------------------------------------------------------------------------------

LOG2_TYPEDEF = "bpfnb_log2_bucket_t"
LINEAR_TYPEDEF = "bpfnb_linear_bucket_t"
LOG2_SLOTS = 65
_LINEAR_NAME = re.compile(r"^bpfnb_lhist__(?P<min>\w+?)_(?P<max>\w+?)_(?P<step>\w+)$")
_INT_SUFFIX = re.compile(r"[uUlL]+$")


class HistogramSpecError(BtfError):
    """A histogram key type names bucket bounds bpfnb cannot read."""


@dataclass(frozen=True)
class HistogramScheme:
    """The bucket scheme of a histogram map.

    Attributes
    ----------
    kind : {"log2", "linear", "log2_slots"}
        The bucket scheme.
    min, max, step : int
        Linear bounds (0 for log2); for ``log2_slots`` ``max`` is the number of slots.
    """

    kind: Literal["log2", "linear", "log2_slots"]
    min: int = 0
    max: int = 0
    step: int = 0


def _typedef_chain(t: btf.Type | None) -> list[str]:
    """The typedef names along a chain of typedefs and qualifiers, outermost first."""
    names: list[str] = []
    while isinstance(t, btf.Qualifier):
        if isinstance(t, btf.Typedef):
            names.append(t.name)
        t = t.target
    return names


def histogram_scheme(map_name: str, map_type: int, key: btf.Type | None) -> HistogramScheme | None:
    """Return the bucket scheme of a map, or None when it is not a ``hist.h`` histogram.

    Raises
    ------
    HistogramSpecError
        The key names a linear histogram whose bounds cannot be read.
    """
    if map_type not in (ARRAY, PERCPU_ARRAY):
        return None
    names = _typedef_chain(key)
    if LOG2_TYPEDEF in names:
        return HistogramScheme("log2")
    if LINEAR_TYPEDEF not in names:
        return None
    for name in names:
        match = _LINEAR_NAME.match(name)
        if match is None:
            continue
        try:
            lo, hi, step = (int(_INT_SUFFIX.sub("", match[g]), 0) for g in ("min", "max", "step"))
        except ValueError as exc:
            raise HistogramSpecError(
                f"map {map_name!r}: cannot read linear bounds from key type {name!r}"
            ) from exc
        return HistogramScheme("linear", lo, hi, step)
    raise HistogramSpecError(
        f"map {map_name!r}: key type {LINEAR_TYPEDEF} without bounds; "
        "declare the map with BPFNB_LINEAR_HIST(name, min, max, step)"
    )


#: Map types a ``slots`` histogram may live in (keyed maps).
_SLOTS_MAP_TYPES = frozenset({HASH, ARRAY, PERCPU_HASH, PERCPU_ARRAY, LRU_HASH, LRU_PERCPU_HASH})
SLOTS_MEMBER = "slots"


def _is_text(t: btf.Type) -> bool:
    t = btf.resolve(t)
    if not isinstance(t, btf.Array):
        return False
    elem = btf.resolve(t.element)
    return isinstance(elem, btf.Int) and elem.size == 1


def slots_scheme(map_type: int, value: btf.Type | None) -> HistogramScheme | None:
    """The scheme of a libbpf-tools histogram value (``struct hist``), or None.

    The value must be a struct with a ``slots`` member that is an array of 4- or
    8-byte integers, and no other member but text (``char comm[16]``): a struct that
    also carries counters (hardirqs' ``struct info``) is a plain value.
    """
    if map_type not in _SLOTS_MAP_TYPES or value is None:
        return None
    st = btf.resolve(value)
    if not isinstance(st, btf.Struct):
        return None
    slots = None
    for member in st.members:
        if member.name == SLOTS_MEMBER:
            arr = btf.resolve(member.type)
            if not isinstance(arr, btf.Array) or arr.length < 2:
                return None
            elem = btf.resolve(arr.element)
            if not isinstance(elem, btf.Int) or elem.size not in (4, 8):
                return None
            slots = arr.length
        elif not _is_text(member.type):
            return None
    return HistogramScheme("log2_slots", 0, slots, 0) if slots is not None else None


def kind_of(map_type: int, histogram: HistogramScheme | None = None) -> str:
    """The kind of a map: its type's kernel name, or a histogram kind."""
    if histogram is not None and histogram.kind == "log2_slots":
        per_cpu = MAP_TYPES[map_type].per_cpu if map_type in MAP_TYPES else False
        return "percpu_slots_histogram" if per_cpu else "slots_histogram"
    if histogram is not None:
        return "percpu_histogram" if map_type == PERCPU_ARRAY else "histogram"
    return type_name(map_type)
