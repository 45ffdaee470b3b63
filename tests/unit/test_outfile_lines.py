"""``outfile.complete_lines``: where a CSV file is cut back after a failed write."""

from __future__ import annotations

import io

import pandas as pd
import pytest

from bpfnb.outfile import complete_lines

FRAME = pd.DataFrame(
    {"pid": [1, 22, 333], "comm": ["plain", 'two\nlines "quoted"', "x,y"]},
)
DATA = FRAME.to_csv(None, index=False).encode()


def test_a_whole_write_keeps_every_line() -> None:
    assert complete_lines(DATA, len(DATA)) == (len(DATA), 4)


@pytest.mark.parametrize("done", range(len(DATA) + 1))
def test_every_cut_keeps_only_whole_rows(done: int) -> None:
    length, lines = complete_lines(DATA, done)
    kept = DATA[:length]
    assert length <= done and (length == 0 or kept.endswith(b"\n"))
    if lines:  # what is kept parses back to exactly the first rows, none torn
        back = pd.read_csv(io.BytesIO(kept), keep_default_na=False)
        assert len(back) == lines - 1
        pd.testing.assert_frame_equal(back, FRAME.iloc[: lines - 1], check_dtype=False)
    # nothing whole was dropped: the next row end lies beyond what was written
    row_ends = [complete_lines(DATA, n)[0] for n in range(len(DATA) + 1)]
    assert all(end <= length for end in row_ends if end <= done)


def test_a_newline_inside_quotes_is_not_a_row_end() -> None:
    second_row_start = DATA.index(b"22")
    inside = DATA.index(b"\n", second_row_start) + 1  # the newline in the quoted field
    assert complete_lines(DATA, inside) == (second_row_start, 2)
