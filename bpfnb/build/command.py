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
    "[--no-display] [--interval SECONDS] [--set VAR=VALUE]... [--compile-only] [--force] "
    "[--sample-freq HZ | --sample-period N] [--keep-maps] [--use [MAP=]PROG.MAP]... "
    "[--fleet [HOST,...]] "
    "[--programs NAME[,NAME]] [--skip NAME[,NAME]] [--max-entries MAP=N]... [--bcc] "
    "[--no-mmap]"
)
LINE_USAGE = (
    "%bpf list | top | stop NAME | stop --all | export NAME.MAP PATH.csv [--force] | doctor | "
    "templates | template TEMPLATE [NAME] [--show] [cell options] | pins | unpin NAME | "
    "unpin --all | cluster | cluster connect ADDRESS | cluster disconnect"
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
    force : bool
        ``--force``: bind NAME even when it replaces a user variable that is not a
        program.
    fleet : list of str or None
        ``--fleet [HOST,...]``: run on the connected cluster's workers (an empty list:
        every worker); None runs on this machine.
    sample_freq, sample_period : int or None
        ``--sample-freq HZ`` / ``--sample-period N``: how ``SEC("perf_event")``
        programs sample every CPU.
    keep_maps : bool or None
        ``--keep-maps``: reuse the previous version's unchanged maps (None: the
        configured default).
    use : dict of str to str
        ``--use [MAP=]PROG.MAP``: the cell's map ``MAP`` (default: the same name) is
        the map ``PROG.MAP`` of another loaded program.
    programs : list of str or None
        ``--programs NAME[,NAME]``: load only these programs (None: bpfnb chooses).
    skip : list of str
        ``--skip NAME[,NAME]``: leave these programs out.
    max_entries : dict of str to int
        ``--max-entries MAP=N`` (repeatable): map sizes set before the maps are created.
    bcc : bool or None
        True with ``--bcc`` (read the cell as BCC's C dialect); None detects it.
    mmap_arrays : bool
        False with ``--no-mmap``: array maps and histograms are not created
        ``BPF_F_MMAPABLE`` (they are read with bpf(2) batch calls instead).
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
    force: bool = False
    fleet: list[str] | None = None
    sample_freq: int | None = None
    sample_period: int | None = None
    keep_maps: bool | None = None
    use: dict[str, str] = field(default_factory=dict)
    programs: list[str] | None = None
    skip: list[str] = field(default_factory=list)
    max_entries: dict[str, int] = field(default_factory=dict)
    bcc: bool | None = None
    mmap_arrays: bool = True


@dataclass
class LineArgs:
    """The parsed ``%bpf`` line magic.

    Attributes
    ----------
    action : str
        One of ``list``, ``top``, ``stop``, ``export``, ``doctor``, ``templates``,
        ``template``, ``pins``, ``unpin``, ``cluster``.
    name : str or None
        Program name (``stop``), ``NAME.MAP`` (``export``), template (``template``) or
        pinned map (``unpin``).
    all : bool
        ``stop --all`` / ``unpin --all``.
    path : str or None
        Destination of ``export``.
    show : bool
        ``template TEMPLATE --show``.
    force : bool
        ``export --force``: replace an existing file.
    cell : CellArgs or None
        Cell options of ``template TEMPLATE [NAME] [options]``.
    address : str or None
        The scheduler of ``cluster connect ADDRESS``.
    """

    action: str
    name: str | None = None
    all: bool = False
    path: str | None = None
    show: bool = False
    cell: CellArgs | None = None
    address: str | None = None
    force: bool = False


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
    parser.add_argument("--force", action="store_true")
    parser.add_argument("--fleet", nargs="?", const="", default=None)
    parser.add_argument("--sample-freq", type=int, default=None)
    parser.add_argument("--sample-period", type=int, default=None)
    parser.add_argument("--keep-maps", action="store_true", default=None)
    parser.add_argument("--use", action="append", default=[])
    parser.add_argument("--programs", action="append", default=None)
    parser.add_argument("--skip", action="append", default=[])
    parser.add_argument("--max-entries", dest="max_entries", action="append", default=[])
    parser.add_argument("--bcc", action="store_true", default=None)
    parser.add_argument("--no-mmap", dest="mmap_arrays", action="store_false")
    return parser


def _uses(items: list[str]) -> dict[str, str]:
    """``--use [MAP=]PROG.MAP`` options -> {cell map name: "PROG.MAP"}."""
    out: dict[str, str] = {}
    for item in items:
        local, sep, source = item.rpartition("=")
        prog, dot, name = source.partition(".")
        if not dot or not prog.isidentifier() or not name.isidentifier():
            raise CommandError(f"--use {item!r}: expected PROG.MAP or MAP=PROG.MAP")
        local = local if sep else name
        if not local.isidentifier():
            raise CommandError(f"--use {item!r}: {local!r} is not a map name")
        out[local] = f"{prog}.{name}"
    return out


#: The longest program name (it names the cell's file, ``NAME.bpf.c``, in the cache).
MAX_NAME_LENGTH = 128


def check_identifier(
    name: str, what: str = "program name", max_length: int | None = MAX_NAME_LENGTH
) -> str:
    """Return ``name`` if it is a valid Python identifier, else raise CommandError.

    The message says which rule the name breaks: not an identifier, a keyword, or longer
    than ``max_length`` characters (None: no limit).
    """
    if max_length is not None and len(name) > max_length:
        raise CommandError(
            f"{what} {name[:12] + '…'!r} is {len(name)} characters long; "
            f"at most {max_length} are allowed"
        )
    if keyword.iskeyword(name):
        raise CommandError(f"{what} {name!r} is a Python keyword; choose another name")
    if not name.isidentifier():
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


def _name_list(values: list[str], option: str) -> list[str]:
    names = [n.strip() for v in values for n in v.split(",") if n.strip()]
    for n in names:
        if not n.isidentifier():
            raise CommandError(f"{option} {n!r}: expected C function names, separated by commas")
    return names


def _sizes(items: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for name, value in _pairs(items, "--max-entries", None).items():
        try:
            out[name] = int(value, 0)
        except ValueError:
            raise CommandError(f"--max-entries {name}={value}: expected a whole number") from None
        if out[name] <= 0:
            raise CommandError(f"--max-entries {name}={value}: must be positive")
    return out


def _cell_from_namespace(name: str, ns: argparse.Namespace) -> CellArgs:
    if ns.interval is not None and not ns.interval > 0:
        raise CommandError(f"--interval must be a positive number of seconds, not {ns.interval}")
    for option in ("sample_freq", "sample_period"):
        value = getattr(ns, option)
        if value is not None and value <= 0:
            flag = "--" + option.replace("_", "-")
            raise CommandError(f"{flag} must be a positive number, not {value}")
    if ns.sample_freq is not None and ns.sample_period is not None:
        raise CommandError("--sample-freq and --sample-period exclude each other")
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
        force=ns.force,
        fleet=_hosts(ns.fleet),
        sample_freq=ns.sample_freq,
        sample_period=ns.sample_period,
        keep_maps=ns.keep_maps,
        use=_uses(ns.use),
        programs=_name_list(ns.programs, "--programs") if ns.programs is not None else None,
        skip=_name_list(ns.skip, "--skip"),
        max_entries=_sizes(ns.max_entries),
        bcc=ns.bcc,
        mmap_arrays=ns.mmap_arrays,
    )


def _hosts(value: str | None) -> list[str] | None:
    """``--fleet`` -> [] (every worker), ``--fleet a,b`` -> ["a", "b"], absent -> None."""
    if value is None:
        return None
    hosts = [h.strip() for h in value.split(",") if h.strip()]
    if value.strip() and not hosts:
        raise CommandError(f"--fleet {value!r}: expected HOST[,HOST...]")
    return hosts


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
    if action == "unpin":
        if rest == ["--all"]:
            return LineArgs("unpin", all=True)
        if len(rest) == 1 and not rest[0].startswith("-"):
            return LineArgs("unpin", name=rest[0])
        raise CommandError("usage: %bpf unpin NAME | %bpf unpin --all")
    if action in ("list", "top", "doctor", "templates", "pins"):
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
        force = "--force" in rest
        rest = [r for r in rest if r != "--force"]
        if len(rest) != 2 or rest[0].count(".") != 1:
            raise CommandError("usage: %bpf export NAME.MAP PATH.csv [--force]")
        return LineArgs("export", name=rest[0], path=rest[1], force=force)
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
    if action == "cluster":
        if not rest:
            return LineArgs("cluster")
        if rest[0] == "connect" and len(rest) == 2:
            return LineArgs("cluster", name="connect", address=rest[1])
        if rest == ["disconnect"]:
            return LineArgs("cluster", name="disconnect")
        raise CommandError(
            "usage: %bpf cluster | %bpf cluster connect tcp://HOST:8786 | %bpf cluster disconnect"
        )
    raise CommandError(f"unknown %bpf action {action!r}\nusage: {LINE_USAGE}")
