"""bpf(2) calls of the less common map types, pins and object ids (ctypes).

:mod:`bpfnb.kernel.bpf` covers keyed maps; this module adds what the rest of the map
zoo needs, with the same conventions (plain fd numbers in, bytes out, precise
exceptions from :mod:`bpfnb.errors`):

- keyless elements: :func:`map_push` / :func:`map_pop` / :func:`map_peek` (queues and
  stacks), :func:`bloom_add` / :func:`bloom_contains` (bloom filters);
- :func:`map_create_like` (inner maps of a map-in-map, created from Python);
- :func:`prog_get_fd_by_id` (program arrays read back program ids);
- :func:`obj_pin` / :func:`obj_get` (bpffs pins).
"""

from __future__ import annotations

import ctypes
import errno
import os

from bpfnb.errors import BpfKeyError
from bpfnb.kernel import bpf_abi as abi
from bpfnb.kernel.bpf import Buffer, _check, _error, _name, _Pinned, bpf
from bpfnb.kernel.bpf_abi import BPF_ANY, Cmd


class ObjAttr(ctypes.Structure):
    """``bpf_attr`` of BPF_OBJ_PIN / BPF_OBJ_GET."""

    _fields_ = [
        ("pathname", ctypes.c_uint64),
        ("bpf_fd", ctypes.c_uint32),
        ("file_flags", ctypes.c_uint32),
        ("path_fd", ctypes.c_int32),
    ]


# -- queues, stacks, bloom filters ----------------------------------------------------


def map_push(fd: int, value: Buffer, flags: int = BPF_ANY, *, what: str = "") -> None:
    """Push ``value`` onto a queue or stack (BPF_EXIST: replace the oldest when full).

    Raises
    ------
    MapFullError
        The map holds ``max_entries`` elements (and ``flags`` is not BPF_EXIST).
    """
    v = _Pinned(value, 0, "value")
    attr = abi.ElemAttr(map_fd=fd, key=0, value=v.address, flags=flags)
    _check(Cmd.MAP_UPDATE_ELEM, attr, _name(fd, what))


def map_pop(fd: int, value_size: int, *, what: str = "") -> bytes | None:
    """Remove and return the next element of a queue or stack; None when it is empty."""
    out = ctypes.create_string_buffer(max(value_size, 1))
    attr = abi.ElemAttr(map_fd=fd, key=0, value=ctypes.addressof(out))
    ret = bpf(Cmd.MAP_LOOKUP_AND_DELETE_ELEM, attr)
    if ret == -errno.ENOENT:
        return None
    if ret < 0:
        raise _error(-ret, Cmd.MAP_LOOKUP_AND_DELETE_ELEM, _name(fd, what))
    return out.raw[:value_size]


def map_peek(fd: int, value_size: int, *, what: str = "") -> bytes | None:
    """Return the next element of a queue or stack without removing it; None when empty."""
    out = ctypes.create_string_buffer(max(value_size, 1))
    attr = abi.ElemAttr(map_fd=fd, key=0, value=ctypes.addressof(out))
    ret = bpf(Cmd.MAP_LOOKUP_ELEM, attr)
    if ret == -errno.ENOENT:
        return None
    if ret < 0:
        raise _error(-ret, Cmd.MAP_LOOKUP_ELEM, _name(fd, what))
    return out.raw[:value_size]


def bloom_add(fd: int, value: Buffer, *, what: str = "") -> None:
    """Add ``value`` to a bloom filter."""
    map_push(fd, value, BPF_ANY, what=what)


def bloom_contains(fd: int, value: Buffer, *, what: str = "") -> bool:
    """Whether a bloom filter may hold ``value`` (False: certainly not)."""
    v = _Pinned(value, 0, "value")
    attr = abi.ElemAttr(map_fd=fd, key=0, value=v.address)
    ret = bpf(Cmd.MAP_LOOKUP_ELEM, attr)
    if ret == -errno.ENOENT:
        return False
    if ret < 0:
        raise _error(-ret, Cmd.MAP_LOOKUP_ELEM, _name(fd, what))
    return True


# -- map creation -----------------------------------------------------------------------


def map_create_like(
    map_type: int,
    key_size: int,
    value_size: int,
    max_entries: int,
    flags: int = 0,
    name: str = "",
    *,
    inner_map_fd: int = 0,
    map_extra: int = 0,
) -> int:
    """Create a map without BTF (an inner map of a map-in-map...); return its fd."""
    attr = abi.MapCreateAttr(
        map_type=map_type,
        key_size=key_size,
        value_size=value_size,
        max_entries=max_entries,
        map_flags=flags,
        inner_map_fd=inner_map_fd,
        map_name=name.encode()[:15],
        map_extra=map_extra,
    )
    return _check(Cmd.MAP_CREATE, attr, f"new map {name!r}" if name else "new map")


# -- programs and pins ----------------------------------------------------------------


def prog_get_fd_by_id(prog_id: int) -> int:
    """Open a program by id (close the fd with :func:`os.close`).

    Raises
    ------
    BpfKeyError
        No program has this id (any more).
    """
    attr = abi.IdAttr(start_id=prog_id)
    ret = bpf(Cmd.PROG_GET_FD_BY_ID, attr)
    if ret == -errno.ENOENT:
        raise BpfKeyError(prog_id, "the kernel's programs")
    if ret < 0:
        raise _error(-ret, Cmd.PROG_GET_FD_BY_ID, f"program id {prog_id}")
    return ret


def obj_pin(fd: int, path: str | os.PathLike[str]) -> None:
    """Pin the map, program or link ``fd`` at ``path`` on a bpf filesystem."""
    raw = ctypes.create_string_buffer(os.fsencode(path))
    attr = ObjAttr(pathname=ctypes.addressof(raw), bpf_fd=fd)
    _check(Cmd.OBJ_PIN, attr, f"pin {os.fspath(path)}")


def obj_get(path: str | os.PathLike[str]) -> int:
    """Open the object pinned at ``path``; return its fd (close with :func:`os.close`).

    Raises
    ------
    BpfKeyError
        Nothing is pinned there.
    """
    raw = ctypes.create_string_buffer(os.fsencode(path))
    attr = ObjAttr(pathname=ctypes.addressof(raw))
    ret = bpf(Cmd.OBJ_GET, attr)
    if ret == -errno.ENOENT:
        raise BpfKeyError(os.fspath(path), "the bpf filesystem")
    if ret < 0:
        raise _error(-ret, Cmd.OBJ_GET, f"pin {os.fspath(path)}")
    return ret


__all__ = [
    "bloom_add",
    "bloom_contains",
    "map_create_like",
    "map_peek",
    "map_pop",
    "map_push",
    "obj_get",
    "obj_pin",
    "prog_get_fd_by_id",
]
