"""``%%bpfsql``: SQL over the live maps and event stores of the notebook's programs.

Every map of every loaded program, local or on a fleet, is a table named
``PROGRAM.MAP`` (DuckDB reads it as schema ``PROGRAM``, table ``MAP``)::

    %%bpfsql per_comm
    select comm, count(*) as calls from execs.events group by comm order by calls desc

Only the tables the statement names are read (a snapshot of a map, the events kept
so far of a stream; fleet tables carry their ``host`` column). The result is a
DataFrame: shown, and bound to the optional name given on the magic's line.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

import pandas as pd

from bpfnb.build.command import check_identifier
from bpfnb.codec import sql
from bpfnb.errors import CommandError

__all__ = ["TableMaps", "parse_sql_line", "run_sql", "tables_of"]


class _Snapshot(Protocol):
    def df(self) -> pd.DataFrame:
        """A snapshot."""
        ...


class TableMaps(Protocol):
    """A program as ``%%bpfsql`` sees it: a name and maps that make DataFrames."""

    @property
    def name(self) -> str:
        """The program's name."""
        ...

    @property
    def maps(self) -> Mapping[str, Any]:
        """Its maps (each with ``df()``)."""
        ...


def _reader(source: _Snapshot) -> Callable[[], pd.DataFrame]:
    return source.df


def tables_of(programs: list[TableMaps]) -> dict[str, Callable[[], pd.DataFrame]]:
    """``PROGRAM.MAP`` -> a function snapshotting it, for every map of ``programs``.

    A program listed twice (bound in the notebook and registered) counts once; a
    later program of the same name wins.
    """
    out: dict[str, Callable[[], pd.DataFrame]] = {}
    for prog in programs:
        for map_name, source in prog.maps.items():
            out[f"{prog.name}.{map_name}"] = _reader(source)
    return out


def parse_sql_line(line: str) -> str | None:
    """The name the result is bound to (``%%bpfsql [NAME]``), or None."""
    words = line.split()
    if len(words) > 1:
        raise CommandError("usage: %%bpfsql [RESULT_NAME]  (the cell holds one SQL statement)")
    return check_identifier(words[0], "result name", None) if words else None


def run_sql(line: str, cell: str, programs: list[TableMaps], user_ns: dict[str, Any] | None) -> Any:
    """Run the cell's statement over the programs' maps; bind the result when named.

    Raises
    ------
    SqlError
        When DuckDB refuses the statement (the message lists the tables).
    CommandError
        For a bad magic line or an empty cell.
    """
    target = parse_sql_line(line)
    statement = cell.strip()
    if not statement:
        raise CommandError("%%bpfsql: the cell is empty; write one SQL statement")
    result = sql.query(statement, tables_of(programs))
    if target is not None and user_ns is not None:
        user_ns[target] = result
    return result
