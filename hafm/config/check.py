"""``hafm check-config``: validate a configuration and show the effective result with provenance."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TextIO

from hafm.config.loader import CheckValidator, format_effective, load_config
from hafm.config.model import Config
from hafm.errors import ConfigError


def run(
    path: Path,
    *,
    check_validators: Mapping[str, CheckValidator] | None = None,
    extra_checks: Callable[[Config], list[str]] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Load ``path``: print the effective configuration to ``out`` and return 0,
    or print every error to ``err`` and return 1.

    ``extra_checks`` returns more error lines for a loaded config (e.g. notify script permissions).
    ``check_validators`` is what the plugins declare (see :func:`hafm.config.loader.load_config`); without it,
    check types are not verified.  ``out``/``err`` default to the current ``sys.stdout``/``sys.stderr``.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        config = load_config(path, check_validators=check_validators)
        if extra_checks is not None and (problems := extra_checks(config)):
            raise ConfigError(problems)
    except ConfigError as exc:
        for message in exc.messages:
            print(message, file=err)
        count = len(exc.messages)
        print(f"{path}: configuration has {count} error{'s' if count != 1 else ''}", file=err)
        return 1
    out.write(format_effective(config))
    print(f"{config.path}: configuration OK", file=err)
    return 0
