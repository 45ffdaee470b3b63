"""``LiveHtml``: the widget every live view draws into (an anywidget with a small ESM).

What a plain ``ipywidgets.HTML`` cannot do, this does in the browser:

- **hold still while the user selects**: a new ``html`` value is applied only when no
  text is selected inside the widget and no mouse button is down on it; a pending
  value is applied as soon as the selection ends (so a table can be copied);
- **say when the kernel is gone**: the kernel side bumps ``beat`` at every refresh and
  sets ``interval`` (seconds between refreshes, 0 while nothing refreshes: paused or
  stopped). When no beat came for ``max(5 s, 4 x interval)`` the widget marks itself
  stale (class ``bpfnb-stale``, dimmed, its ``[state]`` labels replaced by "not live")
  and, when ``announce`` is set (a dashboard's header), says why: the kernel
  restarted, was shut down or is stuck. The refresh thread runs while cells run, so a
  busy kernel still beats;
- carry the class ``bpfnb-live`` on its element: a static snapshot output right after a
  live dashboard hides itself (see :data:`bpfnb.ui.html.SNAPSHOT_CSS`).

Without a frontend the widget is a plain traitlets object: ``html`` is the value.
"""

from __future__ import annotations

from typing import Any

import anywidget
import traitlets

__all__ = ["ESM", "LiveHtml"]

ESM = r"""
function render({ model, el }) {
  el.classList.add("bpfnb-live");
  const note = document.createElement("div");
  note.className = "bpfnb-stale-note";
  note.hidden = true;
  const body = document.createElement("div");
  body.className = "bpfnb-live-body";
  el.append(note, body);
  let pending = null;
  let pressed = false;
  let lastBeat = Date.now();

  const selecting = () => {
    if (pressed) return true;
    const sel = document.getSelection();
    if (!sel || sel.isCollapsed || sel.rangeCount === 0) return false;
    const node = sel.getRangeAt(0).commonAncestorContainer;
    return el.contains(node);
  };
  const apply = () => {
    if (pending === null) return;
    if (selecting()) {
      el.classList.add("bpfnb-held");
      return;
    }
    body.innerHTML = pending;
    pending = null;
    // state kept in the page (a flame graph's zoom) is put back before the next paint,
    // not when the marker image's error event comes
    for (const r of body.querySelectorAll("img.bpfnb-restore")) {
      if (r.onerror) r.onerror(new Event("error"));
    }
    el.classList.remove("bpfnb-held");
  };
  const onHtml = () => { pending = model.get("html"); apply(); };
  const relabel = (stale) => {
    for (const s of body.querySelectorAll(".bpfnb-state")) {
      if (stale && s.dataset.live === undefined) {
        s.dataset.live = s.textContent;
        s.textContent = "[not live: no word from the kernel]";
      } else if (!stale && s.dataset.live !== undefined) {
        s.textContent = s.dataset.live;
        delete s.dataset.live;
      }
    }
  };
  const onBeat = () => {
    lastBeat = Date.now();
    note.hidden = true;
    el.classList.remove("bpfnb-stale");
    relabel(false);
  };
  const down = (e) => { if (el.contains(e.target)) pressed = true; };
  const up = () => { pressed = false; setTimeout(apply, 0); };
  const selectionChanged = () => { if (pending !== null) apply(); };
  onHtml();
  model.on("change:html", onHtml);
  model.on("change:beat", onBeat);
  document.addEventListener("pointerdown", down, true);
  document.addEventListener("pointerup", up, true);
  document.addEventListener("selectionchange", selectionChanged);
  const timer = setInterval(() => {
    const every = model.get("interval");
    if (!every) { note.hidden = true; el.classList.remove("bpfnb-stale"); return; }
    const quiet = (Date.now() - lastBeat) / 1000;
    if (quiet > Math.max(5, 4 * every)) {
      note.textContent = "not live: no update from the kernel for " + Math.round(quiet) +
        " s (restarted, shut down or stuck?); this is the last state it sent";
      note.hidden = !model.get("announce");
      el.classList.add("bpfnb-stale");
      relabel(true);
    }
  }, 1000);
  return () => {
    clearInterval(timer);
    document.removeEventListener("pointerdown", down, true);
    document.removeEventListener("pointerup", up, true);
    document.removeEventListener("selectionchange", selectionChanged);
  };
}
export default { render };
"""


class LiveHtml(anywidget.AnyWidget):
    """HTML that follows a live view (see the module docstring).

    Parameters
    ----------
    value : str
        The initial HTML.
    """

    _esm = ESM
    html = traitlets.Unicode("").tag(sync=True)
    beat = traitlets.Int(0).tag(sync=True)
    interval = traitlets.Float(0.0).tag(sync=True)
    announce = traitlets.Bool(True).tag(sync=True)

    def __init__(self, value: str = "", **kwargs: Any) -> None:
        super().__init__(html=value, **kwargs)

    @property
    def value(self) -> str:
        """The HTML shown (as ``ipywidgets.HTML.value``)."""
        return str(self.html)

    @value.setter
    def value(self, text: str) -> None:
        self.html = text

    def pulse(self, interval: float) -> None:
        """Tell the browser the kernel is alive; ``interval`` 0: no more beats expected."""
        with self.hold_sync():
            self.interval = float(interval)
            self.beat = int(self.beat) + 1
