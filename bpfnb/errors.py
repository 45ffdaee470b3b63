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


class DecoderError(BpfnbError, ValueError):
    """A decoder chosen from Python is unknown, or does not fit its column's C type."""
