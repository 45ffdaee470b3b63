"""Open, configure, load, attach and close BPF objects: the only module importing pylibbpf.

The lifecycle goes through libbpf, in the phases libbpf itself has:

1. :func:`open_object` parses the object (``bpf_object__open_mem``) into an
   :class:`OpenObject` whose programs and maps can still be configured: which programs
   load (autoload), map sizes, maps reused from another program (``reuse_fd``).
2. :meth:`OpenObject.load` creates the maps and loads the programs into the kernel,
   giving a :class:`LoadedObject`. A failed load leaves nothing in the kernel and
   raises a short error built from the verifier log.
3. :meth:`LoadedObject.attach` attaches every program libbpf can attach by itself
   (tracepoint, raw_tp, tp_btf, fentry/fexit, uprobe with a target...); the links are
   owned by the object and destroyed by :meth:`LoadedObject.detach` / ``close``.

libbpf is the one pylibbpf ships (see :mod:`bpfnb.kernel.libbpf`). Its messages are
captured per thread through libbpf's print callback, and the verifier log is written by
the kernel into a buffer bpfnb passes, so nothing touches the process's fd 2.

Every map fd bpfnb keeps is a duplicate wrapped in an :class:`~bpfnb.kernel.fd.OwnedFd`,
so map views never depend on libbpf's own fds, and program fds come from
``bpf_program__fd``.

Interrupts: a KeyboardInterrupt (Ctrl-C in a notebook) that arrives while an object is
being loaded or attached is held until the step ends, then raised after everything the
step created is released (see :func:`interrupts_deferred`).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import mmap
import os
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from types import FrameType

import pylibbpf.pylibbpf as _pylibbpf_ext

from bpfnb import diagnostics
from bpfnb.errors import AttachError, BpfnbError, LoadError
from bpfnb.kernel import system
from bpfnb.kernel.fd import OwnedFd
from bpfnb.kernel.libbpf import Libbpf, ObjectOpenOpts, PrintCapture
from bpfnb.object import sections
from bpfnb.object.spec import ObjectSpec

#: Bytes of the verifier-log buffer given to the kernel (pages are touched only as
#: the kernel writes, so a large buffer costs nothing until a load fails).
LOG_SIZE = 64 << 20

_LIB: Libbpf | None = None
_LIB_LOCK = threading.Lock()
_PRINT = PrintCapture()


def libbpf() -> Libbpf:
    """The libbpf of pylibbpf's extension module, bound once per process."""
    global _LIB
    with _LIB_LOCK:
        if _LIB is None:
            lib = Libbpf(_pylibbpf_ext.__file__)
            _PRINT.install(lib)
            _LIB = lib
        return _LIB


def libbpf_version() -> str:
    """The version of the libbpf bpfnb loads with (``"1.6"``)."""
    return libbpf().version


# --------------------------------------------------------------------------------------
# Interrupts


class Deferral:
    """The state of an :func:`interrupts_deferred` block.

    Calling it tells whether an interrupt arrived so far (long steps may stop early at
    a safe point); :meth:`undo_on_interrupt` registers what to release when one did.
    """

    def __init__(self) -> None:
        self.hits: list[int] = []
        self._undo: list[Callable[[], None]] = []

    def __call__(self) -> bool:
        return bool(self.hits)

    def undo_on_interrupt(self, undo: Callable[[], None]) -> None:
        """Call ``undo()`` at the block's end when an interrupt arrived (still deferred).

        For what the block made and would otherwise hand over: a load the user
        interrupted is released instead of returned.
        """
        self._undo.append(undo)

    def _hold(self, signum: int, frame: FrameType | None) -> None:
        self.hits.append(signum)

    def _run_undo(self) -> None:
        undo, self._undo = self._undo, []
        for step in reversed(undo):
            with contextlib.suppress(Exception):
                step()


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[Deferral]:
    """Hold SIGINT's KeyboardInterrupt until the block ends (main thread only).

    Yields a :class:`Deferral`: calling it tells whether an interrupt arrived so far.
    When the block ends after an interrupt, the steps registered with
    :meth:`Deferral.undo_on_interrupt` run (interrupts still held), then
    KeyboardInterrupt is raised. When the block ends with an exception, that exception
    wins, except a :class:`~bpfnb.errors.BpfnbError` after an interrupt, which becomes
    the KeyboardInterrupt (chained): a signal restarts a verification in the kernel, and
    libbpf gives up after five restarts with an error that is the interrupt's doing.
    Outside the main thread (where Python cannot change signal handlers) the block runs
    unchanged.
    """
    deferral = Deferral()
    if threading.current_thread() is not threading.main_thread():
        yield deferral
        return
    try:
        previous = signal.signal(signal.SIGINT, deferral._hold)
    except ValueError:  # not the main interpreter
        yield deferral
        return
    try:
        yield deferral
    except BpfnbError as err:
        if deferral.hits:
            raise KeyboardInterrupt from err
        raise
    else:
        if deferral.hits:
            deferral._run_undo()
    finally:
        signal.signal(signal.SIGINT, previous)
    if deferral.hits:
        raise KeyboardInterrupt


# --------------------------------------------------------------------------------------
# Phase 1: open


@dataclass
class OpenProgram:
    """A program of an opened object, before load.

    Attributes
    ----------
    name : str
        C function name.
    section : str
        SEC() text.
    autoload : bool
        Whether it will be loaded (``bpf_program__set_autoload``).
    """

    name: str
    section: str
    autoload: bool
    ptr: int = field(repr=False)


@dataclass
class OpenMap:
    """A map of an opened object, before load.

    Attributes
    ----------
    name : str
        The map's name (C name, or ``OBJ.rodata`` style for global data).
    type : int
        ``enum bpf_map_type``.
    max_entries : int
        Capacity libbpf will create it with (0 when the object did not say).
    internal : bool
        libbpf's own map for ``.rodata``/``.data``/``.bss``/``.kconfig``.
    autocreate : bool
        Whether the load creates it (see :meth:`OpenObject.set_autocreate`).
    """

    name: str
    type: int
    max_entries: int
    internal: bool
    ptr: int = field(repr=False)
    autocreate: bool = True


class OpenObject:
    """An object parsed by libbpf, not loaded yet: configure it, then :meth:`load`.

    Parameters
    ----------
    data : bytes
        The ELF object.
    spec : ObjectSpec
        Its description (bpfnb's own parse).
    name : str
        The object's name (the cell name).
    """

    def __init__(self, data: bytes, spec: ObjectSpec, name: str) -> None:
        self.spec = spec
        self.name = name
        self._data = data
        self._lib = libbpf()
        self._log: mmap.mmap | None = mmap.mmap(-1, LOG_SIZE)
        self._log_addr = ctypes.addressof(ctypes.c_char.from_buffer(self._log))
        self._opts = ObjectOpenOpts(
            sz=ctypes.sizeof(ObjectOpenOpts),
            object_name=name.encode(),
            kernel_log_buf=self._log_addr,
            kernel_log_size=LOG_SIZE,
            kernel_log_level=0,
        )
        with _PRINT.capture() as messages:
            ptr = self._lib.bpf_object__open_mem(data, len(data), ctypes.byref(self._opts))
            err = ctypes.get_errno()
        if not ptr:
            self._release_log()
            text = messages.text.strip()
            raise LoadError(
                f"libbpf cannot open the object of {name!r}: "
                + (_last_line(text) or os.strerror(err or errno.EINVAL)),
                text,
            )
        self._ptr: int | None = ptr
        self.programs: dict[str, OpenProgram] = {}
        for prog in self._lib.programs(ptr):
            pname = self._lib.bpf_program__name(prog).decode()
            section = self._lib.bpf_program__section_name(prog).decode()
            autoload = bool(self._lib.bpf_program__autoload(prog))
            self.programs[pname] = OpenProgram(pname, section, autoload, prog)
        self.maps: dict[str, OpenMap] = {}
        for m in self._lib.maps(ptr):
            mname = self._lib.bpf_map__name(m).decode()
            self.maps[mname] = OpenMap(
                mname,
                int(self._lib.bpf_map__type(m)),
                int(self._lib.bpf_map__max_entries(m)),
                bool(self._lib.bpf_map__is_internal(m)),
                m,
            )

    # -- configuration ------------------------------------------------------------------

    def _live(self) -> int:
        if self._ptr is None:
            raise BpfnbError(f"object {self.name!r} is closed")
        return self._ptr

    def set_autoload(self, program: str, load: bool) -> None:
        """Load ``program`` or leave it out (it then stays in the object, unloaded)."""
        self._live()
        prog = self.programs[program]
        _check(self._lib.bpf_program__set_autoload(prog.ptr, load), f"autoload of {program!r}")
        prog.autoload = load

    def set_max_entries(self, map_name: str, entries: int) -> None:
        """Create ``map_name`` with ``entries`` entries."""
        self._live()
        m = self.maps[map_name]
        _check(self._lib.bpf_map__set_max_entries(m.ptr, entries), f"max_entries of {map_name!r}")
        m.max_entries = entries

    def set_autocreate(self, map_name: str, create: bool) -> None:
        """Create ``map_name`` at load or leave it out (no program may refer to it)."""
        self._live()
        m = self.maps[map_name]
        _check(self._lib.bpf_map__set_autocreate(m.ptr, create), f"autocreate of {map_name!r}")
        m.autocreate = create

    def map_flags(self, map_name: str) -> int:
        """The ``map_flags`` ``map_name`` will be created with."""
        self._live()
        return int(self._lib.bpf_map__map_flags(self.maps[map_name].ptr))

    def set_map_flags(self, map_name: str, flags: int) -> None:
        """Create ``map_name`` with ``flags`` as its ``map_flags`` (``BPF_F_MMAPABLE``...)."""
        self._live()
        _check(
            self._lib.bpf_map__set_map_flags(self.maps[map_name].ptr, flags),
            f"map_flags of {map_name!r}",
        )

    def reuse_map(self, map_name: str, fd: int) -> None:
        """Use the existing map ``fd`` instead of creating ``map_name`` (libbpf dups it)."""
        self._live()
        _check(self._lib.bpf_map__reuse_fd(self.maps[map_name].ptr, fd), f"reuse of {map_name!r}")

    def set_pin_path(self, map_name: str, path: str) -> None:
        """Pin ``map_name`` at ``path`` on load (reusing the map already pinned there)."""
        self._live()
        m = self.maps[map_name]
        _check(self._lib.bpf_map__set_pin_path(m.ptr, path.encode()), f"pin path of {map_name!r}")

    # -- phase 2 ------------------------------------------------------------------------

    def load(
        self,
        *,
        failure: Callable[[str, str], BaseException] | None = None,
    ) -> LoadedObject:
        """Create the maps and load the programs into the kernel.

        Parameters
        ----------
        failure : callable, optional
            ``failure(reason, log) -> exception`` turns a failed load into the error to
            raise (the pipeline quotes the cell's lines with it); by default a
            :class:`LoadError` with libbpf's last message.

        Returns
        -------
        LoadedObject
            Owns the object from now on (this OpenObject is spent).

        Raises
        ------
        LoadError
            (or what ``failure`` returns) when libbpf or the verifier refused; nothing
            stays in the kernel.
        """
        ptr = self._live()
        with _PRINT.capture() as messages:
            ret = self._lib.bpf_object__load(ptr)
        if ret < 0:
            log = self._failure_log(messages.text)
            reason = _last_line(messages.text) or os.strerror(-ret)
            self.close()
            raise (failure or _default_failure)(reason, log)
        try:
            loaded = LoadedObject(self, messages.text)
        except BaseException:
            self.close()
            raise
        self._ptr = None  # the LoadedObject owns it now
        self._release_log()
        return loaded

    def _failure_log(self, messages: str) -> str:
        """libbpf's messages, with the kernel's verifier log framed as libbpf frames it."""
        kernel_log = ctypes.string_at(self._log_addr).decode("utf-8", "replace")
        if not kernel_log.strip():
            return messages
        program = ""
        for line in messages.splitlines():
            if "prog '" in line and "load failed" in line:
                program = line.split("prog '", 1)[1].split("'", 1)[0]
        return (
            messages
            + f"libbpf: prog '{program}': -- BEGIN PROG LOAD LOG --\n"
            + kernel_log
            + ("" if kernel_log.endswith("\n") else "\n")
            + "-- END PROG LOAD LOG --\n"
        )

    def _release_log(self) -> None:
        log = getattr(self, "_log", None)
        if log is not None:
            self._log = None
            with contextlib.suppress(BufferError):
                log.close()

    def close(self) -> None:
        """Release the object without loading it (idempotent)."""
        ptr, self._ptr = getattr(self, "_ptr", None), None
        if ptr:
            self._lib.bpf_object__close(ptr)
        self._release_log()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()


def open_object(data: bytes, spec: ObjectSpec, name: str) -> OpenObject:
    """Parse an object with libbpf (phase 1); nothing is in the kernel yet."""
    return OpenObject(data, spec, name)


def _check(ret: int, what: str) -> None:
    if ret < 0:
        raise BpfnbError(f"libbpf: cannot set {what}: {os.strerror(-ret)}")


def _last_line(text: str) -> str:
    lines = [ln.removeprefix("libbpf: ").strip() for ln in text.splitlines() if ln.strip()]
    for line in reversed(lines):
        if "failed" in line or "error" in line.lower() or "invalid" in line.lower():
            return line
    return lines[-1] if lines else ""


def _default_failure(reason: str, log: str) -> BaseException:
    return LoadError(f"the kernel refused to load the object: {reason}", log)


# --------------------------------------------------------------------------------------
# Phase 3: loaded objects, attach, detach, close


@dataclass
class LoadedProgram:
    """One program of a loaded object.

    Attributes
    ----------
    name : str
        C function name.
    section : str
        SEC() text; the attach point of auto-attached programs.
    loaded : bool
        Whether it was loaded (False when left out with autoload).
    links : list of int
        libbpf ``struct bpf_link *`` of its attachments.
    """

    name: str
    section: str
    loaded: bool
    ptr: int = field(repr=False)
    links: list[int] = field(default_factory=list, repr=False)

    @property
    def attached(self) -> bool:
        """Whether it is attached now."""
        return bool(self.links)

    @property
    def attach_kind(self) -> str | None:
        """How libbpf attaches it by itself (None: not automatically)."""
        return sections.attach_kind(self.section)


class LoadedObject:
    """A loaded object: its programs, attachments and (duplicated) map fds.

    Made by :meth:`OpenObject.load`. :meth:`close` detaches everything and releases
    every kernel object this process holds for it.

    Attributes
    ----------
    name : str
        The object's name.
    spec : ObjectSpec
        Its description.
    programs : dict of str to LoadedProgram
        Every program of the object (loaded or not), in object order.
    map_fds : dict of str to OwnedFd
        An owned duplicate of every map's fd, by libbpf map name (``.rodata`` style
        names for global data).
    log : str
        What libbpf said while loading (warnings).
    """

    def __init__(self, opened: OpenObject, log: str) -> None:
        self._lib = opened._lib
        ptr = opened._ptr
        assert ptr is not None
        self._ptr: int | None = ptr
        self.name = opened.name
        self.spec = opened.spec
        self.log = log
        self._lock = threading.RLock()
        self.programs: dict[str, LoadedProgram] = {
            p.name: LoadedProgram(p.name, p.section, p.autoload, p.ptr)
            for p in opened.programs.values()
        }
        self.map_fds: dict[str, OwnedFd] = {}
        try:
            for m in opened.maps.values():
                if not m.autocreate:
                    continue  # its fd is libbpf's placeholder, not a map
                fd = int(self._lib.bpf_map__fd(m.ptr))
                if fd >= 0:
                    self.map_fds[m.name] = OwnedFd.dup(fd, f"map {m.name!r} of {self.name!r}")
        except BaseException:
            for owned in self.map_fds.values():
                owned.close()
            raise

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` ran."""
        return self._ptr is None

    def program_fd(self, name: str) -> int | None:
        """The kernel fd of a loaded program (owned by libbpf), None when not loaded."""
        with self._lock:
            if self._ptr is None:
                return None
            prog = self.programs[name]
            if not prog.loaded:
                return None
            fd = int(self._lib.bpf_program__fd(prog.ptr))
            return fd if fd >= 0 else None

    def attach(self, names: Iterable[str] | None = None) -> list[str]:
        """Attach loaded programs that libbpf attaches by itself and are not attached.

        Parameters
        ----------
        names : iterable of str, optional
            Only these programs (default: every auto-attachable loaded program).

        Returns
        -------
        list of str
            The programs attached now.

        Raises
        ------
        KernelFeatureError
            A kprobe program on a kernel without kprobes (nothing new stays attached).
        AttachError
            libbpf could not attach one (nothing new stays attached).
        """
        with self._lock:
            if self._ptr is None:
                raise BpfnbError(f"object {self.name!r} is closed")
            wanted = set(names) if names is not None else None
            todo = [
                p
                for p in self.programs.values()
                if p.loaded
                and not p.attached
                and p.attach_kind is not None
                and (wanted is None or p.name in wanted)
            ]
            for prog in todo:
                system.ensure_section_supported(prog.name, prog.section)
            done: list[LoadedProgram] = []
            try:
                for prog in todo:
                    with _PRINT.capture() as messages:
                        link = self._lib.bpf_program__attach(prog.ptr)
                        err = ctypes.get_errno()
                    if not link:
                        raise AttachError(
                            diagnostics.attach_error_message(
                                prog.name,
                                prog.section,
                                prog.attach_kind,
                                os.strerror(err),
                                messages.text,
                            )
                        )
                    prog.links.append(link)
                    done.append(prog)
            except BaseException:
                for prog in done:
                    self._destroy_links(prog)
                raise
            return [p.name for p in done]

    def attach_link(self, name: str, attach: Callable[[int], int | None]) -> None:
        """Attach program ``name`` with ``attach(prog_ptr) -> link_ptr`` (perf events...)."""
        with self._lock:
            prog = self.programs[name]
            link = attach(prog.ptr)
            if link:
                prog.links.append(link)

    def _destroy_links(self, prog: LoadedProgram) -> None:
        links, prog.links = prog.links, []
        for link in links:
            self._lib.bpf_link__destroy(link)

    def detach(self) -> None:
        """Detach every program (they and the maps stay loaded)."""
        with self._lock:
            for prog in self.programs.values():
                self._destroy_links(prog)

    def close(self) -> None:
        """Detach, then release the programs and maps (idempotent, thread-safe).

        The map fds handed out (:attr:`map_fds`) are closed too: views that still hold
        them raise :class:`~bpfnb.errors.ClosedError` from now on.
        """
        with self._lock:
            if self._ptr is None:
                return
            self.detach()
            for owned in self.map_fds.values():
                owned.close()
            ptr, self._ptr = self._ptr, None
            self._lib.bpf_object__close(ptr)

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "loaded"
        return f"<LoadedObject {self.name!r} {state}: {list(self.programs)}>"


def probe_load(data: bytes, spec: ObjectSpec, name: str) -> str | None:
    """Try to load an object and unload it at once: None when it loads, else the reason."""
    try:
        opened = open_object(data, spec, name)
    except LoadError as err:
        return str(err)
    try:
        loaded = opened.load()
    except LoadError as err:
        return str(err)
    loaded.close()
    return None


__all__ = [
    "Deferral",
    "LoadedObject",
    "LoadedProgram",
    "OpenMap",
    "OpenObject",
    "OpenProgram",
    "interrupts_deferred",
    "libbpf",
    "libbpf_version",
    "open_object",
    "probe_load",
]
