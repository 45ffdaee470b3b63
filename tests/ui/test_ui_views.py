"""The UI layer on real maps: kind -> view, per-CPU switch, widget controls, refreshers."""

from __future__ import annotations

import re

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

        # per CPU: one value column per CPU, and their sum, which rates, totals and sorts
        pcpu.set_per_cpu(True)
        cpu_cols = [c for c in pcpu.columns if re.fullmatch(r"value\[cpu\d+\]", c)]
        assert len(cpu_cols) >= 1 and {"value[sum]", "value[sum]/s"} <= set(pcpu.columns)
        assert not any(f"{c}/s" in pcpu.columns for c in cpu_cols)
        assert sum(int(pcpu.frame[c].sum()) for c in cpu_cols) == N
        assert int(pcpu.frame["value[sum]"].sum()) == N
        assert (pcpu.total_column, pcpu.total, pcpu.sort_column()) == (
            "value[sum]",
            N,
            "value[sum]",
        )
        pcpu.set_per_cpu(False)
        assert pcpu.columns == ["key", "value", "value/s"] and pcpu.total == N


def test_table_controls_call_the_view(clean_kernel: tuple[int, int, int]) -> None:
    import bpfnb

    with bpfnb.load(TABLE, name="uicontrols", attach=False) as prog:
        for key, value in {1: 30, 2: 10, 3: 20}.items():
            prog.counts[key] = value
        view = views.LiveTable(prog.counts)
        made = widgets.view_widget(view)
        box, c = made.box, made.controls
        sort, descending, rows, per_cpu = c["sort"], c["descending"], c["rows"], c["per_cpu"]
        body = box.children[1]  # the controls bar comes first
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
        rows.value = 2
        assert view.top_n == 2 and body.value.count("<tr>") == 3  # header + 2 rows
        assert body.value == html.render(view)
        # two pages of two rows: the next-page button shows the rest
        assert c["prev"].disabled and not c["next"].disabled
        c["next"].click()
        assert view.page == 1 and view.sorted_top()["key"].tolist() == [3]
        assert c["next"].disabled and not c["prev"].disabled
        c["prev"].click()
        # the sort choice survives a refresh with the same columns
        prog.counts[4] = 5
        view.refresh()
        assert sort.value == "key" and view.sorted_top()["key"].tolist() == [1, 2]
        assert 'data-rows="4"' in body.value
        # the widget output carries no HTML: the static snapshot is its own output
        bundle = box._repr_mimebundle_()
        assert "text/html" not in bundle
        assert bundle["text/plain"] == "<bpfnb table view 'counts (hash)'>"
        snap = box.snapshot.bundle()["text/html"]
        assert 'class="bpfnb-snapshot"' in snap and 'data-rows="4"' in snap


def test_dashboard_buttons(clean_kernel: tuple[int, int, int]) -> None:
    import bpfnb

    with (
        Workload() as w,
        bpfnb.load(EVERY_KIND, name="uibuttons", globals={"target_pid": w.pid}) as p,
    ):
        dash = dashboard(p, interval=0.05)
        assert dash.widget is not None and dash.controls is not None
        b = dash.controls.buttons
        names = ("pause", "detach", "attach", "stop")
        assert [b[k].description for k in names] == ["Pause view", "Detach", "Attach", "Stop"]
        assert b["attach"].disabled and not b["detach"].disabled  # running: Attach does nothing
        header = dash.widget.children[0]
        b["pause"].click()
        assert dash.refresher.paused and 'data-view="paused"' in header.value
        assert 'data-state="running"' in header.value and b["pause"].description == "Resume view"
        b["pause"].click()
        assert not dash.refresher.paused and "live, every 0.05 s" in header.value
        table = dash.views["counts"]
        assert isinstance(table, views.LiveTable)
        w.run("getppid", N)
        assert wait_until(lambda: table.total == N)
        # Detach: nothing counts, the maps stay readable, only Attach / Stop make sense
        b["detach"].click()
        assert not p.attached and 'data-state="detached"' in header.value
        assert b["detach"].disabled and not b["attach"].disabled
        w.run("getppid", 3)
        assert int(p.counts[w.pid]) == N
        b["attach"].click()
        assert p.attached and not b["detach"].disabled
        w.run("getppid", 2)
        assert wait_until(lambda: table.total == N + 2)
        # Stop unloads, as %bpf stop does; the views keep their last rows, without rates
        b["stop"].click()
        assert p.closed and dash.refresher.stopped and refresh_threads() == []
        assert all(button.disabled for button in b.values())
        assert 'data-state="stopped"' in header.value and "(not attached)" in header.value
        assert table.total == N + 2 and table.frame["value/s"].isna().all()


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
        shown = [v for v in dash.refresher.views if isinstance(v, views.View)]
        assert len(shown) == 1 + 5 + 2  # header, one per map, two live views
        assert table is not None and tail is not None
        dash.refresher.stop()
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
