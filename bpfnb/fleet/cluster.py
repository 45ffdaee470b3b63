"""The notebook's connection to a Dask cluster of tracing workers.

:func:`connect` makes the :class:`Fleet` (a ``distributed.Client`` plus bpfnb's
state): it installs the worker plugin (:class:`bpfnb.fleet.worker.ProgramHost`) on
every worker, present and future, and keeps the leases of this notebook's programs
alive from a background thread, so a notebook that dies without stopping them leaves
nothing running for longer than its lease.

:meth:`Fleet.call` is the one way the notebook talks to workers: one ``Client.run``
per host, all at once, each with a timeout. A host whose worker has left the cluster
(died, restarted, unreachable) is not waited for: it answers with a
:class:`~bpfnb.fleet.worker.RemoteFailure` naming it, like a host whose call failed.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd
from distributed import Client

from bpfnb.errors import FleetError
from bpfnb.fleet import auth, worker
from bpfnb.fleet.worker import PLUGIN_NAME, LoadRequest, ProgramHost, RemoteFailure

__all__ = [
    "DEFAULT_LEASE",
    "DEFAULT_TIMEOUT",
    "LOST",
    "Fleet",
    "connect",
    "current",
    "disconnect",
]

#: Seconds a worker keeps a program after the notebook's last word.
DEFAULT_LEASE = 30.0
#: Seconds a call to one host may take.
DEFAULT_TIMEOUT = 30.0
#: The error type of a host whose worker is no longer in the cluster.
LOST = "WorkerLost"
#: Seconds to wait for the scheduler to drop a worker whose connection broke.
GONE_WAIT = 3.0


class Fleet:
    """A connected cluster: the client, this notebook's owner id and secret.

    Parameters
    ----------
    client : distributed.Client
    secret : str or None
        Signs load requests (workers with a secret refuse unsigned ones).
    lease : float or None
        Seconds a worker keeps this notebook's programs without hearing from it
        (None: until stopped or the worker closes).
    timeout : float
        Seconds a call to one host may take.
    owns_client : bool
        Close the client with the fleet.

    Attributes
    ----------
    client : distributed.Client
    owner : str
        This notebook's id on the workers (the client's id).
    """

    def __init__(
        self,
        client: Client,
        *,
        secret: str | None = None,
        lease: float | None = DEFAULT_LEASE,
        timeout: float = DEFAULT_TIMEOUT,
        owns_client: bool = False,
    ) -> None:
        self.client = client
        self.owner = str(client.id)
        self.secret = secret
        self.lease = lease
        self.timeout = timeout
        self._owns_client = owns_client
        self._closed = False
        self._closers: list[Callable[[], None]] = []
        self._stop = threading.Event()
        self._keepalive: threading.Thread | None = None
        client.register_plugin(ProgramHost(), name=PLUGIN_NAME)
        if lease is not None:
            self._keepalive = threading.Thread(
                target=self._keep_alive, name="bpfnb-fleet-keepalive", daemon=True
            )
            self._keepalive.start()

    # -- workers ------------------------------------------------------------------------

    @property
    def address(self) -> str:
        """The scheduler's address."""
        scheduler: Any = self.client.scheduler
        return str(scheduler.address) if scheduler is not None else "(disconnected)"

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` ran."""
        return self._closed

    def workers(self) -> dict[str, str]:
        """The cluster's workers now: host label -> address."""
        self._check_open()
        try:
            current = self.client.sync(self._identity)
        except Exception as exc:
            raise FleetError(
                f"the scheduler at {self.address} does not answer ({type(exc).__name__}: "
                f"{exc}); reconnect with %bpf cluster connect ADDRESS"
            ) from None
        return {host: address for address, host in current.items()}

    async def _identity(self) -> dict[str, str]:
        scheduler: Any = self.client.scheduler
        info = await scheduler.identity(n_workers=-1)
        return {
            address: str(w.get("name") if w.get("name") is not None else address)
            for address, w in info["workers"].items()
        }

    def resolve(self, hosts: list[str] | None = None) -> dict[str, str]:
        """Host label -> address of ``hosts`` (None: every worker).

        Raises
        ------
        FleetError
            For a host that is not in the cluster, or when there is no worker.
        """
        current = self.workers()
        if not current:
            raise FleetError(f"the cluster at {self.address} has no workers")
        if hosts is None:
            return dict(sorted(current.items()))
        unknown = [h for h in hosts if h not in current]
        if unknown:
            raise FleetError(
                f"no worker named {', '.join(unknown)} (workers: {', '.join(sorted(current))})"
            )
        return {h: current[h] for h in hosts}

    def info(self) -> pd.DataFrame:
        """One row per worker: host, address, kernel, BTF, privileges, readiness.

        The checks are ``%bpf doctor``'s (kernel BTF, privileges, tracefs), run on
        each worker; ``secret required`` tells whether it refuses unsigned programs.
        """
        answers = self.call(worker.remote_info, self.resolve())
        rows = []
        for host, answer in answers.items():
            if isinstance(answer, RemoteFailure):
                rows.append({"host": host, "ready": False, "problems": str(answer)})
            else:
                rows.append(dict(answer))
        columns = [
            "host",
            "address",
            "hostname",
            "kernel",
            "btf",
            "privileges",
            "ready",
            "problems",
            "secret required",
            "programs",
            "bpfnb",
        ]
        return pd.DataFrame(rows, columns=columns)

    # -- calls --------------------------------------------------------------------------

    def call(
        self,
        function: Callable[..., Any],
        targets: Mapping[str, str],
        *args: Any,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Run ``function(*args, **kwargs)`` on every target worker at once.

        Parameters
        ----------
        function : callable
            One of :mod:`bpfnb.fleet.worker`'s ``remote_*`` functions.
        targets : mapping of str to str
            Host label -> worker address.
        timeout : float, optional
            Seconds per host (default :attr:`timeout`).

        Returns
        -------
        dict of str to object
            Host label -> the function's value, or a :class:`RemoteFailure` (the call
            failed, timed out, or the worker is gone: error type :data:`LOST`).
        """
        self._check_open()
        limit = self.timeout if timeout is None else timeout
        client = self.client

        async def one(host: str, address: str, current: dict[str, str]) -> Any:
            if address not in current:
                return RemoteFailure(host, LOST, _gone(host, address, current))
            try:
                answers = await asyncio.wait_for(
                    client._run(function, *args, workers=[address], on_error="return", **kwargs),
                    limit,
                )
            except TimeoutError:
                return RemoteFailure(host, "TimeoutError", f"no answer within {limit:g} s")
            except Exception as exc:
                return await broken(host, address, exc)
            answer = answers.get(address)
            if isinstance(answer, OSError):  # the connection broke: did the worker die?
                return await broken(host, address, answer)
            if isinstance(answer, BaseException):
                return RemoteFailure(host, type(answer).__name__, str(answer))
            return answer

        async def broken(host: str, address: str, error: BaseException) -> RemoteFailure:
            """A failed connection: LOST once the scheduler drops the worker, else the error."""
            deadline = time.monotonic() + GONE_WAIT
            while True:
                current = await self._identity()
                if address not in current:
                    return RemoteFailure(host, LOST, _gone(host, address, current))
                if time.monotonic() >= deadline:
                    return RemoteFailure(
                        host,
                        type(error).__name__,
                        f"host {host}: its worker does not answer ({type(error).__name__}: "
                        f"{error})",
                    )
                await asyncio.sleep(0.1)

        async def every() -> list[Any]:
            current = await self._identity()
            return list(await asyncio.gather(*(one(h, a, current) for h, a in targets.items())))

        try:
            results = client.sync(every)
        except Exception as exc:  # the scheduler itself is gone or unreachable
            raise FleetError(
                f"the scheduler at {self.address} does not answer ({type(exc).__name__}: "
                f"{exc}); reconnect with %bpf cluster connect ADDRESS"
            ) from None
        return dict(zip(targets, results, strict=True))

    def request(self, request: LoadRequest) -> LoadRequest:
        """Stamp ``request`` with the time and sign it with the fleet secret."""
        request.timestamp = time.time()
        request.lease = self.lease
        request.owner = self.owner
        request.signature = (
            auth.sign(self.secret, request.digest()) if self.secret is not None else None
        )
        return request

    # -- leases and closing ---------------------------------------------------------------

    def _keep_alive(self) -> None:
        assert self.lease is not None
        period = max(self.lease / 3.0, 0.2)
        while not self._stop.wait(period):
            with contextlib.suppress(Exception):
                self.client.run(worker.remote_touch, self.owner, on_error="ignore")

    def stop_everything(self) -> int:
        """Close every program of this notebook on every worker; return how many."""
        if self._closed:
            return 0
        answers = self.call(worker.remote_close_owner, self.resolve(), self.owner)
        return sum(a for a in answers.values() if isinstance(a, int))

    def close(self) -> None:
        """Stop this notebook's programs on every worker and disconnect. Idempotent."""
        if self._closed:
            return
        with contextlib.suppress(Exception):
            self.stop_everything()
        self._stop.set()
        self._closed = True
        callbacks, self._closers = self._closers, []
        for callback in callbacks:
            with contextlib.suppress(Exception):
                callback()
        if self._owns_client:
            with contextlib.suppress(Exception):
                self.client.close()

    def on_close(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` when the fleet closes (its programs mark themselves closed)."""
        self._closers.append(callback)

    def _check_open(self) -> None:
        if self._closed:
            raise FleetError("the fleet connection is closed: %bpf cluster connect ADDRESS")

    def __repr__(self) -> str:
        state = "closed" if self._closed else self.address
        return f"<bpfnb.fleet.Fleet {state}>"


def _gone(host: str, address: str, current: Mapping[str, str]) -> str:
    """Why a host's worker is not there any more."""
    moved = [a for a, h in current.items() if h == host]
    if moved:
        return (
            f"host {host}: its worker restarted (now {moved[0]}); the programs it held "
            f"died with its old process ({address})"
        )
    return (
        f"host {host}: its worker ({address}) left the cluster (died or unreachable); "
        "its programs died with it"
    )


_CURRENT: Fleet | None = None
_CURRENT_LOCK = threading.Lock()


def connect(
    address_or_client: str | Client | Any,
    *,
    secret: str | None = None,
    lease: float | None = DEFAULT_LEASE,
    timeout: float = DEFAULT_TIMEOUT,
    security: Any = None,
) -> Fleet:
    """Connect this notebook to a Dask cluster of tracing workers.

    Parameters
    ----------
    address_or_client : str, distributed.Client or cluster
        ``tcp://HOST:8786`` / ``tls://HOST:8786``, a connected client, or a cluster
        object (``LocalCluster``).
    secret : str, optional
        The fleet's shared secret (default: ``BPFNB_FLEET_SECRET`` of this process).
    lease : float or None
        Seconds the workers keep this notebook's programs without hearing from it.
    timeout : float
        Seconds a call to one host may take.
    security : distributed.Security, optional
        TLS settings for a ``tls://`` address.

    Returns
    -------
    Fleet
        Also the current fleet (:func:`current`), replacing a previous one (whose
        programs are stopped).
    """
    global _CURRENT
    owns = not isinstance(address_or_client, Client)
    if isinstance(address_or_client, str):
        client = Client(address_or_client, security=security, set_as_default=False)
    elif isinstance(address_or_client, Client):
        client = address_or_client
    else:
        client = Client(address_or_client, set_as_default=False)
    fleet = Fleet(
        client,
        secret=secret if secret is not None else auth.local_secret(),
        lease=lease,
        timeout=timeout,
        owns_client=owns,
    )
    with _CURRENT_LOCK:
        previous, _CURRENT = _CURRENT, fleet
    if previous is not None and previous.client is not client:
        previous.close()
    return fleet


def current() -> Fleet:
    """The connected fleet.

    Raises
    ------
    FleetError
        When no cluster is connected.
    """
    fleet = _CURRENT
    if fleet is None or fleet.closed:
        raise FleetError(
            "no cluster connected: %bpf cluster connect tcp://HOST:8786 "
            "(or bpfnb.fleet.connect(address_or_client))"
        )
    return fleet


def disconnect() -> None:
    """Stop every program of this notebook on the fleet and disconnect."""
    global _CURRENT
    with _CURRENT_LOCK:
        fleet, _CURRENT = _CURRENT, None
    if fleet is not None:
        fleet.close()


atexit.register(disconnect)
