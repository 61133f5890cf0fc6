"""Migrating one node of the classic keepalived pair with `hafm convert`: the mixed cluster behaves as before.

NodeA (MASTER, 100) and NodeB (BACKUP, 90) share VRID 51 with PASS auth 1111. One node keeps
its keepalived.conf and keeps running keepalived; the other's keepalived.conf goes through
`hafm convert` unchanged and runs under hafm: A is Master, SIGTERM of A hands the VIP to B,
and A preempts again when it comes back, whichever of the two was migrated.
"""

from __future__ import annotations

import shutil
import time
import tomllib
from pathlib import Path

import pytest

from hafm.keepalived.convert import convert_text
from hafm.lab.network import Lab
from hafm.lab.nodes import (
    ClientPoller,
    DaemonNode,
    KeepalivedNode,
    RawHafmNode,
    start_mixed_nodes,
    vip_holders,
    vip_holders_become,
)

pytestmark = pytest.mark.skipif(shutil.which("keepalived") is None, reason="keepalived is not on PATH")

DATA = Path(__file__).parent.parent / "data" / "keepalived"
A_ADDR, B_ADDR = "198.51.100.1", "198.51.100.2"
SKEW_B = (256 - 90) / 256
MARGIN = 0.3


def lab_conf(name: str) -> str:
    """The sample keepalived.conf with its VIP moved into the lab's documentation range."""
    text = (DATA / name).read_text()
    assert "192.168.8.100/24" in text and "interface eth0" in text
    return text.replace("192.168.8.100/24", "198.51.100.100/24")


def converted(node: str) -> str:
    """`hafm convert` of NodeA's or NodeB's config (``node`` is "a" or "b")."""
    name = f"node{node.upper()}.conf"
    result = convert_text(lab_conf(name), filename=name)
    assert result.warnings == [], result.warnings
    document = tomllib.loads(result.toml)
    # The file runs as converted, [global] included: nothing in it was written by the test.
    assert document["global"]["router_id"] == f"Node{node.upper()}"
    assert document["vrrp_instance"]["VI_1"]["virtual_router_id"] == 51
    return result.toml


@pytest.mark.parametrize("migrated", ["b", "a"], ids=["NodeB-on-hafm", "NodeA-on-hafm"])
def test_mixed_cluster_behaves_like_the_keepalived_pair(lab: Lab, tmp_path: Path, migrated: str) -> None:
    specs: dict[str, tuple[str, type[DaemonNode], str]] = {
        "a": (f"{A_ADDR}/24", KeepalivedNode, lab_conf("nodeA.conf")),
        "b": (f"{B_ADDR}/24", KeepalivedNode, lab_conf("nodeB.conf")),
    }
    address, _, _ = specs[migrated]
    specs[migrated] = (address, RawHafmNode, converted(migrated))
    nodes = start_mixed_nodes(lab, tmp_path, specs)
    a, b = nodes["a"], nodes["b"]
    client = lab.add_host("client", "198.51.100.50/24")

    assert a.wait_state("MASTER", timeout=8), a.current_log()
    assert b.state() == "BACKUP", b.current_log()
    with ClientPoller(client) as poller:
        assert poller.wait_for(A_ADDR, timeout=3), "client never reached A through the VIP"
        assert vip_holders_become(nodes, ["a"]), vip_holders(nodes)

        since = time.monotonic()
        assert a.stop() == 0
        assert poller.wait_for(B_ADDR, timeout=3), b.current_log()
        outage = poller.outage(since, B_ADDR)
        assert outage is not None and outage <= SKEW_B + MARGIN, f"outage {outage} s, bound {SKEW_B + MARGIN:.3f} s"
        assert b.state() == "MASTER"
        assert vip_holders_become(nodes, ["b"]), vip_holders(nodes)

        a.start()
        assert a.wait_state("MASTER", timeout=8), a.current_log()
        assert b.wait_state("BACKUP", timeout=3), b.current_log()
        assert poller.wait_for(A_ADDR, timeout=3), "client did not come back to A"
        assert vip_holders_become(nodes, ["a"]), vip_holders(nodes)
