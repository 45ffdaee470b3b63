"""ctypes prototypes of the libbpf C API that the loader uses.

pylibbpf's extension module links libbpf (1.x) statically and exports its whole C
API. pylibbpf's *Python* API covers open/load/attach/detach only: no autoload
switches, no map sizing or reuse, no perf-event attachment, no program or link fds,
and the verifier log goes to the process's fd 2. So :mod:`bpfnb.kernel.loader` (the
only module importing pylibbpf) hands the path of pylibbpf's library to
:func:`bind`, which declares here the handful of libbpf functions bpfnb calls, with
their exact C signatures. Calls through ctypes release the GIL, so a slow detach
never stalls the notebook's other threads.

libbpf reports failures of pointer-returning functions as NULL with ``errno`` set,
and of int-returning ones as a negative errno.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Iterator
from typing import Any

from bpfnb.kernel.libc import LIBC

# enum libbpf_print_level
LIBBPF_WARN, LIBBPF_INFO, LIBBPF_DEBUG = 0, 1, 2

PrintFn = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)


class ObjectOpenOpts(ctypes.Structure):
    """``struct bpf_object_open_opts`` up to ``kernel_log_level`` (libbpf >= 1.0)."""

    _fields_ = [
        ("sz", ctypes.c_size_t),
        ("object_name", ctypes.c_char_p),
        ("relaxed_maps", ctypes.c_bool),
        ("pin_root_path", ctypes.c_char_p),
        ("_removed_attach_prog_fd", ctypes.c_uint32),
        ("kconfig", ctypes.c_char_p),
        ("btf_custom_path", ctypes.c_char_p),
        ("kernel_log_buf", ctypes.c_void_p),
        ("kernel_log_size", ctypes.c_size_t),
        ("kernel_log_level", ctypes.c_uint32),
        ("_pad", ctypes.c_uint32),
    ]


_P = ctypes.c_void_p
_S = ctypes.c_char_p
_I = ctypes.c_int
_U32 = ctypes.c_uint32
_B = ctypes.c_bool

#: name -> (restype, argtypes)
_PROTOTYPES: dict[str, tuple[Any, list[Any]]] = {
    "libbpf_set_print": (_P, [PrintFn]),
    "libbpf_major_version": (_U32, []),
    "libbpf_minor_version": (_U32, []),
    "bpf_object__open_mem": (_P, [_P, ctypes.c_size_t, ctypes.POINTER(ObjectOpenOpts)]),
    "bpf_object__load": (_I, [_P]),
    "bpf_object__close": (None, [_P]),
    "bpf_object__next_program": (_P, [_P, _P]),
    "bpf_object__next_map": (_P, [_P, _P]),
    "bpf_program__name": (_S, [_P]),
    "bpf_program__section_name": (_S, [_P]),
    "bpf_program__autoload": (_B, [_P]),
    "bpf_program__set_autoload": (_I, [_P, _B]),
    "bpf_program__fd": (_I, [_P]),
    "bpf_program__attach": (_P, [_P]),
    "bpf_program__attach_perf_event": (_P, [_P, _I]),
    "bpf_map__name": (_S, [_P]),
    "bpf_map__fd": (_I, [_P]),
    "bpf_map__type": (_I, [_P]),
    "bpf_map__max_entries": (_U32, [_P]),
    "bpf_map__set_max_entries": (_I, [_P, _U32]),
    "bpf_map__set_autocreate": (_I, [_P, _B]),
    "bpf_map__map_flags": (_U32, [_P]),
    "bpf_map__set_map_flags": (_I, [_P, _U32]),
    "bpf_map__reuse_fd": (_I, [_P, _I]),
    "bpf_map__is_internal": (_B, [_P]),
    "bpf_map__set_pin_path": (_I, [_P, _S]),
    "bpf_map__set_inner_map_fd": (_I, [_P, _I]),
    "bpf_link__fd": (_I, [_P]),
    "bpf_link__destroy": (_I, [_P]),
    # the map zoo: iterators (object storage listing), pins
    "bpf_program__attach_iter": (_P, [_P, _P]),
    "bpf_iter_create": (_I, [_I]),
    "bpf_map__pin_path": (_S, [_P]),
    "bpf_map__is_pinned": (_B, [_P]),
}


class IterAttachOpts(ctypes.Structure):
    """``struct bpf_iter_attach_opts``."""

    _fields_ = [
        ("sz", ctypes.c_size_t),
        ("link_info", ctypes.c_void_p),
        ("link_info_len", ctypes.c_uint32),
    ]


class Libbpf:
    """libbpf's C API through ctypes.

    Attributes are the C functions of :data:`_PROTOTYPES` with their signatures.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._lib = ctypes.CDLL(path, use_errno=True)
        for name, (restype, argtypes) in _PROTOTYPES.items():
            fn = getattr(self._lib, name)
            fn.restype = restype
            fn.argtypes = argtypes
            setattr(self, name, fn)
        self.version = f"{self._lib.libbpf_major_version()}.{self._lib.libbpf_minor_version()}"

    def __getattr__(self, name: str) -> Any:  # only reached for undeclared names
        raise AttributeError(f"libbpf function {name!r} is not declared in bpfnb.kernel.libbpf")

    def programs(self, obj: int) -> Iterator[int]:
        """Iterate over the ``struct bpf_program *`` of an object."""
        prog = self.bpf_object__next_program(obj, None)
        while prog:
            yield prog
            prog = self.bpf_object__next_program(obj, prog)

    def maps(self, obj: int) -> Iterator[int]:
        """Iterate over the ``struct bpf_map *`` of an object."""
        m = self.bpf_object__next_map(obj, None)
        while m:
            yield m
            m = self.bpf_object__next_map(obj, m)


class PrintCapture:
    """Collects libbpf's messages per thread instead of letting them reach fd 2.

    libbpf prints with one process-wide callback. :meth:`install` registers ours once;
    while a thread is inside :meth:`capture`, the warnings and infos libbpf prints *in
    that thread* are appended to that capture's list; other messages are dropped
    (bpfnb reports every failure itself, with libbpf's words when they help).
    """

    _BUF_SIZE = 16384

    def __init__(self) -> None:
        self._local = threading.local()
        self._callback: Any = None
        self._vsnprintf = ctypes.CFUNCTYPE(
            ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, _P
        )(("vsnprintf", LIBC))

    def install(self, lib: Libbpf) -> None:
        """Route libbpf's messages through this object (idempotent)."""
        if self._callback is None:
            self._callback = PrintFn(self._print)
            lib.libbpf_set_print(self._callback)

    def _print(self, level: int, fmt: bytes | None, args: int | None) -> int:
        sink: list[str] | None = getattr(self._local, "sink", None)
        if sink is None or level > LIBBPF_INFO or fmt is None:
            return 0
        buf = ctypes.create_string_buffer(self._BUF_SIZE)
        n = self._vsnprintf(buf, self._BUF_SIZE, fmt, args)
        text = buf.value.decode("utf-8", "replace")
        if n >= self._BUF_SIZE:
            text += "...\n"
        sink.append(text)
        return 0

    def capture(self) -> _Capture:
        """Collect this thread's libbpf messages while the returned context is active."""
        return _Capture(self._local)


class _Capture:
    def __init__(self, local: threading.local) -> None:
        self._local = local
        self.lines: list[str] = []
        self._outer: list[str] | None = None

    def __enter__(self) -> _Capture:
        self._outer = getattr(self._local, "sink", None)
        self._local.sink = self.lines
        return self

    def __exit__(self, *exc: object) -> None:
        self._local.sink = self._outer

    @property
    def text(self) -> str:
        """Everything captured, one message after the other."""
        return "".join(self.lines)
