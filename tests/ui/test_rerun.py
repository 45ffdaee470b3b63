"""Re-running a cell: the old version closes off the user's wait, and never shows."""

from __future__ import annotations

import threading
import warnings
from typing import Any

from bpfnb.errors import StreamWarning
from bpfnb.kernel import session

from conftest import wait_until
from workload import Workload

CELL = r"""
struct event { u64 pid; };
BPFNB_EVENT_TYPE(events, struct event);
struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 1 << 16);
} events SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_getpid")
int on_getpid(void *ctx)
{
    struct event e = { bpf_get_current_pid_tgid() >> 32 };
    bpf_ringbuf_output(&events, &e, sizeof(e), 0);
    return 0;
}
"""


def test_rerun_with_a_stuck_callback_lists_one_program(
    shell: Any, clean_kernel: tuple[int, int, int]
) -> None:
    release = threading.Event()
    entered = threading.Event()

    def stuck(frame: object) -> None:
        entered.set()
        release.wait(60)

    try:
        shell.run(f"%%bpf rr --no-display\n{CELL}")
        old = shell.user_ns["rr"]
        old.events.on_event(stuck)
        with Workload() as w:
            w.run("getpid", 3)
            assert entered.wait(5)
        done = threading.Event()

        def rerun() -> None:
            with warnings.catch_warnings(record=True) as seen:
                warnings.simplefilter("always")
                shell.run(f"%%bpf rr --no-display\n{CELL}")
            assert any(issubclass(x.category, StreamWarning) for x in seen)
            done.set()

        runner = threading.Thread(target=rerun)
        runner.start()
        runner.join(10)
        assert done.is_set(), "the re-run hung on the old version's blocked callback"
        new = shell.user_ns["rr"]
        assert new is not old and old.closed and not new.closed
        listed = shell.run("%bpf list")
        assert list(listed["name"]).count("rr") == 1  # the closing version is not listed
        assert [p for p in session.programs() if p.name == "rr"] == [new]
        with Workload() as w:
            w.run("getpid", 7)
            assert wait_until(lambda: new.events.received >= 7)
    finally:
        release.set()
        shell.run("%bpf stop --all")
        assert session.wait_closed(10)
