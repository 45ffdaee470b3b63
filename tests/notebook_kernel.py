"""A real Jupyter kernel (ipykernel through jupyter_client) for tests that need one.

:class:`NotebookKernel` starts ``python3`` (this interpreter's ipykernel) as Jupyter
does, runs code in it and interrupts it as the notebook's stop button does
(what ``KernelManager.interrupt_kernel`` does for ipykernel: SIGINT to the kernel's
process group; sent directly, because jupyter_client's synchronous API called from a
timer thread leaves an event loop behind in that thread). It also
reads, from ``/proc``, the BPF objects the kernel process holds.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jupyter_client import KernelManager

_KINDS = {
    "anon_inode:bpf-prog": "prog_id",
    "anon_inode:bpf-map": "map_id",
    "anon_inode:bpf_link": "link_id",
}


@dataclass
class Reply:
    """What a cell answered.

    Attributes
    ----------
    status : str
        ``ok`` or ``error``.
    ename, evalue : str
        The exception's type name and text (empty when ``ok``).
    seconds : float
        From sending the cell to its reply.
    text : str
        Everything the cell printed or displayed (streams and ``text/plain``).
    """

    status: str
    ename: str
    evalue: str
    seconds: float
    text: str


class NotebookKernel:
    """A running ipykernel (see the module docstring).

    Parameters
    ----------
    env : dict, optional
        Extra environment variables of the kernel process.
    cwd : path, optional
        Its working directory.
    """

    __test__ = False

    def __init__(self, env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
        self.manager = KernelManager(kernel_name="python3")
        self.manager.start_kernel(env={**os.environ, **(env or {})}, cwd=str(cwd or os.getcwd()))
        self.client = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=60)
        pid = self.manager.provisioner.pid if self.manager.provisioner else None
        assert pid is not None
        self.pid: int = int(pid)
        self.pgid: int = os.getpgid(self.pid)

    def run(self, code: str, *, interrupt_after: float | None = None, timeout: float = 60) -> Reply:
        """Run ``code``; with ``interrupt_after``, press stop that many seconds after sending it.

        Raises
        ------
        TimeoutError
            No reply within ``timeout`` seconds (the kernel hangs).
        """
        start = time.monotonic()
        msg_id = self.client.execute(code)
        timer = None
        if interrupt_after is not None:
            timer = threading.Timer(interrupt_after, self.interrupt)
            timer.start()
        try:
            reply = self._reply(msg_id, start + timeout)
        finally:
            if timer is not None:
                timer.join()
        seconds = time.monotonic() - start
        content = reply["content"]
        return Reply(
            content["status"],
            content.get("ename", ""),
            content.get("evalue", ""),
            seconds,
            self._outputs(msg_id),
        )

    def interrupt(self) -> None:
        """Press the notebook's stop button (SIGINT to the kernel's process group)."""
        os.killpg(self.pgid, signal.SIGINT)

    def _reply(self, msg_id: str, deadline: float) -> dict[str, Any]:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the kernel did not answer")
            try:
                msg: dict[str, Any] = self.client.get_shell_msg(timeout=left)
            except Exception:  # queue.Empty
                raise TimeoutError("the kernel did not answer") from None
            if msg["parent_header"].get("msg_id") == msg_id:
                return msg

    def _outputs(self, msg_id: str) -> str:
        """The outputs of cell ``msg_id`` (read until the kernel says it is idle)."""
        parts: list[str] = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                msg = self.client.get_iopub_msg(timeout=1)
            except Exception:  # queue.Empty
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            content = msg["content"]
            if msg["msg_type"] == "stream":
                parts.append(content["text"])
            elif msg["msg_type"] in ("display_data", "execute_result", "update_display_data"):
                parts.append(str(content.get("data", {}).get("text/plain", "")))
            elif msg["msg_type"] == "status" and content["execution_state"] == "idle":
                break
        return "".join(parts)

    def bpf_ids(self) -> dict[str, set[int]]:
        """Ids of the BPF programs, maps and links the kernel process holds fds of."""
        out: dict[str, set[int]] = {kind: set() for kind in _KINDS.values()}
        for name in os.listdir(f"/proc/{self.pid}/fd"):
            try:
                kind = _KINDS.get(os.readlink(f"/proc/{self.pid}/fd/{name}"))
                if kind is None:
                    continue
                info = Path(f"/proc/{self.pid}/fdinfo/{name}").read_text()
            except OSError:  # closed meanwhile
                continue
            for line in info.splitlines():
                key, _, value = line.partition(":")
                if key == kind:
                    out[kind].add(int(value))
        return out

    def close(self) -> None:
        """Stop the kernel process."""
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)
