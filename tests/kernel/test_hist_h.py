"""bpfnb/hist.h in the kernel: log2, per-CPU and linear histograms count exactly."""

from __future__ import annotations

import numpy as np

from bpfnb.codec import histogram
from bpfnb.kernel.maps import HistogramMap, PerCpuHistogramMap
from bpfnb.object import maptypes

from workload import Workload

SOURCE = r"""
BPFNB_HIST(lat);
BPFNB_PERCPU_HIST(plat);
BPFNB_LINEAR_HIST(lin, 0, 500, 100);
u64 seen;

SEC("tracepoint/syscalls/sys_enter_getppid")
int record(void *ctx)
{
    if ((bpf_get_current_pid_tgid() >> 32) != TARGET_PID)
        return 0;
    u64 v = __sync_fetch_and_add(&seen, 1) + 1;   /* 1, 2, ..., N */
    bpfnb_hist_log2(&lat, v);
    bpfnb_hist_log2(&plat, v << 20);
    bpfnb_hist_linear(lin, v);
    return 0;
}
"""


def test_hist_h_counts_exactly(clean_kernel: tuple[int, int, int]) -> None:
    import bpfnb

    n = 1000
    with (
        Workload() as w,
        bpfnb.load(SOURCE, name="histtest", defines={"TARGET_PID": str(w.pid)}) as prog,
    ):
        for name in ("lat", "plat", "lin"):
            assert maptypes.is_histogram(prog.maps[name].spec.kind), name
        w.run("getppid", n)
        assert isinstance(prog.maps["lat"], HistogramMap)
        assert isinstance(prog.maps["plat"], PerCpuHistogramMap)
        raw = prog.maps["lat"].df(raw=True)  # type: ignore[call-arg]
        assert list(raw.columns) == ["key", "value"] and int(raw["value"].sum()) == n
        lat = prog.maps["lat"].df()
        assert lat.equals(histogram.histogram_frame(prog.maps["lat"].spec, raw))
        plat = prog.maps["plat"].df()
        lin = prog.maps["lin"].df()
    values = np.arange(1, n + 1)
    expected = np.bincount([histogram.log2_slot(int(v)) for v in values], minlength=65)
    assert lat["count"].tolist() == expected[1:11].tolist()
    assert lat["bucket"].iloc[-1] == "[512, 1K)" and int(lat["count"].iloc[-1]) == 489
    assert plat["bucket"].tolist()[0] == "[1M, 2M)" and int(plat["count"].sum()) == n
    assert plat["count"].tolist() == expected[1:11].tolist()
    assert lin["bucket"].tolist() == [
        "[0, 100)",
        "[100, 200)",
        "[200, 300)",
        "[300, 400)",
        "[400, 500)",
        "[500, ...)",
    ]
    assert lin["count"].tolist() == [99, 100, 100, 100, 100, 501]
