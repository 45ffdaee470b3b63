"""bpfnb.codec.sql: DuckDB over DataFrames named like Python objects."""

from __future__ import annotations

import pandas as pd
import pytest

from bpfnb.codec import sql
from bpfnb.errors import SqlError


def test_names_in_finds_plain_and_dotted_names() -> None:
    names = ["events", "execs.events", "execs.counts", "other"]
    assert sql.names_in("select * from execs . events", names) == ["execs.events"]
    assert sql.names_in("select * from events join execs.counts using (pid)", names) == [
        "events",
        "execs.counts",
    ]
    assert sql.names_in("select execs.events.comm from execs.events", names) == ["execs.events"]
    assert sql.names_in("SELECT * FROM EVENTS", names) == ["events"]


def test_query_over_schema_tables_reads_only_the_named_ones() -> None:
    events = pd.DataFrame({"comm": ["a", "b", "a", "a"], "pid": [1, 2, 1, 3]})
    read: list[str] = []

    def make(name: str, frame: pd.DataFrame) -> sql.Table:
        def snapshot() -> pd.DataFrame:
            read.append(name)
            return frame

        return snapshot

    tables = {
        "execs.events": make("execs.events", events),
        "execs.counts": make("execs.counts", pd.DataFrame({"x": [1]})),
    }
    out = sql.query(
        "select comm, count(*) as n from execs.events group by comm order by comm", tables
    )
    assert out["comm"].tolist() == ["a", "b"] and out["n"].tolist() == [3, 1]
    assert read == ["execs.events"]


def test_errors_name_the_tables() -> None:
    with pytest.raises(SqlError, match=r"tables: ev"):
        sql.query("select missing from ev", {"ev": pd.DataFrame({"a": [1]})})
    with pytest.raises(SqlError, match=r"is not NAME or SCHEMA\.NAME"):
        sql.query("select 1", {"a.b.c": pd.DataFrame()})
    assert sql.query("select 41 + 1 as answer", {})["answer"].tolist() == [42]
