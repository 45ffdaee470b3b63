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
    ClosedError,
    CompileError,
    EventTypeError,
    KernelFeatureError,
    LoadError,
    MapTypeError,
    PrivilegeError,
    ToolMissingError,
    UnsupportedOperationError,
    VerifierError,
)

if TYPE_CHECKING:  # the kernel layer is imported on first use, keeping the pure core light
    from bpfnb.kernel.program import Program
    from bpfnb.kernel.session import close_all, programs
    from bpfnb.pipeline import load
    from bpfnb.ui.sources import MapSource

__version__ = "0.1.0"

__all__ = [
    "AttachError",
    "BpfnbError",
    "ClosedError",
    "CompileError",
    "EventTypeError",
    "KernelFeatureError",
    "LoadError",
    "MapTypeError",
    "PrivilegeError",
    "Program",
    "ToolMissingError",
    "UnsupportedOperationError",
    "VerifierError",
    "close_all",
    "load",
    "load_ipython_extension",
    "programs",
    "unload_ipython_extension",
]


def __getattr__(name: str) -> Any:
    if name == "Program":
        from bpfnb.kernel.program import Program

        return Program
    if name in ("programs", "close_all"):
        from bpfnb.kernel import session

        return getattr(session, name)
    if name == "load":
        from bpfnb.pipeline import load

        return load
    if name == "fleet":  # bpfnb.fleet.connect(...) without importing dask up front
        import bpfnb.fleet

        return bpfnb.fleet
    raise AttributeError(f"module 'bpfnb' has no attribute {name!r}")


def _live_view(source: MapSource, interval: float | None = None) -> Any:
    """Build ``Map.live()``'s view with the UI layer, imported on first use."""
    from bpfnb.ui.dashboard import live_view

    return live_view(source, interval=interval)


def _flamegraph(source: Any, title: str | None = None) -> Any:
    """Draw ``Map.flamegraph()`` with the UI layer, imported on first use."""
    from bpfnb.ui.flamegraph import flamegraph

    return flamegraph(source, title=title)


def _register_live_hook() -> None:
    from bpfnb.kernel import flamegraph_hook, live

    live.set_live_hook(_live_view)
    flamegraph_hook.set_flamegraph_hook(_flamegraph)


_register_live_hook()


def load_ipython_extension(ipython: Any) -> None:
    """Register the magics (``%load_ext bpfnb``)."""
    from bpfnb.ui.magics import load_ipython_extension as _load

    _load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """Close every program of the session (``%unload_ext bpfnb``)."""
    from bpfnb.ui.magics import unload_ipython_extension as _unload

    _unload(ipython)
