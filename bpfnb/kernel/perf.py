"""perf_event_open(2) through ctypes: the events bpfnb opens itself.

Perf event arrays need one ``PERF_COUNT_SW_BPF_OUTPUT`` event per CPU whose buffer the
consumer maps; CPU profiling needs one sampling event per CPU to attach
``SEC("perf_event")`` programs to. Both are opened here.
"""

from __future__ import annotations

import ctypes
import os
import struct

from bpfnb.errors import KernelFeatureError
from bpfnb.kernel.libc import LIBC, syscall_number

PERF_TYPE_HARDWARE = 0
PERF_TYPE_SOFTWARE = 1
PERF_COUNT_SW_CPU_CLOCK = 0
PERF_COUNT_SW_BPF_OUTPUT = 10
PERF_SAMPLE_RAW = 1 << 10
#: ``read_format`` bit: read() also returns the samples the kernel dropped (Linux 6.0+).
PERF_FORMAT_LOST = 1 << 4
PERF_FLAG_FD_CLOEXEC = 1 << 3
PERF_ATTR_SIZE = 112
ATTR_FREQ = 1 << 10
ATTR_WATERMARK = 1 << 14
IOC_ENABLE = 0x2400
IOC_DISABLE = 0x2401
#: Offsets of data_head / data_tail in the perf mmap header page.
DATA_HEAD, DATA_TAIL = 1024, 1032


def perf_event_open(
    type_: int,
    config: int,
    cpu: int,
    *,
    sample_period: int = 0,
    sample_type: int = 0,
    flags: int = 0,
    wakeup: int = 0,
    read_format: int = 0,
    what: str = "perf event",
) -> int:
    """Open a perf event on ``cpu`` for every process; return its fd (close-on-exec).

    Parameters
    ----------
    type_, config : int
        ``perf_event_attr.type`` / ``.config``.
    cpu : int
        The CPU.
    sample_period : int
        Sample period, or frequency in Hz when ``flags`` has :data:`ATTR_FREQ`.
    sample_type : int
        ``PERF_SAMPLE_*`` bits.
    flags : int
        The attr's bit field (:data:`ATTR_FREQ`, :data:`ATTR_WATERMARK`...).
    wakeup : int
        ``wakeup_events`` / ``wakeup_watermark``.
    read_format : int
        ``PERF_FORMAT_*`` bits of what read() returns.
    what : str
        For messages.

    Raises
    ------
    KernelFeatureError
        With the errno's text and the event.
    """
    nr = syscall_number("perf_event_open")
    attr = ctypes.create_string_buffer(128)
    struct.pack_into(
        "<IIQQQQ", attr, 0, type_, PERF_ATTR_SIZE, config, sample_period, sample_type, read_format
    )
    struct.pack_into("<QI", attr, 40, flags, wakeup)
    fd = int(LIBC.syscall(nr, attr, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC))
    if fd < 0:
        err = ctypes.get_errno()
        raise KernelFeatureError(f"perf_event_open({what}, cpu {cpu}) failed: {os.strerror(err)}")
    return fd


def read_lost(fd: int) -> int:
    """Samples the kernel dropped for an event opened with :data:`PERF_FORMAT_LOST`."""
    raw = os.read(fd, 16)
    return struct.unpack_from("<QQ", raw)[1] if len(raw) >= 16 else 0


def ioctl(fd: int, request: int) -> None:
    """``ioctl(fd, request, 0)`` on a perf event (enable / disable)."""
    LIBC.ioctl(fd, request, 0)
