"""The dashboard's formatting rules (bpfnb.ui.format), and which columns get totals/rates."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from bpfnb.codec.frames import frame_roles, frame_units
from bpfnb.ui import format as fmt
from bpfnb.ui.views import amount_columns, fills_up

from conftest import codec_of


@pytest.mark.parametrize(
    ("value", "text"),
    [(0, "0"), (999, "999"), (1000, "1,000"), (1234567, "1,234,567"), (-98765, "-98,765")],
)
def test_thousands(value: int, text: str) -> None:
    assert fmt.thousands(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [(3.0, "3"), (12345.0, "12,345"), (0.5, "0.50"), (12.25, "12.2"), (1234.5, "1,234")],
)
def test_one_number(value: float, text: str) -> None:
    assert fmt.format_number(value) == text


@pytest.mark.parametrize(
    ("ns", "unit", "text"),
    [
        (3, "ns", "3 ns"),
        (999, "ns", "999 ns"),
        (1523, "ns", "1.52 µs"),
        (2_500_000, "ns", "2.50 ms"),
        (12_345_678, "ns", "12.3 ms"),
        (3_000_000_000, "ns", "3.00 s"),
        (1500, "us", "1.50 ms"),
        (2, "ms", "2.00 ms"),
    ],
)
def test_durations_scale_to_the_unit_that_reads_best(ns: float, unit: str, text: str) -> None:
    assert fmt.format_duration(ns, unit) == text


@pytest.mark.parametrize(
    ("n", "text"), [(512, "512 B"), (1536, "1.50 KiB"), (5 * 1024**2, "5.00 MiB")]
)
def test_bytes(n: int, text: str) -> None:
    assert fmt.format_bytes(n) == text


def test_one_unit_and_one_precision_per_column() -> None:
    values = np.array([1500.0, 2500.0, 900.0, 123456.0])
    style = fmt.column_style(values, "duration", "ns")
    # the unit comes from the typical (median) value: µs here, for every row
    assert (style.unit, style.decimals) == ("µs", 2)
    assert fmt.apply_style(style, values) == ["1.50 µs", "2.50 µs", "0.90 µs", "123.46 µs"]


def test_counters_get_separators_ids_and_flags_do_not() -> None:
    counts = np.array([3, 1234567], dtype=np.uint64)
    assert fmt.apply_style(fmt.column_style(counts, "counter", None), counts) == [
        "3",
        "1,234,567",
    ]
    pids = np.array([12345, 7], dtype=np.uint32)
    assert fmt.apply_style(fmt.column_style(pids, "id", None), pids) == ["12345", "7"]
    flags = np.array([0x8241, 0], dtype=np.uint32)
    assert fmt.apply_style(fmt.column_style(flags, "flags", None), flags) == ["0x8241", "0x0"]
    ret = np.array([-1, 0], dtype=np.int64)
    assert fmt.apply_style(fmt.column_style(ret, "other", None), ret) == ["-1", "0"]


def test_rates_keep_the_unit_per_second_and_blank_unknowns() -> None:
    rates = np.array([0.5, 12.25, np.nan])
    style = fmt.column_style(rates, "counter", None, rate=True)
    assert fmt.apply_style(style, rates) == ["0.50", "12.25", ""]
    busy = np.array([2e6, 3e6])  # ns of work per second
    style = fmt.column_style(busy, "duration", "ns", rate=True)
    assert style.unit == "ms/s"
    assert fmt.apply_style(style, busy) == ["2.00 ms/s", "3.00 ms/s"]
    sent = np.array([2048.0, 4096.0])
    style = fmt.column_style(sent, "counter", "bytes", rate=True)
    assert fmt.apply_style(style, sent) == ["2.00 KiB/s", "4.00 KiB/s"]


def test_text_and_times() -> None:
    words = pd.Series(["cat", None, b"\x01\x02"], dtype=object)
    style = fmt.column_style(words, "text", None)
    assert style.left and fmt.apply_style(style, words) == ["cat", "", "0102"]
    when = 1_700_000_000.25
    expected = time.strftime("%H:%M:%S", time.localtime(1_700_000_000)) + ".250"
    assert fmt.format_clock(when) == expected
    # naive timestamps are UTC (as bpfnb's decoders make them), shown in local time
    stamps = pd.Series(pd.to_datetime([1_700_000_000_250_000_000], unit="ns"))
    style = fmt.column_style(stamps, "timestamp", None)
    assert style.kind == "clock" and fmt.apply_style(style, stamps) == [expected]
    assert fmt.format_relative(-1.2345) == "-1.234 s"
    assert fmt.format_relative(-125.0) == "-2 min 05 s"


def test_which_columns_get_totals_and_rates(codec_spec: object) -> None:
    """Counters and durations only: not timestamps, flags, ids, enums or text."""
    key = codec_of(codec_spec, "__u32")
    value = codec_of(codec_spec, "struct open_stat")
    roles = frame_roles(key, value)
    values = [c for c in roles if c != "key"]
    assert amount_columns(roles, values) == ["lat", "wait", "slept", "moved", "count"]
    assert {roles[c] for c in ("when", "flags", "nr", "err")} == {
        "timestamp",
        "flags",
        "id",
        "enum",
    }
    units = frame_units(key, value)
    assert (units["lat"], units["wait"], units["slept"], units["moved"]) == (
        "ns",
        "us",
        "ms",
        "bytes",
    )
    # a libbpf-tools style connection key (with ts_us, delta_ns...): keys are never summed
    conn = codec_of(codec_spec, "struct conn")
    conn_roles = frame_roles(conn, value)
    key_names = set(frame_roles(conn, None))
    assert {"delta_ns", "ts_us", "pid"} <= key_names
    value_names = [c for c in conn_roles if c not in key_names]
    assert amount_columns(conn_roles, value_names) == ["lat", "wait", "slept", "moved", "count"]
    # a plain u64 value is a counter; a bpfnb_ktime_t value (syslat's start map) is not
    plain = codec_of(codec_spec, "__u64")
    assert amount_columns(frame_roles(key, plain), ["value"]) == ["value"]
    ktime = codec_of(codec_spec, "bpfnb_ktime_t")
    assert amount_columns(frame_roles(key, ktime), ["value"]) == []


def test_only_hash_maps_fill_up() -> None:
    assert fills_up("hash") and fills_up("percpu_hash")
    assert not any(fills_up(k) for k in ("lru_hash", "array", "percpu_array", "histogram"))
