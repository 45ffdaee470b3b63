"""Ctrl-C at seeded random points of a load, in this process: nothing half-made stays.

A thread sends SIGINT to this process at a random moment (seeded: a failure names the
seed and the delay, so it reproduces) while ``bpfnb.load`` compiles, verifies and
attaches. Whatever the moment, either the load is undone (KeyboardInterrupt, no object
of it held, no program registered) or it completed and was handed over through
``on_loaded``; never a loaded program nobody holds.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time

import pytest

from bpfnb import pipeline
from bpfnb.kernel import session
from bpfnb.kernel.program import Program

from conftest import own_bpf_fds, wait_until
from programs import slow_verifier_source

pytestmark = pytest.mark.kernel

SEED = 14
ROUNDS = 10
SOURCE = slow_verifier_source(programs=2, branches=12)


def _load(handed: list[Program]) -> Program:
    return pipeline.load(
        SOURCE,
        name="randint",
        globals={"target_tgid": os.getpid()},
        on_loaded=handed.append,
    )


def _comes_back_to(held: tuple[int, int, int]) -> bool:
    return wait_until(lambda: own_bpf_fds() == held)


def test_interrupts_at_random_points_of_a_load(clean_kernel: tuple[int, int, int]) -> None:
    # One uninterrupted load (compiled and cached) gives the time span to aim at.
    held = own_bpf_fds()  # clean_kernel counts the whole kernel in CI: compare fds with fds
    start = time.monotonic()
    whole = _load([])
    span = time.monotonic() - start
    whole.close()
    assert _comes_back_to(held)

    rng = random.Random(SEED)
    outcomes = []
    for round_ in range(ROUNDS):
        delay = rng.uniform(0, span * 1.2)
        before = own_bpf_fds()
        registered = set(map(id, session.programs()))
        handed: list[Program] = []
        timer = threading.Timer(delay, os.kill, (os.getpid(), signal.SIGINT))
        interrupted = False
        try:
            timer.start()
            _load(handed)
            timer.join()  # the interrupt may land here, after the load
        except KeyboardInterrupt:
            interrupted = True
        finally:
            timer.join()
        where = f"seed {SEED}, round {round_}, SIGINT after {delay:.3f} s of {span:.3f} s"
        outcomes.append(interrupted and not handed)
        assert len(handed) <= 1, where
        for prog in handed:  # completed: the caller holds it, it is registered
            assert not prog.closed, where
            assert id(prog) in set(map(id, session.programs())), where
            prog.close()
        assert _comes_back_to(before), f"{where}: {own_bpf_fds()}, before {before}"
        assert set(map(id, session.programs())) == registered, where
    # The seed puts several interrupts inside the load (undone there).
    assert sum(outcomes) >= 2, outcomes
