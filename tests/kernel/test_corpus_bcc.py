"""BCC programs with ``%%bpf NAME --bcc``, a legacy-map cell and a cgroup-array filter.

``tests/data/bcc`` holds the BPF text of BCC tools and examples (license headers
kept): syscount, exitsnoop, tcpstates and ``softirqs -C`` from ``tools/``,
setuid_monitor from ``examples/tracing/``, each with the substitutions the tool makes
by default, and the map examples of seed 000 adapted only in their attach section
(uprobes on ``uprobe_target.c``, a program only the tests run). Each runs through the
``%%bpf`` magic and is checked against an exact count.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

import bpfnb
from bpfnb.kernel.cgroup_array import CgroupArrayMap

from conftest import DATA, wait_until
from shell import TestingShell
from workload import Workload

BCC = DATA / "bcc"


@contextlib.contextmanager
def cell(shell: TestingShell, name: str, text: str, options: str = "") -> Iterator[bpfnb.Program]:
    """Run ``text`` in a ``%%bpf NAME`` cell; stop the program afterwards."""
    shell.run(f"%%bpf {name} --no-display {options}\n{text}")
    prog = shell.user_ns[name]
    assert isinstance(prog, bpfnb.Program)
    try:
        yield prog
    finally:
        shell.run(f"%bpf stop {name}")


def events_where(stream: object, column: str, value: object, n: int = 1) -> pd.DataFrame:
    """Rows of a stream whose ``column`` is ``value``, waiting for ``n`` of them."""

    def mine() -> pd.DataFrame:
        df = stream.df()  # type: ignore[attr-defined]
        return df[df[column] == value] if len(df) else df

    wait_until(lambda: len(mine()) >= n)
    return mine()


def test_bcc_syscount_counts_exactly(
    clean_kernel: tuple[int, int, int], shell: TestingShell
) -> None:
    text = (BCC / "syscount.c").read_text()
    with Workload() as w, cell(shell, "bcc_syscount", text, f"--bcc -D FILTER_PID={w.pid}") as p:
        assert p.attach_points == ["tracepoint/raw_syscalls/sys_exit"]
        assert any("read as BCC C" in n for n in p.notes)
        w.run("getpid", 2345)
        counts = p.data.df().set_index("key")["value"]
        assert counts[39] == 2345


def test_bcc_is_detected_without_the_option(
    clean_kernel: tuple[int, int, int], shell: TestingShell
) -> None:
    text = (BCC / "syscount.c").read_text()
    with Workload() as w, cell(shell, "bcc_detected", text, f"-D FILTER_PID={w.pid}") as p:
        w.run("getpid", 17)
        assert p.data.df().set_index("key")["value"][39] == 17


def test_bcc_setuid_monitor_sees_the_uid(
    clean_kernel: tuple[int, int, int], shell: TestingShell
) -> None:
    text = (BCC / "setuid_monitor.c").read_text()
    uid = 4242
    with cell(shell, "bcc_setuid", text, "--bcc") as p:
        child = subprocess.run(
            [sys.executable, "-c", f"import os; os.setuid({uid}); print(os.getuid())"],
            capture_output=True,
            text=True,
            check=True,
        )
        assert child.stdout.strip() == str(uid)
        mine = events_where(p.events, "uid", uid)
        assert len(mine) == 1 and mine.iloc[0]["comm"].startswith("python")


def test_bcc_exitsnoop_reads_task_fields(
    clean_kernel: tuple[int, int, int], shell: TestingShell
) -> None:
    text = (BCC / "exitsnoop.c").read_text()
    with cell(shell, "bcc_exitsnoop", text, "--bcc") as p:
        assert any("BPF_CORE_READ" in n for n in p.notes)
        child = subprocess.Popen(["/bin/sh", "-c", "exit 3"])
        assert child.wait() == 3
        mine = events_where(p.events, "pid", child.pid)
        assert len(mine) == 1
        row = mine.iloc[0]
        assert row["ppid"] == os.getpid() and row["tid"] == child.pid
        assert row["exit_code"] == 3 and row["sig_info"] == 0 and row["task"] == "sh"


def test_bcc_tcpstates_sees_the_local_connection(
    clean_kernel: tuple[int, int, int], shell: TestingShell
) -> None:
    import socket

    text = (BCC / "tcpstates.c").read_text()
    with cell(shell, "bcc_tcpstates", text, "--bcc") as p:
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen()
        client = socket.create_connection(server.getsockname())
        conn, _ = server.accept()
        lport, dport = client.getsockname()[1], server.getsockname()[1]
        client.close()
        conn.close()
        server.close()

        def mine() -> pd.DataFrame:
            df = p.ipv4_events.df()
            return df[(df["lport"] == lport) & (df["dport"] == dport)]

        wait_until(lambda: len(mine()) >= 4)
        got = mine()
        pairs = list(zip(got["oldstate"], got["newstate"], strict=True))
        # SYN_SENT 2 -> ESTABLISHED 1 -> FIN_WAIT1 4 -> FIN_WAIT2 5 -> CLOSE 7
        assert pairs == [(2, 1), (1, 4), (4, 5), (5, 7)]


def _loopback_traffic(seconds: float) -> int:
    """Send UDP datagrams to ourselves over loopback for ``seconds``: NET_RX softirqs.

    A quiet machine may run only a few dozen softirqs a second; this gives the
    window softirqs of a known kind. Returns how many datagrams went through.
    """
    sent = 0
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx,
    ):
        rx.bind(("127.0.0.1", 0))
        rx.setblocking(False)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            tx.sendto(b"x", rx.getsockname())
            sent += 1
            with contextlib.suppress(BlockingIOError):
                rx.recv(16)
    return sent


def _proc_softirqs() -> dict[str, int]:
    lines = Path("/proc/softirqs").read_text().splitlines()[1:]
    return {ln.split(":")[0].strip(): sum(int(x) for x in ln.split(":")[1].split()) for ln in lines}


def test_bcc_softirqs_counts_match_proc(
    clean_kernel: tuple[int, int, int], shell: TestingShell
) -> None:
    text = (BCC / "softirqs_count.c").read_text()
    names = ["HI", "TIMER", "NET_TX", "NET_RX", "BLOCK", "IRQ_POLL", "TASKLET", "SCHED"]
    names += ["HRTIMER", "RCU"]

    def counts(p: bpfnb.Program) -> dict[int, int]:
        df = p.dist.df()
        return {int(v): int(c) for v, c in zip(df["vec"], df["value"], strict=True)}

    with cell(shell, "bcc_softirqs", text, "--bcc") as p:
        outer_before, a, inner_before = _proc_softirqs(), counts(p), _proc_softirqs()
        assert _loopback_traffic(1.0) > 100  # softirqs in the window even on a quiet machine
        inner_after, b, outer_after = _proc_softirqs(), counts(p), _proc_softirqs()
    total = 0
    slack = os.cpu_count() or 1
    for vec, name in enumerate(names):
        seen = b.get(vec, 0) - a.get(vec, 0)
        inner = inner_after[name] - inner_before[name]
        outer = outer_after[name] - outer_before[name]
        total += inner
        # /proc read just inside and just outside the window: the count lies between.
        low, high = inner - slack - inner // 20, outer + slack + outer // 20
        assert low <= seen <= high, (name, seen, inner, outer)
    assert total > 50


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The uprobe target program, compiled for this machine."""
    out = tmp_path_factory.mktemp("uprobe") / "uprobe_target"
    subprocess.run(["clang", "-O1", "-o", str(out), str(BCC / "uprobe_target.c")], check=True)
    return out


def test_seed_map_examples_count_exactly(
    clean_kernel: tuple[int, int, int], shell: TestingShell, target: Path
) -> None:
    text = (BCC / "seed_maps.c").read_text().replace("TARGET", str(target))
    path = f"/tmp/bpfnb-opened-{uuid.uuid4().hex}"
    n = 37
    with cell(shell, "seed_maps", text, "--bcc") as p:
        assert sorted(p.maps) == ["cpu_usage", "events", "process_map", "syscall_stats"]
        run = subprocess.run([str(target), str(n), path], capture_output=True, check=True)
        assert run.returncode == 0
        procs = p.process_map.df()
        mine = procs[procs["comm"] == "uprobe_target"]
        assert len(mine) == 1 and mine.iloc[0]["start_time"] > 0
        pid = int(mine.iloc[0]["key"])
        # a uprobe's pt_regs has orig_ax -1: every call counts under that key
        assert p.syscall_stats.df().set_index("key")["value"][2**32 - 1] == n
        used = p.cpu_usage.df()
        # update(&cpu, timestamp) passes the value itself: bpfnb passes its address
        assert (used["value"] > 0).sum() >= 1
        opened = events_where(p.events, "filename", path)
        assert len(opened) == 1 and opened.iloc[0]["pid"] == pid


LEGACY = """
struct bpf_map_def SEC("maps") counts = {
    .type = BPF_MAP_TYPE_HASH,
    .key_size = sizeof(u32),
    .value_size = sizeof(u64),
    .max_entries = 1024,
};
BPF_ANNOTATE_KV_PAIR(counts, u32, u64);

struct bpf_map_def raw = {
    .type = BPF_MAP_TYPE_ARRAY,
    .key_size = sizeof(int),
    .value_size = sizeof(int),
    .max_entries = 4,
} SEC("maps");

SEC("tracepoint/syscalls/sys_enter_getpid")
int count_getpid(void *ctx)
{
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    u64 one = 1, *n = bpf_map_lookup_elem(&counts, &pid);
    int zero = 0, *r;
    if (n)
        __sync_fetch_and_add(n, 1);
    else
        bpf_map_update_elem(&counts, &pid, &one, BPF_NOEXIST);
    r = bpf_map_lookup_elem(&raw, &zero);
    if (r)
        __sync_fetch_and_add(r, 1);
    return 0;
}
"""


def test_legacy_map_cell_counts_exactly(
    clean_kernel: tuple[int, int, int], shell: TestingShell
) -> None:
    with Workload() as w, cell(shell, "legacy", LEGACY) as p:
        assert any("legacy struct bpf_map_def" in n and "counts" in n for n in p.notes)
        w.run("getpid", 321)
        assert p.counts[w.pid] == 321  # typed by BPF_ANNOTATE_KV_PAIR
        assert p.counts.spec.key_size == 4 and p.counts.spec.value_size == 8
        first = p.raw.df()["value"].iloc[0]  # raw bytes of the declared size
        assert (
            isinstance(first, bytes) and len(first) == 4 and int.from_bytes(first, "little") >= 321
        )


CGROUP_FILTER = """
struct {
    __uint(type, BPF_MAP_TYPE_CGROUP_ARRAY);
    __type(key, u32);
    __type(value, u32);
    __uint(max_entries, 1);
} cgroup_map SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __type(key, u32);
    __type(value, u64);
    __uint(max_entries, 1024);
} counts SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_getpid")
int count_in_cgroup(void *ctx)
{
    if (!bpf_current_task_under_cgroup(&cgroup_map, 0))
        return 0;
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    u64 one = 1, *n = bpf_map_lookup_elem(&counts, &pid);
    if (n)
        __sync_fetch_and_add(n, 1);
    else
        bpf_map_update_elem(&counts, &pid, &one, BPF_NOEXIST);
    return 0;
}
"""


def _cgroup2_root() -> Path:
    for line in Path("/proc/self/mounts").read_text().splitlines():
        parts = line.split()
        if parts[2] == "cgroup2":
            return Path(parts[1])
    pytest.fail("no cgroup2 mount on this machine")


def test_cgroup_array_filter_counts_only_the_cgroup(
    clean_kernel: tuple[int, int, int], shell: TestingShell
) -> None:
    group = _cgroup2_root() / f"bpfnb-test-{uuid.uuid4().hex[:8]}"
    group.mkdir()
    try:
        with Workload() as inside, Workload() as outside:
            (group / "cgroup.procs").write_text(str(inside.pid))
            with cell(shell, "cgfilter", CGROUP_FILTER) as p:
                cgroups = p.cgroup_map
                assert isinstance(cgroups, CgroupArrayMap)
                cgroups[0] = str(group)
                assert cgroups[0] == str(group)
                frame = cgroups.df()
                assert frame.to_dict("records") == [
                    {"index": 0, "cgroup_id": group.stat().st_ino, "path": str(group)}
                ]
                inside.run("getpid", 55)
                outside.run("getpid", 66)
                counts = p.counts.df().set_index("key")["value"]
                assert counts.get(inside.pid) == 55
                assert outside.pid not in counts.index
                del cgroups[0]
                assert len(cgroups) == 0 and cgroups.df().empty
            root = _cgroup2_root()
            (root / "cgroup.procs").write_text(str(inside.pid))
    finally:
        group.rmdir()


MORE_MAPS = """
struct lpm_key { u32 prefixlen; u32 addr; };
BPF_ARRAY(inner, u64, 4);
BPF_ARRAY_OF_MAPS(outer, "inner", 2);
BPF_HASH_OF_MAPS(by_name, u32, "inner", 2);
BPF_QUEUE(queue, u64, 64);
BPF_STACK(stack, u64, 64);
BPF_LPM_TRIE(trie, struct lpm_key, u64, 16);
BPF_PROG_ARRAY(jumps, 2);
BPF_STACK_TRACE(stacks, 128);
BPF_RINGBUF_OUTPUT(ring, 1);
BPF_ARRAY(done, u64, 1);

TRACEPOINT_PROBE(syscalls, sys_enter_getppid)
{
    u64 v = bpf_get_current_pid_tgid() >> 32, got = 0;
    u32 zero = 0;
    queue.push(&v, 0);
    stack.push(&v, 0);
    queue.pop(&got);
    stack.peek(&got);
    int id = stacks.get_stackid(args, 0);
    u64 *slot = ring.ringbuf_reserve(sizeof(u64));
    if (slot) {
        *slot = v;
        ring.ringbuf_submit(slot, 0);
    }
    done.atomic_increment(zero);
    jumps.call(args, 1);
    return id < -1000;
}
"""


def test_bcc_map_kinds_load_and_work(
    clean_kernel: tuple[int, int, int], shell: TestingShell
) -> None:
    with Workload() as w, cell(shell, "bcc_maps", MORE_MAPS, "--bcc") as p:
        kinds = {name: m.kind for name, m in p.maps.items()}
        assert kinds == {
            "inner": "array",
            "outer": "array_of_maps",
            "by_name": "hash_of_maps",
            "queue": "queue",
            "stack": "stack",
            "trie": "lpm_trie",
            "jumps": "prog_array",
            "stacks": "stack_trace",
            "ring": "ringbuf",
            "done": "array",
        }
        before = p.done[0]
        w.run("getppid", 5)
        assert p.done[0] - before >= 5
        mine = events_where(p.ring, "value", w.pid, 5)
        assert len(mine) == 5


def test_bcc_kprobe_function_without_kprobes_is_a_clear_error(
    clean_kernel: tuple[int, int, int], shell: TestingShell
) -> None:
    from bpfnb.kernel import configure, system

    if system.kprobes_available() or configure.kind_problem("fentry") is None:
        pytest.skip("this kernel can attach kprobe__ functions")  # not on the test machine
    text = "int kprobe__do_nanosleep(struct pt_regs *ctx) { return 0; }\n"
    result = shell.run_cell(f"%%bpf bcc_kp --no-display\n{text}")
    assert isinstance(result.error_in_exec, bpfnb.KernelFeatureError)
    assert "needs kprobes" in str(result.error_in_exec)
    assert "CONFIG_KPROBES" in str(result.error_in_exec)
