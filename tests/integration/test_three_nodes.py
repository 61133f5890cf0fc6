from pathlib import Path

from hafm.lab.network import Lab
from hafm.lab.nodes import instance_toml, start_nodes, vip_holders, vip_holders_become


def test_highest_live_node_always_wins(lab: Lab, tmp_path: Path) -> None:
    nodes = start_nodes(
        lab,
        tmp_path,
        {
            "a": ("198.51.100.1/24", instance_toml(priority=100)),
            "b": ("198.51.100.2/24", instance_toml(priority=90)),
            "c": ("198.51.100.3/24", instance_toml(priority=80)),
        },
    )
    assert nodes["a"].wait_state("MASTER", timeout=10), nodes["a"].log
    assert vip_holders_become(nodes, ["a"]), vip_holders(nodes)
    nodes["a"].stop()
    assert nodes["b"].wait_state("MASTER"), nodes["b"].log
    assert vip_holders_become(nodes, ["b"]), vip_holders(nodes)
    assert nodes["c"].state() == "BACKUP"
    nodes["b"].stop()
    assert nodes["c"].wait_state("MASTER"), nodes["c"].log
    assert vip_holders_become(nodes, ["c"]), vip_holders(nodes)
    nodes["a"].start()
    assert nodes["a"].wait_state("MASTER"), nodes["a"].log
    assert nodes["c"].wait_state("BACKUP")
    assert vip_holders_become(nodes, ["a"]), vip_holders(nodes)
