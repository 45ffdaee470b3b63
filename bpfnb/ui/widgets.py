"""ipywidgets assembly of the live views: bodies, controls, plots, dashboard boxes.

Each view's body is a :class:`~bpfnb.ui.livehtml.LiveHtml` whose value follows the
view: a callback registered with :meth:`bpfnb.ui.views.View.on_change` renders the
view (:func:`bpfnb.ui.html.render`), sets the value when the HTML changed and tells
the browser the kernel is alive (``pulse``). The refresher thread sets widget values
this way, so views keep moving while another cell runs; the browser holds a new value
back while the user selects text in it.

Controls get explicit callbacks:

- table: sort column, order, rows per page, previous / next page, per-CPU switch,
  rate plot on/off, Export CSV;
- event tail: rows shown, filter (``comm == cat``), Export CSV;
- histogram: heatmap on/off, Export CSV;
- dashboard: Pause view / Resume view (one button), Detach, Attach, Stop (unload),
  "show helper maps". Each button is enabled only when it does something.

Displaying a box (:meth:`SnapshotBox._ipython_display_`) puts two outputs in the
notebook: the live widget, and a static snapshot (:func:`bpfnb.ui.html.snapshot`)
that the refresh thread updates every :data:`SNAPSHOT_EVERY` seconds and when the
program stops. JupyterLab hides the snapshot while the widget lives; a notebook
reopened without its kernel shows the snapshot instead of "model not found".

Without ipywidgets (:func:`available` is False) nothing here is used: callers show
:class:`bpfnb.ui.html.StaticView` instead. ipywidgets has no type stubs: widget
objects are typed ``Any`` here.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bpfnb.errors import BpfnbError, OutputExistsError
from bpfnb.outfile import write_new
from bpfnb.ui import format as fmt
from bpfnb.ui import html
from bpfnb.ui.views import (
    MAX_PAGE_ROWS,
    MAX_TAIL_ROWS,
    EventTail,
    HistogramChart,
    LiveTable,
    View,
)

try:  # ipywidgets is a dependency, but the static fallback must work without it
    import ipywidgets as _w
except ImportError:  # pragma: no cover - exercised by the fallback test via monkeypatch
    _w = None

__all__ = [
    "EXPORT_DIR_ENV",
    "SNAPSHOT_EVERY",
    "SORT_BY_TOTAL",
    "DashboardWidget",
    "SnapshotOutput",
    "available",
    "box",
    "choice_buttons",
    "dashboard_widget",
    "export_csv",
    "html_body",
    "rendered_html",
    "top_widget",
    "view_widget",
]

#: The sort choice that means "by the total column".
SORT_BY_TOTAL = ("(total column)", "")
#: Seconds between updates of the static snapshot output (and when the program stops).
SNAPSHOT_EVERY = 10.0
#: Where Export CSV writes (default: ``./bpfnb-export`` of the kernel's directory).
EXPORT_DIR_ENV = "BPFNB_EXPORT_DIR"

Pulse = Callable[[], float]


def available() -> bool:
    """Whether ipywidgets can be imported."""
    return _w is not None


def _require() -> Any:
    if _w is None:
        raise BpfnbError("ipywidgets is not installed: live views need it (pip install ipywidgets)")
    return _w


def _in_kernel() -> bool:
    """Whether we run in a Jupyter kernel (where display updates reach a notebook)."""
    try:
        from ipykernel.zmqshell import ZMQInteractiveShell
        from IPython import get_ipython
    except ImportError:
        return False
    return isinstance(get_ipython(), ZMQInteractiveShell)


class SnapshotOutput:
    """The static snapshot output displayed after a live box, kept up to date.

    Parameters
    ----------
    render : callable
        Returns the snapshot's HTML.
    label : callable
        Returns its ``text/plain`` line.
    every : float
        Seconds between updates (:meth:`publish` is called at every refresh).
    """

    def __init__(
        self, render: Callable[[], str], label: Callable[[], str], every: float = SNAPSHOT_EVERY
    ) -> None:
        self.render = render
        self.label = label
        self.every = every
        self._handles: list[Any] = []
        self._last = 0.0
        self._lock = threading.Lock()

    def bundle(self) -> dict[str, str]:
        """The snapshot's mime bundle."""
        return {"text/html": self.render(), "text/plain": self.label()}

    def show(self) -> None:
        """Display the snapshot as its own output (in a Jupyter kernel only)."""
        if not _in_kernel():
            return
        from IPython.display import display

        handle = display(self.bundle(), raw=True, display_id=True)
        with self._lock:
            self._handles.append(handle)
            self._last = time.monotonic()

    def publish(self, force: bool = False) -> None:
        """Update every displayed snapshot (at most every :attr:`every` s unless ``force``)."""
        with self._lock:
            handles = list(self._handles)
            if not handles or (not force and time.monotonic() - self._last < self.every):
                return
            self._last = time.monotonic()
        bundle = self.bundle()
        for handle in handles:
            handle.update(bundle, raw=True)


_BOX: type | None = None


def _box_class() -> type:
    """A VBox displayed with a static snapshot output after it (made once, lazily)."""
    global _BOX
    if _BOX is None:
        vbox: Any = _require().VBox

        class SnapshotBox(vbox):
            """A VBox whose display adds a static snapshot output (see the module doc)."""

            def __init__(
                self, children: list[Any], snapshot: SnapshotOutput, label: Callable[[], str]
            ) -> None:
                super().__init__(children=children)
                self.snapshot = snapshot
                self._label = label

            def _repr_mimebundle_(self, **kwargs: Any) -> Any:
                bundle = super()._repr_mimebundle_(**kwargs)
                if isinstance(bundle, dict):
                    bundle = dict(bundle)
                    bundle["text/plain"] = self._label()
                return bundle

            def _ipython_display_(self) -> None:
                from IPython.display import display

                display(self._repr_mimebundle_(), raw=True)
                self.snapshot.show()

        _BOX = SnapshotBox
    return _BOX


def box(
    children: list[Any], *, kind: str, snapshot: SnapshotOutput, label: Callable[[], str]
) -> Any:
    """A VBox of ``children`` with CSS classes ``bpfnb`` and ``bpfnb-KIND-widget``.

    Parameters
    ----------
    children : list of widgets
    kind : str
        The view's kind (``table``, ``events``, ``dashboard``...).
    snapshot : SnapshotOutput
        The static snapshot displayed after the box.
    label : callable
        Returns the ``text/plain`` line.
    """
    made = _box_class()(children, snapshot, label)
    made.add_class("bpfnb")
    made.add_class(f"bpfnb-{kind}-widget")
    return made


def html_body(view: View, pulse: Pulse, *, announce: bool = True) -> Any:
    """A :class:`~bpfnb.ui.livehtml.LiveHtml` showing ``view``, updated when it changes.

    Parameters
    ----------
    view : View
    pulse : callable
        Returns the seconds between refreshes the browser should expect now (0 when
        none: paused, stopped).
    announce : bool
        Whether this body says "not live" when beats stop (a dashboard's header does;
        its views only dim).
    """
    _require()
    from bpfnb.ui.livehtml import LiveHtml

    body = LiveHtml(html.render(view), announce=announce)
    shown = [body.value]

    def show() -> None:
        text = html.render(view)
        with body.hold_sync():
            if text != shown[0]:
                shown[0] = text
                body.value = text
            body.pulse(pulse())

    view.on_change(show)
    return body


def export_dir() -> Path:
    """Where Export CSV writes: ``$BPFNB_EXPORT_DIR`` or ``./bpfnb-export``."""
    return Path(os.environ.get(EXPORT_DIR_ENV) or Path.cwd() / "bpfnb-export")


def export_csv(view: LiveTable | EventTail | HistogramChart, name: str) -> tuple[Path, int]:
    """Write what a view shows (all its rows, in its order) to a new CSV file.

    The file is new: an existing file or symbolic link of that name is never written
    (through) (:mod:`bpfnb.outfile`); the next free ``-N`` suffix is taken.

    Returns
    -------
    path : Path
        The file written (``export_dir()/NAME-YYYYmmdd-HHMMSS[-N].csv``).
    rows : int
        Rows written.
    """
    if isinstance(view, HistogramChart):
        frame = view.frame.copy()
        if view.unit:
            frame.insert(1, f"bucket ({view.unit})", view.labels())
    else:
        frame = view.export_frame()
    folder = export_dir()
    folder.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    data = frame.to_csv(None, index=False).encode()
    n = 1
    while True:  # a new name: an existing file or link is never written (outfile's rules)
        path = folder / (f"{name}-{stamp}.csv" if n == 1 else f"{name}-{stamp}-{n}.csv")
        try:
            written = write_new(path, data)
        except OutputExistsError:
            n += 1
            continue
        return written.resolve(), len(frame)


def _export_button(view: LiveTable | EventTail | HistogramChart, name: str) -> tuple[Any, Any]:
    w = _require()
    button = w.Button(description="Export CSV", icon="download", layout={"width": "120px"})
    said = w.HTML(value="")
    said.add_class("bpfnb-export-note")

    def export(_: object = None) -> None:
        try:
            path, rows = export_csv(view, name)
        except Exception as exc:  # shown next to the button
            said.value = (
                f'<span class="bpfnb-err">export failed: {type(exc).__name__}: {exc}</span>'
            )
            return
        said.value = (
            f'<span class="bpfnb-export-path" data-path="{path}">wrote '
            f"{fmt.thousands(rows)} rows to {path}</span>"
        )

    button.on_click(export)
    return button, said


@dataclass
class ViewWidget:
    """A view's widget and what updates with it.

    Attributes
    ----------
    box : ipywidgets.VBox
    plot : RatePlot or HeatmapPlot or None
        The view's live plot, updated after each refresh while shown.
    export : ipywidgets.Button or None
    export_note : ipywidgets.HTML or None
        Says where the last export went.
    controls : dict of str to widget
        The view's controls by name (``sort``, ``descending``, ``rows``, ``prev``,
        ``next``, ``per_cpu``, ``plot``, ``filter``...).
    """

    box: Any
    plot: Any = None
    export: Any = None
    export_note: Any = None
    controls: dict[str, Any] = field(default_factory=dict)


def _plot_toggle(view: View, plot: Any, label: str) -> tuple[Any, Any]:
    """A checkbox showing or hiding a plot; the plot is updated only while shown."""
    w = _require()
    shown = [True]
    toggle = w.Checkbox(value=True, description=label, indent=False, layout={"width": "90px"})
    holder = w.Box([plot.figure])

    def switch(_: object = None) -> None:
        shown[0] = bool(toggle.value)
        holder.layout.display = "" if shown[0] else "none"
        if shown[0]:
            plot.update()

    def follow() -> None:
        if shown[0]:
            plot.update()

    toggle.observe(switch, names="value")
    view.on_change(follow)
    plot.update()
    return toggle, holder


def _table_widget(view: LiveTable, pulse: Pulse, name: str, announce: bool) -> ViewWidget:
    """The live table: sort, order, rows, pages, per-CPU and plot controls, Export CSV."""
    w = _require()
    from bpfnb.ui.plots import plot_for

    sort = w.Dropdown(
        description="sort by",
        options=[SORT_BY_TOTAL],
        value="",
        style={"description_width": "50px"},
        layout={"width": "230px"},
    )
    descending = w.Checkbox(
        value=view.descending, description="descending", indent=False, layout={"width": "100px"}
    )
    rows = w.BoundedIntText(
        value=view.top_n,
        min=1,
        max=MAX_PAGE_ROWS,
        description="rows",
        style={"description_width": "36px"},
        layout={"width": "110px"},
    )
    prev = w.Button(description="", icon="chevron-left", layout={"width": "34px"})
    nxt = w.Button(description="", icon="chevron-right", layout={"width": "34px"})
    per_cpu = w.Checkbox(
        value=view.per_cpu,
        description="per CPU",
        indent=False,
        layout={"width": "80px", "display": "" if view.can_per_cpu else "none"},
    )
    syncing = [False]  # True while the sort choices follow the table's columns

    def sync_controls() -> None:
        columns = view.columns
        options = [SORT_BY_TOTAL, *((c, c) for c in columns)]
        pages = view.page_count
        prev.disabled = view.page <= 0
        nxt.disabled = view.page >= pages - 1
        if [tuple(o) for o in sort.options] == options:
            return
        keep = sort.value if sort.value in columns else ""
        syncing[0] = True
        try:
            sort.options = options
            sort.value = keep
        finally:
            syncing[0] = False
        view.sort_by = keep or None

    def reorder(_: object = None) -> None:
        if not syncing[0]:
            view.set_order(sort.value or None, bool(descending.value), int(rows.value))

    def switch_per_cpu(_: object = None) -> None:
        view.set_per_cpu(bool(per_cpu.value))

    for control in (sort, descending, rows):
        control.observe(reorder, names="value")
    per_cpu.observe(switch_per_cpu, names="value")
    prev.on_click(lambda _: view.set_page(view.page - 1))
    nxt.on_click(lambda _: view.set_page(view.page + 1))
    view.on_change(sync_controls)  # before the body's callback: columns, then HTML
    sync_controls()
    export, note = _export_button(view, name)
    controls: dict[str, Any] = {
        "sort": sort,
        "descending": descending,
        "rows": rows,
        "prev": prev,
        "next": nxt,
        "per_cpu": per_cpu,
    }
    children = [html_body(view, pulse, announce=announce)]
    plot = plot_for(view)
    bar = [sort, descending, rows, prev, nxt, per_cpu]
    if plot is not None:
        toggle, holder = _plot_toggle(view, plot, "plot")
        controls["plot"] = toggle
        bar.append(toggle)
        children.append(holder)
    bar += [export, note]
    made = box(
        [w.HBox(bar), *children],
        kind=view.kind,
        snapshot=SnapshotOutput(lambda: html.snapshot([view]), lambda: repr(view)),
        label=lambda: repr(view),
    )
    return ViewWidget(made, plot, export, note, controls)


def _tail_widget(view: EventTail, pulse: Pulse, name: str, announce: bool) -> ViewWidget:
    """The event tail: rows shown, a filter, Export CSV."""
    w = _require()
    rows = w.BoundedIntText(
        value=view.rows,
        min=1,
        max=MAX_TAIL_ROWS,
        description="rows",
        style={"description_width": "36px"},
        layout={"width": "110px"},
    )
    text = w.Text(
        value="",
        placeholder="filter: comm == cat, filename ~ passwd, pid > 100",
        continuous_update=False,
        layout={"width": "380px"},
    )
    problem = w.HTML(value="")

    def set_rows(_: object = None) -> None:
        view.set_rows(int(rows.value))

    def set_filter(_: object = None) -> None:
        try:
            view.set_filter(str(text.value))
        except BpfnbError as exc:
            problem.value = f'<span class="bpfnb-err">{exc}</span>'
            return
        problem.value = ""

    rows.observe(set_rows, names="value")
    text.observe(set_filter, names="value")
    export, note = _export_button(view, name)
    made = box(
        [w.HBox([rows, text, problem, export, note]), html_body(view, pulse, announce=announce)],
        kind=view.kind,
        snapshot=SnapshotOutput(lambda: html.snapshot([view]), lambda: repr(view)),
        label=lambda: repr(view),
    )
    return ViewWidget(made, None, export, note, {"rows": rows, "filter": text})


def _histogram_widget(view: HistogramChart, pulse: Pulse, name: str, announce: bool) -> ViewWidget:
    """The histogram: bars and summary, a heatmap over time, Export CSV."""
    w = _require()
    from bpfnb.ui.plots import HeatmapPlot

    plot = HeatmapPlot(view)
    toggle, holder = _plot_toggle(view, plot, "heatmap")
    export, note = _export_button(view, name)
    made = box(
        [w.HBox([toggle, export, note]), html_body(view, pulse, announce=announce), holder],
        kind=view.kind,
        snapshot=SnapshotOutput(lambda: html.snapshot([view]), lambda: repr(view)),
        label=lambda: repr(view),
    )
    return ViewWidget(made, plot, export, note, {"heatmap": toggle})


def view_widget(
    view: View, pulse: Pulse | None = None, *, name: str = "", announce: bool = True
) -> ViewWidget:
    """The widget of a view: controls and plot by its kind, any other view as HTML.

    Parameters
    ----------
    view : View
    pulse : callable, optional
        Seconds between refreshes the browser should expect (see :func:`html_body`).
    name : str
        Names exported files (``PROGRAM-MAP``).
    announce : bool
        See :func:`html_body`.
    """
    pulse = pulse or (lambda: 0.0)
    name = name or view.title.split(" ", 1)[0]
    if isinstance(view, LiveTable):
        return _table_widget(view, pulse, name, announce)
    if isinstance(view, EventTail):
        return _tail_widget(view, pulse, name, announce)
    if isinstance(view, HistogramChart):
        return _histogram_widget(view, pulse, name, announce)
    made = box(
        [html_body(view, pulse, announce=announce)],
        kind=view.kind,
        snapshot=SnapshotOutput(lambda: html.snapshot([view]), lambda: repr(view)),
        label=lambda: repr(view),
    )
    return ViewWidget(made)


def top_widget(view: View, pulse: Pulse, on_stop: Callable[[], None]) -> Any:
    """``%bpf top``: the programs' table, refreshed, and a Stop button (ends refreshing)."""
    w = _require()
    stop = w.Button(description="Stop", icon="stop", layout={"width": "100px"})
    stop.tooltip = "stop refreshing this table (the programs keep running)"

    def clicked(_: object) -> None:
        on_stop()
        stop.disabled = True

    stop.on_click(clicked)
    return box(
        [stop, html_body(view, pulse)],
        kind=view.kind,
        snapshot=SnapshotOutput(lambda: html.snapshot([view]), lambda: repr(view)),
        label=lambda: repr(view),
    )


@dataclass
class DashboardWidget:
    """The dashboard's box, its buttons and its views' widgets.

    Attributes
    ----------
    box : ipywidgets.VBox
        Header, buttons, one view widget per map (helper maps in a collapsed box).
    buttons : dict of str to ipywidgets.Button
        ``pause`` (Pause view / Resume view), ``detach``, ``attach``, ``stop``.
    helpers_toggle : ipywidgets.ToggleButton or None
        Shows the helper maps (None when there are none).
    helpers : ipywidgets.VBox
        The helper maps' widgets (hidden until shown).
    views : dict of str to ViewWidget
        By map name.
    """

    box: Any
    buttons: dict[str, Any]
    helpers_toggle: Any
    helpers: Any
    views: dict[str, ViewWidget]

    def set_buttons(self, *, paused: bool, attached: bool, closed: bool) -> None:
        """Enable only the buttons that do something in this state."""
        pause = self.buttons["pause"]
        pause.description = "Resume view" if paused else "Pause view"
        pause.icon = "play" if paused else "pause"
        pause.disabled = closed
        self.buttons["detach"].disabled = closed or not attached
        self.buttons["attach"].disabled = closed or attached
        self.buttons["stop"].disabled = closed


def dashboard_widget(
    header: View,
    views: dict[str, View],
    helpers: dict[str, View],
    *,
    pulse: Pulse,
    on_pause: Callable[[], None],
    on_detach: Callable[[], None],
    on_attach: Callable[[], None],
    on_stop: Callable[[], None],
    on_show_helpers: Callable[[bool], None],
    snapshot: SnapshotOutput,
    label: Callable[[], str],
    program: str,
) -> DashboardWidget:
    """Assemble a dashboard: header, buttons, one widget per view, helper maps collapsed.

    Parameters
    ----------
    header : View
        The program's header view.
    views, helpers : dict of str to View
        The maps shown, and the helper maps (collapsed), by name.
    pulse : callable
        Seconds between refreshes the browser should expect.
    on_pause, on_detach, on_attach, on_stop : callable
        Called when the buttons are clicked (Pause view / Resume view is one button).
    on_show_helpers : callable
        Called with True / False when the helper maps are shown / hidden.
    snapshot : SnapshotOutput
        The dashboard's static snapshot.
    label : callable
        The ``text/plain`` line.
    program : str
        The program's name (names exported files).
    """
    w = _require()
    pause = w.Button(description="Pause view", icon="pause", layout={"width": "120px"})
    pause.tooltip = "freeze the dashboard; the program keeps counting"
    detach = w.Button(description="Detach", icon="unlink", layout={"width": "100px"})
    detach.tooltip = "stop counting: detach the programs, keep the maps readable"
    attach = w.Button(description="Attach", icon="link", layout={"width": "100px"})
    attach.tooltip = "attach the programs again"
    stop = w.Button(
        description="Stop", icon="stop", button_style="danger", layout={"width": "100px"}
    )
    stop.tooltip = "unload the program (as %bpf stop NAME)"
    pause.on_click(lambda _: on_pause())
    detach.on_click(lambda _: on_detach())
    attach.on_click(lambda _: on_attach())
    stop.on_click(lambda _: on_stop())
    made_views = {
        name: view_widget(v, pulse, name=f"{program}-{name}", announce=False)
        for name, v in {**views, **helpers}.items()
    }
    helper_box = w.VBox([made_views[n].box for n in helpers], layout={"display": "none"})
    helper_box.add_class("bpfnb-helpers")
    toggle = None
    bar = [pause, detach, attach, stop]
    if helpers:
        toggle = w.ToggleButton(
            value=False,
            description=f"show all maps (+{len(helpers)} helper)",
            tooltip="helper maps: " + ", ".join(helpers),
            layout={"width": "220px"},
        )

        def show(_: object = None) -> None:
            helper_box.layout.display = "" if toggle.value else "none"
            on_show_helpers(bool(toggle.value))

        toggle.observe(show, names="value")
        bar.append(toggle)
    children = [html_body(header, pulse, announce=True), w.HBox(bar)]
    children += [made_views[n].box for n in views]
    children.append(helper_box)
    made = box(children, kind="dashboard", snapshot=snapshot, label=label)
    buttons = {"pause": pause, "detach": detach, "attach": attach, "stop": stop}
    return DashboardWidget(made, buttons, toggle, helper_box, made_views)


def rendered_html(view: View, render: Callable[[View], str]) -> Any:
    """An ``ipywidgets.HTML`` showing ``render(view)``, updated whenever the view changes.

    For views :func:`bpfnb.ui.html.render` does not draw (the fleet's host view).
    """
    w = _require()
    body = w.HTML(value=render(view))
    shown = [body.value]

    def show() -> None:
        text = render(view)
        if text != shown[0]:
            shown[0] = text
            body.value = text

    view.on_change(show)
    return body


def choice_buttons(
    options: list[str], value: str, on_choice: Callable[[str], None], description: str = ""
) -> Any:
    """``ipywidgets.ToggleButtons`` calling ``on_choice(option)`` when the choice changes."""
    w = _require()
    buttons = w.ToggleButtons(options=options, value=value, description=description)
    buttons.observe(lambda change: on_choice(str(change["new"])), names="value")
    return buttons
