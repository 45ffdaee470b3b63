"""Live views on real programs: refresh thread, rates, dashboard controls, static fallback."""

from __future__ import annotations

import re
import subprocess
import time

import pytest

from bpfnb.build import templates
from bpfnb.ui import html, views, widgets
from bpfnb.ui.dashboard import dashboard

from conftest import refresh_threads, wait_until
from workload import Workload

COUNTER = r"""
const volatile u32 target_pid = 0;
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __type(key, u32);
    __type(value, u64);
    __uint(max_entries, 64);
} counts SEC(".maps");
BPFNB_HIST(sizes);

SEC("tracepoint/syscalls/sys_enter_getppid")
int count(void *ctx)
{
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    u64 one = 1, *n;
    if (pid != target_pid)
        return 0;
    n = bpf_map_lookup_elem(&counts, &pid);
    if (n)
        __sync_fetch_and_add(n, 1);
    else
        bpf_map_update_elem(&counts, &pid, &one, BPF_NOEXIST);
    bpfnb_hist_log2(&sizes, 3000);
    return 0;
}
"""


def test_dashboard_refreshes_in_the_background(clean_kernel: tuple[int, int, int]) -> None:
    import bpfnb

    with Workload() as w:
        prog = bpfnb.load(COUNTER, name="wtest", globals={"target_pid": w.pid})
        try:
            dash = dashboard(prog, interval=0.1)
            table = dash.views["counts"]
            chart = dash.views["sizes"]
            assert isinstance(table, views.LiveTable)
            assert isinstance(chart, views.HistogramChart)
            assert refresh_threads() == ["bpfnb-refresh-wtest"]
            # a second view of the same program shares the thread
            prog.counts.live(interval=0.1)
            assert refresh_threads() == ["bpfnb-refresh-wtest"]
            w.run("getppid", 300)
            # the main thread only sleeps: the refresher must pick the new counts up
            assert wait_until(lambda: table.total == 300), table.total
            row = table.frame[table.frame["key"] == w.pid]
            assert int(row["value"].iloc[0]) == 300 and "value/s" in table.frame.columns
            assert wait_until(lambda: int(chart.frame["count"].sum()) == 300)
            assert chart.frame["bucket"].tolist() == ["[2K, 4K)"]
            page = dash.html()
            assert 'data-total="300"' in page and "[2K, 4K)" in page and "bpfnb-bar" in page
            # pause freezes the views, resume moves them again
            dash.pause()
            frozen = table.refresh_count
            w.run("getppid", 10)
            time.sleep(0.4)
            assert table.refresh_count == frozen and table.total == 300
            dash.resume()
            assert wait_until(lambda: table.total == 310)
            # a rate appears once a key changed between two refreshes
            w.run("getppid", 50)
            assert wait_until(lambda: table.total == 360)
            rates = table.frame["value/s"].dropna()
            assert len(rates) == 1 and float(rates.iloc[0]) > 0
            # detach stops the counting; the maps stay readable
            dash.detach()
            assert not prog.attached
            w.run("getppid", 5)
            assert int(prog.counts[w.pid]) == 360  # detached: no more counting
            # stop unloads the program and ends the thread
            dash.stop()
            assert prog.closed and refresh_threads() == []
            assert 'data-state="stopped"' in html.render(dash.header)
        finally:
            prog.close()
    assert refresh_threads() == []


def test_thread_stops_when_program_closes(clean_kernel: tuple[int, int, int]) -> None:
    import bpfnb

    prog = bpfnb.load(COUNTER, name="wclose", globals={"target_pid": 1})
    dashboard(prog, interval=0.05)
    assert refresh_threads() == ["bpfnb-refresh-wclose"]
    prog.close()
    assert wait_until(lambda: refresh_threads() == [])


def test_sort_and_top_n(clean_kernel: tuple[int, int, int]) -> None:
    import bpfnb

    with bpfnb.load(templates.get_template("syscount").source, name="wsort") as prog:
        view = views.LiveTable(prog.counts, top_n=3)
        time.sleep(0.2)
        view.refresh()
        view.sort_by, view.descending = "value", True
        top = view.sorted_top()
        assert len(top) == 3
        assert top["value"].tolist() == sorted(view.frame["value"], reverse=True)[:3]
        view.descending = False
        assert view.sorted_top()["value"].tolist() == sorted(view.frame["value"])[:3]
        page = html.render(view)
        assert f'data-rows="{len(view.frame)}"' in page and page.count("<tr>") == 4


def test_event_tail_counts_received_and_lost(clean_kernel: tuple[int, int, int]) -> None:
    import bpfnb

    true = "/usr/bin/true"
    with bpfnb.load(templates.get_template("execsnoop").source, name="wtail") as prog:
        tail = views.EventTail(prog.events, rows=4)
        tail.refresh()
        before = tail.received
        for _ in range(6):
            subprocess.run([true], check=True)
        assert wait_until(lambda: (tail.refresh(), tail.received)[1] >= before + 6)
        page = html.render(tail)
        assert len(tail.frame) == 4 and "lost: 0" in page and page.count("<tr>") == 5
        assert re.search(r'data-received="\d+"', page)


def test_static_fallback_without_ipywidgets(
    clean_kernel: tuple[int, int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    import bpfnb

    monkeypatch.setattr(widgets, "_w", None)
    with Workload() as w, bpfnb.load(COUNTER, name="wstatic", globals={"target_pid": w.pid}) as p:
        w.run("getppid", 7)
        view = p.counts.live(interval=0.1)
        assert isinstance(view, html.StaticView)
        page = view._repr_html_()
        assert "<table" in page and 'data-total="7"' in page
        dash = dashboard(p, interval=0.1)
        assert dash.widget is None and "counts (hash)" in dash._repr_html_()
