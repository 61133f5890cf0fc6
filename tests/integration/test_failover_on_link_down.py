"""Pulling the master's cable: Fault on the master, takeover after Master_Down_Interval."""

import time
from pathlib import Path

from hafm.lab.network import Lab
from hafm.lab.nodes import start_classic_pair, vip_holders, vip_holders_become

MASTER_DOWN_B = 3 * 1 + (256 - 90) / 256
MARGIN = 0.3


def test_link_down_backup_takes_over_then_master_preempts(lab: Lab, tmp_path: Path) -> None:
    a, b, nodes = start_classic_pair(lab, tmp_path)
    assert a.wait_state("MASTER") and b.wait_state("BACKUP")
    time.sleep(1.2)  # let B hear a fresh advert so its timer is armed from a known point

    cut = time.monotonic()
    lab.link_down(a.host)
    assert b.wait_state("MASTER", timeout=MASTER_DOWN_B + 2), b.log
    took = time.monotonic() - cut
    assert took <= MASTER_DOWN_B + MARGIN, f"B took over after {took:.2f} s"
    assert a.wait_state("FAULT"), a.log
    assert "VI_1: MASTER -> FAULT (interface eth0 down)" in a.current_log()
    assert vip_holders_become(nodes, ["b"]), vip_holders(nodes)

    lab.link_up(a.host)
    assert a.wait_state("MASTER", timeout=8), a.log
    assert "FAULT -> BACKUP (interface eth0 up)" in a.current_log()
    assert b.wait_state("BACKUP"), b.log
    assert vip_holders_become(nodes, ["a"]), vip_holders(nodes)
