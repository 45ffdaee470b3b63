"""The dashboard of a program, and :func:`live_view`, the builder behind ``Map.live()``.

- :func:`dashboard` (what ``%%bpf NAME`` displays): the program's header (what the
  program does, what the view does, attach points, runs/s, %CPU), the buttons
  **Pause view** / **Resume view** (the display only; the program keeps counting),
  **Detach** / **Attach** (the program stops / starts counting; maps stay readable)
  and **Stop** (unload, as ``%bpf stop NAME``), then one live view per map, chosen by
  the map's kind (:func:`bpfnb.ui.views.view_for`), with a rate plot per counter table
  and a heatmap per histogram. Helper maps (``BPFNB_HIDDEN(map)``, or tables without a
  counter-like column) are collapsed behind "show all maps" and not read while hidden.
- :func:`live_view`: the live view of one map. ``bpfnb`` registers it as the kernel
  layer's live hook, so ``prog.counts.live()`` and ``prog.events.live()`` land here.

Every view of one program shares the program's refresher thread
(:func:`bpfnb.ui.refresh.refresher_for`, keyed by the map's ``owner``), which stops
when the program closes, however it closes (button, ``%bpf stop``, ``--all``, a
re-run): the header then says ``stopped``, rates are cleared and every button is
disabled. Displayed in a notebook, a dashboard also leaves a static snapshot output
that the refresher keeps current (see :mod:`bpfnb.ui.widgets`). Without ipywidgets
the dashboard and the views render as static HTML (:class:`bpfnb.ui.html.StaticView`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from typing import Any

from bpfnb.ui import flamegraph, html, refresh, summary, widgets
from bpfnb.ui.refresh import Refresher
from bpfnb.ui.sources import MapSource, ProgramSource
from bpfnb.ui.top import ProgramsTop
from bpfnb.ui.views import LiveTable, ProgramHeader, View, view_for

__all__ = [
    "DETACHED_NOTE",
    "STILL_RUNNING_NOTE",
    "TOP_OWNER",
    "Dashboard",
    "SnapshotTick",
    "dashboard",
    "live_view",
    "show_top",
]

#: The views they register with view_for: flame graphs, summaries of unlistable maps.
_REGISTERED_VIEWS = (flamegraph.FlameGraph, summary.MapSummary)

#: The header's note after Detach.
DETACHED_NOTE = "detached: nothing counts; maps stay readable (Attach to count again)"
#: The header's note when a re-run of the cell failed and this version runs on.
STILL_RUNNING_NOTE = "previous version still running: the new version failed (error below)"


def program_refresher(program: ProgramSource, interval: float | None = None) -> Refresher:
    """The refresher of a program's views; it stops when the program closes."""
    return refresh.refresher_for(program, interval, on_close=program.on_close)


def source_refresher(source: MapSource, interval: float | None = None) -> Refresher:
    """The refresher of a map's view: its program's, or the map's own when it has none."""
    program = source.owner
    if program is None:
        return refresh.refresher_for(source, interval)
    return program_refresher(program, interval)


def _start(views: Iterable[View], refresher: Refresher) -> None:
    """Refresh each view once now (content is there when it displays), then live."""
    for view in views:
        view.refresh()
        refresher.add(view)


def _pulse(refresher: Refresher, closed: Callable[[], bool]) -> Callable[[], float]:
    """Seconds between refreshes the browser should expect now (0: none)."""

    def pulse() -> float:
        if closed() or refresher.stopped or refresher.paused:
            return 0.0
        return refresher.interval

    return pulse


class SnapshotTick:
    """Refreshed last in each pass: keeps the snapshot output current."""

    def __init__(self, output: widgets.SnapshotOutput) -> None:
        self.output = output

    def refresh(self) -> None:
        with contextlib.suppress(Exception):
            self.output.publish()

    def finish(self, note: str = "stopped") -> None:
        with contextlib.suppress(Exception):
            self.output.publish(force=True)


def live_view(source: MapSource, interval: float | None = None) -> Any:
    """The live view of a map (what ``Map.live()`` shows).

    Parameters
    ----------
    source : MapSource
        The map (``prog.counts``, ``prog.events``).
    interval : float, optional
        Seconds between refreshes; None keeps the program's current interval (the
        ``%%bpf --interval`` one; 1 s when nothing refreshes the program yet).

    Returns
    -------
    ipywidgets.VBox or StaticView
        A table (sort, pages, rates, per-CPU switch, rate plot), an event tail (rows,
        filter) or a histogram (heatmap), by the map's kind, each with Export CSV;
        static HTML without ipywidgets.
    """
    view = view_for(source)
    refresher = source_refresher(source, interval)
    if not widgets.available():
        _start([view], refresher)
        return html.StaticView(view)
    owner = source.owner
    prefix = f"{owner.name}-" if owner is not None else ""
    made = widgets.view_widget(
        view, _pulse(refresher, lambda: source.closed), name=f"{prefix}{source.name}"
    )
    _start([view], refresher)
    refresher.add(SnapshotTick(made.box.snapshot))
    return made.box


class Dashboard:
    """What :func:`dashboard` returns: the widget plus handles for code and tests.

    Parameters
    ----------
    program : ProgramSource
        A loaded program.
    interval : float
        Seconds between refreshes.

    Attributes
    ----------
    program : ProgramSource
    refresher : Refresher
        The program's refresher thread.
    header : ProgramHeader
    views : dict of str to View
        One view per map, by the map's C name (helper maps included).
    helpers : list of str
        The helper maps, collapsed until shown (:meth:`show_helpers`).
    widget : ipywidgets.VBox or None
        None without ipywidgets (the dashboard then renders as static HTML).
    controls : DashboardWidget or None
        The buttons and the views' widgets.
    """

    def __init__(self, program: ProgramSource, interval: float) -> None:
        self.program = program
        self.refresher = program_refresher(program, interval)
        self.header = ProgramHeader(program, self.refresher)
        self.views: dict[str, View] = {name: view_for(m) for name, m in program.maps.items()}
        self.helpers = [n for n, v in self.views.items() if isinstance(v, LiveTable) and v.helper]
        self.helpers_shown = False
        self.snapshot = widgets.SnapshotOutput(self.snapshot_html, lambda: repr(self))
        self.controls: widgets.DashboardWidget | None = None
        self.widget: Any = None
        pulse = _pulse(self.refresher, lambda: program.closed)
        if widgets.available():
            shown = {n: v for n, v in self.views.items() if n not in self.helpers}
            self.controls = widgets.dashboard_widget(
                self.header,
                shown,
                {n: self.views[n] for n in self.helpers},
                pulse=pulse,
                on_pause=self.toggle_pause,
                on_detach=self.detach,
                on_attach=self.attach,
                on_stop=self.stop,
                on_show_helpers=self.show_helpers,
                snapshot=self.snapshot,
                label=lambda: repr(self),
                program=program.name,
            )
            self.widget = self.controls.box
        program.on_close(self._program_closed)
        _start([self.header, *self.shown_views()], self.refresher)
        self.refresher.add(SnapshotTick(self.snapshot))
        self._sync_buttons()

    # -- what is shown ------------------------------------------------------------------
    def shown_views(self) -> list[View]:
        """The map views refreshed and shown now (helpers only once shown)."""
        return [v for n, v in self.views.items() if self.helpers_shown or n not in self.helpers]

    def show_helpers(self, show: bool = True) -> None:
        """Show (and refresh) the helper maps, or collapse them again."""
        self.helpers_shown = show
        for name in self.helpers:
            view = self.views[name]
            if show:
                view.refresh()
                self.refresher.add(view)
            else:
                self.refresher.remove(view)
        if self.controls is not None and self.controls.helpers_toggle is not None:
            self.controls.helpers_toggle.value = show

    # -- buttons ------------------------------------------------------------------------
    def _sync_buttons(self) -> None:
        if self.controls is not None:
            self.controls.set_buttons(
                paused=self.refresher.paused,
                attached=not self.program.closed and self.program.attached,
                closed=self.program.closed,
            )

    def _changed_all(self) -> None:
        """Re-render every view (states changed: paused, detached, stopped)."""
        for view in [self.header, *self.shown_views()]:
            view.changed()

    def pause(self) -> None:
        """Freeze the views (the program keeps counting)."""
        self.refresher.pause()
        self._sync_buttons()
        self._changed_all()

    def resume(self) -> None:
        """Refresh again."""
        self.refresher.resume()
        self._sync_buttons()
        self._changed_all()

    def toggle_pause(self) -> None:
        """Pause view / Resume view."""
        if self.refresher.paused:
            self.resume()
        else:
            self.pause()

    def detach(self) -> None:
        """Detach the programs: nothing counts; the maps stay readable and shown."""
        note = DETACHED_NOTE
        try:
            self.program.detach()
        except Exception as exc:  # shown in the header
            note = f"detach failed: {type(exc).__name__}: {exc}"
        self.header.note = note
        self.header.refresh()
        self._sync_buttons()

    def attach(self) -> None:
        """Attach the programs again."""
        note = ""
        try:
            self.program.attach()
        except Exception as exc:  # shown in the header
            note = f"attach failed: {type(exc).__name__}: {exc}"
        self.header.note = note
        self.header.refresh()
        self._sync_buttons()

    def stop(self) -> None:
        """Unload the program (as ``%bpf stop NAME``); the views keep their last state."""
        try:
            self.program.close()  # runs _program_closed (registered with on_close)
        except Exception as exc:  # shown in the header
            self.header.set_note(f"stop failed: {type(exc).__name__}: {exc}")
        self._sync_buttons()

    def _program_closed(self) -> None:
        """The program closed (any way): say so, end the views, disable the buttons."""
        self.refresher.stop()
        self.header.refresh()
        for view in [self.header, *self.shown_views()]:
            if view.finished_note is None:
                view.finish("stopped: the program was unloaded")
        self._sync_buttons()
        with contextlib.suppress(Exception):
            self.snapshot.publish(force=True)

    # -- rendering ----------------------------------------------------------------------
    def html(self) -> str:
        """The dashboard's current HTML (what the static fallback shows)."""
        return html.render(self.header) + "".join(html.render(v) for v in self.shown_views())

    def snapshot_html(self) -> str:
        """A static snapshot of the whole dashboard, plots included (for saved notebooks)."""
        collapsed = 0 if self.helpers_shown else len(self.helpers)
        return html.snapshot([self.header, *self.shown_views()], collapsed=collapsed)

    def _repr_html_(self) -> str:
        return self.html()

    def _ipython_display_(self) -> None:
        from IPython.display import display

        if self.widget is not None:
            display(self.widget)
        else:
            display(html.StaticView(self.header))
            for view in self.shown_views():
                display(html.StaticView(view))

    def __repr__(self) -> str:
        return f"<bpfnb dashboard {self.program.name!r}: {list(self.views)}>"


def dashboard(program: ProgramSource, interval: float = 1.0) -> Dashboard:
    """Build the live dashboard of a program (what ``%%bpf NAME`` displays).

    Parameters
    ----------
    program : ProgramSource
        A loaded program.
    interval : float
        Seconds between refreshes.

    Returns
    -------
    Dashboard
        Displays as the widget (or as static HTML without ipywidgets).
    """
    return Dashboard(program, interval)


class _TopOwner:
    """What ``%bpf top``'s refresher belongs to: the session, never closed."""

    name = "top"
    closed = False


#: The owner of ``%bpf top``'s refresher (``refresher_for(TOP_OWNER).stop()`` ends it).
TOP_OWNER = _TopOwner()


def show_top(programs: Callable[[], list[Any]], interval: float = 1.0) -> Any:
    """``%bpf top``: every loaded program's runs/s, avg ns/run and %CPU, live.

    Parameters
    ----------
    programs : callable
        Returns the programs loaded now (the session's registry).
    interval : float
        Seconds between refreshes.

    Returns
    -------
    ipywidgets.VBox or StaticView
        The live table with a Stop button (static HTML without ipywidgets).
    """
    view = ProgramsTop(programs)
    refresher = refresh.refresher_for(TOP_OWNER, interval)
    if not widgets.available():
        _start([view], refresher)
        return html.StaticView(view)
    made = widgets.top_widget(view, _pulse(refresher, lambda: False), refresher.stop)
    _start([view], refresher)
    refresher.add(SnapshotTick(made.snapshot))
    return made
