"""CPU profiling: ``SEC("perf_event")`` programs attached to sampling events on every CPU.

libbpf cannot attach a ``perf_event`` program by itself: it needs a perf event to
hang on. :func:`attach_sampling` opens one sampling event per online CPU (for every
process), at ``--sample-freq N`` Hz or every ``--sample-period N`` events, and attaches
each ``perf_event`` program of a loaded object to each of them
(``bpf_program__attach_perf_event``). The links own the events: detaching or closing
the program closes them.

The event is the CPU's cycle counter when the machine has a hardware PMU (most bare
metal), else the ``cpu-clock`` software timer (virtual machines, containers); both
interrupt the CPU where it runs, so the program sees the stacks of what was running.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from dataclasses import dataclass

from bpfnb.errors import AttachError, BpfnbError, KernelFeatureError
from bpfnb.kernel import cpus, loader, perf
from bpfnb.kernel.loader import LoadedObject
from bpfnb.object import sections

#: Sampling frequency when a cell has perf_event programs and no sampling option.
DEFAULT_SAMPLE_FREQ = 99
PERF_COUNT_HW_CPU_CYCLES = 0
#: ``perf_event_attr`` bits: ``disabled`` (bit 0) stays 0; ``freq`` is bit 10.
_ATTR_FREQ = perf.ATTR_FREQ


@dataclass(frozen=True)
class Sampling:
    """How perf_event programs are triggered.

    Attributes
    ----------
    freq : int
        Samples per second per CPU (0 when ``period`` is used).
    period : int
        One sample every ``period`` events (cycles, or nanoseconds of cpu-clock).
    event : str
        ``"auto"`` (cycles if the machine has them, else cpu-clock), ``"cycles"`` or
        ``"cpu-clock"``.
    """

    freq: int = DEFAULT_SAMPLE_FREQ
    period: int = 0
    event: str = "auto"

    def __post_init__(self) -> None:
        if (self.freq > 0) == (self.period > 0):
            raise BpfnbError("give exactly one of a sampling frequency and a sampling period")
        if self.event not in ("auto", "cycles", "cpu-clock"):
            raise BpfnbError(f"unknown sampling event {self.event!r} (auto, cycles, cpu-clock)")

    @property
    def describe(self) -> str:
        """``99 Hz`` or ``every 1000000 events``."""
        return f"{self.freq} Hz" if self.freq else f"every {self.period} events"


def sampling(freq: int | None = None, period: int | None = None) -> Sampling:
    """The sampling of ``--sample-freq`` / ``--sample-period`` (default 99 Hz)."""
    if freq and period:
        raise BpfnbError("--sample-freq and --sample-period exclude each other")
    if period:
        return Sampling(freq=0, period=int(period))
    return Sampling(freq=int(freq or DEFAULT_SAMPLE_FREQ))


def perf_event_programs(loaded: LoadedObject) -> list[str]:
    """The loaded ``SEC("perf_event")`` programs of an object."""
    return [
        p.name
        for p in loaded.programs.values()
        if p.loaded and sections.prefix(p.section) == "perf_event"
    ]


def _open(cpu: int, how: Sampling, event: str) -> int:
    type_, config = (
        (perf.PERF_TYPE_HARDWARE, PERF_COUNT_HW_CPU_CYCLES)
        if event == "cycles"
        else (perf.PERF_TYPE_SOFTWARE, perf.PERF_COUNT_SW_CPU_CLOCK)
    )
    return perf.perf_event_open(
        type_,
        config,
        cpu,
        sample_period=how.freq or how.period,
        flags=_ATTR_FREQ if how.freq else 0,
        what=f"{event} sampling",
    )


def choose_event(how: Sampling) -> str:
    """``cycles`` when asked for or available (probed on CPU 0), else ``cpu-clock``."""
    if how.event != "auto":
        return how.event
    try:
        fd = _open(cpus.online_cpus()[0], how, "cycles")
    except KernelFeatureError:
        return "cpu-clock"
    os.close(fd)
    return "cycles"


def attach_sampling(loaded: LoadedObject, how: Sampling) -> str | None:
    """Attach every perf_event program to a sampling event on every online CPU.

    Returns
    -------
    str or None
        What was attached (``"cpu-clock at 99 Hz on 2 CPUs"``), None when the object
        has no perf_event program.

    Raises
    ------
    AttachError, KernelFeatureError
        An event could not be opened or a program attached (nothing new stays
        attached; events already opened are closed).
    """
    names = perf_event_programs(loaded)
    if not names:
        return None
    event = choose_event(how)
    lib = loader.libbpf()
    online = cpus.online_cpus()
    links: list[tuple[str, int]] = []
    try:
        for name in names:
            for cpu in online:
                pfd = _open(cpu, how, event)

                def attach(prog_ptr: int, pfd: int = pfd, cpu: int = cpu, name: str = name) -> int:
                    link = lib.bpf_program__attach_perf_event(prog_ptr, pfd)
                    if not link:
                        err = ctypes.get_errno()
                        os.close(pfd)
                        raise AttachError(
                            f'program {name!r} (SEC("perf_event")): cannot attach to the '
                            f"{event} event of CPU {cpu}: {os.strerror(err)}"
                        )
                    links.append((name, int(link)))
                    return int(link)

                loaded.attach_link(name, attach)
    except BaseException:
        for _name, link in links:
            with contextlib.suppress(Exception):
                lib.bpf_link__destroy(link)
        for prog in loaded.programs.values():
            prog.links = [lk for lk in prog.links if all(lk != made for _, made in links)]
        raise
    return f"{event} at {how.describe} on {len(online)} CPU(s)"


__all__ = [
    "DEFAULT_SAMPLE_FREQ",
    "Sampling",
    "attach_sampling",
    "choose_event",
    "perf_event_programs",
    "sampling",
]
