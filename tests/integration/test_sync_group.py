"""A sync group moves its members together: one member's fault moves both VIPs."""

from pathlib import Path

from hafm.lab.network import Lab, wait_until
from hafm.lab.nodes import DaemonNode, HafmNode, instance_toml, start_nodes, vip_holders

VIP_FRONT, VIP_BACK = "198.51.100.100", "198.51.100.101"


def node_config(priority: int, flag: Path) -> str:
    # VI_1 tracks a weight-0 file check: writing a non-zero number puts VI_1 (alone) in FAULT.
    return (
        instance_toml(
            priority=priority, name="VI_1", vrid=51, vips=(f"{VIP_FRONT}/24",), extra='track_check = ["flag"]'
        )
        + instance_toml(priority=priority, name="VI_2", vrid=52, vips=(f"{VIP_BACK}/24",))
        + '[vrrp_sync_group.G1]\ngroup = ["VI_1", "VI_2"]\n'
        + f'[check.flag]\ntype = "file"\npath = "{flag}"\ninterval = 0.2\nweight = 0\ninit_state = "up"\n'
    )


def test_one_member_fault_moves_both_vips(lab: Lab, tmp_path: Path) -> None:
    flag_a, flag_b = tmp_path / "flag_a", tmp_path / "flag_b"
    flag_a.write_text("0\n")
    flag_b.write_text("0\n")
    nodes = start_nodes(
        lab,
        tmp_path,
        {"a": ("198.51.100.1/24", node_config(100, flag_a)), "b": ("198.51.100.2/24", node_config(90, flag_b))},
    )
    a = nodes["a"]
    assert a.wait_state("MASTER", instance="VI_1") and a.wait_state("MASTER", instance="VI_2"), a.log
    assert wait_until(lambda: vip_holders(nodes, VIP_FRONT) == ["a"] and vip_holders(nodes, VIP_BACK) == ["a"])
    assert "G1: group BACKUP -> MASTER" in a.current_log() or "G1: group INIT -> MASTER" in a.current_log()

    flag_a.write_text("1\n")  # VI_1's own fault
    assert a.wait_state("FAULT", instance="VI_1"), a.log
    assert a.wait_state("FAULT", instance="VI_2"), a.log
    assert "VI_2: MASTER -> FAULT (sync group G1: VI_1 in FAULT)" in a.current_log()
    assert wait_until(lambda: vip_holders(nodes, VIP_FRONT) == ["b"] and vip_holders(nodes, VIP_BACK) == ["b"], 6)

    flag_a.write_text("0\n")
    assert a.wait_state("MASTER", instance="VI_1"), a.log
    assert a.wait_state("MASTER", instance="VI_2"), a.log
    assert wait_until(lambda: vip_holders(nodes, VIP_FRONT) == ["a"] and vip_holders(nodes, VIP_BACK) == ["a"])


def test_member_preempted_elsewhere_takes_the_group_along_without_flapping(lab: Lab, tmp_path: Path) -> None:
    """A's VI_1 drops to 80 (a weight -20 check): B preempts VI_1, A's VI_2 follows it to BACKUP although
    its own priority (100) beats B's (90), and stays there until VI_1 comes back."""
    flag = tmp_path / "flag_a"
    flag.write_text("0\n")
    check = f'[check.app]\ntype = "file"\npath = "{flag}"\ninterval = 0.2\nweight = -20\ninit_state = "up"\n'
    a_config = (
        instance_toml(priority=100, name="VI_1", vrid=51, vips=(f"{VIP_FRONT}/24",), extra='track_check = ["app"]')
        + instance_toml(priority=100, name="VI_2", vrid=52, vips=(f"{VIP_BACK}/24",))
        + '[vrrp_sync_group.G1]\ngroup = ["VI_1", "VI_2"]\n'
        + check
    )
    b_config = (
        instance_toml(priority=90, name="VI_1", vrid=51, vips=(f"{VIP_FRONT}/24",))
        + instance_toml(priority=90, name="VI_2", vrid=52, vips=(f"{VIP_BACK}/24",))
        + '[vrrp_sync_group.G1]\ngroup = ["VI_1", "VI_2"]\n'
    )
    nodes = start_nodes(lab, tmp_path, {"a": ("198.51.100.1/24", a_config), "b": ("198.51.100.2/24", b_config)})
    a = nodes["a"]

    def on(node: str) -> bool:
        return vip_holders(nodes, VIP_FRONT) == [node] and vip_holders(nodes, VIP_BACK) == [node]

    assert wait_until(lambda: on("a"), timeout=8), a.log
    flag.write_text("garbage\n")  # the file check goes down: VI_1 100 -> 80
    assert wait_until(lambda: on("b"), timeout=8), a.log
    assert "VI_2: MASTER -> BACKUP (sync group G1: VI_1 went BACKUP)" in a.current_log()
    # Several Master_Down_Intervals: A's VI_2 (100) would preempt B's (90) if the group did not hold it.
    assert not wait_until(lambda: a.state("VI_2") != "BACKUP", timeout=9), a.log
    flag.write_text("0\n")
    assert wait_until(lambda: on("a"), timeout=10), a.log


def test_front_link_down_moves_the_back_vip_too(lab: Lab, tmp_path: Path) -> None:
    """Two networks: VI_1 on the front (eth0, 198.51.100.0/24), VI_2 on the back (eth1, 203.0.113.0/24)."""
    back_vip = "203.0.113.100"

    def config(priority: int) -> str:
        return (
            instance_toml(priority=priority, name="VI_1", vrid=51, vips=(f"{VIP_FRONT}/24",))
            + instance_toml(priority=priority, name="VI_2", vrid=52, vips=(f"{back_vip}/24",), interface="eth1")
            + '[vrrp_sync_group.G1]\ngroup = ["VI_1", "VI_2"]\n'
        )

    hosts = {name: lab.add_host(name, f"198.51.100.{n}/24") for n, name in ((1, "a"), (2, "b"))}
    for n, host in enumerate(hosts.values(), start=1):
        lab.add_link(host, f"203.0.113.{n}/24")
    nodes: dict[str, DaemonNode] = {
        name: HafmNode(host=host, config=config(100 if name == "a" else 90), workdir=tmp_path / "daemons")
        for name, host in hosts.items()
    }
    for node in nodes.values():
        node.start()
    a = nodes["a"]

    def on(node: str) -> bool:
        return vip_holders(nodes, VIP_FRONT) == [node] and vip_holders(nodes, back_vip, "eth1") == [node]

    assert wait_until(lambda: on("a"), timeout=8), a.log
    lab.link_down(hosts["a"])  # the front cable only
    assert wait_until(lambda: on("b"), timeout=6), a.log
    assert "VI_2: MASTER -> FAULT (sync group G1: VI_1 in FAULT)" in a.current_log()
    lab.link_up(hosts["a"])
    assert wait_until(lambda: on("a"), timeout=8), a.log
