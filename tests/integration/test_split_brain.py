"""A partition makes both nodes Master; healing it leaves exactly one, and the client follows the winner."""

import time
from pathlib import Path

from hafm.lab import Lab, wait_until
from hafm.labnodes import VIP4, instance_toml, start_nodes, vip_holders

ADVERT_INT = 1.0


def test_partition_then_heal(lab: Lab, tmp_path: Path) -> None:
    nodes = start_nodes(
        lab,
        tmp_path,
        {
            "a": ("198.51.100.1/24", instance_toml(priority=100, state="MASTER")),
            "b": ("198.51.100.2/24", instance_toml(priority=90)),
        },
    )
    a, b = nodes["a"], nodes["b"]
    client = lab.add_host("client", "198.51.100.50/24")
    assert a.wait_state("MASTER") and b.wait_state("BACKUP")
    assert client.http_get("http://198.51.100.100/test/test.html") is not None  # the client knows A's MAC
    assert client.neighbour_mac(VIP4) == a.host.mac

    lab.isolate(a.host, b.host)
    assert b.wait_state("MASTER", timeout=6), b.log
    assert sorted(vip_holders(nodes)) == ["a", "b"]
    # B's gratuitous ARP moved the client to B during the partition.
    assert wait_until(lambda: client.neighbour_mac(VIP4) == b.host.mac, timeout=2)

    healed = time.monotonic()
    lab.isolate(a.host, b.host, on=False)
    assert b.wait_state("BACKUP", timeout=3 * ADVERT_INT), b.log
    assert time.monotonic() - healed <= 3 * ADVERT_INT
    assert a.state() == "MASTER"
    assert wait_until(lambda: vip_holders(nodes) == ["a"], timeout=1)
    assert "VI_1: split brain: another master 198.51.100.2 prio 90" in a.current_log()
    assert a.current_log().count("split brain") == 1, "logged once per episode"
    # The winner re-announced the VIP: the client is back on A without waiting for ARP to age.
    assert wait_until(lambda: client.neighbour_mac(VIP4) == a.host.mac, timeout=2)
    assert client.http_get("http://198.51.100.100/test/test.html") is not None
