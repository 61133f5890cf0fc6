"""SIGHUP / ``hafm reload`` apply a new configuration without moving the VIP; a bad one changes nothing.

A client polls the VIP every 5 ms: it never sees a gap over 0.1 s and never reaches the Backup
while the Master gains a second VIP, is handed a broken configuration, returns to the original,
and is reloaded 10 times in a row (keepalived 2.2.7 passes the same sequence here).
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

from hafm.lab.network import Lab, wait_until
from hafm.lab.nodes import VIP4, ClientPoller, HafmNode, instance_toml, start_classic_pair, vip_holders_become

SECOND_VIP = "198.51.100.101"
MAX_GAP = 0.1


def longest_gap(poller: ClientPoller, since: float) -> float:
    """The longest time between two answers from A after ``since``; any other answer fails."""
    answered = [s for s in poller.samples if s.at >= since]
    assert all(s.server in ("198.51.100.1", None) for s in answered), "the client reached the Backup"
    times = [s.at for s in answered if s.server is not None]
    assert times, "no answer at all"
    return max((b - a for a, b in zip(times, times[1:], strict=False)), default=0.0)


def reload_by_sighup(node: HafmNode, config: str, expect: str) -> None:
    node.config_path.write_text(node.config.split("\n[vrrp_instance", 1)[0] + "\n" + config)
    starts = node.current_log().count(expect)
    node.signal(signal.SIGHUP)
    assert wait_until(lambda: node.current_log().count(expect) > starts, timeout=5), node.current_log()


def test_reloads_keep_the_vip_and_a_broken_config_changes_nothing(lab: Lab, tmp_path: Path) -> None:
    a, b, nodes = start_classic_pair(lab, tmp_path)
    assert isinstance(a, HafmNode)
    client = lab.add_host("client", "198.51.100.50/24")
    assert a.wait_state("MASTER"), a.log
    assert b.wait_state("BACKUP"), b.log
    assert vip_holders_become(nodes, ["a"])
    original = instance_toml(priority=100, state="MASTER")
    two_vips = instance_toml(priority=100, state="MASTER", vips=(f"{VIP4}/24", f"{SECOND_VIP}/24"))

    with ClientPoller(client) as poller:
        assert poller.wait_for("198.51.100.1", timeout=3)
        since = time.monotonic()

        reload_by_sighup(a, two_vips, "reload done")
        assert wait_until(lambda: a.has_vip(SECOND_VIP), timeout=2), a.current_log()
        assert "VI_1: updated in place by reload" in a.current_log()
        assert client.ping(SECOND_VIP), "the new VIP answers (added and announced)"

        reload_by_sighup(a, 'priority = "high"\n' + original, "reload refused")
        assert "running configuration is unchanged" in a.current_log()
        assert a.has_vip(VIP4) and a.has_vip(SECOND_VIP), "a refused reload keeps the VIPs"

        reload_by_sighup(a, original, "reload done")
        assert wait_until(lambda: not a.has_vip(SECOND_VIP), timeout=2), a.current_log()

        for _ in range(10):
            reload_by_sighup(a, original, "reload done")
        time.sleep(0.3)
        gap = longest_gap(poller, since)

    assert gap <= MAX_GAP, f"the client saw a {gap:.3f} s gap"
    assert a.transitions() == ["BACKUP", "MASTER"], "A never left MASTER"
    assert b.transitions() == ["BACKUP"]


def test_status_reload_and_maintenance_through_the_control_socket(lab: Lab, tmp_path: Path) -> None:
    a, b, nodes = start_classic_pair(lab, tmp_path)
    assert isinstance(a, HafmNode) and isinstance(b, HafmNode)
    assert a.wait_state("MASTER"), a.log
    assert b.wait_state("BACKUP"), b.log

    status = json.loads(a.control("status", "--json").stdout)
    vi_1 = status["instances"][0]
    assert status["schema"] == "hafm-status/1"
    assert vi_1["state"] == "MASTER" and vi_1["holds_vips"] and vi_1["vips"] == [f"{VIP4}/24"]
    assert vi_1["priority"] == {"base": 100, "effective": 100, "explanation": "base 100"}
    assert vi_1["counters"]["adverts_sent"] >= 1 and vi_1["counters"]["became_master"] == 1
    backup = json.loads(b.control("status", "--json", "VI_1").stdout)["instances"][0]
    assert backup["master"] == {"address": "198.51.100.1", "priority": 100}
    assert backup["counters"]["adverts_received"] >= 1

    table = a.control("status")
    assert table.returncode == 0 and "VI_1  MASTER" in table.stdout
    assert max(len(line) for line in table.stdout.splitlines()) <= 80

    # A broken file: `hafm reload` prints the one-line errors and exits 1; nothing changes.
    a.config_path.write_text(a.config.replace("priority = 100", "priority = 300"))
    refused = a.control("reload")
    assert refused.returncode == 1 and "vrrp_instance.VI_1.priority" in refused.stderr, refused.stderr
    a.config_path.write_text(a.config)
    assert a.control("reload").stdout.startswith("reloaded: VI_1 MASTER")

    # Maintenance: A hands over at once and stays Backup; it survives a restart; off brings A back.
    drained = a.control("maintenance", "on", "--reason", "patching tomcat")
    assert drained.returncode == 0 and "VI_1: maintenance on (patching tomcat)" in drained.stdout
    assert vip_holders_become(nodes, ["b"], timeout=3), a.current_log()
    assert json.loads(a.control("status", "--json").stdout)["instances"][0]["maintenance"] == "patching tomcat"
    a.stop()
    a.start()
    assert a.wait_state("BACKUP"), a.current_log()
    assert not wait_until(lambda: a.state() == "MASTER", timeout=5), "maintenance did not survive the restart"
    a.control("maintenance", "off")
    assert vip_holders_become(nodes, ["a"], timeout=6), a.current_log()


def test_status_without_a_daemon_is_one_line_and_non_zero(tmp_path: Path) -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "hafm", "status", "--socket", str(tmp_path / "none.sock")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0 and "no hafm daemon is listening" in done.stderr
