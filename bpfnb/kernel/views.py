"""The one dispatch from a map's kind to the view that wraps it.

:func:`map_for` reads ``spec.kind`` (computed once, see :mod:`bpfnb.object.maptypes`)
and nothing else: keyed maps get a :class:`~bpfnb.kernel.maps.Map` subclass, event
streams a :class:`~bpfnb.kernel.streams.EventStream`, every other kind the read-only
:class:`~bpfnb.kernel.maps.Map`. The rest of the map zoo has its views in their own
modules: stack traces (:mod:`~bpfnb.kernel.stacks`), queues, stacks and bloom filters
(:mod:`~bpfnb.kernel.queues`), LPM tries (:mod:`~bpfnb.kernel.lpm`), maps of maps and
program arrays (:mod:`~bpfnb.kernel.mapinmap`), object storage
(:mod:`~bpfnb.kernel.storage`), user ring buffers (:mod:`~bpfnb.kernel.user_ringbuf`),
libbpf-tools ``slots`` histograms (:mod:`~bpfnb.kernel.slots_hist`) and cgroup arrays
(:mod:`~bpfnb.kernel.cgroup_array`).
"""

from __future__ import annotations

from bpfnb.errors import EventTypeError, MapTypeError
from bpfnb.kernel import lpm, mapinmap, maps, queues, stacks, storage, user_ringbuf
from bpfnb.kernel.cgroup_array import CgroupArrayMap
from bpfnb.kernel.drops import DropCounter
from bpfnb.kernel.fd import OwnedFd
from bpfnb.kernel.slots_hist import PerCpuSlotsHistogramMap, SlotsHistogramMap
from bpfnb.kernel.streams import EventStream, PerfEventArray, RingBuffer
from bpfnb.object.spec import MapSpec, ObjectSpec

MapView = maps.Map | EventStream

#: kind -> keyed view class (kinds not listed get the read-only Map).
VIEW_CLASSES: dict[str, type[maps.Map]] = {
    "hash": maps.HashMap,
    "lru_hash": maps.LruHashMap,
    "array": maps.ArrayMap,
    "percpu_hash": maps.PerCpuHashMap,
    "percpu_array": maps.PerCpuArrayMap,
    "lru_percpu_hash": maps.LruPerCpuHashMap,
    "histogram": maps.HistogramMap,
    "percpu_histogram": maps.PerCpuHistogramMap,
    "stack_trace": stacks.StackTraceMap,
    "queue": queues.QueueMap,
    "stack": queues.StackMap,
    "bloom_filter": queues.BloomFilterMap,
    "lpm_trie": lpm.LpmTrieMap,
    "array_of_maps": mapinmap.MapOfMaps,
    "hash_of_maps": mapinmap.MapOfMaps,
    "prog_array": mapinmap.ProgArrayMap,
    "task_storage": storage.TaskStorageMap,
    "inode_storage": storage.InodeStorageMap,
    "sk_storage": storage.SocketStorageMap,
    "cgrp_storage": storage.CgroupStorageMap,
    "user_ringbuf": user_ringbuf.UserRingBuffer,
    "slots_histogram": SlotsHistogramMap,
    "percpu_slots_histogram": PerCpuSlotsHistogramMap,
    "cgroup_array": CgroupArrayMap,
}
#: kind -> event stream class.
STREAM_CLASSES: dict[str, type[EventStream]] = {
    "ringbuf": RingBuffer,
    "perf_event_array": PerfEventArray,
}


def map_for(
    fd: OwnedFd,
    spec: MapSpec,
    obj: ObjectSpec | None = None,
    *,
    event_type: str | EventTypeError | None = None,
    lost: DropCounter | None = None,
) -> MapView:
    """Wrap a map fd in the view of its kind.

    Parameters
    ----------
    fd : OwnedFd
        The map fd (shared with, and closed by, its owner).
    spec : MapSpec
        Its declaration.
    obj : ObjectSpec, optional
        The object the map belongs to (its BTF).
    event_type : str, EventTypeError or None
        Event streams: the C type of the events (or why it is unknown).
    lost : DropCounter, optional
        Event streams: where failed submissions are counted (``bpfnb_drops``).
    """
    stream = STREAM_CLASSES.get(spec.kind)
    if stream is not None:
        return stream(fd, spec, obj, event_type=event_type, lost=lost)
    cls = VIEW_CLASSES.get(spec.kind, maps.Map)
    try:
        return cls(fd, spec, obj)
    except MapTypeError as e:
        raise MapTypeError(f"map {spec.name!r}: {e}") from e


mapinmap.set_view_factory(map_for)  # inner maps of a map-in-map get the view of their kind
