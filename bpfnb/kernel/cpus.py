"""CPUs as the kernel counts them for per-CPU maps, perf buffers and sampling.

Per-CPU maps exchange one value slot per *possible* CPU, each slot rounded up to 8
bytes; perf buffers and sampling events are opened per *online* CPU.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path


def parse_cpu_list(text: str) -> list[int]:
    """Parse a kernel CPU list such as ``0-3,5,7-8`` into CPU numbers.

    Parameters
    ----------
    text : str
        The list, as in ``/sys/devices/system/cpu/possible``.

    Returns
    -------
    list of int
        The CPU numbers, ascending.
    """
    cpus: list[int] = []
    for part in text.strip().split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            lo, hi = part.split("-", 1)
            cpus.extend(range(int(lo), int(hi) + 1))
        else:
            cpus.append(int(part))
    return sorted(set(cpus))


@cache
def possible_cpu_ids() -> tuple[int, ...]:
    """Return the ids of the possible CPUs (``/sys/devices/system/cpu/possible``)."""
    path = Path("/sys/devices/system/cpu/possible")
    try:
        return tuple(parse_cpu_list(path.read_text()))
    except OSError:
        return tuple(range(os.cpu_count() or 1))


def possible_cpus() -> int:
    """Return the number of possible CPUs: how many value slots a per-CPU map exchanges."""
    return len(possible_cpu_ids())


def value_slot_size(value_size: int) -> int:
    """Return ``value_size`` rounded up to 8 bytes: one CPU's slot in a per-CPU value."""
    return (value_size + 7) & ~7


def value_buffer_size(per_cpu: bool, value_size: int) -> int:
    """Return the bytes one value occupies in bpf(2) buffers (all slots when per CPU)."""
    if per_cpu:
        return value_slot_size(value_size) * possible_cpus()
    return value_size


def online_cpus() -> list[int]:
    """Return the ids of the online CPUs (``/sys/devices/system/cpu/online``)."""
    try:
        return parse_cpu_list(Path("/sys/devices/system/cpu/online").read_text())
    except OSError:
        return list(possible_cpu_ids())
