"""Tracepoint argument structs from tracefs ``format`` files (for ``TRACEPOINT_PROBE``).

BCC's ``TRACEPOINT_PROBE(sched, sched_process_exit)`` gives the program an ``args``
pointer whose fields are the tracepoint's own (``args->pid``, ``args->comm``), as the
kernel describes them in ``events/sched/sched_process_exit/format``. vmlinux.h has no
such struct for every tracepoint (syscall tracepoints share one generic struct), so
bpfnb writes it from the format file: fields at the offsets the kernel gives, integers
typed by their size and signedness (``__u64`` for a syscall's ``int dfd`` stored in
8 bytes), pointers as declared, ``__data_loc`` fields as ``__u32 data_loc_NAME`` (as
BCC names them), gaps filled with padding.

Reading tracefs needs no privilege beyond reading those files (root on most
machines); nothing is written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from bpfnb.errors import CompileError

#: Where tracefs is found, in order.
TRACEFS_DIRS = (Path("/sys/kernel/tracing"), Path("/sys/kernel/debug/tracing"))
_FIELD_RE = re.compile(
    r"field:(?P<decl>[^;]+);\s*offset:(?P<offset>\d+);\s*size:(?P<size>\d+);"
    r"(?:\s*signed:(?P<signed>-?\d+);)?"
)
_DECL_RE = re.compile(r"^(?P<type>.*?)\s*\b(?P<name>[A-Za-z_]\w*)\s*(?P<array>\[[^\]]*\])?$")


@dataclass(frozen=True)
class Field:
    """One field of a tracepoint's format.

    Attributes
    ----------
    declaration : str
        As the format file writes it (``char comm[16]``).
    offset, size : int
        Where it is in the record.
    signed : bool
        Whether an integer field is signed.
    """

    declaration: str
    offset: int
    size: int
    signed: bool


def format_path(category: str, event: str) -> Path | None:
    """The ``format`` file of ``category:event``, or None when there is none."""
    for base in TRACEFS_DIRS:
        path = base / "events" / category / event / "format"
        if path.is_file():
            return path
    return None


def parse_format(text: str) -> list[Field]:
    """The fields of a ``format`` file's text, in order."""
    fields = []
    for m in _FIELD_RE.finditer(text):
        fields.append(
            Field(
                m.group("decl").strip(),
                int(m.group("offset")),
                int(m.group("size")),
                m.group("signed") == "1",
            )
        )
    return fields


def _member(field: Field) -> tuple[str, int]:
    """C member declaration of a field and its alignment."""
    decl = field.declaration
    if decl.startswith("__data_loc"):
        name = re.sub(r"\[\s*\]$", "", decl).split()[-1]
        name = re.sub(r"\W", "", name)
        return f"__u32 data_loc_{name}", 4
    m = _DECL_RE.match(decl)
    if m is None:
        raise ValueError(decl)
    typ, name, array = m.group("type").strip(), m.group("name"), m.group("array")
    if array is not None:
        count = array.strip("[] ")
        if count.isdigit() and int(count) and field.size % int(count) == 0:
            elem = field.size // int(count)
            if elem == 1 and "char" in typ:
                return f"char {name}[{count}]", 1
            if elem in (1, 2, 4, 8):
                sign = "s" if field.signed else "u"
                return f"__{sign}{8 * elem} {name}[{count}]", elem
        return f"__u8 {name}[{field.size}]", 1
    if "*" in typ and field.size == 8:
        return f"{typ} {name}", 8
    if field.size in (1, 2, 4, 8):
        sign = "s" if field.signed else "u"
        return f"__{sign}{8 * field.size} {name}", field.size
    return f"__u8 {name}[{field.size}]", 1


def struct_text(name: str, fields: list[Field]) -> str:
    """A one-line C definition of ``struct NAME`` with the fields at their offsets."""
    parts = []
    at = 0
    for i, field in enumerate(sorted(fields, key=lambda f: f.offset)):
        member, align = _member(field)
        if field.offset < at:
            continue  # overlapping (never in practice): keep the first
        natural = -(-at // align) * align
        if field.offset != natural:
            parts.append(f"char __pad{i}[{field.offset - at}];")
            if field.offset % align:
                member = f"__u8 {member.split()[-1].split('[')[0]}[{field.size}]"
        parts.append(f"{member};")
        at = field.offset + field.size
    return f"struct {name} {{ {' '.join(parts)} }};"


def tracepoint_struct(category: str, event: str, name: str) -> str:
    """The args struct of ``category:event`` named ``name`` (one line of C).

    Raises
    ------
    CompileError
        When tracefs has no such tracepoint (or cannot be read).
    """
    path = format_path(category, event)
    if path is None:
        raise CompileError(
            f"TRACEPOINT_PROBE({category}, {event}): this kernel has no tracepoint "
            f"{category}:{event} (no events/{category}/{event}/format in tracefs at "
            f"{' or '.join(str(d) for d in TRACEFS_DIRS)}; is tracefs mounted and readable?)"
        )
    try:
        text = path.read_text()
    except OSError as err:
        raise CompileError(f"cannot read {path}: {err.strerror}") from None
    return struct_text(name, parse_format(text))


__all__ = ["Field", "format_path", "parse_format", "struct_text", "tracepoint_struct"]
