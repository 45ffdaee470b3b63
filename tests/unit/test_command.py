"""Pure tests of the magic argument parser."""

from __future__ import annotations

import pytest

from bpfnb.build.command import parse_cell_args, parse_line_args
from bpfnb.errors import CommandError


def test_cell_defaults() -> None:
    args = parse_cell_args("syscalls")
    assert (args.name, args.attach, args.display, args.interval) == ("syscalls", True, True, None)
    assert args.defines == {} and args.globals == {} and not args.compile_only


def test_cell_every_option() -> None:
    args = parse_cell_args(
        'lat -D DEBUG -D MAX=8 -I inc -I /abs --cflags "-Wall -Wno-unused" --no-attach '
        "--no-display --interval 0.25 --set target_pid=42 --set min_ns=1000 --compile-only"
    )
    assert args.name == "lat"
    assert args.defines == {"DEBUG": "1", "MAX": "8"}
    assert args.include_dirs == ["inc", "/abs"]
    assert args.cflags == ["-Wall", "-Wno-unused"]
    assert (args.attach, args.display, args.interval) == (False, False, 0.25)
    assert args.globals == {"target_pid": "42", "min_ns": "1000"}
    assert args.compile_only


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("", "needs a name"),
        ("1abc", "not a valid Python identifier"),
        ("class", "is a Python keyword"),
        ("x --bogus", "unrecognized arguments: --bogus"),
        ("x --interval -1", "positive"),
        ("x --interval abc", "invalid float value"),
        ("x --set novalue", "expected NAME=VALUE"),
        ("x -D 9bad", "C identifier"),
        ('x --cflags "-Wall', "cannot parse"),
    ],
)
def test_cell_errors(line: str, message: str) -> None:
    with pytest.raises(CommandError, match=message):
        parse_cell_args(line)


def test_line_actions() -> None:
    assert parse_line_args("list").action == "list"
    assert parse_line_args("doctor").action == "doctor"
    assert parse_line_args("templates").action == "templates"
    stop = parse_line_args("stop syscalls")
    assert (stop.action, stop.name, stop.all) == ("stop", "syscalls", False)
    assert parse_line_args("stop --all").all
    export = parse_line_args("export syscalls.counts out/counts.csv")
    assert (export.name, export.path) == ("syscalls.counts", "out/counts.csv")
    template = parse_line_args("template syscount mine --interval 2 --show")
    assert template.name == "syscount" and template.show
    assert template.cell is not None
    assert (template.cell.name, template.cell.interval) == ("mine", 2.0)
    assert parse_line_args("template syscount").cell.name == "syscount"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("", "usage"),
        ("frobnicate", "unknown %bpf action 'frobnicate'"),
        ("stop", "usage: %bpf stop"),
        ("export nodot out.csv", "usage: %bpf export"),
        ("list extra", "takes no arguments"),
        ("template", "usage: %bpf template"),
    ],
)
def test_line_errors(line: str, message: str) -> None:
    with pytest.raises(CommandError, match=message):
        parse_line_args(line)


@pytest.mark.parametrize(
    ("line", "cflags"),
    [
        ('x --cflags "-O0"', ["-O0"]),
        ("x --cflags -O0", ["-O0"]),
        ("x --cflags=-O0", ["-O0"]),
        ('x --cflags "-O0 -Wall"', ["-O0", "-Wall"]),
        ('x --cflags="-O0 -Wall" --no-attach', ["-O0", "-Wall"]),
        ("x --cflags -O0 --cflags -Wall", ["-O0", "-Wall"]),
        ('x --cflags "-DX=\\"a b\\""', ["-DX=a b"]),
    ],
)
def test_cflags_take_option_like_values(line: str, cflags: list[str]) -> None:
    args = parse_cell_args(line)
    assert args.name == "x" and args.cflags == cflags


def test_template_cflags_and_set_negative() -> None:
    template = parse_line_args("template syscount mine --cflags -O1 --set targ_uid=-1")
    assert template.cell is not None
    assert template.cell.cflags == ["-O1"] and template.cell.globals == {"targ_uid": "-1"}
    with pytest.raises(CommandError, match="expected one argument"):
        parse_cell_args("x --cflags")


@pytest.mark.parametrize(
    ("line", "hosts"),
    [
        ("calls", None),
        ("calls --fleet", []),
        ("calls --fleet web1", ["web1"]),
        ("calls --fleet web1,web2 --set target_pid=3", ["web1", "web2"]),
        ("calls --no-display --fleet 0,1", ["0", "1"]),
    ],
)
def test_cell_fleet_hosts(line: str, hosts: list[str] | None) -> None:
    assert parse_cell_args(line).fleet == hosts


def test_line_cluster_actions() -> None:
    assert parse_line_args("cluster").action == "cluster"
    connect = parse_line_args("cluster connect tcp://127.0.0.1:8786")
    assert (connect.name, connect.address) == ("connect", "tcp://127.0.0.1:8786")
    assert parse_line_args("cluster disconnect").name == "disconnect"
    with pytest.raises(CommandError, match="cluster connect tcp://HOST:8786"):
        parse_line_args("cluster connect")
    with pytest.raises(CommandError, match=r"expected HOST\[,HOST\.\.\.\]"):
        parse_cell_args("calls --fleet ,")
