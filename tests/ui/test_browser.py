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

from conftest import IN_CI, ROOT, require_kernel
from native import SPIN_FUNCTION, build_stack_target

pytestmark = pytest.mark.browser

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
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(lab.url("api/status"), timeout=2) as resp,
        ):
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
    nb_settings = settings / "@jupyterlab" / "notebook-extension"
    nb_settings.mkdir(parents=True)
    # render every cell (no virtual scrolling), so the DOM holds every output
    (nb_settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
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
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
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
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, str(path))


def _status_text(page: Any) -> str:
    return str(page.locator("#jp-main-statusbar").inner_text())


def _open_notebook(page: Any, lab: Lab, name: str, timeout: float = 90.0) -> None:
    """Open a notebook and wait until the status bar reports the kernel Idle."""
    # a fresh workspace per notebook: no tabs restored from an earlier test
    stem = Path(name).stem
    page.goto(lab.url(f"lab/workspaces/ws-{stem}/tree/{name}") + "&reset")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=timeout * 1000)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if "Idle" in _status_text(page):
            return
        time.sleep(0.25)
    raise AssertionError(f"kernel never became Idle; status bar: {_status_text(page)!r}")


def _run_all(page: Any) -> None:
    # start running, without awaiting the command's promise (it resolves at the end)
    page.evaluate("() => { void window.jupyterapp.commands.execute('notebook:run-all-cells'); }")


def _outputs_text(page: Any) -> str:
    """The text of every cell output (not the cell sources)."""
    return str(
        page.evaluate(
            "() => Array.from(document.querySelectorAll('.jp-OutputArea-output'))"
            ".map(e => e.innerText).join('\\n')"
        )
    )


def _wait_for_text(page: Any, text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in _outputs_text(page):
            return
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


BUSY_CELL = f"""import threading

_keep_execing = threading.Event()


def _exec_loop() -> None:
    while not _keep_execing.is_set():
        subprocess.run([TRUE], check=False)
        time.sleep(0.2)


threading.Thread(target=_exec_loop, daemon=True).start()
print("{BUSY_MARK}", flush=True)
time.sleep(5)
_keep_execing.set()
print("bpfnb-browser-test: awake")"""

READ_VIEWS = """() => {
  const out = {tables: {}, received: [], lost: [], bars: 0, barsWithCounts: 0, states: []};
  for (const s of document.querySelectorAll('.bpfnb-view.bpfnb-program .bpfnb-state')) {
    out.states.push(s.dataset.state);
  }
  for (const v of document.querySelectorAll('.bpfnb-view.bpfnb-table')) {
    const title = v.querySelector('.bpfnb-title');
    const sum = v.querySelector('.bpfnb-summary');
    if (title && sum) out.tables[title.textContent.trim()] = Number(sum.dataset.total || 0);
  }
  for (const s of document.querySelectorAll('.bpfnb-view.bpfnb-events .bpfnb-summary')) {
    out.received.push(Number(s.dataset.received));
    out.lost.push(Number(s.dataset.lost));
  }
  for (const b of document.querySelectorAll('.bpfnb-view.bpfnb-histogram .bpfnb-bar')) {
    out.bars += 1;
    if (Number(b.dataset.count) > 0 && b.getBoundingClientRect().width > 0) out.barsWithCounts += 1;
  }
  return out;
}"""


def _quickstart_copy(root: Path) -> str:
    """Copy the quickstart with a busy cell (time.sleep) inserted before the clean-up."""
    nb = nbformat.read(ROOT / "notebooks" / "quickstart.ipynb", as_version=4)
    stop = next(
        i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "%bpf stop" in c.source
    )
    nb.cells.insert(stop, nbformat.v4.new_code_cell(BUSY_CELL))
    nbformat.write(nb, str(root / "quickstart.ipynb"))
    return "quickstart.ipynb"


def _screenshot_live(page: Any, selector: str, path: Path, attempts: int = 5) -> None:
    """Screenshot the first element matching ``selector``.

    A live view's HTML is replaced at every refresh that changes it, so the element
    can detach between scrolling and the shot (more likely on a loaded machine): try
    again with the new element.
    """
    from playwright.sync_api import Error as PlaywrightError

    for attempt in range(attempts):
        view = page.locator(selector).first
        try:
            view.scroll_into_view_if_needed(timeout=10_000)
            view.screenshot(path=str(path), timeout=10_000)
            return
        except PlaywrightError:
            if attempt == attempts - 1:
                raise


def _counts_total(views: dict[str, Any]) -> float:
    totals = [v for k, v in views["tables"].items() if k.startswith("counts")]
    assert totals, f"no live table of the counts map in the DOM: {views}"
    return float(totals[0])


def test_quickstart_live_in_browser(lab: Lab, browser: Any) -> None:
    """Run the quickstart in JupyterLab; the views move, also while a cell sleeps."""
    require_kernel()
    name = _quickstart_copy(lab.root)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        _open_notebook(page, lab, name)
        _run_all(page)
        _wait_for_text(page, BUSY_MARK, timeout=120)
        assert "Busy" in _status_text(page), _status_text(page)
        first = page.evaluate(READ_VIEWS)
        time.sleep(2.5)
        second = page.evaluate(READ_VIEWS)
        assert "Busy" in _status_text(page), "the sleeping cell should still be running"
        # the live table's counts rise between reads while the kernel is busy
        assert _counts_total(second) > _counts_total(first) > 0, (first, second)
        # the event tail grows, and shows its lost count
        assert first["received"] and second["received"], second
        assert max(second["received"]) > max(first["received"]) >= 5, (first, second)
        assert len(second["lost"]) == len(second["received"])
        # the histogram has bars
        assert second["barsWithCounts"] > 0, second
        # each dashboard's header says it refreshes (three %%bpf cells ran)
        assert len(second["states"]) == 3, second["states"]
        assert all(s.startswith("refreshing every") for s in second["states"]), second
        OUTPUT.mkdir(exist_ok=True)
        page.locator(
            ".bpfnb-program-widget, .bpfnb-dashboard-widget"
        ).first.scroll_into_view_if_needed()
        page.screenshot(path=str(OUTPUT / "quickstart-browser.png"), full_page=True)
        for kind in ("events", "histogram"):
            _screenshot_live(page, f".bpfnb-view.bpfnb-{kind}", OUTPUT / f"quickstart-{kind}.png")
        _wait_for_text(page, "stopped 3 program(s)", timeout=60)
        _wait_idle(page, timeout=30)
        text = _outputs_text(page)
        assert "Traceback" not in text, text[-3000:]
        assert "getppid calls by pid" in text and ": 1000" in text
    finally:
        page.close()


# --------------------------------------------------------------------------------------
# The map zoo: a live flame graph and an LPM trie table
# --------------------------------------------------------------------------------------

LPM_CELL = r"""%%bpf lpm_demo --interval 1
struct v4_key { u32 prefixlen; u8 addr[4]; };
struct {
    __uint(type, BPF_MAP_TYPE_LPM_TRIE);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, struct v4_key);
    __type(value, u64);
    __uint(max_entries, 64);
} routes SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_getppid")
int on_getppid(void *ctx)
{
    struct v4_key k = { .prefixlen = 32, .addr = {10, 1, 2, 3} };
    u64 *hits = bpf_map_lookup_elem(&routes, &k);
    if (hits)
        __sync_fetch_and_add(hits, 1);
    return 0;
}"""

READ_FLAME = """(spinName) => {
  const root = document.querySelector('.bpfnb-view.bpfnb-flamegraph .bpfnb-fg');
  if (!root) return null;
  const width = root.querySelector('.bpfnb-fg-area').getBoundingClientRect().width;
  const frames = Array.from(root.querySelectorAll('.bpfnb-fg-f')).map(f => ({
    key: f.dataset.k, name: f.dataset.n, depth: Number(f.dataset.d),
    share: getComputedStyle(f).display === 'none' ? 0 : f.getBoundingClientRect().width / width,
  }));
  const spin = frames.find(f => f.name === spinName);
  return {
    total: Number(root.dataset.total), zoom: root.dataset.zoom || '', frames: frames,
    spin: spin || null, detail: root.querySelector('.bpfnb-fg-detail').textContent,
  };
}"""


def _retry(action: Any, attempts: int = 5) -> Any:
    """Run ``action`` again when a refresh replaced the element under it."""
    from playwright.sync_api import Error as PlaywrightError

    for attempt in range(attempts):
        try:
            return action()
        except PlaywrightError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.3)
    return None


def test_flame_graph_and_lpm_in_browser(lab: Lab, browser: Any) -> None:
    """A live profile flame graph (hover, click to zoom, zoom kept over refreshes) and an
    LPM trie's table, in JupyterLab."""
    require_kernel()
    spinner = subprocess.Popen(
        [str(build_stack_target()), "spin", "120"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    page = browser.new_page(viewport={"width": 1400, "height": 1200})
    try:
        assert spinner.stdout is not None and spinner.stdin is not None
        pid = int(spinner.stdout.readline())
        spinner.stdin.write("go\n")
        spinner.stdin.flush()
        _write_notebook(
            lab.root / "zoo.ipynb",
            [
                "%load_ext bpfnb",
                f"%bpf template profile prof --set target_pid={pid} --sample-freq 199",
                LPM_CELL,
                'lpm_demo.routes["10.0.0.0/8"] = 1\nlpm_demo.routes["10.1.0.0/16"] = 2\n'
                'print("routes set")',
            ],
        )
        _open_notebook(page, lab, "zoo.ipynb")
        _run_all(page)
        _wait_for_text(page, "routes set", timeout=120)
        deadline = time.monotonic() + 60

        def narrow_callee(flame: Any) -> Any:
            """A callee of the spinning function narrower than half the graph."""
            if flame is None or flame["spin"] is None:
                return None
            depth = flame["spin"]["depth"] + 1
            found = [f for f in flame["frames"] if f["depth"] == depth and 0 < f["share"] < 0.5]
            return found[0] if found else None

        flame = page.evaluate(READ_FLAME, SPIN_FUNCTION)
        while (flame is None or flame["total"] < 30 or narrow_callee(flame) is None) and (
            time.monotonic() < deadline
        ):
            time.sleep(0.5)
            flame = page.evaluate(READ_FLAME, SPIN_FUNCTION)
        assert flame is not None and flame["total"] >= 30 and flame["spin"], flame
        # the spinning function holds (nearly) every sample of its process
        assert flame["spin"]["share"] >= 0.8 and flame["zoom"] == "", flame["spin"]
        callee = narrow_callee(flame)
        assert callee is not None, flame["frames"]
        OUTPUT.mkdir(exist_ok=True)
        _screenshot_live(page, ".bpfnb-view.bpfnb-flamegraph", OUTPUT / "zoo-flamegraph.png")
        spin = f'.bpfnb-flamegraph .bpfnb-fg-f[data-n="{SPIN_FUNCTION}"]'
        # hover: the frame's name and samples in the line above the graph
        _retry(lambda: page.locator(spin).first.hover(timeout=5000))
        detail = page.evaluate(READ_FLAME, SPIN_FUNCTION)["detail"]
        assert detail.startswith(SPIN_FUNCTION) and "samples" in detail, detail
        # click a narrow callee: it spans the whole graph, its callers stay above it
        target = f'.bpfnb-flamegraph .bpfnb-fg-f[data-k="{callee["key"]}"]'
        _retry(lambda: page.locator(target).first.click(timeout=5000))

        def share_of(flame: Any, key: str) -> float:
            return float(next((f["share"] for f in flame["frames"] if f["key"] == key), 0.0))

        zoomed = page.evaluate(READ_FLAME, SPIN_FUNCTION)
        assert zoomed["zoom"] == callee["key"], zoomed["zoom"]
        assert share_of(zoomed, callee["key"]) > 0.99 and zoomed["spin"]["share"] > 0.99
        # a refresh redraws the graph with more samples: the zoom stays
        time.sleep(2.5)
        later = page.evaluate(READ_FLAME, SPIN_FUNCTION)
        assert later["total"] > zoomed["total"], (zoomed["total"], later["total"])
        assert later["zoom"] == callee["key"] and share_of(later, callee["key"]) > 0.99
        _screenshot_live(page, ".bpfnb-view.bpfnb-flamegraph", OUTPUT / "zoo-flamegraph-zoomed.png")
        # the LPM trie's table shows its prefixes
        table = page.locator(".bpfnb-view.bpfnb-table", has_text="routes (lpm_trie)").first
        deadline = time.monotonic() + 30
        while "10.1.0.0/16" not in table.inner_text() and time.monotonic() < deadline:
            time.sleep(0.5)
        text = table.inner_text()
        assert "10.0.0.0/8" in text and "10.1.0.0/16" in text, text
        _screenshot_live(
            page, '.bpfnb-view.bpfnb-table:has-text("routes (lpm_trie)")', OUTPUT / "zoo-lpm.png"
        )
        outputs = _outputs_text(page)
        assert "refresh failed" not in outputs and "Traceback" not in outputs, outputs[-3000:]
    finally:
        page.close()
        spinner.kill()
        spinner.wait(timeout=10)
