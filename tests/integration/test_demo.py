"""`hafm demo`, the README's first command, plays the failover and cleans up after itself."""

import re
import subprocess
import sys

import pytest


@pytest.mark.parametrize("event", ["term", "linkdown"])
def test_demo_runs_the_classic_failover(event: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hafm", "demo", "--event", event], capture_output=True, text=True, timeout=90
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "page from server 198.51.100.1" in out
    assert "page from server 198.51.100.2" in out
    found = re.search(r"client-seen outage: ([0-9.]+) s\s+\(RFC bound: .* = ([0-9.]+) s\)", out)
    assert found, out
    outage, bound = float(found.group(1)), float(found.group(2))
    assert outage <= bound + 0.2, out
    assert "A preempted B" in out
    # B's `hafm status` after the takeover says it is Master, and why.
    assert "$ hafm status" in out and "VI_1  MASTER" in out, out
    why = "master 198.51.100.1 resigned" if event == "term" else "master down timer expired"
    assert f"reason: {why}" in out, out
    assert "lab torn down." in out
    prefix = re.search(r"namespaces (\S+)-\*", out)
    assert prefix, out
    left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    assert f"{prefix.group(1)}-" not in left, "the demo left namespaces behind"
