"""Semantic decoders: raw numbers and bytes -> what people read, and back.

A decoder is chosen for a column in one of two ways.

By typedef, in C: a BPF program that declares a value with one of the typedefs of
``bpfnb/include/bpfnb/types.h`` gets readable columns without any Python code:

======================  ========================  =====================================
typedef                 C storage                 shown as
======================  ========================  =====================================
``bpfnb_syscall_t``     ``__u32`` (or signed)     x86_64 syscall name (``"getpid"``)
``bpfnb_errno_t``       ``__s32``                 errno name (``"ENOENT"``), ±errno
``bpfnb_ktime_t``       ``__u64``                 wall-clock ``pandas.Timestamp``
``bpfnb_ipv4_t``        ``__u32``, network order  dotted quad (``"10.0.0.1"``)
``bpfnb_ipv6_t``        ``__u8[16]``              RFC 5952 text (``"::1"``)
``bpfnb_stackid_t``     ``__s32``                 the number (symbolisation later)
``bpfnb_ksym_t``        ``__u64``                 kernel symbol (``"do_sys_openat2"``)
``bpfnb_open_flags_t``  ``__u32``                 ``"O_WRONLY|O_CREAT|O_CLOEXEC"``
``bpfnb_ns_t``          ``__u64``                 the number, unit ``ns``: a duration
``bpfnb_us_t``          ``__u64``                 the number, unit ``us``: a duration
``bpfnb_ms_t``          ``__u64``                 the number, unit ``ms``: a duration
``bpfnb_bytes_t``       ``__u64``                 the number, unit ``bytes``: a counter
======================  ========================  =====================================

By name, from Python, for programs that store these things in plain integers and
arrays (see :meth:`bpfnb.codec.plan.Codec.with_decoders`): every decoder above has a
:attr:`Decoder.name` (``syscall``, ``errno``, ``ktime``, ``ipv4``, ``ipv6``, ``stackid``,
``ksym``, ``open_flags``, ``ns``, ``us``, ``ms``, ``bytes``), plus decoders without a
typedef: ``argv`` (a NUL-separated ``char`` buffer -> list of str), ``argv_str`` (the
same joined with spaces: ``"ls -l /tmp"``), ``text`` (a byte array shown as text) and
``binary`` (a ``char[N]`` shown as its raw bytes). Each decoder says which C storage it
reads (:meth:`Decoder.storage`): ``ipv4`` reads any 4-byte integer, byte array or
struct (``__u32``, ``__u8[4]``, ``struct in_addr``), ``ipv6`` any 16-byte one
(``__u8[16]``, ``__u32[4]``, ``unsigned __int128``, ``struct in6_addr``).

Plain ``u32`` stays a number. Decoders are vectorised over numpy arrays and can encode
back (``"getpid"`` -> 39) so decoded keys can be used to index maps.

Example
-------
>>> lookup(["bpfnb_errno_t"]).decode(np.array([-2, 0, 13], dtype=np.int32)).tolist()
['ENOENT', 0, 'EACCES']
>>> OpenFlagsDecoder().decode_one(0o2000101)
'O_WRONLY|O_CREAT|O_CLOEXEC'
"""

from __future__ import annotations

import bisect
import errno as errno_mod
import ipaddress
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bpfnb.codec import columns
from bpfnb.object import btf

UNISTD_64 = Path("/usr/include/x86_64-linux-gnu/asm/unistd_64.h")
KALLSYMS = Path("/proc/kallsyms")

_INT_FORMATS = {1: "u1", 2: "<u2", 4: "<u4", 8: "<u8"}
_SINT_FORMATS = {1: "i1", 2: "<i2", 4: "<i4", 8: "<i8"}
_FLOAT_FORMATS = {2: "<f2", 4: "<f4", 8: "<f8"}


# -- which C storage a decoder reads ------------------------------------------------------


def int_format(t: btf.Type, sizes: Iterable[int] = (1, 2, 4, 8)) -> np.dtype[Any] | None:
    """numpy format of a whole (non-bitfield, non-bool) integer of one of *sizes* bytes."""
    r = btf.resolve(t)
    if not isinstance(r, btf.Int) or r.bool or r.size not in tuple(sizes):
        return None
    if r.bits not in (0, r.size * 8) or r.bit_offset:
        return None
    fmt = (_SINT_FORMATS if r.signed else _INT_FORMATS).get(r.size)
    return np.dtype(fmt) if fmt is not None else None


def number_format(t: btf.Type) -> np.dtype[Any] | None:
    """numpy format of a whole integer or a float (what unit decoders read)."""
    r = btf.resolve(t)
    if isinstance(r, btf.Float):
        fmt = _FLOAT_FORMATS.get(r.size)
        return np.dtype(fmt) if fmt is not None else None
    return int_format(t)


def _int_elements(t: btf.Type) -> bool:
    """Whether *t* is an integer or a (multi-dimensional) array of integers."""
    r = btf.resolve(t)
    while isinstance(r, btf.Array):
        r = btf.resolve(r.element)
    return isinstance(r, btf.Int) and not r.bool


def byte_image(t: btf.Type, size: int) -> np.dtype[Any] | None:
    """``u1[size]`` when *t* is an integer, integer array or struct of exactly *size* bytes.

    Such values are read as the bytes they hold in memory (network byte order for
    addresses copied from the kernel).
    """
    r = btf.resolve(t)
    if not (_int_elements(r) or isinstance(r, btf.Composite)):
        return None
    try:
        if btf.size_of(r) != size:
            return None
    except btf.BtfError:
        return None
    return np.dtype(("u1", (size,)))


def byte_string(t: btf.Type) -> np.dtype[Any] | None:
    """``u1[N]`` when *t* is an array of N one-byte integers (``char``, ``u8``, ``s8``)."""
    r = btf.resolve(t)
    if not isinstance(r, btf.Array) or r.length == 0:
        return None
    e = btf.resolve(r.element)
    if isinstance(e, btf.Int) and e.size == 1 and not e.bool:
        return np.dtype(("u1", (r.length,)))
    return None


# -- the decoder interface ----------------------------------------------------------------


class Decoder:
    """Base decoder: raw values (a numpy array) -> readable values, and back.

    Attributes
    ----------
    name : str
        The name that chooses it from Python (``"ipv4"``).
    typedef : str
        The C typedef that chooses it (``""`` when none does).
    reads : str
        The C storage it reads, for error messages (``"a 4-byte integer or u8[4]"``).
    role, unit : str, str or None
        What its column is to a dashboard (see :mod:`bpfnb.codec.roles`).
    summable : bool
        Per-CPU values are summed (True) or the first non-zero CPU's is taken (False).
    """

    name = ""
    typedef = ""
    reads = "an integer"
    role = "other"
    unit: str | None = None
    summable = False

    def storage(self, t: btf.Type) -> np.dtype[Any] | None:
        """The numpy format to read a value of BTF type *t* with, or None if *t* is unfit."""
        return int_format(t)

    def decode(self, values: np.ndarray) -> Any:
        """Vectorised decode of values read with :meth:`storage` (one row per value).

        This default calls :meth:`decode_one` per row, with ``bytes`` for byte formats;
        the built-in decoders work on distinct values or whole arrays instead.
        """
        items = columns.bytes_column(values).tolist() if values.ndim > 1 else values.tolist()
        out = np.empty(len(values), dtype=object)
        out[:] = [self.decode_one(v) for v in items]
        return out

    def decode_one(self, value: Any) -> Any:
        """Decode one raw value (an int, a float, or ``bytes`` for byte formats)."""
        return value

    def encode_one(self, value: Any) -> Any:
        """Encode one readable value back to its raw form (int or bytes)."""
        raise ValueError(f"{self.typedef or self.name} values must be given as numbers")


def _lookup_names(values: np.ndarray, table: Mapping[int, str]) -> np.ndarray:
    """Map ints to names through *table*, keeping unknown numbers (object array)."""
    uniq, inverse = np.unique(values, return_inverse=True)
    names = np.array([table.get(int(u), int(u)) for u in uniq], dtype=object)
    out: np.ndarray = names[inverse.reshape(-1)]
    return out


def _by_distinct(values: np.ndarray, decode_one: Any) -> np.ndarray:
    """Decode each distinct value of a 1-D array once (object array)."""
    uniq, inverse = np.unique(values, return_inverse=True)
    decoded = np.empty(len(uniq), dtype=object)
    decoded[:] = [decode_one(u) for u in uniq.tolist()]
    out: np.ndarray = decoded[inverse.reshape(-1)]
    return out


# -- syscalls ---------------------------------------------------------------------------


def parse_unistd(text: str) -> dict[int, str]:
    """Parse ``#define __NR_name nr`` lines of an ``asm/unistd_64.h``."""
    table: dict[int, str] = {}
    for m in re.finditer(r"^#define\s+__NR_(\w+)\s+(\d+)\s*$", text, re.MULTILINE):
        table.setdefault(int(m.group(2)), m.group(1))
    return table


_SYSCALLS: dict[int, str] | None = None


def syscall_table() -> dict[int, str]:
    """x86_64 syscall number -> name.

    Read from the system's ``asm/unistd_64.h`` when it is installed, else from the table
    committed with bpfnb (``bpfnb/include/bpfnb/syscalls_x86_64.h``, generated from the
    same header).
    """
    global _SYSCALLS
    if _SYSCALLS is None:
        table: dict[int, str] = {}
        if UNISTD_64.exists():
            table = parse_unistd(UNISTD_64.read_text())
        if not table:
            fallback = Path(__file__).parent.parent / "include" / "bpfnb" / "syscalls_x86_64.h"
            table = parse_unistd(fallback.read_text())
        _SYSCALLS = table
    return _SYSCALLS


class SyscallDecoder(Decoder):
    """Syscall numbers -> names (unknown numbers and -1 stay numbers)."""

    name = "syscall"
    typedef = "bpfnb_syscall_t"
    reads = "an integer of 2, 4 or 8 bytes"
    role = "id"

    def storage(self, t: btf.Type) -> np.dtype[Any] | None:
        return int_format(t, (2, 4, 8))

    def decode(self, values: np.ndarray) -> Any:
        return _lookup_names(values.astype(np.int64), syscall_table())

    def decode_one(self, value: Any) -> Any:
        return syscall_table().get(int(value), int(value))

    def encode_one(self, value: Any) -> Any:
        if isinstance(value, str):
            for nr, name in syscall_table().items():
                if name == value:
                    return nr
            raise ValueError(f"unknown syscall name {value!r}")
        return super().encode_one(value)


# -- errno ------------------------------------------------------------------------------


def _signed(values: np.ndarray) -> np.ndarray:
    if values.dtype.kind == "u":
        return values.view(values.dtype.str.replace("u", "i")).astype(np.int64)
    return values.astype(np.int64)


class ErrnoDecoder(Decoder):
    """``-ENOENT`` or ``ENOENT`` -> ``"ENOENT"``; 0 and unknown values stay numbers."""

    name = "errno"
    typedef = "bpfnb_errno_t"
    reads = "an integer of 2, 4 or 8 bytes"
    role = "enum"

    def storage(self, t: btf.Type) -> np.dtype[Any] | None:
        return int_format(t, (2, 4, 8))

    def decode(self, values: np.ndarray) -> Any:
        v = np.abs(_signed(values))
        return _lookup_names(v, errno_mod.errorcode)

    def decode_one(self, value: Any) -> Any:
        v = abs(int(value))
        return errno_mod.errorcode.get(v, v)

    def encode_one(self, value: Any) -> Any:
        if isinstance(value, str):
            code = getattr(errno_mod, value, None)
            if not isinstance(code, int):
                raise ValueError(f"unknown errno name {value!r}")
            return -code
        return super().encode_one(value)


# -- time -------------------------------------------------------------------------------


def monotonic_offset_ns() -> int:
    """CLOCK_REALTIME minus CLOCK_MONOTONIC in ns, measured now (tightest of 3 reads)."""
    best: tuple[int, int] | None = None
    for _ in range(3):
        m0 = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        r = time.clock_gettime_ns(time.CLOCK_REALTIME)
        m1 = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        if best is None or m1 - m0 < best[0]:
            best = (m1 - m0, r - (m0 + m1) // 2)
    assert best is not None
    return best[1]


class KtimeDecoder(Decoder):
    """``bpf_ktime_get_ns()`` (CLOCK_MONOTONIC ns) -> wall-clock ``pandas.Timestamp``.

    The monotonic-to-realtime offset is measured at each decode, so timestamps are
    exact to within the clock adjustments since the event. 0 becomes ``NaT``.
    """

    name = "ktime"
    typedef = "bpfnb_ktime_t"
    reads = "an 8-byte integer"
    role = "timestamp"

    def storage(self, t: btf.Type) -> np.dtype[Any] | None:
        return int_format(t, (8,))

    def decode(self, values: np.ndarray) -> Any:
        v = values.astype(np.int64)
        wall = v + np.int64(monotonic_offset_ns())
        out = pd.to_datetime(wall, unit="ns")
        return np.where(v == 0, np.datetime64("NaT"), out.values)

    def decode_one(self, value: Any) -> Any:
        v = int(value)
        if v == 0:
            return pd.NaT
        return pd.Timestamp(v + monotonic_offset_ns(), unit="ns")

    def encode_one(self, value: Any) -> Any:
        if isinstance(value, (pd.Timestamp, np.datetime64, str)):
            ts = pd.Timestamp(value)
            return int(ts.value) - monotonic_offset_ns()
        return super().encode_one(value)


# -- addresses --------------------------------------------------------------------------


class Ipv4Decoder(Decoder):
    """4 bytes in network byte order (as the kernel stores them) -> dotted quad.

    Reads a ``__u32``/``__be32`` (kept in memory in network order, as in ``struct
    sockaddr_in``), a ``__u8[4]`` or a ``struct in_addr``.
    """

    name = "ipv4"
    typedef = "bpfnb_ipv4_t"
    reads = "4 bytes (u32, __be32, u8[4], struct in_addr)"
    role = "address"

    def storage(self, t: btf.Type) -> np.dtype[Any] | None:
        return np.dtype("<u4") if byte_image(t, 4) is not None else None

    def decode(self, values: np.ndarray) -> Any:
        packed = np.ascontiguousarray(values).view(np.uint8).reshape(-1, 4).view("<u4")
        uniq, inverse = np.unique(packed.reshape(-1), return_inverse=True)
        ub = np.ascontiguousarray(uniq.astype("<u4")).view(np.uint8).reshape(-1, 4)
        texts = np.array([".".join(map(str, row)) for row in ub.tolist()], dtype=object)
        out: np.ndarray = texts[inverse.reshape(-1)]
        return out

    def decode_one(self, value: Any) -> Any:
        if isinstance(value, (bytes, bytearray)):
            return str(ipaddress.IPv4Address(bytes(value)))
        return str(ipaddress.IPv4Address(int(value).to_bytes(4, "little")))

    def encode_one(self, value: Any) -> Any:
        if isinstance(value, (str, ipaddress.IPv4Address)):
            return int.from_bytes(ipaddress.IPv4Address(value).packed, "little")
        return super().encode_one(value)


def ipv6_text(packed: bytes) -> str:
    """RFC 5952 text of 16 bytes; IPv4-mapped addresses end in a dotted quad."""
    addr = ipaddress.IPv6Address(packed)
    mapped = addr.ipv4_mapped
    return f"::ffff:{mapped}" if mapped is not None else str(addr)


class Ipv6Decoder(Decoder):
    """16 bytes in network order -> compressed IPv6 text (``"fe80::1"``).

    Reads a ``__u8[16]``, ``__u32[4]``, ``unsigned __int128`` or ``struct in6_addr``.
    """

    name = "ipv6"
    typedef = "bpfnb_ipv6_t"
    reads = "16 bytes (u8[16], u32[4], unsigned __int128, struct in6_addr)"
    role = "address"

    def storage(self, t: btf.Type) -> np.dtype[Any] | None:
        return byte_image(t, 16)

    def decode(self, values: np.ndarray) -> Any:
        rows = np.ascontiguousarray(values).view(np.uint8).reshape(-1, 16)
        uniq, inverse = np.unique(rows.view("V16").reshape(-1), return_inverse=True)
        texts = np.empty(len(uniq), dtype=object)
        texts[:] = [ipv6_text(b) for b in uniq.tolist()]
        out: np.ndarray = texts[inverse.reshape(-1)]
        return out

    def decode_one(self, value: Any) -> Any:
        if isinstance(value, (bytes, bytearray)):
            return ipv6_text(bytes(value))
        return ipv6_text(np.asarray(value, dtype=np.uint8).tobytes())

    def encode_one(self, value: Any) -> Any:
        if isinstance(value, (str, ipaddress.IPv6Address)):
            return ipaddress.IPv6Address(value).packed
        raise ValueError("IPv6 addresses must be given as text or ipaddress.IPv6Address")


class StackIdDecoder(Decoder):
    """Stack ids stay numbers (negative ids are errors from bpf_get_stackid)."""

    name = "stackid"
    typedef = "bpfnb_stackid_t"
    reads = "an integer of 4 or 8 bytes"
    role = "id"

    def storage(self, t: btf.Type) -> np.dtype[Any] | None:
        return int_format(t, (4, 8))

    def decode(self, values: np.ndarray) -> Any:
        return _signed(values)

    def decode_one(self, value: Any) -> Any:
        return int(value)


# -- kernel symbols ---------------------------------------------------------------------


class Kallsyms:
    """Sorted kernel symbols from ``/proc/kallsyms``, loaded on first use."""

    def __init__(self, path: Path = KALLSYMS) -> None:
        self.path = path
        self._addrs: list[int] | None = None
        self._names: list[str] = []

    def _load(self) -> None:
        pairs: list[tuple[int, str]] = []
        try:
            text = self.path.read_text()
        except OSError:
            text = ""
        for line in text.splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[1] in "tTwW":
                addr = int(parts[0], 16)
                if addr:
                    pairs.append((addr, parts[2]))
        pairs.sort()
        self._addrs = [a for a, _ in pairs]
        self._names = [n for _, n in pairs]

    def name(self, addr: int) -> str | int:
        """The text symbol containing *addr* (``name+0x10`` when not at its start)."""
        if self._addrs is None:
            self._load()
        assert self._addrs is not None
        i = bisect.bisect_right(self._addrs, addr) - 1
        if i < 0 or addr == 0:
            return addr
        off = addr - self._addrs[i]
        return self._names[i] if off == 0 else f"{self._names[i]}+{off:#x}"

    def address(self, name: str) -> int:
        """Address of symbol *name*."""
        if self._addrs is None:
            self._load()
        try:
            return self._addrs[self._names.index(name)]  # type: ignore[index]
        except ValueError:
            raise ValueError(f"unknown kernel symbol {name!r}") from None


KSYMS = Kallsyms()


class KsymDecoder(Decoder):
    """Kernel text addresses -> ``symbol`` or ``symbol+0xoff`` (needs root for addresses)."""

    name = "ksym"
    typedef = "bpfnb_ksym_t"
    reads = "an 8-byte integer or a pointer"
    role = "address"

    def storage(self, t: btf.Type) -> np.dtype[Any] | None:
        if isinstance(btf.resolve(t), btf.Pointer):
            return np.dtype("<u8")
        return int_format(t, (8,))

    def decode(self, values: np.ndarray) -> Any:
        uniq, inverse = np.unique(values, return_inverse=True)
        names = np.array([KSYMS.name(int(u)) for u in uniq], dtype=object)
        out: np.ndarray = names[inverse.reshape(-1)]
        return out

    def decode_one(self, value: Any) -> Any:
        return KSYMS.name(int(value))

    def encode_one(self, value: Any) -> Any:
        if isinstance(value, str):
            return KSYMS.address(value)
        return super().encode_one(value)


# -- open(2) flags ----------------------------------------------------------------------

OPEN_ACCESS_MODES = {0: "O_RDONLY", 1: "O_WRONLY", 2: "O_RDWR", 3: "O_ACCMODE"}
"""The access mode in the two low bits of the flags."""

OPEN_FLAGS: tuple[tuple[str, int], ...] = (
    # x86_64 (and every architecture using the generic values), in octal as written in
    # the kernel's uapi asm-generic/fcntl.h.
    ("O_CREAT", 0o100),
    ("O_EXCL", 0o200),
    ("O_NOCTTY", 0o400),
    ("O_TRUNC", 0o1000),
    ("O_APPEND", 0o2000),
    ("O_NONBLOCK", 0o4000),
    ("O_DSYNC", 0o10000),
    ("O_ASYNC", 0o20000),
    ("O_DIRECT", 0o40000),
    ("O_LARGEFILE", 0o100000),
    ("O_DIRECTORY", 0o200000),
    ("O_NOFOLLOW", 0o400000),
    ("O_NOATIME", 0o1000000),
    ("O_CLOEXEC", 0o2000000),
    ("__O_SYNC", 0o4000000),
    ("O_PATH", 0o10000000),
    ("__O_TMPFILE", 0o20000000),
)
"""open(2) flag bits above the access mode, lowest first."""

OPEN_FLAG_GROUPS: tuple[tuple[str, str, str], ...] = (
    # A name for two bits that mean one thing together: (name, its bit, the other bit).
    ("O_SYNC", "__O_SYNC", "O_DSYNC"),
    ("O_TMPFILE", "__O_TMPFILE", "O_DIRECTORY"),
)

_OPEN_BITS = dict(OPEN_FLAGS)
_OPEN_NAMES: dict[str, int] = {
    **{name: mode for mode, name in OPEN_ACCESS_MODES.items()},
    **_OPEN_BITS,
    **{name: _OPEN_BITS[a] | _OPEN_BITS[b] for name, a, b in OPEN_FLAG_GROUPS},
    "O_NDELAY": _OPEN_BITS["O_NONBLOCK"],
    "FASYNC": _OPEN_BITS["O_ASYNC"],
    "O_RSYNC": _OPEN_BITS["__O_SYNC"] | _OPEN_BITS["O_DSYNC"],
    "O_FSYNC": _OPEN_BITS["__O_SYNC"] | _OPEN_BITS["O_DSYNC"],
}


def open_flags_text(flags: int) -> str:
    """``0o2000101`` -> ``"O_WRONLY|O_CREAT|O_CLOEXEC"`` (unknown bits as hex at the end)."""
    flags &= (1 << 64) - 1
    groups = {first: (name, _OPEN_BITS[second]) for name, first, second in OPEN_FLAG_GROUPS}
    in_group = {
        second
        for _, first, second in OPEN_FLAG_GROUPS
        if flags & _OPEN_BITS[first] and flags & _OPEN_BITS[second]
    }
    parts = [OPEN_ACCESS_MODES[flags & 3]]
    for name, bit in OPEN_FLAGS:
        if not flags & bit or name in in_group:
            continue
        group = groups.get(name)
        parts.append(group[0] if group is not None and flags & group[1] else name)
    unknown = flags & ~3 & ~sum(_OPEN_BITS.values())
    if unknown:
        parts.append(hex(unknown))
    return "|".join(parts)


def open_flags_value(text: str) -> int:
    """``"O_WRONLY|O_CREAT"`` -> 0o101; names, hex and decimal numbers may be mixed."""
    value = 0
    for part in text.split("|"):
        name = part.strip()
        if name in _OPEN_NAMES:
            value |= _OPEN_NAMES[name]
        elif re.fullmatch(r"0[xX][0-9a-fA-F]+|\d+", name):
            value |= int(name, 0)
        else:
            raise ValueError(f"unknown open flag {name!r}")
    return value


class OpenFlagsDecoder(Decoder):
    """open(2)/openat(2) flags -> ``"O_WRONLY|O_CREAT|O_CLOEXEC"`` (x86_64 values)."""

    name = "open_flags"
    typedef = "bpfnb_open_flags_t"
    reads = "an integer of 4 or 8 bytes"
    role = "flags"

    def storage(self, t: btf.Type) -> np.dtype[Any] | None:
        return int_format(t, (4, 8))

    def decode(self, values: np.ndarray) -> Any:
        unsigned = values.view(values.dtype.str.replace("i", "u"))
        return _by_distinct(unsigned, self.decode_one)

    def decode_one(self, value: Any) -> Any:
        return open_flags_text(int(value))

    def encode_one(self, value: Any) -> Any:
        if isinstance(value, str):
            return open_flags_value(value)
        return super().encode_one(value)


# -- units ------------------------------------------------------------------------------


class UnitDecoder(Decoder):
    """Numbers that stay numbers (summed across CPUs) but carry a unit and a role."""

    reads = "an integer or a float"
    summable = True

    def __init__(self, name: str, typedef: str, unit: str, role: str) -> None:
        self.name, self.typedef, self.unit, self.role = name, typedef, unit, role

    def storage(self, t: btf.Type) -> np.dtype[Any] | None:
        return number_format(t)

    def decode(self, values: np.ndarray) -> Any:
        return values

    def encode_one(self, value: Any) -> Any:
        if isinstance(value, (float, np.floating)):
            return value
        return super().encode_one(value)


# -- byte buffers -----------------------------------------------------------------------


def argv_list(raw: bytes) -> list[str]:
    """A NUL-separated argv buffer -> its strings (trailing NULs end the list)."""
    data = raw.rstrip(b"\0")
    if not data:
        return []
    return [a.decode("utf-8", errors="replace") for a in data.split(b"\0")]


class ArgvDecoder(Decoder):
    """``char args[N]`` holding ``"ls\\0-l\\0/tmp\\0"`` -> ``["ls", "-l", "/tmp"]``."""

    name = "argv"
    reads = "an array of 1-byte integers (char[N], u8[N])"
    role = "text"

    def storage(self, t: btf.Type) -> np.dtype[Any] | None:
        return byte_string(t)

    def decode(self, values: np.ndarray) -> Any:
        rows = columns.bytes_column(values)
        out = np.empty(len(rows), dtype=object)
        out[:] = [self.decode_one(r) for r in rows.tolist()]
        return out

    def decode_one(self, value: Any) -> Any:
        return argv_list(bytes(value))

    def encode_one(self, value: Any) -> Any:
        if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
            if not all(isinstance(a, str) for a in value):
                raise ValueError("argv must be a list of str")
            return b"".join(a.encode("utf-8") + b"\0" for a in value)
        raise ValueError("argv must be a list of str")


class ArgvStrDecoder(ArgvDecoder):
    """Like ``argv``, joined with spaces: ``"ls -l /tmp"`` (encodes by splitting at spaces)."""

    name = "argv_str"

    def decode_one(self, value: Any) -> Any:
        return " ".join(argv_list(bytes(value)))

    def encode_one(self, value: Any) -> Any:
        if isinstance(value, str):
            return super().encode_one(value.split())
        raise ValueError("argv_str must be a str")


class TextDecoder(Decoder):
    """A byte array (``u8[N]``) shown as text up to the first NUL, like ``char[N]``."""

    name = "text"
    reads = "an array of 1-byte integers (char[N], u8[N])"
    role = "text"

    def storage(self, t: btf.Type) -> np.dtype[Any] | None:
        return byte_string(t)

    def decode(self, values: np.ndarray) -> Any:
        return columns.text_column(values, values.shape[-1])

    def decode_one(self, value: Any) -> Any:
        return bytes(value).split(b"\0", 1)[0].decode("utf-8", errors="replace")

    def encode_one(self, value: Any) -> Any:
        if isinstance(value, str):
            return value.encode("utf-8")
        raise ValueError("text must be a str")


class BinaryDecoder(Decoder):
    """A ``char[N]`` shown as its ``bytes`` (all N of them), like ``u8[N]``."""

    name = "binary"
    reads = "an array of 1-byte integers (char[N], u8[N])"
    role = "bytes"

    def storage(self, t: btf.Type) -> np.dtype[Any] | None:
        return byte_string(t)

    def decode(self, values: np.ndarray) -> Any:
        return columns.bytes_column(values)

    def decode_one(self, value: Any) -> Any:
        return bytes(value)

    def encode_one(self, value: Any) -> Any:
        raise ValueError("binary values must be given as bytes")


# -- the registry -----------------------------------------------------------------------

PLAIN = "plain"
"""The decoder name that turns a column's decoder off (numbers stay numbers)."""

ALL: tuple[Decoder, ...] = (
    SyscallDecoder(),
    ErrnoDecoder(),
    KtimeDecoder(),
    Ipv4Decoder(),
    Ipv6Decoder(),
    StackIdDecoder(),
    KsymDecoder(),
    OpenFlagsDecoder(),
    UnitDecoder("ns", "bpfnb_ns_t", "ns", "duration"),
    UnitDecoder("us", "bpfnb_us_t", "us", "duration"),
    UnitDecoder("ms", "bpfnb_ms_t", "ms", "duration"),
    UnitDecoder("bytes", "bpfnb_bytes_t", "bytes", "counter"),
    ArgvDecoder(),
    ArgvStrDecoder(),
    TextDecoder(),
    BinaryDecoder(),
)
"""Every decoder, in the order error messages list them."""

DECODERS: dict[str, Decoder] = {d.typedef: d for d in ALL if d.typedef}
"""Decoders chosen by C typedef name."""

BY_NAME: dict[str, Decoder] = {d.name: d for d in ALL}
"""Decoders chosen by name from Python."""


def lookup(typedef_names: Iterable[str]) -> Decoder | None:
    """The decoder of the first typedef name in *typedef_names* that has one, or None."""
    for name in typedef_names:
        d = DECODERS.get(name)
        if d is not None:
            return d
    return None


def fitting(t: btf.Type) -> list[str]:
    """Names of the decoders that can read a value of BTF type *t*."""
    return [d.name for d in ALL if d.storage(t) is not None]
