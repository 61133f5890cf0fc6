"""Restart storm: a daemon restarted 20 times in a row, by SIGTERM and SIGKILL alternately.

* The Backup's restarts never take the VIP from a healthy Master: B never holds it, A never
  leaves MASTER. A restarted Backup must wait a full Master_Down_Interval before claiming anything.
* The Master's restarts never leave two holders: after each one the pair settles on A alone, and
  the VIP a SIGKILLed A left on its interface is removed by its successor at start-up (a moment of
  two holders while the loser hears the winner's first advert is allowed, no more than an advert
  interval).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from hafm.lab.network import Lab, wait_until
from hafm.lab.nodes import DaemonNode, VipWatcher, start_classic_pair, vip_holders, vip_holders_become

RESTARTS = 20
VERSION, ADVERT_INT = 3, 0.1  # short intervals: more adverts per restart, and a tighter race to lose
SETTLE = 8.0


def restart(node: DaemonNode, number: int) -> None:
    """Stop ``node`` (SIGTERM on even numbers, SIGKILL on odd), start it again at once, wait for it to run."""
    if number % 2 == 0:
        assert node.stop() == 0, node.current_log()
    else:
        node.kill()
    node.start()
    assert wait_until(lambda: "INIT -> BACKUP" in node.current_log(), timeout=SETTLE), node.current_log()


def settled(nodes: dict[str, DaemonNode]) -> bool:
    return nodes["a"].state() == "MASTER" and nodes["b"].state() == "BACKUP" and vip_holders(nodes) == ["a"]


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_backup_restart_storm_never_takes_the_vip(lab: Lab, tmp_path: Path) -> None:
    a, b, nodes = start_classic_pair(lab, tmp_path, version=VERSION, advert_int=ADVERT_INT)
    assert wait_until(lambda: settled(nodes), timeout=SETTLE), a.log + b.log
    with VipWatcher(nodes) as watcher:
        for number in range(RESTARTS):
            restart(b, number)
            # Let it hear a few adverts before the next blow, as a supervisor's restart delay would.
            time.sleep(3 * ADVERT_INT)
        time.sleep(1.0)
        assert watcher.seconds_with(lambda holders: "b" in holders) == 0, watcher.timeline()
        assert watcher.holders() == {"a"}
    assert a.transitions() == ["BACKUP", "MASTER"], f"A left MASTER: {a.transitions()}"
    assert b.starts == RESTARTS + 1
    assert "MASTER" not in b.log.split("=== start 2\n", 1)[1], "a restarted B became MASTER"


@pytest.mark.slow
@pytest.mark.timeout(200)
def test_master_restart_storm_never_leaves_two_holders(lab: Lab, tmp_path: Path) -> None:
    a, b, nodes = start_classic_pair(lab, tmp_path, version=VERSION, advert_int=ADVERT_INT)
    assert wait_until(lambda: settled(nodes), timeout=SETTLE), a.log + b.log
    stale: list[float] = []  # SIGKILL: two holders until the successor removes the VIP its predecessor left
    handover: list[float] = []  # the restarted A preempting B: B drops the VIP on A's first advert
    with VipWatcher(nodes) as watcher:
        for number in range(RESTARTS):
            since = time.monotonic()
            restart(a, number)
            running = time.monotonic()
            if number % 2 == 1:
                assert "removed 198.51.100.100/24 left on eth0 by an earlier hafm" in a.current_log(), a.current_log()
            assert wait_until(lambda: settled(nodes), timeout=SETTLE), (
                f"restart {number + 1}: not settled\n{a.current_log()}\n{b.current_log()}"
            )
            for start, end, holders in watcher.timeline():
                if end > since and len(holders) > 1:
                    if start < running:
                        # Stale: only after a SIGKILL, and gone by the time the successor runs.
                        assert number % 2 == 1, f"restart {number + 1} (SIGTERM) left two holders: {holders}"
                        assert end <= running, f"restart {number + 1}: the successor kept the stale VIP"
                        stale.append(end - start)
                    else:
                        handover.append(end - start)
        assert wait_until(lambda: watcher.holders() == {"a"}, timeout=1), watcher.timeline()
    print(
        f"\nmaster restart storm, {RESTARTS} restarts: stale VIP beside B's for max "
        f"{max(stale, default=0) * 1000:.0f} ms "
        f"({len(stale)} SIGKILLs outran the successor's start-up); handover overlap max "
        f"{max(handover, default=0) * 1000:.1f} ms"
    )
    assert max(handover, default=0.0) < ADVERT_INT, f"two holders after the restart: {handover}"
    assert vip_holders_become(nodes, ["a"])
