"""May root run this file? The one rule for notify scripts, script checks and ``*.py`` drop-ins.

hafm runs as root, so a program or plugin that another user could have written, or swapped
through a directory they can write, is a way to root.  Callers add their own context
(``vrrp_instance.VI_1.notify_master: ...``, ``refused: ...``) to the reason returned here.
"""

from __future__ import annotations

import os
import pwd
import stat
from pathlib import Path


def _owner(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def ownership_problem(path: str, *, directory: bool = False) -> str | None:
    """Why ``path`` alone is not to be trusted by root; None when it is fine.

    It must be owned by root (or the user hafm runs as) and not writable by group/others;
    a sticky directory (``/tmp``) may be, since others cannot rename or delete root's files in it.
    """
    st = os.stat(path)
    what = f"directory {path}" if directory else path
    if st.st_uid not in (0, os.getuid()):
        return f"{what} is owned by {_owner(st.st_uid)} (uid {st.st_uid}), not root (chown root {path})"
    writable = st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    if writable and not (directory and st.st_mode & stat.S_ISVTX):
        return f"{what} is writable by group/others (chmod go-w {path})"
    return None


def directories_problem(path: str) -> str | None:
    """Why a directory above ``path`` lets another user swap it; None when none does."""
    for directory in Path(path).parents:
        problem = ownership_problem(str(directory), directory=True)
        if problem:
            return problem
    return None


def untrusted_reason(path: str) -> str | None:
    """Why root should not run the file at ``path`` (symlinks resolved), checking it and every
    directory above it; None when it is safe."""
    real = os.path.realpath(path)
    return ownership_problem(real) or directories_problem(real)
