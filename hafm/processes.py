"""What every child process hafm runs (notify scripts, script checks) has in common."""

from __future__ import annotations

import contextlib
import os
import signal

# hafm runs as root: scripts get a fixed PATH, never the caller's environment.
ENV_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


def kill_process_group(pid: int) -> None:
    """SIGKILL the whole process group a child started with ``start_new_session=True`` leads."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
