"""Maps that outlive a re-run, maps shared between programs, and pinned maps.

All three use libbpf's configure phase (between open and load, see
:class:`~bpfnb.kernel.loader.OpenObject`): a map told to reuse an existing map fd is
not created, the new programs use the old map and its contents.

- ``--keep-maps`` (:func:`plan`, ``keep_from=`` the previous version): every map
  whose name, type, sizes, flags and key/value types are unchanged is reused, so
  counts continue; changed maps are created anew and the plan says why. Event streams
  (their consumer belongs to the old version), program arrays (they hold the old
  version's programs), bpfnb's hidden maps and pinned maps (the pin already reuses
  them) are always created anew.
- ``--use producer.counts`` (``use=``): the cell's map ``counts`` *is* the map of
  another loaded program; the declarations must agree, else the load is refused. Both
  programs then see the same data, and the map lives while either holds it.
- ``__uint(pinning, LIBBPF_PIN_BY_NAME)``: the map is pinned as ``NAME`` under bpfnb's
  folder on the bpf filesystem (:func:`pin_root`, ``/sys/fs/bpf/bpfnb`` unless
  ``$BPFNB_PIN_DIR`` says otherwise) and reused from there by the next load, in this
  process or another. :func:`pins` lists them, :func:`unpin` removes them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bpfnb.errors import BpfnbError, BpfSyscallError, MapTypeError
from bpfnb.kernel import bpf, bpf_extra, system
from bpfnb.kernel.loader import OpenObject
from bpfnb.object import btf, maptypes
from bpfnb.object.spec import MapSpec, ObjectSpec

PIN_DIR_ENV = "BPFNB_PIN_DIR"
HIDDEN_PREFIX = "bpfnb_"


def pin_root() -> Path:
    """bpfnb's folder of pinned maps: ``$BPFNB_PIN_DIR`` or ``/sys/fs/bpf/bpfnb``."""
    return Path(os.environ.get(PIN_DIR_ENV) or system.BPFFS / "bpfnb")


def _type_text(t: btf.Type | None, size: int) -> str:
    return btf.describe(t) if t is not None else f"{size} bytes"


def incompatibility(new: MapSpec, old: MapSpec) -> str | None:
    """Why map ``old`` cannot stand in for the declaration ``new``; None when it can."""
    if new.type != old.type:
        return f"type changed: {old.type_name} -> {new.type_name}"
    for what, a, b in (
        ("key", _type_text(old.key, old.key_size), _type_text(new.key, new.key_size)),
        ("value", _type_text(old.value, old.value_size), _type_text(new.value, new.value_size)),
    ):
        if a != b:
            return f"{what} type changed: {a} -> {b}"
    if (new.key_size, new.value_size) != (old.key_size, old.value_size):
        return "key or value size changed"
    if new.max_entries != old.max_entries:
        return f"max_entries changed: {old.max_entries} -> {new.max_entries}"
    if new.flags != old.flags:
        return f"map_flags changed: {old.flags:#x} -> {new.flags:#x}"
    if new.map_extra != old.map_extra:
        return f"map_extra changed: {old.map_extra} -> {new.map_extra}"
    if (new.inner is None) != (old.inner is None):
        return "inner map template added or removed"
    if new.inner is not None and old.inner is not None:
        inner = incompatibility(new.inner, old.inner)
        if inner:
            return f"inner map: {inner}"
    return None


def _never_kept(spec: MapSpec) -> str | None:
    """Why a map is always created anew on a re-run (None: it may be kept)."""
    if spec.name.startswith(HIDDEN_PREFIX):
        return "bpfnb's own map"
    if maptypes.is_event_stream(spec.kind):
        return "event streams start empty with their new consumer"
    if spec.kind == "prog_array":
        return "a program array holds the previous version's programs"
    if spec.pinning == maptypes.PIN_BY_NAME:
        return "pinned: reused through its pin"
    return None


@dataclass
class ReusePlan:
    """What a load reuses instead of creating.

    Attributes
    ----------
    fds : dict of str to int
        Map name -> fd of the existing map to reuse (held by the maps' owners).
    kept : list of str
        Maps kept from the previous version.
    recreated : dict of str to str
        Maps of the previous version created anew, with the reason.
    shared : dict of str to str
        Maps used from another program: name -> ``PROGRAM.MAP``.
    pinned : dict of str to str
        Pinned maps: name -> pin path.
    """

    fds: dict[str, int] = field(default_factory=dict)
    kept: list[str] = field(default_factory=list)
    recreated: dict[str, str] = field(default_factory=dict)
    shared: dict[str, str] = field(default_factory=dict)
    pinned: dict[str, str] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        """Whether the plan changes nothing."""
        return not (self.fds or self.recreated or self.pinned)

    def notes(self) -> list[str]:
        """One line per thing the user should know."""
        out = []
        if self.kept:
            out.append(f"kept maps (contents carried over): {', '.join(self.kept)}")
        if self.recreated:
            out.append(
                "recreated maps: "
                + "; ".join(f"{name} ({why})" for name, why in self.recreated.items())
            )
        for name, source in self.shared.items():
            out.append(f"map {name} is {source} (shared)")
        for name, path in self.pinned.items():
            out.append(f"map {name} pinned at {path}")
        return out


def plan(
    spec: ObjectSpec,
    *,
    keep_from: Any = None,
    use: Mapping[str, Any] | None = None,
    use_labels: Mapping[str, str] | None = None,
) -> ReusePlan:
    """Decide which maps of ``spec`` reuse existing maps.

    Parameters
    ----------
    spec : ObjectSpec
        The new object.
    keep_from : Program, optional
        The previous version (``--keep-maps``): its compatible maps are kept.
    use : mapping of str to map view, optional
        Map name in ``spec`` -> the map of another program to use instead (``--use``).
    use_labels : mapping of str to str, optional
        Map name -> how the user named the used map (``producer.counts``), for messages.

    Raises
    ------
    MapTypeError
        A used map is not declared in the cell, or its declaration differs.
    """
    out = ReusePlan()
    labels = dict(use_labels or {})
    for name, view in (use or {}).items():
        owner = view.owner
        label = labels.get(name) or f"{owner.name if owner is not None else '?'}.{view.name}"
        mine = spec.maps.get(name)
        if mine is None:
            raise MapTypeError(
                f"--use {label}: the cell declares no map named {name!r} "
                f"(maps: {', '.join(spec.user_maps) or 'none'}); declare it as {label} is declared"
            )
        why = incompatibility(mine, view.spec)
        if why:
            raise MapTypeError(f"--use {label}: the cell's map {name!r} differs: {why}")
        out.fds[name] = view.fd
        out.shared[name] = label
    for name, mine in spec.maps.items():
        if mine.pinning == maptypes.PIN_BY_NAME and name not in out.fds:
            out.pinned[name] = str(pin_root() / name)
    if keep_from is None:
        return out
    old_maps: Mapping[str, Any] = keep_from.maps
    old_specs: Mapping[str, MapSpec] = keep_from.spec.maps
    for name, mine in spec.maps.items():
        if name in out.fds or name not in old_specs:
            continue
        never = _never_kept(mine)
        view = old_maps.get(name)
        if never is not None or view is None:
            if never and not name.startswith(HIDDEN_PREFIX) and name not in out.pinned:
                out.recreated[name] = never
            continue
        why = incompatibility(mine, old_specs[name])
        if why:
            out.recreated[name] = why
            continue
        out.fds[name] = view.fd
        out.kept.append(name)
    return out


def configure(opened: OpenObject, reuse: ReusePlan) -> None:
    """Apply a plan to an opened object (before load): reuse fds, set pin paths."""
    for name, fd in reuse.fds.items():
        opened.reuse_map(name, fd)
    if reuse.pinned:
        system.ensure_bpffs()
        pin_root().mkdir(parents=True, exist_ok=True)
        for name, path in reuse.pinned.items():
            opened.set_pin_path(name, path)


# -- pins -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pin:
    """A map pinned under :func:`pin_root`.

    Attributes
    ----------
    name : str
        The file name (the map's C name).
    path : str
        The pin's path.
    type : str
        The map type (``hash``...), empty when the pin is not a map.
    id : int
        The map's kernel id (0 when unknown).
    key_size, value_size, max_entries : int
        As the kernel reports them.
    """

    name: str
    path: str
    type: str
    id: int
    key_size: int
    value_size: int
    max_entries: int


def pins() -> list[Pin]:
    """Every map pinned under :func:`pin_root` (empty when the folder does not exist)."""
    root = pin_root()
    if not root.is_dir():
        return []
    out = []
    for path in sorted(root.iterdir()):
        try:
            fd = bpf_extra.obj_get(path)
        except (BpfSyscallError, KeyError):
            out.append(Pin(path.name, str(path), "", 0, 0, 0, 0))
            continue
        try:
            info = bpf.map_info(fd)
            out.append(
                Pin(
                    path.name,
                    str(path),
                    info.type_name,
                    info.id,
                    info.key_size,
                    info.value_size,
                    info.max_entries,
                )
            )
        except BpfSyscallError:
            out.append(Pin(path.name, str(path), "", 0, 0, 0, 0))
        finally:
            os.close(fd)
    return out


def unpin(name: str | None = None) -> list[str]:
    """Remove the pin ``name`` (every pin when None); return the names removed.

    The map itself lives on while a program holds it.

    Raises
    ------
    BpfnbError
        No pin has that name.
    """
    root = pin_root()
    if name is None:
        removed = [p.name for p in pins()]
        for pin_name in removed:
            (root / pin_name).unlink(missing_ok=True)
        return removed
    path = root / name
    if "/" in name or not path.exists():
        have = ", ".join(p.name for p in pins()) or "none"
        raise BpfnbError(f"no pinned map named {name!r} in {root} (pinned: {have})")
    path.unlink()
    return [name]


__all__ = [
    "PIN_DIR_ENV",
    "Pin",
    "ReusePlan",
    "configure",
    "incompatibility",
    "pin_root",
    "pins",
    "plan",
    "unpin",
]
