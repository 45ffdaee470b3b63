"""Flame graphs (icicles) of stack traces: a live view and static snapshots.

The data is a mapping of folded stacks to weights (``source.folded()``, see
:mod:`bpfnb.kernel.stacks`); :func:`bpfnb.codec.stacks.layout` places the frames;
this module draws them as HTML: one absolutely positioned box per frame, the root on
top and callees below (an icicle), each box as wide as its share of the samples.

Interaction needs no extension and no kernel round trip: small inline handlers
(``onclick``, ``onmouseover``) run in the page, so it works inside an
``ipywidgets.HTML`` (whose content is set with ``innerHTML``: ``<script>`` would not
run, handlers do) and in a notebook's HTML output alike:

- hovering a frame shows its name, samples and share in the line above the graph
  (and as the box's tooltip);
- clicking a frame zooms: it spans the whole width, its callees below it, its callers
  above (shaded); clicking the root (``all``) zooms out.

A live view is redrawn when its data changes; the zoom is kept in the page
(``window.bpfnbFlameZoom``, by the graph's element id) and put back on each redraw,
so a refreshing flame graph stays zoomed where the user clicked.

:class:`FlameGraph` is the live view of stack trace maps in dashboards (registered
for their kind with :func:`bpfnb.ui.views.register_view`, drawn by
:func:`bpfnb.ui.html.render` through :func:`bpfnb.ui.html.register_body`); :func:`flamegraph` is
what ``prog.MAP.flamegraph()`` returns (registered by ``bpfnb`` as the kernel layer's
flame graph hook).
"""

from __future__ import annotations

import hashlib
import html
import itertools
from collections.abc import Mapping
from typing import Protocol, TypeGuard

from bpfnb.codec.stacks import KERNEL_SUFFIX, FlameRect, build_tree, layout
from bpfnb.object import maptypes
from bpfnb.ui import html as ui_html
from bpfnb.ui.sources import MapSource
from bpfnb.ui.views import View, register_view

__all__ = [
    "FRAME_HEIGHT",
    "FlameGraph",
    "FlameGraphSnapshot",
    "FlameSource",
    "flamegraph",
    "is_flame_source",
    "render_graph",
]

#: Pixels per frame row.
FRAME_HEIGHT = 17
#: Frames narrower than this share of the samples are not drawn.
MIN_WIDTH = 0.001
#: At most this many frames are drawn (the widest).
MAX_FRAMES = 3000

CSS = """<style>
.bpfnb-fg{width:1000px;max-width:100%;font-family:var(--jp-code-font-family,monospace);
 font-size:11px;margin:2px 0}
.bpfnb-fg-detail{height:18px;line-height:18px;color:var(--jp-ui-font-color1,#333);
 white-space:nowrap;overflow:hidden;text-overflow:ellipsis;margin:2px 0}
.bpfnb-fg-area{position:relative;width:100%;background:var(--jp-layout-color0,#fff);
 cursor:pointer}
.bpfnb-fg-f{position:absolute;height:16px;line-height:16px;box-sizing:border-box;
 border-right:1px solid var(--jp-layout-color0,#fff);overflow:hidden;white-space:nowrap;
 text-overflow:ellipsis;padding:0 2px;color:#000}
.bpfnb-fg-f:hover{outline:1px solid var(--jp-ui-font-color0,#000);z-index:1}
.bpfnb-fg-anc{opacity:.55}
</style>"""

#: Puts a zoom on the graph ``root`` (a frame key, or "" for the whole graph).
_APPLY = (
    "function(root,key){var fs=root.querySelectorAll('.bpfnb-fg-f'),z=null,i;"
    "if(key){for(i=0;i<fs.length;i++){if(fs[i].dataset.k===key){z=fs[i];break;}}}"
    "var zx=z?+z.dataset.x:0,zw=z?+z.dataset.w:1,zd=z?+z.dataset.d:0,e=1e-9;"
    "for(i=0;i<fs.length;i++){var f=fs[i],x=+f.dataset.x,w=+f.dataset.w,d=+f.dataset.d,"
    "s=f.style;if(d<zd){var a=x<=zx+e&&x+w>=zx+zw-e;s.display=a?'':'none';s.left='0%';"
    "s.width='100%';f.classList.toggle('bpfnb-fg-anc',a);}else{var n=x>=zx-e&&x+w<=zx+zw+e;"
    "s.display=n?'':'none';s.left=((x-zx)/zw*100)+'%';s.width=(w/zw*100)+'%';"
    "f.classList.remove('bpfnb-fg-anc');}}root.dataset.zoom=z?key:'';}"
)
_CLICK = (
    "var t=event.target.closest('.bpfnb-fg-f');if(!t)return;"
    "var r=this.closest('.bpfnb-fg'),k=+t.dataset.d===0?'':t.dataset.k;"
    "window.bpfnbFlameZoom=window.bpfnbFlameZoom||{};window.bpfnbFlameZoom[r.id]=k;"
    f"({_APPLY})(r,k);"
)
_HOVER = (
    "var t=event.target.closest('.bpfnb-fg-f');if(!t)return;"
    "this.closest('.bpfnb-fg').querySelector('.bpfnb-fg-detail').textContent=t.title;"
)
#: Runs when the graph is inserted (an image that cannot load): restores the zoom. A
#: live view runs it at once when it redraws (``img.bpfnb-restore``, see ui/livehtml.py),
#: so no frame is ever drawn unzoomed between a redraw and the image's error event.
_RESTORE = (
    "var r=this.closest('.bpfnb-fg'),z=window.bpfnbFlameZoom&&window.bpfnbFlameZoom[r.id];"
    f"if(z)({_APPLY})(r,z);"
)
_HINT = "hover a frame for its samples · click to zoom · click all to zoom out"
_GRAPH_IDS = itertools.count(1)


class FlameSource(MapSource, Protocol):
    """A map drawn as a flame graph: folded stack -> weight."""

    def folded(self) -> dict[str, int]:
        """Folded stacks (root-first frames joined by ``;``) and their weights."""
        ...


def _color(name: str) -> str:
    """A warm color per frame name (kernel frames orange, unknown ones grey)."""
    if name.startswith("[") or name == "all":
        return "#c8c8c8"
    digest = hashlib.blake2b(name.encode(), digest_size=3).digest()
    a, b, c = (v / 255 for v in digest)
    if name.endswith(KERNEL_SUFFIX):
        return f"rgb({int(215 + 40 * a)},{int(120 + 60 * b)},{int(30 * c)})"
    return f"rgb({int(225 + 30 * a)},{int(60 + 150 * b)},{int(40 * c)})"


def _frame_key(rect: FlameRect) -> str:
    """A short stable id of a frame's path (the zoom target across redraws)."""
    return hashlib.blake2b(rect.path.encode(), digest_size=6).hexdigest() if rect.path else ""


def _label(rect: FlameRect, total: int) -> str:
    share = 100.0 * rect.value / total if total else 0.0
    own = f", {rect.self_value} in the frame itself" if rect.self_value != rect.value else ""
    return f"{rect.name} ({rect.value} samples, {share:.2f}%{own})"


def render_graph(counts: Mapping[str, int], graph_id: str) -> str:
    """The flame graph of folded ``counts`` as an HTML fragment (without the CSS).

    The root element (``.bpfnb-fg``, id ``graph_id``) carries ``data-total`` (samples)
    and ``data-frames`` (frames drawn); each frame (``.bpfnb-fg-f``) ``data-n`` (its
    name), ``data-v`` (samples), ``data-d`` (depth), ``data-x`` / ``data-w`` (place).
    """
    tree = build_tree(counts)
    rects = layout(tree, min_width=MIN_WIDTH, max_rects=MAX_FRAMES)
    total = tree.value
    depth = max(r.depth for r in rects) + 1
    parts = [
        f'<div class="bpfnb-fg" id="{html.escape(graph_id)}" data-total="{total}" '
        f'data-frames="{len(rects)}">',
        f'<div class="bpfnb-fg-detail">{_HINT if total else "(no samples yet)"}</div>',
        f'<div class="bpfnb-fg-area" style="height:{depth * FRAME_HEIGHT}px" '
        f'onclick="{html.escape(_CLICK)}" onmouseover="{html.escape(_HOVER)}">',
    ]
    for r in rects:
        label = html.escape(_label(r, total))
        parts.append(
            f'<div class="bpfnb-fg-f" style="left:{100 * r.x:.4f}%;width:{100 * r.width:.4f}%;'
            f'top:{r.depth * FRAME_HEIGHT}px;background:{_color(r.name)}" '
            f'data-n="{html.escape(r.name)}" data-v="{r.value}" data-d="{r.depth}" '
            f'data-x="{r.x:.9f}" data-w="{r.width:.9f}" data-k="{_frame_key(r)}" '
            f'title="{label}">{html.escape(r.name)}</div>'
        )
    parts.append("</div>")
    parts.append(
        '<img class="bpfnb-restore" alt="" src="data:image/gif;base64,AA" style="display:none" '
        f'onerror="{html.escape(_RESTORE)}">'
    )
    parts.append("</div>")
    return "".join(parts)


class FlameGraph(View):
    """A stack trace map as a refreshing flame graph.

    Attributes
    ----------
    source : FlameSource
    counts : dict of str to int
        The folded stacks of the last refresh.
    graph_id : str
        The id of the graph's element (keys the zoom kept in the page).
    """

    kind = "flamegraph"

    def __init__(self, source: FlameSource) -> None:
        super().__init__(f"{source.name} (flame graph)")
        self.source = source
        self.counts: dict[str, int] = {}
        self.graph_id = f"bpfnb-fg-{source.name}-{next(_GRAPH_IDS)}"

    @property
    def total(self) -> int:
        """Samples in the last refresh."""
        with self.lock:
            return sum(self.counts.values())

    def _update(self) -> None:
        self.counts = dict(self.source.folded())


def _body(view: FlameGraph) -> str:
    total = view.total
    foot = (
        f'<div class="bpfnb-foot bpfnb-summary" data-total="{total}" '
        f'data-stacks="{len(view.counts)}">samples: {total} · stacks: {len(view.counts)}</div>'
    )
    title = f'<div class="bpfnb-title">{html.escape(view.title)}</div>'
    return CSS + title + render_graph(view.counts, view.graph_id) + foot


class FlameGraphSnapshot:
    """A flame graph drawn once (what ``prog.MAP.flamegraph()`` returns).

    Attributes
    ----------
    counts : dict of str to int
        The folded stacks drawn.
    title : str
    """

    def __init__(self, counts: Mapping[str, int], title: str) -> None:
        self.counts = dict(counts)
        self.title = title
        self._id = f"bpfnb-fg-snapshot-{next(_GRAPH_IDS)}"

    def html(self) -> str:
        """The self-contained HTML (CSS included)."""
        title = f'<div class="bpfnb-title">{html.escape(self.title)}</div>'
        return (
            f'{ui_html.CSS}{CSS}<div class="bpfnb-view bpfnb-flamegraph">{title}'
            f"{render_graph(self.counts, self._id)}</div>"
        )

    def _repr_html_(self) -> str:
        return self.html()

    def __repr__(self) -> str:
        return (
            f"<bpfnb flame graph {self.title!r}: {sum(self.counts.values())} samples, "
            f"{len(self.counts)} stacks>"
        )


def flamegraph(source: FlameSource, title: str | None = None) -> FlameGraphSnapshot:
    """The flame graph of ``source.folded()`` now (the kernel layer's flame graph hook)."""
    return FlameGraphSnapshot(source.folded(), title or f"{source.name} (flame graph)")


def is_flame_source(source: MapSource) -> TypeGuard[FlameSource]:
    """Whether ``source`` is drawn as a flame graph (stack trace maps)."""
    return maptypes.is_stack_trace(source.kind)


def _view_of(source: MapSource) -> View | None:
    return FlameGraph(source) if is_flame_source(source) else None


register_view(_view_of)
ui_html.register_body(FlameGraph, _body)
