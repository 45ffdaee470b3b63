"""Which C type is submitted to each ring buffer / perf event array (pure, no kernel).

The user never writes Python to say what a ring carries. For each ring this module
reads the cell's C text and finds:

1. an explicit declaration ``BPFNB_EVENT_TYPE(events, struct event);`` (the macro from
   ``bpfnb/events.h``), which wins;
2. otherwise the types submitted at every call site of ``bpf_ringbuf_reserve``,
   ``bpf_ringbuf_output`` and ``bpf_perf_event_output`` naming that ring: the declared
   type of the variable the record is assigned to or passed from, a cast, or the
   ``sizeof`` argument. One type -> that type; several -> :class:`EventTypeError`
   listing them.

Clang keeps in BTF only the types reachable from globals and function signatures, so a
struct used only through a local variable would be missing from the object.
:func:`epilogue` returns C text the compiler appends after the cell: one pointer
variable per submitted type in the section ``.bpfnb.types`` (libbpf skips sections it
does not know, so nothing is loaded and the user sees no map), plus the definition of
the hidden ``bpfnb_lost`` counter map used by the events.h macros.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bpfnb.errors import EventTypeError
from bpfnb.object import btf
from bpfnb.object.spec import find_type

#: Helpers whose call sites name a ring, with (ring arg, data arg, size arg) indexes.
HELPERS: dict[str, tuple[int, int | None, int]] = {
    "bpf_ringbuf_reserve": (0, None, 1),
    "bpf_ringbuf_output": (0, 1, 2),
    "bpf_perf_event_output": (1, 3, 4),
}
ANCHOR_SECTION = ".bpfnb.types"
LOST_MAP = "bpfnb_lost"

_COMMENT_RE = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)
_CALL_RE = re.compile(r"\b(" + "|".join(HELPERS) + r")\s*\(")
_DECLARE_RE = re.compile(r"\bBPFNB_EVENT_TYPE\s*\(\s*(\w+)\s*,\s*([^)]*?)\s*\)")
_TYPE = r"(?:(?:struct|union|enum)\s+\w+|\w+)"
_VAR_RE = re.compile(
    r"(?:^|[;{}(,]|\bconst\b)\s*(?:const\s+|volatile\s+|static\s+|register\s+)*"
    r"(" + _TYPE + r")\s*(\*?)\s*(?:const\s+)?(\w+)\s*(\[[^\]]*\])?\s*(?=[=;,)\[])",
    re.M,
)
_NOT_TYPES = {"return", "if", "else", "while", "for", "do", "switch", "case", "goto", "sizeof"}
_TYPEDEF_RE = re.compile(r"\btypedef\b[^;]*?(\w+)\s*(?:\[[^\]]*\])?\s*;", re.S)
_SIZEOF_RE = re.compile(r"^sizeof\s*\(?\s*(.*?)\s*\)?$", re.S)
_CAST_RE = re.compile(r"\(\s*(" + _TYPE + r")\s*\*\s*\)\s*$")
_ASSIGN_RE = re.compile(r"(\w+)\s*=\s*(?:\(\s*" + _TYPE + r"\s*\*\s*\)\s*)?$")


@dataclass(frozen=True)
class Site:
    """One call of a submitting helper.

    Attributes
    ----------
    helper : str
        ``bpf_ringbuf_reserve``, ``bpf_ringbuf_output`` or ``bpf_perf_event_output``.
    ring : str
        The map name (``&events`` -> ``events``).
    type : str or None
        The C type submitted (``"struct event"``, ``"event_t"``), when it could be found.
    line : int
        1-based line of the call in the source.
    """

    helper: str
    ring: str
    type: str | None
    line: int


def strip_comments(source: str) -> str:
    """Remove C comments, keeping line breaks (so line numbers stay right)."""
    return _COMMENT_RE.sub(lambda m: "\n" * m.group(0).count("\n") or " ", source)


def ring_name(arg: str) -> str:
    """Map name of a helper's map argument: ``&events`` or ``(&events)`` -> ``events``."""
    return re.sub(r"[\s&()]", "", arg)


def _norm_type(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("const ", "").replace("volatile ", "")).strip()


def _split_args(text: str, start: int) -> tuple[list[str], int]:
    """Split the arguments of a call whose ``(`` is at ``start - 1``."""
    depth, i = 0, start
    args: list[str] = []
    cur: list[str] = []
    while i < len(text):
        c = text[i]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            if depth == 0:
                args.append("".join(cur).strip())
                return args, i + 1
            depth -= 1
        elif c == "," and depth == 0:
            args.append("".join(cur).strip())
            cur = []
            i += 1
            continue
        cur.append(c)
        i += 1
    return [*args, "".join(cur).strip()], i


def _variables(text: str) -> dict[str, tuple[str, bool, bool]]:
    """Declared variables: name -> (type, is pointer, is array). Later declarations win."""
    out: dict[str, tuple[str, bool, bool]] = {}
    for m in _VAR_RE.finditer(text):
        typ, star, name, array = m.group(1), m.group(2), m.group(3), m.group(4)
        if typ in _NOT_TYPES or name in _NOT_TYPES or typ.startswith("enum "):
            continue
        out[name] = (_norm_type(typ), bool(star), bool(array))
    return out


def _type_of_data(arg: str, variables: dict[str, tuple[str, bool, bool]]) -> str | None:
    """Type pointed to by a data argument: ``&e`` (e a struct), ``e`` (a pointer)."""
    arg = arg.strip()
    cast = re.match(r"^\(\s*(" + _TYPE + r")\s*\*\s*\)\s*(.*)$", arg)
    if cast:
        return _norm_type(cast.group(1))
    if arg.startswith("&"):
        var = variables.get(arg[1:].strip().strip("()"))
        return var[0] if var and not var[1] else None
    var = variables.get(arg.strip("()"))
    if var and (var[1] or var[2]):
        return var[0]
    return None


def _type_of_size(arg: str, variables: dict[str, tuple[str, bool, bool]]) -> str | None:
    m = _SIZEOF_RE.match(arg.strip())
    if not m:
        return None
    inner = m.group(1).strip()
    if re.fullmatch(_TYPE, inner) and inner not in variables:
        return _norm_type(inner)
    if inner.startswith("*"):
        var = variables.get(inner[1:].strip())
        return var[0] if var and (var[1] or var[2]) else None
    var = variables.get(inner)
    return var[0] if var and not var[1] and not var[2] else None


def find_sites(source: str) -> list[Site]:
    """Every call of a submitting helper in ``source``, with the type it submits."""
    text = strip_comments(source)
    variables = _variables(text)
    sites: list[Site] = []
    for m in _CALL_RE.finditer(text):
        helper = m.group(1)
        ring_i, data_i, size_i = HELPERS[helper]
        args, _ = _split_args(text, m.end())
        if len(args) <= max(ring_i, size_i):
            continue
        typ: str | None = None
        if data_i is None:
            before = text[max(0, m.start() - 200) : m.start()]
            cast = _CAST_RE.search(before)
            assign = _ASSIGN_RE.search(before)
            if cast:
                typ = _norm_type(cast.group(1))
            elif assign and assign.group(1) in variables:
                typ = variables[assign.group(1)][0]
        else:
            typ = _type_of_data(args[data_i], variables)
        if typ is None:
            typ = _type_of_size(args[size_i], variables)
        if typ == "void":
            typ = _type_of_size(args[size_i], variables)
        line = text.count("\n", 0, m.start()) + 1
        sites.append(Site(helper, ring_name(args[ring_i]), typ, line))
    return sites


def declared_types(source: str) -> dict[str, str]:
    """Types declared with ``BPFNB_EVENT_TYPE(ring, type)``: ring -> C type."""
    text = strip_comments(source)
    return {m.group(1): _norm_type(m.group(2)) for m in _DECLARE_RE.finditer(text)}


def candidates(source: str, ring: str) -> list[str]:
    """The distinct types submitted to ``ring`` (declaration first when there is one)."""
    declared = declared_types(source).get(ring)
    if declared:
        return [declared]
    out: list[str] = []
    for site in find_sites(source):
        if site.ring == ring and site.type and site.type not in out:
            out.append(site.type)
    return out


def event_type_name(source: str, ring: str) -> str | None:
    """The C type of the events of ``ring``, or None when the cell does not say.

    Raises
    ------
    EventTypeError
        When several types are submitted to the ring, listing them.
    """
    found = candidates(source, ring)
    if len(found) > 1:
        raise EventTypeError(
            f"ring {ring!r} receives several event types: {', '.join(found)}. Declare the one "
            f"to decode with BPFNB_EVENT_TYPE({ring}, {found[0]}); in the cell, or set "
            f"prog.{ring}.event_type = {found[0]!r}"
        )
    return found[0] if found else None


def _typedef_names(text: str) -> set[str]:
    """Names declared by file-scope-looking ``typedef`` statements (braces skipped)."""
    names: set[str] = set()
    for m in re.finditer(r"\btypedef\b", text):
        i = m.end()
        brace = text.find("{", i)
        semi = text.find(";", i)
        if semi < 0:
            break
        if 0 <= brace < semi:
            depth = 0
            for j in range(brace, len(text)):
                depth += {"{": 1, "}": -1}.get(text[j], 0)
                if depth == 0:
                    i = j + 1
                    break
            semi = text.find(";", i)
            if semi < 0:
                break
        found = _TYPEDEF_RE.match("typedef " + text[i : semi + 1].strip())
        if found:
            names.add(found.group(1))
    return names


def epilogue(source: str) -> str:
    """C text to append after the cell (after everything else).

    It defines the hidden ``bpfnb_lost`` counter map when the cell calls a submitting
    helper, and anchors every submitted struct/union type (and typedef declared in the
    cell) in BTF with a pointer variable in the non-loaded section ``.bpfnb.types``.
    Returns ``""`` for cells that submit no events.
    """
    text = strip_comments(source)
    sites = find_sites(source)
    if not sites:
        return ""
    typedefs = _typedef_names(text)
    lines = [f'struct bpfnb_lost_map {LOST_MAP} SEC(".maps");']
    seen: list[str] = []
    for site in sites:
        t = site.type
        if not t or t in seen:
            continue
        if t.startswith(("struct ", "union ")) or t in typedefs:
            seen.append(t)
    for i, t in enumerate(seen):
        lines.append(
            f'{t} *__bpfnb_anchor_{i} __attribute__((section("{ANCHOR_SECTION}"), used, unused));'
        )
    return "\n".join(lines) + "\n"


def resolve(types: btf.Btf, name: str) -> btf.Type:
    """Find the BTF type named by a C type name (``struct event``, ``event_t``, ``u64``).

    Raises
    ------
    EventTypeError
        When the object's BTF has no such type.
    """
    found = find_type(types, name)
    if found is None:
        raise EventTypeError(
            f"type {_norm_type(name)!r} is not in the program's BTF; declare it in the cell "
            "(struct definitions used by events are kept automatically)"
        )
    return found
