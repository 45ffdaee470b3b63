"""The one error hierarchy of bpfnb.

Every error bpfnb raises on purpose derives from :class:`BpfnbError`. The notebook
layer shows these as short messages without a Python traceback, so each message
must stand on its own: what went wrong, where (the cell line when there is one),
and what to do about it.
"""

from __future__ import annotations


class BpfnbError(Exception):
    """Root of every error bpfnb raises on purpose.

    In IPython the error shows as its short message, with no traceback
    (``_render_traceback_`` is IPython's hook for that).
    """

    def _render_traceback_(self) -> list[str]:
        text = f"\x1b[0;31m{type(self).__name__}\x1b[0m: {self}"
        if getattr(self, "log", ""):
            text += "\n(the whole log: sys.last_value.log)"
        return [text]


class CommandError(BpfnbError):
    """Bad arguments to ``%%bpf`` / ``%bpf`` (unknown option, missing value...)."""


class ToolMissingError(BpfnbError):
    """A required tool or header (clang, bpftool, libbpf headers) is missing."""


class PrivilegeError(BpfnbError):
    """The process lacks root or CAP_BPF + CAP_PERFMON."""


class KernelFeatureError(BpfnbError):
    """The running kernel lacks a feature the program needs (BTF, kprobes...)."""


class CompileError(BpfnbError):
    """clang rejected the cell.

    Attributes
    ----------
    diagnostics : list
        Parsed diagnostics, with line numbers of the cell itself.
    log : str
        clang's whole output.
    """

    def __init__(self, message: str, diagnostics: list | None = None, log: str = "") -> None:
        super().__init__(message)
        self.diagnostics = diagnostics or []
        self.log = log


class LoadError(BpfnbError):
    """libbpf or the kernel refused to load the object.

    Attributes
    ----------
    log : str
        Everything libbpf wrote while loading (the whole verifier log included).
    """

    def __init__(self, message: str, log: str = "") -> None:
        super().__init__(message)
        self.log = log


class VerifierError(LoadError):
    """The verifier rejected a program.

    Attributes
    ----------
    program : str
        The rejected program (C function name).
    line : int or None
        The cell line the verifier failed at, when the log names one.
    source_line : str or None
        The text of that line.
    reason : str
        The verifier's key message, e.g. ``R0 invalid mem access 'map_value_or_null'``.
    hint : str or None
        A plain-language hint for common rejections.
    """

    def __init__(
        self,
        message: str,
        log: str = "",
        *,
        program: str = "",
        line: int | None = None,
        source_line: str | None = None,
        reason: str = "",
        hint: str | None = None,
    ) -> None:
        super().__init__(message, log)
        self.program = program
        self.line = line
        self.source_line = source_line
        self.reason = reason
        self.hint = hint


class AttachError(BpfnbError):
    """A program loaded but could not be attached."""


class MapTypeError(BpfnbError, TypeError):
    """A key or value given from Python does not fit the map's C type."""


class EventTypeError(BpfnbError):
    """The event type of a ring buffer / perf event array is unknown or ambiguous."""


class BtfError(BpfnbError):
    """The BTF or ELF data of an object could not be parsed."""


class CacheError(BpfnbError):
    """bpfnb's cache directory is unsafe (a symbolic link, someone else's) or unusable."""


class ClosedError(BpfnbError):
    """A map, stream or global of a program that was closed (stopped or replaced).

    Its file descriptor is no longer ours: the number may already belong to something
    else, so nothing reads through it again.
    """


class OutputExistsError(BpfnbError, FileExistsError):
    """An output file (``record()``, ``to_csv()``, ``%bpf export``) exists already.

    bpfnb never replaces a file unless asked (``overwrite=True``, ``--force``), and
    never writes through a symbolic link.
    """


class RecordingError(BpfnbError, OSError):
    """Writing a recording failed (a full disk...): the recording stopped there.

    The file ends with the last complete row written before the failure.
    """


class StreamWarning(UserWarning):
    """Something an event stream wants the user to know: a recording that stopped, an
    ``on_event`` callback that did not return."""


class UnsupportedOperationError(BpfnbError, TypeError):
    """An operation the map's kind does not have (e.g. ``items()`` on a ring buffer).

    The message names what that kind of map supports.
    """


# --------------------------------------------------------------------------------------
# bpf(2) failures (raised by bpfnb.kernel.bpf)

ENOTSUPP = 524  # kernel-internal "operation not supported", leaks out of bpf(2)


class BpfSyscallError(BpfnbError, OSError):
    """bpf(2) failed; ``errno`` is set and the message names the command.

    Attributes
    ----------
    command : str
        The bpf command, e.g. ``BPF_MAP_UPDATE_ELEM``.
    what : str
        What it was applied to (``map 'counts'``).
    """

    def __init__(self, err: int, command: str, what: str = "") -> None:
        import errno as _errno
        import os as _os

        name = _errno.errorcode.get(err, f"errno {err}")
        if err == ENOTSUPP:
            name, text = "ENOTSUPP", "Operation not supported"
        else:
            text = _os.strerror(err)
        where = f" on {what}" if what else ""
        OSError.__init__(self, err, f"bpf({command}){where} failed: {name} ({text})")
        self.command = command
        self.what = what

    def __str__(self) -> str:
        return str(self.strerror)


class MapFullError(BpfSyscallError):
    """An update could not add a key: the map holds ``max_entries`` keys (E2BIG/ENOSPC)."""


class KeyExistsError(BpfSyscallError):
    """``BPF_NOEXIST`` update of a key that is already in the map (EEXIST)."""


class BpfPermissionError(BpfSyscallError, PrivilegeError):
    """bpf(2) refused for lack of privilege (EPERM/EACCES): run as root or with CAP_BPF."""


class BpfInvalidError(BpfSyscallError):
    """The kernel rejected the arguments (EINVAL): wrong sizes, flags or map type."""


class BpfNotSupportedError(BpfSyscallError, KernelFeatureError):
    """The kernel has no such operation for this map type (ENOTSUPP/EOPNOTSUPP)."""


class BpfKeyError(KeyError):
    """No such key in the map (ENOENT from a lookup, delete or update with BPF_EXIST)."""

    def __init__(self, key: object, what: str = "") -> None:
        super().__init__(key)
        self.key = key
        self.what = what

    def __str__(self) -> str:
        where = f" in {self.what}" if self.what else ""
        return f"no key {self.key!r}{where}"


class DecoderError(BpfnbError, ValueError):
    """A decoder chosen from Python is unknown, or does not fit its column's C type."""


class SqlError(BpfnbError):
    """DuckDB refused a statement over live data (syntax, unknown table or column)."""


class FleetError(BpfnbError):
    """A fleet operation failed: no cluster connected, no such host, every host failed."""


class NotAuthorisedError(FleetError):
    """A fleet worker refused a program: the client did not prove the worker's secret."""
