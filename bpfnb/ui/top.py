"""``%bpf top`` and ``%bpf list``: every loaded bpfnb program with its run statistics.

- :class:`ProgramsTop`: a live view in the spirit of bpftop: per program its kernel
  program ids (to cross-check with ``bpftool prog``), attach state, runs per second,
  average time per run and share of one CPU, measured between two refreshes (from the
  load on the first one), busiest first.
- :func:`listing`: the same facts once, averaged since each program loaded, as a
  :class:`FullWidthFrame` (a DataFrame that displays without cutting long cells).

The programs come from a callable (the magics pass the session's registry), so this
module reads programs only through :class:`~bpfnb.ui.sources.ProgramSource`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import pandas as pd

from bpfnb.ui.sources import ProgramSource
from bpfnb.ui.views import View

__all__ = ["LIST_COLUMNS", "TOP_COLUMNS", "FullWidthFrame", "ProgramsTop", "listing"]

TOP_COLUMNS = [
    "name",
    "prog ids",
    "state",
    "runs/s",
    "avg ns/run",
    "%CPU",
    "runs",
    "attach points",
]
LIST_COLUMNS = [
    "name",
    "prog ids",
    "attach points",
    "programs",
    "maps",
    "run count",
    "run time ms",
    "avg ns/run",
    "runs/s",
    "%CPU",
]


class FullWidthFrame(pd.DataFrame):
    """A DataFrame that shows every character of every cell (no ``...`` cut-off)."""

    @property
    def _constructor(self) -> Any:
        return FullWidthFrame

    def _repr_html_(self) -> str | None:
        with pd.option_context("display.max_colwidth", None, "display.max_columns", None):
            return super()._repr_html_()  # type: ignore[misc]

    def __repr__(self) -> str:
        with pd.option_context(
            "display.max_colwidth", None, "display.max_columns", None, "display.width", 0
        ):
            return super().__repr__()


def _ids(stats: dict[str, Any]) -> str:
    ids = [str(p["id"]) for p in stats.get("programs", {}).values() if p.get("id") is not None]
    return ", ".join(ids)


def _state(program: ProgramSource) -> str:
    if program.closed:
        return "stopped"
    return "running" if program.attached else "detached"


def listing(programs: Iterable[ProgramSource]) -> FullWidthFrame:
    """``%bpf list``: one row per program, rates averaged since it loaded.

    Columns: ``name``, ``prog ids`` (kernel ids, as ``bpftool prog`` shows them),
    ``attach points``, ``programs``, ``maps``, ``run count``, ``run time ms``,
    ``avg ns/run``, ``runs/s`` and ``%CPU`` (one CPU = 100) since the load.
    """
    rows = []
    now = time.time()
    for prog in programs:
        stats = prog.stats()
        runs, ns = int(stats["run_cnt"]), int(stats["run_time_ns"])
        seconds = max(now - prog.loaded_at, 1e-9)
        rows.append(
            {
                "name": prog.name,
                "prog ids": _ids(stats),
                "attach points": ", ".join(prog.attach_points) or "(not attached)",
                "programs": ", ".join(stats.get("programs", {})),
                "maps": ", ".join(f"{n} ({m.spec.type_name})" for n, m in prog.maps.items()),
                "run count": runs,
                "run time ms": round(ns / 1e6, 3),
                "avg ns/run": round(ns / runs) if runs else 0,
                "runs/s": round(runs / seconds, 1),
                "%CPU": round(100.0 * ns / (seconds * 1e9), 3),
            }
        )
    return FullWidthFrame(rows, columns=LIST_COLUMNS)


class ProgramsTop(View):
    """Every loaded program's runs/s, avg ns/run and %CPU, refreshed (``%bpf top``).

    Parameters
    ----------
    programs : callable
        Returns the programs loaded now.

    Attributes
    ----------
    frame : DataFrame
        One row per program (:data:`TOP_COLUMNS`), highest %CPU first.
    """

    kind = "top"

    def __init__(self, programs: Callable[[], list[ProgramSource]]) -> None:
        super().__init__("bpfnb programs")
        self._programs = programs
        self._previous: dict[int, tuple[float, int, int]] = {}
        self.frame = pd.DataFrame(columns=TOP_COLUMNS)

    def _update(self) -> None:
        rows = []
        now_mono, now = time.monotonic(), time.time()
        seen: dict[int, tuple[float, int, int]] = {}
        for prog in self._programs():
            stats = prog.stats()
            runs, ns = int(stats["run_cnt"]), int(stats["run_time_ns"])
            before = self._previous.get(id(prog))
            if before is None:  # first sight: since the load
                seconds, d_runs, d_ns = max(now - prog.loaded_at, 1e-9), runs, ns
            else:
                seconds = max(now_mono - before[0], 1e-9)
                d_runs, d_ns = runs - before[1], ns - before[2]
            seen[id(prog)] = (now_mono, runs, ns)
            rows.append(
                {
                    "name": prog.name,
                    "prog ids": _ids(stats),
                    "state": _state(prog),
                    "runs/s": d_runs / seconds,
                    "avg ns/run": d_ns / d_runs if d_runs > 0 else float("nan"),
                    "%CPU": 100.0 * d_ns / (seconds * 1e9),
                    "runs": runs,
                    "attach points": ", ".join(prog.attach_points) or "(not attached)",
                }
            )
        self._previous = seen
        frame = pd.DataFrame(rows, columns=TOP_COLUMNS)
        if len(frame):
            frame = frame.sort_values(["%CPU", "name"], ascending=[False, True], kind="stable")
        self.frame = frame.reset_index(drop=True)
