"""Notify scripts in real daemons: one run per transition, in order, never overlapping, never delaying VRRP."""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path

from hafm.lab.network import Lab, wait_until
from hafm.lab.nodes import (
    DaemonNode,
    HafmNode,
    instance_toml,
    start_nodes,
    vip_holders,
    vip_holders_become,
    wait_for_page,
)

SKEW_B = (256 - 90) / 256
MARGIN = 0.2

# rec.sh LOG PAUSE INSTANCE NAME STATE PRIORITY: the generic `notify` convention, timed.
RECORDER = """#!/bin/sh
log=$1; pause=$2
echo "start $5 $HAFM_STATE $(date +%s.%N)" >> "$log"
sleep "$pause"
echo "end $5 $HAFM_STATE $(date +%s.%N)" >> "$log"
"""

# Records its pid, then hangs like a service restart that never returns.
HANG = """#!/bin/sh
echo $$ > "$1"
exec sleep 60
"""


def write_script(directory: Path, name: str, body: str) -> Path:
    path = directory / name
    path.write_text(body)
    path.chmod(0o755)  # owned by root (we are root), not writable by group/others
    return path


def all_transitions(node: DaemonNode, instance: str = "VI_1") -> list[str]:
    """Target states across every start of the daemon, except INIT (which notifies nobody)."""
    found = re.findall(node.transition_pattern, node.log)
    return [state for name, state in found if name == instance and state != "INIT"]


def notified(log: Path) -> list[str]:
    """States in the order their scripts ran; asserts argv and env agree and that no two runs overlap."""
    states: list[str] = []
    running: str | None = None
    last_end = 0.0
    for line in log.read_text().splitlines() if log.exists() else []:
        kind, argv_state, env_state, at = line.split(" ")
        assert argv_state == env_state, line
        if kind == "start":
            assert running is None, f"{argv_state} started while {running} was still running"
            assert float(at) >= last_end
            running = argv_state
            states.append(argv_state)
        else:
            assert running == argv_state, line
            running, last_end = None, float(at)
    return states


def settled(node: DaemonNode, log: Path) -> bool:
    try:
        return notified(log) == all_transitions(node) and log.read_text().count("end ") == len(notified(log))
    except AssertionError:
        return False


def _report(a: DaemonNode, b: DaemonNode, logs: dict[str, Path]) -> str:
    return "\n".join(
        f"{name.upper()} ran {notified(logs[name])}\n   for {all_transitions(node)}"
        for name, node in (("a", a), ("b", b))
    )


def test_notify_runs_once_per_transition_in_order_across_restart(lab: Lab, tmp_path: Path) -> None:
    rec = write_script(tmp_path, "rec.sh", RECORDER)
    logs = {name: tmp_path / f"{name}.notify" for name in ("a", "b")}
    nodes = start_nodes(
        lab,
        tmp_path,
        {
            "a": (
                "198.51.100.1/24",
                instance_toml(priority=100, state="MASTER", extra=f'notify = "{rec} {logs["a"]} 0"'),
            ),
            "b": ("198.51.100.2/24", instance_toml(priority=90, extra=f'notify = "{rec} {logs["b"]} 0"')),
        },
    )
    a, b = nodes["a"], nodes["b"]

    def report() -> str:
        return _report(a, b, logs)

    def both_settled() -> None:
        # Between steps: a script still running at SIGTERM would be killed (see docs/notify.md).
        assert wait_until(lambda: settled(a, logs["a"]) and settled(b, logs["b"]), timeout=5), report()

    assert a.wait_state("MASTER") and b.wait_state("BACKUP"), a.log + b.log
    both_settled()
    assert a.stop() == 0
    assert b.wait_state("MASTER"), b.log
    both_settled()
    a.start()
    assert a.wait_state("MASTER"), a.log
    assert b.wait_state("BACKUP"), b.log
    both_settled()
    assert notified(logs["a"]) == ["BACKUP", "MASTER", "STOP", "BACKUP", "MASTER"]
    assert notified(logs["b"]) == ["BACKUP", "MASTER", "BACKUP"]


def test_rapid_flaps_notify_in_transition_order_without_overlap(lab: Lab, tmp_path: Path) -> None:
    rec = write_script(tmp_path, "rec.sh", RECORDER)
    logs = {name: tmp_path / f"{name}.notify" for name in ("a", "b")}

    def config(name: str, priority: int, state: str) -> str:
        return instance_toml(
            priority=priority, state=state, version=3, advert_int=0.1, extra=f'notify = "{rec} {logs[name]} 0.03"'
        )

    nodes = start_nodes(
        lab,
        tmp_path,
        {"a": ("198.51.100.1/24", config("a", 100, "MASTER")), "b": ("198.51.100.2/24", config("b", 90, "BACKUP"))},
    )
    a, b = nodes["a"], nodes["b"]
    assert a.wait_state("MASTER") and b.wait_state("BACKUP"), a.log + b.log

    for flap in range(20):
        lab.link_down(a.host)
        time.sleep(0.15 if flap % 2 else 0.5)  # some flaps shorter than B's Master_Down_Interval
        lab.link_up(a.host)
        time.sleep(0.1 if flap % 3 else 0.4)

    assert a.wait_state("MASTER") and b.wait_state("BACKUP"), a.log + b.log
    assert wait_until(lambda: settled(a, logs["a"]) and settled(b, logs["b"]), timeout=10), _report(a, b, logs)
    assert all_transitions(a).count("FAULT") == 20, "every flap was a transition on A"
    assert len(all_transitions(b)) >= 3
    for node in (a, b):
        assert "coalesced" not in node.log


def test_hanging_notify_master_delays_neither_takeover_nor_shutdown(lab: Lab, tmp_path: Path) -> None:
    hang = write_script(tmp_path, "hang.sh", HANG)
    pidfile = tmp_path / "hang.pid"
    nodes = start_nodes(
        lab,
        tmp_path,
        {
            "a": ("198.51.100.1/24", instance_toml(priority=100, state="MASTER")),
            "b": ("198.51.100.2/24", instance_toml(priority=90, extra=f'notify_master = "{hang} {pidfile}"')),
        },
    )
    a, b = nodes["a"], nodes["b"]
    client = lab.add_host("client", "198.51.100.50/24")
    assert a.wait_state("MASTER") and b.wait_state("BACKUP"), a.log + b.log
    assert wait_for_page(client, "from server 198.51.100.1", timeout=3) is not None

    # First takeover: B's notify_master starts and hangs.
    assert a.stop() == 0
    outage = wait_for_page(client, "from server 198.51.100.2", timeout=5, request_timeout=0.05)
    assert outage is not None and outage <= SKEW_B + MARGIN, f"first takeover: {outage}"
    assert wait_until(lambda: pidfile.exists() and pidfile.read_text().strip(), timeout=3), b.log
    script_pid = int(pidfile.read_text())
    assert Path(f"/proc/{script_pid}").exists()

    # A comes back and B goes back to BACKUP while the script still hangs ...
    a.start()
    assert a.wait_state("MASTER") and b.wait_state("BACKUP"), a.log + b.log
    assert wait_for_page(client, "from server 198.51.100.1", timeout=3) is not None
    # ... and the second takeover is just as fast: VRRP never waits for a script.
    assert a.stop() == 0
    outage = wait_for_page(client, "from server 198.51.100.2", timeout=5, request_timeout=0.05)
    assert outage is not None and outage <= SKEW_B + MARGIN, f"takeover with a hanging notify_master: {outage}"
    assert Path(f"/proc/{script_pid}").exists(), "still the first run: later ones wait their turn"

    # SIGTERM: B exits promptly and takes its hanging script down with it.
    assert isinstance(b, HafmNode)
    began = time.monotonic()
    b.signal(signal.SIGTERM)
    assert b.proc is not None and b.proc.wait(3) == 0
    took = time.monotonic() - began
    assert took <= 2.0, f"shutdown took {took:.2f} s"
    assert wait_until(lambda: _gone(script_pid), timeout=1), "the hanging notify_master survived hafm"
    assert "notify_master" in b.current_log() and "killed" in b.current_log()
    assert vip_holders_become(nodes, []), vip_holders(nodes)


def _gone(pid: int) -> bool:
    try:
        return "\nState:\tZ" in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
