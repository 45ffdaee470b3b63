"""Legacy ``struct bpf_map_def SEC("maps")`` definitions, rewritten as BTF-defined maps.

Many tutorials still declare maps the pre-BTF way::

    struct bpf_map_def SEC("maps") my_map = {
        .type = BPF_MAP_TYPE_HASH,
        .key_size = sizeof(int),
        .value_size = sizeof(int),
        .max_entries = 100,
    };
    BPF_ANNOTATE_KV_PAIR(my_map, int, struct my_value);

libbpf 1.0 and later refuse the ``maps`` section, and the machine's libbpf headers no
longer define ``struct bpf_map_def``. :func:`rewrite` replaces each such definition
(``SEC("maps")`` or ``__attribute__((section("maps")))`` before or after the name, or
after the initializer; designated or positional initializers) by the equivalent
BTF-defined map, on the same lines: key and value types come from a
``BPF_ANNOTATE_KV_PAIR`` when there is one, else the map keeps raw ``key_size`` /
``value_size`` bytes. Each rewrite adds a note that shows the BTF form to write instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bpfnb.build import ctokens
from bpfnb.build.ctokens import Edits, Token
from bpfnb.errors import CompileError

#: Fields of ``struct bpf_map_def``, in declaration order (positional initializers).
FIELDS = ("type", "key_size", "value_size", "max_entries", "map_flags")


@dataclass
class LegacyRewrite:
    """What :func:`rewrite` did.

    Attributes
    ----------
    text : str
        The cell with legacy maps as BTF maps, line for line.
    maps : list of str
        The maps rewritten.
    notes : list of str
        One note per map, with the BTF declaration to use instead.
    """

    text: str
    maps: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def has_legacy_maps(source: str) -> bool:
    """Whether ``source`` mentions ``struct bpf_map_def`` (cheap test first)."""
    return re.search(r"\bstruct\s+bpf_map_def\b", source) is not None


def _section(tokens: list[Token], i: int) -> int | None:
    """If ``tokens[i]`` starts ``SEC("maps")`` / ``__attribute__((section("maps")))``,
    the index of its last token."""
    t = tokens[i]
    if (
        t.is_ident("SEC")
        and i + 3 < len(tokens)
        and tokens[i + 1].is_punct("(")
        and tokens[i + 2].kind == ctokens.STRING
        and tokens[i + 2].text.strip('"') == "maps"
    ):
        return ctokens.matching(tokens, i + 1)
    if t.is_ident("__attribute__", "__attribute") and i + 1 < len(tokens):
        close = ctokens.matching(tokens, i + 1)
        inner = " ".join(x.text for x in tokens[i:close])
        if re.search(r'section\s*\(\s*"maps"\s*\)', inner):
            return close
    return None


def _annotations(tokens: list[Token], source: str) -> dict[str, tuple[str, str, int, int]]:
    """``BPF_ANNOTATE_KV_PAIR(name, key, value);``: name -> (key, value, first, last)."""
    out: dict[str, tuple[str, str, int, int]] = {}
    for i, t in enumerate(tokens):
        if (
            t.is_ident("BPF_ANNOTATE_KV_PAIR")
            and i + 1 < len(tokens)
            and tokens[i + 1].is_punct("(")
        ):
            args, close = ctokens.split_args(tokens, i + 1)
            if len(args) != 3:
                continue
            last = (
                close + 1 if close + 1 < len(tokens) and tokens[close + 1].is_punct(";") else close
            )
            name = ctokens.text_of(source, args[0]).strip()
            out[name] = (
                ctokens.text_of(source, args[1]).strip(),
                ctokens.text_of(source, args[2]).strip(),
                i,
                last,
            )
    return out


def _initializer(tokens: list[Token], source: str, brace: int) -> tuple[dict[str, str], int]:
    """The fields of ``{ ... }`` at ``brace`` and the index of its ``}``."""
    args, close = ctokens.split_args(tokens, brace)
    values: dict[str, str] = {}
    for k, arg in enumerate(args):
        if not arg:
            continue
        if arg[0].is_punct(".") and len(arg) > 2 and arg[2].is_punct("="):
            values[arg[1].text] = ctokens.text_of(source, arg[3:])
        elif k < len(FIELDS):
            values[FIELDS[k]] = ctokens.text_of(source, arg)
    return values, close


def rewrite(source: str) -> LegacyRewrite:
    """Rewrite every legacy map definition of ``source`` (see the module docstring).

    Raises
    ------
    CompileError
        A legacy definition without a ``type`` (with its line).
    """
    if not has_legacy_maps(source):
        return LegacyRewrite(source)
    tokens = ctokens.code(ctokens.tokenize(source))
    annotations = _annotations(tokens, source)
    edits = Edits(source)
    result = LegacyRewrite(source)
    i = 0
    while i < len(tokens):
        t = tokens[i]
        if not (
            t.is_ident("struct") and i + 1 < len(tokens) and tokens[i + 1].is_ident("bpf_map_def")
        ):
            i += 1
            continue
        j = i + 2
        name: str | None = None
        in_maps = False
        while j < len(tokens) and not tokens[j].is_punct("=", ";", "{"):
            end = _section(tokens, j)
            if end is not None:
                in_maps = True
                j = end + 1
                continue
            if tokens[j].kind == ctokens.IDENT:
                name = tokens[j].text
            j += 1
        if name is None or j >= len(tokens) or not tokens[j].is_punct("="):
            i = j + 1  # a type definition or a declaration without initializer
            continue
        if j + 1 >= len(tokens) or not tokens[j + 1].is_punct("{"):
            i = j + 1
            continue
        values, close = _initializer(tokens, source, j + 1)
        k = close + 1
        while k < len(tokens) and not tokens[k].is_punct(";"):
            end = _section(tokens, k)
            if end is not None:
                in_maps = True
                k = end
            k += 1
        if not in_maps or k >= len(tokens):
            i = k + 1
            continue
        if "type" not in values:
            raise CompileError(f"line {t.line}: legacy map {name!r} has no .type")
        annotation = annotations.get(name)
        fields = [f"__uint(type, {values['type'].strip()});"]
        if annotation is not None:
            fields += [f"__type(key, {annotation[0]});", f"__type(value, {annotation[1]});"]
        else:
            for size in ("key_size", "value_size"):
                if size in values:
                    fields.append(f"__uint({size}, {values[size].strip()});")
        for other in ("max_entries", "map_flags"):
            if other in values and values[other].strip() not in ("", "0"):
                fields.append(f"__uint({other}, {values[other].strip()});")
        btf_form = f'struct {{ {" ".join(fields)} }} {name} SEC(".maps")'
        edits.replace(t.start, tokens[k - 1].end, btf_form)
        result.maps.append(name)
        kv = "" if annotation is not None else " (without key/value types bpfnb shows raw bytes)"
        result.notes.append(
            f'map {name} is a legacy struct bpf_map_def in SEC("maps"), which libbpf 1.0+ '
            f"no longer loads: bpfnb loaded it as the BTF-defined map `{btf_form};`; declare "
            f"it that way, with __type(key, ...) and __type(value, ...){kv}"
        )
        i = k + 1
    for name, (_, _, first, last) in annotations.items():
        if name in result.maps:
            edits.replace(tokens[first].start, tokens[last].end, "")
    result.text = edits.apply()
    return result


__all__ = ["FIELDS", "LegacyRewrite", "has_legacy_maps", "rewrite"]
