from pathlib import Path

from hafm.lab.network import Lab, wait_until
from hafm.lab.nodes import instance_toml, start_nodes, vip_holders, vip_holders_become


def test_nopreempt_node_does_not_take_the_vip_back(lab: Lab, tmp_path: Path) -> None:
    nodes = start_nodes(
        lab,
        tmp_path,
        {
            "a": ("198.51.100.1/24", instance_toml(priority=100, extra="nopreempt = true")),
            "b": ("198.51.100.2/24", instance_toml(priority=90)),
        },
        start=False,
    )
    a, b = nodes["a"], nodes["b"]
    # A first: started together, B's Master_Down_Interval is only 40 ms longer than A's, and a
    # non-preempting A rightly stays BACKUP if B wins that race.
    a.start()
    assert a.wait_state("MASTER"), a.log
    b.start()
    assert b.wait_state("BACKUP"), b.log
    assert a.stop() == 0
    assert b.wait_state("MASTER"), b.log
    a.start()
    assert a.wait_state("BACKUP"), a.log
    # Well past A's Master_Down_Interval: with preemption A would have taken over by now.
    assert not wait_until(lambda: a.state() == "MASTER", timeout=5)
    assert vip_holders_become(nodes, ["b"]), vip_holders(nodes)
