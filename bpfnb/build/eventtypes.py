"""Which C type is submitted to each ring buffer / perf event array (pure, no kernel).

The user never writes Python to say what a ring carries. For each ring this module
reads the cell's C text, and the text of the user headers it includes (see
:mod:`bpfnb.build.headers`), and finds:

1. an explicit declaration ``BPFNB_EVENT_TYPE(events, struct event);`` (the macro from
   ``bpfnb/events.h``), which wins;
2. otherwise the types submitted at every call site of ``bpf_ringbuf_reserve``,
   ``bpf_ringbuf_output``, ``bpf_perf_event_output`` (and ``bpf_ringbuf_reserve_dynptr``
   by its size) naming that ring: the declared type of the variable the record is
   assigned to or passed from, a cast, or the ``sizeof`` argument. Calls of *wrapper
   functions* count too: a function whose body calls a submitting helper with its own
   parameters (libbpf-tools' ``reserve_buf(size)`` / ``submit_buf(ctx, buf, size)`` in
   ``compat.bpf.h``) is a submit site wherever it is called. One type -> that type;
   several -> :class:`EventTypeError` listing them.

Clang keeps in BTF only the types reachable from globals and function signatures, so a
struct used only through a local variable would be missing from the object.
:func:`epilogue` returns C text the compiler appends after the cell: one pointer
variable per submitted type, and per struct or union the user's headers define, in the
section ``.bpfnb.types`` (libbpf skips sections it does not know, so nothing is loaded
and the user sees no map). So ``prog.events.event_type = "struct event"`` works for a
struct declared in a header too.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from bpfnb.errors import EventTypeError
from bpfnb.object import btf
from bpfnb.object.spec import find_type

#: Helpers whose call sites name a ring, with (ring arg, data arg, size arg) indexes.
HELPERS: dict[str, tuple[int, int | None, int]] = {
    "bpf_ringbuf_reserve": (0, None, 1),
    "bpf_ringbuf_reserve_dynptr": (0, None, 1),
    "bpf_ringbuf_output": (0, 1, 2),
    "bpf_perf_event_output": (1, 3, 4),
}
#: Helpers that return the record they reserve (its type is the assignment's).
RESERVING = frozenset({"bpf_ringbuf_reserve"})
ANCHOR_SECTION = ".bpfnb.types"

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


@dataclass(frozen=True)
class Wrapper:
    """A function that submits to a ring with its own parameters (``reserve_buf(size)``).

    Attributes
    ----------
    helper : str
        The submitting helper it calls.
    ring : str or int
        The ring's map name when fixed (``&events``), else the index of the parameter
        that passes it.
    data, size : int or None
        Indexes of the parameters passed as the helper's record and size.
    """

    helper: str
    ring: str | int
    data: int | None
    size: int | None


_FUNC_RE = re.compile(
    r"(?:^|[;}])\s*(?:static\s+|inline\s+|__always_inline\s+|__noinline\s+|"
    r"__attribute__\s*\(\([^)]*\)\)\s*)*[\w\s\*]*?\b(\w+)\s*\(([^;{}()]*)\)\s*\{",
    re.M,
)


def _param_names(params: str) -> list[str]:
    names = []
    for p in params.split(","):
        m = re.search(r"(\w+)\s*(?:\[[^\]]*\])?\s*$", p.strip())
        names.append(m.group(1) if m and p.strip() not in ("void", "") else "")
    return names


def _body_end(text: str, brace: int) -> int:
    depth = 0
    for j in range(brace, len(text)):
        c = text[j]
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return j + 1
    return len(text)


def find_wrappers(source: str, known: dict[str, Wrapper] | None = None) -> dict[str, Wrapper]:
    """Functions of ``source`` that call a submitting helper with their parameters.

    ``known`` wrappers (found earlier) count as helpers, so a wrapper of a wrapper is
    found when called again with the result.
    """
    text = strip_comments(source)
    found: dict[str, Wrapper] = {}
    callables = {**{h: None for h in HELPERS}, **(known or {})}
    call_re = re.compile(r"\b(" + "|".join(map(re.escape, callables)) + r")\s*\(")
    for m in _FUNC_RE.finditer(text):
        name = m.group(1)
        if name in HELPERS or name in _NOT_TYPES or name == "SEC":
            continue
        params = _param_names(m.group(2))
        if not any(params):
            continue
        body = text[m.end() - 1 : _body_end(text, m.end() - 1)]
        for call in call_re.finditer(body):
            callee = call.group(1)
            args, _ = _split_args(body, call.end())
            ring_i, data_i, size_i = _roles(callee, known or {})
            if len(args) <= max(ring_i, size_i):
                continue
            ring_arg = ring_name(args[ring_i])
            inner = (known or {}).get(callee)
            ring: str | int | None
            if inner is not None and isinstance(inner.ring, str):
                ring = inner.ring
            elif ring_arg in params:
                ring = params.index(ring_arg)
            elif re.fullmatch(r"\w+", ring_arg) and args[ring_i].strip().startswith("&"):
                ring = ring_arg
            else:
                ring = None
            data = _param_of(args[data_i], params) if data_i is not None else None
            size = _param_of(args[size_i], params)
            if ring is None or (data is None and size is None):
                continue
            helper = inner.helper if inner is not None else callee
            found[name] = Wrapper(helper, ring, data, size)
            break
    return found


def _roles(callee: str, wrappers: dict[str, Wrapper]) -> tuple[int, int | None, int]:
    """(ring, data, size) argument indexes of a helper or a wrapper (-1: none)."""
    if callee in HELPERS:
        return HELPERS[callee]
    w = wrappers[callee]
    ring = w.ring if isinstance(w.ring, int) else -1
    return ring, w.data, w.size if w.size is not None else -1


def _param_of(arg: str, params: list[str]) -> int | None:
    """Index of the parameter an argument passes as is (casts and parens ignored)."""
    bare = re.sub(r"^\(\s*[\w\s\*]+\)\s*", "", arg.strip()).strip("() ")
    return params.index(bare) if bare and bare in params else None


def all_wrappers(texts: Sequence[str]) -> dict[str, Wrapper]:
    """Wrappers defined in any of ``texts``, wrappers of wrappers included (3 levels)."""
    wrappers: dict[str, Wrapper] = {}
    for _ in range(3):
        before = len(wrappers)
        for text in texts:
            wrappers.update(find_wrappers(text, wrappers))
        if len(wrappers) == before:
            break
    return wrappers


def find_sites(source: str, wrappers: dict[str, Wrapper] | None = None) -> list[Site]:
    """Every call of a submitting helper (or wrapper) in ``source``, with its type."""
    text = strip_comments(source)
    variables = _variables(text)
    wrappers = {k: v for k, v in (wrappers or {}).items() if k not in HELPERS}
    names = [*HELPERS, *wrappers]
    call_re = re.compile(r"\b(" + "|".join(map(re.escape, names)) + r")\s*\(")
    defined = {m.group(1): m.start(1) for m in _FUNC_RE.finditer(text)}
    sites: list[Site] = []
    for m in call_re.finditer(text):
        callee = m.group(1)
        if defined.get(callee) == m.start(1):
            continue  # the wrapper's own definition
        wrapper = wrappers.get(callee)
        ring_i, data_i, size_i = _roles(callee, wrappers)
        args, _ = _split_args(text, m.end())
        if len(args) <= max(ring_i, size_i):
            continue
        if wrapper is not None and isinstance(wrapper.ring, str):
            ring = wrapper.ring
        else:
            ring = ring_name(args[ring_i])
        helper = wrapper.helper if wrapper is not None else callee
        typ: str | None = None
        if data_i is None and helper in RESERVING:
            before = text[max(0, m.start() - 200) : m.start()]
            cast = _CAST_RE.search(before)
            assign = _ASSIGN_RE.search(before)
            if cast:
                typ = _norm_type(cast.group(1))
            elif assign and assign.group(1) in variables:
                typ = variables[assign.group(1)][0]
        elif data_i is not None:
            typ = _type_of_data(args[data_i], variables)
        if (typ is None or typ == "void") and size_i >= 0:
            typ = _type_of_size(args[size_i], variables)
        line = text.count("\n", 0, m.start()) + 1
        sites.append(Site(helper, ring, typ, line))
    return sites


def declared_types(source: str) -> dict[str, str]:
    """Types declared with ``BPFNB_EVENT_TYPE(ring, type)``: ring -> C type."""
    text = strip_comments(source)
    return {m.group(1): _norm_type(m.group(2)) for m in _DECLARE_RE.finditer(text)}


def _all_sites(source: str, headers: Sequence[str]) -> list[Site]:
    texts = [source, *headers]
    wrappers = all_wrappers(texts)
    return [site for text in texts for site in find_sites(text, wrappers)]


def candidates(source: str, ring: str, headers: Sequence[str] = ()) -> list[str]:
    """The distinct types submitted to ``ring`` (declaration first when there is one).

    ``headers`` are the texts of the user headers the cell includes.
    """
    declared = {}
    for text in (*headers, source):
        declared.update(declared_types(text))
    if declared.get(ring):
        return [declared[ring]]
    out: list[str] = []
    for site in _all_sites(source, headers):
        if site.ring == ring and site.type and site.type not in out:
            out.append(site.type)
    return out


def event_type_name(source: str, ring: str, headers: Sequence[str] = ()) -> str | None:
    """The C type of the events of ``ring``, or None when the cell does not say.

    Raises
    ------
    EventTypeError
        When several types are submitted to the ring, listing them.
    """
    found = candidates(source, ring, headers)
    if len(found) > 1:
        raise EventTypeError(
            f"ring {ring!r} receives several event types: {', '.join(found)}. Declare the one "
            f"to decode with BPFNB_EVENT_TYPE({ring}, {found[0]}); in the cell, or set "
            f"prog.{ring}.event_type = {found[0]!r}"
        )
    return found[0] if found else None


_TAG_DEF_RE = re.compile(r"\b(struct|union)\s+(\w+)\s*\{")


def defined_tags(text: str) -> list[str]:
    """``struct X`` / ``union X`` types ``text`` defines (with a body), in order."""
    out: list[str] = []
    for m in _TAG_DEF_RE.finditer(strip_comments(text)):
        name = f"{m.group(1)} {m.group(2)}"
        if name not in out:
            out.append(name)
    return out


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


def epilogue(source: str, headers: Sequence[str] = ()) -> str:
    """C text to append after the cell (after everything else).

    It anchors in BTF, with a pointer variable in the non-loaded section
    ``.bpfnb.types``: every struct/union type submitted to a ring (and typedef declared
    in the cell or a header), and every struct/union the user's headers define.
    ``headers`` are the texts of those headers. Returns ``""`` when there is nothing to
    anchor.
    """
    text = strip_comments(source)
    typedefs = _typedef_names(text)
    for header in headers:
        typedefs |= _typedef_names(strip_comments(header))
    seen: list[str] = []
    for site in _all_sites(source, headers):
        t = site.type
        if not t or t in seen:
            continue
        if t.startswith(("struct ", "union ")) or t in typedefs:
            seen.append(t)
    for header in headers:
        for tag in defined_tags(header):
            if tag not in seen and not tag.split()[1].startswith("__"):
                seen.append(tag)
    lines = [
        f'{t} *__bpfnb_anchor_{i} __attribute__((section("{ANCHOR_SECTION}"), used, unused));'
        for i, t in enumerate(seen)
    ]
    return "\n".join(lines) + "\n" if lines else ""


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
            f"type {_norm_type(name)!r} is not in the program's BTF: neither the cell nor a "
            "header it includes declares it (structs defined there are kept automatically)"
        )
    return found
