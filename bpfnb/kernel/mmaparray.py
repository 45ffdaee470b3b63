"""Array maps read and written through a shared mapping (``BPF_F_MMAPABLE``).

An array map created with ``BPF_F_MMAPABLE`` can be mapped into the process: its
values lie one after the other, each in a slot of ``round_up(value_size, 8)`` bytes, in
pages shared with the BPF programs. Reading the whole array is then a memory copy
instead of one ``BPF_MAP_LOOKUP_BATCH`` walk through the kernel (30-40x faster for a
million entries), which is what makes live histograms and big arrays cheap to refresh.

bpfnb creates the user's plain array maps and histograms with the flag unless told not
to (``bpfnb.load(..., mmap_arrays=False)``, ``%%bpf --no-mmap``): :func:`mmapable`
says which maps qualify (not per-CPU arrays, which the kernel cannot map, and not
values holding kernel-managed objects such as ``struct bpf_spin_lock``, which it
refuses to expose); the pipeline sets the flag in libbpf's configure phase.

Semantics of the mapping (the same as the bpf(2) calls for arrays without
``BPF_F_LOCK``): a read copies the values as they are at that moment, value by value,
with no lock against programs updating them (a value a program is rewriting may be
seen half old, half new, as with ``BPF_MAP_LOOKUP_ELEM``); a write from Python stores
the new bytes in place, visible to the programs at once. Every read copies out of the
mapping, so nothing handed to the user points into it; the mapping is unmapped when
the program closes the map's fd (reads after that raise
:class:`~bpfnb.errors.ClosedError`).
"""

from __future__ import annotations

import mmap
import threading

import numpy as np

from bpfnb.errors import ClosedError
from bpfnb.kernel.bpf_abi import BPF_F_MMAPABLE
from bpfnb.kernel.fd import OwnedFd
from bpfnb.object import btf
from bpfnb.object.spec import MapSpec

#: Map kinds created ``BPF_F_MMAPABLE`` by default.
MMAP_KINDS = frozenset({"array", "histogram"})
#: Kernel-managed value fields the kernel refuses to expose through a mapping.
_SPECIAL_STRUCTS = frozenset(
    {
        "bpf_spin_lock",
        "bpf_res_spin_lock",
        "bpf_timer",
        "bpf_wq",
        "bpf_list_head",
        "bpf_list_node",
        "bpf_rb_root",
        "bpf_rb_node",
        "bpf_refcount",
        "bpf_task_work",
    }
)


def _has_special(t: btf.Type | None, depth: int = 0) -> bool:
    """Whether a value type holds a kernel-managed field (spin lock, timer, kptr...)."""
    if t is None or depth > 32:
        return False
    t = btf.resolve(t)
    if isinstance(t, btf.Pointer):  # kptrs are pointers to type-tagged types
        target = t.target
        while isinstance(target, btf.Qualifier):
            if isinstance(target, btf.TypeTag):
                return True
            target = target.target
        return False
    if isinstance(t, btf.Composite):
        if t.name in _SPECIAL_STRUCTS:
            return True
        return any(_has_special(m.type, depth + 1) for m in t.members)
    if isinstance(t, btf.Array):
        return _has_special(t.element, depth + 1)
    return False


def mmapable(spec: MapSpec) -> bool:
    """Whether bpfnb creates this map ``BPF_F_MMAPABLE`` by default."""
    return (
        spec.kind in MMAP_KINDS
        and spec.max_entries > 0
        and spec.value_size > 0
        and not _has_special(spec.value)
    )


class MmapArray:
    """The values of a ``BPF_F_MMAPABLE`` array map, through one shared mapping.

    Parameters
    ----------
    fd : OwnedFd
        The map's fd; the mapping is unmapped when it closes.
    max_entries, value_size : int
        The array's shape.
    """

    def __init__(self, fd: OwnedFd, max_entries: int, value_size: int) -> None:
        self._fd = fd
        self.max_entries = max_entries
        self.value_size = value_size
        self.slot = (value_size + 7) & ~7
        size = max(self.slot * max_entries, 1)
        self._map: mmap.mmap | None = mmap.mmap(
            fd.get(), size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE
        )
        self._rows: np.ndarray | None = np.frombuffer(self._map, np.uint8, self.slot * max_entries)
        self._rows = self._rows.reshape(max_entries, self.slot)
        self._lock = threading.Lock()
        fd.on_close(self.close)

    @staticmethod
    def flags_say_mmapable(flags: int) -> bool:
        """Whether a map's ``map_flags`` have ``BPF_F_MMAPABLE``."""
        return bool(flags & BPF_F_MMAPABLE)

    def _live(self) -> np.ndarray:
        rows = self._rows
        if rows is None:
            self._fd.get()  # raises ClosedError with the map's name
            raise ClosedError("the array's mapping is closed")
        return rows

    def values(self) -> np.ndarray:
        """A copy of every value: ``(max_entries, value_size)`` uint8."""
        with self._lock:
            rows = self._live()
            if self.slot == self.value_size:
                return rows.copy()
            return np.ascontiguousarray(rows[:, : self.value_size])

    def read(self, index: int) -> bytes:
        """The value at ``index``."""
        with self._lock:
            return self._live()[index, : self.value_size].tobytes()

    def write(self, index: int, value: bytes) -> None:
        """Store ``value`` (``value_size`` bytes) at ``index``."""
        with self._lock:
            self._live()[index, : self.value_size] = np.frombuffer(value, np.uint8)

    def zero(self, index: int | None = None) -> None:
        """Set the value at ``index`` (every value when None) to zero."""
        with self._lock:
            rows = self._live()
            if index is None:
                rows[:] = 0
            else:
                rows[index] = 0

    def close(self) -> None:
        """Unmap (idempotent; called when the map's fd closes)."""
        with self._lock:
            self._rows = None
            m, self._map = self._map, None
        if m is not None:
            m.close()


__all__ = ["MMAP_KINDS", "MmapArray", "mmapable"]
