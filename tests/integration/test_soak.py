"""Soak: a flap every 10 s with checks and notify scripts running leaks nothing.

CI runs 2 minutes; ``HAFM_SOAK_SECONDS=1800`` runs the full half hour.  After a warm-up, the
daemons' resident memory grows by less than 1 MB, and their file descriptors, asyncio tasks and
threads (from ``hafm status --json``) stay put; no notify script is left a zombie.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from hafm.lab.network import Lab
from hafm.lab.nodes import HafmNode, check_toml, instance_toml, start_nodes, vip_holders_become

SOAK_SECONDS = float(os.environ.get("HAFM_SOAK_SECONDS", "120"))
FLAP_EVERY = 10.0
WARM_UP_FLAPS = 2


def notify_keys(log: Path) -> str:
    script = log.parent / "notify.sh"
    script.write_text('#!/bin/sh\necho "$@" >> "$1.log"\n')
    script.chmod(0o755)
    return "".join(f'notify_{state} = "{script} {log} {state}"\n' for state in ("master", "backup", "fault"))


def usage(node: HafmNode) -> dict[str, Any]:
    done = node.control("status", "--json")
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    return {**status["process"], "pid": status["pid"]}


def zombies_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] == "Z" and int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


@pytest.mark.slow
@pytest.mark.timeout(SOAK_SECONDS + 120)
def test_flapping_for_a_while_leaks_nothing(lab: Lab, tmp_path: Path) -> None:
    flag = tmp_path / "app_ok"
    flag.write_text("0")
    check = check_toml("app", type="file", path=str(flag), interval=0.2, weight=-20, init_state="up")
    a_config = instance_toml(priority=100, extra='track_check = ["app"]\n' + notify_keys(tmp_path / "a")) + check
    b_config = instance_toml(priority=90, extra=notify_keys(tmp_path / "b"))
    nodes = start_nodes(lab, tmp_path, {"a": ("198.51.100.1/24", a_config), "b": ("198.51.100.2/24", b_config)})
    a, b = nodes["a"], nodes["b"]
    assert isinstance(a, HafmNode) and isinstance(b, HafmNode)
    assert vip_holders_become(nodes, ["a"], timeout=8), a.log

    flaps = int(SOAK_SECONDS // FLAP_EVERY)
    baseline: dict[str, dict[str, Any]] = {}
    for flap in range(flaps):
        if flap == WARM_UP_FLAPS:
            baseline = {"a": usage(a), "b": usage(b)}
        down = flap % 2 == 0
        flag.write_text("garbage" if down else "0")  # not an integer: the file check is down
        started = time.monotonic()
        assert vip_holders_become(nodes, ["b" if down else "a"], timeout=FLAP_EVERY - 1), a.current_log()
        time.sleep(max(0.0, FLAP_EVERY - (time.monotonic() - started)))
    flag.write_text("0")
    assert vip_holders_become(nodes, ["a"], timeout=FLAP_EVERY), a.current_log()

    for name, node in (("a", a), ("b", b)):
        before, after = baseline[name], usage(node)
        grown = after["rss_bytes"] - before["rss_bytes"]
        assert grown < 1_000_000, f"{name}: RSS grew {grown} bytes over {flaps - WARM_UP_FLAPS} flaps"
        assert after["open_fds"] <= before["open_fds"], f"{name}: descriptors {before} -> {after}"
        assert after["threads"] <= before["threads"], f"{name}: threads {before} -> {after}"
        assert after["tasks"] <= before["tasks"] + 1, f"{name}: tasks {before} -> {after}"
        assert zombies_of(after["pid"]) == [], f"{name}: zombie notify scripts"
    transitions = (tmp_path / "a.log").read_text().count("master")
    assert transitions >= flaps // 2, "the notify scripts ran on every flap"
