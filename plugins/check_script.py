"""The ``script`` check: keepalived's ``vrrp_script``; exit status 0 means up.

The command never goes through a shell (``script = "/usr/local/bin/chk -q"``
is split with :func:`shlex.split`, or give an argv list).  It runs in its own
session with a minimal environment; when the check times out hafm kills the
whole process group, so a script's stuck children cannot pile up.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shlex
import shutil
from collections.abc import Mapping
from typing import Any

from hafm.config.model import CheckConfig
from hafm.hooks import CheckType, Probe, ProbeResult, check_keys, hookimpl
from hafm.processes import ENV_PATH, kill_process_group
from hafm.trust import untrusted_reason

ENV = {"PATH": ENV_PATH}
# Keep at most this much output for the detail line.
MAX_OUTPUT = 4096


def argv_of(script: str | list[str]) -> list[str]:
    """The argv for a ``script`` value (string → shlex.split, list used as is)."""
    return shlex.split(script) if isinstance(script, str) else list(script)


def validate(options: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``script`` (string or list of strings) is required; ``user`` optional (an existing user).

    An existing program must be one root may trust (:mod:`hafm.trust`)."""
    problems = check_keys(options, required=("script",), optional=("user",))
    script = options.get("script")
    if script is not None:
        if isinstance(script, str):
            try:
                argv = shlex.split(script)
            except ValueError as exc:
                problems.append(("script", f"cannot be split into words: {exc}"))
                argv = ["?"]
        elif isinstance(script, list) and all(isinstance(word, str) for word in script):
            argv = script
        else:
            problems.append(("script", "must be a string or a list of strings"))
            argv = ["?"]
        if not argv:
            problems.append(("script", "is empty"))
        else:
            problems.extend(("script", f"refused: {problem}") for problem in _untrusted(argv[0]))
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


def _untrusted(program: str) -> list[str]:
    """Root runs the script every interval: refuse one another user could have written (the notify
    script rule).  A program that does not exist yet is left to fail its probes, like keepalived."""
    path = program if os.path.isabs(program) else shutil.which(program, path=ENV_PATH)
    if path is None or not os.path.exists(path):
        return []
    problem = untrusted_reason(path)
    return [problem] if problem else []


def create(check: CheckConfig) -> Probe:
    argv = argv_of(check.options["script"])
    user: str | None = check.options.get("user")

    async def probe() -> ProbeResult:
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env=ENV,
                start_new_session=True,  # its own process group, killed as a whole
                user=user,
            )
        except OSError as exc:
            return ProbeResult(ok=False, detail=f"cannot run {argv[0]}: {exc.strerror or exc}")
        try:
            output, _ = await proc.communicate()
        except BaseException:
            # Timeout (cancellation) or anything else: no survivor may stay behind.
            kill_process_group(proc.pid)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise
        # The script exited, but a child it left in the background may live on.
        kill_process_group(proc.pid)
        text = output[:MAX_OUTPUT].decode("utf-8", "replace").strip()
        last_line = text.splitlines()[-1] if text else ""
        code = proc.returncode
        status = f"exit {code}" if code is not None and code >= 0 else f"killed by signal {-(code or 0)}"
        return ProbeResult(ok=code == 0, detail=f"{status}: {last_line}" if last_line else status)

    return probe


@hookimpl
def hafm_register_check_types() -> list[CheckType]:
    return [CheckType(name="script", validate=validate, create=create)]
