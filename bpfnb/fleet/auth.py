"""The fleet's shared secret: a worker loads a program only for a client that knows it.

A worker started with ``BPFNB_FLEET_SECRET`` (or ``BPFNB_FLEET_SECRET_FILE``, a file
holding it) in its environment refuses every program whose load request does not
carry a valid signature: an HMAC-SHA256, keyed with the secret, of the program's
name, the SHA-256 of its object bytes, its global values and a timestamp (requests
older than :data:`MAX_AGE_SECONDS` are refused, so a recorded request cannot be
replayed later). The secret itself never travels.

This guards the one thing bpfnb adds to a Dask cluster: loading kernel code. It does
not make an open scheduler safe (anyone who can reach it can run any Python on the
workers); run the cluster with TLS and client certificates (see the README).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from collections.abc import Mapping
from pathlib import Path

from bpfnb.errors import NotAuthorisedError

__all__ = [
    "MAX_AGE_SECONDS",
    "SECRET_ENV",
    "SECRET_FILE_ENV",
    "local_secret",
    "request_digest",
    "sign",
    "verify",
]

SECRET_ENV = "BPFNB_FLEET_SECRET"
SECRET_FILE_ENV = "BPFNB_FLEET_SECRET_FILE"
#: How old (or how far in the future) a signed request may be, in seconds.
MAX_AGE_SECONDS = 300.0


def local_secret(environ: Mapping[str, str] | None = None) -> str | None:
    """The secret configured in this process's environment, or None.

    ``BPFNB_FLEET_SECRET`` wins over ``BPFNB_FLEET_SECRET_FILE`` (whose file's content,
    stripped, is the secret). An empty value counts as none.
    """
    env = os.environ if environ is None else environ
    secret = env.get(SECRET_ENV, "")
    if not secret and env.get(SECRET_FILE_ENV):
        secret = Path(env[SECRET_FILE_ENV]).read_text().strip()
    return secret or None


def request_digest(name: str, data: bytes, globals_text: str, timestamp: float) -> bytes:
    """What a signature covers: the program's name, object, globals and the time."""
    h = hashlib.sha256()
    for part in (name.encode(), hashlib.sha256(data).digest(), globals_text.encode()):
        h.update(len(part).to_bytes(8, "little"))
        h.update(part)
    h.update(repr(float(timestamp)).encode())
    return h.digest()


def sign(secret: str, digest: bytes) -> str:
    """The hex HMAC-SHA256 of ``digest`` keyed with ``secret``."""
    return hmac.new(secret.encode(), digest, hashlib.sha256).hexdigest()


def verify(
    secret: str | None,
    digest: bytes,
    signature: str | None,
    timestamp: float,
    *,
    host: str,
    now: float | None = None,
) -> None:
    """Accept the request, or raise NotAuthorisedError saying why.

    Parameters
    ----------
    secret : str or None
        The worker's secret; None accepts every request.
    digest : bytes
        :func:`request_digest` of the request as received.
    signature : str or None
        The client's :func:`sign` of it (None when the client has no secret).
    timestamp : float
        The request's time (``time.time()`` on the client).
    host : str
        The worker's name, for the message.
    now : float, optional
        The current time (tests).
    """
    if secret is None:
        return
    if signature is None:
        raise NotAuthorisedError(
            f"host {host} requires the fleet secret: connect with "
            f"bpfnb.fleet.connect(..., secret=...) or set {SECRET_ENV} in the notebook"
        )
    current = time.time() if now is None else now
    if abs(current - timestamp) > MAX_AGE_SECONDS:
        raise NotAuthorisedError(
            f"host {host} refused the program: the request is {current - timestamp:+.0f} s "
            "old (clocks out of sync, or a replayed request)"
        )
    if not hmac.compare_digest(sign(secret, digest), signature):
        raise NotAuthorisedError(
            f"host {host} refused the program: the client's fleet secret does not match"
        )
