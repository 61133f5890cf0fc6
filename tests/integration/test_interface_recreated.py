"""An interface deleted and created again (a new ifindex, as after a driver reload or a VLAN re-made):
hafm reopens its sockets on the new interface, hears the Master again and can still take over."""

import time
from pathlib import Path

from hafm.lab.network import Lab, wait_until
from hafm.lab.nodes import HafmNode, instance_toml, vip_holders_become

VIP = "203.0.113.100"
SKEW_B = (256 - 90) / 256


def test_a_recreated_interface_is_rebound_and_the_backup_still_works(lab: Lab, tmp_path: Path) -> None:
    hosts = {"a": lab.add_host("a", "198.51.100.1/24"), "b": lab.add_host("b", "198.51.100.2/24")}
    for number, host in enumerate(hosts.values(), start=1):
        lab.add_link(host, f"203.0.113.{number}/24")
    config = {
        name: instance_toml(priority=priority, interface="eth1", vips=(f"{VIP}/24",), state=state)
        for name, priority, state in (("a", 100, "MASTER"), ("b", 90, "BACKUP"))
    }
    workdir = tmp_path / "daemons"
    nodes = {name: HafmNode(host=host, config=config[name], workdir=workdir) for name, host in hosts.items()}
    for node in nodes.values():
        node.start()
    a, b = nodes["a"], nodes["b"]
    assert a.wait_state("MASTER") and b.wait_state("BACKUP"), b.log
    assert vip_holders_become(nodes, ["a"], vip=VIP, dev="eth1"), a.log
    old_index = int(b.host.run("cat", "/sys/class/net/eth1/ifindex").stdout)

    b.host.run("ip", "link", "del", "dev", "eth1")  # the veth pair goes, bridge port included
    assert b.wait_state("FAULT"), b.log
    lab.add_link(b.host, "203.0.113.2/24")
    new_index = int(b.host.run("cat", "/sys/class/net/eth1/ifindex").stdout)
    assert new_index != old_index
    assert wait_until(lambda: f"eth1: interface re-created (index {old_index} -> {new_index})" in b.current_log(), 5), (
        b.log
    )
    assert b.wait_state("BACKUP"), b.log
    # Bound to the old index, b would hear nothing and take over after Master_Down_Interval (3.6 s).
    time.sleep(5)
    assert b.state() == "BACKUP" and a.state() == "MASTER", b.log
    assert vip_holders_become(nodes, ["a"], vip=VIP, dev="eth1")

    stopped = time.monotonic()
    assert a.stop() == 0
    assert b.wait_state("MASTER", timeout=5), b.log
    took = time.monotonic() - stopped
    assert "resigned (priority 0 advert)" in b.current_log(), "b heard a's farewell on the new interface"
    assert took < SKEW_B + 1.0, f"took over after {took:.2f} s"
    assert vip_holders_become(nodes, ["b"], vip=VIP, dev="eth1"), b.log
