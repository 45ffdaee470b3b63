"""ipywidgets assembly of the live views: HTML bodies, table controls, dashboard boxes.

Each view's body is an ``ipywidgets.HTML`` whose value follows the view: a callback
registered with :meth:`bpfnb.ui.views.View.on_change` renders the view
(:func:`bpfnb.ui.html.render`) and sets the value when the HTML changed. The refresher
thread sets widget values this way, so views keep moving while another cell runs.

Controls get explicit callbacks: the live table's sort column, order, top-N and
per-CPU controls call :meth:`~bpfnb.ui.views.LiveTable.set_order` and
:meth:`~bpfnb.ui.views.LiveTable.set_per_cpu`; the dashboard's Pause / Resume / Stop
buttons call the functions the dashboard passes in.

Every box's mime bundle also carries a static ``text/html`` snapshot and a
``text/plain`` line, so nbconvert and frontends without the widget manager show the
view. Without ipywidgets (:func:`available` is False) nothing here is used: callers
show :class:`bpfnb.ui.html.StaticView` instead.

ipywidgets has no type stubs: widget objects are typed ``Any`` here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from bpfnb.errors import BpfnbError
from bpfnb.ui import html
from bpfnb.ui.views import LiveTable, View

try:  # ipywidgets is a dependency, but the static fallback must work without it
    import ipywidgets as _w
except ImportError:  # pragma: no cover - exercised by the fallback test via monkeypatch
    _w = None

__all__ = [
    "SORT_BY_TOTAL",
    "DashboardWidget",
    "available",
    "box",
    "choice_buttons",
    "dashboard_widget",
    "html_body",
    "rendered_html",
    "view_widget",
]

#: The sort choice that means "by the total column".
SORT_BY_TOTAL = ("(total column)", "")


def available() -> bool:
    """Whether ipywidgets can be imported."""
    return _w is not None


def _require() -> Any:
    if _w is None:
        raise BpfnbError("ipywidgets is not installed: live views need it (pip install ipywidgets)")
    return _w


_BOX: type | None = None


def _box_class() -> type:
    """A VBox whose mime bundle also carries a static snapshot (made once, lazily)."""
    global _BOX
    if _BOX is None:
        vbox: Any = _require().VBox

        class SnapshotBox(vbox):
            """A VBox adding ``text/html`` and ``text/plain`` snapshots to its bundle."""

            def __init__(
                self,
                children: list[Any],
                snapshot: Callable[[], str],
                label: Callable[[], str],
            ) -> None:
                super().__init__(children=children)
                self._snapshot = snapshot
                self._label = label

            def _repr_mimebundle_(self, **kwargs: Any) -> Any:
                bundle = super()._repr_mimebundle_(**kwargs)
                if isinstance(bundle, dict):
                    bundle = dict(bundle)
                    bundle["text/html"] = self._snapshot()
                    bundle["text/plain"] = self._label()
                return bundle

        _BOX = SnapshotBox
    return _BOX


def box(
    children: list[Any], *, kind: str, snapshot: Callable[[], str], label: Callable[[], str]
) -> Any:
    """A VBox of ``children`` with CSS classes ``bpfnb`` and ``bpfnb-KIND-widget``.

    Parameters
    ----------
    children : list of widgets
    kind : str
        The view's kind (``table``, ``events``, ``dashboard``...).
    snapshot : callable
        Returns the static HTML of the box's content.
    label : callable
        Returns the ``text/plain`` line.
    """
    made = _box_class()(children, snapshot, label)
    made.add_class("bpfnb")
    made.add_class(f"bpfnb-{kind}-widget")
    return made


def html_body(view: View) -> Any:
    """An ``ipywidgets.HTML`` showing ``view``, updated whenever the view changes."""
    w = _require()
    body = w.HTML(value=html.render(view))
    shown = [body.value]

    def show() -> None:
        text = html.render(view)
        if text != shown[0]:
            shown[0] = text
            body.value = text

    view.on_change(show)
    return body


def _table_widget(view: LiveTable) -> Any:
    """The live table: sort, order, top-N and per-CPU controls above its body."""
    w = _require()
    sort = w.Dropdown(
        description="sort by", options=[SORT_BY_TOTAL], value="", layout={"width": "220px"}
    )
    descending = w.Checkbox(
        value=view.descending, description="descending", indent=False, layout={"width": "110px"}
    )
    top = w.BoundedIntText(
        value=view.top_n, min=1, max=10000, description="top", layout={"width": "130px"}
    )
    per_cpu = w.Checkbox(
        value=view.per_cpu,
        description="per CPU",
        indent=False,
        layout={"width": "90px", "display": "" if view.can_per_cpu else "none"},
    )
    syncing = [False]  # True while the sort choices follow the table's columns

    def sync_sort_choices() -> None:
        columns = view.columns
        options = [SORT_BY_TOTAL, *((c, c) for c in columns)]
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
            view.set_order(sort.value or None, bool(descending.value), int(top.value))

    def switch_per_cpu(_: object = None) -> None:
        view.set_per_cpu(bool(per_cpu.value))

    for control in (sort, descending, top):
        control.observe(reorder, names="value")
    per_cpu.observe(switch_per_cpu, names="value")
    view.on_change(sync_sort_choices)  # before the body's callback: columns, then HTML
    sync_sort_choices()
    controls = w.HBox([sort, descending, top, per_cpu])
    return box(
        [controls, html_body(view)],
        kind=view.kind,
        snapshot=lambda: html.render(view),
        label=lambda: repr(view),
    )


def view_widget(view: View) -> Any:
    """The widget of a view: the table with its controls, any other view as HTML."""
    if isinstance(view, LiveTable):
        return _table_widget(view)
    return box(
        [html_body(view)],
        kind=view.kind,
        snapshot=lambda: html.render(view),
        label=lambda: repr(view),
    )


@dataclass
class DashboardWidget:
    """The dashboard's box and its buttons.

    Attributes
    ----------
    box : ipywidgets.VBox
        Header, buttons, and one view widget per map.
    buttons : list of ipywidgets.Button
        Pause, Resume and Stop.
    """

    box: Any
    buttons: list[Any]

    def disable(self) -> None:
        """Grey out every button (after Stop)."""
        for button in self.buttons:
            button.disabled = True


def dashboard_widget(
    header: View,
    views: Iterable[View],
    *,
    on_pause: Callable[[], None],
    on_resume: Callable[[], None],
    on_stop: Callable[[], None],
    snapshot: Callable[[], str],
    label: Callable[[], str],
) -> DashboardWidget:
    """Assemble a dashboard: header, Pause / Resume / Stop, one widget per view.

    Parameters
    ----------
    header : View
        The program's header view.
    views : iterable of View
        One view per map, in order.
    on_pause, on_resume, on_stop : callable
        Called when the buttons are clicked.
    snapshot, label : callable
        The static HTML and ``text/plain`` line of the whole dashboard.
    """
    w = _require()
    pause = w.Button(description="Pause", icon="pause", layout={"width": "100px"})
    resume = w.Button(description="Resume", icon="play", layout={"width": "100px"})
    stop = w.Button(
        description="Stop", icon="stop", button_style="danger", layout={"width": "100px"}
    )
    pause.on_click(lambda _: on_pause())
    resume.on_click(lambda _: on_resume())
    stop.on_click(lambda _: on_stop())
    children = [html_body(header), w.HBox([pause, resume, stop])]
    children += [view_widget(view) for view in views]
    made = box(children, kind="dashboard", snapshot=snapshot, label=label)
    return DashboardWidget(made, [pause, resume, stop])


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
