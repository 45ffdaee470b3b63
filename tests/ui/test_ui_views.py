"""The UI layer on real maps: kind -> view, per-CPU switch, widget controls, refreshers."""

from __future__ import annotations

from typing import Any

import pytest

from bpfnb.ui import html, refresh, sources, views, widgets
from bpfnb.ui.dashboard import dashboard, live_view

from conftest import refresh_threads, wait_until
from workload import Workload

N = 25

EVERY_KIND = r"""
struct event { u32 pid; u64 seq; };
const volatile u32 target_pid = 0;
u64 seq;

BPF_HASH(counts, u32, u64, 64);
BPF_PERCPU_ARRAY(pcpu, u64, 1);
BPFNB_HIST(sizes);

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 1 << 16);
} ring SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
    __uint(key_size, sizeof(u32));
    __uint(value_size, sizeof(u32));
} perf SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_getppid")
int on_getppid(void *ctx)
{
    u32 pid = bpf_get_current_pid_tgid() >> 32, zero = 0;
    u64 one = 1, *n;
    struct event e = {};
    if (pid != target_pid)
        return 0;
    n = bpf_map_lookup_elem(&counts, &pid);
    if (n)
        __sync_fetch_and_add(n, 1);
    else
        bpf_map_update_elem(&counts, &pid, &one, BPF_NOEXIST);
    n = bpf_map_lookup_elem(&pcpu, &zero);
    if (n)
        *n += 1;
    bpfnb_hist_log2(&sizes, 3000);
    e.pid = pid;
    e.seq = __sync_fetch_and_add(&seq, 1);
    bpf_ringbuf_output(&ring, &e, sizeof(e), 0);
    bpf_perf_event_output(ctx, &perf, BPF_F_CURRENT_CPU, &e, sizeof(e));
    return 0;
}
"""

TABLE = r"""
BPF_HASH(counts, u32, u64, 64);
"""


def test_views_follow_map_kinds(clean_kernel: tuple[int, int, int]) -> None:
    import bpfnb

    with (
        Workload() as w,
        bpfnb.load(EVERY_KIND, name="uikinds", globals={"target_pid": w.pid}) as prog,
    ):
        w.run("getppid", N)
        maps = prog.maps
        # every map knows its program and offers what its view reads
        assert all(m.owner is prog for m in maps.values())
        assert all(isinstance(m, sources.MapSource) for m in maps.values())
        built = {name: views.view_for(m) for name, m in maps.items()}
        assert {name: type(v) for name, v in built.items()} == {
            "counts": views.LiveTable,
            "pcpu": views.LiveTable,
            "sizes": views.HistogramChart,
            "ring": views.EventTail,
            "perf": views.EventTail,
        }
        counts, pcpu = built["counts"], built["pcpu"]
        assert isinstance(counts, views.LiveTable) and isinstance(pcpu, views.LiveTable)
        assert not counts.can_per_cpu and pcpu.can_per_cpu
        ring, perf = built["ring"], built["perf"]
        assert isinstance(ring, views.EventTail) and isinstance(perf, views.EventTail)
        assert wait_until(lambda: maps["ring"].received == N and maps["perf"].received == N)
        for view in built.values():
            view.refresh()
            assert view.error is None, view.error
        assert counts.total == N and pcpu.total == N
        assert counts.frame["key"].tolist() == [w.pid]
        chart = built["sizes"]
        assert isinstance(chart, views.HistogramChart)
        assert chart.total == N and chart.frame["bucket"].tolist() == ["[2K, 4K)"]
        for tail in (ring, perf):
            assert tail.received == N and tail.lost == 0
            assert tail.frame["seq"].tolist()[:3] == [N - 1, N - 2, N - 3]  # newest first
            assert tail.frame["pid"].tolist() == [w.pid] * tail.rows
            page = html.render(tail)
            assert f'data-received="{N}"' in page and 'data-lost="0"' in page
        assert f'data-total="{N}"' in html.render(counts)
        assert f'data-total="{N}"' in html.render(chart)

        # per CPU: one value column per CPU; they add up to the calls made
        pcpu.set_per_cpu(True)
        cpu_cols = [c for c in pcpu.columns if c.startswith("value[cpu") and not c.endswith("/s")]
        assert len(cpu_cols) >= 1 and f"{cpu_cols[0]}/s" in pcpu.columns
        assert sum(int(pcpu.frame[c].sum()) for c in cpu_cols) == N
        pcpu.set_per_cpu(False)
        assert pcpu.columns == ["key", "value", "value/s"] and pcpu.total == N


def _controls(box: Any) -> tuple[Any, Any, Any, Any, Any]:
    """Sort dropdown, descending, top, per-CPU checkbox and HTML body of a table box."""
    controls, body = box.children
    sort, descending, top, per_cpu = controls.children
    return sort, descending, top, per_cpu, body


def test_table_controls_call_the_view(clean_kernel: tuple[int, int, int]) -> None:
    import bpfnb

    with bpfnb.load(TABLE, name="uicontrols", attach=False) as prog:
        for key, value in {1: 30, 2: 10, 3: 20}.items():
            prog.counts[key] = value
        view = views.LiveTable(prog.counts)
        box = widgets.view_widget(view)
        sort, descending, top, per_cpu, body = _controls(box)
        assert per_cpu.layout.display == "none"  # a hash map has no per-CPU values
        assert [o[1] for o in sort.options] == [""]
        view.refresh()
        # the sort choices follow the table's columns; the body follows the view
        assert [o[1] for o in sort.options] == ["", "key", "value", "value/s"]
        assert body.value == html.render(view) and 'data-total="60"' in body.value
        assert view.sorted_top()["key"].tolist() == [1, 3, 2]  # by value, descending
        sort.value = "key"
        descending.value = False
        assert (view.sort_by, view.descending) == ("key", False)
        assert view.sorted_top()["key"].tolist() == [1, 2, 3]
        top.value = 2
        assert view.top_n == 2 and body.value.count("<tr>") == 3  # header + 2 rows
        assert body.value == html.render(view)
        # the sort choice survives a refresh with the same columns
        prog.counts[4] = 5
        view.refresh()
        assert sort.value == "key" and view.sorted_top()["key"].tolist() == [1, 2]
        assert 'data-rows="4"' in body.value
        # nbconvert and widget-less frontends get the static snapshot
        bundle = box._repr_mimebundle_()
        assert bundle["text/html"] == html.render(view)
        assert bundle["text/plain"] == "<bpfnb table view 'counts (hash)'>"


def test_dashboard_buttons(clean_kernel: tuple[int, int, int]) -> None:
    import bpfnb

    with (
        Workload() as w,
        bpfnb.load(EVERY_KIND, name="uibuttons", globals={"target_pid": w.pid}) as p,
    ):
        dash = dashboard(p, interval=0.05)
        assert dash.widget is not None
        pause, resume, stop = dash.widget.children[1].children
        assert [b.description for b in (pause, resume, stop)] == ["Pause", "Resume", "Stop"]
        header = dash.widget.children[0]
        pause.click()
        assert dash.refresher.paused and 'data-state="paused"' in header.value
        resume.click()
        assert not dash.refresher.paused and "refreshing every 0.05 s" in header.value
        table = dash.views["counts"]
        assert isinstance(table, views.LiveTable)
        w.run("getppid", N)
        assert wait_until(lambda: table.total == N)
        stop.click()
        assert not p.attached and dash.refresher.stopped and refresh_threads() == []
        assert all(b.disabled for b in (pause, resume, stop))
        assert 'data-state="stopped"' in header.value and "detached" in header.value
        assert "(not attached)" in header.value
        w.run("getppid", 3)  # detached: nothing counts any more, the table keeps its rows
        assert int(p.counts[w.pid]) == N and table.total == N


def test_one_refresher_per_program(clean_kernel: tuple[int, int, int]) -> None:
    import bpfnb

    prog = bpfnb.load(EVERY_KIND, name="uiowner", globals={"target_pid": 1})
    try:
        dash = dashboard(prog, interval=0.2)
        # Map.live() finds the program's refresher through the map's owner
        table = prog.counts.live()
        tail = prog.ring.live(interval=0.1)
        assert refresh_threads() == ["bpfnb-refresh-uiowner"]
        assert refresh.refresher_for(prog) is dash.refresher
        assert dash.refresher.interval == 0.1  # the last interval asked for wins
        assert len(dash.refresher.views) == 1 + 5 + 2  # header, one per map, two live views
        assert table is not None and tail is not None
        dash.stop()
        assert refresh_threads() == []
        # asked again while the program is open: a new refresher, a new thread
        live_view(prog.maps["sizes"])
        assert refresh.refresher_for(prog) is not dash.refresher
        assert refresh_threads() == ["bpfnb-refresh-uiowner"]
    finally:
        prog.close()
    assert wait_until(lambda: refresh_threads() == [])


def test_failed_read_is_shown(clean_kernel: tuple[int, int, int]) -> None:
    import bpfnb

    prog = bpfnb.load(TABLE, name="uifail", attach=False)
    prog.counts[7] = 70
    view = views.LiveTable(prog.counts)
    view.refresh()
    assert view.error is None and view.total == 70
    prog.close()
    view.refresh()  # the map is gone: the view keeps its rows and says why it is stale
    assert view.error is not None and "closed" in view.error
    page = html.render(view)
    assert "refresh failed: ClosedError" in page and 'data-total="70"' in page
    view.finish()
    assert html.render(view).endswith('<div class="bpfnb-foot">(stopped)</div></div>')


def test_static_views_without_ipywidgets(
    clean_kernel: tuple[int, int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    import bpfnb

    monkeypatch.setattr(widgets, "_w", None)
    with (
        Workload() as w,
        bpfnb.load(EVERY_KIND, name="uistatic", globals={"target_pid": w.pid}) as p,
    ):
        w.run("getppid", N)
        assert wait_until(lambda: p.ring.received == N)
        shown = p.ring.live(interval=0.1)
        assert isinstance(shown, html.StaticView)
        assert f'data-received="{N}"' in shown._repr_html_()
        dash = dashboard(p, interval=0.1)
        page = dash._repr_html_()
        assert dash.widget is None and page.count('class="bpfnb-view ') == 6
        assert f'data-total="{N}"' in page and "pcpu (percpu_array)" in page
