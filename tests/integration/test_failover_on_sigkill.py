"""SIGKILL: no priority-0 advert, the Backup waits Master_Down_Interval; the restart leaves no duplicate VIP."""

import subprocess
import time
from pathlib import Path

from hafm.lab.network import Lab, wait_until
from hafm.lab.nodes import HAFM, start_classic_pair, vip_holders, vip_holders_become

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
    assert wait_until(lambda: "removed 198.51.100.100/24 left on eth0 by an earlier hafm" in a.current_log(), timeout=3)
    assert a.wait_state("MASTER"), a.log
    assert b.wait_state("BACKUP"), b.log
    assert vip_holders_become(nodes, ["a"]), vip_holders(nodes)


def test_cleanup_after_sigkill_leaves_the_vip_to_the_backup_alone(lab: Lab, tmp_path: Path) -> None:
    """`hafm cleanup` (the unit's ExecStopPost=): refused while hafm runs; after a SIGKILL it removes the
    VIP the dead Master left, and only that, so the new Master is the only holder before any restart."""
    a, b, nodes = start_classic_pair(lab, tmp_path)
    assert a.wait_state("MASTER") and b.wait_state("BACKUP")
    assert vip_holders_become(nodes, ["a"]), vip_holders(nodes)

    def cleanup() -> subprocess.CompletedProcess[str]:
        return a.host.run(*HAFM, "cleanup", "--config", str(a.config_path), check=False)

    running = cleanup()
    assert running.returncode == 1 and running.stdout == "", running
    assert running.stderr.count("\n") == 1 and "cleanup refused" in running.stderr, running.stderr
    assert a.has_vip() and a.state() == "MASTER", "a refused cleanup left the running Master alone"

    a.kill()
    assert b.wait_state("MASTER", timeout=MASTER_DOWN_B + 2), b.log
    assert vip_holders_become(nodes, ["a", "b"]), vip_holders(nodes)
    done = cleanup()
    assert (done.returncode, done.stderr) == (0, ""), done
    assert done.stdout == "VI_1: removed 198.51.100.100/24 left on eth0 by an earlier hafm\n"
    assert vip_holders(nodes) == ["b"]
    assert "198.51.100.1/24" in a.host.addresses(), "the host's own address stays"
    again = cleanup()
    assert (again.returncode, again.stdout, again.stderr) == (0, "", "")
