"""Pure parts behind the dashboard: event filters, rate and histogram histories,
histogram percentiles, SVG snapshots."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from bpfnb.codec.histogram import frame_from_counts
from bpfnb.codec.history import HistogramHistory, RateHistory, key_ids, key_labels
from bpfnb.codec.histstats import percentile, summarize
from bpfnb.object.maptypes import HistogramScheme
from bpfnb.ui import eventfilter, svg
from bpfnb.ui.eventfilter import FilterError

EVENTS = pd.DataFrame(
    {
        "pid": [10, 11, 12, 13],
        "comm": ["cat", "bash", "cat", "catalog"],
        "filename": ["/etc/passwd", "/tmp/x", "/etc/hosts", "/var/log/Passwd.old"],
        "err": ["", "ENOENT", "", ""],
    }
)


@pytest.mark.parametrize(
    ("text", "pids"),
    [
        ("", [10, 11, 12, 13]),
        ("comm == cat", [10, 12]),
        ("comm = cat", [10, 12]),
        ("comm != cat", [11, 13]),
        ("filename ~ passwd", [10, 13]),  # contains, case-insensitive
        ("filename contains HOSTS", [12]),
        ("pid > 11", [12, 13]),
        ("pid >= 11 and comm == cat", [12]),
        ("pid <= 11 && comm == bash", [11]),
        ("pid == 0x0d", [13]),
        ('filename == "/tmp/x"', [11]),
        ("ENOENT", [11]),  # a bare word: any text column contains it
    ],
)
def test_filters(text: str, pids: list[int]) -> None:
    parsed = eventfilter.parse(text)
    assert parsed.apply(EVENTS)["pid"].tolist() == pids
    assert bool(parsed) == bool(text)


def test_filter_errors_name_the_problem() -> None:
    with pytest.raises(FilterError, match=r"no column 'cmd'.*columns: pid, comm, filename, err"):
        eventfilter.parse("cmd == cat").apply(EVENTS)
    with pytest.raises(FilterError, match="needs a number"):
        eventfilter.parse("pid > many").apply(EVENTS)
    with pytest.raises(FilterError, match="holds text"):
        eventfilter.parse("comm > 3").apply(EVENTS)
    with pytest.raises(FilterError, match="value is missing"):
        eventfilter.parse("comm ==")


def _snapshot(values: dict[int, int], rates: dict[int, float]) -> pd.DataFrame:
    keys = sorted(values)
    return pd.DataFrame(
        {
            "key": keys,
            "value": [values[k] for k in keys],
            "value/s": [rates.get(k, 0.0) for k in keys],
        }
    )


def test_rate_history_keeps_moving_keys_bounded() -> None:
    h = RateHistory(max_points=3, max_keys=2)
    h.record(100.0, _snapshot({1: 10, 2: 5, 3: 7}, {1: 2.0, 2: 0.0, 3: 1.0}), ["key"], ["value"],
             ["value/s"])  # fmt: skip
    h.record(101.0, _snapshot({1: 12, 2: 9, 3: 7}, {1: 2.0, 2: 4.0, 3: 0.0}), ["key"], ["value"],
             ["value/s"])  # fmt: skip
    long = h.frame()
    assert list(long.columns) == ["time", "key", "value", "value/s"]
    # only keys whose counter moved, per refresh
    assert long[["key", "value", "value/s"]].values.tolist() == [
        [1, 10, 2.0],
        [3, 7, 1.0],
        [1, 12, 2.0],
        [2, 9, 4.0],
    ]
    assert long["time"].iloc[0] == pd.Timestamp(100.0, unit="s")
    # at most max_keys rows a point: the fastest
    h.record(102.0, _snapshot({1: 13, 2: 20, 3: 8}, {1: 1.0, 2: 11.0, 3: 3.0}), ["key"],
             ["value"], ["value/s"])  # fmt: skip
    assert sorted(h.frame()["key"].iloc[-2:].tolist()) == [2, 3]
    # at most max_points points
    h.record(103.0, _snapshot({1: 13, 2: 20, 3: 8}, {}), ["key"], ["value"], ["value/s"])
    assert len(h) == 3 and h.times().tolist() == [101.0, 102.0, 103.0]
    # series: 0 where a key did not move; the top keys over the newest points
    hashed = key_ids(pd.DataFrame({"key": [1, 2, 3]}), ["key"])
    ids = {k: int(i) for k, i in zip([1, 2, 3], hashed, strict=True)}
    times, rates = h.series([ids[2], ids[1]])
    assert times.tolist() == [101.0, 102.0, 103.0]
    assert rates.tolist() == [[4.0, 11.0, 0.0], [2.0, 0.0, 0.0]]
    top = h.latest_top(2)
    assert top == [ids[2], ids[3]] and h.labels(top) == ["2", "3"]


def test_key_labels_join_key_columns() -> None:
    frame = pd.DataFrame({"pid": [1, 22], "syscall": ["read", "write"]})
    assert key_labels(frame, ["pid", "syscall"]).tolist() == ["1 · read", "22 · write"]


def test_histogram_history_counts_per_interval() -> None:
    scheme = HistogramScheme("log2")
    h = HistogramHistory(max_points=10)
    h.record(1.0, frame_from_counts(scheme, [3, 4], [5, 1]))
    h.record(2.0, frame_from_counts(scheme, [3, 4, 6], [8, 1, 2]))
    h.record(3.0, frame_from_counts(scheme, [3, 4, 6], [8, 4, 2]))
    times, slots, labels, counts = h.matrix()
    assert times.tolist() == [2.0, 3.0]
    assert slots == [3, 4, 6] and labels == ["[4, 8)", "[8, 16)", "[32, 64)"]
    assert counts.tolist() == [[3, 0], [0, 3], [2, 0]]


def test_histogram_percentiles_interpolate_in_buckets() -> None:
    scheme = HistogramScheme("linear", 0, 100, 10)
    # 10 values in [0, 10), 80 in [10, 20), 10 in [90, 100)
    frame = frame_from_counts(scheme, [1, 2, 10], [10, 80, 10])
    assert percentile(frame, 50) == pytest.approx(15.0)
    assert percentile(frame, 10) == pytest.approx(10.0)
    assert percentile(frame, 95) == pytest.approx(95.0)
    s = summarize(frame)
    assert s.count == 100
    assert s.mean == pytest.approx((5 * 10 + 15 * 80 + 95 * 10) / 100)
    assert (s.p50, s.p90) == (pytest.approx(15.0), pytest.approx(20.0))
    # log2's single-value buckets are exact; an empty histogram has no percentiles
    exact = frame_from_counts(HistogramScheme("log2"), [0, 1], [3, 1])
    assert (percentile(exact, 50), percentile(exact, 100)) == (0.0, 1.0)
    assert summarize(frame.iloc[:0]).p50 is None


def test_svg_snapshots_draw_the_data() -> None:
    line = svg.sparkline(np.array([0.0, 2.0, 1.0, np.nan]))
    points = re.search(r'<polyline[^>]* points="([^"]*)"', line)
    assert 'data-points="4"' in line and points is not None
    assert len(points[1].split()) == 4
    assert svg.sparkline(np.array([1.0])) == ""
    chart = svg.line_chart(
        np.array([100.0, 101.0, 102.0]),
        [("1 · read", np.array([1.0, 5.0, 2.0])), ("2 · <write>", np.array([0.0, 0.0, 4.0]))],
        title="counts: value/s",
    )
    assert 'data-lines="2"' in chart and chart.count('class="bpfnb-line"') == 2
    assert "&lt;write&gt;" in chart  # labels are escaped
    heat = svg.heatmap(
        np.array([1.0, 2.0]), ["[4, 8)", "[8, 16)"], np.array([[3, 0], [1, 2]]), title="lat"
    )
    assert 'data-cells="3"' in heat and len(re.findall(r"<rect ", heat)) == 3
