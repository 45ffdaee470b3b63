"""``prog.globals``: the program's global variables, read and written through their maps.

Kernel layer. libbpf keeps ``.rodata*``, ``.data*`` and ``.bss`` in one-element array
maps; each variable sits at its BTF offset inside its section's value. ``.rodata`` is
frozen at load (set it before load with ``--set`` / ``globals=``); ``.data`` and
``.bss`` can be changed while the program runs.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pandas as pd

from bpfnb.codec.plan import codec_for
from bpfnb.errors import BpfnbError
from bpfnb.kernel import bpf
from bpfnb.kernel.fd import OwnedFd
from bpfnb.object import btf
from bpfnb.object.spec import GlobalVar, ObjectSpec

_ZERO_KEY = b"\0\0\0\0"


def _section_map(section: str, fds: dict[str, OwnedFd]) -> OwnedFd | None:
    """Find the fd of the internal map libbpf made for ``section`` (``PREFIX.rodata``...)."""
    for name, fd in fds.items():
        dot = name.find(".")
        if dot > 0 and (name.endswith(section) or section.startswith(name[dot:])):
            return fd
    return None


class GlobalData(Mapping[str, Any]):
    """The global variables of a loaded program, decoded from BTF.

    ``prog.globals["threshold_ns"]`` reads the current value; assigning to a
    ``.data``/``.bss`` variable writes it into the running program. The maps are held
    through the program's owned fds: once it closes, reads raise
    :class:`~bpfnb.errors.ClosedError`.
    """

    def __init__(self, spec: ObjectSpec, map_fds: dict[str, OwnedFd]) -> None:
        self._spec = spec
        self._vars: dict[str, GlobalVar] = dict(spec.globals)
        self._fds = {
            var.section: fd
            for var in self._vars.values()
            if (fd := _section_map(var.section, map_fds)) is not None
        }
        self._sizes = {
            section: max(v.offset + v.size for v in self._vars.values() if v.section == section)
            for section in self._fds
        }

    def _var(self, name: str) -> GlobalVar:
        var = self._vars.get(name)
        if var is None or var.section not in self._fds:
            known = ", ".join(n for n, v in self._vars.items() if v.section in self._fds)
            raise KeyError(f"no global variable {name!r} (globals: {known or 'none'})")
        return var

    def _section_bytes(self, section: str) -> bytes:
        fd = self._fds[section].get()
        info = bpf.map_info(fd)
        return bpf.map_lookup(fd, _ZERO_KEY, info.value_size, what=section)

    def __getitem__(self, name: str) -> Any:
        var = self._var(name)
        data = self._section_bytes(var.section)
        codec = codec_for(self._spec.btf, var.type, var.size)
        return codec.to_python(data[var.offset : var.offset + var.size])

    def __setitem__(self, name: str, value: Any) -> None:
        var = self._var(name)
        if var.section.startswith(".rodata"):
            raise BpfnbError(
                f"{name!r} is const (in .rodata, frozen at load): set it before loading with "
                f"--set {name}=VALUE or bpfnb.load(..., globals={{{name!r}: VALUE}})"
            )
        codec = codec_for(self._spec.btf, var.type, var.size)
        encoded = codec.to_bytes(value, role=name)
        data = bytearray(self._section_bytes(var.section))
        data[var.offset : var.offset + var.size] = encoded
        bpf.map_update(self._fds[var.section].get(), _ZERO_KEY, bytes(data), what=var.section)

    def __iter__(self) -> Iterator[str]:
        return (n for n, v in self._vars.items() if v.section in self._fds)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def df(self) -> pd.DataFrame:
        """Return every global as a row: name, section, C type and current value."""
        rows = [
            {
                "name": name,
                "section": self._vars[name].section,
                "type": btf.c_name(self._vars[name].type),
                "value": self[name],
            }
            for name in self
        ]
        return pd.DataFrame(rows, columns=["name", "section", "type", "value"])

    def __repr__(self) -> str:
        return f"<GlobalData {dict(self.items())}>"
