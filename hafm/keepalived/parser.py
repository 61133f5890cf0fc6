"""Read keepalived.conf into a tree of statements with file and line numbers.

This module only knows keepalived's *syntax*: comments, quoted strings,
``{ ... }`` blocks and ``include``.  What the keywords mean is the job of
:mod:`hafm.keepalived.convert`.  Every node remembers where it came from so that each
message can point at ``FILE:LINE``.

keepalived's own reader works line by line: a statement is the words on one
line, and a ``{`` opens a block whose statements run until the matching
``}``.  ``include`` splices another file's lines in place, so a block may in
principle start in one file and end in another; splicing tokens (not trees)
keeps that behaviour.
"""

from __future__ import annotations

import glob
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from hafm.errors import ConfigError

__all__ = ["Node", "ParseError", "ParseResult", "parse_text", "tokenize_line"]

# keepalived's include variants only differ in which missing files are errors;
# the converter reports every unreadable include as a warning instead.
INCLUDE_KEYWORDS = frozenset({"include", "includer", "includem", "includew", "includeb", "includea"})
MAX_INCLUDE_DEPTH = 32

_ESCAPES = {"a": "\a", "b": "\b", "E": "\x1b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


class ParseError(ConfigError):
    """A syntax error; the single message reads ``FILE:LINE: what is wrong``."""

    def __init__(self, filename: str, line: int, message: str) -> None:
        super().__init__([f"{filename}:{line}: {message}"])
        self.filename = filename
        self.line = line


@dataclass(frozen=True, kw_only=True)
class Token:
    """One word of the input; ``quoted`` tells a literal ``"{"`` from a brace."""

    text: str
    quoted: bool
    filename: str
    line: int


@dataclass(kw_only=True)
class Node:
    """One statement: ``keyword args...`` and, if it opened a block, its children.

    ``children`` is None for a plain statement and a (possibly empty) list for
    one that was followed by ``{ ... }``.
    """

    keyword: str
    args: list[str]
    filename: str
    line: int
    children: list[Node] | None = None
    quoted_args: list[bool] = field(default_factory=list)

    @property
    def where(self) -> str:
        """``FILE:LINE`` of this statement, the prefix of every message about it."""
        return f"{self.filename}:{self.line}"


@dataclass(frozen=True, kw_only=True)
class ParseResult:
    """The statement tree plus the problems that did not stop parsing."""

    nodes: list[Node]
    warnings: list[tuple[str, int, str]]  # (file, line, "FILE:LINE: keyword: not converted (why)")


def tokenize_line(text: str, *, filename: str = "keepalived.conf", line: int = 1) -> list[Token]:
    """Split one line into tokens, dropping ``#``/``!`` comments outside quotes.

    Quoting follows keepalived.conf(5): ``"`` or ``'`` group words (the quote
    characters are removed), a backslash escapes the next character, and
    ``{``/``}`` are tokens of their own unless quoted.
    """
    tokens: list[Token] = []
    word: list[str] = []
    in_word = False
    quoted = False
    quote: str | None = None
    i = 0

    def flush() -> None:
        nonlocal in_word, quoted
        if in_word:
            tokens.append(Token(text="".join(word), quoted=quoted, filename=filename, line=line))
        word.clear()
        in_word = False
        quoted = False

    while i < len(text):
        char = text[i]
        if quote is not None:
            if char == quote:
                quote = None
            elif char == "\\" and i + 1 < len(text):
                i += 1
                word.append(_ESCAPES.get(text[i], text[i]))
            else:
                word.append(char)
        elif char in "\"'":
            quote = char
            in_word = True
            quoted = True
        elif char in "#!":
            break
        elif char.isspace():
            flush()
        elif char in "{}":
            flush()
            tokens.append(Token(text=char, quoted=False, filename=filename, line=line))
        elif char == "\\" and i + 1 < len(text):
            i += 1
            word.append(text[i])
            in_word = True
        else:
            word.append(char)
            in_word = True
        i += 1
    if quote is not None:
        raise ParseError(filename, line, f"unterminated {quote} quote")
    flush()
    return tokens


class _Reader:
    """Turns files into lines of tokens, following includes."""

    def __init__(self) -> None:
        self.warnings: list[tuple[str, int, str]] = []

    def lines(self, text: str, filename: str, base_dir: Path | None, depth: int = 0) -> Iterator[list[Token]]:
        for number, raw in enumerate(text.splitlines(), start=1):
            tokens = tokenize_line(raw, filename=filename, line=number)
            if not tokens:
                continue
            first = tokens[0]
            if not first.quoted and first.text in INCLUDE_KEYWORDS:
                yield from self._include(tokens, filename, number, base_dir, depth)
                continue
            if not first.quoted and first.text.startswith(("@", "$", "~")):
                # Conditional configuration (@ID), parameter definitions ($NAME=)
                # and sequences (~SEQ) depend on how keepalived is started.
                if any(t.text in "{}" and not t.quoted for t in tokens):
                    raise ParseError(
                        filename, number, f"{first.text}: conditional/parameterised blocks cannot be converted"
                    )
                self.warnings.append(
                    (
                        filename,
                        number,
                        f"{filename}:{number}: {first.text}: not converted "
                        "(conditional configuration and parameter substitution are not supported)",
                    )
                )
                continue
            yield tokens

    def _include(
        self, tokens: list[Token], filename: str, line: int, base_dir: Path | None, depth: int
    ) -> Iterator[list[Token]]:
        keyword = tokens[0].text
        if len(tokens) != 2:
            raise ParseError(filename, line, f"{keyword}: expects exactly one file name")
        if depth >= MAX_INCLUDE_DEPTH:
            raise ParseError(filename, line, f"{keyword}: includes nested deeper than {MAX_INCLUDE_DEPTH}")
        pattern = tokens[1].text
        directory = base_dir if base_dir is not None else Path.cwd()
        full = pattern if Path(pattern).is_absolute() else str(directory / pattern)
        matches = sorted(glob.glob(full))
        if not matches:
            self.warnings.append(
                (filename, line, f"{filename}:{line}: {keyword} {pattern}: not converted (no file matches)")
            )
            return
        for match in matches:
            path = Path(match)
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                self.warnings.append(
                    (filename, line, f"{filename}:{line}: {keyword} {match}: not converted (cannot read: {why})")
                )
                continue
            # keepalived resolves includes relative to the including file's directory.
            yield from self.lines(text, match, path.parent, depth + 1)


class _TreeBuilder:
    """Groups tokens into statements and statements into blocks."""

    def __init__(self) -> None:
        self.root: list[Node] = []
        # Each open block: the node that owns it, and where its "{" was.
        self.stack: list[tuple[Node, Token]] = []
        # The last statement, which may still take a "{" on the next line.
        self.last: Node | None = None

    def statement(self, words: list[Token]) -> None:
        if not words:
            return
        node = Node(
            keyword=words[0].text,
            args=[t.text for t in words[1:]],
            quoted_args=[t.quoted for t in words[1:]],
            filename=words[0].filename,
            line=words[0].line,
        )
        if self.stack:
            children = self.stack[-1][0].children
            assert children is not None
            children.append(node)
        else:
            self.root.append(node)
        self.last = node

    def line(self, tokens: list[Token]) -> None:
        words: list[Token] = []
        for token in tokens:
            if token.quoted or token.text not in "{}":
                words.append(token)
                continue
            self.statement(words)
            words = []
            if token.text == "{":
                owner = self.last
                if owner is None or owner.children is not None:
                    raise ParseError(token.filename, token.line, "'{' without a keyword before it")
                owner.children = []
                self.stack.append((owner, token))
            else:
                if not self.stack:
                    raise ParseError(token.filename, token.line, "'}' without a matching '{'")
                self.stack.pop()
            self.last = None
        self.statement(words)

    def finish(self) -> list[Node]:
        if self.stack:
            owner, brace = self.stack[-1]
            raise ParseError(brace.filename, brace.line, f"{owner.keyword}: '{{' is never closed (missing '}}')")
        return self.root


def parse_text(text: str, *, filename: str = "keepalived.conf", base_dir: Path | None = None) -> ParseResult:
    """Parse keepalived.conf text into a list of top-level :class:`Node` trees.

    Raises :class:`ParseError` for unbalanced braces and unterminated quotes.
    Unreadable includes and conditional lines become warnings.
    """
    reader = _Reader()
    builder = _TreeBuilder()
    for tokens in reader.lines(text, filename, base_dir):
        builder.line(tokens)
    return ParseResult(nodes=builder.finish(), warnings=reader.warnings)
