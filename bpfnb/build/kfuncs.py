"""Prototypes of the running kernel's kfuncs, from its BTF, for the cells that call them.

``bpftool btf dump ... format c`` of older bpftool releases (Debian's 7.1) writes no
kfunc prototypes into ``vmlinux.h``, so ``bpf_task_from_pid(pid)`` in a cell (or in a
libbpf-tools program, whose ``vmlinux.h`` came from a newer bpftool) is an undeclared
identifier. The kernel's BTF marks every kfunc with the declaration tag
``bpf_kfunc``; :func:`kfunc_prototypes` turns each tagged function into
``extern RET NAME(PARAMS) __weak __ksym;`` (weak, so ``bpf_ksym_exists(NAME)`` works
on kernels that lack it). The table is generated once per kernel and cached next to
``vmlinux.h``.

Only the prototypes a cell needs are given to it (:func:`preamble`): the kfuncs its
text or its headers name and do not declare themselves, so a cell that declares a
kfunc its own way never meets a conflicting prototype.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Sequence

from bpfnb.build import cache
from bpfnb.build.toolchain import VMLINUX_BTF, kernel_dir
from bpfnb.object import btf

KFUNC_TAG = "bpf_kfunc"
_FORMAT = 1
_LOCK = threading.Lock()
_TABLE: dict[str, str] | None = None
_IDENT_RE = re.compile(r"\b[A-Za-z_]\w*\b")


class _Unprintable(Exception):
    """A type without a C spelling (an anonymous struct) in a prototype."""


def _base(t: btf.Type) -> str:
    if isinstance(t, btf.Void):
        return "void"
    if isinstance(t, (btf.Int, btf.Float, btf.Typedef)):
        if not t.name:
            raise _Unprintable
        return t.name
    for cls, word in ((btf.Struct, "struct"), (btf.Union, "union"), (btf.Enum, "enum")):
        if isinstance(t, cls):
            if not t.name:
                raise _Unprintable
            return f"{word} {t.name}"
    if isinstance(t, btf.Fwd):
        return f"{'union' if t.union else 'struct'} {t.name}"
    raise _Unprintable


def declarator(t: btf.Type, inner: str) -> str:
    """The C declaration of ``inner`` (a name, or a declarator built so far) of type ``t``."""
    if isinstance(t, btf.TypeTag):
        return declarator(t.target, inner)
    if isinstance(t, btf.Pointer):
        target = t.target
        while isinstance(target, btf.TypeTag):
            target = target.target
        if isinstance(target, (btf.FuncProto, btf.Array)):
            return declarator(target, f"(*{inner})")
        return declarator(target, f"*{inner}")
    if isinstance(t, btf.Array):
        return declarator(t.element, f"{inner}[{t.length}]")
    if isinstance(t, (btf.Const, btf.Volatile)):
        word = "const" if isinstance(t, btf.Const) else "volatile"
        if isinstance(t.target, btf.Pointer):
            return declarator(t.target, f"{word} {inner}".strip())
        return f"{word} {declarator(t.target, inner)}"
    if isinstance(t, btf.Restrict):
        return declarator(t.target, inner)
    if isinstance(t, btf.FuncProto):
        params = []
        for p in t.params:
            if isinstance(p.type, btf.Void) and not p.name:
                params.append("...")
            else:
                params.append(declarator(p.type, p.name))
        return declarator(t.ret, f"{inner}({', '.join(params) or 'void'})")
    return f"{_base(t)} {inner}".rstrip() if inner else _base(t)


def prototypes_from_btf(types: btf.Btf) -> dict[str, str]:
    """Every ``bpf_kfunc``-tagged function of ``types`` -> its ``extern`` prototype."""
    out: dict[str, str] = {}
    for tag in types.all_of(btf.DeclTag):
        func = tag.target
        if tag.name != KFUNC_TAG or not isinstance(func, btf.Func) or tag.component_idx != -1:
            continue
        proto = func.proto
        if not isinstance(proto, btf.FuncProto) or func.name in out:
            continue
        try:
            out[func.name] = f"extern {declarator(proto, func.name)} __weak __ksym;"
        except _Unprintable:
            continue
    return dict(sorted(out.items()))


def kfunc_prototypes() -> dict[str, str]:
    """The running kernel's kfuncs -> prototypes (generated once per kernel, cached)."""
    global _TABLE
    with _LOCK:
        if _TABLE is not None:
            return _TABLE
        path = kernel_dir() / "kfuncs.json"
        try:
            stored = json.loads(path.read_text())
            if stored.get("format") == _FORMAT:
                _TABLE = dict(stored["kfuncs"])
                return _TABLE
        except (OSError, ValueError, KeyError, TypeError):
            pass
        try:
            types = btf.Btf.from_bytes(VMLINUX_BTF.read_bytes())
        except (OSError, btf.BtfError):
            _TABLE = {}
            return _TABLE
        _TABLE = prototypes_from_btf(types)
        cache.write_atomic(path, json.dumps({"format": _FORMAT, "kfuncs": _TABLE}).encode())
        return _TABLE


def _declared(name: str, text: str) -> bool:
    """Whether ``text`` declares or defines ``name`` itself (a type word before it)."""
    pattern = (
        rf"\b(?!return\b|else\b|case\b)[A-Za-z_]\w*[\s\*]+{re.escape(name)}\s*\("
        rf"[^;{{}}]*\)\s*(?:\{{|;|__|asm|SEC)"
    )
    return re.search(pattern, text) is not None


def might_use_kfuncs(texts: Sequence[str]) -> bool:
    """Cheap test before reading the table: does any text name a ``bpf_`` identifier
    outside a ``bpf_helper_defs.h``-style call, or use ``__ksym`` / ``bpf_ksym_exists``?"""
    joined = "\n".join(texts)
    return "bpf_ksym_exists" in joined or bool(
        re.search(r"\b(?:bpf|scx_bpf|crash|tcp|bbr|cubictcp|dctcp)_\w+\s*\(", joined)
    )


def needed(texts: Sequence[str], table: dict[str, str]) -> list[str]:
    """Kfuncs the texts name without declaring them, in table order."""
    names: set[str] = set()
    for text in texts:
        names.update(m.group(0) for m in _IDENT_RE.finditer(text) if m.group(0) in table)
    joined = "\n".join(texts)
    return [n for n in table if n in names and not _declared(n, joined)]


def preamble(texts: Sequence[str]) -> str:
    """The prototypes the cell and header ``texts`` need, as C text (``""`` for none)."""
    if not might_use_kfuncs(texts):
        return ""
    table = kfunc_prototypes()
    wanted = needed(texts, table)
    if not wanted:
        return ""
    lines = ["/* kfuncs of the running kernel (from its BTF) the cell uses */"]
    lines += [table[n] for n in wanted]
    return "\n".join(lines) + "\n"


__all__ = [
    "KFUNC_TAG",
    "declarator",
    "kfunc_prototypes",
    "needed",
    "preamble",
    "prototypes_from_btf",
]
