"""The etcd witness with real etcd members (Debian's etcd-server) in their own lab hosts.

A (198.51.100.1, priority 100) and B (198.51.100.2, priority 90), VRRPv2 at 1 s, ``witness = true``;
etcd at 198.51.100.60 (three members at .60-.62 for the member-loss test); a client at .50.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from hafm.lab.etcd import EtcdCluster, cut, etcd_available, start_etcd, witness_toml
from hafm.lab.network import Lab, wait_until
from hafm.lab.nodes import DaemonNode, instance_toml, start_nodes, vip_holders, vip_holders_become, wait_for_page
from hafm.vrrp.constants import master_down_interval, skew_time

pytestmark = pytest.mark.skipif(etcd_available() is not None, reason=str(etcd_available()))

TTL = 2  # etcd 3.4's minimum lease TTL with its default timings
MARGIN = 0.5
KEY = "/hafm/default/4/51"
FROM_A, FROM_B = "from server 198.51.100.1", "from server 198.51.100.2"


def witness_pair(
    lab: Lab, tmp_path: Path, *, members: int = 1, ttl: int = TTL, extra: str = "witness = true\n"
) -> tuple[DaemonNode, DaemonNode, dict[str, DaemonNode], EtcdCluster]:
    cluster = start_etcd(lab, tmp_path / "etcd", count=members)
    head = witness_toml(cluster, ttl)
    nodes = start_nodes(
        lab,
        tmp_path,
        {
            "a": ("198.51.100.1/24", head + instance_toml(priority=100, state="MASTER", extra=extra)),
            "b": ("198.51.100.2/24", head + instance_toml(priority=90, extra=extra)),
        },
        start=False,
    )
    a, b = nodes["a"], nodes["b"]
    a.start()
    assert a.wait_state("MASTER", timeout=10), a.log
    b.start()
    assert b.wait_state("BACKUP"), b.log
    assert vip_holders_become(nodes, ["a"]), vip_holders(nodes)
    return a, b, nodes, cluster


def holders_during(nodes: dict[str, DaemonNode], seconds: float) -> set[tuple[str, ...]]:
    """Every VIP-holder set seen while sampling for ``seconds``."""
    seen = set()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        seen.add(tuple(vip_holders(nodes)))
        time.sleep(0.05)
    return seen


@pytest.mark.slow
def test_partition_with_both_reaching_etcd_keeps_one_holder(lab: Lab, tmp_path: Path) -> None:
    a, b, nodes, _ = witness_pair(lab, tmp_path)
    client = lab.add_host("client", "198.51.100.50/24")
    assert wait_for_page(client, FROM_A, timeout=3) is not None

    lab.isolate(a.host, b.host)  # each still reaches etcd and the client: those ports are not isolated
    assert holders_during(nodes, 8) == {("a",)}, b.log
    assert b.state() == "BACKUP"
    assert f"VI_1: stays BACKUP: witness key {KEY} held by" in b.current_log()

    lab.isolate(a.host, b.host, on=False)
    assert holders_during(nodes, 3) == {("a",)}
    assert wait_for_page(client, FROM_A, timeout=2) is not None


def test_master_cut_from_etcd_steps_down_within_ttl(lab: Lab, tmp_path: Path) -> None:
    a, b, nodes, cluster = witness_pair(lab, tmp_path)
    client = lab.add_host("client", "198.51.100.50/24")
    assert wait_for_page(client, FROM_A, timeout=3) is not None

    started = time.monotonic()
    cut(lab, a.host, cluster.members[0].host)
    assert wait_until(lambda: not a.has_vip(), timeout=TTL + MARGIN, interval=0.02), a.log
    assert time.monotonic() - started <= TTL + MARGIN
    assert "witness unreachable" in a.current_log() and "stepping down" in a.current_log()
    assert b.wait_state("MASTER", timeout=TTL + 3), b.log
    assert wait_for_page(client, FROM_B, timeout=3) is not None
    # A hears B, wants to preempt, cannot reach etcd: B stays the only holder.
    assert holders_during(nodes, 3) == {("b",)}, a.log


def test_sigterm_hands_over_in_about_skew_time(lab: Lab, tmp_path: Path) -> None:
    a, b, nodes, _ = witness_pair(lab, tmp_path)
    client = lab.add_host("client", "198.51.100.50/24")
    assert wait_for_page(client, FROM_A, timeout=3) is not None
    stopped = time.monotonic()
    assert a.stop() == 0
    assert wait_for_page(client, FROM_B, timeout=5) is not None, b.log
    bound = skew_time(90, version=2, master_adver_interval=1) + MARGIN
    took = time.monotonic() - stopped
    assert took <= bound, f"B took {took:.3f} s, bound {bound:.3f} s"
    assert vip_holders_become(nodes, ["b"])


def test_sigkill_takes_the_larger_of_master_down_interval_and_ttl(lab: Lab, tmp_path: Path) -> None:
    a, b, nodes, _ = witness_pair(lab, tmp_path)
    client = lab.add_host("client", "198.51.100.50/24")
    assert wait_for_page(client, FROM_A, timeout=3) is not None
    killed = time.monotonic()
    a.kill()
    assert wait_for_page(client, FROM_B, timeout=8) is not None, b.log
    bound = max(master_down_interval(90, version=2, master_adver_interval=1), TTL) + MARGIN
    took = time.monotonic() - killed
    assert took <= bound, f"B took {took:.3f} s, bound {bound:.3f} s"


@pytest.mark.slow
def test_losing_one_of_three_etcd_members_changes_nothing(lab: Lab, tmp_path: Path) -> None:
    a, b, nodes, cluster = witness_pair(lab, tmp_path, members=3, ttl=3)
    cluster.members[0].kill()  # the first endpoint: every client has to fail over
    assert holders_during(nodes, 6) == {("a",)}, a.log
    assert a.transitions() == ["BACKUP", "MASTER"] and b.transitions() == ["BACKUP"], (a.log, b.log)
    assert "witness unreachable" not in a.current_log() + b.current_log()


@pytest.mark.slow
def test_all_etcd_down_fails_closed_with_its_log_line(lab: Lab, tmp_path: Path) -> None:
    a, b, nodes, cluster = witness_pair(lab, tmp_path)
    down = time.monotonic()
    cluster.kill_all()
    assert wait_until(lambda: not a.has_vip(), timeout=TTL + MARGIN, interval=0.02), a.log
    assert time.monotonic() - down <= TTL + MARGIN
    line = "VI_1: witness unreachable: "
    assert any(
        line in entry and entry.endswith("stepping down; no node may become Master until etcd answers")
        for entry in a.current_log().splitlines()
    ), a.log
    assert holders_during(nodes, 5) == {()}, "no node is Master while etcd is down"
    assert "staying BACKUP until etcd answers" in b.current_log()
    assert a.current_log().count("stepping down; no node may become Master") == 1, "once per episode"

    for member in cluster.members:
        member.start()
    # Old leases outlive the restart by up to one TTL; then one node takes the key.
    assert wait_until(lambda: len(vip_holders(nodes)) == 1, timeout=TTL + 8, interval=0.1), (a.log, b.log)
    assert holders_during(nodes, 2) in ({("a",)}, {("b",)})


def test_lease_mode_failover_takes_about_ttl(lab: Lab, tmp_path: Path) -> None:
    a, b, nodes, _ = witness_pair(lab, tmp_path, extra='mode = "lease"\n')
    assert "holds the witness lease" in a.current_log()
    sniffer = b.host.sniff(bpf_filter="ip proto 112")
    killed = time.monotonic()
    a.kill()
    assert b.wait_state("MASTER", timeout=TTL + 3), b.log
    took = time.monotonic() - killed
    assert took <= TTL + 1.0, f"lease-only failover took {took:.3f} s"
    assert wait_until(b.has_vip, timeout=1), b.log  # (a SIGKILLed A leaves its address behind)
    from scapy.utils import rdpcap

    assert not list(rdpcap(str(sniffer.stop()))), "lease mode sends no VRRP"


def test_preemption_hands_the_key_over_before_the_vip_moves(lab: Lab, tmp_path: Path) -> None:
    cluster = start_etcd(lab, tmp_path / "etcd")
    head = witness_toml(cluster, TTL)
    nodes = start_nodes(
        lab,
        tmp_path,
        {
            "a": ("198.51.100.1/24", head + instance_toml(priority=100, extra="witness = true\n")),
            "b": ("198.51.100.2/24", head + instance_toml(priority=90, state="MASTER", extra="witness = true\n")),
        },
        start=False,
    )
    a, b = nodes["a"], nodes["b"]
    b.start()
    assert b.wait_state("MASTER", timeout=10), b.log
    a.start()  # better priority: it preempts B through a candidacy
    seen = set()
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline and a.state() != "MASTER":
        seen.add(tuple(vip_holders(nodes)))
        time.sleep(0.02)
    assert a.state() == "MASTER", (a.log, b.log)
    seen |= holders_during(nodes, 2)
    assert all(len(holders) <= 1 for holders in seen), seen
    assert "witness candidate" in b.current_log() and "outranks our 90" in b.current_log()
    assert vip_holders(nodes) == ["a"]
