"""Event streams composed over a map: ring buffers and perf event arrays.

- :mod:`.store`: the bounded in-memory store of raw events, decoded on demand;
- :mod:`.stream`: what every stream has (consumer thread, counters, DataFrames) and
  the refusal of keyed-map operations;
- :mod:`.ringbuf`: ``BPF_MAP_TYPE_RINGBUF`` through mmap + epoll;
- :mod:`.perfbuf`: ``BPF_MAP_TYPE_PERF_EVENT_ARRAY`` through per-CPU perf buffers.
"""

from bpfnb.kernel.streams.perfbuf import PerfEventArray
from bpfnb.kernel.streams.ringbuf import RingBuffer
from bpfnb.kernel.streams.store import DEFAULT_MAX_ROWS, RECEIVED_AT
from bpfnb.kernel.streams.stream import EventStream

__all__ = [
    "DEFAULT_MAX_ROWS",
    "RECEIVED_AT",
    "EventStream",
    "PerfEventArray",
    "RingBuffer",
]
