"""The fleet on a real LocalCluster of 3 worker processes (real clang, kernel, maps).

Each host's program counts the getpid calls of that host's own workload (a
``const volatile`` pid set per host), so every answer is exact although the workers
share this machine's kernel. Tests run in file order: the worker-killing and the
secret tests change the cluster, so they come last.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from bpfnb.errors import OutputExistsError

from conftest import ROOT, TESTS, kernel_prog_ids, require_kernel, wait_until
from fleet_cluster import gone_from_kernel, held, kill_worker, local_cluster
from programs import FILTERED_GETPID_COUNTER, FILTERED_HIST_AND_PERCPU, MISSING_NULL_CHECK
from workload import Workload

pytestmark = pytest.mark.kernel

HOSTS = ["0", "1", "2"]
CALLS = {"0": 300, "1": 500, "2": 700}
EVENTS = {"0": 11, "1": 22, "2": 33}


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    require_kernel()
    os.environ.setdefault("BPFNB_CACHE_DIR", "/tmp/bpfnb-test-cache")
    with local_cluster(3) as made:
        yield made


@pytest.fixture(scope="module")
def fleet(cluster: Any) -> Iterator[Any]:
    import bpfnb.fleet

    connected = bpfnb.fleet.connect(cluster, secret=None)
    yield connected
    bpfnb.fleet.disconnect()


@pytest.fixture
def workloads(fleet: Any) -> Iterator[dict[str, Workload]]:
    made = {host: Workload(comm=f"fleetwl-{host}") for host in HOSTS}
    yield made
    for w in made.values():
        w.close()


def _load(fleet: Any, workloads: dict[str, Workload], name: str = "calls", **kw: Any) -> Any:
    import bpfnb.fleet

    return bpfnb.fleet.load(
        FILTERED_GETPID_COUNTER,
        name,
        fleet=fleet,
        host_globals={h: {"target_pid": w.pid} for h, w in workloads.items()},
        **kw,
    )


def _all_ids(prog: Any) -> list[int]:
    return [i for ids in prog.program_ids().values() for i in ids]


def test_the_workers_are_ready(fleet: Any) -> None:
    info = fleet.info()
    assert list(info["host"]) == HOSTS
    assert info["ready"].all() and info["btf"].all()
    assert set(info["kernel"]) == {os.uname().release}
    assert set(info["privileges"]) == {"root"}


def test_gathered_maps_are_exact_per_host(fleet: Any, workloads: dict[str, Workload]) -> None:
    prog = _load(fleet, workloads)
    try:
        ids = prog.program_ids()
        assert sorted(ids) == HOSTS and all(len(v) == 2 for v in ids.values())
        assert kernel_prog_ids() >= set(_all_ids(prog))
        for host, w in workloads.items():
            w.run("getpid", CALLS[host])
            w.run("getppid", EVENTS[host])

        counts = prog.counts.df()
        assert list(counts.columns) == ["host", "key", "value"]
        expected = pd.DataFrame(
            {
                "host": HOSTS,
                "key": [workloads[h].pid for h in HOSTS],
                "value": [CALLS[h] for h in HOSTS],
            }
        )
        got = counts.sort_values("host").reset_index(drop=True)
        assert got["host"].tolist() == expected["host"].tolist()
        assert got["key"].tolist() == expected["key"].tolist()
        assert got["value"].tolist() == expected["value"].tolist()
        summed = prog.counts.df(by_host=False)
        assert int(summed["value"].sum()) == sum(CALLS.values()) and "host" not in summed

        # ring buffers: each host consumes its own; gathered with host, counted per host
        assert wait_until(lambda: prog.calls.received == sum(EVENTS.values()), 5)
        events = prog.calls.df()
        per_host = events.groupby("host").size().to_dict()
        assert per_host == EVENTS
        assert set(zip(events["host"], events["comm"], strict=True)) == {
            (h, f"fleetwl-{h}") for h in HOSTS
        }
        assert (events["pid"] == events["host"].map(lambda h: workloads[h].pid)).all()
        counters = prog.calls.per_host()
        assert counters["received"].tolist() == [EVENTS[h] for h in HOSTS]
        assert counters["lost"].tolist() == [0, 0, 0] and prog.calls.lost == 0
        tail = prog.calls.tail(5)
        assert len(tail) == 5 and list(tail.columns[:1]) == ["host"]

        # SQL over the gathered events and map
        by_comm = prog.calls.sql(
            "select host, comm, count(*) as n from calls group by host, comm order by host"
        )
        assert by_comm["n"].tolist() == [EVENTS[h] for h in HOSTS]
        assert by_comm["comm"].tolist() == [f"fleetwl-{h}" for h in HOSTS]
        total = prog.counts.sql("select sum(value) as total from counts")
        assert int(total["total"][0]) == sum(CALLS.values())

        status = prog.status()
        assert status["state"].tolist() == ["running"] * 3
        assert status["received"].tolist() == [EVENTS[h] for h in HOSTS]
        assert prog.stats()["run_cnt"] >= sum(CALLS.values()) + sum(EVENTS.values())
        assert len(prog.attach_points) == 6 and prog.attached
    finally:
        prog.close()
    assert prog.closed
    assert all(rows == [] for rows in held(fleet).values())
    assert gone_from_kernel(_all_ids(prog))


def test_histograms_and_per_cpu_maps_gather_and_sum(
    fleet: Any, workloads: dict[str, Workload]
) -> None:
    import bpfnb.fleet
    from bpfnb.kernel.cpus import possible_cpus

    prog = bpfnb.fleet.load(
        FILTERED_HIST_AND_PERCPU,
        "shapes",
        fleet=fleet,
        host_globals={h: {"target_pid": w.pid} for h, w in workloads.items()},
    )
    try:
        for host, w in workloads.items():
            w.run("getpid", CALLS[host])
        hist = prog.sizes.df()
        assert list(hist.columns) == ["host", "bucket", "low", "high", "count"]
        assert hist.sort_values("host")["count"].tolist() == [CALLS[h] for h in HOSTS]
        assert set(hist["low"]) == {4} and set(hist["high"]) == {8}
        summed = prog.sizes.df(by_host=False)
        assert summed[["low", "high", "count"]].values.tolist() == [[4, 8, sum(CALLS.values())]]
        hits = prog.hits.df()
        assert hits.sort_values("host")["value"].tolist() == [CALLS[h] for h in HOSTS]
        per_cpu = prog.hits.df(per_cpu=True)
        cpu_columns = [c for c in per_cpu.columns if c.startswith("value[cpu")]
        assert len(cpu_columns) == possible_cpus()
        assert per_cpu.sort_values("host")[cpu_columns].sum(axis=1).tolist() == [
            CALLS[h] for h in HOSTS
        ]
    finally:
        prog.close()
    assert all(rows == [] for rows in held(fleet).values())


def test_one_host_only_and_rerun_replaces(fleet: Any, workloads: dict[str, Workload]) -> None:
    import bpfnb.fleet

    first = bpfnb.fleet.load(
        FILTERED_GETPID_COUNTER,
        "one",
        fleet=fleet,
        hosts=["1"],
        host_globals={"1": {"target_pid": workloads["1"].pid}},
    )
    second = bpfnb.fleet.load(
        FILTERED_GETPID_COUNTER,
        "one",
        fleet=fleet,
        hosts=["1"],
        globals={"target_pid": workloads["1"].pid},
        replaces=first,
    )
    try:
        assert first.closed and not second.closed
        assert gone_from_kernel(_all_ids(first))
        workloads["1"].run("getpid", 42)
        df = second.counts.df()
        assert df["host"].tolist() == ["1"] and df["value"].tolist() == [42]
        assert [r["load_id"] for r in held(fleet)["1"]] == [second.load_id]
    finally:
        second.close()
    assert all(rows == [] for rows in held(fleet).values())


def test_a_cell_that_fails_everywhere_says_why(fleet: Any) -> None:
    import bpfnb.fleet
    from bpfnb.errors import FleetError

    with pytest.raises(FleetError, match=r"hosts 0, 1, 2: VerifierError"):
        bpfnb.fleet.load(MISSING_NULL_CHECK, "bad", fleet=fleet)
    with pytest.raises(FleetError, match="no worker named nowhere"):
        bpfnb.fleet.load(FILTERED_GETPID_COUNTER, "bad", fleet=fleet, hosts=["nowhere"])
    assert all(rows == [] for rows in held(fleet).values())


# A BCC-dialect cell: its perf buffer's event type is found in the rewritten text the
# notebook compiled (shipped with the object); getpid calls go to a program left out.
BCC_FLEET = r"""
struct data_t { u32 pid; u32 one; };
BPF_PERF_OUTPUT(events);
BPF_HASH(calls, u32, u64, 64);
const volatile u32 target_pid = 0;

TRACEPOINT_PROBE(syscalls, sys_enter_getppid)
{
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    if (pid != target_pid)
        return 0;
    struct data_t data = {.pid = pid, .one = 1};
    calls.increment(pid);
    events.perf_submit(args, &data, sizeof(data));
    return 0;
}

TRACEPOINT_PROBE(syscalls, sys_enter_getpid)
{
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    if (pid == target_pid)
        calls.increment(0);
    return 0;
}
"""


def test_a_bcc_cell_with_a_skipped_program_and_sized_map(
    fleet: Any, workloads: dict[str, Workload], tmp_path: Path
) -> None:
    import bpfnb.fleet

    prog = bpfnb.fleet.load(
        BCC_FLEET,
        "bccfleet",
        fleet=fleet,
        host_globals={h: {"target_pid": w.pid} for h, w in workloads.items()},
        skip="tracepoint__syscalls__sys_enter_getpid",
        max_entries={"calls": 32},
    )
    try:
        assert all(len(v) == 1 for v in prog.program_ids().values())
        assert prog.attach_points == [f"{h}:tracepoint/syscalls/sys_enter_getppid" for h in HOSTS]
        for host, w in workloads.items():
            w.run("getpid", CALLS[host])
            w.run("getppid", EVENTS[host])
        calls = prog.calls.df().sort_values("host")
        assert calls["key"].tolist() == [workloads[h].pid for h in HOSTS]  # no key 0
        assert calls["value"].tolist() == [EVENTS[h] for h in HOSTS]
        assert wait_until(lambda: prog.events.received == sum(EVENTS.values()), 5)
        events = prog.events.df()
        assert list(events.columns[:3]) == ["host", "pid", "one"]
        assert events.groupby("host").size().to_dict() == EVENTS
        assert (events["pid"] == events["host"].map(lambda h: workloads[h].pid)).all()
        assert (events["one"] == 1).all()
        assert prog.events.warning is None  # no host has a stream problem to show
        # CSV files are new files unless overwriting is asked for (as for local maps)
        out = prog.calls.to_csv(tmp_path / "calls.csv")
        assert pd.read_csv(out)["value"].tolist() == calls["value"].tolist()
        with pytest.raises(OutputExistsError):
            prog.events.to_csv(out)
        assert len(pd.read_csv(prog.events.to_csv(out, overwrite=True))) == sum(EVENTS.values())
    finally:
        prog.close()
    from bpfnb.errors import FleetError

    with pytest.raises(FleetError, match=r"hosts 0, 1, 2: .*--max-entries nosuch=8: no map"):
        bpfnb.fleet.load(BCC_FLEET, "bccfleet", fleet=fleet, max_entries={"nosuch": 8})
    assert all(rows == [] for rows in held(fleet).values())


def test_a_killed_worker_leaves_the_others_answering(
    fleet: Any, workloads: dict[str, Workload]
) -> None:
    prog = _load(fleet, workloads, "survivors")
    try:
        dead_ids = prog.program_ids()["1"]
        assert kernel_prog_ids() >= set(dead_ids)
        kill_worker(fleet, "1")
        for host, w in workloads.items():
            w.run("getpid", CALLS[host])
        with pytest.warns(bpfnb_warning(), match=r"host 1: its worker"):
            counts = prog.counts.df()
        got = counts.sort_values("host")
        assert got["host"].tolist() == ["0", "2"]
        assert got["value"].tolist() == [CALLS["0"], CALLS["2"]]
        # the dead worker's programs went with its process: nothing left in the kernel
        assert gone_from_kernel(dead_ids)
        assert set(_all_ids(prog)) - set(dead_ids) <= kernel_prog_ids()
        status = prog.status().set_index("host")
        assert status.loc["1", "state"] == "lost" and "host 1" in status.loc["1", "error"]
        assert status.loc["0", "state"] == status.loc["2", "state"] == "running"
        # the restarted worker (same name, new process) holds nothing
        assert wait_until(lambda: "1" in fleet.workers(), 30)
        assert held(fleet)["1"] == []
    finally:
        prog.close()
    assert all(rows == [] for rows in held(fleet).values())
    assert gone_from_kernel(_all_ids(prog))


def bpfnb_warning() -> type[Warning]:
    from bpfnb.fleet import FleetWarning

    return FleetWarning


_NOTEBOOK_CLIENT = """
import sys, time
import bpfnb.fleet
sys.path.insert(0, {tests!r})
from programs import FILTERED_GETPID_COUNTER, FILTERED_HIST_AND_PERCPU, MISSING_NULL_CHECK
fleet = bpfnb.fleet.connect({address!r}, lease=2.0)
prog = bpfnb.fleet.load(FILTERED_GETPID_COUNTER, "orphan", hosts=["0"])
print(" ".join(str(i) for i in prog.program_ids()["0"]), flush=True)
time.sleep(600)
"""


def test_a_dead_notebook_leaves_nothing_after_its_lease(fleet: Any, cluster: Any) -> None:
    script = _NOTEBOOK_CLIENT.format(tests=str(TESTS), address=cluster.scheduler_address)
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        assert proc.stdout is not None
        ids = [int(i) for i in proc.stdout.readline().split()]
        assert len(ids) == 2 and kernel_prog_ids() >= set(ids)
        assert [r["name"] for r in held(fleet)["0"]] == ["orphan"]
    finally:
        proc.send_signal(signal.SIGKILL)  # no atexit, no goodbye: only the lease ends it
        proc.wait(10)
    started = time.monotonic()
    assert gone_from_kernel(ids, timeout=20)
    assert time.monotonic() - started < 20
    assert held(fleet)["0"] == []


_EXITING_CLIENT = """
import sys
import bpfnb.fleet
sys.path.insert(0, {tests!r})
from programs import FILTERED_GETPID_COUNTER
bpfnb.fleet.connect({address!r}, lease=None)  # no lease: only the exit can stop it
prog = bpfnb.fleet.load(FILTERED_GETPID_COUNTER, "left_running", hosts=["0", "2"])
print(" ".join(str(i) for ids in prog.program_ids().values() for i in ids), flush=True)
"""


def test_a_notebook_that_exits_stops_its_programs(fleet: Any, cluster: Any) -> None:
    script = _EXITING_CLIENT.format(tests=str(TESTS), address=cluster.scheduler_address)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    ids = [int(i) for i in done.stdout.split()]
    assert len(ids) == 4
    assert all(rows == [] for rows in held(fleet).values())
    assert gone_from_kernel(ids, timeout=5)


def test_a_worker_with_a_secret_refuses_an_unauthorised_client(
    fleet: Any, cluster: Any, workloads: dict[str, Workload]
) -> None:
    import bpfnb.fleet
    from bpfnb.errors import NotAuthorisedError

    env = {**os.environ, "BPFNB_FLEET_SECRET": "correct horse battery staple"}
    guarded = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "distributed.cli.dask_worker",
            cluster.scheduler_address,
            "--name",
            "guarded",
            "--nthreads",
            "1",
            "--no-nanny",
            "--no-dashboard",
            "--host",
            "127.0.0.1",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert wait_until(lambda: "guarded" in fleet.workers(), 60)
        assert fleet.info().set_index("host").loc["guarded", "secret required"]
        # without the secret: the guarded worker refuses, the others load and answer
        with pytest.warns(bpfnb_warning(), match="host guarded: NotAuthorisedError"):
            prog = _load(fleet, workloads, "guarded_calls")
        try:
            assert prog.hosts["guarded"].state == "failed"
            assert sorted(prog.running_hosts()) == HOSTS
            workloads["2"].run("getpid", 9)
            df = prog.counts.df()
            assert df.loc[df["host"] == "2", "value"].tolist() == [9]
        finally:
            prog.close()
        assert held(fleet)["guarded"] == []
        # a wrong secret is refused too, with its own message
        wrong = bpfnb.fleet.Fleet(fleet.client, secret="wrong", lease=None)
        with pytest.raises(bpfnb.fleet.cluster.FleetError, match="does not match"):
            bpfnb.fleet.load(FILTERED_GETPID_COUNTER, "x", fleet=wrong, hosts=["guarded"])
        # the right secret loads it
        right = bpfnb.fleet.Fleet(fleet.client, secret=env["BPFNB_FLEET_SECRET"], lease=None)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            ok = bpfnb.fleet.load(FILTERED_GETPID_COUNTER, "x", fleet=right, hosts=["guarded"])
        assert ok.running_hosts().keys() == {"guarded"}
        ok.close()
        assert held(fleet)["guarded"] == []
        assert issubclass(NotAuthorisedError, bpfnb.fleet.cluster.FleetError)
    finally:
        guarded.terminate()
        guarded.wait(30)
