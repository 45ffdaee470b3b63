"""Pure tests of the C tokenizer and of line-preserving edits."""

from __future__ import annotations

import pytest

from bpfnb.build import ctokens
from bpfnb.build.ctokens import Edits, tokenize

SOURCE = r"""#include <linux/sched.h>
#define TWICE(x) \
    ((x) * 2)
/* a comment with counts.lookup(&k) inside
 */ int x = 0x1fULL; char *s = "a \" counts.lookup(&k)"; char c = '\'';
counts.lookup(&k); // trailing
p->a.b->c >>= 1.5e+3;
"""


def test_tokens_kinds_text_and_lines() -> None:
    toks = tokenize(SOURCE)
    assert [t.kind for t in toks[:3]] == ["directive", "directive", "comment"]
    assert toks[1].text == "#define TWICE(x) \\\n    ((x) * 2)" and toks[1].line == 2
    assert toks[2].line == 4
    code = ctokens.code(toks)
    assert [t.text for t in code[:5]] == ["int", "x", "=", "0x1fULL", ";"]
    strings = [t for t in code if t.kind == "string"]
    assert strings[0].text == r'"a \" counts.lookup(&k)"'
    assert [t.text for t in code if t.kind == "char"] == [r"'\''"]
    lookup = [t for t in code if t.text == "lookup"]
    assert len(lookup) == 1 and lookup[0].line == 6  # not the ones in comments or strings
    last = [t.text for t in code if t.line == 7]
    assert last == ["p", "->", "a", ".", "b", "->", "c", ">>=", "1.5e+3", ";"]
    for t in toks:
        assert SOURCE[t.start : t.end] == t.text


def test_split_args_and_matching() -> None:
    code = ctokens.code(tokenize("f(a, g(b, c), {d, e}, h[1, 2]);"))
    args, close = ctokens.split_args(code, 1)
    assert [" ".join(t.text for t in a) for a in args] == [
        "a",
        "g ( b , c )",
        "{ d , e }",
        "h [ 1 , 2 ]",
    ]
    assert code[close].text == ")" and code[close + 1].text == ";"
    assert ctokens.split_args(ctokens.code(tokenize("f()")), 1)[0] == []
    with pytest.raises(ValueError, match="unbalanced"):
        ctokens.matching(ctokens.code(tokenize("f(a, b")), 1)


def test_edits_keep_every_line() -> None:
    source = "one\nBIG(\n  two,\n  three);\nfour\n"
    first = source.index("BIG")
    last = source.index(");") + 1
    edits = Edits(source)
    edits.replace(first, last, "small()")
    out = edits.apply()
    assert out.splitlines()[4] == "four" and out.count("\n") == source.count("\n")
    assert out == "one\nsmall()\n\n;\nfour\n"
    with pytest.raises(ValueError, match="adds line breaks"):
        bad = Edits("a b")
        bad.replace(0, 1, "x\ny")
        bad.apply()
    with pytest.raises(ValueError, match="overlapping"):
        both = Edits("abcdef")
        both.replace(0, 3, "x")
        both.replace(2, 4, "y")
        both.apply()
