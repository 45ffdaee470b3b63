"""SQL over live data with DuckDB: a ring buffer's events and a map's snapshot."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import wait_until
from programs import COMM_CALLS
from workload import Workload


def test_sql_over_events_counts_exactly_per_comm(clean_kernel: Any) -> None:
    import bpfnb
    from bpfnb.errors import SqlError

    with bpfnb.load(COMM_CALLS, name="comms") as prog:
        with Workload(comm="sqlwl-a") as a, Workload(comm="sqlwl-b") as b:
            a.run("getppid", 40)
            b.run("getppid", 160)
            pids = {"sqlwl-a": a.pid, "sqlwl-b": b.pid}
        mine = "comm like 'sqlwl-%'"
        assert wait_until(
            lambda: prog.events.sql(f"select * from events where {mine}").shape[0] == 200
        )
        per_comm = prog.events.sql(
            f"select comm, count(*) as n, min(pid) as pid from events where {mine} "
            "group by comm order by comm"
        )
        assert per_comm["comm"].tolist() == ["sqlwl-a", "sqlwl-b"]
        assert per_comm["n"].tolist() == [40, 160]
        assert per_comm["pid"].tolist() == [pids["sqlwl-a"], pids["sqlwl-b"]]
        # the map's snapshot agrees, and joins with nothing copied by hand
        counts = prog.per_pid.sql(
            f"select key as pid, value from per_pid where key in ({a.pid}, {b.pid}) order by value"
        )
        assert counts["value"].tolist() == [40, 160]
        with pytest.raises(SqlError, match="per_pid"):
            prog.per_pid.sql("select nope from per_pid")
