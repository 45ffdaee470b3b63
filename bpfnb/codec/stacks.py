"""Stack frames, folded stacks and flame graph layout (pure).

A stack trace map holds instruction addresses; :mod:`bpfnb.kernel.symbolize` turns
each into a :class:`Frame`. This module says how frames read:

- :meth:`Frame.text` for the ``stack`` column: ``do_sys_openat2+0x5a`` (kernel or user
  function and offset), ``libfoo.so+0x1234`` (a file without a symbol there) or
  ``0x7f3a...`` (nothing known);
- :meth:`Frame.folded_name` for folded stacks and flame graphs: the function name
  without offset, kernel functions annotated ``_[k]`` (as Brendan Gregg's tools do),
  ``[libfoo.so]`` or ``[unknown]``.

Folded stacks (:func:`folded_line`, :func:`format_folded`, :func:`parse_folded`) are
Brendan Gregg's format: one line per distinct stack, frames from the root to the leaf
joined by ``;``, a space and the count. :func:`build_tree` merges folded stacks into a
tree and :func:`layout` places its frames as an icicle: each frame's share of the
total (``x``, ``width`` in 0..1) at its depth, root on top.

Example
-------
>>> counts = parse_folded("main;work;spin 8\\nmain;idle 2\\n")
>>> [(r.name, r.depth, r.x, r.width) for r in layout(build_tree(counts))][:3]
[('all', 0, 0.0, 1.0), ('main', 1, 0.0, 1.0), ('work', 2, 0.0, 0.8)]
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

#: Suffix of kernel frames in folded stacks.
KERNEL_SUFFIX = "_[k]"
#: The root frame of a flame graph.
ROOT = "all"
_OFFSET = re.compile(r"\+0x[0-9a-f]+$")


@dataclass(frozen=True)
class Frame:
    """One symbolized instruction address.

    Attributes
    ----------
    address : int
        The address in the stack trace.
    symbol : str or None
        The function holding it, when known.
    offset : int
        The address's offset in that function.
    module : str or None
        The file it was mapped from (``libc.so.6``), or the kernel module; None when
        unknown.
    kernel : bool
        Whether it is a kernel address.
    """

    address: int
    symbol: str | None = None
    offset: int = 0
    module: str | None = None
    kernel: bool = False

    def text(self) -> str:
        """The frame as the ``stack`` column shows it (``func+0x1a``)."""
        if self.symbol is not None:
            return f"{self.symbol}+{self.offset:#x}" if self.offset else self.symbol
        if self.module is not None:
            return f"{self.module}+{self.offset:#x}"
        return f"{self.address:#x}"

    def folded_name(self) -> str:
        """The frame as folded stacks and flame graphs show it (no offset)."""
        if self.symbol is not None:
            name = self.symbol.replace(";", ":")
            return name + KERNEL_SUFFIX if self.kernel else name
        if self.module is not None:
            return f"[{self.module}]"
        return "[unknown]"


def folded_line(frames_leaf_first: Sequence[Frame], root: Sequence[str] = ()) -> str:
    """The folded text of one stack: ``root...;outermost;...;leaf``.

    Parameters
    ----------
    frames_leaf_first : sequence of Frame
        As the kernel stores them: the innermost frame first.
    root : sequence of str
        Frames to put above the stack (a process name...).
    """
    parts = [r.replace(";", ":") for r in root if r]
    parts += [f.folded_name() for f in reversed(frames_leaf_first)]
    return ";".join(parts)


def strip_offset(frame_text: str) -> str:
    """``func+0x1a`` -> ``func`` (frame texts of the ``stack`` column)."""
    return _OFFSET.sub("", frame_text)


def format_folded(counts: Mapping[str, int]) -> str:
    """Folded stacks as text: one ``stack count`` line per stack, sorted by stack."""
    return "".join(f"{stack} {int(n)}\n" for stack, n in sorted(counts.items()) if n > 0)


def parse_folded(text: str) -> dict[str, int]:
    """Read folded stacks (``a;b;c 12`` lines); repeated stacks add up."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        line = line.rstrip()
        if not line:
            continue
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        out[stack] = out.get(stack, 0) + int(count)
    return out


def merge_counts(pairs: Iterable[tuple[str, int]]) -> dict[str, int]:
    """Add up the counts of equal folded stacks."""
    out: dict[str, int] = {}
    for stack, n in pairs:
        if stack and n:
            out[stack] = out.get(stack, 0) + int(n)
    return out


# -- flame graph tree and layout --------------------------------------------------------


@dataclass
class FlameNode:
    """A frame in the merged tree of stacks.

    Attributes
    ----------
    name : str
        The frame's folded name.
    value : int
        Samples in this frame and below.
    children : dict of str to FlameNode
        Callees, by name.
    """

    name: str
    value: int = 0
    children: dict[str, FlameNode] = field(default_factory=dict)

    @property
    def self_value(self) -> int:
        """Samples in this frame itself (not in a callee)."""
        return self.value - sum(c.value for c in self.children.values())

    def find(self, path: Sequence[str]) -> FlameNode | None:
        """The node at ``path`` below this one (names from the first callee), or None."""
        node: FlameNode | None = self
        for name in path:
            node = node.children.get(name) if node is not None else None
        return node


def build_tree(counts: Mapping[str, int], root: str = ROOT) -> FlameNode:
    """Merge folded stacks (root-first frames joined by ``;``) into one tree."""
    top = FlameNode(root)
    for stack, n in counts.items():
        n = int(n)
        if n <= 0:
            continue
        top.value += n
        node = top
        for name in stack.split(";"):
            child = node.children.get(name)
            if child is None:
                child = node.children[name] = FlameNode(name)
            child.value += n
            node = child
    return top


@dataclass(frozen=True)
class FlameRect:
    """A frame placed in the icicle.

    Attributes
    ----------
    name : str
        The frame's name.
    depth : int
        0 for the root, 1 for its callees...
    x, width : float
        Start and width as fractions of the whole graph (0..1).
    value : int
        Samples in the frame and below.
    self_value : int
        Samples in the frame itself.
    path : str
        The frames from the root's first callee down to this one, joined by ``;``
        (empty for the root): a stable id of the frame across refreshes.
    """

    name: str
    depth: int
    x: float
    width: float
    value: int
    self_value: int
    path: str


def layout(root: FlameNode, *, min_width: float = 0.0, max_rects: int = 0) -> list[FlameRect]:
    """Place every frame of the tree: breadth by samples, callees sorted by name.

    Parameters
    ----------
    root : FlameNode
        The merged tree (:func:`build_tree`).
    min_width : float
        Frames narrower than this fraction of the whole are left out (with their
        callees).
    max_rects : int
        At most this many frames (the widest kept); 0 for no limit.

    Returns
    -------
    list of FlameRect
        Root first, then depth by depth, left to right.
    """
    total = root.value
    if total <= 0:
        return [FlameRect(root.name, 0, 0.0, 1.0, 0, 0, "")]
    out: list[FlameRect] = []
    level: list[tuple[FlameNode, float, str]] = [(root, 0.0, "")]
    depth = 0
    while level:
        nxt: list[tuple[FlameNode, float, str]] = []
        for node, x, path in level:
            width = node.value / total
            out.append(FlameRect(node.name, depth, x, width, node.value, node.self_value, path))
            cx = x
            for name in sorted(node.children):
                child = node.children[name]
                cw = child.value / total
                if cw >= min_width:
                    nxt.append((child, cx, f"{path};{name}" if path else name))
                cx += cw
        level = nxt
        depth += 1
    if max_rects and len(out) > max_rects:
        keep = sorted(out, key=lambda r: (-r.width, r.depth))[:max_rects]
        kept = {id(r) for r in keep}
        out = [r for r in out if id(r) in kept]
    return out


__all__ = [
    "KERNEL_SUFFIX",
    "ROOT",
    "FlameNode",
    "FlameRect",
    "Frame",
    "build_tree",
    "folded_line",
    "format_folded",
    "layout",
    "merge_counts",
    "parse_folded",
    "strip_offset",
]
