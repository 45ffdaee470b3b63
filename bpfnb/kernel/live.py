"""The one hook behind ``Map.live()``: the UI registers how live views are built.

Live views are built by the UI layer, which the kernel layer never imports: the UI
registers a builder with :func:`set_live_hook` (``bpfnb`` registers a lazy one at
import), and ``Map.live()`` / ``RingBuffer.live()`` call :func:`live`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bpfnb.errors import BpfnbError

LiveHook = Callable[..., Any]
_LIVE_HOOK: LiveHook | None = None


def set_live_hook(hook: LiveHook | None) -> None:
    """Register the builder of live views: ``hook(source, interval=None) -> widget``."""
    global _LIVE_HOOK
    _LIVE_HOOK = hook


def live(source: object, interval: float | None = None) -> Any:
    """Build a live view of ``source`` with the registered hook.

    Raises
    ------
    BpfnbError
        When no UI registered a hook (``import bpfnb`` does).
    """
    if _LIVE_HOOK is None:
        raise BpfnbError(
            "live views need bpfnb's UI layer: `import bpfnb` (or %load_ext bpfnb) first"
        )
    return _LIVE_HOOK(source, interval=interval)
