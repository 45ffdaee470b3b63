"""``loader.interrupts_deferred``: Ctrl-C held during a load, then undone and raised."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from bpfnb.errors import BpfnbError
from bpfnb.kernel.loader import interrupts_deferred


def _press_ctrl_c() -> None:
    os.kill(os.getpid(), signal.SIGINT)


def test_an_interrupt_is_held_until_the_block_ends_then_the_block_is_undone() -> None:
    steps: list[str] = []
    with pytest.raises(KeyboardInterrupt), interrupts_deferred() as deferral:
        assert not deferral()
        _press_ctrl_c()
        steps.append("after the signal")  # the block was not cut short
        assert deferral()
        deferral.undo_on_interrupt(lambda: steps.append("undo first"))
        deferral.undo_on_interrupt(lambda: steps.append("undo last"))
    # Undo steps run in reverse order of registration, before the interrupt is raised.
    assert steps == ["after the signal", "undo last", "undo first"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_failing_undo_step_does_not_stop_the_others() -> None:
    steps: list[str] = []

    def broken() -> None:
        raise OSError("already closed")

    with pytest.raises(KeyboardInterrupt), interrupts_deferred() as deferral:
        deferral.undo_on_interrupt(lambda: steps.append("undone"))
        deferral.undo_on_interrupt(broken)
        _press_ctrl_c()
    assert steps == ["undone"]


def test_without_an_interrupt_nothing_is_undone() -> None:
    steps: list[str] = []
    with interrupts_deferred() as deferral:
        deferral.undo_on_interrupt(lambda: steps.append("undone"))
    assert steps == []


def test_an_error_caused_by_the_interrupt_becomes_the_interrupt() -> None:
    # A signal restarts a verification; libbpf gives up after five restarts.
    with pytest.raises(KeyboardInterrupt) as raised, interrupts_deferred():
        _press_ctrl_c()
        raise BpfnbError("load failed: -EAGAIN")
    assert isinstance(raised.value.__cause__, BpfnbError)


def test_an_error_without_an_interrupt_is_raised_as_it_is() -> None:
    with pytest.raises(BpfnbError, match="verifier"), interrupts_deferred():
        raise BpfnbError("verifier says no")


def test_outside_the_main_thread_the_block_runs_unchanged() -> None:
    seen: list[bool] = []

    def body() -> None:
        with interrupts_deferred() as deferral:
            seen.append(deferral())

    worker = threading.Thread(target=body)
    worker.start()
    worker.join()
    assert seen == [False]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
