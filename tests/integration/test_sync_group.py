"""A sync group moves its members together: one member's fault moves both VIPs."""

from pathlib import Path

from hafm.lab import Lab, wait_until
from hafm.labnodes import instance_toml, start_nodes, vip_holders

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
