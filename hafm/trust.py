"""May root run (or load) this file?  The one rule for notify scripts, script checks, drop-ins, config and TLS files.

hafm runs as root, so a program or plugin that another user could have written, or swapped
through a directory or a symlink they control, is a way to root.  The rule, checked at every hop:

* the path is walked one component at a time, from ``/``, **without resolving it first**;
* every directory met, every symlink met and the final file must be owned by root (or the user
  hafm runs as);
* none of them may be writable by group or others, except a sticky directory (``/tmp``): others
  may create files there but cannot rename or delete root's;
* a symlink is checked where it stands (its owner; its directory was checked on the way), then
  followed, at most :data:`MAX_SYMLINKS` times, as the kernel does; its target is walked the same way.

Callers add their own context (``vrrp_instance.VI_1.notify_master: ...``, ``refused: ...``) to the
one-line reason returned here.
"""

from __future__ import annotations

import os
import pwd
import stat

__all__ = ["MAX_SYMLINKS", "directories_reason", "secret_reason", "tls_file_reason", "untrusted_reason"]

# Like the kernel's limit on symlinks followed in one lookup (ELOOP).
MAX_SYMLINKS = 40


def _owner(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def foreign_owner(st: os.stat_result) -> bool:
    """Owned by someone other than root and the user hafm runs as."""
    return st.st_uid not in (0, os.getuid())


def writable_by_others(st: os.stat_result) -> bool:
    """Group or others may write it (for a directory: create files in it, sticky bit or not)."""
    return bool(st.st_mode & (stat.S_IWGRP | stat.S_IWOTH))


def _entry_problem(path: str, st: os.stat_result) -> str | None:
    """Why the one entry ``path`` (already ``lstat``-ed) breaks the rule; None when it does not."""
    mode = st.st_mode
    kind = "directory " if stat.S_ISDIR(mode) else "symlink " if stat.S_ISLNK(mode) else ""
    if foreign_owner(st):
        return f"{kind}{path} is owned by {_owner(st.st_uid)} (uid {st.st_uid}), not root (chown root {path})"
    if stat.S_ISLNK(mode):
        return None  # a symlink's own mode bits are meaningless (always 0777)
    if writable_by_others(st) and not (stat.S_ISDIR(mode) and mode & stat.S_ISVTX):
        return f"{kind}{path} is writable by group/others (chmod go-w {path})"
    return None


def _walk(path: str, *, missing_ok: bool) -> str | None:
    if "\0" in path:
        return f"{path!r} contains a NUL byte"
    absolute = path if os.path.isabs(path) else os.path.join(os.getcwd(), path)
    # Components still to visit, the next one last (a symlink's target is pushed on top).
    pending = [part for part in reversed(absolute.split("/")) if part not in ("", ".")]
    current = "/"
    try:
        problem = _entry_problem(current, os.lstat(current))
    except OSError as exc:
        return f"cannot check /: {exc.strerror or exc}"
    hops = 0
    via = ""
    while problem is None and pending:
        name = pending.pop()
        if name == "..":
            current = os.path.dirname(current)  # ``current`` is physical: its parent was checked already
            continue
        entry = os.path.join(current, name)
        try:
            st = os.lstat(entry)
        except FileNotFoundError:
            return None if missing_ok else f"{entry} does not exist{via}"
        except OSError as exc:
            return f"cannot check {entry}: {exc.strerror or exc}{via}"
        problem = _entry_problem(entry, st)
        if problem is not None:
            return problem + via
        if stat.S_ISLNK(st.st_mode):
            hops += 1
            if hops > MAX_SYMLINKS:
                return f"{path}: more than {MAX_SYMLINKS} symlinks to follow"
            try:
                target = os.readlink(entry)
            except OSError as exc:
                return f"cannot read symlink {entry}: {exc.strerror or exc}"
            if target.startswith("/"):
                current = "/"
            pending.extend(part for part in reversed(target.split("/")) if part not in ("", "."))
            via = f" (reached through symlink {entry})"
        elif pending and not stat.S_ISDIR(st.st_mode):
            return f"{entry} is not a directory{via}"
        else:
            current = entry
    return problem


def untrusted_reason(path: str) -> str | None:
    """Why root should not run or load the file at ``path``; None when it is safe.

    Every hop is checked (see the module docstring): the directories on the way, every symlink
    and the directory holding it, the final file.  A missing file is a reason too
    (``/etc/hafm/x.sh does not exist``).  Never raises for a bad path.
    """
    return _walk(path, missing_ok=False)


def directories_reason(path: str) -> str | None:
    """Like :func:`untrusted_reason`, but a missing file (or directory on the way) is fine.

    For a program that does not exist yet: the part of ``path`` that exists must pass the rule,
    so that only root can create what will be run there; the file itself must be checked again
    when it appears (before each run).
    """
    return _walk(path, missing_ok=True)


def secret_reason(path: str) -> str | None:
    """Like :func:`untrusted_reason`, and the file may not be readable by group or others either: a
    private key another user can read lets them act as this node (ssh refuses such a key too)."""
    problem = untrusted_reason(path)
    if problem is not None:
        return problem
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        return f"cannot check {path}: {exc.strerror or exc}"
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        return f"{path} is readable by group/others (chmod go-rwx {path})"
    return None


def tls_file_reason(role: str, path: str) -> str | None:
    """The rule for a TLS file: a ``"key"`` is a secret (:func:`secret_reason`), a ``"ca"`` or ``"cert"``
    only has to be one another user cannot replace (:func:`untrusted_reason`)."""
    return secret_reason(path) if role == "key" else untrusted_reason(path)


def shared_directory_reason(directory: str) -> str | None:
    """Why ``directory`` may not hold files hafm loads or writes: others can create files in it.

    Stricter than :func:`untrusted_reason`, which lets a sticky directory like /tmp be on the way
    to a file: in a drop-in or state directory, anyone who may create a file could plant one
    (a drop-in, a ``__pycache__``, a state file, a socket), sticky bit or not.
    """
    try:
        st = os.stat(directory)
    except OSError as exc:
        return f"{directory}: {exc.strerror or exc}"
    if foreign_owner(st):
        return f"{directory} is owned by {_owner(st.st_uid)}, not root"
    if writable_by_others(st):
        return f"{directory} is writable by group/others (chmod go-w {directory})"
    return None
