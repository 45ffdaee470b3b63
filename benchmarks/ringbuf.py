"""Ring buffer capacity: bpfnb vs the strongest C consumer vs BCC-python, saturated.

The producer outruns any consumer: a tracepoint on ``getpid`` emits K records per call
with ``bpf_loop`` into a 16 MiB ring, and C threads (``ringbuf_baseline produce``) call
getpid in a tight loop. Every reserve is counted in the kernel: ``offered`` (per-CPU
array) and the failures (bpfnb's ``bpfnb_drops``, read as ``ring.lost``), so for every
run ``received + lost == offered`` is checked exactly.

Rows: 32 B and 128 B records x 1 and 2 producer threads. Contenders, interleaved run by
run (median of ``--runs``):

* **bpfnb**: the ring's background consumer (default settings: ``max_rows`` 1,000,000);
* **C count**: ``ringbuf_baseline consume count``: maps the ring itself, walks the
  headers and counts (adaptive wake-ups, consumer position published per record);
* **C copy**: the same, copying each record into a touched 1,000,000-row array used as
  a ring (what keeping the newest rows costs at least);
* **BCC**: BCC-python's ``ring_buffer_poll`` with a Python callback per record, when
  ``python3-bpfcc`` and kernel headers are here (``benchmarks/setup-bcc.sh``).

Reported per contender: received events/s, lost events, delivered (received / offered:
what the consumer got of what the producer made, independent of how fast the producer
ran in that run), consumer CPU (% of one core and ns per received record). Then a full
16 MiB ring of 128 B records is drained into a DataFrame by bpfnb (``drain()`` +
``df()``) and raw-copied by C.

Goals (PASS/MISS, exit 1 on a miss): bpfnb receives >= 0.95x what C count receives in
every row, with 0 lost at 128 B x 2 producers.

Run as root: ``.venv/bin/python benchmarks/ringbuf.py [--seconds 2] [--runs 5]``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import bpfnb  # noqa: E402
from bpfnb.kernel import bpf as syscall  # noqa: E402
from bpfnb.kernel.streams import RingBuffer  # noqa: E402

RING_SIZE = 16 << 20
PER_CALL = 64  # records per getpid
COPY_ROWS = 1_000_000
GOAL_RATIO = 0.95
CONFIGS = [(32, 1), (32, 2), (128, 1), (128, 2)]

PROGRAM = r"""
struct event {
    u64 seq;
    u64 tid;
    u64 ts;
    u64 cpu;
#if EVENT_SIZE > 32
    u64 pad[(EVENT_SIZE - 32) / 8];
#endif
};

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, RING_SIZE);
} events SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __type(key, u32);
    __type(value, u32);
    __uint(max_entries, 16);
} targets SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __type(key, u32);
    __type(value, u64);
    __uint(max_entries, 1);
} offered SEC(".maps");

static long emit(u64 i, void *tid)
{
    struct event *e = bpf_ringbuf_reserve(&events, sizeof(struct event), 0);
    if (!e)
        return 0;
    e->seq = i;
    e->tid = *(u64 *)tid;
    e->ts = bpf_ktime_get_ns();
    e->cpu = bpf_get_smp_processor_id();
    bpf_ringbuf_submit(e, 0);
    return 0;
}

SEC("tracepoint/syscalls/sys_enter_getpid")
int on_getpid(void *ctx)
{
    u64 id = bpf_get_current_pid_tgid();
    u32 pid = id >> 32, zero = 0;
    u64 tid = (u32)id;
    if (!bpf_map_lookup_elem(&targets, &pid))
        return 0;
    bpf_loop(PER_CALL, emit, &tid, 0);
    u64 *n = bpf_map_lookup_elem(&offered, &zero);
    if (n)
        *n += PER_CALL;
    return 0;
}
"""

BCC_PROGRAM = r"""
struct event {
    u64 seq;
    u64 tid;
    u64 ts;
    u64 cpu;
#if EVENT_SIZE > 32
    u64 pad[(EVENT_SIZE - 32) / 8];
#endif
};
BPF_RINGBUF_OUTPUT(events, RING_PAGES);
BPF_HASH(targets, u32, u32, 16);
BPF_PERCPU_ARRAY(stats, u64, 2);   /* [0] offered, [1] lost */

TRACEPOINT_PROBE(syscalls, sys_enter_getpid)
{
    u64 id = bpf_get_current_pid_tgid();
    u32 pid = id >> 32;
    int zero = 0, one = 1;
    if (!targets.lookup(&pid))
        return 0;
    /* BCC cannot pass a callback to bpf_loop: the same records from a bounded loop */
    for (u64 i = 0; i < PER_CALL; i++) {
        struct event *e = events.ringbuf_reserve(sizeof(struct event));
        if (!e) {
            u64 *n = stats.lookup(&one);
            if (n) *n += 1;
            continue;
        }
        e->seq = i;
        e->tid = (u32)id;
        e->ts = bpf_ktime_get_ns();
        e->cpu = bpf_get_smp_processor_id();
        events.ringbuf_submit(e, 0);
    }
    u64 *n = stats.lookup(&zero);
    if (n) *n += PER_CALL;
    return 0;
}
"""

# A BCC-python server (system Python): compiles once, then runs commands from stdin.
BCC_SERVER = r"""
import ctypes as ct, resource, select, sys, time
from bcc import BPF
size, per_call, pages = sys.argv[1:4]
text = sys.stdin.readline().encode().decode("unicode_escape")
b = BPF(text=text, cflags=[f"-DEVENT_SIZE={size}", f"-DPER_CALL={per_call}",
                           f"-DRING_PAGES={pages}"])
count = [0]
def on_event(ctx, data, size):
    count[0] += 1
b["events"].open_ring_buffer(on_event)
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
def stats():
    s = b["stats"]
    return sum(s[0]), sum(s[1])
print("ready", flush=True)
for line in sys.stdin:
    cmd = line.split()
    if cmd[0] == "quit":
        break
    pid = int(cmd[1])
    b["targets"][ct.c_uint(pid)] = ct.c_uint(1)
    o0, l0 = stats()
    count[0] = 0
    if cmd[0] == "fill":
        print("ok", flush=True)
        sys.stdin.readline()
        t0 = time.perf_counter()
        b.ring_buffer_consume()
        t = time.perf_counter() - t0
        del b["targets"][ct.c_uint(pid)]
        print("received", count[0], "seconds", t, flush=True)
        continue
    c0 = cpu()
    print("ok", flush=True)
    while not select.select([sys.stdin], [], [], 0)[0]:
        b.ring_buffer_poll(50)
    sys.stdin.readline()
    b.ring_buffer_consume()
    del b["targets"][ct.c_uint(pid)]
    o1, l1 = stats()
    print("received", count[0], "lost", l1 - l0, "offered", o1 - o0, "cpu", cpu() - c0,
          flush=True)
"""


@dataclass
class Result:
    """One run of one contender."""

    received: int
    lost: int
    offered: int
    cpu: float  # consumer CPU seconds
    seconds: float  # producer time


def build_c(workdir: Path) -> Path:
    """Compile ringbuf_baseline.c with the system C compiler."""
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        raise SystemExit("no C compiler found (apt-get install gcc)")
    out = workdir / "ringbuf_baseline"
    subprocess.run(
        [cc, "-O2", "-pthread", "-o", str(out), str(HERE / "ringbuf_baseline.c")], check=True
    )
    return out


class Producer:
    """``ringbuf_baseline produce THREADS``: its pid is known before it calls getpid."""

    def __init__(self, exe: Path, threads: int) -> None:
        self.proc = subprocess.Popen(
            [str(exe), "produce", str(threads)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.pid = int(self.proc.stdout.readline())

    def run(self, seconds: float) -> int:
        """Call getpid for ``seconds`` from every thread; return the number of calls."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"{seconds}\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline().split()
        self.proc.wait()
        return int(line[1])


class Bench:
    """One loaded bpfnb program per record size, shared by the bpfnb and C runs."""

    def __init__(self, exe: Path, size: int) -> None:
        self.exe = exe
        self.size = size
        defines = {"RING_SIZE": str(RING_SIZE), "EVENT_SIZE": str(size), "PER_CALL": str(PER_CALL)}
        self.prog = bpfnb.load(PROGRAM, name=f"rb{size}", defines=defines)
        ring = self.prog.maps["events"]
        assert isinstance(ring, RingBuffer)
        self.ring = ring

    def offered(self) -> int:
        return int(self.prog.maps["offered"].sum(0))  # type: ignore[union-attr]

    def _produce(self, threads: int, seconds: float) -> None:
        producer = Producer(self.exe, threads)
        targets = self.prog.maps["targets"]
        targets[producer.pid] = 1  # type: ignore[index]
        try:
            producer.run(seconds)
        finally:
            del targets[producer.pid]  # type: ignore[attr-defined]

    def settle(self, timeout: float = 5.0) -> None:
        """Wait until bpfnb's consumer emptied the ring and counted what it drained."""
        deadline = time.monotonic() + timeout
        last = -1
        while time.monotonic() < deadline:
            if not self.ring.available() and self.ring.received == last:
                return
            last = self.ring.received
            time.sleep(0.05)

    def run_bpfnb(self, threads: int, seconds: float) -> Result:
        ring = self.ring
        ring.clear()
        self.settle()
        r0, l0, o0, c0 = ring.received, ring.lost, self.offered(), ring.consumer_cpu
        self._produce(threads, seconds)
        self.settle()
        return Result(
            ring.received - r0,
            ring.lost - l0,
            self.offered() - o0,
            ring.consumer_cpu - c0,
            seconds,
        )

    def run_c(self, mode: str, threads: int, seconds: float) -> Result:
        ring = self.ring
        ring.stop()
        try:
            ring.drain()
            ring.clear()
            l0, o0 = ring.lost, self.offered()
            map_id = syscall.map_info(ring.fd).id
            consumer = subprocess.Popen(
                [str(self.exe), "consume", str(map_id), mode, str(COPY_ROWS), str(self.size)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            assert consumer.stdin is not None and consumer.stdout is not None
            assert consumer.stdout.readline().strip() == "ready"
            self._produce(threads, seconds)
            consumer.stdin.write("stop\n")
            consumer.stdin.flush()
            out = consumer.stdout.readline().split()
            consumer.wait()
            return Result(int(out[1]), ring.lost - l0, self.offered() - o0, float(out[3]), seconds)
        finally:
            ring.start()

    def drain_bpfnb(self, repeat: int) -> tuple[int, float, float]:
        """Fill the ring with the consumer stopped; time drain() and df(); median of runs."""
        ring = self.ring
        ring.stop()
        runs: list[tuple[int, float, float]] = []
        try:
            for _ in range(repeat):
                ring.drain()
                ring.clear()
                self._produce(1, 0.3)
                t0 = time.perf_counter()
                n = ring.drain()
                t1 = time.perf_counter()
                frame = ring.df()
                t2 = time.perf_counter()
                assert len(frame) == n, (len(frame), n)
                runs.append((n, t1 - t0, t2 - t1))
        finally:
            ring.clear()
            ring.start()
        runs.sort(key=lambda r: r[1] + r[2])
        return runs[len(runs) // 2]

    def drain_c(self, repeat: int) -> tuple[int, float]:
        ring = self.ring
        ring.stop()
        runs: list[tuple[int, float]] = []
        try:
            for _ in range(repeat):
                ring.drain()
                self._produce(1, 0.3)
                map_id = syscall.map_info(ring.fd).id
                out = subprocess.run(
                    [str(self.exe), "drain", str(map_id), str(RING_SIZE // 8), str(self.size)],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout.split()
                runs.append((int(out[1]), float(out[3])))
        finally:
            ring.clear()
            ring.start()
        runs.sort(key=lambda r: r[1])
        return runs[len(runs) // 2]

    def close(self) -> None:
        self.prog.close()


class Bcc:
    """A BCC-python server process for one record size, or why BCC cannot run here."""

    def __init__(self, exe: Path, size: int) -> None:
        self.exe = exe
        self.proc: subprocess.Popen[str] | None = None
        self.why = ""
        python = Path("/usr/bin/python3")
        probe = subprocess.run([str(python), "-c", "import bcc"], capture_output=True)
        if probe.returncode != 0:
            self.why = "python3-bpfcc is not installed (benchmarks/setup-bcc.sh installs it)"
            return
        source = bcc_kernel_source()
        if source is None:
            self.why = "no kernel headers for BCC (benchmarks/setup-bcc.sh installs them)"
            return
        env = dict(os.environ, BCC_KERNEL_SOURCE=source)
        self.proc = subprocess.Popen(
            [str(python), "-c", BCC_SERVER, str(size), str(PER_CALL), str(RING_SIZE // 4096)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env=env,
        )  # fmt: skip
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(BCC_PROGRAM.encode("unicode_escape").decode() + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], 120)
        first = self.proc.stdout.readline().strip() if ready else ""
        if first != "ready":
            self.proc.kill()
            err = (self.proc.stderr.read() if self.proc.stderr else "").strip().splitlines()
            self.why = "BCC failed: " + (err[-1] if err else "no answer")
            self.proc = None

    def _send(self, line: str) -> list[str]:
        assert self.proc is not None and self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().split()

    def run(self, threads: int, seconds: float) -> Result:
        producer = Producer(self.exe, threads)
        assert self._send(f"run {producer.pid}") == ["ok"]
        producer.run(seconds)
        out = self._send("stop")
        return Result(int(out[1]), int(out[3]), int(out[5]), float(out[7]), seconds)

    def drain(self) -> tuple[int, float]:
        producer = Producer(self.exe, 1)
        assert self._send(f"fill {producer.pid}") == ["ok"]
        producer.run(0.3)
        out = self._send("drain")
        return int(out[1]), float(out[3])

    def close(self) -> None:
        if self.proc is not None:
            assert self.proc.stdin is not None
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
            self.proc.wait(timeout=30)


def bcc_kernel_source() -> str | None:
    """The merged kernel header tree of ``benchmarks/setup-bcc.sh`` (it installs nothing
    when all is there), or None."""
    run = subprocess.run(
        ["bash", str(HERE / "setup-bcc.sh")], capture_output=True, text=True, check=False
    )
    out = run.stdout.strip()
    return out or None


def machine() -> str:
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return (
        f"{platform.node()}: Linux {platform.release()}, {os.cpu_count()} CPUs ({cpu}), "
        f"{datetime.date.today().isoformat()}"
    )


def check_exact(name: str, r: Result) -> str:
    """'' when received + lost == offered, else the mismatch."""
    if r.received + r.lost == r.offered:
        return ""
    return f"  [{name}: received {r.received} + lost {r.lost} != offered {r.offered}]"


def run_one(name: str, bench: Bench, bcc: Bcc | None, threads: int, seconds: float) -> Result:
    """One run of one contender."""
    if name == "bpfnb":
        return bench.run_bpfnb(threads, seconds)
    if name == "BCC":
        assert bcc is not None
        return bcc.run(threads, seconds)
    return bench.run_c(name.split()[1], threads, seconds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="producer time per run")
    parser.add_argument("--runs", type=int, default=5, help="interleaved runs per row")
    parser.add_argument("--no-bcc", action="store_true", help="leave BCC out")
    parser.add_argument(
        "--rows", default="32x1,32x2,128x1,128x2", help="record sizes x producer threads"
    )
    args = parser.parse_args()
    configs = [tuple(int(v) for v in row.split("x")) for row in args.rows.split(",")]
    print(f"machine: {machine()}")
    print(
        f"ring {RING_SIZE >> 20} MiB, {PER_CALL} records per getpid (bpf_loop), "
        f"{args.seconds:.1f} s per run, median of {args.runs} interleaved runs"
    )
    goals: list[tuple[str, bool]] = []
    problems: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        exe = build_c(Path(tmp))
        benches: dict[int, Bench] = {}
        bccs: dict[int, Bcc] = {}
        try:
            for size in sorted({s for s, _ in configs} | {128}):
                benches[size] = Bench(exe, size)
                if not args.no_bcc:
                    bccs[size] = Bcc(exe, size)
            header = (
                f"{'row':<10} {'contender':<9} {'received/s':>11} {'lost':>10} "
                f"{'delivered':>9} {'consumer CPU':>12} {'ns/record':>9}"
            )
            print(header)
            for size, threads in configs:
                bench = benches[size]
                results: dict[str, list[Result]] = {}
                bcc = bccs.get(size)
                names = ["bpfnb", "C count", "C copy"]
                if bcc is not None and bcc.proc is not None:
                    names.append("BCC")
                for _ in range(args.runs):
                    for name in names:
                        r = run_one(name, bench, bcc, threads, args.seconds)
                        results.setdefault(name, []).append(r)
                        bad = check_exact(name, r)
                        if bad:
                            problems.append(f"{size} B x {threads}: {bad}")
                row = f"{size} B x {threads}"
                medians: dict[str, float] = {}
                lost: dict[str, int] = {}
                for name, rs in results.items():
                    rate = statistics.median(r.received / r.seconds for r in rs)
                    medians[name] = rate
                    lost[name] = int(statistics.median(r.lost for r in rs))
                    cpu = statistics.median(r.cpu / r.seconds for r in rs)
                    share = statistics.median(
                        r.received / r.offered if r.offered else 0 for r in rs
                    )
                    ns = statistics.median(
                        r.cpu / r.received * 1e9 if r.received else 0 for r in rs
                    )
                    print(
                        f"{row:<10} {name:<9} {rate / 1e6:9.2f} M {lost[name]:>10,} "
                        f"{100 * share:8.2f}% {100 * cpu:10.1f} % {ns:9.1f}"
                    )
                if bccs.get(size) is not None and bccs[size].proc is None:
                    print(f"{row:<10} {'BCC':<9} absent: {bccs[size].why}")
                ratio = medians["bpfnb"] / medians["C count"]
                goals.append(
                    (f"{row}: bpfnb / C count = {ratio:.3f} (goal >= {GOAL_RATIO})",
                     ratio >= GOAL_RATIO)
                )  # fmt: skip
                if (size, threads) == (128, 2):
                    goals.append(
                        (f"{row}: bpfnb lost {lost['bpfnb']:,} (goal 0; C count lost "
                         f"{lost['C count']:,})", lost["bpfnb"] == 0)
                    )  # fmt: skip
                if "BCC" in medians:
                    print(f"{row:<10} bpfnb / BCC = {medians['bpfnb'] / medians['BCC']:.1f}x")
            # drain of a full ring into a DataFrame
            bench = benches[128]
            n, t_drain, t_df = bench.drain_bpfnb(args.runs)
            c_n, c_t = bench.drain_c(args.runs)
            print(
                f"full ring drain, 128 B: bpfnb {n:,} records: drain {t_drain * 1e3:.1f} ms + "
                f"df() {t_df * 1e3:.1f} ms = {n / (t_drain + t_df) / 1e6:.1f} M rec/s; "
                f"C raw copy {c_n:,} in {c_t * 1e3:.1f} ms = {c_n / c_t / 1e6:.1f} M rec/s"
            )
            bcc = bccs.get(128)
            if bcc is not None and bcc.proc is not None:
                b_n, b_t = bcc.drain()
                print(
                    f"full ring drain, 128 B: BCC {b_n:,} records in {b_t * 1e3:.0f} ms "
                    f"= {b_n / b_t / 1e6:.2f} M rec/s (callback per record, no DataFrame)"
                )
        finally:
            for bench in benches.values():
                bench.close()
            for bcc in bccs.values():
                bcc.close()
    for problem in problems:
        print("COUNT MISMATCH", problem)
    for text, ok in goals:
        print(f"{'PASS' if ok else 'MISS'}  {text}")
    ok = all(ok for _, ok in goals) and not problems
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
