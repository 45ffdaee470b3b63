"""Ready-made programs: the ``.bpf.c`` files of ``bpf_templates/``.

A template is the text a user would type into a ``%%bpf`` cell (it relies on the
prelude: vmlinux.h, libbpf's headers and bpfnb.h). Its first line is a one-line
comment describing it. ``%bpf templates`` lists them with :func:`list_templates`;
``%bpf template NAME`` loads :func:`get_template` ``(NAME).source`` as a cell.

Templates are looked up in, in order: the directories of ``$BPFNB_TEMPLATES``
(``os.pathsep``-separated), then the package ``bpfnb.bpf_templates`` read with
importlib.resources (the repository's top-level ``bpf_templates/`` folder, shipped as
package data in a wheel and mapped to that package by an editable install), then
``bpf_templates/`` next to the ``bpfnb`` folder (a source checkout used without
installing). The first directory holding a name wins.
"""

from __future__ import annotations

import importlib.resources
import os
import re
from dataclasses import dataclass
from pathlib import Path

from bpfnb.errors import CommandError

SUFFIX = ".bpf.c"
PACKAGE = "bpfnb.bpf_templates"
_CHECKOUT = Path(__file__).resolve().parent.parent.parent / "bpf_templates"
_COMMENT = re.compile(r"^\s*(?://+\s?(?P<line>.*)|/\*+\s?(?P<block>.*?)\s*(?:\*/)?)\s*$")


class TemplateNotFoundError(CommandError):
    """No template has the name given to ``%bpf template``."""


@dataclass(frozen=True)
class Template:
    """One template file.

    Attributes
    ----------
    name : str
        The file name without ``.bpf.c`` (``syscount``).
    description : str
        The text of the first line's comment.
    path : Path
        The file.
    """

    name: str
    description: str
    path: Path

    @property
    def source(self) -> str:
        """The C text, read from the file each time (edits show up at once)."""
        return self.path.read_text()


def packaged_dir() -> Path | None:
    """Return the directory of the templates shipped with bpfnb, or None when missing."""
    try:
        files = importlib.resources.files(PACKAGE)
    except ModuleNotFoundError:
        return None
    path = Path(str(files))
    return path if path.is_dir() else None


def template_dirs() -> list[Path]:
    """Return the existing directories searched for templates, in priority order."""
    dirs = [Path(p) for p in os.environ.get("BPFNB_TEMPLATES", "").split(os.pathsep) if p]
    packaged = packaged_dir()
    dirs += [packaged, _CHECKOUT] if packaged is not None else [_CHECKOUT]
    seen: list[Path] = []
    for d in dirs:
        if d.is_dir() and d.resolve() not in seen:
            seen.append(d.resolve())
    return seen


def describe(text: str) -> str:
    """Return the one-line description from a template's first line comment ('' if none)."""
    first = text.lstrip("\ufeff").splitlines()[0] if text.strip() else ""
    match = _COMMENT.match(first)
    if match is None:
        return ""
    return (match["line"] if match["line"] is not None else match["block"] or "").strip()


def list_templates() -> list[Template]:
    """Return every template, sorted by name (first directory wins on duplicates)."""
    found: dict[str, Template] = {}
    for d in template_dirs():
        for path in sorted(d.glob(f"*{SUFFIX}")):
            name = path.name[: -len(SUFFIX)]
            if name in found or not path.is_file():
                continue
            found[name] = Template(name, describe(path.read_text()), path)
    return [found[n] for n in sorted(found)]


def get_template(name: str) -> Template:
    """Return the template called ``name`` (with or without ``.bpf.c``).

    Raises
    ------
    TemplateNotFoundError
        No template has that name; the message lists the ones there are.
    """
    wanted = name[: -len(SUFFIX)] if name.endswith(SUFFIX) else name
    templates = list_templates()
    for t in templates:
        if t.name == wanted:
            return t
    names = ", ".join(t.name for t in templates) or "none found"
    raise TemplateNotFoundError(f"no template {name!r}; available: {names}")
