"""A C tokenizer for source rewrites that keep every line where it was (pure).

bpfnb rewrites some C before clang sees it (the BCC dialect, legacy map definitions).
Rewriting text with line regexes breaks on comments, strings and macros spread over
lines; this tokenizer reads C the way the preprocessor's lexer does (identifiers,
numbers, string and character literals, punctuators, comments, preprocessor
directive lines) and keeps each token's offset, so a rewrite replaces exact token
ranges of the original text.

:class:`Edits` applies replacements and keeps line numbers: a replacement spanning
``k`` line breaks in the original keeps ``k`` line breaks (moved to its end when the
new text has fewer), so clang's line numbers stay the user's.

Example
-------
>>> [t.text for t in tokenize('x.lookup(&k); // hi') if t.kind != "comment"]
['x', '.', 'lookup', '(', '&', 'k', ')', ';']
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

IDENT = "ident"
NUMBER = "number"
STRING = "string"
CHAR = "char"
PUNCT = "punct"
COMMENT = "comment"
DIRECTIVE = "directive"

_PUNCTUATORS = sorted(
    "... <<= >>= -> ++ -- << >> <= >= == != && || *= /= %= += -= &= ^= |= ## :: "  # noqa: SIM905
    "[ ] ( ) { } . & * + - ~ ! / % < > ^ | ? : ; = , #".split(),
    key=len,
    reverse=True,
)
_TOKEN_RE = re.compile(
    r"(?P<space>[ \t\r\f\v]+|\\\n)"
    r"|(?P<newline>\n)"
    r"|(?P<comment>//(?:[^\n\\]|\\.)*|/\*.*?(?:\*/|\Z))"
    r"|(?P<string>(?:u8|[uUL])?\"(?:[^\"\\\n]|\\.)*\"?)"
    r"|(?P<char>(?:[uUL])?'(?:[^'\\\n]|\\.)*'?)"
    r"|(?P<number>\.?[0-9](?:[eEpP][+-]|[\w.])*)"
    r"|(?P<ident>[A-Za-z_$][\w$]*)"
    r"|(?P<punct>" + "|".join(re.escape(p) for p in _PUNCTUATORS) + r")"
    r"|(?P<other>.)",
    re.S,
)


@dataclass(frozen=True)
class Token:
    """One token of C text.

    Attributes
    ----------
    kind : str
        ``ident``, ``number``, ``string``, ``char``, ``punct``, ``comment`` or
        ``directive`` (a whole preprocessor line, continuations included).
    text : str
        The token's text.
    start, end : int
        Its offsets in the source (``source[start:end] == text``).
    line : int
        1-based line of its first character.
    """

    kind: str
    text: str
    start: int
    end: int
    line: int

    def is_ident(self, *names: str) -> bool:
        """Whether the token is an identifier (one of ``names`` when given)."""
        return self.kind == IDENT and (not names or self.text in names)

    def is_punct(self, *texts: str) -> bool:
        """Whether the token is a punctuator (one of ``texts`` when given)."""
        return self.kind == PUNCT and (not texts or self.text in texts)


def _directive_end(source: str, start: int) -> int:
    """End of the preprocessor line starting at ``start`` (continuations and comments)."""
    i = start
    n = len(source)
    while i < n:
        c = source[i]
        if c == "\\" and source.startswith("\\\n", i):
            i += 2
            continue
        if c == "\n":
            return i
        if source.startswith("/*", i):
            close = source.find("*/", i + 2)
            i = n if close < 0 else close + 2
            continue
        if source.startswith("//", i):
            nl = source.find("\n", i)
            return n if nl < 0 else nl
        if c in "\"'":
            m = re.compile(rf"{c}(?:[^{c}\\\n]|\\.)*{c}?").match(source, i)
            i = m.end() if m else i + 1
            continue
        i += 1
    return n


def tokenize(source: str) -> list[Token]:
    """Split C text into tokens (whitespace dropped; comments and directives kept).

    A ``#`` that starts a line (after blanks) opens a directive token running to the
    end of the logical line.
    """
    tokens: list[Token] = []
    pos, line, at_line_start = 0, 1, True
    n = len(source)
    while pos < n:
        m = _TOKEN_RE.match(source, pos)
        assert m is not None  # the last alternative matches any character
        kind = m.lastgroup or "other"
        text = m.group(0)
        if kind == "punct" and text == "#" and at_line_start:
            end = _directive_end(source, pos)
            text = source[pos:end]
            tokens.append(Token(DIRECTIVE, text, pos, end, line))
            line += text.count("\n")
            pos = end
            continue
        if kind == "newline":
            at_line_start = True
        elif kind == "space":
            pass
        else:
            at_line_start = False
            tokens.append(Token(kind if kind != "other" else PUNCT, text, pos, m.end(), line))
        line += text.count("\n")
        pos = m.end()
    return tokens


def code(tokens: Sequence[Token]) -> list[Token]:
    """The tokens the compiler parses: comments and directives left out."""
    return [t for t in tokens if t.kind not in (COMMENT, DIRECTIVE)]


def matching(tokens: Sequence[Token], i: int) -> int:
    """Index of the bracket closing the one at ``tokens[i]`` (``(``, ``[`` or ``{``)."""
    pairs = {"(": ")", "[": "]", "{": "}"}
    opening = tokens[i].text
    closing = pairs[opening]
    depth = 0
    for j in range(i, len(tokens)):
        t = tokens[j]
        if t.kind != PUNCT:
            continue
        if t.text == opening:
            depth += 1
        elif t.text == closing:
            depth -= 1
            if depth == 0:
                return j
    raise ValueError(f"unbalanced {opening!r} at line {tokens[i].line}")


def split_args(tokens: Sequence[Token], open_index: int) -> tuple[list[list[Token]], int]:
    """The comma-separated arguments between ``tokens[open_index]`` (``(``) and its match.

    Returns the arguments (lists of tokens; ``[]`` for ``()``) and the index of ``)``.
    """
    close = matching(tokens, open_index)
    args: list[list[Token]] = []
    current: list[Token] = []
    depth = 0
    for t in tokens[open_index + 1 : close]:
        if t.kind == PUNCT and t.text in "([{":
            depth += 1
        elif t.kind == PUNCT and t.text in ")]}":
            depth -= 1
        if depth == 0 and t.is_punct(","):
            args.append(current)
            current = []
            continue
        current.append(t)
    if current or args:
        args.append(current)
    return args, close


def text_of(source: str, tokens: Sequence[Token]) -> str:
    """The original text a run of tokens covers (comments between them included)."""
    if not tokens:
        return ""
    return source[tokens[0].start : tokens[-1].end]


class Edits:
    """Replacements of ranges of a source, applied keeping every line in place.

    Parameters
    ----------
    source : str
        The original text.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self._edits: list[tuple[int, int, str]] = []

    def replace(self, start: int, end: int, text: str) -> None:
        """Replace ``source[start:end]`` with ``text`` (ranges must not overlap)."""
        self._edits.append((start, end, text))

    def insert(self, at: int, text: str) -> None:
        """Insert ``text`` (with no line break) at ``at``."""
        self._edits.append((at, at, text))

    def __bool__(self) -> bool:
        return bool(self._edits)

    def apply(self) -> str:
        """The edited text: each replacement keeps the line breaks of what it replaced.

        Raises
        ------
        ValueError
            When two replacements overlap.
        """
        out: list[str] = []
        pos = 0
        for start, end, text in sorted(self._edits, key=lambda e: (e[0], e[1])):
            if start < pos:
                raise ValueError(f"overlapping edits at offset {start}")
            out.append(self.source[pos:start])
            lost = self.source.count("\n", start, end) - text.count("\n")
            if lost < 0:
                raise ValueError(f"an edit at offset {start} adds line breaks")
            out.append(text + "\n" * lost)
            pos = end
        out.append(self.source[pos:])
        return "".join(out)


def identifiers(tokens: Sequence[Token]) -> Iterator[str]:
    """The identifier texts of ``tokens``."""
    return (t.text for t in tokens if t.kind == IDENT)


__all__ = [
    "CHAR",
    "COMMENT",
    "DIRECTIVE",
    "IDENT",
    "NUMBER",
    "PUNCT",
    "STRING",
    "Edits",
    "Token",
    "code",
    "identifiers",
    "matching",
    "split_args",
    "text_of",
    "tokenize",
]
