"""Twenty programs at once: twenty ``%%bpf`` cells attached to the same tracepoint.

Each counts an exact getpid workload; ``%bpf stop --all`` then stops them all and the
kernel holds none of their programs, maps or links (compared by id: only our objects).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from bpfnb.kernel import session
from bpfnb.kernel.program import Program

from conftest import kernel_objects, require_kernel, wait_until
from workload import Workload

pytestmark = pytest.mark.kernel

N = 20
CELL = r"""%%bpf many_{i} --set target={pid}
const volatile u32 target = 0;
struct {{ __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 4);
         __type(key, u32); __type(value, u64); }} calls SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_getpid")
int count_{i}(void *ctx)
{{
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    if (pid != target)
        return 0;
    u64 one = 1, *n = bpf_map_lookup_elem(&calls, &pid);
    if (n)
        __sync_fetch_and_add(n, 1);
    else
        bpf_map_update_elem(&calls, &pid, &one, BPF_NOEXIST);
    return 0;
}}
"""


def _ids(what: str) -> dict[int, dict[str, Any]]:
    return {int(o["id"]): o for o in kernel_objects(what)}


@pytest.fixture
def workload() -> Iterator[Workload]:
    with Workload() as w:
        yield w


def test_twenty_cells_count_exactly_and_stop_all_leaves_nothing(
    clean_kernel: tuple[int, int, int], shell: Any, workload: Workload
) -> None:
    require_kernel()
    before = set(_ids("prog"))
    try:
        for i in range(N):
            shell.run(CELL.format(i=i, pid=workload.pid))
        progs: list[Program] = [shell.user_ns[f"many_{i}"] for i in range(N)]
        assert all(p.attached for p in progs)
        # our objects, by id: the new programs named count_*, their maps, their links
        progs_now = _ids("prog")
        ours = {
            i: o
            for i, o in progs_now.items()
            if i not in before and str(o.get("name", "")).startswith("count_")
        }
        assert sorted(o["name"] for o in ours.values()) == sorted(f"count_{i}" for i in range(N))
        our_maps = {m for o in ours.values() for m in o.get("map_ids", [])}
        our_links = {i for i, o in _ids("link").items() if o.get("prog_id") in ours}
        assert len(our_links) == N and len(our_maps) >= N
        workload.run("getpid", 1234)
        counts = [p.maps["calls"].df()["value"].tolist() for p in progs]
        assert counts == [[1234]] * N
    finally:
        shell.run("%bpf stop --all")
    session.wait_closed()
    assert all(p.closed for p in progs) and not session.programs()
    # the kernel frees maps after an RCU grace period: wait (bounded) for that
    wait_until(lambda: not our_maps & set(_ids("map")))
    assert not set(ours) & set(_ids("prog")), "programs left in the kernel"
    left = {i: o["name"] for i, o in _ids("map").items() if i in our_maps}
    assert not left, f"maps left in the kernel: {left}"
    assert not our_links & set(_ids("link")), "links left in the kernel"
