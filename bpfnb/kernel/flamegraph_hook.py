"""The one hook behind ``Map.flamegraph()``: the UI registers how flame graphs are drawn.

Flame graphs are HTML built by the UI layer (:mod:`bpfnb.ui.flamegraph`), which the
kernel layer never imports: ``bpfnb`` registers a lazy builder at import with
:func:`set_flamegraph_hook`, and ``StackTraceMap.flamegraph()`` (and ``flamegraph()``
of maps counting stacks) call :func:`flamegraph`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bpfnb.errors import BpfnbError

FlamegraphHook = Callable[..., Any]
_HOOK: FlamegraphHook | None = None


def set_flamegraph_hook(hook: FlamegraphHook | None) -> None:
    """Register the flame graph builder: ``hook(source, title=None) -> displayable``."""
    global _HOOK
    _HOOK = hook


def flamegraph(source: object, title: str | None = None) -> Any:
    """Draw the flame graph of ``source`` (its ``folded()`` counts) with the registered hook.

    Raises
    ------
    BpfnbError
        When no UI registered a hook (``import bpfnb`` does).
    """
    if _HOOK is None:
        raise BpfnbError(
            "flame graphs need bpfnb's UI layer: `import bpfnb` (or %load_ext bpfnb) first"
        )
    return _HOOK(source, title=title)
