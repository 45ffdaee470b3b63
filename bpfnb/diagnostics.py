"""Every message that names a line of a cell: clang diagnostics, verifier and attach errors.

Pure: works on the text clang and libbpf wrote. Three kinds of failure end up here:

- clang's diagnostics (:func:`parse_diagnostics`, :func:`format_compile_error`,
  :func:`format_warnings`);
- a failed load (:func:`parse_load_log`, :func:`load_error`): the verifier log
  interleaves instructions with source annotations (``; *n += 1; @ prog.bpf.c:8``) taken
  from the object's BTF line info; the last annotation in the cell before the failure
  names the cell line, and the last line before ``processed N insns`` is the verifier's
  reason;
- a failed attach (:func:`attach_error_message`).

Line numbers: clang and the verifier count the cell's C text from 1. A notebook numbers
the ``%%bpf NAME`` line as its line 1, so the first C line is *gutter* line 2. Every
function that names a cell line takes ``line_offset`` (1 for ``%%bpf`` cells, 0 for
files and ``bpfnb.load(text)``) and shows ``cell line + line_offset``: the number the
user sees next to the line. :func:`quote_cell_line` is the one place that quotes a line.

Examples
--------
>>> log = "libbpf: prog 'f': -- BEGIN PROG LOAD LOG --\\n; x @ c.bpf.c:3\\n"
>>> log += "R0 invalid mem access 'map_value_or_null'\\nprocessed 8 insns\\n-- END PROG LOAD LOG --"
>>> failure = parse_load_log(log, "c.bpf.c")
>>> failure.program, failure.line, failure.hint is not None
('f', 3, True)
>>> print("\\n".join(quote_cell_line("int x = ;\\n", 1, column=9, line_offset=1)))
     2 | int x = ;
       |         ^
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

from bpfnb.errors import LoadError, VerifierError

_BEGIN_RE = re.compile(r"libbpf: prog '(?P<prog>[^']+)': -- BEGIN PROG LOAD LOG --")
_END = "-- END PROG LOAD LOG --"
_ANNOTATION_RE = re.compile(r"^; (?P<text>.*) @ (?P<file>[^:@]+):(?P<line>\d+)$")
_INSN_RE = re.compile(r"^\d+: (\(|R\d|frame)")
_STATE_RE = re.compile(r"^(\d+: )?(R\d+_?\w*=|frame\d+:|from \d+ to \d+:)")
_FAILED_RE = re.compile(
    r"libbpf: prog '(?P<prog>[^']+)': (?:BPF program )?load failed: (?P<err>.*)"
)
_DIAG_RE = re.compile(
    r"^(?P<file>[^:\n]+):(?P<line>\d+):(?P<col>\d+): "
    r"(?P<kind>fatal error|error|warning|note): (?P<msg>.*)$"
)
_NOISE_RE = re.compile(
    r"^(processed \d+ insns|verification time|stack depth|max_states_per_insn|"
    r"arg#\d+ reference type|func#\d+ |Func#|Validating |Live regs|mark_precise|"
    r"last_idx|regs=|parent didn't|\s*$)"
)

HINTS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"invalid mem access '\w*or_null'"),
        "a pointer that may be NULL is used without a check: test the result of "
        "bpf_map_lookup_elem() / bpf_ringbuf_reserve() (if (!p) return 0;) before using it",
    ),
    (
        re.compile(
            r"back-edge from insn|infinite loop detected|loop is not bounded|"
            r"unbounded loop"
        ),
        "the verifier cannot prove the loop ends: give it a constant bound "
        "(for (int i = 0; i < 64; i++)) or use bpf_loop()",
    ),
    (
        re.compile(
            r"invalid (?:indirect )?(?:read|write|access) (?:from|to|of) stack|"
            r"invalid stack off|invalid size of register spill"
        ),
        "a stack access is out of bounds or reads uninitialised bytes: check array "
        "indexes and initialise local variables (e.g. struct x v = {};)",
    ),
    (
        re.compile(
            r"invalid access to map value|min value is negative|"
            r"value is outside of the allowed memory range|invalid access to memory"
        ),
        "a map value or memory access may be out of bounds: check the index against the "
        "size (if (i >= N) return 0;) so the verifier can see the bound",
    ),
    (
        re.compile(
            r"unknown func|program of this type cannot use helper|"
            r"helper call might sleep|not allowed for prog type|"
            r"calling kernel function .* is not allowed"
        ),
        "this helper is not allowed for this program type: use another attach point "
        "(fentry, tp_btf, ...) or another helper",
    ),
    (
        re.compile(r"Unreleased reference|reference has not been released"),
        "a reference is not released on every path: each bpf_ringbuf_reserve() needs a "
        "bpf_ringbuf_submit() or bpf_ringbuf_discard() (and each acquire its release) "
        "on every return path",
    ),
    (
        re.compile(r"cannot call GPL-restricted function|GPL-compatible"),
        "this helper is GPL-only: declare a GPL-compatible license "
        '(char LICENSE[] SEC("license") = "GPL";) or drop your license line',
    ),
    (
        re.compile(r"R\d+ invalid mem access 'scalar'"),
        "a plain number is dereferenced as a pointer (often a kernel pointer read "
        "directly): read kernel memory with BPF_CORE_READ() or bpf_probe_read_kernel()",
    ),
    (
        re.compile(
            r"too many instructions|program is too large|BPF program is too large|"
            r"The sequence of \d+ jumps is too complex"
        ),
        "the program is too large or too complex for the verifier: shorten loops, "
        "split work into tail calls or use bpf_loop()",
    ),
    (
        re.compile(r"R\d+ !read_ok"),
        "a register is read before it is set: initialise every variable on every path",
    ),
    (
        re.compile(r"misaligned"),
        "a misaligned access: read fields through their own types or bpf_probe_read_kernel()",
    ),
    (
        re.compile(r"R\d+ type=ctx expected|invalid bpf_context access"),
        "the program reads its context wrongly: use the tracepoint's struct "
        "(struct trace_event_raw_...) or BPF_PROG/BPF_CORE_READ for its fields",
    ),
)


@dataclass(frozen=True)
class LoadFailure:
    """What went wrong in a failed load, as far as the log tells.

    Attributes
    ----------
    program : str
        The rejected program, or ``""`` when no program log was found.
    line : int or None
        The cell line of the last source annotation before the failure.
    source_text : str or None
        The annotated source text of that line.
    reason : str
        The verifier's key message (or libbpf's last error line).
    hint : str or None
        A plain-language hint for common rejections.
    verifier_log : str
        The program's verifier log alone.
    """

    program: str
    line: int | None
    source_text: str | None
    reason: str
    hint: str | None
    verifier_log: str


def hint_for(reason: str) -> str | None:
    """Return a plain-language hint for a verifier message, or None."""
    for pattern, hint in HINTS:
        if pattern.search(reason):
            return hint
    return None


def _reason(block: list[str]) -> str:
    candidates = [
        line.strip()
        for line in block
        if not _NOISE_RE.match(line)
        and not _ANNOTATION_RE.match(line)
        and not _INSN_RE.match(line)
        and not _STATE_RE.match(line)
        and not line.startswith(";")
    ]
    return candidates[-1] if candidates else ""


def parse_load_log(log: str, cell_file: str) -> LoadFailure:
    """Parse libbpf's output of a failed load.

    Parameters
    ----------
    log : str
        Everything libbpf wrote to stderr while loading.
    cell_file : str
        The file name clang saw for the cell (``NAME.bpf.c``).

    Returns
    -------
    LoadFailure
    """
    lines = log.splitlines()
    for index, line in enumerate(lines):
        begin = _BEGIN_RE.search(line)
        if not begin:
            continue
        block: list[str] = []
        for inner in lines[index + 1 :]:
            if _END in inner:
                break
            block.append(inner)
        cell_line, text = None, None
        for inner in block:
            annotation = _ANNOTATION_RE.match(inner)
            if annotation and annotation["file"].rsplit("/", 1)[-1] == cell_file:
                number = int(annotation["line"])
                if number > 0:
                    cell_line, text = number, annotation["text"].strip()
        reason = _reason(block)
        whole = "\n".join(block)
        hint = hint_for(reason) or hint_for(whole)
        return LoadFailure(begin["prog"], cell_line, text, reason, hint, whole)
    program = ""
    for line in lines:
        failed = _FAILED_RE.search(line)
        if failed:
            program = failed["prog"]
    errors = [ln.removeprefix("libbpf: ").strip() for ln in lines if ln.strip()]
    reason = errors[0] if errors else "the kernel refused the object (no log)"
    for line in errors:
        if "failed" in line or "error" in line.lower() or "invalid" in line.lower():
            reason = line
            break
    return LoadFailure(program, None, None, reason, hint_for(reason), "")


# -- quoting a cell line ------------------------------------------------------------------


def quote_cell_line(
    source: str, line: int, *, column: int | None = None, line_offset: int = 0
) -> list[str]:
    """Quote one line of a cell with its gutter number, and a caret under ``column``.

    Parameters
    ----------
    source : str
        The cell's C text.
    line : int
        1-based line in ``source`` (clang's and the verifier's numbering).
    column : int, optional
        1-based column; adds a second line with a caret under it.
    line_offset : int
        Added to ``line`` for the number shown (1 for ``%%bpf`` cells).

    Returns
    -------
    list of str
        ``["    12 | text"]`` (plus ``["       |    ^"]`` with a column), or ``[]``
        when ``line`` is not a line of ``source``.
    """
    lines = source.splitlines()
    if not 0 < line <= len(lines):
        return []
    out = [f"  {line + line_offset:>4} | {lines[line - 1]}"]
    if column is not None and column > 0:
        out.append(f"       | {' ' * (column - 1)}^")
    return out


def first_lines(text: str, n: int) -> str:
    """Return the first ``n`` lines of ``text``, saying how many more there were."""
    lines = text.strip().splitlines()
    more = f"\n... ({len(lines) - n} more lines in err.log)" if len(lines) > n else ""
    return "\n".join(lines[:n]) + more


# -- clang ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Diagnostic:
    """One clang diagnostic, located in the cell when ``in_cell`` is true.

    Attributes
    ----------
    kind : str
        ``error``, ``fatal error``, ``warning`` or ``note``.
    message : str
        clang's message.
    line, column : int
        Position. For a diagnostic in the cell, ``line`` is the line the user sees
        (clang's cell line plus the ``line_offset`` given to :func:`parse_diagnostics`).
    file : str
        The file clang named (the cell file or a header).
    in_cell : bool
        Whether the position is in the cell's own text (not in a header, nor in the
        lines bpfnb appends after the cell).
    """

    kind: str
    message: str
    line: int
    column: int
    file: str
    in_cell: bool

    def shifted(self, line_offset: int) -> Diagnostic:
        """Return this diagnostic with ``line_offset`` added to a cell line."""
        if not self.in_cell or not line_offset:
            return self
        return Diagnostic(
            self.kind, self.message, self.line + line_offset, self.column, self.file, True
        )


def parse_diagnostics(
    stderr: str, source_name: str, *, cell_lines: int | None = None, line_offset: int = 0
) -> list[Diagnostic]:
    """Parse clang's stderr into diagnostics, marking those located in the cell.

    Parameters
    ----------
    stderr : str
        clang's output (``-fno-caret-diagnostics``).
    source_name : str
        The cell's file name as clang saw it (``NAME.bpf.c``).
    cell_lines : int, optional
        How many lines the cell has: positions after them are in the lines bpfnb
        appended (license, event types) and are not ``in_cell``.
    line_offset : int
        Added to the line of every diagnostic in the cell.
    """
    result = []
    for raw in stderr.splitlines():
        m = _DIAG_RE.match(raw)
        if not m:
            continue
        line = int(m["line"])
        in_cell = os.path.basename(m["file"]) == source_name and (
            cell_lines is None or line <= cell_lines
        )
        result.append(
            Diagnostic(
                kind=m["kind"],
                message=m["msg"],
                line=line + line_offset if in_cell else line,
                column=int(m["col"]),
                file=m["file"],
                in_cell=in_cell,
            )
        )
    return result


#: clang errors that say a name is declared twice (the only ones a clash explains).
_REDEFINITION_RE = re.compile(
    r"^(?:redefinition of|conflicting types for|redeclaration of|typedef redefinition"
    r"|redefinition of '[^']+' as different kind of symbol|non-static declaration of"
    r"|static declaration of)"
)
_PREVIOUS_RE = re.compile(r"^previous (?:definition|declaration|implicit declaration) is here")


def prelude_clash(diagnostics: Sequence[Diagnostic], error: Diagnostic) -> str | None:
    """Explain an error that redefines a name the prelude already defines.

    Only for an error that *is* a redefinition (``redefinition of 'x'``, ``conflicting
    types for 'x'``...) whose "previous definition is here" note points into
    ``vmlinux.h`` or a libbpf ``bpf_*.h`` header; any other error followed by a note in
    those headers (a wrong argument count, "'bpf_probe_read' declared here") gets no
    such hint.
    """
    if not _REDEFINITION_RE.match(error.message):
        return None
    index = diagnostics.index(error)
    following = diagnostics[index + 1 : index + 2]
    if not following or following[0].kind != "note" or following[0].in_cell:
        return None
    if not _PREVIOUS_RE.match(following[0].message):
        return None
    header = os.path.basename(following[0].file)
    name = re.search(r"'([^']+)'", error.message)
    what = f"'{name.group(1)}'" if name else "this name"
    if header.endswith(".preamble.h"):
        return (
            f"{what} is a kfunc of this kernel, which bpfnb declares for the cell: declare "
            "it exactly as the kernel does, or give your own function another name"
        )
    if header != "vmlinux.h" and not header.startswith("bpf_"):
        return None
    return f"{what} is already defined by {header}, which every cell includes: rename it"


_IMPLICIT_RE = re.compile(r"implicit declaration of function '([^']+)'")


def implicit_declaration(error: Diagnostic) -> str | None:
    """Explain a call of a function nothing declares (a typo, a missing header)."""
    found = _IMPLICIT_RE.search(error.message)
    if found is None:
        return None
    name = found.group(1)
    return (
        f"nothing declares '{name}': it is not a BPF helper, a kfunc of this kernel or a "
        "function of the cell or its headers. Check the spelling, include the header that "
        f"declares it, or declare a kfunc as `extern ... {name}(...) __ksym;`"
    )


def _describe(diag: Diagnostic, source: str, line_offset: int) -> list[str]:
    if diag.in_cell:
        return [
            f"  line {diag.line}, col {diag.column}: {diag.message}",
            *quote_cell_line(
                source, diag.line - line_offset, column=diag.column, line_offset=line_offset
            ),
        ]
    base = os.path.basename(diag.file)
    where = "the lines bpfnb appends to the cell" if base.endswith(".bpf.c") else base
    return [f"  in {where}:{diag.line}: {diag.message}"]


def format_compile_error(
    name: str,
    source: str,
    diagnostics: Sequence[Diagnostic],
    stderr: str,
    limit: int = 5,
    *,
    line_offset: int = 0,
) -> str:
    """Format clang's errors as a short message quoting the cell's own lines.

    Parameters
    ----------
    name : str
        The cell's name.
    source : str
        The cell's C text.
    diagnostics : sequence of Diagnostic
        From :func:`parse_diagnostics` with the same ``line_offset``.
    stderr : str
        clang's whole output (shown when no error could be parsed).
    limit : int
        How many errors to show.
    line_offset : int
        What was added to the cell lines of ``diagnostics``.
    """
    errors = [d for d in diagnostics if d.kind in ("error", "fatal error")]
    if not errors:
        return f"clang failed on cell {name!r}:\n{first_lines(stderr, 10)}"
    count = len(errors)
    out = [f"clang: {count} error{'s' if count != 1 else ''} in cell {name!r}"]
    for diag in errors[:limit]:
        out += _describe(diag, source, line_offset)
        note = prelude_clash(diagnostics, diag) or implicit_declaration(diag)
        if note:
            out.append(f"  hint: {note}")
    if count > limit:
        out.append(f"  ... and {count - limit} more (err.log has clang's whole output)")
    return "\n".join(out)


def format_warnings(
    name: str, source: str, warnings: Sequence[Diagnostic], limit: int = 3, *, line_offset: int = 0
) -> str:
    """Format clang's warnings like :func:`format_compile_error` formats errors.

    ``warnings`` come from :func:`parse_diagnostics` (or ``CompileResult.warnings``)
    with the same ``line_offset``. Returns ``""`` when there are none.
    """
    if not warnings:
        return ""
    count = len(warnings)
    out = [f"clang: {count} warning{'s' if count != 1 else ''} in cell {name!r}"]
    for diag in warnings[:limit]:
        out += _describe(diag, source, line_offset)
    if count > limit:
        out.append(f"  ... and {count - limit} more")
    return "\n".join(out)


# -- load and attach ------------------------------------------------------------------------


def load_error(
    failure: str, log: str, cell_file: str, source: str, *, line_offset: int = 0
) -> LoadError:
    """Build the error of a failed load from what libbpf printed.

    Parameters
    ----------
    failure : str
        The text of the exception the loader caught (used when the log says nothing).
    log : str
        Everything libbpf wrote while loading.
    cell_file : str
        The file name clang saw for the cell (``NAME.bpf.c``).
    source : str
        The cell's C text, to quote the failing line.
    line_offset : int
        Added to cell line numbers (1 for ``%%bpf`` cells).

    Returns
    -------
    LoadError
        A :class:`~bpfnb.errors.VerifierError` when the verifier rejected a program
        (``line`` is the line the user sees), else a plain LoadError.
    """
    parsed = parse_load_log(log, cell_file)
    if not parsed.verifier_log:
        message = f"the kernel refused to load the object: {parsed.reason or failure}"
        if parsed.hint:
            message += f"\nhint: {parsed.hint}"
        return LoadError(message, log)
    lines = source.splitlines()
    in_cell = parsed.line is not None and 0 < parsed.line <= len(lines)
    shown = parsed.line + line_offset if in_cell and parsed.line is not None else None
    where = f" at cell line {shown}" if shown is not None else ""
    message = f"the verifier rejected program {parsed.program!r}{where}:"
    if in_cell and parsed.line is not None:
        message += "\n" + "\n".join(quote_cell_line(source, parsed.line, line_offset=line_offset))
    elif parsed.source_text:
        message += f"\n       | {parsed.source_text}"
    message += f"\n  {parsed.reason}"
    if parsed.hint:
        message += f"\nhint: {parsed.hint}"
    return VerifierError(
        message,
        log,
        program=parsed.program,
        line=shown,
        source_line=lines[parsed.line - 1] if in_cell and parsed.line is not None else None,
        reason=parsed.reason,
        hint=parsed.hint,
    )


def attach_error_message(
    program: str, section: str, kind: str | None, error: str, libbpf_log: str
) -> str:
    """Explain why a program could not be attached.

    Parameters
    ----------
    program : str
        The program's C function name.
    section : str
        Its SEC() text.
    kind : str or None
        Its attach kind (``tracepoint``, ``tp_btf``, ``fentry``...), when known.
    error : str
        The text of the exception the loader caught.
    libbpf_log : str
        What libbpf printed while attaching (its last line is the most precise).
    """
    details = [ln.removeprefix("libbpf: ") for ln in libbpf_log.splitlines() if ln.strip()]
    text = f'cannot attach program {program!r} to SEC("{section}")'
    if details:
        text += ": " + details[-1]
    elif error:
        text += f": {error}"
    if kind == "tracepoint":
        tp = section.split("/", 1)[1]
        text += (
            f"\nhint: check the tracepoint exists: ls /sys/kernel/tracing/events/{tp} "
            "(syscall tracepoints are syscalls/sys_enter_NAME and syscalls/sys_exit_NAME)"
        )
    elif kind in ("fentry", "fexit", "tp_btf", "fmod_ret", "lsm"):
        text += "\nhint: check the kernel function exists in /sys/kernel/btf/vmlinux "
        text += "(bpftool btf dump file /sys/kernel/btf/vmlinux | grep FUNC)"
    return text
