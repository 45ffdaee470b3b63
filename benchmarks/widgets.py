"""Cost of refreshing a live table of a 10,000-row map once per second.

Loads a hash map keyed like ``syscount`` (pid, syscall, comm), fills it with 10,000
rows from Python, then times, in this process's CPU time:

- ``df``: one ``Map.df()`` snapshot (the baseline: reading and decoding the map);
- ``refresh``: one ``LiveTable.refresh()`` and its HTML (``html.render``): snapshot,
  rates, top-N and HTML, what a refresh of a displayed table costs;
- ``thread``: a real refresher thread at ``interval=1`` for a few seconds, measured
  as the process's CPU time per second minus its idle CPU time per second.

Prints milliseconds per refresh, ratios against the baseline, and the share of one core
used at one refresh per second (target: under 5%). Needs root and a BPF kernel.
"""

from __future__ import annotations

import statistics
import sys
import time

import numpy as np

import bpfnb
from bpfnb.ui import html, views
from bpfnb.ui.dashboard import dashboard

ROWS = 10_000
SOURCE = r"""
struct key_t { u32 pid; bpfnb_syscall_t syscall; char comm[16]; };
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __type(key, struct key_t);
    __type(value, u64);
    __uint(max_entries, 16384);
} counts SEC(".maps");
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


def main() -> int:
    rng = np.random.default_rng(1)
    with bpfnb.load(SOURCE, name="benchwidgets", attach=False) as prog:
        m = prog.counts
        _fill(m, rng)
        assert len(m.df()) == ROWS
        df_ms = _cpu_ms(m.df, 15)
        view = views.LiveTable(m)
        view.refresh()

        def refresh_and_render() -> None:
            view.refresh()
            html.render(view)

        refresh_ms = _cpu_ms(refresh_and_render, 15)
        render_ms = _cpu_ms(lambda: html.render(view), 15)

        # the real thing: one refresher thread at 1 s
        dash = dashboard(prog, interval=1.0)
        seconds = 6.0
        start_cpu, start = time.process_time(), time.monotonic()
        while time.monotonic() - start < seconds:
            time.sleep(0.5)
        thread_cpu = time.process_time() - start_cpu
        wall = time.monotonic() - start
        dash.stop()

        # the same idle wait without a refresher: the process's own background CPU
        start_cpu, start = time.process_time(), time.monotonic()
        while time.monotonic() - start < 2.0:
            time.sleep(0.5)
        idle_cpu = (time.process_time() - start_cpu) / (time.monotonic() - start)

    core_share = 100 * (thread_cpu / wall - idle_cpu)
    print(f"map rows: {ROWS}")
    print(f"df() snapshot (baseline):   {df_ms:7.2f} ms CPU")
    print(f"LiveTable refresh + HTML:   {refresh_ms:7.2f} ms CPU  ({refresh_ms / df_ms:.2f}x df)")
    print(
        f"  of which HTML (top {view.top_n}):   {render_ms:7.2f} ms CPU  "
        f"({render_ms / df_ms:.2f}x df)"
    )
    print(f"one refresh per second:     {refresh_ms / 10:7.2f} % of one core (from refresh())")
    print(
        f"refresher thread, {wall:.0f} s:    {core_share:7.2f} % of one core (measured, "
        f"{dash.refresher.refreshes} refreshes)"
    )
    ok = core_share < 5.0 and refresh_ms / 10 < 5.0
    print("target < 5% of one core:", "met" if ok else "NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
