"""Set ``const volatile`` (and ``.data``) globals of an object before it is loaded.

Pure: rewrites the bytes of the object's ``.rodata*``/``.data*`` sections at the
variable's offset, encoding the value from the variable's BTF type, so libbpf creates
the global-data map with the new initial value (the verifier then sees ``.rodata``
values as constants). ``--set target_pid=42`` in a cell ends up here.

Values follow C's rules for an initializer of the variable's type (what the
variable's declaration would do with the same text):

- integers take C integer literals: decimal, ``0x`` hex, ``0`` octal, ``0b`` binary,
  a ``u``/``l`` suffix, a sign, a character constant (``'A'``), ``true``/``false``. A
  value outside the type is converted modulo 2^N like C converts it, so
  ``--set targ_uid=-1`` on a ``uid_t`` gives 4294967295 (libbpf-tools' "no filter"),
  ``--set x=300`` on a ``u8`` gives 44. A literal must fit in 64 bits, as in C.
  Anything else (a word, a fraction) is refused: C would not compile it, or would
  silently truncate a fraction, which is never what a ``--set`` meant;
- ``bool``: ``true``/``false`` or an integer (non-zero is true);
- enums: an enumerator name or an integer (modulo 2^N);
- floating point: a C floating or integer literal (``1.5``, ``1e3``, ``2.5f``);
- ``char[N]``: the text (UTF-8), with or without C double quotes, at most N bytes
  (C allows exactly N, dropping the terminating NUL);
- typedefs with a bpfnb decoder (``bpfnb_syscall_t``...) also take the decoded form
  (``getpid``).

Python values given through ``bpfnb.load(globals=...)`` are exact: an int must fit
the type (``-1`` for a ``u32`` is refused, ``"-1"`` is the C text and wraps), a bool
sets a ``bool``, a float a floating-point variable; structs and arrays take what the
codec takes (a dict, a sequence). Every refusal names the variable and its C type.
"""

from __future__ import annotations

import re
from typing import Any

from bpfnb.codec import decoders
from bpfnb.codec.plan import codec_for
from bpfnb.errors import BpfnbError, MapTypeError
from bpfnb.object import btf
from bpfnb.object.elf import ElfFile
from bpfnb.object.spec import ObjectSpec

_INT_RE = re.compile(
    r"""^(?P<sign>[+-]?)\s*(?:
        0[xX](?P<hex>[0-9a-fA-F]+)
      | 0[bB](?P<bin>[01]+)
      | (?P<oct>0[0-7]*)
      | (?P<dec>[1-9][0-9]*)
    )(?:[uU](?:ll|LL|l|L)?|(?:ll|LL|l|L)[uU]?)?$""",
    re.X,
)
_CHAR_RE = re.compile(r"^'(?P<char>[^'\\]|\\[ntr0\\'\"])'$")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "\\": "\\", "'": "'", '"': '"'}
_FLOAT_RE = re.compile(r"^[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)[fFlL]?$")
_U64 = 1 << 64


class _Refused(ValueError):
    """A value C would not accept for the variable's type (message: why)."""


def int_literal(text: str) -> int:
    """Return the value of a C integer literal (also ``'c'``, ``true``, ``false``).

    Raises
    ------
    ValueError
        ``text`` is not one, or does not fit in 64 bits.
    """
    word = text.strip()
    if word in ("true", "false"):
        return int(word == "true")
    char = _CHAR_RE.match(word)
    if char:
        c = char["char"]
        return ord(_ESCAPES.get(c[1], c) if c.startswith("\\") else c)
    m = _INT_RE.match(word)
    if m is None:
        raise ValueError(f"{text!r} is not a C integer literal")
    if m["hex"]:
        value = int(m["hex"], 16)
    elif m["bin"]:
        value = int(m["bin"], 2)
    elif m["oct"] is not None:
        value = int(m["oct"], 8)
    else:
        value = int(m["dec"])
    if value >= _U64:
        raise ValueError(f"{text!r} does not fit in 64 bits")
    return -value if m["sign"] == "-" else value


def wrap(value: int, bits: int, signed: bool) -> int:
    """Convert ``value`` to a ``bits``-wide C integer the way C does (modulo 2^bits)."""
    value %= 1 << bits
    if signed and value >= 1 << (bits - 1):
        value -= 1 << bits
    return value


def _c_int(raw: str) -> int:
    try:
        return int_literal(raw)
    except ValueError as err:
        raise _Refused(str(err)) from None


def _has_decoder(t: btf.Type) -> bool:
    return decoders.lookup(btf.typedef_names(t)) is not None


def c_value(raw: Any, t: btf.Type) -> Any:
    """Convert ``raw`` (a ``--set`` string or a Python value) for a variable of type ``t``.

    Returns a value :meth:`bpfnb.codec.plan.Codec.to_bytes` encodes as C would
    initialise the variable from the text (see the module's rules). Python values
    other than text are returned as they are (a float for an integer is refused).

    Raises
    ------
    ValueError
        C would not accept ``raw`` for ``t`` (the message says why).
    """
    if not isinstance(raw, str):
        if isinstance(raw, float) and isinstance(btf.resolve(t), btf.Int):
            raise _Refused(f"expected an integer, got {raw!r}")
        return raw  # a Python value: exact, the codec checks it fits
    r = btf.resolve(t)
    if isinstance(r, btf.Int) and r.bool:
        return bool(_c_int(raw))
    if isinstance(r, btf.Int):
        if _has_decoder(t):
            try:
                return wrap(int_literal(raw), r.size * 8, r.signed)
            except ValueError:
                return raw  # the decoded form (a syscall name...): the codec encodes it
        return wrap(_c_int(raw), r.size * 8, r.signed)
    if isinstance(r, btf.Enum):
        if any(e.name == raw.strip() for e in r.members):
            return raw.strip()
        if not _INT_RE.match(raw.strip()):
            names = ", ".join(e.name for e in r.members)
            raise _Refused(f"{raw!r} is neither an enumerator ({names}) nor an integer")
        return wrap(_c_int(raw), r.size * 8, r.signed)
    if isinstance(r, btf.Float):
        text = raw.strip()
        if _FLOAT_RE.match(text):
            return float(text.rstrip("fFlL"))
        try:
            return float(int_literal(text))
        except ValueError:
            raise _Refused(f"{raw!r} is not a C floating-point literal") from None
    if isinstance(r, btf.Array):
        element = btf.resolve(r.element)
        if isinstance(element, btf.Int) and element.size == 1 and not element.bool:
            text = raw
            if len(text) >= 2 and text[0] == text[-1] == '"':
                text = text[1:-1]
            data = text.encode("utf-8")
            if len(data) > r.length:
                raise _Refused(f"{raw!r} is {len(data)} bytes, more than the {r.length} it holds")
            return data
    raise _Refused("this type cannot be set from text; pass a Python value to bpfnb.load()")


def patch_object(data: bytes, spec: ObjectSpec, values: dict[str, Any]) -> bytes:
    """Return a copy of the object ``data`` whose globals hold ``values``.

    Parameters
    ----------
    data : bytes
        The object file.
    spec : ObjectSpec
        Its description (globals with section, offset and BTF type).
    values : dict
        Variable name to value: ``--set`` strings or Python values, converted as C
        converts an initializer (see the module's rules).

    Raises
    ------
    BpfnbError
        An unknown variable, or one in ``.bss`` (no initial value to set).
    MapTypeError
        A value C would not accept for the variable's type; the message names the
        variable and its C type.
    """
    out = bytearray(data)
    elf = ElfFile(data)
    settable = {n: g for n, g in spec.globals.items() if not g.section.startswith(".bss")}
    for name, raw in values.items():
        var = spec.globals.get(name)
        if var is None or name not in settable:
            known = ", ".join(sorted(settable)) or "none"
            why = "is in .bss (give it an initial value)" if var is not None else "is not a global"
            raise BpfnbError(
                f"cannot set {name!r}: it {why}; settable const volatile globals: {known}"
            )
        section = elf.section(var.section)
        if section is None or not section.data:
            raise BpfnbError(f"cannot set {name!r}: section {var.section} has no data")
        c_type = btf.declaration(var.type, name)
        codec = codec_for(spec.btf, var.type, var.size)
        try:
            encoded = codec.to_bytes(c_value(raw, var.type), role=name)
        except (_Refused, MapTypeError, TypeError, ValueError, OverflowError) as err:
            raise MapTypeError(f"cannot set {name!r} ({c_type}) to {raw!r}: {err}") from None
        start = section.offset + var.offset
        out[start : start + var.size] = encoded.ljust(var.size, b"\0")[: var.size]
    return bytes(out)
