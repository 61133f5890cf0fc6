"""Mixed clusters: keepalived 2.2.7 (the Debian package) and hafm share one VRID and fail over to each other.

Every scenario runs both ways round (keepalived Master + hafm Backup, and the reverse), so each
implementation is seen both sending and obeying every kind of advert the other sends.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hafm.lab.network import Host, Lab, wait_until
from hafm.lab.nodes import (
    TEST_PAGE,
    VIP4,
    VIP6,
    ClientPoller,
    DaemonNode,
    HafmNode,
    KeepalivedNode,
    instance_toml,
    keepalived_conf,
    start_mixed_nodes,
    vip_holders,
    vip_holders_become,
)

pytestmark = pytest.mark.skipif(shutil.which("keepalived") is None, reason="keepalived is not on PATH")

A_ADDR, B_ADDR = "198.51.100.1", "198.51.100.2"
MARGIN = 0.3

Nodes = dict[str, DaemonNode]
KINDS: dict[str, tuple[type[DaemonNode], Callable[..., str]]] = {
    "keepalived": (KeepalivedNode, keepalived_conf),
    "hafm": (HafmNode, instance_toml),
}
# (kind of A, the higher-priority node at .1; kind of B at .2)
BOTH_WAYS = [
    pytest.param("keepalived", "hafm", id="keepalived-master"),
    pytest.param("hafm", "keepalived", id="hafm-master"),
]


def skew(priority: int, interval: float) -> float:
    return (256 - priority) * interval / 256


def master_down(priority: int, interval: float) -> float:
    return 3 * interval + skew(priority, interval)


def unicast(kind: str, src: str, peer: str) -> str:
    """Unicast keys in the daemon's own syntax."""
    if kind == "keepalived":
        return f"    unicast_src_ip {src}\n    unicast_peer {{\n        {peer}\n    }}\n"
    return f'unicast_src_ip = "{src}"\nunicast_peer = ["{peer}"]\n'


def pair(
    lab: Lab,
    tmp_path: Path,
    kind_a: str,
    kind_b: str,
    *,
    a: dict[str, Any] | None = None,
    b: dict[str, Any] | None = None,
    start: bool = True,
    **common: Any,
) -> tuple[DaemonNode, DaemonNode, Nodes]:
    """A at 198.51.100.1 (MASTER, 100) and B at .2 (BACKUP, 90) unless ``a``/``b`` say otherwise."""
    a_options = {"priority": 100, "state": "MASTER", **common, **(a or {})}
    b_options = {"priority": 90, "state": "BACKUP", **common, **(b or {})}
    kind_a_node, conf_a = KINDS[kind_a]
    kind_b_node, conf_b = KINDS[kind_b]
    nodes = start_mixed_nodes(
        lab,
        tmp_path,
        {
            "a": (f"{A_ADDR}/24", kind_a_node, conf_a(**a_options)),
            "b": (f"{B_ADDR}/24", kind_b_node, conf_b(**b_options)),
        },
        start=start,
    )
    return nodes["a"], nodes["b"], nodes


def settle(a: DaemonNode, b: DaemonNode, timeout: float = 8.0) -> None:
    """Wait for A Master and B Backup (the configured roles)."""
    assert a.wait_state("MASTER", timeout=timeout), a.current_log()
    assert b.wait_state("BACKUP", timeout=timeout), b.current_log()


def page_url(vip: str) -> str:
    return TEST_PAGE if vip == VIP4 else f"http://[{vip}]/test/test.html"


def client_host(lab: Lab) -> Host:
    return lab.add_host("client", "198.51.100.50/24", "2001:db8::50/64")


# -- 1a. classic VRRPv2, PASS auth, advert_int 1 ------------------------------------------------


@pytest.mark.parametrize(("kind_a", "kind_b"), BOTH_WAYS)
def test_v2_sigterm_failover_and_preemption(lab: Lab, tmp_path: Path, kind_a: str, kind_b: str) -> None:
    a, b, nodes = pair(lab, tmp_path, kind_a, kind_b)
    client = client_host(lab)
    settle(a, b)
    with ClientPoller(client) as poller:
        assert poller.wait_for(A_ADDR, timeout=3), "client never reached A through the VIP"
        since = time.monotonic()
        assert a.stop() == 0, "SIGTERM exits 0"
        assert b.wait_state("MASTER", timeout=3), b.current_log()
        assert poller.wait_for(B_ADDR, timeout=2), "client did not follow the VIP to B"
        outage = poller.outage(since, B_ADDR)
        bound = skew(90, 1) + MARGIN
        assert outage is not None and outage <= bound, f"client outage {outage} s, bound {bound:.3f} s"
        assert vip_holders_become(nodes, ["b"]), f"A released the VIP on SIGTERM: {vip_holders(nodes)}"

        a.start()
        settle(a, b)
        assert poller.wait_for(A_ADDR, timeout=3), "client did not come back to A after preemption"
        assert vip_holders_become(nodes, ["a"]), vip_holders(nodes)


@pytest.mark.parametrize(("kind_a", "kind_b"), BOTH_WAYS)
def test_v2_link_down_failover_and_preemption(lab: Lab, tmp_path: Path, kind_a: str, kind_b: str) -> None:
    a, b, nodes = pair(lab, tmp_path, kind_a, kind_b)
    client = client_host(lab)
    settle(a, b)
    with ClientPoller(client) as poller:
        assert poller.wait_for(A_ADDR, timeout=3)
        since = time.monotonic()
        lab.link_down(a.host)
        assert poller.wait_for(B_ADDR, timeout=6), b.current_log()
        took = time.monotonic() - since
        bound = master_down(90, 1) + MARGIN
        assert took <= bound, f"B served the VIP after {took:.3f} s, bound {bound:.3f} s"
        assert b.state() == "MASTER"
        assert a.wait_state("FAULT", timeout=2), a.current_log()

        lab.link_up(a.host)
        settle(a, b)
        assert poller.wait_for(A_ADDR, timeout=3), "client did not come back to A after link up"
        assert vip_holders_become(nodes, ["a"]), vip_holders(nodes)


# -- 1b/1c. VRRPv3 ------------------------------------------------------------------------------

V3_CASES = [
    pytest.param(0.1, VIP4, "24", id="ipv4-0.1s"),
    pytest.param(1.0, VIP6, "64", id="ipv6-1s"),
]


@pytest.mark.parametrize(("kind_a", "kind_b"), BOTH_WAYS)
@pytest.mark.parametrize(("advert_int", "vip", "prefix"), V3_CASES)
def test_v3_sigterm_failover_and_preemption(
    lab: Lab, tmp_path: Path, kind_a: str, kind_b: str, advert_int: float, vip: str, prefix: str
) -> None:
    a, b, nodes = pair(lab, tmp_path, kind_a, kind_b, version=3, advert_int=advert_int, vips=(f"{vip}/{prefix}",))
    client = client_host(lab)
    settle(a, b)
    with ClientPoller(client, url=page_url(vip)) as poller:
        assert poller.wait_for(A_ADDR, timeout=3), "client never reached A through the VIP"
        since = time.monotonic()
        a.signal(15)
        assert wait_until(lambda: b.has_vip(vip), timeout=5, interval=0.005), b.current_log()
        took = time.monotonic() - since
        bound = skew(90, advert_int) + MARGIN
        assert took <= bound, f"B took the VIP after {took:.3f} s, bound {bound:.3f} s"
        assert a.proc is not None and a.proc.wait(3) == 0
        assert poller.wait_for(B_ADDR, timeout=2), "client did not follow the VIP to B"
        assert vip_holders_become(nodes, ["b"], vip), vip_holders(nodes, vip)

        a.start()
        settle(a, b)
        assert poller.wait_for(A_ADDR, timeout=3), "client did not come back to A after preemption"
        assert vip_holders_become(nodes, ["a"], vip), vip_holders(nodes, vip)


def keepalived_supports(host: Host, workdir: Path, instance_keyword: str) -> bool:
    """Whether this keepalived knows ``instance_keyword`` inside vrrp_instance (its config test says so)."""
    path = workdir / "probe.conf"
    path.write_text(keepalived_conf(priority=90, version=3, extra=f"    {instance_keyword}\n"))
    result = host.run("keepalived", "--config-test", "-f", str(path), check=False)
    return f"Unknown keyword '{instance_keyword}'" not in result.stdout + result.stderr


@pytest.mark.parametrize(("kind_a", "kind_b"), BOTH_WAYS)
def test_v3_checksum_as_v2_failover(lab: Lab, tmp_path: Path, kind_a: str, kind_b: str) -> None:
    """Both sides leave the pseudo-header out of the VRRPv3 IPv4 checksum (Cisco's reading of RFC 5798)."""
    probe = lab.add_host("probe", "198.51.100.99/24")
    if not keepalived_supports(probe, tmp_path, "v3_checksum_as_v2"):
        pytest.skip("this keepalived has no v3_checksum_as_v2 (it appeared in keepalived 2.2.8)")
    as_v2 = {"keepalived": "    v3_checksum_as_v2\n", "hafm": "v3_checksum_as_v2 = true\n"}
    a, b, nodes = pair(
        lab, tmp_path, kind_a, kind_b, a={"extra": as_v2[kind_a]}, b={"extra": as_v2[kind_b]}, version=3, advert_int=0.1
    )
    settle(a, b)
    assert not wait_until(lambda: b.state() != "BACKUP", timeout=1.0), b.current_log()
    a.signal(15)
    assert wait_until(lambda: b.has_vip(VIP4), timeout=3, interval=0.005), b.current_log()
    assert a.proc is not None and a.proc.wait(3) == 0
    a.start()
    settle(a, b)
    assert vip_holders_become(nodes, ["a"]), vip_holders(nodes)


def test_v3_checksum_mismatch_is_detected(lab: Lab, tmp_path: Path) -> None:
    """hafm with v3_checksum_as_v2 and keepalived 2.2.7 (RFC pseudo-header checksum) don't understand each
    other: each drops the other's adverts as a bad checksum, so both end up Master. This shows the option
    really changes the wire format, and that hafm reports the mismatch instead of acting on the adverts."""
    a, b, _ = pair(
        lab, tmp_path, "hafm", "keepalived", version=3, advert_int=0.1, a={"extra": "v3_checksum_as_v2 = true\n"}
    )
    assert a.wait_state("MASTER"), a.current_log()
    assert b.wait_state("MASTER", timeout=3), "keepalived accepted hafm's as-v2 checksum"
    assert wait_until(lambda: f"dropped advert from {B_ADDR}: bad_checksum" in a.current_log(), timeout=2), (
        a.current_log()
    )
    assert "Invalid VRRPv3 checksum" in b.current_log(), b.current_log()
    assert "MASTER -> BACKUP" not in a.current_log()


# -- 1d. unicast --------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind_a", "kind_b"), BOTH_WAYS)
@pytest.mark.parametrize(
    ("version", "advert_int"),
    # v3 over IPv4 puts the unicast destination, not 224.0.0.18, in the checksum's pseudo-header.
    [pytest.param(2, 1.0, id="v2"), pytest.param(3, 0.1, id="v3-0.1s")],
)
def test_unicast_failover_without_multicast(
    lab: Lab, tmp_path: Path, kind_a: str, kind_b: str, version: int, advert_int: float
) -> None:
    lab.drop_multicast_vrrp()
    a, b, nodes = pair(
        lab,
        tmp_path,
        kind_a,
        kind_b,
        a={"extra": unicast(kind_a, A_ADDR, B_ADDR)},
        b={"extra": unicast(kind_b, B_ADDR, A_ADDR)},
        version=version,
        advert_int=advert_int,
    )
    settle(a, b)
    assert vip_holders_become(nodes, ["a"]), vip_holders(nodes)
    since = time.monotonic()
    a.signal(15)  # not stop(): keepalived takes about a second to exit after its priority-0 advert
    assert wait_until(lambda: b.has_vip(VIP4), timeout=3, interval=0.005), b.current_log()
    took = time.monotonic() - since
    bound = skew(90, advert_int) + MARGIN
    assert took <= bound, f"{took:.3f} s (bound {bound:.3f} s): the priority-0 advert did not arrive by unicast"
    assert a.proc is not None and a.proc.wait(3) == 0
    a.start()
    settle(a, b)
    assert vip_holders_become(nodes, ["a"]), vip_holders(nodes)
    for node in (a, b):
        assert "checksum" not in node.current_log().lower(), node.current_log()


# -- 1e. wrong password on the keepalived side -------------------------------------------------


def hafm_holds_vip_throughout(node: DaemonNode, seconds: float) -> None:
    """The VIP never leaves ``node`` and it never leaves MASTER during ``seconds``."""
    transitions = node.transitions()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert node.has_vip(VIP4), f"VIP left hafm:\n{node.current_log()}"
        time.sleep(0.05)
    assert node.transitions() == transitions, node.current_log()
    assert node.state() == "MASTER"


def test_wrong_password_lower_priority_peer_does_not_disturb_hafm_master(lab: Lab, tmp_path: Path) -> None:
    a, b, _ = pair(lab, tmp_path, "hafm", "keepalived", b={"auth_pass": "2222"})
    assert a.wait_state("MASTER"), a.current_log()
    # keepalived drops hafm's adverts too, so it claims Master after its Master_Down_Interval.
    deadline = time.monotonic() + master_down(90, 1) + 1.5
    hafm_holds_vip_throughout(a, deadline - time.monotonic())
    assert b.state() == "MASTER", "keepalived with the wrong password should claim master too"
    assert f"VI_1: dropped advert from {B_ADDR}: auth_failure" in a.current_log(), a.current_log()
    hafm_holds_vip_throughout(a, 1.0)


def test_wrong_password_higher_priority_peer_is_ignored_by_hafm_backup(lab: Lab, tmp_path: Path) -> None:
    a, b, _ = pair(lab, tmp_path, "keepalived", "hafm", a={"auth_pass": "2222"})
    assert a.wait_state("MASTER"), a.current_log()
    # hafm never hears a valid advert: it takes over after its Master_Down_Interval and keeps the VIP.
    assert b.wait_state("MASTER", timeout=master_down(90, 1) + 2), b.current_log()
    assert f"VI_1: dropped advert from {A_ADDR}: auth_failure" in b.current_log(), b.current_log()
    hafm_holds_vip_throughout(b, 3.0)
    assert "MASTER -> BACKUP" not in b.current_log()
    assert a.state() == "MASTER", "keepalived was disturbed by hafm's adverts"


# -- 1f. equal priorities: the higher primary address wins --------------------------------------


@pytest.mark.parametrize(("kind_a", "kind_b"), BOTH_WAYS)
def test_equal_priority_higher_address_wins(lab: Lab, tmp_path: Path, kind_a: str, kind_b: str) -> None:
    """Both 100; partitioned, both become Master; once they hear each other, B (.2, higher) must win."""
    equal = {"priority": 100, "state": "MASTER"}
    a, b, nodes = pair(lab, tmp_path, kind_a, kind_b, a=equal, b=equal, start=False)
    lab.isolate(a.host, b.host)
    a.start()
    b.start()
    assert a.wait_state("MASTER"), a.current_log()
    assert b.wait_state("MASTER"), b.current_log()
    lab.isolate(a.host, b.host, on=False)
    assert a.wait_state("BACKUP", timeout=4), a.current_log()
    assert vip_holders_become(nodes, ["b"], timeout=3), vip_holders(nodes)
    yielded = {
        "keepalived": f"Master received advert from {B_ADDR} with same priority 100 but higher IP address than ours",
        "hafm": f"MASTER -> BACKUP (equal priority advert from higher address {B_ADDR} prio 100)",
    }
    assert yielded[kind_a] in a.current_log(), a.current_log()
    assert b.state() == "MASTER" and b.transitions().count("MASTER") == 1, b.current_log()
