"""``BPF_MAP_TYPE_CGROUP_ARRAY``: cgroups a program filters on, set from Python by path.

Tools filter by cgroup with ``bpf_current_task_under_cgroup(&cgroup_map, 0)``; user
space fills slot 0 with a cgroup v2 directory's fd. :class:`CgroupArrayMap` does it
from a path::

    prog.cgroup_map[0] = "/sys/fs/cgroup/unified/system.slice"
    del prog.cgroup_map[0]

The kernel does not give cgroup array entries back (a lookup fails with ENOTSUPP), so
the view remembers what was set through it: ``m[i]`` is the path, ``df()`` lists
``index``, ``cgroup_id`` (the directory's inode number, the cgroup v2 id) and ``path``
of every slot set through this view, and an entry set by another process is not
shown. Reads never fail because of the kernel's refusal, so the dashboard shows the
map like any other.
"""

from __future__ import annotations

import contextlib
import os
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pandas as pd

from bpfnb.errors import BpfKeyError, BpfnbError, MapTypeError
from bpfnb.kernel import bpf, maps

__all__ = ["CgroupArrayMap", "CgroupEntry"]

_INDEX = struct.Struct("<I")
COLUMNS = ("index", "cgroup_id", "path")


@dataclass(frozen=True)
class CgroupEntry:
    """One slot set through the view.

    Attributes
    ----------
    path : str
        The cgroup directory.
    cgroup_id : int
        Its cgroup v2 id (the directory's inode number).
    """

    path: str
    cgroup_id: int


class CgroupArrayMap(maps.Map):
    """A cgroup array: slots hold cgroups, set by path (see the module docstring)."""

    writable = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.spec.key_size not in (0, 4):
            raise MapTypeError(f"a cgroup array has 4-byte keys, not {self.spec.key_size}")
        self._entries: dict[int, CgroupEntry] = {}
        self._entries_lock = threading.Lock()

    def _index(self, key: Any) -> int:
        if not isinstance(key, int) or isinstance(key, bool):
            raise MapTypeError(f"cgroup array {self.name!r} is indexed by int, not {key!r}")
        if not 0 <= key < max(self.max_entries, 1):
            raise maps.ArrayIndexError(
                f"cgroup array {self.name!r} has indexes 0..{self.max_entries - 1}, got {key}"
            )
        return key

    def __setitem__(self, key: Any, path: str | os.PathLike[str]) -> None:
        """Put the cgroup (v2) directory ``path`` in slot ``key``."""
        index = self._index(key)
        where = os.fspath(path)
        try:
            fd = os.open(where, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as err:
            raise BpfnbError(f"cannot open cgroup {where!r}: {err.strerror}") from None
        try:
            with self._lock:
                try:
                    bpf.map_update(
                        self.fd, _INDEX.pack(index), _INDEX.pack(fd), what=f"map {self.name!r}"
                    )
                except BpfnbError as err:
                    raise BpfnbError(
                        f"{where!r} is not a cgroup v2 directory the kernel accepts ({err}); "
                        "use a directory of the cgroup2 mount (see `mount -t cgroup2`)"
                    ) from None
            with self._entries_lock:
                self._entries[index] = CgroupEntry(where, os.fstat(fd).st_ino)
        finally:
            os.close(fd)

    def __getitem__(self, key: Any) -> str:
        """The path set in slot ``key`` through this view (KeyError when none)."""
        index = self._index(key)
        self._fd.get()
        with self._entries_lock:
            entry = self._entries.get(index)
        if entry is None:
            raise KeyError(key)
        return entry.path

    def __delitem__(self, key: Any) -> None:
        """Empty slot ``key``."""
        index = self._index(key)
        with self._lock:
            try:
                bpf.map_delete(self.fd, _INDEX.pack(index), what=f"map {self.name!r}")
            except BpfKeyError:
                raise KeyError(key) from None
        with self._entries_lock:
            self._entries.pop(index, None)

    def __contains__(self, key: object) -> bool:
        with self._entries_lock:
            return key in self._entries

    def __iter__(self) -> Iterator[int]:
        self._fd.get()
        with self._entries_lock:
            return iter(sorted(self._entries))

    def __len__(self) -> int:
        """Slots set through this view."""
        self._fd.get()
        with self._entries_lock:
            return len(self._entries)

    @property
    def entries(self) -> dict[int, CgroupEntry]:
        """Index -> what was set there through this view."""
        with self._entries_lock:
            return dict(self._entries)

    def clear(self) -> None:
        """Empty every slot set through this view."""
        for index in list(self.entries):
            with contextlib.suppress(KeyError):
                del self[index]

    def df(self, per_cpu: bool = False, *, batch: bool = True) -> pd.DataFrame:
        """``index``, ``cgroup_id``, ``path`` of the slots set through this view."""
        self._fd.get()
        rows = sorted(self.entries.items())
        return pd.DataFrame(
            {
                "index": pd.array([i for i, _ in rows], dtype="uint32"),
                "cgroup_id": pd.array([e.cgroup_id for _, e in rows], dtype="uint64"),
                "path": pd.array([e.path for _, e in rows], dtype=object),
            },
            columns=list(COLUMNS),
        )

    @property
    def full(self) -> bool:
        """Always False: an array's indexes are fixed."""
        return False

    def __repr__(self) -> str:
        return f"<CgroupArrayMap {self.name!r}: {self.entries}>"
