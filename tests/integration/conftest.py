"""Fixtures for integration tests that run real daemons inside a network-namespace lab.

Every test in this directory is marked ``netns`` and skipped, with the reason, when
the machine can't build a lab (not root, no ``ip netns``).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from hafm.lab.network import Lab, netns_unavailable_reason

_HERE = Path(__file__).parent
_lab_numbers = itertools.count()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # This hook sees the whole session's items; only mark the ones in this directory.
    reason = netns_unavailable_reason()
    for item in items:
        if not item.path.is_relative_to(_HERE):
            continue
        item.add_marker(pytest.mark.netns)
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason=reason))


def unique_lab_prefix() -> str:
    """A namespace prefix no other test (or concurrent pytest run) in this session uses."""
    return f"ht{os.getpid():x}n{next(_lab_numbers)}"


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    """An empty lab (bridge only) torn down after the test, even on failure or Ctrl-C.

    Logs and captures go to the test's ``tmp_path`` so they survive a failing test.
    """
    with Lab(prefix=unique_lab_prefix(), workdir=tmp_path / "lab") as built:
        yield built
