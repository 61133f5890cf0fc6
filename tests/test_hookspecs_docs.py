"""docs/plugins.md documents every hook and carries the drop-in example verbatim (datasette's test_docs)."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from hafm import hookspecs

REPO = Path(__file__).resolve().parent.parent
DOCS = (REPO / "docs" / "plugins.md").read_text()
DROPIN = REPO / "tests" / "data" / "plugins" / "dropin_check.py"

HOOKS = sorted(
    name
    for name, value in vars(hookspecs).items()
    if name.startswith("hafm_") and inspect.isfunction(value) and hasattr(value, "hafm_spec")
)


def test_hookspecs_are_found() -> None:
    assert "hafm_register_check_types" in HOOKS
    assert "hafm_state_changed" in HOOKS
    assert len(HOOKS) >= 8


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_docs_section(hook: str) -> None:
    heading = re.search(rf"^### {hook}\n\n`{hook}\((?P<args>[^)]*)\)", DOCS, re.MULTILINE)
    assert heading, f"docs/plugins.md has no '### {hook}' section with its signature"
    documented = [arg.split(":")[0].strip() for arg in heading["args"].split(",") if arg.strip()]
    assert documented == list(inspect.signature(getattr(hookspecs, hook)).parameters)


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hookspec_has_a_docstring(hook: str) -> None:
    doc = inspect.getdoc(getattr(hookspecs, hook)) or ""
    assert len(doc) > 80, f"{hook} needs a docstring saying when it fires and what its arguments mean"


def test_docs_do_not_mention_hooks_that_do_not_exist() -> None:
    mentioned = set(re.findall(r"^### (hafm_\w+)$", DOCS, re.MULTILINE))
    assert mentioned == set(HOOKS)


def test_dropin_example_is_the_tested_file() -> None:
    block = re.search(r"<!-- dropin_check.py -->\n```python\n(?P<code>.*?)```", DOCS, re.DOTALL)
    assert block, "docs/plugins.md lost the drop-in example block"
    assert block["code"] == DROPIN.read_text()
    assert len(DROPIN.read_text().splitlines()) < 30
