"""bpf(2) through ctypes: map create/lookup/update/delete, batch reads, object info, ids.

This is the kernel layer's direct line to the kernel (besides the loader, which goes
through pylibbpf). Every function takes plain file descriptors and byte buffers and
returns bytes, numpy arrays or small dataclasses; decoding into Python values is the
job of :mod:`bpfnb.maps` and :mod:`bpfnb.dtypes`.

Errors from the kernel become precise exceptions:

* ``ENOENT`` on a lookup or delete of a key is a :class:`KeyError`
  (:class:`BpfKeyError`), exactly as for a Python mapping.
* ``E2BIG`` / ``ENOSPC`` on an update is a :class:`MapFullError`.
* ``EEXIST`` with ``BPF_NOEXIST`` is a :class:`KeyExistsError`.
* ``EPERM`` / ``EACCES`` is a :class:`BpfPermissionError` (also a
  :class:`~bpfnb.errors.PrivilegeError`).
* ``EINVAL`` is a :class:`BpfInvalidError`.
* ``ENOTSUPP`` / ``EOPNOTSUPP`` is a :class:`BpfNotSupportedError` (also a
  :class:`~bpfnb.errors.KernelFeatureError`).
* anything else is a :class:`BpfSyscallError`.

Every one of them is an :class:`OSError` with ``errno`` set and names the bpf command
(``BPF_MAP_UPDATE_ELEM``...) in its message.

Per-CPU maps: the kernel exchanges one value slot per *possible* CPU, each slot rounded
up to 8 bytes (see :func:`value_slot_size` and :func:`possible_cpus`).
"""

from __future__ import annotations

import ctypes
import enum
import errno
import os
import platform
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np

from bpfnb.errors import BpfnbError, KernelFeatureError, PrivilegeError

# --------------------------------------------------------------------------------------
# constants

#: bpf(2) syscall number per machine (uname -m).
SYSCALL_NUMBERS: dict[str, int] = {
    "x86_64": 321,
    "aarch64": 280,
    "arm64": 280,
    "riscv64": 280,
    "loongarch64": 280,
    "ppc64le": 361,
    "s390x": 351,
    "i686": 357,
    "i386": 357,
    "armv7l": 386,
}

ENOTSUPP = 524  # kernel-internal "operation not supported", leaks out of bpf(2)


class Cmd(enum.IntEnum):
    """bpf(2) commands (``enum bpf_cmd``)."""

    MAP_CREATE = 0
    MAP_LOOKUP_ELEM = 1
    MAP_UPDATE_ELEM = 2
    MAP_DELETE_ELEM = 3
    MAP_GET_NEXT_KEY = 4
    PROG_LOAD = 5
    OBJ_PIN = 6
    OBJ_GET = 7
    PROG_ATTACH = 8
    PROG_DETACH = 9
    PROG_TEST_RUN = 10
    PROG_GET_NEXT_ID = 11
    MAP_GET_NEXT_ID = 12
    PROG_GET_FD_BY_ID = 13
    MAP_GET_FD_BY_ID = 14
    OBJ_GET_INFO_BY_FD = 15
    PROG_QUERY = 16
    RAW_TRACEPOINT_OPEN = 17
    BTF_LOAD = 18
    BTF_GET_FD_BY_ID = 19
    TASK_FD_QUERY = 20
    MAP_LOOKUP_AND_DELETE_ELEM = 21
    MAP_FREEZE = 22
    BTF_GET_NEXT_ID = 23
    MAP_LOOKUP_BATCH = 24
    MAP_LOOKUP_AND_DELETE_BATCH = 25
    MAP_UPDATE_BATCH = 26
    MAP_DELETE_BATCH = 27
    LINK_CREATE = 28
    LINK_UPDATE = 29
    LINK_GET_FD_BY_ID = 30
    LINK_GET_NEXT_ID = 31
    ENABLE_STATS = 32
    ITER_CREATE = 33
    LINK_DETACH = 34
    PROG_BIND_MAP = 35


class MapType(enum.IntEnum):
    """Map types (``enum bpf_map_type``)."""

    UNSPEC = 0
    HASH = 1
    ARRAY = 2
    PROG_ARRAY = 3
    PERF_EVENT_ARRAY = 4
    PERCPU_HASH = 5
    PERCPU_ARRAY = 6
    STACK_TRACE = 7
    CGROUP_ARRAY = 8
    LRU_HASH = 9
    LRU_PERCPU_HASH = 10
    LPM_TRIE = 11
    ARRAY_OF_MAPS = 12
    HASH_OF_MAPS = 13
    DEVMAP = 14
    SOCKMAP = 15
    CPUMAP = 16
    XSKMAP = 17
    SOCKHASH = 18
    CGROUP_STORAGE = 19
    REUSEPORT_SOCKARRAY = 20
    PERCPU_CGROUP_STORAGE = 21
    QUEUE = 22
    STACK = 23
    SK_STORAGE = 24
    DEVMAP_HASH = 25
    STRUCT_OPS = 26
    RINGBUF = 27
    INODE_STORAGE = 28
    TASK_STORAGE = 29
    BLOOM_FILTER = 30
    USER_RINGBUF = 31
    CGRP_STORAGE = 32
    ARENA = 33


#: Map types whose values are exchanged as one 8-byte-aligned slot per possible CPU.
PER_CPU_TYPES: frozenset[int] = frozenset(
    {MapType.PERCPU_HASH, MapType.PERCPU_ARRAY, MapType.LRU_PERCPU_HASH, 21}
)

# update flags
BPF_ANY = 0
BPF_NOEXIST = 1
BPF_EXIST = 2
BPF_F_LOCK = 4

# map_flags
BPF_F_NO_PREALLOC = 1

BPF_STATS_RUN_TIME = 0


def map_type_name(map_type: int) -> str:
    """Return the kernel's name of a map type (``hash``, ``percpu_array``...)."""
    try:
        return MapType(map_type).name.lower()
    except ValueError:
        return f"type {map_type}"


# --------------------------------------------------------------------------------------
# errors


class BpfSyscallError(BpfnbError, OSError):
    """bpf(2) failed; ``errno`` is set and the message names the command.

    Attributes
    ----------
    command : str
        The bpf command, e.g. ``BPF_MAP_UPDATE_ELEM``.
    """

    def __init__(self, err: int, command: str, what: str = "") -> None:
        name = errno.errorcode.get(err, f"errno {err}")
        if err == ENOTSUPP:
            name, text = "ENOTSUPP", "Operation not supported"
        else:
            text = os.strerror(err)
        where = f" on {what}" if what else ""
        message = f"bpf({command}){where} failed: {name} ({text})"
        OSError.__init__(self, err, message)
        self.command = command
        self.what = what

    def __str__(self) -> str:
        return str(self.strerror)


class MapFullError(BpfSyscallError):
    """An update could not add a key: the map holds ``max_entries`` keys (E2BIG/ENOSPC)."""


class KeyExistsError(BpfSyscallError):
    """``BPF_NOEXIST`` update of a key that is already in the map (EEXIST)."""


class BpfPermissionError(BpfSyscallError, PrivilegeError):
    """bpf(2) refused for lack of privilege (EPERM/EACCES): run as root or with CAP_BPF."""


class BpfInvalidError(BpfSyscallError):
    """The kernel rejected the arguments (EINVAL): wrong sizes, flags or map type."""


class BpfNotSupportedError(BpfSyscallError, KernelFeatureError):
    """The kernel has no such operation for this map type (ENOTSUPP/EOPNOTSUPP)."""


class BpfKeyError(KeyError):
    """No such key in the map (ENOENT from a lookup, delete or update with BPF_EXIST)."""

    def __init__(self, key: object, what: str = "") -> None:
        super().__init__(key)
        self.key = key
        self.what = what

    def __str__(self) -> str:
        where = f" in {self.what}" if self.what else ""
        return f"no key {self.key!r}{where}"


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

_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long
_NR_BPF = SYSCALL_NUMBERS.get(platform.machine(), 321)


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


class _MapCreateAttr(ctypes.Structure):
    _fields_ = [
        ("map_type", ctypes.c_uint32),
        ("key_size", ctypes.c_uint32),
        ("value_size", ctypes.c_uint32),
        ("max_entries", ctypes.c_uint32),
        ("map_flags", ctypes.c_uint32),
        ("inner_map_fd", ctypes.c_uint32),
        ("numa_node", ctypes.c_uint32),
        ("map_name", ctypes.c_char * 16),
        ("map_ifindex", ctypes.c_uint32),
        ("btf_fd", ctypes.c_uint32),
        ("btf_key_type_id", ctypes.c_uint32),
        ("btf_value_type_id", ctypes.c_uint32),
        ("btf_vmlinux_value_type_id", ctypes.c_uint32),
        ("map_extra", ctypes.c_uint64),
    ]


class _ElemAttr(ctypes.Structure):
    _fields_ = [
        ("map_fd", ctypes.c_uint32),
        ("key", ctypes.c_uint64),
        ("value", ctypes.c_uint64),  # also next_key
        ("flags", ctypes.c_uint64),
    ]


class _BatchAttr(ctypes.Structure):
    _fields_ = [
        ("in_batch", ctypes.c_uint64),
        ("out_batch", ctypes.c_uint64),
        ("keys", ctypes.c_uint64),
        ("values", ctypes.c_uint64),
        ("count", ctypes.c_uint32),
        ("map_fd", ctypes.c_uint32),
        ("elem_flags", ctypes.c_uint64),
        ("flags", ctypes.c_uint64),
    ]


class _IdAttr(ctypes.Structure):
    _fields_ = [
        ("start_id", ctypes.c_uint32),  # also prog_id / map_id
        ("next_id", ctypes.c_uint32),
        ("open_flags", ctypes.c_uint32),
    ]


class _InfoAttr(ctypes.Structure):
    _fields_ = [
        ("bpf_fd", ctypes.c_uint32),
        ("info_len", ctypes.c_uint32),
        ("info", ctypes.c_uint64),
    ]


class _StatsAttr(ctypes.Structure):
    _fields_ = [("type", ctypes.c_uint32)]


class _MapInfo(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_uint32),
        ("id", ctypes.c_uint32),
        ("key_size", ctypes.c_uint32),
        ("value_size", ctypes.c_uint32),
        ("max_entries", ctypes.c_uint32),
        ("map_flags", ctypes.c_uint32),
        ("name", ctypes.c_char * 16),
        ("ifindex", ctypes.c_uint32),
        ("btf_vmlinux_value_type_id", ctypes.c_uint32),
        ("netns_dev", ctypes.c_uint64),
        ("netns_ino", ctypes.c_uint64),
        ("btf_id", ctypes.c_uint32),
        ("btf_key_type_id", ctypes.c_uint32),
        ("btf_value_type_id", ctypes.c_uint32),
        ("btf_vmlinux_id", ctypes.c_uint32),
        ("map_extra", ctypes.c_uint64),
    ]


class _ProgInfo(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_uint32),
        ("id", ctypes.c_uint32),
        ("tag", ctypes.c_uint8 * 8),
        ("jited_prog_len", ctypes.c_uint32),
        ("xlated_prog_len", ctypes.c_uint32),
        ("jited_prog_insns", ctypes.c_uint64),
        ("xlated_prog_insns", ctypes.c_uint64),
        ("load_time", ctypes.c_uint64),
        ("created_by_uid", ctypes.c_uint32),
        ("nr_map_ids", ctypes.c_uint32),
        ("map_ids", ctypes.c_uint64),
        ("name", ctypes.c_char * 16),
        ("ifindex", ctypes.c_uint32),
        ("gpl_compatible", ctypes.c_uint32),
        ("netns_dev", ctypes.c_uint64),
        ("netns_ino", ctypes.c_uint64),
        ("nr_jited_ksyms", ctypes.c_uint32),
        ("nr_jited_func_lens", ctypes.c_uint32),
        ("jited_ksyms", ctypes.c_uint64),
        ("jited_func_lens", ctypes.c_uint64),
        ("btf_id", ctypes.c_uint32),
        ("func_info_rec_size", ctypes.c_uint32),
        ("func_info", ctypes.c_uint64),
        ("nr_func_info", ctypes.c_uint32),
        ("nr_line_info", ctypes.c_uint32),
        ("line_info", ctypes.c_uint64),
        ("jited_line_info", ctypes.c_uint64),
        ("nr_jited_line_info", ctypes.c_uint32),
        ("line_info_rec_size", ctypes.c_uint32),
        ("jited_line_info_rec_size", ctypes.c_uint32),
        ("nr_prog_tags", ctypes.c_uint32),
        ("prog_tags", ctypes.c_uint64),
        ("run_time_ns", ctypes.c_uint64),
        ("run_cnt", ctypes.c_uint64),
        ("recursion_misses", ctypes.c_uint64),
        ("verified_insns", ctypes.c_uint32),
        ("attach_btf_obj_id", ctypes.c_uint32),
        ("attach_btf_id", ctypes.c_uint32),
    ]


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


def parse_cpu_list(text: str) -> list[int]:
    """Parse a kernel CPU list such as ``0-3,5,7-8`` into CPU numbers.

    Parameters
    ----------
    text : str
        The list, as in ``/sys/devices/system/cpu/possible``.

    Returns
    -------
    list of int
        The CPU numbers, ascending.
    """
    cpus: list[int] = []
    for part in text.strip().split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            lo, hi = part.split("-", 1)
            cpus.extend(range(int(lo), int(hi) + 1))
        else:
            cpus.append(int(part))
    return sorted(set(cpus))


@cache
def possible_cpu_ids() -> tuple[int, ...]:
    """Return the ids of the possible CPUs (``/sys/devices/system/cpu/possible``)."""
    path = Path("/sys/devices/system/cpu/possible")
    try:
        return tuple(parse_cpu_list(path.read_text()))
    except OSError:
        return tuple(range(os.cpu_count() or 1))


def possible_cpus() -> int:
    """Return the number of possible CPUs: how many value slots a per-CPU map exchanges."""
    return len(possible_cpu_ids())


def value_slot_size(value_size: int) -> int:
    """Return ``value_size`` rounded up to 8 bytes: one CPU's slot in a per-CPU value."""
    return (value_size + 7) & ~7


def is_per_cpu(map_type: int) -> bool:
    """Return whether values of ``map_type`` are exchanged per CPU."""
    return map_type in PER_CPU_TYPES


def value_buffer_size(map_type: int, value_size: int) -> int:
    """Return the bytes one value occupies in bpf(2) buffers for this map type."""
    if is_per_cpu(map_type):
        return value_slot_size(value_size) * possible_cpus()
    return value_size


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
        A :class:`MapType`.
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
    attr = _MapCreateAttr(
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
    what = f"new {map_type_name(map_type)} map {name!r}" if name else ""
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
        Bytes of the value buffer: :func:`value_buffer_size` of the map.
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
    attr = _ElemAttr(map_fd=fd, key=k.address, value=ctypes.addressof(out), flags=flags)
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
    attr = _ElemAttr(map_fd=fd, key=k.address, value=v.address, flags=flags)
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
    attr = _ElemAttr(map_fd=fd, key=k.address)
    ret = bpf(Cmd.MAP_DELETE_ELEM, attr)
    if ret == -errno.ENOENT:
        raise BpfKeyError(_raw(key), _name(fd, what))
    if ret < 0:
        raise _error(-ret, Cmd.MAP_DELETE_ELEM, _name(fd, what))


def map_get_next_key(fd: int, key: Buffer | None, key_size: int, *, what: str = "") -> bytes | None:
    """Return the key after ``key`` (the first key when ``key`` is None), or None at the end."""
    out = ctypes.create_string_buffer(max(key_size, 1))
    k = _Pinned(key, 0, "key") if key is not None else None
    attr = _ElemAttr(map_fd=fd, key=k.address if k else 0, value=ctypes.addressof(out))
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
        :func:`value_buffer_size` (all CPU slots for per-CPU maps).
    batched : bool
        Whether the map was read in one pass (BPF_MAP_LOOKUP_BATCH or a map-element
        iterator); False for the get-next-key + lookup walk.
    calls : int
        bpf(2) / read(2) calls made.
    method : str
        ``"iter"``, ``"batch"`` or ``"walk"``.
    """

    keys: np.ndarray
    values: np.ndarray
    batched: bool = True
    calls: int = 0
    method: str = "batch"

    def __len__(self) -> int:
        return int(self.keys.shape[0])


_NO_BATCH_ERRNOS = frozenset({errno.EINVAL, ENOTSUPP, errno.EOPNOTSUPP, errno.ENOSYS})


@dataclass
class _BatchState:
    """Buffers of one batch read, grown as needed."""

    keys: np.ndarray
    values: np.ndarray
    calls: int = 0
    extra: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)


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
        Bytes per value in bpf(2) buffers (:func:`value_buffer_size`).
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
    attr = _BatchAttr()
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
    attr = _ElemAttr(map_fd=fd, value=ctypes.addressof(out))
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
    attr = _BatchAttr(
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
    attr = _BatchAttr(keys=int(keys.ctypes.data), count=count, map_fd=fd)
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
        return map_type_name(self.type)


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
    attr = _InfoAttr(bpf_fd=fd, info_len=ctypes.sizeof(info), info=ctypes.addressof(info))
    _check(Cmd.OBJ_GET_INFO_BY_FD, attr, what or f"fd {fd}")
    return int(attr.info_len)


def map_info(fd: int) -> MapInfo:
    """Return :class:`MapInfo` for a map fd."""
    raw = _MapInfo()
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
    raw = _ProgInfo()
    obj_get_info_by_fd(fd, raw, what=f"program fd {fd}")
    n = int(raw.nr_map_ids)
    ids: tuple[int, ...] = ()
    if n:
        arr = (ctypes.c_uint32 * n)()
        again = _ProgInfo(nr_map_ids=n, map_ids=ctypes.addressof(arr))
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
    attr = _IdAttr(start_id=start)
    ret = bpf(cmd, attr)
    if ret == -errno.ENOENT:
        return None
    if ret < 0:
        raise _error(-ret, cmd, "")
    return int(attr.next_id)


def prog_get_next_id(start: int = 0) -> int | None:
    """Return the id of the first program after ``start``, or None."""
    return _next_id(Cmd.PROG_GET_NEXT_ID, start)


def map_get_next_id(start: int = 0) -> int | None:
    """Return the id of the first map after ``start``, or None."""
    return _next_id(Cmd.MAP_GET_NEXT_ID, start)


def prog_ids() -> list[int]:
    """Return the ids of every loaded program."""
    ids: list[int] = []
    nxt = prog_get_next_id(0)
    while nxt is not None:
        ids.append(nxt)
        nxt = prog_get_next_id(nxt)
    return ids


def map_ids() -> list[int]:
    """Return the ids of every map."""
    ids: list[int] = []
    nxt = map_get_next_id(0)
    while nxt is not None:
        ids.append(nxt)
        nxt = map_get_next_id(nxt)
    return ids


def _fd_by_id(cmd: Cmd, obj_id: int, kind: str) -> int:
    attr = _IdAttr(start_id=obj_id)
    ret = bpf(cmd, attr)
    if ret == -errno.ENOENT:
        raise BpfKeyError(obj_id, f"the kernel's {kind}s")
    if ret < 0:
        raise _error(-ret, cmd, f"{kind} id {obj_id}")
    return ret


def prog_get_fd_by_id(prog_id: int) -> int:
    """Open a program by id (close the fd with :func:`os.close`)."""
    return _fd_by_id(Cmd.PROG_GET_FD_BY_ID, prog_id, "program")


def map_get_fd_by_id(map_id: int) -> int:
    """Open a map by id (close the fd with :func:`os.close`)."""
    return _fd_by_id(Cmd.MAP_GET_FD_BY_ID, map_id, "map")


def enable_stats(kind: int = BPF_STATS_RUN_TIME) -> int:
    """Turn on run-time statistics (``run_cnt``, ``run_time_ns``) for every program.

    Statistics stay on while the returned fd is open; close it with :func:`os.close`.
    """
    return _check(Cmd.ENABLE_STATS, _StatsAttr(type=kind), "BPF_STATS_RUN_TIME")
