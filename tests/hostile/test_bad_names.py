"""Bad program names: each refusal names the real cause (a keyword, the length, a builtin)."""

from __future__ import annotations

from typing import Any

import pytest

from bpfnb.build.command import parse_cell_args

CELL = 'SEC("tracepoint/syscalls/sys_enter_getpid")\nint on(void *ctx) { return 0; }\n'


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("def", "program name 'def' is a Python keyword; choose another name"),
        ("None", "program name 'None' is a Python keyword; choose another name"),
        ("a-b", "program name 'a-b' is not a valid Python identifier"),
        ("1abc", "program name '1abc' is not a valid Python identifier"),
        (
            "x" * 129,
            "program name 'xxxxxxxxxxxx…' is 129 characters long; at most 128 are allowed",
        ),
    ],
)
def test_a_bad_cell_name_says_why(name: str, says: str) -> None:
    from bpfnb.errors import CommandError

    with pytest.raises(CommandError) as raised:
        parse_cell_args(name)
    assert str(raised.value) == says
    assert len(str(raised.value)) < 120


def test_the_longest_name_is_accepted() -> None:
    assert parse_cell_args("x" * 128).name == "x" * 128


@pytest.mark.parametrize(
    ("name", "says"),
    [
        (
            "__name__",
            "'__name__' is a Python builtin: binding the program to it would hide "
            "the builtin __name__ in this notebook; choose another name",
        ),
        (
            "print",
            "'print' is a Python builtin: binding the program to it would hide "
            "print() in this notebook; choose another name",
        ),
    ],
)
def test_a_builtin_name_is_refused_with_what_it_would_hide(
    shell: Any, name: str, says: str
) -> None:
    result = shell.run_cell(f"%%bpf {name} --no-display\n" + CELL)
    error = result.error_in_exec or result.error_before_exec
    assert error is not None and str(error) == says
