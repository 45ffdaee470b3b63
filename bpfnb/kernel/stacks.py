"""``BPF_MAP_TYPE_STACK_TRACE``: stack ids -> symbolized frames, folded stacks, flame graphs.

A stack trace map stores what ``bpf_get_stackid()`` collected: per stack id, up to
``value_size / 8`` instruction addresses, innermost first (zeros after the last).
:class:`StackTraceMap` reads them and resolves each address with
:mod:`bpfnb.kernel.symbolize`:

- ``m.stack(id, pid=None)``: the frames as text (``func+0x1a``), innermost first; user
  stacks need the process's ``pid``;
- ``m.df()``: ``stack_id``, ``depth``, ``stack`` and ``folded`` per stored stack (user
  frames resolve through the pid found next to the stack id in the program's other
  maps, e.g. a ``counts`` map keyed by ``{pid, kstack, ustack}``);
- ``m.folded()``: folded stack -> weight, from the program's map that counts stacks
  (see :mod:`bpfnb.kernel.stackcols`), or 1 per stored stack when none does;
- ``m.to_folded(path)``: Brendan Gregg's folded format, for ``flamegraph.pl``,
  speedscope, inferno...;
- ``m.flamegraph()``: an interactive flame graph (icicle) in the notebook.

Maps created with ``BPF_F_STACK_BUILD_ID`` store ``(build id, file offset)`` frames,
shown as ``build-id HEX+0xOFFSET`` (they are not symbolized).
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bpfnb.codec.stacks import Frame, folded_line, format_folded, merge_counts
from bpfnb.errors import BpfKeyError, MapTypeError
from bpfnb.kernel import bpf, flamegraph_hook, stackcols
from bpfnb.kernel.fd import OwnedFd
from bpfnb.kernel.maps import Map
from bpfnb.kernel.symbolize import symbolizer
from bpfnb.object import maptypes
from bpfnb.object.spec import MapSpec, ObjectSpec

_BUILD_ID_FRAME = struct.Struct("<i20s4xQ")
_BUILD_ID_VALID, _BUILD_ID_IP = 1, 2


class StackTraceMap(Map):
    """A stack trace map: ``m.stack(id)``, ``df()``, ``folded()``, ``flamegraph()``.

    ``del m[id]`` and ``clear()`` drop stored stacks; stacks are only written by
    ``bpf_get_stackid()``.
    """

    def __init__(self, fd: OwnedFd, spec: MapSpec, obj: ObjectSpec | None = None) -> None:
        super().__init__(fd, spec, obj)
        if spec.key_size != 4:
            raise MapTypeError(f"a stack trace map has u32 keys, not {spec.key_size} bytes")
        self.build_id = bool(spec.flags & maptypes.BPF_F_STACK_BUILD_ID)
        self.frame_size = _BUILD_ID_FRAME.size if self.build_id else 8
        self.depth = spec.value_size // self.frame_size

    @property
    def key_columns(self) -> list[str]:
        """``["stack_id"]``."""
        return ["stack_id"]

    # -- raw stacks ------------------------------------------------------------------

    def _addresses(self, raw: bytes | np.ndarray) -> tuple[int, ...]:
        if self.build_id:
            return ()
        ips = np.frombuffer(bytes(raw), dtype=np.uint64, count=self.depth)
        nonzero = np.flatnonzero(ips == 0)
        end = int(nonzero[0]) if len(nonzero) else len(ips)
        return tuple(int(a) for a in ips[:end])

    def addresses(self, stack_id: int) -> tuple[int, ...]:
        """The addresses of one stack, innermost first.

        Raises
        ------
        KeyError
            No stack has this id.
        """
        return self._addresses(self._lookup(stack_id))

    def addresses_by_id(self) -> dict[int, tuple[int, ...]]:
        """Every stored stack: id -> addresses, innermost first."""
        raw = self.read_raw()
        ids = raw.keys.reshape(-1).view(np.uint32) if len(raw) else np.empty(0, np.uint32)
        return {int(sid): self._addresses(raw.values[i]) for i, sid in enumerate(ids)}

    def _build_id_frames(self, raw: bytes) -> list[Frame]:
        out = []
        for i in range(self.depth):
            status, build_id, offset = _BUILD_ID_FRAME.unpack_from(raw, i * self.frame_size)
            if status == _BUILD_ID_VALID:
                out.append(Frame(offset, None, offset, f"build-id {build_id.hex()}"))
            elif status == _BUILD_ID_IP:
                out.append(symbolizer().frame(offset))
            else:
                break
        return out

    # -- frames ----------------------------------------------------------------------

    def frames(self, stack_id: int, pid: int | None = None) -> list[Frame]:
        """The frames of one stack, innermost first (user frames need ``pid``)."""
        raw = self._lookup(stack_id)
        if self.build_id:
            return self._build_id_frames(raw)
        return symbolizer().frames(self._addresses(raw), pid)

    def stack(self, stack_id: int, pid: int | None = None) -> list[str]:
        """The frames of one stack as text (``func+0x1a``), innermost first."""
        return [f.text() for f in self.frames(stack_id, pid)]

    def _pids_by_id(self) -> dict[int, int]:
        """Stack id -> the pid stored next to it in the program's other maps."""
        out: dict[int, int] = {}
        owner = self.owner
        if owner is None:
            return out
        for other in owner.maps.values():
            if not isinstance(other, Map) or other is self:
                continue
            if other.kind not in stackcols.COUNTING_KINDS:
                continue
            plain = other.plain_df()
            pid_col = next((c for c in ("pid", "tgid") if c in plain.columns), None)
            if pid_col is None:
                continue
            columns = stackcols.stack_id_columns(other.key_codec, other.value_codec, plain)
            for col in columns:
                if stackcols.source_for(col, [self, *stackcols.stack_sources(owner)]) is not self:
                    continue
                for sid, pid in zip(plain[col], plain[pid_col], strict=True):
                    if sid >= 0:
                        out.setdefault(int(sid), int(pid))
        return out

    def df(self, per_cpu: bool = False, *, batch: bool = True) -> pd.DataFrame:
        """Every stored stack: ``stack_id``, ``depth``, ``stack`` (innermost first), ``folded``."""
        raw = self.read_raw(batch=batch)
        ids = raw.keys.reshape(-1).view(np.uint32) if len(raw) else np.empty(0, np.uint32)
        pids = self._pids_by_id() if len(ids) and not self.build_id else {}
        resolve = symbolizer()
        stacks: list[list[str]] = []
        folded: list[str] = []
        for i, sid in enumerate(ids):
            if self.build_id:
                got = self._build_id_frames(bytes(raw.values[i]))
            else:
                got = resolve.frames(self._addresses(raw.values[i]), pids.get(int(sid)))
            stacks.append([f.text() for f in got])
            folded.append(folded_line(got))
        texts = np.empty(len(stacks), dtype=object)
        texts[:] = stacks
        frame = pd.DataFrame(
            {
                "stack_id": ids.astype(np.int64),
                "depth": np.array([len(s) for s in stacks], dtype=np.int64),
                stackcols.STACK_COLUMN: texts,
                stackcols.FOLDED_COLUMN: pd.Series(folded, dtype=object),
            }
        )
        return frame.sort_values("stack_id", kind="stable").reset_index(drop=True)

    # -- folded stacks and flame graphs -----------------------------------------------

    def counting_map(self) -> Map | None:
        """The program's map that counts the stacks of this map (None when none does)."""
        owner = self.owner
        if owner is None:
            return None
        sources = stackcols.stack_sources(owner)
        by_value: Map | None = None
        for other in owner.maps.values():
            if not isinstance(other, Map) or other is self:
                continue
            if other.kind not in stackcols.COUNTING_KINDS:
                continue
            in_key, in_value = stackcols.declared_stack_columns(other.key_codec, other.value_codec)
            if any(stackcols.source_for(c, sources) is self for c in in_key):
                return other  # keyed by stacks: it counts them
            if by_value is None and any(stackcols.source_for(c, sources) is self for c in in_value):
                by_value = other
        return by_value

    def folded(self) -> dict[str, int]:
        """Folded stack -> weight: from the map counting these stacks, else 1 per stack."""
        counter = self.counting_map()
        if counter is not None:
            return counter.folded()
        frame = self.df()
        return merge_counts((s, 1) for s in frame[stackcols.FOLDED_COLUMN])

    def to_folded(self, path: str | Path) -> Path:
        """Write :meth:`folded` in Brendan Gregg's folded format; return the path."""
        out = Path(path)
        out.write_text(format_folded(self.folded()))
        return out

    def flamegraph(self, title: str | None = None) -> Any:
        """An interactive flame graph (icicle) of :meth:`folded`: click zooms, hover names."""
        return flamegraph_hook.flamegraph(self, title=title)

    def __delitem__(self, key: Any) -> None:
        kb = self._key_bytes(key)
        with self._lock:
            try:
                bpf.map_delete(self.fd, kb, what=f"map {self.name!r}")
            except BpfKeyError:
                raise KeyError(key) from None

    def clear(self) -> None:
        """Drop every stored stack."""
        for sid in list(self.addresses_by_id()):
            try:
                del self[sid]
            except KeyError:
                continue


__all__ = ["StackTraceMap"]
