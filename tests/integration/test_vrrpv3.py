"""VRRPv3: IPv4 at advert_int 0.1 and IPv6 at 1 s, failover on SIGTERM and on link down within the RFC bounds."""

import time
from pathlib import Path

import pytest

from hafm.lab.network import Lab, wait_until
from hafm.lab.nodes import VIP4, VIP6, DaemonNode, start_classic_pair, vip_holders, vip_holders_become

MARGIN = 0.3


def skew(priority: int, interval: float) -> float:
    return (256 - priority) * interval / 256


def master_down(priority: int, interval: float) -> float:
    return 3 * interval + skew(priority, interval)


Nodes = dict[str, DaemonNode]


def pair(lab: Lab, tmp_path: Path, *, advert_int: float, vip: str) -> tuple[DaemonNode, DaemonNode, Nodes]:
    a, b, nodes = start_classic_pair(lab, tmp_path, version=3, advert_int=advert_int, vips=(vip,))
    assert a.wait_state("MASTER"), a.log
    assert b.wait_state("BACKUP"), b.log
    return a, b, nodes


CASES = [
    pytest.param(0.1, f"{VIP4}/24", VIP4, id="ipv4-0.1s"),
    pytest.param(1.0, f"{VIP6}/64", VIP6, id="ipv6-1s"),
]


@pytest.mark.parametrize(("advert_int", "vip", "address"), CASES)
def test_v3_sigterm(lab: Lab, tmp_path: Path, advert_int: float, vip: str, address: str) -> None:
    a, b, nodes = pair(lab, tmp_path, advert_int=advert_int, vip=vip)
    assert vip_holders_become(nodes, ["a"], address), vip_holders(nodes, address)
    start = time.monotonic()
    a.signal(15)
    assert wait_until(lambda: b.has_vip(address), timeout=5, interval=0.005), b.log
    took = time.monotonic() - start
    assert took <= skew(90, advert_int) + MARGIN, f"{took:.3f} s"
    assert a.proc is not None and a.proc.wait(2) == 0
    assert vip_holders_become(nodes, ["b"], address), vip_holders(nodes, address)


@pytest.mark.parametrize(("advert_int", "vip", "address"), CASES)
def test_v3_link_down(lab: Lab, tmp_path: Path, advert_int: float, vip: str, address: str) -> None:
    a, b, nodes = pair(lab, tmp_path, advert_int=advert_int, vip=vip)
    time.sleep(advert_int * 2)
    start = time.monotonic()
    lab.link_down(a.host)
    assert wait_until(lambda: b.has_vip(address), timeout=8, interval=0.005), b.log
    took = time.monotonic() - start
    assert took <= master_down(90, advert_int) + MARGIN, f"{took:.3f} s"
    assert a.wait_state("FAULT")
    lab.link_up(a.host)
    assert a.wait_state("MASTER"), a.log
    assert vip_holders_become(nodes, ["a"], address, timeout=3), vip_holders(nodes, address)


def test_v3_ipv6_unsolicited_na_moves_the_client(lab: Lab, tmp_path: Path) -> None:
    a, b, nodes = pair(lab, tmp_path, advert_int=1.0, vip=f"{VIP6}/64")
    client = lab.add_host("client", "198.51.100.50/24", "2001:db8::50/64")
    assert client.ping(VIP6)
    assert client.neighbour_mac(VIP6) == a.host.mac
    a.stop()
    assert b.wait_state("MASTER")
    assert wait_until(lambda: client.neighbour_mac(VIP6) == b.host.mac, timeout=2), "unsolicited NA not honoured"


def test_v3_at_ten_milliseconds(lab: Lab, tmp_path: Path) -> None:
    """advert_int 0.01: the Backup never times out while the Master lives, and takes over fast when it dies."""
    a, b, nodes = pair(lab, tmp_path, advert_int=0.01, vip=f"{VIP4}/24")
    assert not wait_until(lambda: b.state() != "BACKUP", timeout=3), "a late advert made B take over"
    start = time.monotonic()
    a.kill()
    assert wait_until(lambda: b.has_vip(VIP4), timeout=3, interval=0.005), b.log
    assert time.monotonic() - start <= master_down(90, 0.01) + MARGIN
