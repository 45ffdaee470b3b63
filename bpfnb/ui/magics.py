"""The ``%%bpf`` cell magic and ``%bpf`` line magic (UI layer).

``BpfMagics`` is both the IPython ``Magics`` class and the traitlets configuration
object, so ``%config BpfMagics.interval = 0.5`` sets the default refresh interval.
bpfnb's errors render as short messages with no traceback (see
``BpfnbError._render_traceback_``); the exception stays in ``sys.last_value``.
"""

from __future__ import annotations

import builtins
import contextlib
import re
import sys
import time
from typing import Any

import pandas as pd
from IPython.core.magic import Magics, cell_magic, line_cell_magic, magics_class
from IPython.display import display
from traitlets import Bool, Float

from bpfnb import pipeline
from bpfnb.build import command
from bpfnb.build.command import CellArgs
from bpfnb.errors import (
    AttachError,
    BpfnbError,
    CommandError,
    CompileError,
    VerifierError,
)
from bpfnb.kernel import system
from bpfnb.kernel.program import Program
from bpfnb.kernel.session import close_all, programs


class _Status:
    """A one-line progress display that updates in place (text in a terminal)."""

    def __init__(self, enabled: bool) -> None:
        self.handle: Any = None
        self.enabled = enabled

    def update(self, text: str) -> None:
        if not self.enabled:
            return
        bundle = {"text/plain": text}
        if self.handle is None:
            self.handle = display(bundle, raw=True, display_id=True)
        else:
            self.handle.update(bundle, raw=True)


#: JupyterLab numbers the ``%%bpf NAME`` line as line 1: the C starts on line 2.
CELL_LINE_OFFSET = 1
#: IPython's output-history names: _, __, ___, _1, _i, _ii, _iii, _i1, _oh, _dh...
_IPYTHON_NAME = re.compile(r"_{1,3}|_i{1,3}|_i?\d+|_oh|_dh|_ih")


def _failure(exc: BaseException) -> str:
    """What failed, in the words of the status line (the error itself follows it)."""
    if isinstance(exc, CompileError):
        return "compile failed"
    if isinstance(exc, VerifierError):
        return "the verifier rejected it"
    if isinstance(exc, AttachError):
        return "attach failed"
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    if isinstance(exc, BpfnbError):
        return f"not loaded ({type(exc).__name__})"
    return f"failed ({type(exc).__name__})"


@magics_class
class BpfMagics(Magics):
    """``%%bpf NAME [options]`` compiles, loads and attaches a cell of libbpf C.

    See ``%bpf?`` for the line magic's actions.
    """

    interval = Float(1.0, help="Default refresh interval of live views, in seconds.").tag(
        config=True
    )
    display_dashboard = Bool(True, help="Display a live dashboard after %%bpf.").tag(config=True)
    progress = Bool(True, help="Show a one-line progress status while compiling/loading.").tag(
        config=True
    )
    keep_maps = Bool(
        False, help="Re-running a cell keeps the maps whose declaration did not change."
    ).tag(config=True)

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        self.bound: dict[str, Program] = {}
        self.fleet_bound: dict[str, Any] = {}  # name -> bpfnb.fleet.FleetProgram
        self.dashboards: dict[str, Any] = {}  # name -> the Dashboard last displayed

    # -- dispatch ---------------------------------------------------------------------
    @line_cell_magic
    def bpf(self, line: str, cell: str | None = None) -> Any:
        """Compile/load/attach a cell (``%%bpf NAME``) or manage programs (``%bpf ...``).

        Cell: ``%%bpf NAME [-D NAME[=VALUE]] [-I DIR] [--cflags "..."] [--no-attach]
        [--no-display] [--interval SECONDS] [--set VAR=VALUE] [--compile-only] [--force]
        [--fleet [HOST,...]]``.

        Cell options of the map zoo: ``--sample-freq HZ`` / ``--sample-period N``
        (``SEC("perf_event")`` programs), ``--keep-maps`` (a re-run keeps unchanged
        maps), ``--use [MAP=]PROG.MAP`` (use another program's map).

        Cell options for programs as pasted: ``--programs NAME[,NAME]`` /
        ``--skip NAME[,NAME]`` (which programs load), ``--max-entries MAP=N`` (map
        sizes), ``--bcc`` (read the cell as BCC's C dialect).

        ``--no-mmap``: array maps and histograms are not created ``BPF_F_MMAPABLE``
        (read with bpf(2) batch calls instead of through a shared mapping).

        Line: ``%bpf list``, ``%bpf top``, ``%bpf stop NAME``, ``%bpf stop --all``,
        ``%bpf export NAME.MAP PATH.csv [--force]``, ``%bpf doctor``, ``%bpf templates``,
        ``%bpf template TEMPLATE [NAME] [--show] [cell options]``, ``%bpf pins``,
        ``%bpf unpin NAME``, ``%bpf unpin --all``, ``%bpf cluster``,
        ``%bpf cluster connect ADDRESS``, ``%bpf cluster disconnect``.
        """
        if cell is not None:
            return self._run_cell(command.parse_cell_args(line), cell)
        args = command.parse_line_args(line)
        handler = getattr(self, f"_line_{args.action}")
        return handler(args)

    # -- cells ------------------------------------------------------------------------
    def _check_binding(self, args: CellArgs) -> None:
        """Refuse a name whose binding would break the notebook or lose a user's value.

        Raises
        ------
        CommandError
            NAME is a builtin (``print``), one of IPython's own names (``get_ipython``,
            ``In``, ``_``...), or a user variable that is not a program (unless
            ``--force``).
        """
        name = args.name
        hidden = self.shell.user_ns_hidden if self.shell is not None else {}
        if name in hidden or name == "get_ipython" or _IPYTHON_NAME.fullmatch(name):
            raise CommandError(
                f"{name!r} is one of IPython's own names: binding the program to it would "
                "break the notebook; choose another name"
            )
        if name in vars(builtins):
            hidden_name = f"{name}()" if callable(vars(builtins)[name]) else f"the builtin {name}"
            raise CommandError(
                f"{name!r} is a Python builtin: binding the program to it would hide "
                f"{hidden_name} in this notebook; choose another name"
            )
        if self.shell is None:
            return
        current = self.shell.user_ns.get(name)
        if current is not None and not isinstance(current, Program) and not args.force:
            raise CommandError(
                f"{name!r} already holds a {type(current).__name__} in this notebook; "
                f"choose another name, or add --force to replace it (%%bpf {name} --force)"
            )

    def _run_cell(self, args: CellArgs, source: str) -> Program | None:
        if not args.compile_only:
            self._check_binding(args)
        status = _Status(self.progress)
        try:
            return self._build_and_load(args, source, status)
        except BaseException as exc:
            self._failed(args, status, exc)
            raise

    def _failed(self, args: CellArgs, status: _Status, exc: BaseException) -> None:
        """Replace the progress line; keep the running previous version in sight."""
        old = self.bound.get(args.name)
        if args.compile_only or old is None or old.closed:
            status.update(f"{args.name}: {_failure(exc)}; error below")
            return
        shown = self.dashboards.get(args.name)
        if shown is None or shown.program is not old or not args.display:
            status.update(
                f"{args.name}: {_failure(exc)}; error below. The previous version is still "
                f"running (%bpf stop {args.name} unloads it)"
            )
            return
        status.update(
            f"{args.name}: {_failure(exc)}; error below. The previous version is still "
            "running: its dashboard follows"
        )
        from bpfnb.ui.dashboard import STILL_RUNNING_NOTE

        shown.header.set_note(STILL_RUNNING_NOTE)
        display(shown)

    def _build_and_load(self, args: CellArgs, source: str, status: _Status) -> Program | None:
        start = time.perf_counter()
        if args.compile_only:
            status.update(f"{args.name}: compiling…")
            built = pipeline.build_only(
                source,
                args.name,
                defines=args.defines,
                include_dirs=args.include_dirs,
                cflags=args.cflags,
                line_offset=CELL_LINE_OFFSET,
                bcc=args.bcc,
            )
            result = built.compile_result
            assert result is not None
            spec = built.spec
            status.update(
                f"{args.name}: compiled in {result.seconds * 1000:.0f} ms"
                f"{' (cached)' if result.cached else ''} -> {result.object_path}\n"
                f"  programs: {', '.join(f'{p.name} [{p.section}]' for p in spec.programs)}\n"
                f"  maps: {', '.join(f'{m.name} ({m.type_name})' for m in spec.user_maps.values())}"
            )
            return None
        if args.fleet is not None:
            self._run_fleet_cell(args, source, status)
            return None
        status.update(f"{args.name}: compiling and loading…")
        previous = self.bound.get(args.name)
        keep = self.keep_maps if args.keep_maps is None else args.keep_maps
        prog = pipeline.load(
            source,
            name=args.name,
            attach=args.attach,
            defines=args.defines,
            globals=dict(args.globals),
            include_dirs=args.include_dirs,
            cflags=args.cflags,
            line_offset=CELL_LINE_OFFSET,
            sample_freq=args.sample_freq,
            sample_period=args.sample_period,
            keep_maps_from=previous
            if keep and previous is not None and not previous.closed
            else None,
            use=self._used_maps(args.use),
            programs=args.programs,
            skip=args.skip,
            max_entries=args.max_entries,
            bcc=args.bcc,
            mmap_arrays=args.mmap_arrays,
            # Bound with Ctrl-C still deferred: an interrupt undoes the load or follows it.
            on_loaded=lambda loaded: self._bind(args.name, loaded),
        )
        elapsed = (time.perf_counter() - start) * 1000
        attached = len(prog.attach_points)
        warnings = prog.compile_result.warnings if prog.compile_result else []
        summary = (
            f"{args.name}: {attached} of {len(prog.programs)} program(s) attached, "
            f"{len(prog.maps)} map(s), {elapsed:.0f} ms"
        )
        for warning in warnings[:3]:
            summary += f"\n  warning, line {warning.line}: {warning.message}"
        for note in prog.notes:
            summary += f"\n  note: {note}"
        status.update(summary)
        if args.display and self.display_dashboard:
            self._display(prog, args.interval or self.interval)
        return None

    def _bind(self, name: str, prog: Program) -> None:
        """The new version is loaded (and attached): only now replace the old one."""
        old = self.bound.pop(name, None)
        if old is not None:
            old.close(wait=False)  # detaching is the kernel's slow part: off the user's wait
        self.dashboards.pop(name, None)
        self.bound[name] = prog
        if self.shell is not None:
            self.shell.user_ns[name] = prog

    def _run_fleet_cell(self, args: CellArgs, source: str, status: _Status) -> None:
        from bpfnb.ui import fleet as fleet_ui

        prog, _ = fleet_ui.run_fleet_cell(
            args,
            source,
            bound=self.fleet_bound,
            user_ns=self.shell.user_ns if self.shell is not None else None,
            line_offset=CELL_LINE_OFFSET,
            show=status.update,
        )
        if args.display and self.display_dashboard:
            display(fleet_ui.fleet_dashboard(prog, interval=args.interval or self.interval))

    @cell_magic
    def bpfsql(self, line: str, cell: str) -> Any:
        """``%%bpfsql [NAME]``: one SQL statement over ``PROGRAM.MAP`` tables (DuckDB).

        Every map of every loaded program (local or fleet) is a table; the result is a
        DataFrame, also bound to NAME when given.
        """
        from bpfnb.ui.sql import run_sql

        found: list[Any] = [*programs(), *self.bound.values()]
        if "bpfnb.fleet.program" in sys.modules:  # fleet programs exist only once it is used
            from bpfnb.fleet import program as fleet_program

            found += [*fleet_program.programs(), *self.fleet_bound.values()]
        live = [p for p in found if not p.closed]
        return run_sql(line, cell, live, self.shell.user_ns if self.shell is not None else None)

    def _used_maps(self, uses: dict[str, str]) -> dict[str, Any]:
        """``--use`` options -> {cell map name: the other program's map view}."""
        out: dict[str, Any] = {}
        for local, source in uses.items():
            prog_name, map_name = source.split(".", 1)
            prog = self._find(prog_name)
            if map_name not in prog.maps:
                raise CommandError(
                    f"--use {source}: program {prog_name!r} has no map {map_name!r} "
                    f"(maps: {', '.join(prog.maps) or 'none'})"
                )
            out[local] = prog.maps[map_name]
        return out

    def _display(self, prog: Program, interval: float) -> None:
        from bpfnb.ui.dashboard import dashboard  # static HTML without ipywidgets

        view = dashboard(prog, interval=interval)
        self.dashboards[prog.name] = view
        display(view)

    # -- line actions -----------------------------------------------------------------
    def _line_list(self, args: command.LineArgs) -> pd.DataFrame:
        from bpfnb.ui.top import listing

        return listing(programs())

    def _line_top(self, args: command.LineArgs) -> None:
        from bpfnb.ui.dashboard import show_top

        display(show_top(programs, interval=self.interval))

    def _line_stop(self, args: command.LineArgs) -> None:
        if args.all:
            count = len(programs())
            close_all()
            self.bound.clear()
            if "bpfnb.fleet.program" in sys.modules:
                from bpfnb.ui import fleet as fleet_ui

                count += fleet_ui.stop_all(self.fleet_bound)
            print(f"stopped {count} program(s)")
            return
        assert args.name is not None
        if "bpfnb.fleet.program" in sys.modules:
            from bpfnb.ui import fleet as fleet_ui

            if fleet_ui.stop(self.fleet_bound, args.name):
                print(f"stopped {args.name} on every host")
                return
        prog = self._find(args.name)
        prog.close()
        self.bound.pop(args.name, None)
        print(f"stopped {args.name} (unloaded)")

    def _find(self, name: str) -> Program:
        prog = self.bound.get(name)
        if prog is None and self.shell is not None:
            value = self.shell.user_ns.get(name)
            if isinstance(value, Program):
                prog = value
        if prog is None:
            prog = next((p for p in programs() if p.name == name), None)
        if prog is None or prog.closed:
            live = ", ".join(p.name for p in programs()) or "none"
            raise CommandError(f"no loaded program named {name!r} (loaded: {live})")
        return prog

    def _line_export(self, args: command.LineArgs) -> None:
        assert args.name is not None and args.path is not None
        prog_name, map_name = args.name.split(".")
        prog = self._find(prog_name)
        if map_name not in prog.maps:
            raise CommandError(
                f"program {prog_name!r} has no map {map_name!r} (maps: {', '.join(prog.maps)})"
            )
        path = prog.maps[map_name].to_csv(args.path, overwrite=args.force)
        with open(path) as written:
            rows = sum(1 for _ in written) - 1
        print(f"wrote {rows} row(s) of {args.name} to {path}")

    def _line_cluster(self, args: command.LineArgs) -> pd.DataFrame | None:
        from bpfnb.ui import fleet as fleet_ui

        return fleet_ui.line_cluster(args)

    def _line_pins(self, args: command.LineArgs) -> pd.DataFrame:
        from bpfnb.kernel import reuse

        rows = [
            {
                "name": p.name,
                "type": p.type,
                "id": p.id,
                "key_size": p.key_size,
                "value_size": p.value_size,
                "max_entries": p.max_entries,
                "path": p.path,
            }
            for p in reuse.pins()
        ]
        columns = ["name", "type", "id", "key_size", "value_size", "max_entries", "path"]
        return pd.DataFrame(rows, columns=columns)

    def _line_unpin(self, args: command.LineArgs) -> None:
        from bpfnb.errors import BpfnbError
        from bpfnb.kernel import reuse

        try:
            removed = reuse.unpin(None if args.all else args.name)
        except BpfnbError as err:
            raise CommandError(str(err)) from None
        print(f"unpinned {len(removed)} map(s)" + (f": {', '.join(removed)}" if removed else ""))

    def _line_doctor(self, args: command.LineArgs) -> None:
        print(system.format_checks(system.doctor()))

    def _line_templates(self, args: command.LineArgs) -> pd.DataFrame:
        from bpfnb.build import templates
        from bpfnb.ui.top import FullWidthFrame

        items = templates.list_templates()
        return FullWidthFrame(
            [{"template": t.name, "description": t.description} for t in items],
            columns=["template", "description"],
        )

    def _line_template(self, args: command.LineArgs) -> Program | None:
        from bpfnb.build import templates

        assert args.name is not None and args.cell is not None
        template = templates.get_template(args.name)
        if args.show:
            print(template.source)
            return None
        return self._run_cell(args.cell, template.source)


def load_ipython_extension(ipython: Any) -> None:
    """Register :class:`BpfMagics` (errors render short through ``_render_traceback_``)."""
    ipython.register_magics(BpfMagics(shell=ipython))


def unload_ipython_extension(ipython: Any) -> None:
    """Close every program of the session (``%unload_ext bpfnb``)."""
    with contextlib.suppress(Exception):
        close_all()
    magics = ipython.magics_manager.registry.get("BpfMagics")
    if magics is not None:
        magics.bound.clear()
        if "bpfnb.fleet.program" in sys.modules:
            from bpfnb.ui import fleet as fleet_ui

            with contextlib.suppress(Exception):
                fleet_ui.stop_all(magics.fleet_bound)


__all__ = ["BpfMagics", "load_ipython_extension", "unload_ipython_extension"]
