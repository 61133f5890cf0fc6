"""hafm/cli.py: the command line the README shows is the one the parser accepts."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from hafm.cli import build_parser

README = Path(__file__).resolve().parent.parent / "README.md"


def commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (subcommands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(subcommands.choices)


def test_the_readme_shows_every_command() -> None:
    readme = README.read_text()
    # "run" is the default: the README shows it as `hafm --config ...`.
    missing = [name for name in commands() if name != "run" and not re.search(rf"\bhafm {name}\b", readme)]
    assert missing == [], f"README.md never shows: {', '.join(missing)}"


def test_the_readme_shows_no_command_that_does_not_exist() -> None:
    shown = set(re.findall(r"^hafm ([a-z][a-z-]+)", README.read_text(), flags=re.MULTILINE))
    assert shown <= set(commands()), shown - set(commands())


def test_the_options_the_readme_shows_exist() -> None:
    known = commands()
    for line in README.read_text().splitlines():
        found = re.match(r"^hafm ([a-z][a-z-]+)(.*?)(#|$)", line)
        if found is None:
            continue
        name, rest = found.group(1), found.group(2)
        options = {o for a in known[name]._actions for o in a.option_strings}
        shown = set(re.findall(r"(--[a-z][a-z-]*)", rest))
        assert shown <= options, f"README: hafm {name} has no {', '.join(sorted(shown - options))}"
