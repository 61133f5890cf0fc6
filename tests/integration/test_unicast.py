"""Unicast peers with multicast VRRP dropped on the bridge: failover still works."""

from pathlib import Path

from hafm.lab.network import Lab, wait_until
from hafm.lab.nodes import instance_toml, start_nodes, vip_holders, vip_holders_become


def unicast(src: str, peer: str) -> str:
    return f'unicast_src_ip = "{src}"\nunicast_peer = ["{peer}"]'


def test_unicast_failover_without_multicast(lab: Lab, tmp_path: Path) -> None:
    lab.drop_multicast_vrrp()
    nodes = start_nodes(
        lab,
        tmp_path,
        {
            "a": (
                "198.51.100.1/24",
                instance_toml(priority=100, state="MASTER", extra=unicast("198.51.100.1", "198.51.100.2")),
            ),
            "b": ("198.51.100.2/24", instance_toml(priority=90, extra=unicast("198.51.100.2", "198.51.100.1"))),
        },
    )
    a, b = nodes["a"], nodes["b"]
    assert a.wait_state("MASTER"), a.log
    assert b.wait_state("BACKUP"), b.log
    # B stays Backup: it hears A's unicast adverts although multicast is dropped.
    assert not wait_until(lambda: b.state() == "MASTER", timeout=4)
    a.stop()
    assert b.wait_state("MASTER", timeout=2), b.log
    assert vip_holders_become(nodes, ["b"]), vip_holders(nodes)
    a.start()
    assert a.wait_state("MASTER"), a.log
    assert b.wait_state("BACKUP"), b.log
