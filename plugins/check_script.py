"""The ``script`` check: keepalived's ``vrrp_script``; exit status 0 means up.

The command never goes through a shell (``script = "/usr/local/bin/chk -q"``
is split with :func:`hafm.processes.split_command`, or give an argv list).  It
runs in its own session with a minimal environment; when the check times out
hafm kills the whole process group, so a script's stuck children cannot pile up.

Root runs it every interval, so the trust rule (:mod:`hafm.trust`, through
:func:`hafm.processes.command_problem`) is applied when the configuration is
loaded (to the directories of a program that does not exist yet) and again
right before every run; a refused run is a failed probe and one log line.
With ``user``, the script runs with that user's uid, primary gid and
supplementary groups (like ``initgroups``), never with root's groups.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pwd
from collections.abc import Mapping, Sequence
from typing import Any

from hafm.config.model import CheckConfig
from hafm.hooks import CheckType, Probe, ProbeResult, check_keys, hookimpl
from hafm.processes import (
    ENV_PATH,
    Refusals,
    command_problem,
    kill_process_group,
    relative_program_problem,
    split_command,
)

log = logging.getLogger("hafm.check.script")

ENV = {"PATH": ENV_PATH}
# Keep at most this much output (its end) for the detail line; the rest is read and discarded.
MAX_OUTPUT = 4096
# Read the output in chunks of this size: memory stays bounded whatever the script prints.
READ_CHUNK = 64 * 1024

_refusals = Refusals(log)


def validate(options: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``script`` (string or list of strings) is required; ``user`` optional (an existing user).

    The program, its file arguments and an interpreter's script must pass the trust rule; one
    that does not exist yet is accepted when the directories it would be in pass it."""
    problems = check_keys(options, required=("script",), optional=("user",))
    script = options.get("script")
    if script is not None:
        if not isinstance(script, str | list):
            problems.append(("script", "must be a string or a list of strings"))
        else:
            try:
                argv = split_command(script)
                problem = relative_program_problem(argv[0]) if argv else "is empty"
                problem = problem or _untrusted(argv)
            except ValueError as exc:
                problem = str(exc)
            if problem:
                problems.append(("script", problem))
    user = options.get("user")
    if user is not None:
        if not isinstance(user, str):
            problems.append(("user", "must be a user name"))
        else:
            try:
                pwd.getpwnam(user)
            except KeyError:
                problems.append(("user", f"no such user {user!r}"))
    return problems


def _untrusted(argv: Sequence[str]) -> str | None:
    """Root runs the script every interval: refuse one another user could have written or swapped."""
    try:
        problem = command_problem(argv)
    except OSError as exc:
        problem = f"cannot check {argv[0]}: {exc.strerror or exc}"
    return f"refused: {problem}" if problem else None


async def _output_tail(stream: asyncio.StreamReader) -> bytes:
    """Read ``stream`` to its end, keeping only its last :data:`MAX_OUTPUT` bytes."""
    tail = b""
    while chunk := await stream.read(READ_CHUNK):
        tail = (tail + chunk)[-MAX_OUTPUT:]
    return tail


def create(check: CheckConfig) -> Probe:
    argv = split_command(check.options["script"])
    key = f"check.{check.name}"
    user = pwd.getpwnam(check.options["user"]) if check.options.get("user") else None
    # The user's own groups, never root's (subprocess applies setgroups, setgid, then setuid).
    credentials: dict[str, Any] = (
        {
            "user": user.pw_uid,
            "group": user.pw_gid,
            "extra_groups": os.getgrouplist(user.pw_name, user.pw_gid),
        }
        if user
        else {}
    )

    async def probe() -> ProbeResult:
        problem = _untrusted(argv)
        if problem:
            _refusals.refused(key, problem.removeprefix("refused: "))
            return ProbeResult(ok=False, detail=problem)
        _refusals.allowed(key)
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env=ENV,
                start_new_session=True,  # its own process group, killed as a whole
                **credentials,
            )
        except OSError as exc:
            return ProbeResult(ok=False, detail=f"cannot run {argv[0]}: {exc.strerror or exc}")
        assert proc.stdout is not None
        try:
            output = await _output_tail(proc.stdout)
            await proc.wait()
        except BaseException:
            # Timeout (cancellation) or anything else: no survivor may stay behind.
            kill_process_group(proc.pid)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise
        # The script exited, but a child it left in the background may live on.
        kill_process_group(proc.pid)
        text = output.decode("utf-8", "replace").strip()
        last_line = text.splitlines()[-1] if text else ""
        code = proc.returncode
        status = f"exit {code}" if code is not None and code >= 0 else f"killed by signal {-(code or 0)}"
        return ProbeResult(ok=code == 0, detail=f"{status}: {last_line}" if last_line else status)

    return probe


@hookimpl
def hafm_register_check_types() -> list[CheckType]:
    return [CheckType(name="script", validate=validate, create=create)]
