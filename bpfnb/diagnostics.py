"""Turn what libbpf printed during a failed load into a short, precise error.

Pure: works on the text libbpf wrote to stderr. The verifier log interleaves
instructions with source annotations (``; *n += 1; @ prog.bpf.c:8``) taken from the
object's BTF line info; the last annotation in the cell before the failure names the
cell line, and the last line before ``processed N insns`` is the verifier's reason.

Examples
--------
>>> log = "libbpf: prog 'f': -- BEGIN PROG LOAD LOG --\\n; x @ c.bpf.c:3\\n"
>>> log += "R0 invalid mem access 'map_value_or_null'\\nprocessed 8 insns\\n-- END PROG LOAD LOG --"
>>> failure = parse_load_log(log, "c.bpf.c")
>>> failure.program, failure.line, failure.hint is not None
('f', 3, True)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_BEGIN_RE = re.compile(r"libbpf: prog '(?P<prog>[^']+)': -- BEGIN PROG LOAD LOG --")
_END = "-- END PROG LOAD LOG --"
_ANNOTATION_RE = re.compile(r"^; (?P<text>.*) @ (?P<file>[^:@]+):(?P<line>\d+)$")
_INSN_RE = re.compile(r"^\d+: (\(|R\d|frame)")
_STATE_RE = re.compile(r"^(\d+: )?(R\d+_?\w*=|frame\d+:|from \d+ to \d+:)")
_FAILED_RE = re.compile(
    r"libbpf: prog '(?P<prog>[^']+)': (?:BPF program )?load failed: (?P<err>.*)"
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
