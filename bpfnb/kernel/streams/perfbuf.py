"""``BPF_MAP_TYPE_PERF_EVENT_ARRAY``: one mmapped perf buffer per online CPU.

The stream opens one ``PERF_COUNT_SW_BPF_OUTPUT`` perf event per online CPU, stores its
fd in the map at the CPU's index, maps its buffer and parses raw samples and
``PERF_RECORD_LOST`` records with :mod:`bpfnb.codec.streamparse`.

Samples the kernel drops because a buffer is full are read from the events themselves
(``PERF_FORMAT_LOST``, Linux 6.0+): exact at any moment. ``PERF_RECORD_LOST`` records
arrive only once the buffer has room again, so a burst lost at the end of a run would
be missing from them; they are used only on kernels without ``PERF_FORMAT_LOST``.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import select
import struct

import numpy as np

from bpfnb.codec import streamparse
from bpfnb.errors import KernelFeatureError
from bpfnb.kernel import bpf, cpus, perf
from bpfnb.kernel.streams.stream import EventStream


class _PerfBuffer:
    """One CPU's perf event fd and its mmapped buffer."""

    def __init__(self, cpu: int, pages: int, count_lost: bool) -> None:
        self.cpu = cpu
        page = mmap.PAGESIZE
        self.size = pages * page
        self.counts_lost = count_lost
        self.fd = perf.perf_event_open(
            perf.PERF_TYPE_SOFTWARE,
            perf.PERF_COUNT_SW_BPF_OUTPUT,
            cpu,
            sample_period=1,
            sample_type=perf.PERF_SAMPLE_RAW,
            flags=perf.ATTR_WATERMARK,
            wakeup=max(self.size // 4, 1),
            read_format=perf.PERF_FORMAT_LOST if count_lost else 0,
            what="BPF_OUTPUT",
        )
        try:
            self.map = mmap.mmap(
                self.fd, page + self.size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE
            )
        except OSError:
            os.close(self.fd)
            raise
        self.head = np.frombuffer(self.map, dtype=np.uint64, count=1, offset=perf.DATA_HEAD)
        self.tail = np.frombuffer(self.map, dtype=np.uint64, count=1, offset=perf.DATA_TAIL)
        self.data = np.frombuffer(self.map, dtype=np.uint8, offset=page, count=self.size)

    def lost(self) -> int:
        """Samples the kernel dropped on this CPU because the buffer was full."""
        return perf.read_lost(self.fd) if self.counts_lost else 0

    def close(self) -> None:
        del self.head, self.tail, self.data
        self.map.close()
        os.close(self.fd)


class PerfEventArray(EventStream):
    """A ``BPF_MAP_TYPE_PERF_EVENT_ARRAY`` with one mmapped perf buffer per online CPU.

    Attributes
    ----------
    pages : int
        Data pages per CPU buffer (a power of two), used at :meth:`start`.
    """

    what = "perf event array"
    pages = 64
    _buffers: list[_PerfBuffer]
    #: Whether the kernel reports dropped samples through read() (PERF_FORMAT_LOST).
    _format_lost: bool | None = None
    _closed_lost = 0  # dropped samples of buffers closed so far

    def _new_buffer(self, cpu: int) -> _PerfBuffer:
        if PerfEventArray._format_lost is False:
            return _PerfBuffer(cpu, self.pages, False)
        try:
            buf = _PerfBuffer(cpu, self.pages, True)
        except KernelFeatureError:
            if PerfEventArray._format_lost:
                raise
            buf = _PerfBuffer(cpu, self.pages, False)  # raises when it was not the format
            PerfEventArray._format_lost = False  # an older kernel: PERF_RECORD_LOST only
            return buf
        PerfEventArray._format_lost = True
        return buf

    def _kernel_dropped(self) -> int:
        buffers = getattr(self, "_buffers", [])
        if not PerfEventArray._format_lost:
            return self._kernel_lost  # from PERF_RECORD_LOST records
        total = self._closed_lost
        for buf in buffers:
            with contextlib.suppress(OSError):
                total += buf.lost()
        return total

    def _open(self) -> None:
        if getattr(self, "_buffers", None):
            return
        self._buffers = []
        epoll = self._new_epoll()
        fd = self._fd.get()
        try:
            for cpu in cpus.online_cpus():
                if self.spec.max_entries and cpu >= self.spec.max_entries:
                    continue
                buf = self._new_buffer(cpu)
                self._buffers.append(buf)
                bpf.map_update(
                    fd, struct.pack("<I", cpu), struct.pack("<I", buf.fd), what=f"map {self.name!r}"
                )
                perf.ioctl(buf.fd, perf.IOC_ENABLE)
                epoll.register(buf.fd, select.EPOLLIN)
        except BaseException:
            self._release()
            raise

    def _release(self) -> None:
        with self._drain_lock:
            for buf in getattr(self, "_buffers", []):
                with contextlib.suppress(Exception):
                    bpf.map_delete(self._fd.get(), struct.pack("<I", buf.cpu))
                perf.ioctl(buf.fd, perf.IOC_DISABLE)
                with contextlib.suppress(OSError):
                    self._closed_lost += buf.lost()
                buf.close()
            self._buffers = []

    def drain(self) -> int:
        """Consume every sample in every CPU's buffer now; return how many."""
        total = 0
        fill = 0.0
        with self._drain_lock:
            self._check_open()
            if not getattr(self, "_buffers", None):
                self._open()
            for buf in self._buffers:
                head, tail = int(buf.head[0]), int(buf.tail[0])
                if head == tail:
                    continue
                scan, linear = streamparse.scan_perf(buf.data, buf.size, tail, head)
                buf.tail[0] = scan.position  # the records are in `linear` now
                fill = max(fill, (head - tail) / buf.size)
                self._kernel_lost += scan.lost
                self._take(linear, scan.runs, scan.records)
                total += scan.records
            self._fill = fill
        return total
