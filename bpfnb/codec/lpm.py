"""LPM trie keys as prefixes: ``10.0.0.0/8``, ``2001:db8::/32``, ``0a0b/12`` (pure).

A ``BPF_MAP_TYPE_LPM_TRIE`` key is ``struct { __u32 prefixlen; <data> }``: the number
of leading bits that count, then the data bytes in network order. :class:`LpmKey`
reads that layout from the key's size (the data is everything after the first four
bytes) and turns keys into text and back:

- 4 data bytes: an IPv4 prefix (``10.1.0.0/16``); 16 data bytes: an IPv6 prefix
  (``2001:db8::/32``);
- any other size: ``HEX/LEN`` (``0a0b0c/20``), the data as hex digits.

Accepted as keys: the text forms above, :mod:`ipaddress` networks, ``(prefixlen,
data)`` tuples with ``data`` as bytes, an address text or an :mod:`ipaddress` address,
and a bare address (``"10.1.2.3"``, a full-length prefix). Bits after the prefix length
are cleared, as the kernel ignores them.

Example
-------
>>> key = LpmKey(8)
>>> raw = key.encode("10.1.0.0/16")
>>> raw.hex(), key.text(raw)
('100000000a010000', '10.1.0.0/16')
>>> key.matches(raw, key.address_bytes("10.1.2.3"))
True
"""

from __future__ import annotations

import ipaddress
import struct
from typing import Any

from bpfnb.errors import MapTypeError
from bpfnb.object import btf

_PREFIX = struct.Struct("<I")


class LpmKey:
    """The layout of an LPM trie key of ``key_size`` bytes.

    Attributes
    ----------
    key_size : int
        The whole key (4 bytes of prefix length + the data).
    data_size : int
        Bytes of data.
    family : str
        ``"ipv4"``, ``"ipv6"`` or ``"bytes"`` (from the data size).
    """

    def __init__(self, key_size: int, data_size: int | None = None) -> None:
        if key_size <= 4:
            raise MapTypeError(
                f"an LPM trie key must be a u32 prefix length followed by data, "
                f"got {key_size} bytes"
            )
        self.key_size = key_size
        self.data_size = key_size - 4 if data_size is None else min(data_size, key_size - 4)
        self.family = {4: "ipv4", 16: "ipv6"}.get(self.data_size, "bytes")

    @classmethod
    def of_type(cls, key_size: int, key: btf.Type | None) -> LpmKey:
        """The layout of a key type: its data is the members after ``prefixlen``.

        ``struct { u32 prefixlen; u8 data[2]; }`` has 2 data bytes although C pads it
        to 8 bytes (the padding counts as data for the kernel, always zero here).
        """
        st = btf.resolve(key) if key is not None else None
        if isinstance(st, btf.Struct) and len(st.members) >= 2:
            last = st.members[-1]
            end = last.bit_offset // 8 + btf.size_of(last.type)
            return cls(key_size, end - 4)
        return cls(key_size)

    @property
    def max_prefixlen(self) -> int:
        """The longest prefix: every data bit."""
        return self.data_size * 8

    # -- to bytes -------------------------------------------------------------------

    def encode(self, key: Any) -> bytes:
        """The raw key (prefix length, masked data) of a prefix in any accepted form.

        Raises
        ------
        MapTypeError
            For a malformed prefix or one that does not fit the key.
        """
        prefixlen, data = self._parse(key)
        if not 0 <= prefixlen <= self.max_prefixlen:
            raise MapTypeError(f"prefix length {prefixlen} is out of range 0..{self.max_prefixlen}")
        if len(data) != self.data_size:
            raise MapTypeError(
                f"an LPM key of this trie holds {self.data_size} data bytes, got {len(data)}"
            )
        padding = bytes(self.key_size - 4 - self.data_size)
        return _PREFIX.pack(prefixlen) + mask(data, prefixlen) + padding

    def address_bytes(self, address: Any) -> bytes:
        """The data bytes of an address (text, :mod:`ipaddress` object or bytes)."""
        if isinstance(address, bytes | bytearray):
            raw = bytes(address)
        elif self.family == "bytes":
            if isinstance(address, str):
                raw = _hex(address)
            else:
                raise MapTypeError(f"expected bytes or hex text for {self.data_size} data bytes")
        else:
            try:
                raw = ipaddress.ip_address(address).packed
            except ValueError as exc:
                raise MapTypeError(f"{address!r} is not an {self.family} address") from exc
        if len(raw) != self.data_size:
            raise MapTypeError(
                f"{address!r} has {len(raw)} bytes; this trie's data has {self.data_size}"
            )
        return raw

    def _parse(self, key: Any) -> tuple[int, bytes]:
        if isinstance(key, tuple) and len(key) == 2:
            prefixlen, data = key
            if isinstance(data, bytes | bytearray):
                return int(prefixlen), bytes(data)
            return int(prefixlen), self.address_bytes(data)
        if isinstance(key, dict) and "prefixlen" in key:
            rest = [v for k, v in key.items() if k != "prefixlen"]
            if len(rest) == 1:
                return self._parse((key["prefixlen"], rest[0]))
        if isinstance(key, ipaddress.IPv4Network | ipaddress.IPv6Network):
            return key.prefixlen, key.network_address.packed
        if isinstance(key, ipaddress.IPv4Address | ipaddress.IPv6Address):
            return self.max_prefixlen, key.packed
        if isinstance(key, bytes | bytearray) and len(key) == self.key_size:
            return _PREFIX.unpack_from(key)[0], bytes(key[4 : 4 + self.data_size])
        if isinstance(key, str):
            text, slash, length = key.strip().partition("/")
            try:
                prefixlen = int(length) if slash else self.max_prefixlen
            except ValueError as exc:
                raise MapTypeError(f"{key!r}: the prefix length must be a number") from exc
            return prefixlen, self.address_bytes(text)
        raise MapTypeError(
            f"an LPM trie key is a prefix like '10.0.0.0/8' (or (prefixlen, data)), got {key!r}"
        )

    # -- from bytes -----------------------------------------------------------------

    def split(self, raw: bytes) -> tuple[int, bytes]:
        """``(prefixlen, data)`` of a raw key."""
        return _PREFIX.unpack_from(raw)[0], bytes(raw[4 : 4 + self.data_size])

    def text(self, raw: bytes) -> str:
        """The prefix text of a raw key (``10.1.0.0/16``)."""
        prefixlen, data = self.split(raw)
        if self.family == "ipv4":
            return f"{ipaddress.IPv4Address(data)}/{prefixlen}"
        if self.family == "ipv6":
            return f"{ipaddress.IPv6Address(data)}/{prefixlen}"
        return f"{data.hex()}/{prefixlen}"

    def matches(self, raw: bytes, address: bytes) -> bool:
        """Whether the prefix of raw key ``raw`` contains the data bytes ``address``."""
        prefixlen, data = self.split(raw)
        return mask(address, prefixlen) == mask(data, prefixlen)


def mask(data: bytes, prefixlen: int) -> bytes:
    """``data`` with every bit after the first ``prefixlen`` cleared."""
    full, rest = divmod(max(prefixlen, 0), 8)
    if full >= len(data):
        return bytes(data)
    out = bytearray(data[:full])
    if rest:
        out.append(data[full] & (0xFF << (8 - rest)) & 0xFF)
        full += 1
    out += bytes(len(data) - len(out))
    return bytes(out)


def _hex(text: str) -> bytes:
    try:
        return bytes.fromhex(text.removeprefix("0x"))
    except ValueError as exc:
        raise MapTypeError(f"{text!r} is not hex data") from exc


__all__ = ["LpmKey", "mask"]
