"""Trace a fleet from one notebook, on Dask distributed (the layer above ``pipeline``).

- :mod:`~bpfnb.fleet.cluster`: :func:`connect` to a scheduler, the :class:`Fleet`
  (workers, concurrent calls with timeouts, leases).
- :mod:`~bpfnb.fleet.worker`: :class:`~bpfnb.fleet.worker.ProgramHost`, the worker
  plugin owning the programs on each worker, and the remote calls.
- :mod:`~bpfnb.fleet.program`: :func:`load` (compile here, load everywhere) and
  :class:`FleetProgram`, whose maps gather every host with a leading ``host`` column.
- :mod:`~bpfnb.fleet.auth`: the shared secret a worker may require.

Imports nothing from ``bpfnb.ui``; the UI shows fleet programs through its Protocols.
"""

from __future__ import annotations

from bpfnb.fleet.cluster import Fleet, connect, current, disconnect
from bpfnb.fleet.program import (
    HOST,
    FleetMap,
    FleetProgram,
    FleetStream,
    FleetWarning,
    HostState,
    close_all,
    load,
    programs,
)

__all__ = [
    "HOST",
    "Fleet",
    "FleetMap",
    "FleetProgram",
    "FleetStream",
    "FleetWarning",
    "HostState",
    "close_all",
    "connect",
    "current",
    "disconnect",
    "load",
    "programs",
]
