"""What a demanding user sees in a dashboard, on real maps with known numbers.

Counters only get totals and rates; full maps say so; helper maps collapse; units and
percentiles in histograms; the event tail's filter and rows; ``history()``; Export
CSV; ``%bpf top`` / ``%bpf list``; a failed re-run keeps the old version in sight.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from bpfnb.ui import dashboard as dashboard_module
from bpfnb.ui import html, refresh, views, widgets
from bpfnb.ui.dashboard import dashboard

from conftest import kernel_prog_ids, refresh_threads, wait_until
from programs import GETPID_COUNTER, SYNTAX_ERROR
from shell import TestingShell
from workload import Workload

FILLS = r"""
const volatile u32 target_pid = 0;
u64 seq;
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __type(key, u64);
    __type(value, u64);
    __uint(max_entries, 16);
} seen SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_getppid")
int fill(void *ctx)
{
    u64 one = 1, k;
    if ((bpf_get_current_pid_tgid() >> 32) != target_pid)
        return 0;
    k = __sync_fetch_and_add(&seq, 1);
    bpf_map_update_elem(&seen, &k, &one, BPF_NOEXIST);
    return 0;
}
"""

ROLES = r"""
const volatile u32 target_pid = 0;
struct pid_stat {
    bpfnb_ktime_t last;
    u32 flags;
    u64 count;
    bpfnb_ns_t busy;
};
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __type(key, u32);
    __type(value, struct pid_stat);
    __uint(max_entries, 64);
} per_pid SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __type(key, u32);
    __type(value, u64);
    __uint(max_entries, 64);
} start SEC(".maps");
BPFNB_HIDDEN(start);

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __type(key, u32);
    __type(value, bpfnb_ktime_t);
    __uint(max_entries, 64);
} last_seen SEC(".maps");

BPFNB_HIST(lat);
BPFNB_UNIT(lat, bpfnb_ns_t);

SEC("tracepoint/syscalls/sys_enter_getppid")
int count(void *ctx)
{
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    u64 now = bpf_ktime_get_ns();
    struct pid_stat fresh = {}, *s;
    if (pid != target_pid)
        return 0;
    bpf_map_update_elem(&start, &pid, &now, BPF_ANY);
    bpf_map_update_elem(&last_seen, &pid, &now, BPF_ANY);
    s = bpf_map_lookup_elem(&per_pid, &pid);
    if (!s) {
        bpf_map_update_elem(&per_pid, &pid, &fresh, BPF_NOEXIST);
        s = bpf_map_lookup_elem(&per_pid, &pid);
        if (!s)
            return 0;
    }
    s->last = now;
    s->flags |= 0x41;
    __sync_fetch_and_add(&s->count, 1);
    __sync_fetch_and_add(&s->busy, 1000);
    bpfnb_hist_log2(&lat, 3000);
    return 0;
}
"""

EVENTS = r"""
struct event { bpfnb_ktime_t ts; u32 pid; u32 seq; char comm[16]; };
u32 seq;
struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 1 << 20);
} events SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_getppid")
int on_getppid(void *ctx)
{
    struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
    if (!e)
        return 0;
    e->ts = bpf_ktime_get_ns();
    e->pid = bpf_get_current_pid_tgid() >> 32;
    e->seq = __sync_fetch_and_add(&seq, 1);
    bpf_get_current_comm(e->comm, sizeof(e->comm));
    bpf_ringbuf_submit(e, 0);
    return 0;
}
"""


def test_full_map_says_so(clean_kernel: tuple[int, int, int]) -> None:
    import bpfnb

    with Workload() as w, bpfnb.load(FILLS, name="fills", globals={"target_pid": w.pid}) as p:
        view = views.LiveTable(p.seen)
        view.refresh()
        assert (view.rows, view.max_entries, view.full) == (0, 16, False)
        w.run("getppid", 40)  # 40 new keys into 16 entries
        view.refresh()
        assert (view.rows, view.full) == (16, True)
        assert p.seen.dropped == 24 and view.dropped == 24  # counted in the kernel
        page = html.render(view)
        assert 'data-rows="16" data-max="16" data-full="1" data-dropped="24"' in page
        assert "rows: 16 / 16 max_entries" in page and "map full: new keys are dropped" in page
        assert "24 updates dropped: map full" in page


def test_lru_map_at_capacity_says_it_evicts(clean_kernel: tuple[int, int, int]) -> None:
    import bpfnb

    with bpfnb.load("BPF_LRU_HASH(recent, u32, u64, 16);", name="lru", attach=False) as p:
        view = views.LiveTable(p.recent)
        for key in range(40):
            p.recent[key] = key
        view.refresh()
        assert (view.rows, view.evicting, view.full) == (16, True, False)
        page = html.render(view)
        assert "at capacity: the least recently used keys are evicted" in page
        assert "map full" not in page  # an LRU map drops nothing


def test_totals_and_rates_only_for_counters(clean_kernel: tuple[int, int, int]) -> None:
    import bpfnb

    with Workload() as w, bpfnb.load(ROLES, name="roles", globals={"target_pid": w.pid}) as p:
        view = views.LiveTable(p.per_pid)
        view.refresh()
        w.run("getppid", 10)
        view.refresh()
        w.run("getppid", 30)
        view.refresh()
        # counters and durations get rates and totals; the timestamp and flags do not
        assert view.rate_columns == ["count/s", "busy/s"]
        assert view.totals == {"count": 40.0, "busy": 40_000.0}
        assert view.total_column == "count" and view.total == 40
        seconds = view._rates.seconds
        row = view.frame.iloc[0]
        assert row["count/s"] == pytest.approx(30 / seconds)
        assert row["busy/s"] == pytest.approx(30_000 / seconds)
        page = html.render(view)
        assert "total count: 40" in page and "total busy: 40.0 µs" in page
        assert "total last" not in page and "total flags" not in page
        assert "0x41" in page  # a bitmask no decoder named: hex
        # the map's history: one row per refresh where the key's counter moved
        history = p.per_pid.history()
        assert list(history.columns) == ["time", "key", "count", "busy", "count/s", "busy/s"]
        assert history["count"].tolist() == [10, 40] and history["key"].tolist() == [w.pid] * 2
        assert history["time"].is_monotonic_increasing


def test_helper_maps_collapse_until_shown(clean_kernel: tuple[int, int, int]) -> None:
    import bpfnb

    with Workload() as w, bpfnb.load(ROLES, name="helpers", globals={"target_pid": w.pid}) as p:
        w.run("getppid", 5)
        dash = dashboard(p, interval=0.05)
        try:
            # marked BPFNB_HIDDEN(start); last_seen holds only timestamps
            assert dash.helpers == ["start", "last_seen"]
            start = dash.views["start"]
            assert isinstance(start, views.LiveTable)
            assert start.marked_hidden and start.helper
            assert not dash.views["per_pid"].helper  # type: ignore[attr-defined]
            assert dash.controls is not None and dash.controls.helpers_toggle is not None
            assert dash.controls.helpers.layout.display == "none"
            assert wait_until(lambda: dash.views["per_pid"].refresh_count > 2)
            assert start.refresh_count == 0  # hidden maps are not read
            assert "2 helper map(s) not shown" in dash.snapshot_html()
            dash.controls.helpers_toggle.value = True  # "show all maps"
            assert dash.helpers_shown and dash.controls.helpers.layout.display == ""
            assert wait_until(lambda: start.refresh_count > 2)
            assert start.frame["key"].tolist() == [w.pid]
            assert "helper map" in html.render(start)
        finally:
            dash.stop()


def test_histogram_units_and_percentiles(clean_kernel: tuple[int, int, int]) -> None:
    import bpfnb

    with Workload() as w, bpfnb.load(ROLES, name="hunits", globals={"target_pid": w.pid}) as p:
        chart = views.view_for(p.lat)
        assert isinstance(chart, views.HistogramChart)
        chart.refresh()
        w.run("getppid", 50)
        chart.refresh()
        assert chart.unit == "ns"  # from BPFNB_UNIT(lat, bpfnb_ns_t)
        assert chart.labels() == ["[2.05 µs, 4.10 µs)"]
        s = chart.summary
        assert s.count == 50 and s.p50 == pytest.approx(2048 + 1024)
        page = html.render(chart)
        assert "count: 50 · mean ≈ 3.07 µs · p50 ≈ 3.07 µs" in page
        # the values each refresh added, per bucket: the heatmap's matrix
        _, slots, _, counts = chart.history.matrix()
        assert slots == [12] and counts.tolist() == [[50]]
        static = html.render(chart, static=True)
        assert 'class="bpfnb-heatmap" data-cells="1"' in static


def test_event_tail_filter_rows_and_time(clean_kernel: tuple[int, int, int]) -> None:
    import bpfnb

    with Workload() as w, bpfnb.load(EVENTS, name="tailf") as p:
        tail = views.EventTail(p.events, rows=5)
        assert tail.time_column == "ts"  # the event's own time, not the batch's
        w.run("getppid", 7)
        assert wait_until(lambda: (tail.refresh(), tail.received)[1] >= 7)
        assert list(tail.frame.columns)[:2] == ["ts", "pid"]
        assert "received_at" not in tail.frame.columns and len(tail.frame) == 5
        page = html.render(tail)
        assert re.search(r"<td>\d\d:\d\d:\d\d\.\d{3}</td>", page)  # HH:MM:SS.mmm
        # the filter finds our events among everything else getppid'ing on the machine
        tail.set_filter(f"pid == {w.pid}")
        tail.set_rows(50)
        assert tail.frame["pid"].tolist() == [w.pid] * 7
        w.run("getppid", 4)
        assert wait_until(lambda: (tail.refresh(), len(tail.frame))[1] == 11)
        seqs = tail.frame["seq"].tolist()
        assert seqs == sorted(seqs, reverse=True)  # newest first
        assert f"filter <code>pid == {w.pid}</code>: 11 shown" in html.render(tail)
        tail.set_filter("comm ~ python and seq >= 0")
        assert tail.error is None
        with pytest.raises(bpfnb.BpfnbError, match="value is missing"):
            tail.set_filter("pid ==")


def test_export_csv_writes_the_view(
    clean_kernel: tuple[int, int, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bpfnb

    monkeypatch.setenv(widgets.EXPORT_DIR_ENV, str(tmp_path))
    with bpfnb.load(GETPID_COUNTER, name="exportui", attach=False) as p:
        for key in range(30):
            p.counts[key] = key * 10
        view = views.LiveTable(p.counts)
        view.refresh()
        made = widgets.view_widget(view, name="exportui-counts")
        made.export.click()
        written = list(tmp_path.glob("exportui-counts-*.csv"))
        assert len(written) == 1
        frame = pd.read_csv(written[0])
        assert len(frame) == 30 and frame["value"].tolist() == sorted(frame["value"], reverse=True)
        assert f"wrote 30 rows to {written[0]}" in made.export_note.value


def test_export_csv_never_replaces_a_file_nor_writes_through_a_link(
    clean_kernel: tuple[int, int, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Export CSV follows the rules of every file bpfnb writes (bpfnb/outfile.py)."""
    import bpfnb

    monkeypatch.setenv(widgets.EXPORT_DIR_ENV, str(tmp_path))
    monkeypatch.setattr(widgets.time, "strftime", lambda *_: "20250101-000000")
    victim = tmp_path / "elsewhere.csv"  # a dangling link: following it would create it
    (tmp_path / "exportui-counts-20250101-000000.csv").symlink_to(victim)
    (tmp_path / "exportui-counts-20250101-000000-2.csv").write_text("old export\n")
    with bpfnb.load(GETPID_COUNTER, name="exportui", attach=False) as p:
        for key in range(3):
            p.counts[key] = key
        view = views.LiveTable(p.counts)
        view.refresh()
        made = widgets.view_widget(view, name="exportui-counts")
        made.export.click()
    written = tmp_path / "exportui-counts-20250101-000000-3.csv"
    assert f"wrote 3 rows to {written}" in made.export_note.value
    assert pd.read_csv(written)["value"].tolist() == [2, 1, 0]
    assert not victim.exists()  # nothing written through the planted link
    assert (tmp_path / "exportui-counts-20250101-000000.csv").readlink() == victim
    assert (tmp_path / "exportui-counts-20250101-000000-2.csv").read_text() == "old export\n"


def test_top_and_list_show_ids_rates_and_cpu(shell: TestingShell, kernel: None) -> None:
    from bpfnb.kernel.session import programs
    from bpfnb.ui.top import FullWidthFrame, ProgramsTop

    with Workload() as w:
        shell.run(f"%%bpf toplist --no-display\n{GETPID_COUNTER}")
        prog = shell.user_ns["toplist"]
        listing = shell.run("%bpf list")
        assert isinstance(listing, FullWidthFrame)
        row = listing.set_index("name").loc["toplist"]
        ids = {int(i) for i in row["prog ids"].split(", ")}
        assert ids and ids <= kernel_prog_ids()  # the ids bpftool shows
        assert {"runs/s", "%CPU", "avg ns/run"} <= set(listing.columns)
        # long cells are not cut off with "..."
        long = "tracepoint/syscalls/sys_enter_getpid"
        assert long in repr(listing) and long in (listing._repr_html_() or "")
        top = ProgramsTop(programs)
        top.refresh()
        w.run("getpid", 2000)
        top.refresh()
        mine = top.frame.set_index("name").loc["toplist"]
        assert mine["state"] == "running" and mine["runs/s"] > 0 and mine["%CPU"] > 0
        # the program runs on every getpid of the machine: at least ours, at most now's
        assert 2000 <= mine["runs"] <= prog.stats()["run_cnt"]
        assert "runs/s" in html.render(top)
        assert shell.run("%bpf top") is None  # displayed, refreshed by its own thread
        assert "bpfnb-refresh-top" in refresh_threads()
        refresh.refresher_for(dashboard_module.TOP_OWNER).stop()
        assert "bpfnb-refresh-top" not in refresh_threads()
        shell.run("%bpf stop toplist")
    assert wait_until(lambda: "bpfnb-refresh-toplist" not in refresh_threads())


def test_failed_rerun_keeps_the_old_dashboard(
    shell: TestingShell, kernel: None, capsys: pytest.CaptureFixture[str]
) -> None:
    shell.run(f"%%bpf rerunui\n{GETPID_COUNTER}")
    magics = shell.ip.magics_manager.registry["BpfMagics"]
    first = magics.dashboards["rerunui"]
    capsys.readouterr()
    result = shell.run_cell(f"%%bpf rerunui\n{SYNTAX_ERROR}")
    assert result.error_in_exec is not None
    out = capsys.readouterr().out
    # the progress line is replaced; the old dashboard is shown again, saying why
    assert "compiling and loading" not in out.splitlines()[-1]
    assert "rerunui: compile failed; error below. The previous version is still running" in out
    assert magics.dashboards["rerunui"] is first and not first.program.closed
    assert "previous version still running" in html.render(first.header)
    shell.run("%bpf stop --all")
    # every dashboard tells the truth after stop --all: stopped, no buttons
    assert first.program.closed
    assert 'data-state="stopped"' in html.render(first.header)
    assert first.controls is not None
    assert all(b.disabled for b in first.controls.buttons.values())
