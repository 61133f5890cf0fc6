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

import errno
import glob
import itertools
import os
import re
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from hafm.errors import ConfigError
from hafm.keepalived.params import (
    MAX_GENERATED_LINES,
    MAX_LINE_BYTES,
    Define,
    ExpansionError,
    Parameters,
    definition,
    sequence,
)

__all__ = [
    "Node",
    "ParseError",
    "ParseResult",
    "UnreadableFile",
    "brace_expand",
    "decomment",
    "parse_text",
    "read_config_file",
    "tokenize_line",
]

# keepalived's include variants only differ in which missing files are errors; the converter
# reports every include that matches nothing as a warning instead.  keepalived takes the rest
# of the line, as written, as the pattern (core/parser.c check_include).
_INCLUDE = re.compile(r"(include[rmwba]?)[ \t]+(.+)")
# "@ID REST" applies REST only where keepalived's config id is ID, "@^ID REST" everywhere else.
_CONDITIONAL = re.compile(r"(@\^?)([^ \t]*)(?:[ \t]+(.*))?", re.DOTALL)
MAX_INCLUDE_DEPTH = 32
# keepalived's deepest real nesting is four blocks (virtual_server, real_server, HTTP_GET, url).
MAX_BLOCK_DEPTH = 64
MAX_FILE_BYTES = 16 * 2**20

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
    notes: list[tuple[str, int, str]] = field(default_factory=list)  # (file, line, "FILE:LINE: ...: note: ...")


def tokenize_line(text: str, *, filename: str = "keepalived.conf", line: int = 1, comments: bool = True) -> list[Token]:
    """Split one line into tokens, dropping ``#``/``!`` comments outside quotes (unless
    ``comments`` is False: the reader has removed them already, see :func:`decomment`).

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
        elif char in "#!" and comments:
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


class UnreadableFile(Exception):
    """A configuration file that cannot be read; ``skipped`` when keepalived skips it too."""

    def __init__(self, why: str, *, skipped: bool = False) -> None:
        super().__init__(why)
        self.why = why
        self.skipped = skipped


def read_config_file(path: Path) -> str:
    """The text of a keepalived configuration file, refusing anything but a regular file.

    Bytes that are not UTF-8 are kept as surrogate escapes: keepalived reads bytes, so
    they are harmless in comments; the converter refuses them in a value it writes.
    Raises :class:`UnreadableFile`.
    """
    try:
        # Never block: a FIFO opened for reading would wait for a writer.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except OSError as exc:
        if exc.errno == errno.EISDIR:
            raise UnreadableFile("is a directory (keepalived skips it)", skipped=True) from None
        # keepalived skips an include it cannot open, with a log line.
        raise UnreadableFile(f"cannot read: {exc.strerror or exc}", skipped=True) from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise UnreadableFile("is a directory (keepalived skips it)", skipped=True)
        if not stat.S_ISREG(mode):
            raise UnreadableFile("not a regular file")
        if mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH):
            raise UnreadableFile("is executable (keepalived skips executable files)", skipped=True)
    except BaseException:
        os.close(fd)
        raise
    with os.fdopen(fd, "rb") as stream:
        data = stream.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise UnreadableFile(f"larger than {MAX_FILE_BYTES // 2**20} MiB")
    return data.decode("utf-8", "surrogateescape")


def brace_expand(pattern: str) -> list[str]:
    """glibc's GLOB_BRACE, which keepalived uses for include: ``{a,b}.conf`` -> a.conf, b.conf.

    Written out because the brace libraries follow bash, which adds ``{1..3}`` ranges that
    glibc (and so keepalived) does not have.  Braces nest; a backslash escapes the next
    character; a ``{`` without its ``}`` is literal.
    """
    depth = 0
    start = -1
    commas: list[int] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            i += 2
            continue
        if char == "{":
            if depth == 0:
                start = i
                commas = []
            depth += 1
        elif char == "}" and depth:
            depth -= 1
            if depth == 0:
                head, tail = pattern[:start], pattern[i + 1 :]
                bounds = [start, *commas, i]
                return [
                    expanded
                    for left, right in itertools.pairwise(bounds)
                    for expanded in brace_expand(head + pattern[left + 1 : right] + tail)
                ]
        elif char == "," and depth == 1:
            commas.append(i)
        i += 1
    return [pattern]


class _Reader:
    """Turns files into lines of tokens: comments, parameters, conditionals and includes."""

    def __init__(self, *, config_id: str | None = None) -> None:
        self.warnings: list[tuple[str, int, str]] = []
        self.notes: list[tuple[str, int, str]] = []
        self.config_id = config_id
        self.parameters = Parameters(config_id=config_id)
        self.open_definition: str | None = None  # name of the multiline definition being read

    def lines(self, text: str, filename: str, base_dir: Path | None, depth: int = 0) -> Iterator[list[Token]]:
        directory = base_dir if base_dir is not None else Path.cwd()
        # keepalived reads with fgets: lines end at "\n", trailing "\r"s are dropped.
        for number, raw in enumerate(text.split("\n"), start=1):
            raw = raw.rstrip("\r")
            # fgets() needs room for the newline: a longer line is cut and its rest read as a new line.
            if len(raw.encode("utf-8", "surrogateescape")) > MAX_LINE_BYTES - 1:
                raise ParseError(filename, number, f"line longer than keepalived's limit of {MAX_LINE_BYTES - 1} bytes")
            if "\0" in raw:
                why = "line with a NUL byte: not converted (keepalived ignores it)"
                self.warnings.append((filename, number, f"{filename}:{number}: {why}"))
                continue
            if self.open_definition is not None and not raw:
                # An empty line ends a multiline definition (a comment line does not).
                self.parameters.end_definition(self.open_definition)
                self.open_definition = None
                continue
            line = decomment(raw)
            if not line:
                continue
            if self.open_definition is not None:
                continues = line.endswith("\\")
                self.parameters.continue_definition(
                    self.open_definition, line[:-1].rstrip(" \t") if continues else line
                )
                if not continues:
                    self.parameters.end_definition(self.open_definition)
                    self.open_definition = None
                continue
            yield from self._expand(line, filename, number, directory, depth)

    def _expand(self, first: str, filename: str, number: int, directory: Path, depth: int) -> Iterator[list[Token]]:
        """One line, and the lines its multiline parameters and ~SEQ add, in keepalived's order."""
        stack: list[str | Define] = [first]
        produced = 0
        while stack:
            item = stack.pop()
            if isinstance(item, Define):
                self.parameters.define(item.name, item.value)
                continue
            produced += 1
            if produced > MAX_GENERATED_LINES:
                raise ParseError(filename, number, f"expands into more than {MAX_GENERATED_LINES} lines")
            try:
                text = self._statement(item, filename, number, directory, stack)
            except ExpansionError as exc:
                raise ParseError(filename, number, str(exc)) from None
            if not text:
                continue
            include = _INCLUDE.fullmatch(text)
            if include is not None:
                yield from self._include(include[1], include[2], filename, number, directory, depth)
            else:
                yield tokenize_line(text, filename=filename, line=number, comments=False)

    def _statement(self, text: str, filename: str, number: int, directory: Path, stack: list[str | Define]) -> str:
        """keepalived's read_line loop for one line: conditionals, definitions, ~SEQ, substitution.

        Returns the line to read as a statement ("" when there is none)."""
        while True:
            if text.startswith("@"):
                text = self._conditional(text, filename, number)
                if not text:
                    return ""
            if text.startswith("$") and (found := definition(text)) is not None:
                name, value, continues = found
                self.parameters.define(name, value, multiline=continues)
                if continues:
                    self.open_definition = name
                return ""
            if text.startswith("~LST"):
                raise ExpansionError("~LST: not converted (write the lines out)")
            if text.startswith("~SEQ"):
                expand = self._expander(filename, number, directory)
                stack.extend(reversed(sequence(text, expand)))
                return ""
            if text.startswith("~") or "$" not in text:
                break
            expanded = self.parameters.expand(text, directory=directory)
            if expanded is None:
                break
            self.notes += [(filename, number, f"{filename}:{number}: {note}") for note in expanded.notes]
            stack.extend(reversed(expanded.following))
            text = decomment(expanded.text)
            if not (text.startswith("@") or "$" in text):
                break
        return text

    def _expander(self, filename: str, number: int, directory: Path) -> Callable[[str], str]:
        def expand(text: str) -> str:
            expanded = self.parameters.expand(text, directory=directory)
            if expanded is None:
                return text
            if expanded.following:
                raise ExpansionError("~SEQ parameter is a multiline definition")
            self.notes += [(filename, number, f"{filename}:{number}: {note}") for note in expanded.notes]
            return expanded.text

        return expand

    def _conditional(self, text: str, filename: str, number: int) -> str:
        """``@ID REST`` / ``@^ID REST``: REST when it applies to the config id, else ""."""
        match = _CONDITIONAL.fullmatch(text)
        assert match is not None  # text starts with "@"
        marker, config_id, rest = match[1], match[2], match[3] or ""
        first = marker + config_id
        if self.config_id is None:
            # keepalived's id is its -i option or the host name of the machine it runs on.
            if any(t.text in "{}" and not t.quoted for t in tokenize_line(text, filename=filename, line=number)):
                raise ParseError(
                    filename, number, f"{first}: conditional blocks need the config id (hafm convert --config-id)"
                )
            self.warnings.append(
                (
                    filename,
                    number,
                    f"{filename}:{number}: {first}: not converted (conditional configuration depends on "
                    "the machine keepalived runs on; give its id with hafm convert --config-id)",
                )
            )
            return ""
        # keepalived (read_line): a line with nothing after the id is dropped.
        return rest if (config_id == self.config_id) != (marker == "@^") else ""

    def _include(
        self, keyword: str, pattern: str, filename: str, line: int, directory: Path, depth: int
    ) -> Iterator[list[Token]]:
        if depth >= MAX_INCLUDE_DEPTH:
            raise ParseError(filename, line, f"{keyword}: includes nested deeper than {MAX_INCLUDE_DEPTH}")
        full = pattern if Path(pattern).is_absolute() else str(directory / pattern)
        # Like glob(GLOB_BRACE): each alternative's matches are sorted, alternatives keep their order.
        matches = [match for alternative in brace_expand(full) for match in sorted(glob.glob(alternative))]
        if not matches:
            self.warnings.append(
                (filename, line, f"{filename}:{line}: {keyword} {pattern}: not converted (no file matches)")
            )
            return
        for match in matches:
            path = Path(match)
            try:
                text = read_config_file(path)
            except UnreadableFile as exc:
                if not exc.skipped:
                    raise ParseError(filename, line, f"{keyword} {match}: {exc.why}") from None
                self.warnings.append(
                    (filename, line, f"{filename}:{line}: {keyword} {match}: not converted ({exc.why})")
                )
                continue
            # keepalived resolves includes relative to the including file's directory.
            yield from self.lines(text, match, path.parent, depth + 1)


def decomment(raw: str) -> str:
    """keepalived's ``decomment``: strip blanks and ``#``/``!`` comments outside double quotes.

    ``\\#`` and ``\\!`` outside quotes become literal; a final backslash (a continued
    definition) is kept, without the blanks before it.
    """
    text = raw.lstrip(" \t")
    out: list[str] = []
    in_quote = False
    continued = False
    i = 0
    while i < len(text):
        char = text[i]
        if char == '"':
            in_quote = not in_quote
        elif char == "\\":
            if i + 1 == len(text):
                continued = True
                break
            following = text[i + 1]
            out.append(following if not in_quote and following in "#!" else char + following)
            i += 2
            continue
        elif char in "#!" and not in_quote:
            break
        out.append(char)
        i += 1
    result = "".join(out).rstrip(" \t")
    return result + "\\" if continued else result


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
                if len(self.stack) >= MAX_BLOCK_DEPTH:
                    raise ParseError(token.filename, token.line, f"blocks nested deeper than {MAX_BLOCK_DEPTH}")
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


def parse_text(
    text: str, *, filename: str = "keepalived.conf", base_dir: Path | None = None, config_id: str | None = None
) -> ParseResult:
    """Parse keepalived.conf text into a list of top-level :class:`Node` trees.

    Raises :class:`ParseError` for unbalanced braces, unterminated quotes,
    blocks nested too deep, lines too long and parameters that cannot be
    expanded.  Includes that keepalived skips and conditional lines become
    warnings.
    """
    reader = _Reader(config_id=config_id)
    builder = _TreeBuilder()
    for tokens in reader.lines(text, filename, base_dir):
        builder.line(tokens)
    return ParseResult(nodes=builder.finish(), warnings=reader.warnings, notes=reader.notes)
