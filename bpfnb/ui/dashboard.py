"""The dashboard of a program, and :func:`live_view`, the builder behind ``Map.live()``.

- :func:`dashboard` (what ``%%bpf NAME`` displays): the program's header (state,
  attach points, run count and time), Pause / Resume / Stop, and one live view per
  map, chosen by the map's kind (:func:`bpfnb.ui.views.view_for`).
- :func:`live_view`: the live view of one map. ``bpfnb`` registers it as the kernel
  layer's live hook, so ``prog.counts.live()`` and ``prog.events.live()`` land here.

Every view of one program shares the program's refresher thread
(:func:`bpfnb.ui.refresh.refresher_for`, keyed by the map's ``owner``), which stops
when the program closes. Without ipywidgets the dashboard and the views render as
static HTML (:class:`bpfnb.ui.html.StaticView`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from bpfnb.ui import flamegraph, html, refresh, summary, widgets
from bpfnb.ui.refresh import Refresher
from bpfnb.ui.sources import MapSource, ProgramSource
from bpfnb.ui.views import ProgramHeader, View, view_for

__all__ = ["DETACHED_NOTE", "Dashboard", "dashboard", "live_view"]

#: The views they register with view_for: flame graphs, summaries of unlistable maps.
_REGISTERED_VIEWS = (flamegraph.FlameGraph, summary.MapSummary)

#: The header's note after Stop.
DETACHED_NOTE = "detached; maps stay readable until the program is closed"


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
        A table (sort, top-N, rates, per-CPU switch), an event tail or a histogram
        chart, by the map's kind; static HTML without ipywidgets.
    """
    view = view_for(source)
    shown: Any = widgets.view_widget(view) if widgets.available() else html.StaticView(view)
    _start([view], source_refresher(source, interval))
    return shown


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
        One view per map, by the map's C name.
    widget : ipywidgets.VBox or None
        None without ipywidgets (the dashboard then renders as static HTML).
    """

    def __init__(self, program: ProgramSource, interval: float) -> None:
        self.program = program
        self.refresher = program_refresher(program, interval)
        self.header = ProgramHeader(program, self.refresher)
        self.views: dict[str, View] = {name: view_for(m) for name, m in program.maps.items()}
        self._controls: widgets.DashboardWidget | None = None
        self.widget: Any = None
        if widgets.available():
            self._controls = widgets.dashboard_widget(
                self.header,
                self.views.values(),
                on_pause=self.pause,
                on_resume=self.resume,
                on_stop=self.stop,
                snapshot=self.html,
                label=lambda: repr(self),
            )
            self.widget = self._controls.box
        _start([self.header, *self.views.values()], self.refresher)

    def pause(self) -> None:
        """Freeze the views."""
        self.refresher.pause()
        self.header.changed()

    def resume(self) -> None:
        """Refresh again."""
        self.refresher.resume()
        self.header.changed()

    def stop(self) -> None:
        """Detach the programs, refresh once more and stop refreshing (maps stay readable)."""
        note = DETACHED_NOTE
        try:
            self.program.detach()
        except Exception as exc:  # shown in the header; the views still stop
            note = f"detach failed: {type(exc).__name__}: {exc}"
        self.refresher.refresh_once()
        self.refresher.stop()
        self.header.set_note(note)
        if self._controls is not None:
            self._controls.disable()

    def html(self) -> str:
        """A static snapshot of the whole dashboard."""
        return html.render(self.header) + "".join(html.render(v) for v in self.views.values())

    def _repr_html_(self) -> str:
        return self.html()

    def _ipython_display_(self) -> None:
        from IPython.display import display

        if self.widget is not None:
            display(self.widget)
        else:
            display(html.StaticView(self.header))
            for view in self.views.values():
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
