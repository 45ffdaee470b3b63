"""Semantic decoders chosen from BTF typedef names.

A BPF program that declares a value with one of the typedefs of
``bpfnb/include/bpfnb/types.h`` gets readable columns without any Python code:

============================  =========================  ==================================
typedef                       C storage                  shown as
============================  =========================  ==================================
``bpfnb_syscall_t``           ``__u32`` (or ``__s32``)   x86_64 syscall name (``"getpid"``)
``bpfnb_errno_t``             ``__s32``                  errno name (``"ENOENT"``), ±errno
``bpfnb_ktime_t``             ``__u64``                  wall-clock ``pandas.Timestamp``
``bpfnb_ipv4_t``              ``__u32`` network order    dotted quad (``"10.0.0.1"``)
``bpfnb_ipv6_t``              ``__u8[16]``               RFC 5952 text (``"::1"``)
``bpfnb_stackid_t``           ``__s32``                  the number (symbolisation later)
``bpfnb_ksym_t``              ``__u64``                  kernel symbol (``"do_sys_openat2"``)
============================  =========================  ==================================

Plain ``u32`` stays a number. Decoders are vectorised over numpy arrays and can encode
back (``"getpid"`` -> 39) so decoded keys can be used to index maps.

Example
-------
>>> lookup(["bpfnb_errno_t"]).decode(np.array([-2, 0, 13], dtype=np.int32)).tolist()
['ENOENT', 0, 'EACCES']
"""

from __future__ import annotations

import bisect
import errno as errno_mod
import ipaddress
import re
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

UNISTD_64 = Path("/usr/include/x86_64-linux-gnu/asm/unistd_64.h")
KALLSYMS = Path("/proc/kallsyms")


class Decoder:
    """Base decoder: raw numbers (numpy array) -> readable values.

    Attributes
    ----------
    typedef : str
        The C typedef that selects this decoder.
    """

    typedef = ""

    def numpy_format(self, size: int, signed: bool = False) -> Any:
        """numpy format of the storage for a C type of *size* bytes, or None if unfit."""
        if signed:
            return {1: "i1", 2: "<i2", 4: "<i4", 8: "<i8"}.get(size)
        return {1: "u1", 2: "<u2", 4: "<u4", 8: "<u8"}.get(size)

    def decode(self, values: np.ndarray) -> Any:
        """Vectorised decode of a 1-D array."""
        out = np.empty(len(values), dtype=object)
        out[:] = [self.decode_one(v) for v in values.tolist()]
        return out

    def decode_one(self, value: Any) -> Any:
        """Decode one raw value."""
        return value

    def encode_one(self, value: Any) -> Any:
        """Encode one readable value back to its raw form (int or bytes)."""
        raise ValueError(f"{self.typedef} values must be given as numbers")


def _lookup_names(values: np.ndarray, table: Mapping[int, str]) -> np.ndarray:
    """Map ints to names through *table*, keeping unknown numbers (object array)."""
    uniq, inverse = np.unique(values, return_inverse=True)
    names = np.array([table.get(int(u), int(u)) for u in uniq], dtype=object)
    out: np.ndarray = names[inverse.reshape(-1)]
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

    typedef = "bpfnb_syscall_t"

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

    typedef = "bpfnb_errno_t"

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

    typedef = "bpfnb_ktime_t"

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
    """A ``__u32`` in network byte order (as in ``struct sockaddr_in``) -> dotted quad."""

    typedef = "bpfnb_ipv4_t"

    def numpy_format(self, size: int, signed: bool = False) -> Any:
        return "<u4" if size == 4 else None

    def decode(self, values: np.ndarray) -> Any:
        b = np.ascontiguousarray(values.astype("<u4")).view(np.uint8).reshape(-1, 4)
        uniq, inverse = np.unique(values, return_inverse=True)
        ub = np.ascontiguousarray(uniq.astype("<u4")).view(np.uint8).reshape(-1, 4)
        texts = np.array([".".join(map(str, row)) for row in ub.tolist()], dtype=object)
        del b
        out: np.ndarray = texts[inverse.reshape(-1)]
        return out

    def decode_one(self, value: Any) -> Any:
        return str(ipaddress.IPv4Address(int(value).to_bytes(4, "little")))

    def encode_one(self, value: Any) -> Any:
        if isinstance(value, (str, ipaddress.IPv4Address)):
            return int.from_bytes(ipaddress.IPv4Address(value).packed, "little")
        return super().encode_one(value)


class Ipv6Decoder(Decoder):
    """16 bytes in network order -> compressed IPv6 text."""

    typedef = "bpfnb_ipv6_t"

    def numpy_format(self, size: int, signed: bool = False) -> Any:
        return ("u1", (16,)) if size == 16 else None

    def decode(self, values: np.ndarray) -> Any:
        rows = np.ascontiguousarray(values, dtype=np.uint8).reshape(-1, 16)
        out = np.empty(rows.shape[0], dtype=object)
        out[:] = [str(ipaddress.IPv6Address(r.tobytes())) for r in rows]
        return out

    def decode_one(self, value: Any) -> Any:
        return str(ipaddress.IPv6Address(np.asarray(value, dtype=np.uint8).tobytes()))

    def encode_one(self, value: Any) -> Any:
        if isinstance(value, (str, ipaddress.IPv6Address)):
            return ipaddress.IPv6Address(value).packed
        raise ValueError("IPv6 addresses must be given as text or ipaddress.IPv6Address")


class StackIdDecoder(Decoder):
    """Stack ids stay numbers (negative ids are errors from bpf_get_stackid)."""

    typedef = "bpfnb_stackid_t"

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

    typedef = "bpfnb_ksym_t"

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


DECODERS: dict[str, Decoder] = {
    d.typedef: d
    for d in (
        SyscallDecoder(),
        ErrnoDecoder(),
        KtimeDecoder(),
        Ipv4Decoder(),
        Ipv6Decoder(),
        StackIdDecoder(),
        KsymDecoder(),
    )
}


def lookup(typedef_names: Iterable[str]) -> Decoder | None:
    """The decoder of the first typedef name in *typedef_names* that has one, or None."""
    for name in typedef_names:
        d = DECODERS.get(name)
        if d is not None:
            return d
    return None
