"""keepalived's parameter substitution: ``$NAME=value``, ``$NAME``/``${NAME}``, ``~SEQ``.

keepalived expands parameters on the text of each line before it splits the
line into words (lib/parser.c: ``check_definition``, ``find_definition``,
``replace_param``, ``add_seq`` and the loop in ``read_line``).  This module
follows those rules; where a value depends on the machine or the moment
keepalived starts (``${_INSTANCE}``, ``${_RANDOM}``, ``${_ENV}``, ``~LST``), the
line is refused with ``FILE:LINE`` instead of guessing.

The rules, as keepalived applies them:

* A definition is a line (after comments are removed and leading blanks
  stripped) ``$NAME=VALUE``: NAME is a letter or ``_`` then letters, digits and
  ``_``, with no blank before ``=``.  A VALUE ending in ``\\`` continues on the
  next lines, each ending in ``\\`` but the last (a multiline definition).
* ``$NAME`` is replaced when followed by a blank, ``,``, ``)`` or the end of
  the line; ``${NAME}`` anywhere.  Undefined names stay as they are.
* A multiline definition is only expanded where the reference ends the line;
  its first line takes the reference's place, the others follow as lines.
* Replacement text is scanned again (so a value may name other parameters),
  and a line that expands into a definition defines it.
* Built-ins: ``${_PWD}`` (keepalived's working directory, which is the
  directory of the file being read), ``${_HASH}`` (``#``), ``${_BANG}``
  (``!``), ``${_INSTANCE}`` (the config id, ``-i``), ``${_RANDOM [MIN [MAX]]}``,
  ``${_ENV NAME}``.  A definition of the same name replaces a built-in.
* ``~SEQ(VAR, END)``, ``~SEQ(VAR, START, END)``, ``~SEQ(VAR, START, STEP, END)``
  (``~SEQx`` for hexadecimal values) repeat the rest of the line with VAR
  defined as each value.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Define", "ExpansionError", "Expanded", "Parameters", "definition", "sequence"]

# keepalived reads lines into a buffer of MAXBUF (1024) bytes (lib/parser.h): 1023 bytes and
# the terminating NUL.  A line that expands past it is cut there with a log line; refusing is
# clearer than a cut value.
MAX_LINE_BYTES = 1023
# A definition that names itself ($A=x $A) never stops growing; keepalived stops at MAXBUF.
MAX_SUBSTITUTIONS = 1000
# ~SEQ can be nested: bound what one line may turn into.
MAX_GENERATED_LINES = 100_000

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DEFINITION = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)=[ \t]*(.*)", re.DOTALL)
_BRACE_PARAMS = re.compile(r"[ \tA-Za-z0-9_]*")
_SEQUENCE = re.compile(r"~SEQ(x?)[ \t]*\(([^)]*)\)[ \t]*(.*)", re.DOTALL)
_BAD_SEQ = "invalid ~SEQ: expected ~SEQ(VAR, [START, [STEP,]] END) LINE"
_C_LONG = re.compile(r"[ \t]*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)?")


class ExpansionError(Exception):
    """The line cannot be expanded the way keepalived would; the message says why."""


@dataclass(frozen=True, kw_only=True)
class Define:
    """A definition made by ``~SEQ`` before each repetition of its line."""

    name: str
    value: str


@dataclass(frozen=True, kw_only=True)
class Expanded:
    """The result of expanding one line: the line, and the lines a multiline value adds after it."""

    text: str
    following: list[str]
    notes: list[str]


@dataclass(kw_only=True)
class _Value:
    lines: list[str]
    multiline: bool


# name -> (min params, max params, numbers only); the values are computed in Parameters.builtin.
BUILTINS: dict[str, tuple[int, int, bool]] = {
    "_PWD": (0, 0, False),
    "_INSTANCE": (0, 0, False),
    "_RANDOM": (0, 2, True),
    "_ENV": (1, 1, False),
    "_HASH": (0, 0, False),
    "_BANG": (0, 0, False),
}
_REFUSED_BUILTINS = {
    "_INSTANCE": "it is keepalived's -i config id, by default the host name of the machine it runs on "
    "(give it with hafm convert --config-id)",
    "_RANDOM": "it is a new random number each time keepalived reads it",
    "_ENV": "it is read from keepalived's own environment",
}


def definition(text: str) -> tuple[str, str, bool] | None:
    """``(name, value, continues)`` when ``text`` is a definition ``$NAME=VALUE``, else None.

    ``continues`` is True when the value ends in ``\\`` (the next lines belong to it);
    the backslash and the blanks before it are removed from ``value``.
    """
    match = _DEFINITION.fullmatch(text)
    if match is None:
        return None
    name, value = match.groups()
    if value.endswith("\\"):
        return name, value[:-1].rstrip(" \t"), True
    return name, value, False


def _c_long(text: str) -> tuple[int, str]:
    """C's ``strtol(text, &end, 0)``: the number (0 when there is none) and the text after it."""
    match = _C_LONG.match(text)
    assert match is not None  # every part is optional
    sign, digits = match.groups()
    if not digits:
        return 0, text
    value = int(digits, 16) if digits[:2].lower() == "0x" else int(digits, 8) if digits[0] == "0" else int(digits)
    return (-value if sign == "-" else value), text[match.end() :]


def sequence(text: str, expand: Callable[[str], str]) -> list[Define | str]:
    """Turn a ``~SEQ(...) LINE`` into ``[Define, LINE, Define, LINE, ...]`` as keepalived's ``add_seq``.

    ``expand`` substitutes parameters in the numbers (keepalived allows ``~SEQ(i, $N)``).
    Raises :class:`ExpansionError` for what keepalived would reject.
    """
    match = _SEQUENCE.fullmatch(text)
    if match is None:
        raise ExpansionError(_BAD_SEQ)
    hexadecimal, inside, line = match.groups()
    var, comma, numbers_text = inside.partition(",")
    var = var.strip(" \t")
    if not comma or not _NAME.fullmatch(var):
        raise ExpansionError(_BAD_SEQ)
    rest = expand(numbers_text) + ")"
    numbers: list[int] = []
    while True:
        number, rest = _c_long(rest)
        numbers.append(number)
        rest = rest.lstrip(" \t")
        if rest == ")":
            break
        if len(numbers) == 3 or not rest.startswith(","):
            raise ExpansionError(_BAD_SEQ)
        rest = rest[1:]
    if len(numbers) == 1:
        end = numbers[0]
        start, step = (-1 if end < 0 else 1), (-1 if end < 1 else 1)
    elif len(numbers) == 2:
        start, end = numbers
        step = 1 if start <= end else -1
    else:
        start, step, end = numbers
        if not step or (start < end and step < 0) or (start > end and step > 0):
            raise ExpansionError("invalid ~SEQ values: the step does not lead from START to END")
    if hexadecimal and (start < 0 or end < 0):
        raise ExpansionError("~SEQx is only valid for positive numbers")
    count = (end - start) // step + 1
    if count > MAX_GENERATED_LINES:
        raise ExpansionError(f"~SEQ makes {count} lines, more than the {MAX_GENERATED_LINES} hafm converts")
    result: list[Define | str] = []
    for value in range(start, end + (1 if step > 0 else -1), step):
        result += [Define(name=var, value=f"{value:x}" if hexadecimal else str(value)), line]
    return result


class Parameters:
    """The definitions seen so far, and the expansion of a line with them."""

    def __init__(self, *, config_id: str | None = None) -> None:
        self.values: dict[str, _Value] = {}
        # keepalived's -i (default: its host name); None when the converter was not told.
        self.config_id = config_id

    def define(self, name: str, value: str, *, multiline: bool = False) -> None:
        """Set ``name``; a multiline value starts with this line (which may be empty)."""
        self.values[name] = _Value(lines=[value] if value else [], multiline=multiline)

    def continue_definition(self, name: str, line: str) -> None:
        """Append one more line to the multiline definition of ``name``."""
        if line:
            self.values[name].lines.append(line)

    def end_definition(self, name: str) -> None:
        # keepalived: a multiline definition that collected nothing is an ordinary empty one.
        value = self.values[name]
        if not value.lines:
            value.multiline = False

    def expand(self, text: str, *, directory: Path) -> Expanded | None:
        """Replace every known parameter in ``text``; None when there is none.

        ``directory`` is the directory of the file being read (``${_PWD}``).
        Raises :class:`ExpansionError` for a built-in hafm cannot know or an
        expansion that does not end.
        """
        position = 0
        substitutions = 0
        following: list[str] = []
        notes: list[str] = []
        while (position := text.find("$", position)) >= 0 and position + 1 < len(text):
            reference = _reference(text, position)
            found = None if reference is None else self._value(reference, directory)
            if reference is None or found is None:
                position += 1
                continue
            replacement, more, note = found
            if note:
                notes.append(f"{text[position : reference.end]}: note: {note}")
            # A nested multiline expansion's lines come before the rest of the outer one.
            following = more + following
            # keepalived goes on scanning at the same place, so the replacement is expanded too.
            text = text[:position] + replacement + text[reference.end :]
            substitutions += 1
            if substitutions > MAX_SUBSTITUTIONS or len(text.encode("utf-8", "surrogateescape")) > MAX_LINE_BYTES:
                raise ExpansionError(
                    f"parameter expansion does not end within keepalived's {MAX_LINE_BYTES}-byte line "
                    "(does a definition name itself?)"
                )
            # keepalived stops replacing once a value starts a ~SEQ (the sequence expands it later).
            if replacement.lstrip(" \t").startswith("~"):
                break
        if not substitutions:
            return None
        return Expanded(text=text, following=following, notes=notes)

    def _value(self, reference: _Reference, directory: Path) -> tuple[str, list[str], str] | None:
        """(replacement, following lines, note) for a reference; None when keepalived leaves it as is."""
        value = self.values.get(reference.name)
        if value is not None:
            if reference.params or (value.multiline and not reference.at_line_end):
                return None
            lines = value.lines or [""]
            return lines[0], lines[1:] if value.multiline else [], ""
        limits = BUILTINS.get(reference.name)
        if limits is None:
            return None
        low, high, numbers_only = limits
        words = reference.params.split()
        if not low <= len(words) <= high or (numbers_only and not all(word.isdigit() for word in words)):
            return None
        if reference.name == "_INSTANCE" and self.config_id is not None:
            return self.config_id, [], ""
        if reference.name in _REFUSED_BUILTINS:
            raise ExpansionError(f"{reference.text}: not converted: {_REFUSED_BUILTINS[reference.name]}")
        if reference.name == "_PWD":
            pwd = os.path.realpath(directory)
            note = f"expanded to {pwd}, the directory of this file, which is keepalived's working directory there"
            return pwd, [], note
        return {"_HASH": "#", "_BANG": "!"}[reference.name], [], ""


@dataclass(frozen=True, kw_only=True)
class _Reference:
    """``$NAME`` or ``${NAME PARAMS}`` in a line: ``text`` is the reference as written."""

    name: str
    params: str
    text: str
    end: int
    at_line_end: bool


def _reference(text: str, position: int) -> _Reference | None:
    """The reference at ``text[position] == "$"`` by keepalived's find_definition rules, or None."""
    braces = text.startswith("{", position + 1)
    name_match = _NAME.match(text, position + 1 + braces)
    if name_match is None:
        return None
    params = ""
    end = name_match.end()
    if braces:
        params_match = _BRACE_PARAMS.match(text, end)
        assert params_match is not None  # the pattern also matches nothing
        raw = params_match.group()
        params = raw.strip(" \t")
        end = params_match.end()
        # keepalived: parameters may not end with a blank, and the braces must close.
        if (params and raw != raw.rstrip(" \t")) or not text.startswith("}", end):
            return None
        end += 1
    elif end < len(text) and text[end] not in " \t,)":
        return None
    return _Reference(
        name=name_match.group(), params=params, text=text[position:end], end=end, at_line_end=end == len(text)
    )
