"""Parse the arguments of the ``%%bpf`` cell magic and the ``%bpf`` line magic.

Pure: no IPython, no kernel. Every parse error is a :class:`CommandError` with a
one-line message, never ``SystemExit``.

Examples
--------
>>> cell = parse_cell_args('syscalls -D DEBUG -D N=4 --set target_pid=42 --interval 0.5')
>>> cell.name, cell.defines, cell.globals, cell.interval
('syscalls', {'DEBUG': '1', 'N': '4'}, {'target_pid': '42'}, 0.5)
>>> parse_line_args('stop --all').all
True
"""

from __future__ import annotations

import argparse
import keyword
import shlex
from dataclasses import dataclass, field
from typing import NoReturn

from bpfnb.errors import CommandError

CELL_USAGE = (
    '%%bpf NAME [-D NAME[=VALUE]]... [-I DIR]... [--cflags "..."] [--no-attach] '
    "[--no-display] [--interval SECONDS] [--set VAR=VALUE]... [--compile-only]"
)
LINE_USAGE = (
    "%bpf list | top | stop NAME | stop --all | export NAME.MAP PATH.csv | doctor | templates | "
    "template TEMPLATE [NAME] [--show] [cell options]"
)


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises CommandError instead of exiting."""

    def error(self, message: str) -> NoReturn:
        raise CommandError(f"{message}\nusage: {self.usage}")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        raise CommandError(message or f"usage: {self.usage}")


@dataclass
class CellArgs:
    """The parsed options of a ``%%bpf NAME [options]`` line.

    Attributes
    ----------
    name : str
        The Python identifier the program is bound to.
    defines : dict of str to str
        ``-D NAME[=VALUE]`` (VALUE defaults to ``1``).
    include_dirs : list of str
        ``-I DIR``.
    cflags : list of str
        Extra clang flags from ``--cflags`` (split like a shell; the option may be
        repeated, and a single flag works too: ``--cflags -O0``).
    attach : bool
        False with ``--no-attach``.
    display : bool
        False with ``--no-display``.
    interval : float or None
        Refresh interval of the live views, None for the configured default.
    globals : dict of str to str
        ``--set VAR=VALUE`` for ``const volatile`` globals, applied before load.
    compile_only : bool
        True with ``--compile-only``.
    """

    name: str
    defines: dict[str, str] = field(default_factory=dict)
    include_dirs: list[str] = field(default_factory=list)
    cflags: list[str] = field(default_factory=list)
    attach: bool = True
    display: bool = True
    interval: float | None = None
    globals: dict[str, str] = field(default_factory=dict)
    compile_only: bool = False


@dataclass
class LineArgs:
    """The parsed ``%bpf`` line magic.

    Attributes
    ----------
    action : str
        One of ``list``, ``top``, ``stop``, ``export``, ``doctor``, ``templates``, ``template``.
    name : str or None
        Program name (``stop``), ``NAME.MAP`` (``export``) or template (``template``).
    all : bool
        ``stop --all``.
    path : str or None
        Destination of ``export``.
    show : bool
        ``template TEMPLATE --show``.
    cell : CellArgs or None
        Cell options of ``template TEMPLATE [NAME] [options]``.
    """

    action: str
    name: str | None = None
    all: bool = False
    path: str | None = None
    show: bool = False
    cell: CellArgs | None = None


def _split(line: str) -> list[str]:
    try:
        return shlex.split(line)
    except ValueError as err:
        raise CommandError(f"cannot parse the magic's arguments: {err}") from None


def _join_cflags(words: list[str]) -> list[str]:
    """Glue ``--cflags VALUE`` into ``--cflags=VALUE``.

    argparse takes a lone value that looks like an option (``--cflags -O0``) for an
    option and fails; the ``=`` form hands it over as the value.
    """
    out: list[str] = []
    i = 0
    while i < len(words):
        if words[i] == "--cflags" and i + 1 < len(words):
            out.append(f"--cflags={words[i + 1]}")
            i += 2
            continue
        out.append(words[i])
        i += 1
    return out


def _cell_parser(prog: str, usage: str) -> _Parser:
    parser = _Parser(prog=prog, usage=usage, add_help=False, allow_abbrev=False)
    parser.add_argument("-D", dest="defines", action="append", default=[])
    parser.add_argument("-I", dest="include_dirs", action="append", default=[])
    parser.add_argument("--cflags", action="append", default=[])
    parser.add_argument("--no-attach", dest="attach", action="store_false")
    parser.add_argument("--no-display", dest="display", action="store_false")
    parser.add_argument("--interval", type=float, default=None)
    parser.add_argument("--set", dest="globals", action="append", default=[])
    parser.add_argument("--compile-only", action="store_true")
    return parser


def check_identifier(name: str, what: str = "program name") -> str:
    """Return ``name`` if it is a valid Python identifier, else raise CommandError."""
    if not name.isidentifier() or keyword.iskeyword(name):
        raise CommandError(f"{what} {name!r} is not a valid Python identifier")
    return name


def _pairs(items: list[str], option: str, default: str | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not key or not key.replace("_", "a").isalnum() or key[0].isdigit():
            raise CommandError(f"{option} {item!r}: expected NAME=VALUE with a C identifier")
        if not sep:
            if default is None:
                raise CommandError(f"{option} {item!r}: expected NAME=VALUE")
            value = default
        out[key] = value
    return out


def _cell_from_namespace(name: str, ns: argparse.Namespace) -> CellArgs:
    if ns.interval is not None and not ns.interval > 0:
        raise CommandError(f"--interval must be a positive number of seconds, not {ns.interval}")
    cflags: list[str] = []
    for value in ns.cflags:
        try:
            cflags += shlex.split(value)
        except ValueError as err:
            raise CommandError(f"--cflags {value!r}: {err}") from None
    return CellArgs(
        name=check_identifier(name),
        defines=_pairs(ns.defines, "-D", "1"),
        include_dirs=list(ns.include_dirs),
        cflags=cflags,
        attach=ns.attach,
        display=ns.display,
        interval=ns.interval,
        globals=_pairs(ns.globals, "--set", None),
        compile_only=ns.compile_only,
    )


def parse_cell_args(line: str) -> CellArgs:
    """Parse the argument line of a ``%%bpf`` cell.

    Parameters
    ----------
    line : str
        Everything after ``%%bpf`` on the first line of the cell.

    Returns
    -------
    CellArgs

    Raises
    ------
    CommandError
        On a missing name, an unknown option or a malformed value.
    """
    parser = _cell_parser("%%bpf", CELL_USAGE)
    parser.add_argument("name", nargs="?")
    ns = parser.parse_args(_join_cflags(_split(line)))
    if not ns.name:
        raise CommandError(f"the cell needs a name to bind the program to\nusage: {CELL_USAGE}")
    return _cell_from_namespace(ns.name, ns)


def parse_line_args(line: str) -> LineArgs:
    """Parse the ``%bpf`` line magic.

    Parameters
    ----------
    line : str
        Everything after ``%bpf``.

    Returns
    -------
    LineArgs

    Raises
    ------
    CommandError
        On an unknown action or wrong arguments.
    """
    words = _split(line)
    if not words:
        raise CommandError(f"usage: {LINE_USAGE}")
    action, rest = words[0], words[1:]
    if action in ("list", "top", "doctor", "templates"):
        if rest:
            raise CommandError(f"%bpf {action} takes no arguments")
        return LineArgs(action)
    if action == "stop":
        if rest == ["--all"]:
            return LineArgs("stop", all=True)
        if len(rest) == 1 and not rest[0].startswith("-"):
            return LineArgs("stop", name=rest[0])
        raise CommandError("usage: %bpf stop NAME | %bpf stop --all")
    if action == "export":
        if len(rest) != 2 or rest[0].count(".") != 1:
            raise CommandError("usage: %bpf export NAME.MAP PATH.csv")
        return LineArgs("export", name=rest[0], path=rest[1])
    if action == "template":
        parser = _cell_parser("%bpf template", "%bpf template TEMPLATE [NAME] [--show] [options]")
        parser.add_argument("template", nargs="?")
        parser.add_argument("name", nargs="?")
        parser.add_argument("--show", action="store_true")
        ns = parser.parse_args(_join_cflags(rest))
        if not ns.template:
            raise CommandError("usage: %bpf template TEMPLATE [NAME] [--show] [cell options]")
        cell = _cell_from_namespace(ns.name or ns.template.removesuffix(".bpf.c"), ns)
        return LineArgs("template", name=ns.template, show=ns.show, cell=cell)
    raise CommandError(f"unknown %bpf action {action!r}\nusage: {LINE_USAGE}")
