"""Object-attached storage: task, inode, socket and cgroup local storage maps.

These maps keep one value per kernel object, created by BPF programs with
``bpf_task_storage_get()``, ``bpf_sk_storage_get()``, ``bpf_cgrp_storage_get()`` or
``bpf_inode_storage_get()``. From user space the kernel addresses an element by a file
descriptor of its owner, which bpfnb opens for you:

=================  ===============================  ===============================
kind               ``m[key]`` takes                 ``df()`` owner columns
=================  ===============================  ===============================
``task_storage``   a pid (``pidfd_open``)           ``tid``, ``pid``, ``comm``
``inode_storage``  a path or an open file / fd      ``path``, ``ino``
``sk_storage``     a socket object or its fd        ``family``, ``local``, ``remote``,
                                                    ``state``, ``ino``
``cgrp_storage``   a cgroup (``/a/b`` as in         ``cgroup_id``, ``cgroup``
                   ``/proc/PID/cgroup``, a folder
                   of the cgroup2 mount, or an fd)
=================  ===============================  ===============================

``m[key]``, ``m[key] = v`` and ``del m[key]`` work for every kind. Listing needs a
BPF iterator, the kernel's way to visit objects: for task, socket and cgroup storage
bpfnb builds a small iterator program (``iter/task``, ``iter/bpf_sk_storage_map``,
``iter/cgroup``), loads it with the map reused by fd, and reads one record per owner
that has a value. The kernel offers no inode iterator that may read inode storage
(``bpf_inode_storage_get`` is for BPF LSM programs only), so an inode storage map's
``df()`` lists the paths used as keys through this view (or given as ``paths=``).
The iterator object is loaded on the first ``df()`` and closed with the program.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import socket
import struct
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bpfnb.build import compiler
from bpfnb.codec import frames
from bpfnb.errors import BpfKeyError, BpfnbError, MapTypeError
from bpfnb.kernel import bpf, loader
from bpfnb.kernel.fd import OwnedFd
from bpfnb.kernel.libbpf import IterAttachOpts
from bpfnb.kernel.maps import _WritableMap
from bpfnb.object.spec import MapSpec, ObjectSpec

CGROUP2_MOUNTS = (Path("/sys/fs/cgroup/unified"), Path("/sys/fs/cgroup"))
_TCP_STATES = {
    1: "ESTABLISHED",
    2: "SYN_SENT",
    3: "SYN_RECV",
    4: "FIN_WAIT1",
    5: "FIN_WAIT2",
    6: "TIME_WAIT",
    7: "CLOSE",
    8: "CLOSE_WAIT",
    9: "LAST_ACK",
    10: "LISTEN",
    11: "CLOSING",
    12: "NEW_SYN_RECV",
}

# -- iterator programs: one record per owner, then the value bytes --------------------

_TASK_ITER = r"""
struct {
    __uint(type, BPF_MAP_TYPE_TASK_STORAGE);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, int);
    __uint(value_size, BPFNB_VALUE_SIZE);
} store SEC(".maps");

struct owner { __u32 tid; __u32 pid; char comm[16]; };

SEC("iter/task")
int bpfnb_list(struct bpf_iter__task *ctx)
{
    struct task_struct *task = ctx->task;
    struct owner o = {};
    void *v;

    if (!task)
        return 0;
    v = bpf_task_storage_get(&store, task, 0, 0);
    if (!v)
        return 0;
    o.tid = task->pid;
    o.pid = task->tgid;
    __builtin_memcpy(o.comm, task->comm, sizeof(o.comm));
    bpf_seq_write(ctx->meta->seq, &o, sizeof(o));
    bpf_seq_write(ctx->meta->seq, v, BPFNB_VALUE_SIZE);
    return 0;
}
"""

_CGROUP_ITER = r"""
struct {
    __uint(type, BPF_MAP_TYPE_CGRP_STORAGE);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, int);
    __uint(value_size, BPFNB_VALUE_SIZE);
} store SEC(".maps");

struct owner { __u64 id; };

SEC("iter/cgroup")
int bpfnb_list(struct bpf_iter__cgroup *ctx)
{
    struct cgroup *cgrp = ctx->cgroup;
    struct owner o = {};
    void *v;

    if (!cgrp)
        return 0;
    v = bpf_cgrp_storage_get(&store, cgrp, 0, 0);
    if (!v)
        return 0;
    o.id = cgrp->kn->id;
    bpf_seq_write(ctx->meta->seq, &o, sizeof(o));
    bpf_seq_write(ctx->meta->seq, v, BPFNB_VALUE_SIZE);
    return 0;
}
"""

_SK_ITER = r"""
struct {
    __uint(type, BPF_MAP_TYPE_SK_STORAGE);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, int);
    __uint(value_size, BPFNB_VALUE_SIZE);
} store SEC(".maps");

struct owner {
    __u64 ino;
    __u16 family;
    __u16 lport;
    __u16 rport;
    __u8 state;
    __u8 protocol;
    __u8 laddr[16];
    __u8 raddr[16];
};

SEC("iter/bpf_sk_storage_map")
int bpfnb_list(struct bpf_iter__bpf_sk_storage_map *ctx)
{
    struct sock *sk = ctx->sk;
    void *v = ctx->value;
    struct owner o = {};
    struct socket *sock;

    if (!sk || !v)
        return 0;
    o.family = sk->__sk_common.skc_family;
    o.lport = sk->__sk_common.skc_num;
    o.rport = __builtin_bswap16(sk->__sk_common.skc_dport);
    o.state = sk->__sk_common.skc_state;
    o.protocol = sk->sk_protocol;
    if (o.family == 2) {
        __builtin_memcpy(o.laddr, &sk->__sk_common.skc_rcv_saddr, 4);
        __builtin_memcpy(o.raddr, &sk->__sk_common.skc_daddr, 4);
    } else {
        __builtin_memcpy(o.laddr, &sk->__sk_common.skc_v6_rcv_saddr, 16);
        __builtin_memcpy(o.raddr, &sk->__sk_common.skc_v6_daddr, 16);
    }
    sock = sk->sk_socket;
    if (sock && sock->file)
        o.ino = sock->file->f_inode->i_ino;
    bpf_seq_write(ctx->meta->seq, &o, sizeof(o));
    bpf_seq_write(ctx->meta->seq, v, BPFNB_VALUE_SIZE);
    return 0;
}
"""


class _IterLinkInfo(ctypes.Structure):
    """``union bpf_iter_link_info``: ``map.map_fd`` or ``cgroup.order`` come first."""

    _fields_ = [("first", ctypes.c_uint32), ("_rest", ctypes.c_uint32 * 3)]


#: ``enum bpf_cgroup_iter_order``: every cgroup below the root, parents first.
BPF_CGROUP_ITER_DESCENDANTS_PRE = 2


class _Lister:
    """A loaded iterator program over one storage map: each :meth:`read` lists it."""

    def __init__(self, source: str, map_fd: int, value_size: int, name: str, kind: str) -> None:
        result = compiler.compile_cell(
            source, f"bpfnb_{kind}_iter", defines={"BPFNB_VALUE_SIZE": str(value_size)}
        )
        data = result.object_path.read_bytes()
        spec = ObjectSpec.from_bytes(data)
        opened = loader.open_object(data, spec, f"{name}_iter")
        try:
            opened.reuse_map("store", map_fd)
        except BaseException:
            opened.close()
            raise
        self._loaded = opened.load()
        try:
            lib = loader.libbpf()
            first = {"sk_storage": map_fd, "cgrp_storage": BPF_CGROUP_ITER_DESCENDANTS_PRE}
            info = _IterLinkInfo(first=first.get(kind, 0))
            opts = IterAttachOpts(
                sz=ctypes.sizeof(IterAttachOpts),
                link_info=ctypes.addressof(info) if kind in first else None,
                link_info_len=ctypes.sizeof(info) if kind in first else 0,
            )
            made: list[int] = []

            def attach(prog_ptr: int) -> int | None:
                link = lib.bpf_program__attach_iter(prog_ptr, ctypes.byref(opts))
                if not link:
                    raise BpfnbError(
                        f"cannot attach the iterator listing map {name!r}: "
                        f"{os.strerror(ctypes.get_errno())}"
                    )
                made.append(link)
                return int(link)

            self._loaded.attach_link("bpfnb_list", attach)
            self._link = made[0]
            self._lib = lib
        except BaseException:
            self._loaded.close()
            raise

    def read(self) -> bytes:
        """Run the iterator once; return everything it wrote."""
        fd = int(self._lib.bpf_iter_create(self._lib.bpf_link__fd(self._link)))
        if fd < 0:
            raise BpfnbError(f"cannot start the iterator: {os.strerror(-fd)}")
        chunks: list[bytes] = []
        try:
            while True:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    break
                chunks.append(chunk)
        finally:
            os.close(fd)
        return b"".join(chunks)

    def close(self) -> None:
        """Unload the iterator (the storage map lives on with its program)."""
        self._loaded.close()


class _ObjectStorage(_WritableMap):
    """Base of the storage maps: keys are owners, opened as file descriptors."""

    #: The iterator source listing the kind, or "" when the kernel has none.
    _iter_source = ""
    #: The owner record the iterator writes before each value: numpy dtype fields.
    _owner_dtype: np.dtype[Any] = np.dtype([])

    def __init__(self, fd: OwnedFd, spec: MapSpec, obj: ObjectSpec | None = None) -> None:
        super().__init__(fd, spec, obj)
        self._lister: _Lister | None = None
        self._lister_lock = threading.Lock()

    @property
    def key_columns(self) -> list[str]:
        """The owner columns of :meth:`df`."""
        return list(self._owner_columns)

    _owner_columns: tuple[str, ...] = ()

    # -- keys: owners as fds --------------------------------------------------------

    def _open_owner(self, key: Any) -> tuple[int, bool]:
        """(fd, whether bpfnb opened it and must close it) of an owner."""
        raise NotImplementedError

    def _with_owner(self, key: Any, call: Any) -> Any:
        fd, close = self._open_owner(key)
        try:
            return call(struct.pack("<i", fd))
        finally:
            if close:
                os.close(fd)

    def _lookup(self, key: Any) -> bytes:
        def call(kb: bytes) -> bytes:
            with self._lock:
                try:
                    return bpf.map_lookup(self.fd, kb, self.value_bytes, what=f"map {self.name!r}")
                except BpfKeyError:
                    raise KeyError(key) from None

        result: bytes = self._with_owner(key, call)
        return result

    def __setitem__(self, key: Any, value: Any) -> None:
        vb = self._value_bytes(value)

        def call(kb: bytes) -> None:
            with self._lock:
                bpf.map_update(self.fd, kb, vb, what=f"map {self.name!r}")

        self._with_owner(key, call)
        self._remember(key)

    def __delitem__(self, key: Any) -> None:
        def call(kb: bytes) -> None:
            with self._lock:
                try:
                    bpf.map_delete(self.fd, kb, what=f"map {self.name!r}")
                except BpfKeyError:
                    raise KeyError(key) from None

        self._with_owner(key, call)

    def _remember(self, key: Any) -> None:
        """Note a key used from Python (inode storage lists those)."""

    # -- listing --------------------------------------------------------------------

    def _records(self) -> bytes:
        with self._lister_lock:
            if self._lister is None:
                self._lister = _Lister(
                    self._iter_source, self.fd, self.spec.value_size, self.name, self.kind
                )
                owner = self.owner
                if owner is not None:
                    owner.on_close(self.close_lister)
            return self._lister.read()

    def close_lister(self) -> None:
        """Unload the iterator program (the program's close does it)."""
        with self._lister_lock:
            lister, self._lister = self._lister, None
        if lister is not None:
            lister.close()

    def _owner_frame(self, owners: np.ndarray) -> pd.DataFrame:
        raise NotImplementedError

    def df(self, per_cpu: bool = False, *, batch: bool = True) -> pd.DataFrame:
        """One row per owner that has a value: the owner columns, then the value's."""
        raw = self._records()
        head = self._owner_dtype.itemsize
        size = head + self.spec.value_size
        n = len(raw) // size
        rows = np.frombuffer(raw[: n * size], dtype=np.uint8).reshape(n, size)
        owners = np.ascontiguousarray(rows[:, :head]).reshape(-1).view(self._owner_dtype)
        values = np.ascontiguousarray(rows[:, head:]).reshape(-1).view(self.value_codec.dtype)
        return self._frame_from(self._owner_frame(owners), values)

    def _frame_from(self, owners: pd.DataFrame, values: np.ndarray) -> pd.DataFrame:
        """Owner columns, then value columns (``value.NAME`` when a name is taken)."""

        def named(frame: pd.DataFrame) -> pd.DataFrame:
            taken = set(owners.columns)
            return frame.rename(columns={c: f"value.{c}" for c in frame.columns if c in taken})

        if not len(values):
            empty = frames.to_frame(None, None, self.value_codec, np.zeros(1, values.dtype))
            out = pd.concat([owners.iloc[:0], named(empty).iloc[:0]], axis=1)
            return out.reset_index(drop=True)
        frame = named(frames.to_frame(None, None, self.value_codec, values))
        out = pd.concat([owners.reset_index(drop=True), frame], axis=1)
        return out.sort_values(self.key_columns[0], kind="stable").reset_index(drop=True)

    def __iter__(self) -> Iterator[Any]:
        """Iterate over the owners listed by :meth:`df` (their first key column)."""
        return iter(self.df()[self.key_columns[0]].tolist())

    def __len__(self) -> int:
        """The number of owners with a value."""
        return len(self.df())

    def clear(self) -> None:
        """Delete every value (owner by owner)."""
        for key in list(self):
            with contextlib.suppress(KeyError, OSError):
                del self[key]


class TaskStorageMap(_ObjectStorage):
    """``BPF_MAP_TYPE_TASK_STORAGE``: ``m[pid]``; ``df()`` rows per thread (``tid``)."""

    _iter_source = _TASK_ITER
    _owner_dtype = np.dtype([("tid", "<u4"), ("pid", "<u4"), ("comm", "S16")])
    _owner_columns = ("tid", "pid", "comm")

    def _open_owner(self, key: Any) -> tuple[int, bool]:
        try:
            return os.pidfd_open(int(key)), True
        except ProcessLookupError:
            raise KeyError(key) from None

    def _owner_frame(self, owners: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "tid": owners["tid"].astype(np.int64),
                "pid": owners["pid"].astype(np.int64),
                "comm": pd.Series(
                    [c.decode(errors="replace") for c in owners["comm"]], dtype=object
                ),
            }
        )


class CgroupStorageMap(_ObjectStorage):
    """``BPF_MAP_TYPE_CGRP_STORAGE``: ``m["/sys/fs/cgroup/..."]``; rows per cgroup."""

    _iter_source = _CGROUP_ITER
    _owner_dtype = np.dtype([("cgroup_id", "<u8")])
    _owner_columns = ("cgroup_id", "cgroup")

    def _open_owner(self, key: Any) -> tuple[int, bool]:
        if isinstance(key, int):
            return key, False
        path = Path(key)
        if not (path.is_absolute() and path.is_dir()):  # a path as df() shows it: "/a/b"
            path = cgroup2_mount() / str(key).lstrip("/")
        try:
            return os.open(path, os.O_RDONLY | os.O_DIRECTORY), True
        except FileNotFoundError:
            raise KeyError(key) from None

    def _owner_frame(self, owners: np.ndarray) -> pd.DataFrame:
        ids = owners["cgroup_id"].astype(np.uint64)
        paths = cgroup_paths()
        return pd.DataFrame(
            {
                "cgroup_id": ids.astype(np.int64),
                "cgroup": pd.Series([paths.get(int(i), "") for i in ids], dtype=object),
            }
        )


class SocketStorageMap(_ObjectStorage):
    """``BPF_MAP_TYPE_SK_STORAGE``: ``m[sock]``; rows per socket with its addresses."""

    _iter_source = _SK_ITER
    _owner_dtype = np.dtype(
        [
            ("ino", "<u8"),
            ("family", "<u2"),
            ("lport", "<u2"),
            ("rport", "<u2"),
            ("state", "u1"),
            ("protocol", "u1"),
            ("laddr", "V16"),
            ("raddr", "V16"),
        ]
    )
    _owner_columns = ("local", "remote", "family", "protocol", "state", "ino")

    def _open_owner(self, key: Any) -> tuple[int, bool]:
        if isinstance(key, socket.socket):
            return key.fileno(), False
        if isinstance(key, int):
            return key, False
        raise MapTypeError(
            f"map {self.name!r}: a socket storage key is a socket object or a socket fd"
        )

    def _owner_frame(self, owners: np.ndarray) -> pd.DataFrame:
        local, remote = [], []
        for row in owners:
            fam = socket.AF_INET if int(row["family"]) == socket.AF_INET else socket.AF_INET6
            size = 4 if fam == socket.AF_INET else 16
            laddr = socket.inet_ntop(fam, bytes(row["laddr"])[:size])
            raddr = socket.inet_ntop(fam, bytes(row["raddr"])[:size])
            local.append(_endpoint(laddr, int(row["lport"]), fam))
            remote.append(_endpoint(raddr, int(row["rport"]), fam))
        return pd.DataFrame(
            {
                "local": pd.Series(local, dtype=object),
                "remote": pd.Series(remote, dtype=object),
                "family": pd.Series(
                    ["ipv4" if int(f) == socket.AF_INET else "ipv6" for f in owners["family"]],
                    dtype=object,
                ),
                "protocol": pd.Series(
                    [_protocol(int(p)) for p in owners["protocol"]], dtype=object
                ),
                "state": pd.Series(
                    [_TCP_STATES.get(int(s), str(int(s))) for s in owners["state"]], dtype=object
                ),
                "ino": owners["ino"].astype(np.int64),
            }
        )


class InodeStorageMap(_ObjectStorage):
    """``BPF_MAP_TYPE_INODE_STORAGE``: ``m["/path"]``; ``df()`` lists the paths used."""

    _owner_columns = ("path", "ino")

    def __init__(self, fd: OwnedFd, spec: MapSpec, obj: ObjectSpec | None = None) -> None:
        super().__init__(fd, spec, obj)
        self._paths: dict[str, None] = {}

    def _open_owner(self, key: Any) -> tuple[int, bool]:
        if isinstance(key, int):
            return key, False
        if hasattr(key, "fileno") and not isinstance(key, str | os.PathLike):
            return int(key.fileno()), False
        try:
            return os.open(os.fspath(key), os.O_PATH), True
        except FileNotFoundError:
            raise KeyError(key) from None

    def _remember(self, key: Any) -> None:
        if isinstance(key, str | os.PathLike):
            self._paths[os.fspath(key)] = None

    def df(
        self, per_cpu: bool = False, *, batch: bool = True, paths: Iterable[Any] | None = None
    ) -> pd.DataFrame:
        """The values of ``paths`` (default: every path used as a key through this view).

        The kernel has no iterator that may read inode storage, so only the inodes
        asked about are listed: ``path``, ``ino``, then the value's columns.
        """
        found_paths: list[str] = []
        inodes: list[int] = []
        raws: list[bytes] = []
        for path in list(paths) if paths is not None else list(self._paths):
            try:
                raw = self._lookup(path)
                ino = os.stat(path).st_ino
            except (KeyError, OSError):
                continue
            found_paths.append(os.fspath(path))
            inodes.append(ino)
            raws.append(raw)
        owners = pd.DataFrame(
            {"path": pd.Series(found_paths, dtype=object), "ino": np.array(inodes, np.int64)}
        )
        values = np.frombuffer(b"".join(raws), dtype=self.value_codec.dtype)
        return self._frame_from(owners, values)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.df()["path"].tolist())


def _endpoint(addr: str, port: int, family: int) -> str:
    return f"[{addr}]:{port}" if family == socket.AF_INET6 else f"{addr}:{port}"


def _protocol(number: int) -> str:
    return {6: "tcp", 17: "udp", 1: "icmp", 58: "icmpv6", 132: "sctp"}.get(number, str(number))


def cgroup2_mount() -> Path:
    """Where the cgroup v2 hierarchy is mounted (``/sys/fs/cgroup`` or ``.../unified``)."""
    try:
        for line in Path("/proc/self/mounts").read_text().splitlines():
            parts = line.split()
            if len(parts) > 2 and parts[2] == "cgroup2":
                return Path(parts[1])
    except OSError:
        pass
    for path in CGROUP2_MOUNTS:
        if (path / "cgroup.controllers").exists():
            return path
    return CGROUP2_MOUNTS[-1]


def cgroup_paths() -> dict[int, str]:
    """cgroup id -> path (``/``-rooted, as in ``/proc/PID/cgroup``) of every cgroup v2.

    A cgroup's id is the inode number of its folder in the cgroup2 filesystem.
    """
    root = cgroup2_mount()
    out: dict[int, str] = {}
    for folder, _dirs, _files in os.walk(root):
        with contextlib.suppress(OSError):
            rel = "/" + os.path.relpath(folder, root).removeprefix(".")
            out[os.stat(folder).st_ino] = rel.replace("//", "/") if rel != "/" else "/"
    return out


__all__ = [
    "CgroupStorageMap",
    "InodeStorageMap",
    "SocketStorageMap",
    "TaskStorageMap",
    "cgroup2_mount",
    "cgroup_paths",
]
