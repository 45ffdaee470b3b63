"""Kernel tests of the map zoo, each with an exact answer.

Every map type is declared in a cell, filled by a real BPF program (counting the
getpid calls of a ``Workload`` helper, whose pid the programs read from a ``const
volatile`` global), read and written from Python:

- queue / stack: N pushes pop as 1..N / N..1; ``df()`` and ``len()`` leave them as is;
- bloom filter: the values the program added test present, 200 others absent;
- LPM trie: three prefixes answer ``longest_match`` exactly, in the kernel too;
- array / hash of maps, statically initialised as in seed 002: the inner values the C
  wrote; inner maps created from Python;
- program array with static ``.values``: a tail call chain counts 3 per call;
- task, cgroup and socket storage listed through bpfnb's BPF iterators, with their
  owners; inode storage from Python (no program type here may fill it);
- user ring buffer: records sent from Python are drained by the program exactly.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

import bpfnb
from bpfnb.errors import MapFullError, MapTypeError, UnsupportedOperationError
from bpfnb.kernel import bpf
from bpfnb.kernel.lpm import LpmTrieMap
from bpfnb.kernel.mapinmap import MapOfMaps, ProgArrayMap
from bpfnb.kernel.maps import ArrayMap, HashMap
from bpfnb.kernel.queues import BloomFilterMap, QueueEmptyError, QueueMap, StackMap
from bpfnb.kernel.storage import (
    CgroupStorageMap,
    InodeStorageMap,
    SocketStorageMap,
    TaskStorageMap,
    cgroup2_mount,
)
from bpfnb.kernel.user_ringbuf import UserRingBuffer, UserRingFullError

from conftest import wait_until
from workload import Workload
from zoo_programs import LPM, MAP_IN_MAP, QUEUES, STORAGE, TAIL_CALLS, USER_RING

# -- queues, stacks, bloom filters --------------------------------------------------------

N_PUSH = 50


@pytest.fixture
def workload(kernel: None) -> Iterator[Workload]:
    with Workload() as w:
        yield w


def test_queue_and_stack_pop_in_order(
    clean_kernel: tuple[int, int, int], workload: Workload
) -> None:
    with bpfnb.load(QUEUES, name="queues", globals={"target": workload.pid}) as prog:
        workload.run("getpid", N_PUSH)
        fifo, lifo = prog.fifo, prog.lifo
        assert isinstance(fifo, QueueMap) and isinstance(lifo, StackMap)
        expected = list(range(1, N_PUSH + 1))
        # df() and len() show the contents and leave them in place
        df = fifo.df()
        assert df["value"].tolist() == expected
        assert df["position"].tolist() == list(range(N_PUSH))
        assert len(fifo) == N_PUSH and fifo.values_list() == expected
        assert lifo.df()["value"].tolist() == expected[::-1]
        assert len(lifo) == N_PUSH
        assert fifo.peek() == 1 and lifo.peek() == N_PUSH
        # pop is explicit
        assert [fifo.pop() for _ in range(N_PUSH)] == expected
        with pytest.raises(QueueEmptyError, match="empty"):
            fifo.pop()
        assert fifo.pop(None) is None and fifo.peek(None) is None
        drained = lifo.drain()
        assert drained["value"].tolist() == expected[::-1]
        assert len(lifo) == 0 and lifo.drain().empty
        # pushed from Python, popped by Python; a full queue refuses or overwrites
        fifo.push(7)
        fifo.push(8)
        assert fifo.drain()["value"].tolist() == [7, 8]
        for i in range(256):
            fifo.push(i)
        with pytest.raises(MapFullError):
            fifo.push(999)
        fifo.push(999, overwrite=True)
        assert fifo.peek() == 1 and len(fifo) == 256
        fifo.clear()
        assert len(fifo) == 0
        with pytest.raises(UnsupportedOperationError, match="push"):
            fifo[0]


def test_bloom_filter_membership(clean_kernel: tuple[int, int, int], workload: Workload) -> None:
    with bpfnb.load(QUEUES, name="blooms", globals={"target": workload.pid}) as prog:
        workload.run("getpid", N_PUSH)
        seen = prog.seen
        assert isinstance(seen, BloomFilterMap) and seen.hashes == 5
        assert all(1000 + i in seen for i in range(1, N_PUSH + 1))
        assert not any(v in seen for v in range(5000, 5200))
        assert 77 not in seen
        seen.add(77)
        assert 77 in seen
        with pytest.raises(UnsupportedOperationError, match="cannot be listed"):
            seen.df()
        with pytest.raises(UnsupportedOperationError, match="cannot be listed"):
            len(seen)


# -- LPM tries -------------------------------------------------------------------------------


def test_lpm_trie_longest_match(clean_kernel: tuple[int, int, int], workload: Workload) -> None:
    with bpfnb.load(LPM, name="lpm", globals={"target": workload.pid}) as prog:
        routes = prog.routes
        assert isinstance(routes, LpmTrieMap) and routes.key_columns == ["prefix"]
        routes["10.0.0.0/8"] = 1
        routes["10.1.0.0/16"] = 2
        routes["10.1.2.0/24"] = 3
        workload.run("getpid", 1)
        # the kernel's own lookups, from the program
        assert prog.found[0] == 3 and prog.found[1] == 0
        assert routes.longest_match("10.1.2.3") == 3
        assert routes.longest_match("10.1.9.9") == 2
        assert routes.longest_match("10.200.0.1") == 1
        assert routes.longest_match("11.0.0.1") is None
        assert routes.longest_match("172.20.1.1") == 9  # the program's own prefix
        assert routes.longest_prefix("10.1.9.9") == "10.1.0.0/16"
        assert routes.longest_prefix("8.8.8.8") is None
        df = routes.df().sort_values("prefix").reset_index(drop=True)
        assert df.to_dict("list") == {
            "prefix": ["10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24", "172.16.0.0/12"],
            "value": [1, 2, 3, 9],
        }
        # host bits are cleared: the same prefix
        routes["10.1.2.77/24"] = 30
        assert len(routes) == 4 and routes["10.1.2.0/24"] == 30
        del routes["10.1.2.0/24"]
        assert routes.longest_match("10.1.2.3") == 2
        assert sorted(routes) == ["10.0.0.0/8", "10.1.0.0/16", "172.16.0.0/12"]
        with pytest.raises(MapTypeError, match="out of range"):
            routes["10.0.0.0/40"] = 1
        # IPv6 and a generic key
        empty = prog.routes6.df()
        assert empty.empty and empty.columns.tolist() == ["prefix", "value"]
        prog.routes6["2001:db8::/32"] = 7
        assert prog.routes6.longest_match("2001:db8::1") == 7
        assert prog.routes6.longest_match("2001:db9::1") is None
        assert prog.routes6.df()["prefix"].tolist() == ["2001:db8::/32"]
        prog.tags["0a0b/12"] = 5
        assert list(prog.tags) == ["0a00/12"]
        assert prog.tags.longest_match(bytes([0x0A, 0x05])) == 5
        assert prog.tags.longest_match(bytes([0x0B, 0x05])) is None


# -- maps of maps and program arrays ----------------------------------------------------------


def test_map_in_map_static_values(clean_kernel: tuple[int, int, int], workload: Workload) -> None:
    n, n2, n3 = 11, 7, 5
    with bpfnb.load(MAP_IN_MAP, name="mim", globals={"target": workload.pid}) as prog:
        outer = prog.outer
        assert isinstance(outer, MapOfMaps)
        inner_spec = prog.spec.maps["outer"].inner
        assert inner_spec is not None and inner_spec.kind == "array"
        assert inner_spec.max_entries == 4 and inner_spec.value_size == 8
        workload.run("getpid", n)
        first = outer[0]
        assert isinstance(first, ArrayMap)
        assert [first[i] for i in range(4)] == [n, 0, 0, 0]
        assert [outer[1][i] for i in range(4)] == [0, 2 * n, 0, 0]
        assert prog.inner_a[0] == n  # the same map, also seen as its own declaration
        with pytest.raises(KeyError):
            outer[2]
        df = outer.df()
        assert df.columns.tolist() == ["outer_key", "key", "value"]
        assert df.to_dict("list") == {
            "outer_key": [0, 0, 0, 0, 1, 1, 1, 1],
            "key": [0, 1, 2, 3] * 2,
            "value": [n, 0, 0, 0, 0, 2 * n, 0, 0],
        }
        # an inner map created from Python, stored in slot 2
        made = outer.create_inner()
        made[3] = 100
        outer[2] = made
        assert len(outer) == 3 and list(outer) == [0, 1, 2]
        workload.run("getpid", n2)
        assert outer[2][3] == 100 + 5 * n2
        assert outer[0][0] == n + n2
        del outer[2]
        assert len(outer) == 2
        # hash of maps keyed by pid
        per_pid = prog.by_pid
        inner = per_pid.create_inner()
        per_pid[workload.pid] = inner
        workload.run("getpid", n3)
        assert per_pid[workload.pid][0] == n3
        rows = per_pid.df()
        assert rows[rows["key"] == 0][["outer_key", "value"]].values.tolist() == [
            [workload.pid, n3]
        ]
        del per_pid[workload.pid]
        with pytest.raises(KeyError):
            per_pid[workload.pid]


def test_tail_call_chain_counts(clean_kernel: tuple[int, int, int], workload: Workload) -> None:
    n = 13
    with bpfnb.load(TAIL_CALLS, name="tails", globals={"target": workload.pid}) as prog:
        jumps = prog.jumps
        assert isinstance(jumps, ProgArrayMap)
        assert prog.attach_points == ["tracepoint/syscalls/sys_enter_getpid"]
        workload.run("getpid", n)
        assert prog.globals["hops"] == 3 * n
        df = jumps.df()
        assert df["slot"].tolist() == [0, 1, 2]
        assert df["program"].tolist() == ["step0", "step1", "step2"]
        ids = {name: row["id"] for name, row in prog.stats()["programs"].items()}
        assert df["id"].tolist() == [ids["step0"], ids["step1"], ids["step2"]]
        assert jumps[1] == "step1" and list(jumps) == [0, 1, 2]
        with pytest.raises(KeyError):
            jumps[3]
        del jumps[2]  # the chain now stops after step1
        workload.run("getpid", n)
        assert prog.globals["hops"] == 3 * n + 2 * n
        jumps[2] = "step2"
        workload.run("getpid", n)
        assert prog.globals["hops"] == 3 * n + 2 * n + 3 * n
        with pytest.raises(MapTypeError, match="no loaded program"):
            jumps[3] = "nope"


def _map_ids() -> set[int]:
    out = subprocess.run(
        ["bpftool", "-j", "map", "list"], capture_output=True, text=True, check=True
    )
    return {int(m["id"]) for m in json.loads(out.stdout or "[]")}


def test_a_closed_tail_call_chain_leaves_no_map_while_inspected(
    clean_kernel: tuple[int, int, int], workload: Workload
) -> None:
    """Listing maps by id right after the close (as bpftool does) does not keep the array."""
    prog = bpfnb.load(TAIL_CALLS, name="tails2", globals={"target": workload.pid})
    with prog:
        workload.run("getpid", 3)
        assert prog.globals["hops"] == 9
        jumps_id = bpf.map_info(prog.jumps.fd).id
    for _ in range(10):  # two listings in a row, again and again, while it is freed
        _map_ids()
        _map_ids()
    assert wait_until(lambda: jumps_id not in _map_ids(), 5)


# -- object-attached storage ------------------------------------------------------------------


@pytest.fixture
def cgroup(kernel: None) -> Iterator[Path]:
    """A fresh cgroup v2 folder (removed after the test)."""
    folder = cgroup2_mount() / f"bpfnb-test-{os.getpid()}"
    folder.mkdir()
    try:
        yield folder
    finally:
        folder.rmdir()


def test_task_and_cgroup_storage(clean_kernel: tuple[int, int, int], cgroup: Path) -> None:
    n, m = 17, 4
    with Workload() as workload:
        (cgroup / "cgroup.procs").write_text(str(workload.pid))
        with bpfnb.load(STORAGE, name="storage", globals={"target": workload.pid}) as prog:
            tasks, groups = prog.per_task, prog.per_cgroup
            assert isinstance(tasks, TaskStorageMap) and isinstance(groups, CgroupStorageMap)
            workload.run("getpid", n)
            df = tasks.df()
            assert df.columns.tolist() == ["tid", "pid", "comm", "value"]
            mine = df[df["pid"] == workload.pid]
            assert mine[["tid", "value"]].values.tolist() == [[workload.pid, n]]
            assert mine["comm"].iloc[0].startswith("python")
            assert tasks[workload.pid] == n
            tasks[workload.pid] = 1000
            workload.run("getpid", m)
            assert tasks[workload.pid] == 1000 + m
            del tasks[workload.pid]
            assert tasks.get(workload.pid) is None
            assert workload.pid not in tasks.df()["pid"].tolist()
            # the cgroup: only the workload lives in it
            name = "/" + cgroup.name
            rows = groups.df()
            assert rows.columns.tolist() == ["cgroup_id", "cgroup", "value"]
            got = rows[rows["cgroup"] == name]
            assert got["value"].tolist() == [n + m]
            assert got["cgroup_id"].tolist() == [cgroup.stat().st_ino]
            assert groups[name] == n + m and groups[str(cgroup)] == n + m
            groups[name] = 5
            assert groups[name] == 5
        (cgroup2_mount() / "cgroup.procs").write_text(str(workload.pid))


def test_socket_and_inode_storage(clean_kernel: tuple[int, int, int], tmp_path: Path) -> None:
    with bpfnb.load(STORAGE, name="sockets", globals={"target": 0}) as prog:
        sockets = prog.per_socket
        assert isinstance(sockets, SocketStorageMap)
        with socket.socket() as server, socket.socket() as client:
            server.bind(("127.0.0.1", 0))
            server.listen()
            client.connect(server.getsockname())
            conn, _ = server.accept()
            with conn:
                local = f"127.0.0.1:{client.getsockname()[1]}"
                df = sockets.df()
                row = df[df["local"] == local]
                # the value's "state" is named value.state next to the socket's own state
                columns = ["remote", "protocol", "state", "changes", "value.state"]
                assert row[columns].values.tolist() == [
                    [f"127.0.0.1:{server.getsockname()[1]}", "tcp", "ESTABLISHED", 2, 1]
                ]
                # CLOSE -> SYN_SENT -> ESTABLISHED (1)
                assert sockets[client] == {"changes": 2, "state": 1}
                assert row["ino"].iloc[0] == os.fstat(client.fileno()).st_ino
                sockets[client] = {"changes": 0, "state": 99}
                assert sockets[client.fileno()] == {"changes": 0, "state": 99}
                del sockets[client]
                assert sockets.get(client) is None
        # inode storage: filled from Python (only BPF LSM programs may use it)
        inodes = prog.per_inode
        assert isinstance(inodes, InodeStorageMap)
        path = tmp_path / "watched"
        path.write_text("x")
        inodes[str(path)] = 5
        assert inodes[str(path)] == 5
        with path.open() as f:
            assert inodes[f] == 5
        df = inodes.df()
        assert df.to_dict("list") == {
            "path": [str(path)],
            "ino": [path.stat().st_ino],
            "value": [5],
        }
        del inodes[str(path)]
        assert inodes.get(str(path)) is None and inodes.df().empty


# -- user ring buffers -------------------------------------------------------------------------


def test_user_ring_buffer_send(clean_kernel: tuple[int, int, int], workload: Workload) -> None:
    with bpfnb.load(USER_RING, name="uring", globals={"target": workload.pid}) as prog:
        ring = prog.requests
        assert isinstance(ring, UserRingBuffer)
        assert ring.send({"pid": 1, "weight": 2, "amount": 10}) == 1
        frame = pd.DataFrame({"pid": [1, 2, 3], "weight": [1, 2, 3], "amount": [100] * 3})
        assert ring.send(frame) == 3
        assert ring.send((4, 5, 6)) == 1
        workload.run("getpid", 1)
        assert prog.globals["drained"] == 5
        assert prog.globals["total"] == 20 + 600 + 30
        # records wait in the ring until the program drains them
        with pytest.raises(UserRingFullError, match="full"):
            for _ in range(1000):
                ring.send({"pid": 0, "weight": 1, "amount": 1})
        sent = ring.sent - 5
        workload.run("getpid", 1)
        assert prog.globals["drained"] == 5 + sent
        with pytest.raises(UnsupportedOperationError, match="send"):
            ring.df()


def test_kinds_and_views(kernel: None) -> None:
    """Each kind of the zoo gets its view class from the one dispatch."""
    with bpfnb.load(STORAGE, name="kinds", attach=False) as prog:
        assert {n: type(m).__name__ for n, m in prog.maps.items()} == {
            "per_task": "TaskStorageMap",
            "per_cgroup": "CgroupStorageMap",
            "per_socket": "SocketStorageMap",
            "per_inode": "InodeStorageMap",
        }
    with bpfnb.load(MAP_IN_MAP, name="kinds2", attach=False) as prog:
        assert isinstance(prog.inner_a, ArrayMap) and isinstance(prog.by_pid, MapOfMaps)
        assert not isinstance(prog.outer, HashMap)


def test_specs_of_zoo_declarations(kernel: None) -> None:
    """``__array(values, ...)``, ``map_extra`` and keyless maps as bpfnb reads them."""
    from bpfnb import pipeline

    mim = pipeline.build_only(MAP_IN_MAP, "spec_mim").spec.maps
    outer = mim["outer"]
    assert (outer.kind, outer.values, outer.value_size) == ("array_of_maps", "maps", 4)
    inner = outer.inner
    assert inner is not None
    assert (inner.kind, inner.key_size, inner.value_size, inner.max_entries) == ("array", 4, 8, 4)
    assert mim["by_pid"].kind == "hash_of_maps" and mim["by_pid"].inner is not None
    jumps = pipeline.build_only(TAIL_CALLS, "spec_tails").spec.maps["jumps"]
    assert (jumps.kind, jumps.values, jumps.inner, jumps.value_size) == (
        "prog_array",
        "programs",
        None,
        4,
    )
    queues = pipeline.build_only(QUEUES, "spec_queues").spec.maps
    assert (queues["seen"].kind, queues["seen"].map_extra) == ("bloom_filter", 5)
    assert (queues["fifo"].kind, queues["fifo"].key_size, queues["fifo"].value_size) == (
        "queue",
        0,
        4,
    )
