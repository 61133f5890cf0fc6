"""What every child process hafm runs (notify scripts, script checks) has in common.

* :func:`split_command`: the one way a configured command becomes an argv.
* :func:`command_problem`: the trust rule (:mod:`hafm.trust`) applied to everything a command
  makes root execute or read as code: the program, every argument naming an existing regular
  file, and the script of a known interpreter (``sh x.sh``, ``python3 x.py``, ``env -S``...).
  Called when the configuration is loaded and again right before each run.
* :class:`Refusals`: one log line per refusal, not one per run.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import shlex
import shutil
import signal
import stat
import time
from collections.abc import Callable, Sequence

from hafm.trust import directories_reason, untrusted_reason

# hafm runs as root: scripts get a fixed PATH, never the caller's environment.
ENV_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
# A refusal that lasts is logged again after this many seconds.
REFUSAL_REPEAT = 600.0

# Interpreters whose first non-option argument is a program file, by family.  Per family: options
# taking a value (skipped with it), and the option letters whose value is inline code, not a file.
_SHELLS = re.compile(r"(ba|da|z|k|mk|a)?sh")
_PYTHON = re.compile(r"python[0-9.]*")
_PERL = re.compile(r"perl[0-9.]*")
_RUBY = re.compile(r"ruby[0-9.]*")
_VALUE_OPTIONS = {
    "sh": {"-o", "+o", "-O", "+O", "--rcfile", "--init-file"},
    "python": {"-W", "-X", "--check-hash-based-pycs"},
    "perl": {"-I", "-M", "-m", "-x", "-C"},
    "ruby": {"-I", "-r", "-C", "-E", "-F", "-K"},
}
_INLINE_CODE = {"sh": "c", "python": "cm", "perl": "eE", "ruby": "e"}
_ENV_VALUE_OPTIONS = {"-u", "--unset", "-C", "--chdir"}
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
# Shell operators that end a simple command in an ``sh -c`` payload.
_OPERATORS = {";", "&", "&&", "|", "||", "(", ")", ";;", "\n"}
# Nested ``env``/``sh -c`` levels followed before giving up (and refusing).
_MAX_DEPTH = 8
# Variables that make a program load or find other code: a command may not set them (env VAR=...).
_CODE_VARIABLES = re.compile(
    r"(PATH|BASH_ENV|ENV|SHELLOPTS|BASHOPTS|IFS|CDPATH|GCONV_PATH|LD_\w+|PYTHON\w*|PERL5\w*|PERLLIB|RUBY\w*)="
)
# Shell words that change where relative names resolve.
_CHANGES_DIRECTORY = {"cd", "pushd", "popd"}


def kill_process_group(pid: int) -> None:
    """SIGKILL the whole process group a child started with ``start_new_session=True`` leads."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def split_command(command: str | Sequence[str]) -> tuple[str, ...]:
    """The argv of a configured command: a string is split with :func:`shlex.split`, a list is the argv.

    Raises ValueError with a one-line reason (unbalanced quotes, empty, a NUL byte, not strings).
    """
    if isinstance(command, str):
        return _split_string(command)
    if not all(isinstance(word, str) for word in command):
        raise ValueError("must be a string or a list of strings")
    return _checked(tuple(command))


@functools.lru_cache(maxsize=256)
def _split_string(command: str) -> tuple[str, ...]:
    try:
        words = shlex.split(command)
    except ValueError as exc:
        raise ValueError(f"cannot split {command!r} into words: {exc}") from None
    return _checked(tuple(words))


def _checked(argv: tuple[str, ...]) -> tuple[str, ...]:
    if not argv:
        raise ValueError("is empty")
    if any("\0" in word for word in argv):
        raise ValueError("contains a NUL byte")
    return argv


def find_program(word: str) -> str | None:
    """The path ``word`` runs: itself when it holds a ``/``, else looked up in :data:`ENV_PATH`."""
    if "/" in word:
        return word
    return shutil.which(word, path=ENV_PATH)


def command_problem(argv: Sequence[str], *, missing_ok: bool = True) -> str | None:
    """Why root must not run ``argv``; None when every file it runs or reads as code is trusted.

    Checked: the program (a bare name looked up in :data:`ENV_PATH`; one not found is left to
    fail when run), every argument with a ``/`` that names an existing regular file, the script
    of a known interpreter (sh, bash, dash, zsh, ksh, python*, perl, ruby), the command ``env``
    runs (``env -S`` included), and for ``sh -c`` every simple command of the payload the same
    way.  With ``missing_ok`` a file that does not exist (yet) only needs trusted directories.
    """
    return _problem(tuple(argv), missing_ok, depth=0)


def _problem(argv: tuple[str, ...], missing_ok: bool, depth: int) -> str | None:
    if depth > _MAX_DEPTH:
        return f"{shlex.join(argv)}: commands nested more than {_MAX_DEPTH} deep"
    if not argv:
        return None
    if argv[0] in _CHANGES_DIRECTORY:
        return f"{shlex.join(argv)}: a command that changes directory runs files by relative names; use absolute paths"
    program = find_program(argv[0])
    if program is not None:
        problem = _file_problem(program, missing_ok)
        if problem is not None:
            return problem
    # A builtin (`.`, `exec`, `source`) or an unknown program: its words are still what it may run.
    for word in argv[1:] if program is not None else argv:
        problem = _word_problem(word, missing_ok)
        if problem is not None:
            return problem
    if program is None:
        return None
    name = os.path.basename(program)
    rest = argv[1:]
    if name == "env":
        return _env_problem(rest, missing_ok, depth)
    family = _family(name)
    if family is None:
        return None
    script, inline = _interpreted(family, rest)
    if script is not None:
        return _file_problem(script, missing_ok)
    if inline is not None and family == "sh":
        return _shell_payload_problem(inline, missing_ok, depth + 1)
    return None


def _word_problem(word: str, missing_ok: bool) -> str | None:
    """An argument that names a file, alone or as an option's value (``--init-file=F``): it is checked."""
    for candidate in (word, word.split("=", 1)[1] if "=" in word else ""):
        if candidate.startswith(("./", "../")):
            return f"{candidate}: a relative path depends on the working directory; give the absolute path"
        if candidate.startswith("/") and os.path.isfile(candidate):
            problem = _file_problem(candidate, missing_ok)
            if problem is not None:
                return problem
    return None


def _env_problem(words: Sequence[str], missing_ok: bool, depth: int) -> str | None:
    """``env`` may not move the command (``-C``) or set a variable that makes it load other code."""
    for word in words:
        if word in ("-C", "--chdir") or word.startswith(("--chdir=", "-C")) and word != "-C" and len(word) > 2:
            return f"env {word}: a command may not change directory; use absolute paths"
        if _CODE_VARIABLES.match(word):
            return f"env {word.split('=', 1)[0]}=…: a command may not set a variable that loads other code"
        if not (word.startswith("-") or _ASSIGNMENT.match(word)):
            break
    try:
        command = _env_command(words)
    except ValueError as exc:  # env -S with unbalanced quotes
        return f"cannot split the env -S string into words: {exc}"
    return _problem(command, missing_ok, depth + 1)


def _file_problem(path: str, missing_ok: bool) -> str | None:
    problem = directories_reason(path) if missing_ok else untrusted_reason(path)
    if problem is None or problem.startswith(f"{path} ") or problem.startswith(f"{path!r} "):
        return problem
    return f"{path}: {problem}"  # say which program the directory or symlink concerns


def _family(name: str) -> str | None:
    for family, pattern in (("sh", _SHELLS), ("python", _PYTHON), ("perl", _PERL), ("ruby", _RUBY)):
        if pattern.fullmatch(name):
            return family
    return None


def _interpreted(family: str, words: Sequence[str]) -> tuple[str | None, str | None]:
    """(script file, inline code) an interpreter is asked to run; at most one is not None."""
    inline_letters = _INLINE_CODE[family]
    inline: str | None = None  # "" once an inline-code option is seen without its code yet
    index = 0
    while index < len(words):
        word = words[index]
        index += 1
        if word == "--":
            break
        if word in _VALUE_OPTIONS[family]:
            index += 1
            continue
        if len(word) < 2 or word[0] not in ("-", "+") or (word[0] == "+" and family != "sh"):
            index -= 1
            break
        if word.startswith("--"):
            continue
        for position, letter in enumerate(word[1:], start=2):
            if letter in inline_letters:
                inline = word[position:]  # code may follow the letter: python -c'print(1)'
                break
            if f"-{letter}" in _VALUE_OPTIONS[family]:
                index += position == len(word)  # the value is the next word unless attached
                break
        if inline:
            return None, inline
    first = words[index] if index < len(words) else None
    if inline is not None or first is None:
        return None, first if inline is not None else None
    if family == "sh" and "/" not in first and not os.path.exists(first):
        return find_program(first) or first, None  # a shell looks a script name up in PATH
    return first, None


def _env_command(words: Sequence[str]) -> tuple[str, ...]:
    """The argv ``env WORDS`` runs."""
    words = list(words)
    while words:
        word = words[0]
        if word in _ENV_VALUE_OPTIONS:
            del words[:2]
        elif word in ("-S", "--split-string") and len(words) > 1:
            return _env_command([*shlex.split(words[1]), *words[2:]])
        elif word.startswith("--split-string=") or word.startswith("-S") and len(word) > 2:
            value = word.split("=", 1)[1] if word.startswith("--") else word[2:]
            return _env_command([*shlex.split(value), *words[1:]])
        elif word == "--":
            return tuple(words[1:])
        elif word.startswith("-") or _ASSIGNMENT.match(word):
            del words[:1]
        else:
            break
    return tuple(words)


def _shell_payload_problem(payload: str, missing_ok: bool, depth: int) -> str | None:
    """Each simple command of an ``sh -c`` payload, checked like a command (best effort: words are
    taken as written, so ``$PROG`` is not followed; a redirection's file is data, not a program)."""
    lexer = shlex.shlex(payload.replace("\n", ";"), posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        tokens = list(lexer)
    except ValueError as exc:
        return f"cannot split the shell command {payload!r} into words: {exc}"
    command: list[str] = []
    redirected = False
    for token in [*tokens, ";"]:
        if token in _OPERATORS:
            problem = _problem(tuple(command), missing_ok, depth)
            if problem is not None:
                return problem
            command = []
        elif set(token) <= set("<>&|"):
            redirected = True
        elif redirected:
            # A redirection's file may be data or code (`sh < FILE`): either way it must be trusted.
            redirected = False
            problem = _word_problem(token, missing_ok)
            if problem is not None:
                return problem
        elif _ASSIGNMENT.match(token) and not command:
            if _CODE_VARIABLES.match(token):
                return f"{token.split('=', 1)[0]}=…: a command may not set a variable that loads other code"
        else:
            command.append(token)
    return None


class Refusals:
    """Log a refusal to run something once, and again only every ``repeat`` seconds while it lasts.

    ``now`` is the clock (a test passes a fake one).
    """

    def __init__(
        self, log: logging.Logger, *, repeat: float = REFUSAL_REPEAT, now: Callable[[], float] = time.monotonic
    ) -> None:
        self.log = log
        self.repeat = repeat
        self.now = now
        self._logged: dict[str, tuple[str, float]] = {}

    def refused(self, key: str, problem: str) -> None:
        """``key`` (``VI_1.notify_master``, ``check.chk``) was refused for ``problem``."""
        now = self.now()
        last = self._logged.get(key)
        if last is None or last[0] != problem or now - last[1] >= self.repeat:
            self._logged[key] = (problem, now)
            self.log.error("%s: refused to run: %s", key, problem)

    def allowed(self, key: str) -> None:
        """``key`` passed the rule again: a later refusal is logged at once."""
        if self._logged.pop(key, None) is not None:
            self.log.warning("%s: trusted again, running it", key)


def is_regular_executable(path: str) -> str | None:
    """Why ``path`` (already trusted) is not a program hafm can run; None when it is."""
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        return f"{path} is not a regular file"
    if not st.st_mode & 0o111:
        return f"{path} is not executable (chmod 755 {path})"
    return None


def relative_program_problem(program: str) -> str | None:
    """A program is an absolute path or a bare name looked up in hafm's fixed PATH; ``dir/prog`` would be
    looked up in whatever the daemon's working directory happens to be.  (For notify commands and script checks.)"""
    if "/" in program and not program.startswith("/"):
        return (
            f"{program} is a relative path; give the absolute path (it would depend on the daemon's working directory)"
        )
    return None
