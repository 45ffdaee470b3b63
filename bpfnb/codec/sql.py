"""SQL over DataFrames with DuckDB: live map snapshots and event stores as tables.

Pure: no kernel, no IPython. :func:`query` runs one statement on an in-memory DuckDB
connection where each named table is a pandas DataFrame, scanned in place (DuckDB
reads the numpy/Arrow buffers of the frame without copying them into the database).

Tables are named like the Python objects: ``events`` or ``execs.events`` (program
``execs``, map ``events``: DuckDB reads ``a.b`` as schema ``a``, table ``b``). A
table can be given as a callable returning the frame: it is called only when the
statement names it, so a query over one map never snapshots the others.

Examples
--------
>>> import pandas as pd
>>> frame = pd.DataFrame({"comm": ["a", "b", "a"]})
>>> query("select comm, count(*) as n from ev group by comm order by comm", {"ev": frame})
  comm  n
0    a  2
1    b  1
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, TypeAlias

import pandas as pd

from bpfnb.errors import SqlError

__all__ = ["Table", "names_in", "query"]

#: A table: a DataFrame, or a callable making it when the statement names the table.
Table: TypeAlias = pd.DataFrame | Callable[[], pd.DataFrame]

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def _duckdb() -> Any:
    try:
        import duckdb
    except ImportError:  # pragma: no cover - duckdb is a dependency
        raise SqlError("SQL over live data needs DuckDB: pip install duckdb") from None
    return duckdb


def names_in(statement: str, names: list[str]) -> list[str]:
    """The table names of ``names`` that ``statement`` mentions (case-insensitively).

    A dotted name ``prog.map`` matches with optional spaces around the dot; a plain
    name matches as a whole word that is not part of a dotted name (``prog.map.col``
    names a column of ``prog.map``: it matches neither).
    """
    compact = re.sub(r"\s*\.\s*", ".", statement)
    found = []
    for name in names:
        pattern = r"(?<![\w.])" + re.escape(name) + r"(?![\w.])"
        if re.search(pattern, compact, flags=re.IGNORECASE):
            found.append(name)
    return found


def query(statement: str, tables: Mapping[str, Table]) -> pd.DataFrame:
    """Run ``statement`` with DuckDB over the given DataFrames; return the result.

    Parameters
    ----------
    statement : str
        One SQL statement (DuckDB's dialect).
    tables : mapping of str to DataFrame or callable
        Table name (``name`` or ``schema.name``) -> the frame, or a callable making it.
        Only the tables the statement names are made and registered.

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    SqlError
        When DuckDB refuses the statement; the message is DuckDB's, with the tables
        that were available.
    """
    duckdb = _duckdb()
    for name in tables:
        if not all(re.fullmatch(_IDENT, part) for part in name.split(".")) or name.count(".") > 1:
            raise SqlError(f"table name {name!r} is not NAME or SCHEMA.NAME")
    con = duckdb.connect(":memory:")
    try:
        schemas: set[str] = set()
        for i, name in enumerate(names_in(statement, list(tables))):
            source = tables[name]
            frame = source() if callable(source) else source
            scan = f"__bpfnb_scan_{i}"
            con.register(scan, frame)
            if "." in name:
                schema = name.split(".")[0]
                if schema not in schemas:
                    con.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
                    schemas.add(schema)
            quoted = ".".join(f'"{part}"' for part in name.split("."))
            con.execute(f"CREATE VIEW {quoted} AS SELECT * FROM {scan}")
        try:
            result = con.execute(statement)
        except duckdb.Error as err:
            available = ", ".join(sorted(tables)) or "none"
            raise SqlError(f"{err}\n(tables: {available})") from None
        if result.description is None:
            return pd.DataFrame()
        frame = result.df()
        assert isinstance(frame, pd.DataFrame)
        return frame
    finally:
        con.close()
