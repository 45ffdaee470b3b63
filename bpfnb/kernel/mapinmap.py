"""Maps of maps (``ARRAY_OF_MAPS``, ``HASH_OF_MAPS``) and program arrays (``PROG_ARRAY``).

Map-in-map: the value of each key is another map. The inner maps' types come from
the ``__array(values, struct {...})`` template of the declaration (``spec.inner``):

- ``outer[k]`` is a typed view of the inner map stored at ``k`` (the kernel gives its
  id; bpfnb opens it and wraps it like any map of its kind);
- ``outer[k] = inner`` stores a map (a view, e.g. one made by ``outer.create_inner()``,
  or a map fd); ``del outer[k]`` empties the slot;
- ``outer.create_inner(max_entries=None)`` creates a new map from the template;
- ``outer.df()`` has one row per inner entry: ``outer_key`` then the inner map's columns.

Maps opened or created here are closed when the owning program closes.

Program arrays (tail calls): ``m[slot]`` is the name of the program in the slot (the
program's name in the cell when it belongs to the same program, else the kernel's
name), ``m[slot] = "step1"`` stores a program of the owner by name (or a program fd),
``del m[slot]`` empties it, ``m.df()`` lists the filled slots: ``slot``, ``program``,
``id``. Static ``.values = { [1] = (void *)&step1 }`` initialisation is done by libbpf.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import struct
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from bpfnb.codec import frames
from bpfnb.errors import BpfKeyError, BpfnbError, MapTypeError
from bpfnb.kernel import bpf, bpf_extra
from bpfnb.kernel.fd import OwnedFd
from bpfnb.kernel.maps import ArrayMap, _codec, _WritableMap
from bpfnb.object.spec import MapSpec, ObjectSpec

OUTER_KEY_COLUMN = "outer_key"
_U32 = struct.Struct("<I")

#: Builds the view of an inner map (set by :mod:`bpfnb.kernel.views` to its ``map_for``).
ViewFactory = Callable[[OwnedFd, MapSpec, ObjectSpec | None], Any]
_FACTORY: ViewFactory | None = None


def set_view_factory(factory: ViewFactory) -> None:
    """Register how inner maps become views (the kind -> view dispatch)."""
    global _FACTORY
    _FACTORY = factory


class MapOfMaps(_WritableMap):
    """``BPF_MAP_TYPE_ARRAY_OF_MAPS`` / ``HASH_OF_MAPS``: ``outer[k]`` is a map view."""

    def __init__(self, fd: OwnedFd, spec: MapSpec, obj: ObjectSpec | None = None) -> None:
        super().__init__(fd, spec, obj)
        self.inner_spec = spec.inner
        self._inner: dict[int, Any] = {}  # map id -> view
        self._owned: list[OwnedFd] = []
        self._close_registered = False
        inner = spec.inner
        self.inner_key_codec = _codec(obj, inner.key, inner.key_size) if inner else None

    @property
    def key_columns(self) -> list[str]:
        """``outer_key`` then the inner map's key columns."""
        inner = self.inner_key_codec
        names = [frames.role_name("key", c) for c in inner.column_names] if inner else []
        return [OUTER_KEY_COLUMN, *names]

    # -- inner views -----------------------------------------------------------------

    def _own(self, fd: int, what: str) -> OwnedFd:
        owned = OwnedFd(fd, what)
        self._owned.append(owned)
        owner = self.owner
        if owner is not None and not self._close_registered:
            owner.on_close(self.close_inner)
            self._close_registered = True
        return owned

    def close_inner(self) -> None:
        """Close every inner map this view opened or created (the program closes them)."""
        owned, self._owned = self._owned, []
        self._inner.clear()
        for fd in owned:
            fd.close()

    def _view(self, owned: OwnedFd, name: str) -> Any:
        if _FACTORY is None:
            raise BpfnbError("no map view factory registered (import bpfnb.kernel.views)")
        info = bpf.map_info(owned.get())
        base = self.inner_spec or MapSpec(
            name, info.type, None, None, info.key_size, info.value_size, info.max_entries, 0
        )
        spec = dataclasses.replace(base, name=name, max_entries=info.max_entries)
        view = _FACTORY(owned, spec, self.obj)
        view.owner = self.owner
        return view

    def _inner_by_id(self, map_id: int, key: Any) -> Any:
        view = self._inner.get(map_id)
        if view is not None and not view.closed:
            return view
        owned = self._own(bpf.map_get_fd_by_id(map_id), f"inner map {map_id} of {self.name!r}")
        view = self._view(owned, f"{self.name}[{key!r}]")
        self._inner[map_id] = view
        return view

    def inner_id(self, key: Any) -> int:
        """The kernel id of the map stored at ``key``.

        Raises
        ------
        KeyError
            The slot is empty.
        """
        return int(_U32.unpack_from(self._lookup(key))[0])

    def __getitem__(self, key: Any) -> Any:
        return self._inner_by_id(self.inner_id(key), key)

    def __setitem__(self, key: Any, value: Any) -> None:
        fd = value if isinstance(value, int) else value.fd
        kb = self._key_bytes(key)
        with self._lock:
            bpf.map_update(self.fd, kb, _U32.pack(fd), what=f"map {self.name!r}")

    def create_inner(self, max_entries: int | None = None, name: str = "") -> Any:
        """A new, empty map made from the inner template (store it with ``outer[k] = m``)."""
        inner = self.inner_spec
        if inner is None:
            raise MapTypeError(
                f"map {self.name!r} has no inner map template: declare it with "
                "__array(values, struct { __uint(type, ...); ... })"
            )
        made = bpf_extra.map_create_like(
            inner.type,
            inner.key_size,
            inner.value_size,
            max_entries or inner.max_entries,
            inner.flags,
            name or "bpfnb_inner",
            map_extra=inner.map_extra,
        )
        owned = self._own(made, f"inner map created for {self.name!r}")
        view = self._view(owned, name or f"{self.name}.inner")
        self._inner[bpf.map_info(made).id] = view
        return view

    def __delitem__(self, key: Any) -> None:
        kb = self._key_bytes(key)
        with self._lock:
            try:
                bpf.map_delete(self.fd, kb, what=f"map {self.name!r}")
            except BpfKeyError:
                raise KeyError(key) from None

    def _occupied(self) -> list[tuple[Any, int]]:
        """(outer key, inner map id) of every filled slot."""
        keys = self._decoded_keys(self.read_raw(batch=False).keys)
        out = []
        for key in keys:
            with contextlib.suppress(KeyError):
                out.append((key, self.inner_id(key)))
        return out

    def __iter__(self) -> Any:
        """Iterate over the keys of the filled slots."""
        return iter([k for k, _ in self._occupied()])

    def __len__(self) -> int:
        """The number of filled slots."""
        return len(self._occupied())

    def df(self, per_cpu: bool = False, *, batch: bool = True) -> pd.DataFrame:
        """One row per inner entry: ``outer_key`` then the inner map's columns."""
        parts = []
        for key, map_id in self._occupied():
            inner = self._inner_by_id(map_id, key).df()
            inner.insert(0, OUTER_KEY_COLUMN, pd.Series([key] * len(inner), dtype=object))
            parts.append(inner)
        if not parts:
            return pd.DataFrame({OUTER_KEY_COLUMN: pd.Series([], dtype=object)})
        return pd.concat(parts, ignore_index=True)

    def clear(self) -> None:
        """Empty every slot (the inner maps live on while something else holds them)."""
        for key, _ in self._occupied():
            with contextlib.suppress(KeyError):
                del self[key]


class ProgArrayMap(ArrayMap):
    """``BPF_MAP_TYPE_PROG_ARRAY``: slot -> program (tail calls).

    When its program closes, the slots holding that program's own programs are emptied
    before the map fds close. A program array keeps its programs alive while they refer
    to it; the kernel breaks that circle on a deferred work item once the array's last
    user closes, and a BPF inspector opening the map by id meanwhile (``bpftool map
    list`` twice in a row) can leave the map in the kernel for good. With the slots
    emptied first there is no circle left to break.
    """

    _owner: Any = None
    _own_ids: frozenset[int] = frozenset()

    @property
    def owner(self) -> Any:
        """The program this view belongs to (set by it)."""
        return self._owner

    @owner.setter
    def owner(self, program: Any) -> None:
        self._owner = program
        if program is not None:
            self._own_ids = frozenset(self._names_by_id())
            program.on_close(self._release_own_programs)

    def _release_own_programs(self) -> None:
        """Empty the slots that hold the owner's programs (called as the owner closes)."""
        for slot, prog_id in self._filled():
            if prog_id in self._own_ids:
                with contextlib.suppress(KeyError):
                    del self[slot]

    @property
    def key_columns(self) -> list[str]:
        """``slot``, and what identifies the program in it (not counters)."""
        return ["slot", "program", "id"]

    def _names_by_id(self) -> dict[int, str]:
        owner = self.owner
        if owner is None:
            return {}
        stats: dict[str, Any] = owner.stats()
        return {int(row["id"]): name for name, row in stats["programs"].items() if row["id"]}

    def _name_of(self, prog_id: int) -> str:
        name = self._names_by_id().get(prog_id)
        if name is not None:
            return name
        try:
            fd = bpf_extra.prog_get_fd_by_id(prog_id)
        except BpfKeyError:
            return f"prog#{prog_id}"
        try:
            return bpf.prog_info(fd).name
        finally:
            os.close(fd)

    def program_id(self, slot: int) -> int:
        """The kernel id of the program in ``slot``.

        Raises
        ------
        KeyError
            The slot is empty.
        """
        return int(_U32.unpack_from(self._lookup(slot))[0])

    def __getitem__(self, slot: Any) -> Any:
        """The name of the program in ``slot``."""
        return self._name_of(self.program_id(slot))

    def __setitem__(self, slot: Any, program: Any) -> None:
        """Store a program of the owner by name, or a program fd."""
        if isinstance(program, str):
            owner = self.owner
            fd = owner.program_fd(program) if owner is not None else None
            if fd is None:
                raise MapTypeError(
                    f"map {self.name!r}: no loaded program named {program!r} in this program"
                )
        else:
            fd = int(program)
        kb = self._key_bytes(slot)
        with self._lock:
            bpf.map_update(self.fd, kb, _U32.pack(fd), what=f"map {self.name!r}")

    def __delitem__(self, slot: Any) -> None:
        kb = self._key_bytes(slot)
        with self._lock:
            try:
                bpf.map_delete(self.fd, kb, what=f"map {self.name!r}")
            except BpfKeyError:
                raise KeyError(slot) from None

    def _filled(self) -> list[tuple[int, int]]:
        out = []
        for slot in range(self.spec.max_entries):
            with contextlib.suppress(KeyError):
                out.append((slot, self.program_id(slot)))
        return out

    def __iter__(self) -> Any:
        """Iterate over the filled slots."""
        return iter([s for s, _ in self._filled()])

    def df(self, per_cpu: bool = False, *, batch: bool = True) -> pd.DataFrame:
        """The filled slots: ``slot``, ``program`` (name), ``id``."""
        filled = self._filled()
        names = self._names_by_id()
        return pd.DataFrame(
            {
                "slot": np.array([s for s, _ in filled], dtype=np.int64),
                "program": pd.Series(
                    [names.get(i) or self._name_of(i) for _, i in filled], dtype=object
                ),
                "id": np.array([i for _, i in filled], dtype=np.int64),
            }
        )

    def clear(self) -> None:
        """Empty every slot."""
        for slot, _ in self._filled():
            with contextlib.suppress(KeyError):
                del self[slot]


__all__ = ["MapOfMaps", "ProgArrayMap", "set_view_factory"]
