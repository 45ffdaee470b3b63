"""Histogram buckets: the pure math and labels, and hist.h in the kernel with exact counts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bpfnb.codec import histogram
from bpfnb.codec.histogram import Histogram
from bpfnb.object import btf, maptypes
from bpfnb.object.maptypes import HistogramScheme

# -- pure -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("slot", "label"),
    [
        (0, "[0]"),
        (1, "[1]"),
        (2, "[2, 4)"),
        (3, "[4, 8)"),
        (10, "[512, 1K)"),
        (11, "[1K, 2K)"),
        (21, "[1M, 2M)"),
        (31, "[1G, 2G)"),
        (63, "[4E, 8E)"),
        (64, "[8E, 16E)"),
    ],
)
def test_log2_labels(slot: int, label: str) -> None:
    assert histogram.log2_label(slot) == label


def test_log2_slots_match_bounds() -> None:
    for value in [0, 1, 2, 3, 4, 7, 8, 1023, 1024, 1025, 2**40 + 5, 2**63, 2**64 - 1]:
        slot = histogram.log2_slot(value)
        low, high = histogram.log2_bounds(slot)
        assert low <= value and (high is None or value < high), (value, slot)
    assert histogram.log2_bounds(64) == (2**63, None)
    with pytest.raises(ValueError):
        histogram.log2_bounds(65)


def test_linear_slots_and_labels() -> None:
    h = Histogram("linear", 0, 100, 30)  # buckets [0,30) [30,60) [60,90) [90,100)
    assert h.slots == 6
    assert [h.slot_of(v) for v in (0, 29, 30, 95, 99, 100, 10**9)] == [1, 1, 2, 4, 4, 5, 5]
    assert [h.label(s) for s in range(6)] == [
        "(..., 0)",
        "[0, 30)",
        "[30, 60)",
        "[60, 90)",
        "[90, 100)",
        "[100, ...)",
    ]
    h2 = Histogram("linear", 1024, 4096, 1024)
    assert h2.label(1) == "[1K, 2K)" and h2.slot_of(5) == 0 and h2.bounds(0) == (0, 1024)


def test_format_number() -> None:
    assert [histogram.format_number(n) for n in (0, 5, 1000, 1024, 1536, 3 * 2**20)] == [
        "0",
        "5",
        "1000",
        "1K",
        "1536",
        "3M",
    ]


def _typedef(name: str, target: btf.Type) -> btf.Typedef:
    return btf.Typedef(0, name, target=target)


class _Spec:
    def __init__(self, map_type: int, key: btf.Type | None, name: str = "h") -> None:
        self.type = map_type
        self.key = key
        self.name = name


def _scheme(spec: _Spec) -> HistogramScheme | None:
    return maptypes.histogram_scheme(spec.name, spec.type, spec.key)


def test_recognition_from_btf_types() -> None:
    u32 = btf.Int(1, "unsigned int", size=4)
    log2 = _typedef("bpfnb_log2_bucket_t", _typedef("__u32", u32))
    linear = _typedef("bpfnb_linear_bucket_t", _typedef("__u32", u32))
    assert _scheme(_Spec(2, log2)) == HistogramScheme("log2")
    assert _scheme(_Spec(6, log2)) == HistogramScheme("log2")
    assert _scheme(_Spec(1, log2)) is None  # a hash map is not a histogram
    assert _scheme(_Spec(2, u32)) is None
    spec = _Spec(2, _typedef("bpfnb_lhist__0x10_1000_7", linear))
    assert _scheme(spec) == HistogramScheme("linear", 16, 1000, 7)
    with pytest.raises(maptypes.HistogramSpecError):
        _scheme(_Spec(2, linear))


def test_frame_trims_and_keeps_cpu_columns() -> None:
    df = pd.DataFrame(
        {"key": np.arange(65), "value[cpu0]": np.zeros(65, np.uint64), "value[cpu1]": 0}
    )
    df.loc[3, "value[cpu0]"] = 2
    df.loc[5, "value[cpu1]"] = 7
    frame = histogram.histogram_frame(Histogram("log2"), df)
    assert frame.index.tolist() == [3, 4, 5]
    assert frame["bucket"].tolist() == ["[4, 8)", "[8, 16)", "[16, 32)"]
    assert frame["count"].tolist() == [2, 0, 7]
    assert frame["value[cpu1]"].tolist() == [0, 0, 7]
    assert frame["low"].tolist() == [4, 8, 16] and frame["high"].tolist() == [8, 16, 32]
    empty = histogram.histogram_frame(
        Histogram("log2"), df.assign(**{"value[cpu0]": 0, "value[cpu1]": 0})
    )
    assert empty.empty and list(empty.columns[:4]) == list(histogram.COLUMNS)


def test_render_text() -> None:
    frame = histogram.frame_from_counts(Histogram("log2"), [1, 2], [1, 2])
    assert histogram.render_text(frame, width=4).splitlines() == [
        "[1]    1 |@@  |",
        "[2, 4) 2 |@@@@|",
    ]


# -- kernel ---------------------------------------------------------------------------
