"""A real Dask ``LocalCluster`` of worker processes for the fleet tests.

Every worker is a separate process on this machine (``processes=True``), listening on
127.0.0.1 only, named ``0``, ``1``, ``2``...: the fleet's hosts. They share this
machine's kernel, so each test filters its programs to its own workload per host.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from distributed import LocalCluster

from conftest import kernel_prog_ids, wait_until


@contextmanager
def local_cluster(workers: int = 3) -> Iterator[LocalCluster]:
    """A LocalCluster of ``workers`` worker processes on 127.0.0.1 (closed after)."""
    cluster = LocalCluster(
        n_workers=workers,
        threads_per_worker=2,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        silence_logs=logging.CRITICAL,
    )
    try:
        yield cluster
    finally:
        cluster.close()


def worker_pids(fleet: Any) -> dict[str, int]:
    """Host -> the pid of its worker process."""
    pids = fleet.client.run(os.getpid)
    names = {address: host for host, address in fleet.workers().items()}
    return {names[address]: pid for address, pid in pids.items()}


def held(fleet: Any) -> dict[str, list[dict[str, Any]]]:
    """Host -> the programs its worker holds (for every notebook)."""
    from bpfnb.fleet import worker

    return fleet.call(worker.remote_programs, fleet.resolve())


def kill_worker(fleet: Any, host: str) -> int:
    """SIGKILL the worker process of ``host`` (its nanny starts a new one); return its pid."""
    pid = worker_pids(fleet)[host]
    os.kill(pid, signal.SIGKILL)
    return pid


def gone_from_kernel(ids: list[int], timeout: float = 15.0) -> bool:
    """Wait until no program of ``ids`` is loaded in the kernel."""
    return wait_until(lambda: not kernel_prog_ids() & set(ids), timeout)
