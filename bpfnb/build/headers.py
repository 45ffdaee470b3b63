"""The user's own headers a cell includes, found and read before it is compiled (pure).

libbpf-tools programs keep their event structs in a header (``execsnoop.h``) and reach
the submitting helpers through helper headers (``compat.bpf.h``). bpfnb reads those
headers to find event types and submit sites as it does in the cell (see
:mod:`bpfnb.build.eventtypes`). Only headers found in the user's directories are read:
the cell's current directory, ``-I`` / ``-iquote`` directories of the cell, and the
directory of the including header; ``vmlinux.h``, libbpf's and the system's headers
are never read.

Example
-------
>>> [h.path.name for h in user_headers('#include "execsnoop.h"', ["tools"])]  # doctest: +SKIP
['execsnoop.h']
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

_INCLUDE_RE = re.compile(r'^[ \t]*#[ \t]*include[ \t]*([<"])([^>"\n]+)[>"]', re.M)
#: Headers bpfnb provides itself (or the prelude holds): never looked up.
_PROVIDED = ("vmlinux.h",)
MAX_HEADERS = 64
MAX_BYTES = 4 << 20


@dataclass(frozen=True)
class Header:
    """One user header a cell includes.

    Attributes
    ----------
    path : Path
        Where it was found.
    text : str
        Its contents.
    """

    path: Path
    text: str


def user_dirs(include_dirs: Sequence[str] = (), cflags: Sequence[str] = ()) -> list[Path]:
    """The directories a cell's own headers are looked up in, in clang's order.

    The current directory (bpfnb compiles with ``-iquote $PWD``), then ``-iquote``,
    ``-I`` and ``-isystem`` directories of ``--cflags`` and ``-I`` of the cell.
    """
    dirs: list[str] = [os.getcwd()]
    i = 0
    flags = list(cflags)
    while i < len(flags):
        flag = flags[i]
        for option in ("-iquote", "-isystem", "-I"):
            if flag.startswith(option):
                value = flag[len(option) :] or (flags[i + 1] if i + 1 < len(flags) else "")
                if flag == option:
                    i += 1
                dirs.append(os.path.join(os.getcwd(), value))
                break
        i += 1
    dirs += [str(Path(d).resolve()) for d in include_dirs]
    return [Path(os.path.normpath(d)) for d in dict.fromkeys(dirs)]


def includes(text: str) -> list[tuple[str, str]]:
    """``(delimiter, name)`` of every ``#include`` line of ``text`` (``'"'`` or ``'<'``)."""
    return [(m.group(1), m.group(2).strip()) for m in _INCLUDE_RE.finditer(text)]


def user_headers(
    source: str, include_dirs: Sequence[str] = (), cflags: Sequence[str] = ()
) -> list[Header]:
    """The user headers ``source`` includes, directly or through each other, in order.

    Parameters
    ----------
    source : str
        The cell's C text.
    include_dirs, cflags
        The cell's ``-I`` directories and ``--cflags``.

    Returns
    -------
    list of Header
        Each header once, in the order first included; headers that are not found in
        the user's directories (system and libbpf headers) are left out.
    """
    dirs = user_dirs(include_dirs, cflags)
    found: dict[Path, Header] = {}
    total = 0

    def visit(text: str, here: Path | None) -> None:
        nonlocal total
        for delim, name in includes(text):
            if os.path.basename(name) in _PROVIDED or os.path.isabs(name):
                continue
            candidates = ([here] if here is not None and delim == '"' else []) + dirs
            for directory in candidates:
                path = (directory / name).resolve()
                if not path.is_file():
                    continue
                if path not in found and len(found) < MAX_HEADERS:
                    try:
                        body = path.read_text(errors="replace")
                    except OSError:
                        break
                    total += len(body)
                    if total > MAX_BYTES:
                        return
                    found[path] = Header(path, body)
                    visit(body, path.parent)
                break

    visit(source, None)
    return list(found.values())


__all__ = ["Header", "includes", "user_dirs", "user_headers"]
