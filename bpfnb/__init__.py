"""bpfnb: interactive eBPF tracing in Jupyter.

``%load_ext bpfnb`` registers the ``%%bpf`` cell magic and the ``%bpf`` line magic.
Without IPython, :func:`load` compiles, loads and attaches a program and returns a
:class:`Program` whose maps read as typed pandas DataFrames.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bpfnb.errors import (
    AttachError,
    BpfnbError,
    CompileError,
    EventTypeError,
    KernelFeatureError,
    LoadError,
    MapTypeError,
    PrivilegeError,
    ToolMissingError,
    VerifierError,
)

if TYPE_CHECKING:  # the kernel layer is imported on first use, keeping the pure core light
    from bpfnb.kernel.program import Program, close_all, load, programs
    from bpfnb.ui.sources import MapSource

__version__ = "0.1.0"

__all__ = [
    "AttachError",
    "BpfnbError",
    "CompileError",
    "EventTypeError",
    "KernelFeatureError",
    "LoadError",
    "MapTypeError",
    "PrivilegeError",
    "Program",
    "ToolMissingError",
    "VerifierError",
    "close_all",
    "load",
    "load_ipython_extension",
    "programs",
    "unload_ipython_extension",
]


def __getattr__(name: str) -> Any:
    if name in ("Program", "load", "programs", "close_all"):
        from bpfnb.kernel import program

        return getattr(program, name)
    raise AttributeError(f"module 'bpfnb' has no attribute {name!r}")


def _live_view(source: MapSource, interval: float | None = None) -> Any:
    """Build ``Map.live()``'s view with the UI layer, imported on first use."""
    from bpfnb.ui.dashboard import live_view

    return live_view(source, interval=interval)


def _register_live_hook() -> None:
    from bpfnb.kernel import views

    views.set_live_hook(_live_view)


_register_live_hook()


def load_ipython_extension(ipython: Any) -> None:
    """Register the magics (``%load_ext bpfnb``)."""
    from bpfnb.ui.magics import load_ipython_extension as _load

    _load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """Close every program of the session (``%unload_ext bpfnb``)."""
    from bpfnb.ui.magics import unload_ipython_extension as _unload

    _unload(ipython)
