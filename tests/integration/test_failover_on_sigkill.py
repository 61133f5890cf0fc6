"""SIGKILL: no priority-0 advert, the Backup waits Master_Down_Interval; the restart leaves no duplicate VIP."""

import time
from pathlib import Path

from hafm.lab.network import Lab, wait_until
from hafm.lab.nodes import start_classic_pair, vip_holders, vip_holders_become

MASTER_DOWN_B = 3 + (256 - 90) / 256
MARGIN = 0.3


def test_sigkill_master(lab: Lab, tmp_path: Path) -> None:
    a, b, nodes = start_classic_pair(lab, tmp_path)
    assert a.wait_state("MASTER") and b.wait_state("BACKUP")
    assert vip_holders_become(nodes, ["a"]), vip_holders(nodes)  # added just after the MASTER log line
    start = time.monotonic()
    a.kill()
    assert b.wait_state("MASTER", timeout=MASTER_DOWN_B + 2), b.log
    assert time.monotonic() - start <= MASTER_DOWN_B + MARGIN
    # The killed daemon could not clean up: its VIP is still on A, as with keepalived.
    assert vip_holders_become(nodes, ["a", "b"]), vip_holders(nodes)

    a.start()
    assert "removing 198.51.100.100/24 left on eth0 by an earlier hafm" in (a.current_log() or "") or wait_until(
        lambda: "left on eth0 by an earlier hafm" in a.current_log(), timeout=3
    )
    assert a.wait_state("MASTER"), a.log
    assert b.wait_state("BACKUP"), b.log
    assert vip_holders_become(nodes, ["a"]), vip_holders(nodes)
