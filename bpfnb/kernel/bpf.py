"""bpf(2) through ctypes: map create/lookup/update/delete, batch reads, object info, ids.

The kernel layer's direct line to the kernel for maps and object information (the
loader goes through libbpf). Every function takes a plain fd number (the caller gets
it from its :class:`~bpfnb.kernel.fd.OwnedFd` right before the call) and byte
buffers, and returns bytes, numpy arrays or small dataclasses; decoding into Python
values is the job of :mod:`bpfnb.kernel.maps` and :mod:`bpfnb.codec`. The ABI
(command numbers, ``bpf_attr`` layouts) is in :mod:`bpfnb.kernel.bpf_abi`.

Errors from the kernel become precise exceptions (all in :mod:`bpfnb.errors`):

* ``ENOENT`` on a lookup or delete of a key is a :class:`KeyError`
  (:class:`~bpfnb.errors.BpfKeyError`), exactly as for a Python mapping.
* ``E2BIG`` / ``ENOSPC`` on an update is a :class:`~bpfnb.errors.MapFullError`.
* ``EEXIST`` with ``BPF_NOEXIST`` is a :class:`~bpfnb.errors.KeyExistsError`.
* ``EPERM`` / ``EACCES`` is a :class:`~bpfnb.errors.BpfPermissionError` (also a
  :class:`~bpfnb.errors.PrivilegeError`).
* ``EINVAL`` is a :class:`~bpfnb.errors.BpfInvalidError`.
* ``ENOTSUPP`` / ``EOPNOTSUPP`` is a :class:`~bpfnb.errors.BpfNotSupportedError` (also
  a :class:`~bpfnb.errors.KernelFeatureError`).
* anything else is a :class:`~bpfnb.errors.BpfSyscallError`.

Every one of them is an :class:`OSError` with ``errno`` set and names the bpf command
(``BPF_MAP_UPDATE_ELEM``...) in its message.
"""

from __future__ import annotations

import ctypes
import errno
from dataclasses import dataclass

import numpy as np

from bpfnb.errors import (
    ENOTSUPP,
    BpfInvalidError,
    BpfKeyError,
    BpfNotSupportedError,
    BpfPermissionError,
    BpfSyscallError,
    KeyExistsError,
    MapFullError,
)
from bpfnb.kernel import bpf_abi as abi
from bpfnb.kernel.bpf_abi import BPF_ANY, BPF_EXIST, BPF_STATS_RUN_TIME, Cmd
from bpfnb.kernel.libc import LIBC, syscall_number
from bpfnb.object import maptypes


def _error(err: int, command: Cmd, what: str) -> BpfSyscallError:
    """Build the exception for ``err`` from ``command``."""
    name = f"BPF_{command.name}"
    cls: type[BpfSyscallError]
    if err in (errno.EPERM, errno.EACCES):
        cls = BpfPermissionError
    elif err in (errno.E2BIG, errno.ENOSPC) and command in (
        Cmd.MAP_UPDATE_ELEM,
        Cmd.MAP_UPDATE_BATCH,
    ):
        cls = MapFullError
    elif err == errno.EEXIST and command in (Cmd.MAP_UPDATE_ELEM, Cmd.MAP_UPDATE_BATCH):
        cls = KeyExistsError
    elif err == errno.EINVAL:
        cls = BpfInvalidError
    elif err in (ENOTSUPP, errno.EOPNOTSUPP):
        cls = BpfNotSupportedError
    else:
        cls = BpfSyscallError
    return cls(err, name, what)


# --------------------------------------------------------------------------------------
# the raw syscall

_syscall = LIBC.syscall
_NR_BPF = syscall_number("bpf")


def bpf(cmd: Cmd, attr: ctypes.Structure) -> int:
    """Call bpf(2) and return its result; on failure return ``-errno``.

    Parameters
    ----------
    cmd : Cmd
        The command.
    attr : ctypes.Structure
        The command's ``union bpf_attr`` member; it is passed by reference and may be
        written by the kernel.

    Returns
    -------
    int
        The non-negative result, or minus the errno.
    """
    ret = _syscall(
        ctypes.c_long(_NR_BPF),
        ctypes.c_int(int(cmd)),
        ctypes.byref(attr),
        ctypes.c_uint(ctypes.sizeof(attr)),
    )
    if ret < 0:
        return -ctypes.get_errno()
    return int(ret)


def _check(cmd: Cmd, attr: ctypes.Structure, what: str = "") -> int:
    """Call bpf(2) and raise the precise exception on failure."""
    ret = bpf(cmd, attr)
    if ret < 0:
        raise _error(-ret, cmd, what)
    return ret


# --------------------------------------------------------------------------------------
# attr layouts (union bpf_attr members); fields we do not use are left zero


# --------------------------------------------------------------------------------------
# buffers

Buffer = bytes | bytearray | memoryview | np.ndarray


class _Pinned:
    """A C address for a Python buffer, valid while this object lives."""

    __slots__ = ("address", "keep", "size")

    def __init__(self, buf: Buffer, size: int, what: str) -> None:
        if isinstance(buf, np.ndarray):
            if not buf.flags.c_contiguous:
                buf = np.ascontiguousarray(buf)
            self.keep: object = buf
            self.address = int(buf.ctypes.data)
            n = int(buf.nbytes)
        else:
            raw = bytes(buf) if not isinstance(buf, bytes) else buf
            cbuf = ctypes.create_string_buffer(raw, len(raw))
            self.keep = cbuf
            self.address = ctypes.addressof(cbuf)
            n = len(raw)
        if n < size:
            raise BpfInvalidError(errno.EINVAL, "buffer", f"{what}: {n} bytes, need {size}")
        self.size = n


def _raw(buf: Buffer) -> bytes:
    """Return the bytes of a buffer (for messages)."""
    return buf.tobytes() if isinstance(buf, np.ndarray) else bytes(buf)


def _name(fd: int, what: str) -> str:
    return what or f"map fd {fd}"


# --------------------------------------------------------------------------------------
# CPUs


# --------------------------------------------------------------------------------------
# map commands


def map_create(
    map_type: int,
    key_size: int,
    value_size: int,
    max_entries: int,
    flags: int = 0,
    name: str = "",
    *,
    btf_fd: int = 0,
    btf_key_type_id: int = 0,
    btf_value_type_id: int = 0,
) -> int:
    """Create a map and return its fd (the caller closes it with :func:`os.close`).

    Parameters
    ----------
    map_type : int
        A map type (see :mod:`bpfnb.object.maptypes`).
    key_size, value_size, max_entries, flags : int
        As in ``struct bpf_map_create_opts``.
    name : str
        Up to 15 characters (longer names are cut).
    btf_fd, btf_key_type_id, btf_value_type_id : int
        Optional BTF describing key and value.

    Returns
    -------
    int
        The new map's file descriptor.
    """
    attr = abi.MapCreateAttr(
        map_type=map_type,
        key_size=key_size,
        value_size=value_size,
        max_entries=max_entries,
        map_flags=flags,
        map_name=name.encode()[:15],
        btf_fd=btf_fd,
        btf_key_type_id=btf_key_type_id,
        btf_value_type_id=btf_value_type_id,
    )
    what = f"new {maptypes.type_name(map_type)} map {name!r}" if name else ""
    return _check(Cmd.MAP_CREATE, attr, what)


def map_lookup(fd: int, key: Buffer, value_size: int, flags: int = 0, *, what: str = "") -> bytes:
    """Return the raw value of ``key`` (all CPU slots for per-CPU maps).

    Parameters
    ----------
    fd : int
        The map fd.
    key : bytes-like
        The raw key.
    value_size : int
        Bytes of the value buffer: :func:`bpfnb.kernel.cpus.value_buffer_size` of the map.
    flags : int
        ``BPF_F_LOCK`` or 0.
    what : str
        The map's name for messages.

    Raises
    ------
    BpfKeyError
        The key is not in the map.
    """
    k = _Pinned(key, 0, "key")
    out = ctypes.create_string_buffer(max(value_size, 1))
    attr = abi.ElemAttr(map_fd=fd, key=k.address, value=ctypes.addressof(out), flags=flags)
    ret = bpf(Cmd.MAP_LOOKUP_ELEM, attr)
    if ret == -errno.ENOENT:
        raise BpfKeyError(_raw(key), _name(fd, what))
    if ret < 0:
        raise _error(-ret, Cmd.MAP_LOOKUP_ELEM, _name(fd, what))
    return out.raw[:value_size]


def map_update(
    fd: int, key: Buffer, value: Buffer, flags: int = BPF_ANY, *, what: str = ""
) -> None:
    """Set ``key`` to the raw ``value`` (``flags``: BPF_ANY, BPF_NOEXIST, BPF_EXIST).

    Raises
    ------
    MapFullError
        The map holds max_entries keys already (hash maps).
    KeyExistsError
        ``BPF_NOEXIST`` and the key exists.
    BpfKeyError
        ``BPF_EXIST`` and the key does not exist.
    BpfInvalidError
        Bad sizes or flags, or an array index out of range.
    """
    k = _Pinned(key, 0, "key")
    v = _Pinned(value, 0, "value")
    attr = abi.ElemAttr(map_fd=fd, key=k.address, value=v.address, flags=flags)
    ret = bpf(Cmd.MAP_UPDATE_ELEM, attr)
    if ret == -errno.ENOENT and flags & BPF_EXIST:
        raise BpfKeyError(_raw(key), _name(fd, what))
    if ret < 0:
        raise _error(-ret, Cmd.MAP_UPDATE_ELEM, _name(fd, what))


def map_delete(fd: int, key: Buffer, *, what: str = "") -> None:
    """Delete ``key``.

    Raises
    ------
    BpfKeyError
        The key is not in the map.
    BpfInvalidError
        The map type has no delete (arrays).
    """
    k = _Pinned(key, 0, "key")
    attr = abi.ElemAttr(map_fd=fd, key=k.address)
    ret = bpf(Cmd.MAP_DELETE_ELEM, attr)
    if ret == -errno.ENOENT:
        raise BpfKeyError(_raw(key), _name(fd, what))
    if ret < 0:
        raise _error(-ret, Cmd.MAP_DELETE_ELEM, _name(fd, what))


def map_get_next_key(fd: int, key: Buffer | None, key_size: int, *, what: str = "") -> bytes | None:
    """Return the key after ``key`` (the first key when ``key`` is None), or None at the end."""
    out = ctypes.create_string_buffer(max(key_size, 1))
    k = _Pinned(key, 0, "key") if key is not None else None
    attr = abi.ElemAttr(map_fd=fd, key=k.address if k else 0, value=ctypes.addressof(out))
    ret = bpf(Cmd.MAP_GET_NEXT_KEY, attr)
    if ret == -errno.ENOENT:
        return None
    if ret < 0:
        raise _error(-ret, Cmd.MAP_GET_NEXT_KEY, _name(fd, what))
    return out.raw[:key_size]


def map_keys(fd: int, key_size: int, *, what: str = "") -> list[bytes]:
    """Return every key of the map via get-next-key (restarting if a key vanishes)."""
    keys: list[bytes] = []
    key = map_get_next_key(fd, None, key_size, what=what)
    while key is not None:
        keys.append(key)
        key = map_get_next_key(fd, key, key_size, what=what)
    return keys


@dataclass
class Batch:
    """Raw records read from a map.

    Attributes
    ----------
    keys : numpy.ndarray
        ``uint8`` array of shape ``(count, key_size)``.
    values : numpy.ndarray
        ``uint8`` array of shape ``(count, value_bytes)``, where ``value_bytes`` is
        :func:`bpfnb.kernel.cpus.value_buffer_size` (all CPU slots for per-CPU maps).
    batched : bool
        Whether the map was read in one pass (BPF_MAP_LOOKUP_BATCH); False for the
        get-next-key + lookup walk.
    calls : int
        bpf(2) calls made.
    method : str
        ``"batch"`` or ``"walk"``.
    """

    keys: np.ndarray
    values: np.ndarray
    batched: bool = True
    calls: int = 0
    method: str = "batch"

    def __len__(self) -> int:
        return int(self.keys.shape[0])


_NO_BATCH_ERRNOS = frozenset({errno.EINVAL, ENOTSUPP, errno.EOPNOTSUPP, errno.ENOSYS})


def map_lookup_batch(
    fd: int,
    key_size: int,
    value_bytes: int,
    max_entries: int,
    *,
    chunk: int | None = None,
    what: str = "",
    fallback: bool = True,
) -> Batch:
    """Read every key and value of a map with BPF_MAP_LOOKUP_BATCH.

    The records land in preallocated numpy buffers (``max_entries`` rows, grown if the
    map changes under the walk); the batch token is carried from call to call until
    the kernel answers ENOENT. When a hash bucket holds more keys than a call may
    return (ENOSPC), the call is retried with a larger count. Map types or kernels
    without batch support (EINVAL/ENOTSUPP on the first call) are read with
    get-next-key plus lookup instead when ``fallback`` is true.

    Parameters
    ----------
    fd : int
        The map fd.
    key_size : int
        The map's key size.
    value_bytes : int
        Bytes per value in bpf(2) buffers (:func:`bpfnb.kernel.cpus.value_buffer_size`).
    max_entries : int
        The map's capacity (sizes the buffers).
    chunk : int, optional
        Records per bpf(2) call (default: the whole capacity in one call).
    what : str
        The map's name for messages.
    fallback : bool
        Fall back to :func:`map_lookup_fallback` when batch is unsupported.

    Returns
    -------
    Batch
        The records, in kernel order.
    """
    capacity = max(int(max_entries), 1)
    keys = np.empty((capacity, key_size), dtype=np.uint8)
    values = np.empty((capacity, value_bytes), dtype=np.uint8)
    token_in = np.zeros(max(key_size, 8), dtype=np.uint8)
    token_out = np.zeros(max(key_size, 8), dtype=np.uint8)
    total = 0
    calls = 0
    first = True
    want = min(chunk or capacity, capacity)
    attr = abi.BatchAttr()
    while True:
        if total + want > keys.shape[0]:
            grow = max(keys.shape[0] * 2, total + want)
            keys = _grow(keys, grow)
            values = _grow(values, grow)
        attr.in_batch = 0 if first else int(token_in.ctypes.data)
        attr.out_batch = int(token_out.ctypes.data)
        attr.keys = int(keys.ctypes.data) + total * key_size
        attr.values = int(values.ctypes.data) + total * value_bytes
        attr.count = want
        attr.map_fd = fd
        attr.elem_flags = 0
        attr.flags = 0
        ret = bpf(Cmd.MAP_LOOKUP_BATCH, attr)
        calls += 1
        got = int(attr.count)
        if ret < 0:
            err = -ret
            if err == errno.ENOENT:
                total += got
                break
            if err == errno.ENOSPC and got == 0:
                want *= 2  # a bucket bigger than the request: ask for more
                continue
            if first and err in _NO_BATCH_ERRNOS and fallback:
                return map_lookup_fallback(fd, key_size, value_bytes, what=what)
            raise _error(err, Cmd.MAP_LOOKUP_BATCH, _name(fd, what))
        total += got
        first = False
        token_in[:] = token_out
        if got == 0:
            break  # no progress and no ENOENT: stop rather than spin
    return Batch(keys[:total], values[:total], True, calls)


def _grow(arr: np.ndarray, rows: int) -> np.ndarray:
    out = np.empty((rows, arr.shape[1]), dtype=arr.dtype)
    out[: arr.shape[0]] = arr
    return out


def map_lookup_fallback(fd: int, key_size: int, value_bytes: int, *, what: str = "") -> Batch:
    """Read every record with get-next-key + lookup (maps or kernels without batch).

    Keys deleted between the two calls are skipped.
    """
    key_list = map_keys(fd, key_size, what=what)
    keys = np.empty((len(key_list), key_size), dtype=np.uint8)
    values = np.empty((len(key_list), value_bytes), dtype=np.uint8)
    out = ctypes.create_string_buffer(max(value_bytes, 1))
    attr = abi.ElemAttr(map_fd=fd, value=ctypes.addressof(out))
    n = 0
    for key in key_list:
        kbuf = ctypes.create_string_buffer(key, key_size)
        attr.key = ctypes.addressof(kbuf)
        ret = bpf(Cmd.MAP_LOOKUP_ELEM, attr)
        if ret == -errno.ENOENT:
            continue
        if ret < 0:
            raise _error(-ret, Cmd.MAP_LOOKUP_ELEM, _name(fd, what))
        keys[n] = np.frombuffer(key, dtype=np.uint8)
        values[n] = np.frombuffer(out.raw[:value_bytes], dtype=np.uint8)
        n += 1
    return Batch(keys[:n], values[:n], False, 2 * len(key_list) + 1, "walk")


def map_update_batch(
    fd: int, keys: np.ndarray, values: np.ndarray, flags: int = BPF_ANY, *, what: str = ""
) -> int:
    """Write many records with BPF_MAP_UPDATE_BATCH; return how many were written.

    Parameters
    ----------
    fd : int
        The map fd.
    keys, values : numpy.ndarray
        C-contiguous arrays with one record per row (any dtype; rows are raw bytes).
    flags : int
        Per-element flags (BPF_ANY, BPF_NOEXIST, BPF_EXIST).
    """
    keys = np.ascontiguousarray(keys)
    values = np.ascontiguousarray(values)
    count = int(keys.shape[0])
    if int(values.shape[0]) != count:
        raise ValueError(f"{count} keys but {values.shape[0]} values")
    attr = abi.BatchAttr(
        keys=int(keys.ctypes.data),
        values=int(values.ctypes.data),
        count=count,
        map_fd=fd,
        elem_flags=flags,
    )
    _check(Cmd.MAP_UPDATE_BATCH, attr, _name(fd, what))
    return int(attr.count)


def map_delete_batch(fd: int, keys: np.ndarray, *, what: str = "") -> int:
    """Delete many keys with BPF_MAP_DELETE_BATCH; return how many were deleted.

    A missing key stops the batch with :class:`BpfKeyError`.
    """
    keys = np.ascontiguousarray(keys)
    count = int(keys.shape[0])
    if count == 0:
        return 0
    attr = abi.BatchAttr(keys=int(keys.ctypes.data), count=count, map_fd=fd)
    ret = bpf(Cmd.MAP_DELETE_BATCH, attr)
    if ret == -errno.ENOENT:
        done = int(attr.count)
        row = keys.reshape(count, -1)[min(done, count - 1)]
        raise BpfKeyError(row.tobytes(), _name(fd, what))
    if ret < 0:
        raise _error(-ret, Cmd.MAP_DELETE_BATCH, _name(fd, what))
    return int(attr.count)


# --------------------------------------------------------------------------------------
# info and ids


@dataclass(frozen=True)
class MapInfo:
    """What the kernel reports about a map (``struct bpf_map_info``)."""

    type: int
    id: int
    key_size: int
    value_size: int
    max_entries: int
    flags: int
    name: str
    btf_id: int
    btf_key_type_id: int
    btf_value_type_id: int

    @property
    def type_name(self) -> str:
        """The map type as the kernel names it (``hash``, ``percpu_array``...)."""
        return maptypes.type_name(self.type)


@dataclass(frozen=True)
class ProgInfo:
    """What the kernel reports about a program (``struct bpf_prog_info``).

    ``run_cnt`` and ``run_time_ns`` only grow while stats are enabled (see
    :func:`enable_stats`).
    """

    type: int
    id: int
    name: str
    tag: str
    run_cnt: int
    run_time_ns: int
    map_ids: tuple[int, ...]
    btf_id: int
    load_time: int
    created_by_uid: int
    verified_insns: int
    recursion_misses: int


def obj_get_info_by_fd(fd: int, info: ctypes.Structure, *, what: str = "") -> int:
    """Fill ``info`` (a ``bpf_*_info`` structure) for ``fd``; return the kernel's length."""
    attr = abi.InfoAttr(bpf_fd=fd, info_len=ctypes.sizeof(info), info=ctypes.addressof(info))
    _check(Cmd.OBJ_GET_INFO_BY_FD, attr, what or f"fd {fd}")
    return int(attr.info_len)


def map_info(fd: int) -> MapInfo:
    """Return :class:`MapInfo` for a map fd."""
    raw = abi.MapInfoStruct()
    obj_get_info_by_fd(fd, raw, what=f"map fd {fd}")
    return MapInfo(
        type=raw.type,
        id=raw.id,
        key_size=raw.key_size,
        value_size=raw.value_size,
        max_entries=raw.max_entries,
        flags=raw.map_flags,
        name=raw.name.decode(errors="replace"),
        btf_id=raw.btf_id,
        btf_key_type_id=raw.btf_key_type_id,
        btf_value_type_id=raw.btf_value_type_id,
    )


def prog_info(fd: int) -> ProgInfo:
    """Return :class:`ProgInfo` for a program fd (including the ids of its maps)."""
    raw = abi.ProgInfoStruct()
    obj_get_info_by_fd(fd, raw, what=f"program fd {fd}")
    n = int(raw.nr_map_ids)
    ids: tuple[int, ...] = ()
    if n:
        arr = (ctypes.c_uint32 * n)()
        again = abi.ProgInfoStruct(nr_map_ids=n, map_ids=ctypes.addressof(arr))
        obj_get_info_by_fd(fd, again, what=f"program fd {fd}")
        ids = tuple(int(x) for x in arr[: min(n, int(again.nr_map_ids))])
    return ProgInfo(
        type=raw.type,
        id=raw.id,
        name=raw.name.decode(errors="replace"),
        tag=bytes(raw.tag).hex(),
        run_cnt=raw.run_cnt,
        run_time_ns=raw.run_time_ns,
        map_ids=ids,
        btf_id=raw.btf_id,
        load_time=raw.load_time,
        created_by_uid=raw.created_by_uid,
        verified_insns=raw.verified_insns,
        recursion_misses=raw.recursion_misses,
    )


def _next_id(cmd: Cmd, start: int) -> int | None:
    attr = abi.IdAttr(start_id=start)
    ret = bpf(cmd, attr)
    if ret == -errno.ENOENT:
        return None
    if ret < 0:
        raise _error(-ret, cmd, "")
    return int(attr.next_id)


def map_get_next_id(start: int = 0) -> int | None:
    """Return the id of the first map after ``start``, or None."""
    return _next_id(Cmd.MAP_GET_NEXT_ID, start)


def map_ids() -> list[int]:
    """Return the ids of every map."""
    ids: list[int] = []
    nxt = map_get_next_id(0)
    while nxt is not None:
        ids.append(nxt)
        nxt = map_get_next_id(nxt)
    return ids


def _fd_by_id(cmd: Cmd, obj_id: int, kind: str) -> int:
    attr = abi.IdAttr(start_id=obj_id)
    ret = bpf(cmd, attr)
    if ret == -errno.ENOENT:
        raise BpfKeyError(obj_id, f"the kernel's {kind}s")
    if ret < 0:
        raise _error(-ret, cmd, f"{kind} id {obj_id}")
    return ret


def map_get_fd_by_id(map_id: int) -> int:
    """Open a map by id (close the fd with :func:`os.close`)."""
    return _fd_by_id(Cmd.MAP_GET_FD_BY_ID, map_id, "map")


def enable_stats(kind: int = BPF_STATS_RUN_TIME) -> int:
    """Turn on run-time statistics (``run_cnt``, ``run_time_ns``) for every program.

    Statistics stay on while the returned fd is open; close it with :func:`os.close`.
    """
    return _check(Cmd.ENABLE_STATS, abi.StatsAttr(type=kind), "BPF_STATS_RUN_TIME")
