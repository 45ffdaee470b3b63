"""A fleet program in the notebook: its dashboard, the host toggle, the magics' actions.

- :class:`FleetDashboard`: the program's ordinary dashboard (:mod:`bpfnb.ui.dashboard`)
  over an adapter whose tables follow a *host toggle* (every host's rows with a
  ``host`` column, or rows summed across hosts), plus a :class:`HostStatus` view:
  per host its state (running, failed, lost), events received and lost, and the
  event rate with a small plot of its recent history.
- :func:`run_fleet_cell` (``%%bpf NAME --fleet [HOST,...]``), :func:`line_cluster`
  (``%bpf cluster [connect ADDRESS | disconnect]``) and :func:`stop`
  (``%bpf stop NAME`` of a fleet program), called by :class:`bpfnb.ui.magics.BpfMagics`.

The fleet's maps satisfy :mod:`bpfnb.ui.sources`' Protocols, so the views are the
single machine's; this module only adds what a fleet has more.
"""

from __future__ import annotations

import collections
import html
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd

from bpfnb.build.command import CellArgs, LineArgs
from bpfnb.codec.history import RateHistory
from bpfnb.codec.plan import Codec
from bpfnb.errors import CommandError
from bpfnb.fleet import cluster
from bpfnb.fleet import program as fleet_program
from bpfnb.fleet.program import HOST, FleetMap, FleetProgram
from bpfnb.object import maptypes
from bpfnb.object.spec import MapSpec, ObjectSpec
from bpfnb.ui import html as ui_html
from bpfnb.ui import widgets
from bpfnb.ui.dashboard import Dashboard, SnapshotTick
from bpfnb.ui.sources import MapSource
from bpfnb.ui.views import View

__all__ = [
    "BY_HOST",
    "SUMMED",
    "FleetDashboard",
    "FleetProgramView",
    "HostGrouping",
    "HostStatus",
    "HostToggledMap",
    "fleet_dashboard",
    "line_cluster",
    "render_hosts",
    "run_fleet_cell",
    "stop",
]

BY_HOST = "by host"
SUMMED = "summed"
#: Rate samples kept per host for the plot.
RATE_HISTORY = 60


class HostGrouping:
    """The host toggle's state, shared by every table of one dashboard."""

    def __init__(self) -> None:
        self.mode = BY_HOST

    @property
    def by_host(self) -> bool:
        """Whether tables show every host's rows (else summed across hosts)."""
        return self.mode == BY_HOST


class HostToggledMap:
    """A fleet map as the dashboard's tables see it: by host or summed, per the toggle.

    Satisfies :class:`~bpfnb.ui.sources.TableSource` (and HistogramSource for a
    histogram: by host, each bucket label is prefixed with its host). By host, the
    table's capacity is the sum of the hosts' (its rows are every host's); summed, one
    host's. Each grouping keeps its own rate history (their keys differ).
    """

    def __init__(self, source: FleetMap, grouping: HostGrouping, owner: FleetProgramView) -> None:
        self.source = source
        self.grouping = grouping
        self._owner = owner
        self._histories = {BY_HOST: source.rate_history, SUMMED: RateHistory()}

    @property
    def name(self) -> str:
        """The C name of the map."""
        return self.source.name

    @property
    def kind(self) -> str:
        """The map's kind."""
        return self.source.kind

    @property
    def spec(self) -> MapSpec:
        """The map as declared."""
        return self.source.spec

    @property
    def owner(self) -> FleetProgramView:
        """The dashboard's program adapter."""
        return self._owner

    @property
    def closed(self) -> bool:
        """Whether the program was stopped."""
        return self.source.closed

    @property
    def key_columns(self) -> list[str]:
        """``host`` and the map's keys by host; the map's keys when summed."""
        keys = self.source.key_columns
        return keys if self.grouping.by_host else [k for k in keys if k != HOST]

    @property
    def key_codec(self) -> Codec:
        """How the map's keys decode."""
        return self.source.key_codec

    @property
    def value_codec(self) -> Codec:
        """How the map's values decode."""
        return self.source.value_codec

    @property
    def max_entries(self) -> int:
        """By host: the sum of the hosts' capacities; summed: one host's."""
        if self.grouping.by_host:
            return sum(self.source.capacities().values()) or self.source.max_entries
        return self.source.max_entries

    @property
    def dropped(self) -> int:
        """Updates dropped for lack of room, summed over the hosts."""
        return self.source.dropped

    @property
    def rate_history(self) -> RateHistory:
        """The rate history of the current grouping."""
        return self._histories[self.grouping.mode]

    def df(self, per_cpu: bool = False) -> pd.DataFrame:
        """The gathered snapshot, by host or summed."""
        frame = self.source.df(per_cpu=per_cpu, by_host=self.grouping.by_host)
        if maptypes.is_histogram(self.kind) and self.grouping.by_host and len(frame):
            frame = frame.assign(bucket=frame[HOST].astype(str) + " · " + frame["bucket"])
            frame = frame.drop(columns=[HOST])
        return frame


class FleetProgramView:
    """A :class:`FleetProgram` as the dashboard sees it (a ProgramSource).

    Its maps are the program's, tables wrapped in :class:`HostToggledMap`.
    """

    def __init__(self, program: FleetProgram, grouping: HostGrouping) -> None:
        self.program = program
        self.grouping = grouping
        self._maps: dict[str, MapSource] = {}
        for map_name, source in program.maps.items():
            if isinstance(source, FleetMap):
                self._maps[map_name] = HostToggledMap(source, grouping, self)
            else:
                self._maps[map_name] = source

    @property
    def name(self) -> str:
        """The program's name."""
        return self.program.name

    @property
    def closed(self) -> bool:
        """Whether it was stopped."""
        return self.program.closed

    @property
    def spec(self) -> ObjectSpec:
        """The object loaded on the hosts (its BTF carries the dashboard markers)."""
        return self.program.spec

    @property
    def loaded_at(self) -> float:
        """``time.time()`` of the load."""
        return self.program.loaded_at

    @property
    def attached(self) -> bool:
        """Whether it is attached on any host."""
        return self.program.attached

    @property
    def attach_points(self) -> list[str]:
        """``HOST:SEC`` of the attached programs."""
        return self.program.attach_points

    @property
    def maps(self) -> Mapping[str, MapSource]:
        """The maps, tables following the host toggle."""
        return self._maps

    def stats(self) -> dict[str, Any]:
        """Run statistics summed over the hosts."""
        return self.program.stats()

    def attach(self) -> list[str]:
        """Attach again on every running host."""
        return self.program.attach()

    def detach(self) -> None:
        """Detach on every host."""
        self.program.detach()

    def close(self, *, wait: bool = True) -> None:
        """Stop on every host."""
        self.program.close(wait=wait)

    def on_close(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` when the program stops."""
        self.program.on_close(callback)


class HostStatus(View):
    """Per host: state, error, events received and lost, and the event rate.

    Attributes
    ----------
    program : FleetProgram
    frame : pandas.DataFrame
        The last :meth:`FleetProgram.status` with a ``rate`` column (events/s).
    history : dict of str to deque of float
        The recent rates of each host (the plot).
    """

    kind = "hosts"

    def __init__(self, program: FleetProgram) -> None:
        super().__init__(f"{program.name} hosts")
        self.program = program
        self.frame = pd.DataFrame()
        self.history: dict[str, collections.deque[float]] = {}
        self._prev: dict[str, tuple[float, int]] = {}

    def _update(self) -> None:
        frame = self.program.status(max_age=0.0)
        now = time.monotonic()
        rates = []
        for host, received in zip(frame[HOST], frame["received"], strict=True):
            before = self._prev.get(host)
            rate = 0.0
            if before is not None and now > before[0]:
                rate = max(int(received) - before[1], 0) / (now - before[0])
            self._prev[host] = (now, int(received))
            self.history.setdefault(host, collections.deque(maxlen=RATE_HISTORY)).append(rate)
            rates.append(rate)
        self.frame = frame.assign(rate=rates)


def _plot(values: list[float], width: int = 120, height: int = 18) -> str:
    """An inline SVG line of ``values`` (the rate history)."""
    if len(values) < 2:
        return ""
    top = max(max(values), 1e-9)
    step = width / (len(values) - 1)
    points = " ".join(
        f"{i * step:.1f},{height - 1 - (v / top) * (height - 2):.1f}" for i, v in enumerate(values)
    )
    return (
        f'<svg class="bpfnb-rate-plot" width="{width}" height="{height}">'
        f'<polyline fill="none" stroke="#4a7bd0" stroke-width="1.5" points="{points}"/></svg>'
    )


def _render_hosts_view(view: View) -> str:
    assert isinstance(view, HostStatus)
    return render_hosts(view)


def render_hosts(view: HostStatus) -> str:
    """The HTML of the host view (CSS included)."""
    with view.lock:
        frame = view.frame
        parts = [f'<div class="bpfnb-title">{html.escape(view.title)}</div>']
        if len(frame):
            parts.append(
                '<table class="bpfnb-table bpfnb-hosts"><thead><tr><th>host</th><th>state</th>'
                "<th>received</th><th>lost</th><th>events/s</th><th>rate</th><th>note</th>"
                "</tr></thead><tbody>"
            )
            records: list[Any] = frame.to_dict("records")
            for row in records:
                host, state = str(row[HOST]), str(row["state"])
                received, lost = int(row["received"]), int(row["lost"])
                lost_cls = ' class="bpfnb-lost"' if lost else ""
                state_cls = "s" if state == "running" else "s bpfnb-err"
                parts.append(
                    f'<tr data-host="{html.escape(host)}" data-state="{html.escape(state)}" '
                    f'data-received="{received}" data-lost="{lost}">'
                    f'<td class="s">{html.escape(host)}</td>'
                    f'<td class="{state_cls}">{html.escape(state)}</td>'
                    f"<td>{received}</td><td{lost_cls}>{lost}</td>"
                    f"<td>{float(row['rate']):.1f}</td>"
                    f"<td>{_plot(list(view.history.get(host, [])))}</td>"
                    f'<td class="s">{html.escape(str(row["error"]))}</td></tr>'
                )
            parts.append("</tbody></table>")
        if view.error:
            parts.append(f'<div class="bpfnb-err">refresh failed: {html.escape(view.error)}</div>')
        if view.finished_note:
            parts.append(f'<div class="bpfnb-foot">({html.escape(view.finished_note)})</div>')
    return f'{ui_html.CSS}<div class="bpfnb-view bpfnb-hosts">{"".join(parts)}</div>'


class FleetDashboard:
    """What ``%%bpf NAME --fleet`` displays: hosts, the host toggle, the dashboard.

    Parameters
    ----------
    program : FleetProgram
    interval : float
        Seconds between refreshes.

    Attributes
    ----------
    program : FleetProgram
    grouping : HostGrouping
        The toggle's state.
    dashboard : Dashboard
        The ordinary dashboard over :class:`FleetProgramView`.
    hosts : HostStatus
    widget : ipywidgets.VBox or None
    """

    def __init__(self, program: FleetProgram, interval: float) -> None:
        self.program = program
        self.grouping = HostGrouping()
        self.source = FleetProgramView(program, self.grouping)
        self.hosts = HostStatus(program)
        self.hosts.refresh()
        self.dashboard = Dashboard(self.source, interval)
        self.dashboard.refresher.add(self.hosts)
        self.widget: Any = None
        self._toggle: Any = None
        self.snapshot = widgets.SnapshotOutput(self.snapshot_html, lambda: repr(self))
        if widgets.available():
            self._toggle = widgets.choice_buttons(
                [BY_HOST, SUMMED], BY_HOST, self.set_grouping, description="tables"
            )
            self.widget = widgets.box(
                [
                    widgets.rendered_html(self.hosts, _render_hosts_view),
                    self._toggle,
                    self.dashboard.widget,
                ],
                kind="fleet",
                snapshot=self.snapshot,
                label=lambda: repr(self),
            )
        self.dashboard.refresher.add(SnapshotTick(self.snapshot))

    def set_grouping(self, mode: str) -> None:
        """Show tables ``"by host"`` or ``"summed"`` across hosts (reads them again)."""
        if mode not in (BY_HOST, SUMMED):
            raise CommandError(f"grouping must be {BY_HOST!r} or {SUMMED!r}, not {mode!r}")
        self.grouping.mode = mode
        if self._toggle is not None and self._toggle.value != mode:
            self._toggle.value = mode
        for view in self.dashboard.views.values():
            view.refresh()

    def html(self) -> str:
        """The current HTML (the static fallback): hosts, then the dashboard."""
        return render_hosts(self.hosts) + self.dashboard.html()

    def snapshot_html(self) -> str:
        """A static snapshot for saved notebooks: hosts, then the dashboard's snapshot."""
        return render_hosts(self.hosts) + self.dashboard.snapshot_html()

    def _repr_html_(self) -> str:
        return self.html()

    def _ipython_display_(self) -> None:
        from IPython.display import HTML, display

        if self.widget is not None:
            display(self.widget)
        else:
            display(HTML(self.html()))

    def __repr__(self) -> str:
        return f"<bpfnb fleet dashboard {self.program.name!r}: {list(self.dashboard.views)}>"


def fleet_dashboard(program: FleetProgram, interval: float = 1.0) -> FleetDashboard:
    """Build the live dashboard of a fleet program."""
    return FleetDashboard(program, interval)


if TYPE_CHECKING:
    from bpfnb.fleet.program import FleetStream
    from bpfnb.ui.sources import EventSource, HistogramSource, ProgramSource, TableSource

    def _satisfies_the_protocols(
        table: HostToggledMap, stream: FleetStream, program: FleetProgramView
    ) -> tuple[TableSource, HistogramSource, EventSource, ProgramSource]:
        """Never called: the type checker proves the dashboard's sources fit the Protocols."""
        return table, table, stream, program


# -- the magics' fleet actions -----------------------------------------------------------


def run_fleet_cell(
    args: CellArgs,
    source: str,
    *,
    bound: dict[str, FleetProgram],
    user_ns: dict[str, Any] | None,
    line_offset: int,
    show: Callable[[str], None],
) -> tuple[FleetProgram, float]:
    """``%%bpf NAME --fleet [HOST,...]``: compile here, load on the hosts, bind NAME.

    Returns
    -------
    (FleetProgram, float)
        The program and the seconds it took.
    """
    start = time.perf_counter()
    hosts = args.fleet or None
    show(f"{args.name}: compiling, then loading on {', '.join(hosts or ['every worker'])}…")
    prog = fleet_program.load(
        source,
        args.name,
        hosts=hosts,
        attach=args.attach,
        defines=args.defines,
        globals=dict(args.globals),
        include_dirs=args.include_dirs,
        cflags=args.cflags,
        line_offset=line_offset,
        replaces=bound.get(args.name),
        programs=args.programs,
        skip=args.skip,
        max_entries=args.max_entries,
        bcc=args.bcc,
        mmap_arrays=args.mmap_arrays,
    )
    bound[args.name] = prog
    if user_ns is not None:
        user_ns[args.name] = prog
    elapsed = time.perf_counter() - start
    running = sorted(prog.running_hosts())
    failed = {h: s.error for h, s in sorted(prog.hosts.items()) if s.state != "running"}
    summary = (
        f"{args.name}: running on {len(running)} of {len(prog.hosts)} host(s) "
        f"({', '.join(running)}), {len(prog.maps)} map(s), {elapsed * 1000:.0f} ms"
    )
    for host, error in failed.items():
        summary += f"\n  host {host}: {error}"
    show(summary)
    return prog, elapsed


def line_cluster(args: LineArgs) -> pd.DataFrame | None:
    """``%bpf cluster`` (the workers), ``cluster connect ADDRESS``, ``cluster disconnect``."""
    if args.name == "connect":
        assert args.address is not None
        fleet = cluster.connect(args.address)
        workers = sorted(fleet.workers())
        print(f"connected to {fleet.address}: {len(workers)} worker(s) ({', '.join(workers)})")
        return fleet.info()
    if args.name == "disconnect":
        count = len(fleet_program.programs())
        cluster.disconnect()
        print(f"disconnected; stopped {count} fleet program(s)")
        return None
    return cluster.current().info()


def stop(bound: dict[str, FleetProgram], name: str) -> bool:
    """Stop the fleet program ``name`` on every host; False when there is none."""
    prog = bound.pop(name, None)
    if prog is None:
        prog = next((p for p in fleet_program.programs() if p.name == name), None)
    if prog is None or prog.closed:
        return False
    prog.close()
    return True


def stop_all(bound: dict[str, FleetProgram]) -> int:
    """Stop every fleet program of this notebook; return how many."""
    count = len(fleet_program.programs())
    fleet_program.close_all()
    bound.clear()
    return count
