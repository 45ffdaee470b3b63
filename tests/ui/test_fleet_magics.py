"""The fleet from the notebook's magics, on a real LocalCluster of 3 worker processes.

``%bpf cluster connect``, ``%bpf cluster``, ``%%bpf NAME --fleet``, the fleet
dashboard (host view, by-host / summed toggle, a dead worker shown as lost),
``%%bpfsql`` over fleet and local tables, and ``%bpf stop`` leaving nothing on any
worker.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

from conftest import kernel_prog_ids, require_kernel, wait_until
from fleet_cluster import gone_from_kernel, held, kill_worker, local_cluster
from programs import FILTERED_GETPID_COUNTER, GETPID_COUNTER
from workload import Workload

pytestmark = pytest.mark.kernel

HOSTS = ["0", "1", "2"]


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    require_kernel()
    os.environ.setdefault("BPFNB_CACHE_DIR", "/tmp/bpfnb-test-cache")
    with local_cluster(3) as made:
        yield made


@pytest.fixture(scope="module")
def connected(shell: Any, cluster: Any) -> Iterator[Any]:
    import bpfnb.fleet

    info = shell.run(f"%bpf cluster connect {cluster.scheduler_address}")
    assert info["host"].tolist() == HOSTS
    yield bpfnb.fleet.current()
    shell.run("%bpf cluster disconnect")


def test_cluster_shows_the_workers(shell: Any, connected: Any, capsys: Any) -> None:
    info = shell.run("%bpf cluster")
    assert info["host"].tolist() == HOSTS
    assert info["ready"].all() and info["btf"].all()
    assert set(info["kernel"]) == {os.uname().release}
    assert not info["secret required"].any()


def test_fleet_cell_dashboard_sql_and_stop(shell: Any, connected: Any) -> None:
    from bpfnb.fleet import FleetProgram, FleetWarning
    from bpfnb.ui.fleet import BY_HOST, SUMMED, FleetDashboard, render_hosts

    with Workload(comm="magicwl") as w:
        shell.user_ns["wl_pid"] = w.pid
        shell.run(
            "%%bpf calls --fleet --no-display --set target_pid={wl_pid}\n" + FILTERED_GETPID_COUNTER
        )
        prog = shell.user_ns["calls"]
        assert isinstance(prog, FleetProgram)
        assert sorted(prog.running_hosts()) == HOSTS
        ids = [i for v in prog.program_ids().values() for i in v]
        w.run("getpid", 250)
        w.run("getppid", 7)

        # every host traces the one workload (one kernel): 250 calls on each
        df = shell.run("calls.counts.df()")
        assert df.sort_values("host")[["host", "key", "value"]].values.tolist() == [
            [h, w.pid, 250] for h in HOSTS
        ]
        assert wait_until(lambda: prog.calls.received == 3 * 7, 5)

        # the dashboard: host view, the toggle, the ordinary views
        dash = FleetDashboard(prog, interval=60)
        try:
            assert dash.hosts.frame["state"].tolist() == ["running"] * 3
            assert dash.hosts.frame["received"].tolist() == [7, 7, 7]
            table = dash.dashboard.views["counts"]
            table.refresh()
            assert table.total == 3 * 250 and len(table.frame) == 3
            dash.set_grouping(SUMMED)
            assert table.total == 3 * 250 and len(table.frame) == 1
            assert "host" not in table.frame.columns
            assert int(table.frame["value"].iloc[0]) == 750
            assert (table.max_entries, table.dropped, table.full) == (64, 0, False)  # one host's
            dash.set_grouping(BY_HOST)
            assert table.max_entries == 3 * 64 and len(table.frame) == 3  # every host's rows
            tail = dash.dashboard.views["calls"]
            tail.refresh()
            assert tail.received == 21 and tail.lost == 0 and tail.lost_note == ""
            assert table.error is None and tail.error is None
            # Detach / Attach on every host (nothing counts in between: 260 below)
            dash.dashboard.detach()
            assert not prog.attached and dash.dashboard.header.program_state == "detached"
            w.run("getpid", 5)
            dash.dashboard.attach()
            assert len(prog.attach_points) == 3 * 2 and dash.dashboard.header.note == ""
            assert 'data-state="running"' in render_hosts(dash.hosts)
            assert "bpfnb-hosts" in dash.html() and "bpfnb-summary" in dash.html()
        finally:
            dash.dashboard.refresher.stop()

        # %%bpfsql over the fleet's events and map
        result = shell.run(
            "%%bpfsql per_host\n"
            "select host, comm, count(*) as n from calls.calls group by host, comm order by host"
        )
        assert result.values.tolist() == [[h, "magicwl", 7] for h in HOSTS]
        assert shell.user_ns["per_host"] is result
        total = shell.run("%%bpfsql\nselect sum(value) as total from calls.counts")
        assert int(total["total"][0]) == 750

        # a dead worker shows as lost in the dashboard; the others still answer
        dash = FleetDashboard(prog, interval=60)
        try:
            dead = prog.program_ids()["2"]
            kill_worker(connected, "2")
            w.run("getpid", 10)
            with pytest.warns(FleetWarning, match="host 2"):
                dash.hosts.refresh()
                df = prog.counts.df()
            assert dash.hosts.frame.set_index("host").loc["2", "state"] == "lost"
            assert 'data-state="lost"' in render_hosts(dash.hosts)
            assert df.sort_values("host")["value"].tolist() == [260, 260]
            assert gone_from_kernel(dead)
        finally:
            dash.dashboard.refresher.stop()

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            shell.run("%bpf stop calls")
    assert prog.closed
    assert wait_until(lambda: "2" in connected.workers(), 30)
    assert all(rows == [] for rows in held(connected).values())
    assert gone_from_kernel(ids)
    assert not kernel_prog_ids() & set(ids)


def test_stop_all_stops_local_and_fleet_programs(shell: Any, connected: Any) -> None:
    shell.run("%%bpf fleetwide --fleet 0,1 --no-display\n" + GETPID_COUNTER)
    shell.run("%%bpf here --no-display\n" + GETPID_COUNTER)
    prog = shell.user_ns["fleetwide"]
    assert sorted(prog.running_hosts()) == ["0", "1"]
    ids = [i for v in prog.program_ids().values() for i in v]
    shell.run("%bpf stop --all")
    assert prog.closed and shell.user_ns["here"].closed
    assert all(rows == [] for rows in held(connected).values())
    assert gone_from_kernel(ids)


def test_local_bpfsql_counts_per_comm(shell: Any) -> None:
    from programs import COMM_CALLS

    shell.run("%%bpf comms --no-display\n" + COMM_CALLS)
    try:
        with Workload(comm="sqlwl-a") as a, Workload(comm="sqlwl-b") as b:
            a.run("getppid", 30)
            b.run("getppid", 70)
            prog = shell.user_ns["comms"]
            assert wait_until(
                lambda: (
                    len(prog.events.sql("select * from events where comm like 'sqlwl-%'")) == 100
                ),
                5,
            )
        result = shell.run(
            "%%bpfsql\n"
            "select comm, count(*) as n from comms.events\n"
            "where comm like 'sqlwl-%' group by comm order by comm"
        )
        assert result.values.tolist() == [["sqlwl-a", 30], ["sqlwl-b", 70]]
    finally:
        shell.run("%bpf stop comms")
