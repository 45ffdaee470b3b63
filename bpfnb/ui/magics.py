"""The ``%%bpf`` cell magic and ``%bpf`` line magic (UI layer).

``BpfMagics`` is both the IPython ``Magics`` class and the traitlets configuration
object, so ``%config BpfMagics.interval = 0.5`` sets the default refresh interval.
bpfnb's errors render as short messages with no traceback (see
``BpfnbError._render_traceback_``); the exception stays in ``sys.last_value``.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import pandas as pd
from IPython.core.magic import Magics, line_cell_magic, magics_class
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

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        self.bound: dict[str, Program] = {}
        self.dashboards: dict[str, Any] = {}  # name -> the Dashboard last displayed

    # -- dispatch ---------------------------------------------------------------------
    @line_cell_magic
    def bpf(self, line: str, cell: str | None = None) -> Any:
        """Compile/load/attach a cell (``%%bpf NAME``) or manage programs (``%bpf ...``).

        Cell: ``%%bpf NAME [-D NAME[=VALUE]] [-I DIR] [--cflags "..."] [--no-attach]
        [--no-display] [--interval SECONDS] [--set VAR=VALUE] [--compile-only]``.

        Line: ``%bpf list``, ``%bpf top``, ``%bpf stop NAME``, ``%bpf stop --all``,
        ``%bpf export NAME.MAP PATH.csv``, ``%bpf doctor``, ``%bpf templates``,
        ``%bpf template TEMPLATE [NAME] [--show] [cell options]``.
        """
        if cell is not None:
            return self._run_cell(command.parse_cell_args(line), cell)
        args = command.parse_line_args(line)
        handler = getattr(self, f"_line_{args.action}")
        return handler(args)

    # -- cells ------------------------------------------------------------------------
    def _run_cell(self, args: CellArgs, source: str) -> Program | None:
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
            )
            result = built.compile_result
            assert result is not None
            spec = built.spec
            status.update(
                f"{args.name}: compiled in {result.seconds * 1000:.0f} ms"
                f"{' (cached)' if result.cached else ''} -> {result.object_path}\n"
                f"  programs: {', '.join(f'{p.name} [{p.section}]' for p in spec.programs)}\n"
                f"  maps: {', '.join(f'{m.name} ({m.type_name})' for m in spec.maps.values())}"
            )
            return None
        status.update(f"{args.name}: compiling and loading…")
        prog = pipeline.load(
            source,
            name=args.name,
            attach=args.attach,
            defines=args.defines,
            globals=dict(args.globals),
            include_dirs=args.include_dirs,
            cflags=args.cflags,
            line_offset=CELL_LINE_OFFSET,
        )
        # The new version is loaded (and attached): only now replace the old one.
        old = self.bound.pop(args.name, None)
        if old is not None:
            old.close(wait=False)  # detaching is the kernel's slow part: off the user's wait
        self.dashboards.pop(args.name, None)
        self.bound[args.name] = prog
        if self.shell is not None:
            self.shell.user_ns[args.name] = prog
        elapsed = (time.perf_counter() - start) * 1000
        attached = len(prog.attach_points)
        warnings = prog.compile_result.warnings if prog.compile_result else []
        summary = (
            f"{args.name}: {attached} of {len(prog.programs)} program(s) attached, "
            f"{len(prog.maps)} map(s), {elapsed:.0f} ms"
        )
        for warning in warnings[:3]:
            summary += f"\n  warning, line {warning.line}: {warning.message}"
        status.update(summary)
        if args.display and self.display_dashboard:
            self._display(prog, args.interval or self.interval)
        return None

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
            print(f"stopped {count} program(s)")
            return
        assert args.name is not None
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
        path = prog.maps[map_name].to_csv(args.path)
        with open(path) as written:
            rows = sum(1 for _ in written) - 1
        print(f"wrote {rows} row(s) of {args.name} to {path}")

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


__all__ = ["BpfMagics", "load_ipython_extension", "unload_ipython_extension"]
