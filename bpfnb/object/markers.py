"""What a cell says about its maps for the dashboard: ``BPFNB_HIDDEN`` and ``BPFNB_UNIT``.

Pure. ``bpfnb/maps.h`` turns the two C markers into unused static variables of the
section :data:`SECTION`, which libbpf skips when loading and BTF describes by name
and type:

- ``BPFNB_HIDDEN(start);`` -> ``__bpfnb_hidden__start``: ``start`` is a helper
  (scratch) map; its dashboard view starts collapsed.
- ``BPFNB_UNIT(latency, bpfnb_ns_t);`` -> ``__bpfnb_unit__latency`` of type
  ``bpfnb_ns_t``: the values ``latency`` counts (a histogram's buckets) are in the
  unit of that ``bpfnb/types.h`` typedef.

Example
-------
>>> spec = ObjectSpec.from_file("prog.bpf.o")   # doctest: +SKIP
>>> hidden_maps(spec), sorted(unit_types(spec))  # doctest: +SKIP
({'start'}, ['latency'])
"""

from __future__ import annotations

from bpfnb.object import btf
from bpfnb.object.spec import ObjectSpec

__all__ = ["HIDDEN_PREFIX", "SECTION", "UNIT_PREFIX", "hidden_maps", "unit_types"]

#: The ELF section (and BTF DATASEC) of the markers.
SECTION = ".bpfnb.meta"
HIDDEN_PREFIX = "__bpfnb_hidden__"
UNIT_PREFIX = "__bpfnb_unit__"


def _marker_vars(spec: ObjectSpec) -> list[btf.Var]:
    out: list[btf.Var] = []
    for sec in spec.btf.all_of(btf.DataSec):
        if sec.name != SECTION:
            continue
        out.extend(v.var for v in sec.vars if isinstance(v.var, btf.Var))
    return out


def hidden_maps(spec: ObjectSpec) -> set[str]:
    """Names of the maps the cell marked with ``BPFNB_HIDDEN(map)``."""
    return {
        v.name.removeprefix(HIDDEN_PREFIX)
        for v in _marker_vars(spec)
        if v.name.startswith(HIDDEN_PREFIX)
    }


def unit_types(spec: ObjectSpec) -> dict[str, btf.Type]:
    """Map name -> the unit typedef given with ``BPFNB_UNIT(map, type)``."""
    return {
        v.name.removeprefix(UNIT_PREFIX): v.target
        for v in _marker_vars(spec)
        if v.name.startswith(UNIT_PREFIX)
    }
