"""Set ``const volatile`` (and ``.data``) globals of an object before it is loaded.

Pure: rewrites the bytes of the object's ``.rodata*``/``.data*`` sections at the
variable's offset, encoding the value from the variable's BTF type, so libbpf creates
the global-data map with the new initial value (the verifier then sees ``.rodata``
values as constants). ``--set target_pid=42`` in a cell ends up here.
"""

from __future__ import annotations

from typing import Any

from bpfnb.codec.plan import codec_for
from bpfnb.errors import BpfnbError, MapTypeError
from bpfnb.object.elf import ElfFile
from bpfnb.object.spec import ObjectSpec


def _coerce(text: Any) -> Any:
    """Turn a ``--set`` string into an int/float/bool when it reads as one."""
    if not isinstance(text, str):
        return text
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for convert in (lambda s: int(s, 0), float):
        try:
            return convert(text)
        except ValueError:
            continue
    return text


def patch_object(data: bytes, spec: ObjectSpec, values: dict[str, Any]) -> bytes:
    """Return a copy of the object ``data`` whose globals hold ``values``.

    Parameters
    ----------
    data : bytes
        The object file.
    spec : ObjectSpec
        Its description (globals with section, offset and BTF type).
    values : dict
        Variable name to value (ints, floats, bools, str for ``char[]``; strings
        that read as numbers are converted).

    Raises
    ------
    BpfnbError
        An unknown variable, or one in ``.bss`` (no initial value to set).
    MapTypeError
        A value that does not fit the variable's C type.
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
        codec = codec_for(spec.btf, var.type, var.size)
        try:
            encoded = codec.to_bytes(_coerce(raw), role=name)
        except MapTypeError:
            raise
        except (TypeError, ValueError, OverflowError) as err:
            raise MapTypeError(f"cannot set {name!r} to {raw!r}: {err}") from None
        start = section.offset + var.offset
        out[start : start + var.size] = encoded.ljust(var.size, b"\0")[: var.size]
    return bytes(out)
