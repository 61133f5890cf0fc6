"""SIGHUP (what `systemctl reload` sends) reloads the configuration; the Master keeps the VIP."""

import signal
from pathlib import Path

from hafm.lab.network import Lab, wait_until
from hafm.lab.nodes import start_classic_pair, vip_holders, vip_holders_become


def test_sighup_reloads_and_the_master_keeps_the_vip(lab: Lab, tmp_path: Path) -> None:
    a, b, nodes = start_classic_pair(lab, tmp_path)
    assert a.wait_state("MASTER") and b.wait_state("BACKUP"), a.log + b.log

    a.signal(signal.SIGHUP)
    assert wait_until(lambda: "reload done: VI_1 MASTER" in a.current_log(), timeout=3), a.log
    # Longer than B's Master_Down_Interval: had A died or stopped advertising, B would be Master by now.
    assert not wait_until(lambda: b.state() == "MASTER", timeout=4.5), b.log
    assert a.proc is not None and a.proc.poll() is None, "SIGHUP killed hafm"
    assert a.transitions() == ["BACKUP", "MASTER"]
    assert vip_holders_become(nodes, ["a"]), vip_holders(nodes)
