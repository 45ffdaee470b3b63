"""The C library and the raw syscall numbers bpfnb needs, per machine, in one place.

bpf(2) and perf_event_open(2) have no libc wrappers; they are called through
``syscall(2)`` with the number of the running machine (``uname -m``).
"""

from __future__ import annotations

import ctypes
import platform

from bpfnb.errors import KernelFeatureError

#: The process's C library (errno kept for every call).
LIBC = ctypes.CDLL(None, use_errno=True)
LIBC.syscall.restype = ctypes.c_long

#: machine -> (bpf, perf_event_open) syscall numbers.
SYSCALL_NUMBERS: dict[str, tuple[int, int]] = {
    "x86_64": (321, 298),
    "aarch64": (280, 241),
    "arm64": (280, 241),
    "riscv64": (280, 241),
    "loongarch64": (280, 241),
    "ppc64le": (361, 319),
    "s390x": (351, 331),
    "i686": (357, 336),
    "i386": (357, 336),
    "armv7l": (386, 364),
}


def syscall_number(name: str) -> int:
    """The number of ``bpf`` or ``perf_event_open`` on this machine.

    Raises
    ------
    KernelFeatureError
        On a machine bpfnb has no numbers for.
    """
    machine = platform.machine()
    numbers = SYSCALL_NUMBERS.get(machine)
    if numbers is None:
        raise KernelFeatureError(f"bpfnb does not know the {name} syscall number on {machine}")
    return numbers[("bpf", "perf_event_open").index(name)]
