"""Summaries of maps whose elements cannot be listed as rows.

A bloom filter keeps hash bits, not values; a user ring buffer is written from Python
and drained by the BPF program; device, socket and struct_ops maps hold kernel
objects. Reading them as tables would fail at every refresh, so the dashboard shows
what is known about them instead: the type, the key and value types, the capacity and
how to use the map from Python. :class:`MapSummary` is registered for every kind
:func:`bpfnb.object.maptypes.is_listable` says no to.
"""

from __future__ import annotations

import html
from typing import Any

from bpfnb.object import maptypes
from bpfnb.object.btf import c_name
from bpfnb.ui import html as ui_html
from bpfnb.ui.sources import MapSource
from bpfnb.ui.views import View, register_view

__all__ = ["MapSummary", "usage_of"]

_USAGE = {
    "bloom_filter": "a bloom filter cannot be listed: test values with `x in prog.{name}`, "
    "add them with prog.{name}.add(x)",
    "user_ringbuf": "written from Python, drained by the BPF program: "
    "prog.{name}.send(record_or_dataframe)",
}


def usage_of(kind: str, name: str) -> str:
    """How to use a map of this kind from Python (one line)."""
    text = _USAGE.get(kind, "bpfnb shows no rows for this map type (it holds kernel objects)")
    return text.format(name=name)


class MapSummary(View):
    """What is known about a map that cannot be listed (no reads at refresh).

    Attributes
    ----------
    source : MapSource
    facts : dict of str to str
        Type, key, value and capacity.
    usage : str
        How to use the map from Python.
    """

    kind = "summary"

    def __init__(self, source: MapSource) -> None:
        super().__init__(f"{source.name} ({source.spec.type_name})")
        self.source = source
        spec = source.spec
        self.facts: dict[str, str] = {
            "type": spec.type_name,
            "key": c_name(spec.key) if spec.key is not None else f"{spec.key_size} bytes",
            "value": c_name(spec.value) if spec.value is not None else f"{spec.value_size} bytes",
            "max_entries": str(spec.max_entries),
        }
        if spec.map_extra:
            self.facts["map_extra"] = str(spec.map_extra)
        self.usage = usage_of(source.kind, source.name)

    def _update(self) -> None:
        """Nothing to read: the facts do not change."""


def _body(view: Any) -> str:
    rows = "".join(
        f'<tr><td class="s">{html.escape(k)}</td><td class="s">{html.escape(v)}</td></tr>'
        for k, v in view.facts.items()
    )
    return (
        f'<div class="bpfnb-title">{html.escape(view.title)}</div>'
        f'<table class="bpfnb-table"><tbody>{rows}</tbody></table>'
        f'<div class="bpfnb-foot bpfnb-summary" data-kind="{html.escape(view.source.kind)}">'
        f"{html.escape(view.usage)}</div>"
    )


def _view_of(source: MapSource) -> View | None:
    if maptypes.is_listable(source.kind):
        return None
    return MapSummary(source)


register_view(_view_of)
ui_html.register_body(MapSummary, _body)
