"""What a plugin author imports: ``from hafm.hooks import hookimpl, CheckType, ProbeResult``.

Also :func:`check_keys`, the key validation every built-in check type uses,
so third-party check types report bad keys the same way.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

from hafm.hookspecs import CheckType, Probe, ProbeResult, Validator, hookimpl

__all__ = ["CheckType", "Probe", "ProbeResult", "Validator", "check_keys", "hookimpl"]


def check_keys(
    options: Mapping[str, Any], *, required: Iterable[str] = (), optional: Iterable[str] = ()
) -> list[tuple[str, str]]:
    """Report missing required keys and unknown keys (with a did-you-mean).

    Returns ``[(key, message), ...]`` in the format a ``CheckType.validate``
    returns, e.g. ``("methd", "unknown key (did you mean method?)")``.
    """
    required = list(required)
    known = required + list(optional)
    problems: list[tuple[str, str]] = []
    for key in required:
        if key not in options:
            problems.append((key, "required key is missing"))
    for key in options:
        if key in known:
            continue
        close = difflib.get_close_matches(key, known, n=1)
        hint = f" (did you mean {close[0]}?)" if close else f" (known keys: {', '.join(sorted(known))})"
        problems.append((key, f"unknown key{hint}"))
    return problems
