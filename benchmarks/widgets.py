"""Whole-process CPU of a live dashboard: a 10,000-row table, an event tail, a histogram.

Loads one program with

- ``counts``: a hash map keyed like ``syscount`` (pid, syscall, comm) filled with 10,000
  rows from Python;
- ``events``: a ring buffer fed at about 100,000 events/s (a paced helper process calls
  getpid 1,000 times a second and the program submits 100 events per call);
- ``lat``: a log2 histogram (an mmapped array) the program fills at the same rate;

displays its dashboard (refreshing every second) and measures the CPU time of the
*whole* process (consumer thread, refresher, everything) per second of wall time, minus
the process's CPU when idle. Also prints the parts: one ``df()`` of the table, one
refresh + HTML of each view.

Goal (PASS/MISS, exit 1 on a miss): under 5% of one core. Needs root and a BPF kernel.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

import numpy as np

import bpfnb
from bpfnb.ui import html, views
from bpfnb.ui.dashboard import dashboard

ROWS = 10_000
PER_CALL = 100
CALLS_PER_SECOND = 1000
GOAL_PERCENT = 5.0
SOURCE = r"""
struct key_t { u32 pid; bpfnb_syscall_t syscall; char comm[16]; };
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __type(key, struct key_t);
    __type(value, u64);
    __uint(max_entries, 16384);
} counts SEC(".maps");

struct event { u64 seq; u32 pid; u32 cpu; u64 ts; };
BPFNB_EVENT_TYPE(events, struct event);
struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 1 << 22);
} events SEC(".maps");

BPFNB_HIST(lat);

const volatile u32 target = 0;

static long emit(u64 i, void *ctx)
{
    struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
    if (!e)
        return 0;
    u64 ts = bpf_ktime_get_ns();
    e->seq = i;
    e->pid = target;
    e->cpu = bpf_get_smp_processor_id();
    e->ts = ts;
    bpf_ringbuf_submit(e, 0);
    bpfnb_hist_log2(&lat, ts & 0xfffff);
    return 0;
}

SEC("tracepoint/syscalls/sys_enter_getpid")
int on_getpid(void *ctx)
{
    if ((bpf_get_current_pid_tgid() >> 32) != target)
        return 0;
    bpf_loop(PER_CALL, emit, NULL, 0);
    return 0;
}
"""

# A paced producer: CALLS_PER_SECOND getpid calls a second, in bursts every 10 ms.
PRODUCER = r"""
import ctypes, sys, time
libc = ctypes.CDLL(None)
rate, seconds = int(sys.argv[1]), float(sys.argv[2])
print(flush=True)
sys.stdin.readline()
start = time.monotonic()
done = 0
while (now := time.monotonic()) - start < seconds:
    due = int((now - start) * rate)
    while done < due:
        libc.syscall(39)
        done += 1
    time.sleep(0.01)
print(done, flush=True)
"""


def _fill(m: object, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    kdt = m.key_codec.dtype  # type: ignore[attr-defined]
    vdt = m.value_codec.dtype  # type: ignore[attr-defined]
    keys = np.zeros(ROWS, dtype=kdt)
    keys["pid"] = np.arange(ROWS) // 40 + 1000
    keys["syscall"] = np.arange(ROWS) % 40
    comm = np.array([f"proc{i // 40}".encode() for i in range(ROWS)], dtype="S16")
    keys["comm"] = (
        comm.view(np.uint8).reshape(ROWS, 16).view(keys["comm"].dtype).reshape(keys["comm"].shape)
    )
    values = np.zeros(ROWS, dtype=vdt)
    values.view(np.uint64)[:] = rng.integers(0, 1_000_000, ROWS, dtype=np.uint64)
    m.update_records(keys, values)  # type: ignore[attr-defined]
    return keys, values


def _cpu_ms(fn: object, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.process_time()
        fn()  # type: ignore[operator]
        times.append((time.process_time() - start) * 1000)
    return statistics.median(times)


def _process_share(seconds: float) -> float:
    """This process's CPU per wall second over ``seconds`` (a fraction of one core)."""
    cpu0, wall0 = time.process_time(), time.monotonic()
    while time.monotonic() - wall0 < seconds:
        time.sleep(0.25)
    return (time.process_time() - cpu0) / (time.monotonic() - wall0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    producer = subprocess.Popen(
        [sys.executable, "-c", PRODUCER, str(CALLS_PER_SECOND), str(args.seconds + 1)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert producer.stdin is not None and producer.stdout is not None
    producer.stdout.readline()
    defines = {"PER_CALL": str(PER_CALL)}
    with bpfnb.load(
        SOURCE, name="benchwidgets", defines=defines, globals={"target": producer.pid}
    ) as prog:
        m = prog.counts
        _fill(m, rng)
        assert len(m.df()) == ROWS
        assert prog.lat.mmapped  # type: ignore[union-attr]
        df_ms = _cpu_ms(m.df, 15)
        table = views.LiveTable(m)
        table.refresh()

        def refresh_and_render() -> None:
            table.refresh()
            html.render(table)

        refresh_ms = _cpu_ms(refresh_and_render, 15)
        hist = views.HistogramChart(prog.lat)  # type: ignore[arg-type]
        hist_ms = _cpu_ms(lambda: (hist.refresh(), html.render(hist)), 15)

        idle = _process_share(2.0)
        received0 = prog.events.received  # type: ignore[union-attr]
        dash = dashboard(prog, interval=1.0)
        producer.stdin.write("go\n")
        producer.stdin.flush()
        wall0 = time.monotonic()
        busy = _process_share(args.seconds)
        wall = time.monotonic() - wall0
        received = prog.events.received - received0  # type: ignore[union-attr]
        tail = views.EventTail(prog.events)  # type: ignore[arg-type]
        tail_ms = _cpu_ms(lambda: (tail.refresh(), html.render(tail)), 15)
        refreshes = dash.refresher.refreshes
        dash.stop()
        lost = prog.events.lost  # type: ignore[union-attr]
        consumer_cpu = prog.events.consumer_cpu  # type: ignore[union-attr]
    producer.wait()

    share = 100 * (busy - idle)
    print(f"table rows: {ROWS:,}; events: {received / wall:,.0f}/s received, {lost} lost")
    print(f"df() of the table:               {df_ms:7.2f} ms CPU")
    print(f"table refresh + HTML:            {refresh_ms:7.2f} ms CPU")
    print(f"histogram refresh + HTML:        {hist_ms:7.2f} ms CPU (mmapped array)")
    print(f"event tail refresh + HTML:       {tail_ms:7.2f} ms CPU")
    print(f"ring consumer thread:            {100 * consumer_cpu / wall:7.2f} % of one core")
    print(f"idle process:                    {100 * idle:7.2f} % of one core")
    print(
        f"whole process, {wall:.0f} s, {refreshes} refreshes: {share:7.2f} % of one core "
        "(minus idle)"
    )
    ok = share < GOAL_PERCENT
    print(
        f"{'PASS' if ok else 'MISS'}  whole process {share:.2f} % "
        f"(goal < {GOAL_PERCENT:.0f} % of one core)"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
