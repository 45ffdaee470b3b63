"""bpfnb in a real browser: JupyterLab 4 + ipywidgets 8 in Debian's headless Chromium.

The server runs on 127.0.0.1 with a token, ``--allow-root`` and a fixed free port
(``--port-retries=0``), in its own process group, and is stopped by that group.
Chromium is ``/usr/bin/chromium`` (``scripts/install-browser.sh``), driven by
Playwright for Python; Playwright's own browser downloads are never used.

The quickstart tests share one page (a module fixture): a copy of
``notebooks/quickstart.ipynb`` without its clean-up cell and with one extra cell that
keeps the kernel busy (``time.sleep``) while ``true`` is executed in a loop (noise for
the event tail). Each check is its own test, in this order: the views move while the
kernel is busy; the rate plot's lines move; a selected table is not re-rendered
until the selection ends; the event tail's filter finds the test's own exec among the
noise; table text is readable (contrast >= 4.5:1) in the light and
the dark theme; the saved notebook, reopened without its kernel, shows the static
snapshots (tables, bars, plots) and no "model not found"; after a kernel restart the
live dashboards say they are not live. Two more notebooks check that error messages
use the editor's gutter line numbers (syntax and verifier errors) and that a full map
shows its warning and its exact dropped count. A last notebook shows the map zoo: a
live flame graph of a profiled process (hover, click to zoom, the zoom kept over
refreshes) and an LPM trie's table. Screenshots land in ``test-output/``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
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

from conftest import IN_CI, ROOT, require_kernel
from native import SPIN_FUNCTION, build_stack_target
from programs import (
    MISSING_NULL_CHECK,
    MISSING_NULL_CHECK_LINE,
    SYNTAX_ERROR,
    SYNTAX_ERROR_LINE,
)

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
    # render every cell (no virtual scrolling), so the DOM holds every output; show the
    # editor's line numbers (the gutter test compares them with bpfnb's messages)
    (nb_settings / "tracker.jupyterlab-settings").write_text(
        json.dumps({"windowingMode": "none", "codeCellConfig": {"lineNumbers": True}})
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
    """The text of every visible cell output (not the cell sources, not hidden snapshots)."""
    return str(
        page.evaluate(
            "() => Array.from(document.querySelectorAll('.jp-OutputArea-output'))"
            ".filter(e => e.offsetParent !== null).map(e => e.innerText).join('\\n')"
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
time.sleep(12)
print("bpfnb-browser-test: awake")"""

READ_VIEWS = """() => {
  const out = {tables: {}, received: [], lost: [], bars: 0, barsWithCounts: 0, states: [],
               views: []};
  for (const s of document.querySelectorAll('.bpfnb-live .bpfnb-program .bpfnb-state')) {
    out.states.push(s.dataset.state);
    out.views.push(s.dataset.view);
  }
  for (const v of document.querySelectorAll('.bpfnb-live .bpfnb-view.bpfnb-table')) {
    const title = v.querySelector('.bpfnb-title');
    const sum = v.querySelector('.bpfnb-summary');
    if (title && sum) out.tables[title.textContent.trim()] = Number(sum.dataset.total || 0);
  }
  for (const s of document.querySelectorAll('.bpfnb-live .bpfnb-events .bpfnb-summary')) {
    out.received.push(Number(s.dataset.received));
    out.lost.push(Number(s.dataset.lost));
  }
  for (const b of document.querySelectorAll('.bpfnb-live .bpfnb-histogram .bpfnb-bar')) {
    out.bars += 1;
    if (Number(b.dataset.count) > 0 && b.getBoundingClientRect().width > 0) out.barsWithCounts += 1;
  }
  return out;
}"""

# WCAG contrast of an element's text against what is painted behind it.
CONTRAST = """(selector) => {
  const rgba = (s) => {
    const m = s.match(/rgba?\\(([^)]+)\\)/);
    const p = m[1].split(',').map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const backdrop = (el) => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const c = rgba(getComputedStyle(e).backgroundColor);
      if (c[3] > 0) layers.push(c);
      if (c[3] >= 1) break;
    }
    let out = [255, 255, 255];
    for (const c of layers.reverse()) out = out.map((v, i) => c[i] * c[3] + v * (1 - c[3]));
    return out;
  };
  const lum = (c) => {
    const f = (v) => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    };
    return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]);
  };
  const el = document.querySelector(selector);
  if (!el) return null;
  const b = backdrop(el);
  const t = rgba(getComputedStyle(el).color);
  const fg = t.slice(0, 3).map((v, i) => v * t[3] + b[i] * (1 - t[3]));
  const [l1, l2] = [lum(fg), lum(b)];
  return (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
}"""

# text shown to the user that says a widget model is missing
MODEL_NOT_FOUND = """() => Array.from(document.querySelectorAll('.jp-OutputArea-child'))
  .filter(e => e.offsetParent !== null && e.innerText.includes('model not found')).length"""


def _quickstart_copy(root: Path) -> str:
    """The quickstart without its clean-up cell, plus a busy cell at the end."""
    nb = nbformat.read(ROOT / "notebooks" / "quickstart.ipynb", as_version=4)
    nb.cells = [c for c in nb.cells if not (c.cell_type == "code" and "%bpf stop" in c.source)]
    nb.cells.append(nbformat.v4.new_code_cell(BUSY_CELL))
    nbformat.write(nb, str(root / "quickstart.ipynb"))
    return "quickstart.ipynb"


def _screenshot_live(page: Any, selector: str, path: Path, attempts: int = 5) -> None:
    """Screenshot the first element matching ``selector``.

    A live view's HTML is replaced at every refresh that changes it, so the element
    can detach between scrolling and the shot (more likely on a loaded machine): try
    again with the new element.
    """
    from playwright.sync_api import Error as PlaywrightError

    OUTPUT.mkdir(exist_ok=True)
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


def _add_and_run_cell(page: Any, source: str) -> None:
    """Append a code cell to the open notebook and run it (no waiting)."""
    page.evaluate(
        """(source) => {
          const panel = window.jupyterapp.shell.currentWidget;
          const nb = panel.content;
          const n = nb.model.cells.length;
          nb.model.sharedModel.insertCell(n, {cell_type: 'code', source: source});
          nb.activeCellIndex = n;
          void window.jupyterapp.commands.execute('notebook:run-cell');
        }""",
        source,
    )


def _run_cell_at(page: Any, index: int) -> None:
    page.evaluate(
        """(i) => {
          const nb = window.jupyterapp.shell.currentWidget.content;
          nb.activeCellIndex = i;
          void window.jupyterapp.commands.execute('notebook:run-cell');
        }""",
        index,
    )


def _wait_for(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.25)
    raise AssertionError(f"{what} never happened (last: {last!r})")


@pytest.fixture(scope="module")
def quickstart(lab: Lab, browser: Any) -> Iterator[Any]:
    """The quickstart running in JupyterLab, its last cell busy (see the module docstring)."""
    require_kernel()
    name = _quickstart_copy(lab.root)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        _open_notebook(page, lab, name)
        _run_all(page)
        _wait_for_text(page, BUSY_MARK, timeout=180)
        yield page
    finally:
        page.close()


def test_quickstart_live_in_browser(quickstart: Any) -> None:
    """The views move while a cell sleeps; each dashboard says what it does."""
    page = quickstart
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
    # three %%bpf cells ran: each program runs and each view is live
    assert second["states"] == ["running"] * 3 and second["views"] == ["live"] * 3, second
    # the static snapshots after the dashboards are hidden while they live
    hidden = page.evaluate(
        """() => Array.from(document.querySelectorAll('.bpfnb-snapshot'))
          .map(e => getComputedStyle(e.closest('.jp-OutputArea-child')).display)"""
    )
    assert hidden == ["none"] * 3, hidden
    # compact rows (htop density, not ipywidgets' 31 px)
    height = page.evaluate(
        "() => document.querySelector('.bpfnb-live .bpfnb-table tbody tr')"
        ".getBoundingClientRect().height"
    )
    assert height <= 20, height
    _screenshot_live(page, ".bpfnb-dashboard-widget", OUTPUT / "quickstart-syscount.png")
    for kind in ("events", "histogram"):
        _screenshot_live(
            page, f".bpfnb-live .bpfnb-view.bpfnb-{kind}", OUTPUT / f"quickstart-{kind}.png"
        )
    _wait_for_text(page, "bpfnb-browser-test: awake", timeout=60)
    text = _outputs_text(page)
    assert "Traceback" not in text, text[-3000:]
    assert "getppid calls by pid" in text and ": 1000" in text


READ_LINES = """() => Array.from(document.querySelectorAll(
    '.bpfnb-rate-plot g.curve path.line')).map(p => p.getAttribute('d') || '')"""


def test_rate_plot_lines_move(quickstart: Any) -> None:
    """The counts table's plot draws its top keys' rates, and the lines move; the
    latency histogram has its heatmap."""
    page = quickstart
    lines = _wait_for(
        lambda: [d for d in page.evaluate(READ_LINES) if d.count("L") >= 2],
        30,
        "rate plot lines with three points",
    )
    time.sleep(2.5)
    later = page.evaluate(READ_LINES)
    assert later and later != lines, (lines, later)
    labels = page.evaluate(
        "() => Array.from(document.querySelectorAll('.bpfnb-rate-plot text'))"
        ".map(t => t.textContent)"
    )
    assert any(" · " in label for label in labels), labels  # pid · syscall · comm
    _screenshot_live(page, ".bpfnb-rate-plot", OUTPUT / "quickstart-rate-plot.png")
    # the latency histogram's heatmap: values per bucket per refresh
    cells = page.evaluate("() => document.querySelectorAll('.bpfnb-heatmap-plot rect').length")
    assert cells > 0
    _screenshot_live(page, ".bpfnb-heatmap-plot", OUTPUT / "quickstart-heatmap.png")


def test_selection_holds_the_table(quickstart: Any) -> None:
    """While text is selected in a live table it is not re-rendered (it can be copied)."""
    page = quickstart
    selected = page.evaluate(
        """() => {
          const table = document.querySelector('.bpfnb-live .bpfnb-table tbody');
          const range = document.createRange();
          range.selectNodeContents(table);
          const sel = document.getSelection();
          sel.removeAllRanges();
          sel.addRange(range);
          window.__bpfnbHeld = table;
          return sel.toString().length;
        }"""
    )
    assert selected > 0
    time.sleep(3.0)  # three refreshes of a table whose counts change every second
    held = page.evaluate(
        """() => ({connected: window.__bpfnbHeld.isConnected,
                   selection: document.getSelection().toString().length})"""
    )
    assert held == {"connected": True, "selection": selected}, held
    page.evaluate("() => document.getSelection().removeAllRanges()")
    # once the selection ends, the refresh held back is applied
    _wait_for(
        lambda: page.evaluate("() => !window.__bpfnbHeld.isConnected"),
        10,
        "the held refresh applied after the selection ended",
    )


def test_tail_filter_finds_own_event(quickstart: Any, lab: Lab) -> None:
    """Among every exec on the machine (and the busy cell's loop), the filter finds ours."""
    page = quickstart
    unique = f"bpfnb-own-{os.getpid()}-{int(time.time())}"
    try:
        _filter_own_event(page, unique)
    finally:
        Path("/tmp", unique).unlink(missing_ok=True)  # the copied executable


def _filter_own_event(page: Any, unique: str) -> None:
    _add_and_run_cell(
        page,
        "import shutil\n"
        f"_own = shutil.copy(TRUE, '/tmp/{unique}')\n"
        "subprocess.run([_own], check=True)\n"
        "print('own exec done')",
    )
    _wait_for_text(page, "own exec done", timeout=60)
    box = page.locator(".bpfnb-events-widget input[type=text]").first
    box.fill(f"filename ~ {unique}")
    box.press("Enter")

    def found() -> Any:
        return page.evaluate(
            """(unique) => {
              const v = document.querySelector('.bpfnb-live .bpfnb-events');
              if (!v) return null;
              const rows = Array.from(v.querySelectorAll('tbody tr')).map(r => r.innerText);
              const s = v.querySelector('.bpfnb-summary');
              return rows.length && rows.every(r => r.includes(unique))
                ? {rows: rows.length, shown: Number(s.dataset.shown)} : null;
            }""",
            unique,
        )

    got = _wait_for(found, 30, "the filtered tail showing our exec")
    assert got == {"rows": 1, "shown": 1}, got
    received = page.evaluate(READ_VIEWS)["received"]
    assert max(received) > 5, received  # noise was there to filter out
    _screenshot_live(page, ".bpfnb-events-widget", OUTPUT / "quickstart-tail-filter.png")
    box.fill("")
    box.press("Enter")


def test_theme_contrast_light_and_dark(quickstart: Any) -> None:
    """Table headers, cells and titles are readable in both themes (WCAG >= 4.5:1)."""
    page = quickstart
    selectors = [
        ".bpfnb-live .bpfnb-table th",
        ".bpfnb-live .bpfnb-table td",
        ".bpfnb-live .bpfnb-title",
        ".bpfnb-live .bpfnb-foot",
    ]
    for theme in ("JupyterLab Light", "JupyterLab Dark"):
        page.evaluate(
            "(t) => window.jupyterapp.commands.execute('apputils:change-theme', {theme: t})",
            theme,
        )
        _wait_for(
            lambda t=theme: page.evaluate("() => document.body.dataset.jpThemeName") == t,
            30,
            f"theme {theme}",
        )
        time.sleep(1.0)
        ratios = {sel: page.evaluate(CONTRAST, sel) for sel in selectors}
        assert all(r is not None and r >= 4.5 for r in ratios.values()), (theme, ratios)
        slug = "dark" if "Dark" in theme else "light"
        _screenshot_live(page, ".bpfnb-dashboard-widget", OUTPUT / f"theme-{slug}.png")
    page.evaluate(
        "() => window.jupyterapp.commands.execute('apputils:change-theme', "
        "{theme: 'JupyterLab Light'})"
    )


def test_saved_notebook_shows_snapshots(quickstart: Any, lab: Lab, browser: Any) -> None:
    """Reopened without its kernel, the notebook shows the last snapshots; a restarted
    kernel's dashboards say they are not live."""
    page = quickstart
    time.sleep(11)  # the snapshot outputs are updated every 10 s
    page.evaluate("() => { void window.jupyterapp.commands.execute('docmanager:save'); }")
    _wait_for(
        lambda: "bpfnb-snapshot" in (lab.root / "quickstart.ipynb").read_text(),
        30,
        "the saved notebook",
    )
    shutil.copy(lab.root / "quickstart.ipynb", lab.root / "reopened.ipynb")
    reopened = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        _open_notebook(reopened, lab, "reopened.ipynb")
        facts = _wait_for(
            lambda: reopened.evaluate(
                """() => {
                  const snaps = Array.from(document.querySelectorAll('.bpfnb-snapshot'))
                    .filter(e => e.offsetParent !== null);
                  if (snaps.length < 3) return null;
                  return {
                    snapshots: snaps.length,
                    rows: snaps.map(s => s.querySelectorAll('.bpfnb-table tbody tr').length),
                    bars: document.querySelectorAll('.bpfnb-snapshot .bpfnb-bar').length,
                    lines: Math.max(...Array.from(
                      document.querySelectorAll('.bpfnb-snapshot svg.bpfnb-chart'))
                      .map(c => Number(c.dataset.lines)), 0),
                    notes: snaps.map(s => s.querySelector('.bpfnb-snapshot-note').innerText),
                  };
                }"""
            ),
            60,
            "visible snapshots in the reopened notebook",
        )
        assert facts["snapshots"] == 3 and min(facts["rows"]) > 0, facts
        assert facts["bars"] > 0 and facts["lines"] > 0, facts
        assert all("not live" in n for n in facts["notes"]), facts
        assert reopened.evaluate(MODEL_NOT_FOUND) == 0
        _screenshot_live(reopened, ".bpfnb-snapshot", OUTPUT / "reopened-snapshot.png")
    finally:
        reopened.close()
    # a kernel restart: the old dashboards stay on the page and must not claim to refresh
    page.evaluate("() => { void window.jupyterapp.commands.execute('kernelmenu:restart'); }")
    dialog = page.locator(".jp-Dialog .jp-mod-accept")
    with contextlib.suppress(Exception):
        dialog.click(timeout=5_000)
    note = _wait_for(
        lambda: page.evaluate(
            """() => {
              const shown = Array.from(document.querySelectorAll('.bpfnb-stale-note'))
                .filter(e => !e.hidden).map(e => e.innerText);
              return shown.length >= 3 ? shown : null;
            }"""
        ),
        45,
        "the 'not live' note on the three dashboards after a kernel restart",
    )
    assert len(note) == 3 and all("not live" in n for n in note), note
    states = page.evaluate(
        "() => Array.from(document.querySelectorAll('.bpfnb-live .bpfnb-program .bpfnb-state'))"
        ".map(s => s.textContent)"
    )
    assert states == ["[not live: no word from the kernel]"] * 3, states
    _screenshot_live(page, ".bpfnb-dashboard-widget", OUTPUT / "restarted-kernel.png")


GUTTER_LINE = """(marker) => {
  const lines = Array.from(document.querySelectorAll('.jp-CodeCell .cm-line'));
  const line = lines.find(l => l.textContent.includes(marker));
  if (!line) return null;
  const top = line.getBoundingClientRect().top;
  const gutters = line.closest('.cm-editor').querySelectorAll('.cm-lineNumbers .cm-gutterElement');
  for (const g of gutters) {
    const r = g.getBoundingClientRect();
    if (r.height > 0 && Math.abs(r.top - top) < 3) return Number(g.textContent);
  }
  return null;
}"""


def test_error_lines_match_the_gutter(lab: Lab, browser: Any) -> None:
    """A syntax error and a verifier error name the line numbers the editor shows."""
    require_kernel()
    syntax = f"%%bpf broken\n{SYNTAX_ERROR}"
    verifier = f"%%bpf nocheck\n{MISSING_NULL_CHECK}"
    _write_notebook(lab.root / "errors.ipynb", ["%load_ext bpfnb", syntax, verifier])
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        _open_notebook(page, lab, "errors.ipynb")
        _run_cell_at(page, 0)
        _wait_idle(page, 60)
        _run_cell_at(page, 1)
        _wait_for_text(page, "expected ';'", timeout=90)
        _wait_idle(page, 60)
        _run_cell_at(page, 2)
        _wait_for_text(page, "map_value_or_null", timeout=90)
        text = _outputs_text(page)
        missing_semicolon = page.evaluate(GUTTER_LINE, ">> 32")
        dereference = page.evaluate(GUTTER_LINE, "*n += 1")
        assert missing_semicolon == SYNTAX_ERROR_LINE + 1, missing_semicolon  # %%bpf is 1
        assert dereference == MISSING_NULL_CHECK_LINE + 1, dereference
        assert f"line {missing_semicolon}," in text, text
        assert f"cell line {dereference}" in text, text
        # the progress line was replaced by what happened
        assert "compiling and loading" not in text
        assert "broken: compile failed; error below" in text
        assert "nocheck: the verifier rejected it; error below" in text
        _screenshot_live(page, ".jp-Notebook", OUTPUT / "error-lines.png")
    finally:
        page.close()


FILLS = r"""%%bpf fills --set target_pid={os.getpid()} --interval 0.5
u64 seq;
const volatile u32 target_pid = 0;
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __type(key, u64);
    __type(value, u64);
    __uint(max_entries, 16);
} seen SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_getppid")
int fill(void *ctx)
{
    u64 one = 1, k, id = bpf_get_current_pid_tgid();
    /* the cell's thread only: ipykernel's parent poller thread calls getppid too */
    if ((id >> 32) != target_pid || (u32)id != target_pid)
        return 0;
    k = __sync_fetch_and_add(&seq, 1);
    bpf_map_update_elem(&seen, &k, &one, BPF_NOEXIST);
    return 0;
}"""


def test_full_map_shows_warning_and_dropped(lab: Lab, browser: Any) -> None:
    """40 new keys into a 16-entry map: the table says full, and how many were dropped."""
    require_kernel()
    cells = [
        "import os, time\n%load_ext bpfnb",
        FILLS,
        "for _ in range(40):\n    os.getppid()\ntime.sleep(2)\n"
        "print(f'fill-check rows {len(fills.seen)} dropped {fills.seen.dropped}')",
    ]
    _write_notebook(lab.root / "fills.ipynb", cells)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        _open_notebook(page, lab, "fills.ipynb")
        _run_all(page)
        _wait_for_text(page, "fill-check", timeout=120)
        m = re.search(r"fill-check rows (\d+) dropped (\d+)", _outputs_text(page))
        assert m is not None, _outputs_text(page)[-3000:]
        # exactly 40 distinct keys offered to 16 entries: 24 refused, counted in the kernel
        assert (int(m[1]), int(m[2])) == (16, 24), m[0]
        fill = _wait_for(
            lambda: page.evaluate(
                """() => {
                  const f = document.querySelector('.bpfnb-live .bpfnb-fill[data-full="1"]');
                  return f ? {rows: Number(f.dataset.rows), max: Number(f.dataset.max),
                              dropped: Number(f.dataset.dropped), text: f.innerText} : null;
                }"""
            ),
            30,
            "the full-map warning",
        )
        assert (fill["rows"], fill["max"], fill["dropped"]) == (16, 16, 24), fill
        assert "rows: 16 / 16 max_entries" in fill["text"] and "map full" in fill["text"]
        assert "24 updates dropped: map full" in fill["text"], fill["text"]
        _screenshot_live(page, ".bpfnb-dashboard-widget", OUTPUT / "full-map.png")
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
