"""The classic two-Tomcat setup: A (100, MASTER) and B (90, BACKUP), VRRPv2, PASS auth, VRID 51."""

import time
from pathlib import Path

from scapy.layers.l2 import ARP, Ether
from scapy.utils import rdpcap

from hafm.lab.network import Lab
from hafm.lab.nodes import VIP4, start_classic_pair, vip_holders, vip_holders_become, wait_for_page

SKEW_B = (256 - 90) / 256
MARGIN = 0.2


def test_sigterm_master_backup_takes_over_and_client_follows(lab: Lab, tmp_path: Path) -> None:
    a, b, nodes = start_classic_pair(lab, tmp_path)
    client = lab.add_host("client", "198.51.100.50/24")
    assert a.wait_state("MASTER"), a.log
    assert b.wait_state("BACKUP"), b.log
    assert wait_for_page(client, "from server 198.51.100.1", timeout=3) is not None
    assert vip_holders_become(nodes, ["a"]), vip_holders(nodes)

    sniffer = client.sniff(bpf_filter="arp")
    stopped = time.monotonic()
    assert a.stop() == 0, "SIGTERM exits 0"
    exit_took = time.monotonic() - stopped
    assert exit_took < 1.0, f"hafm took {exit_took:.2f} s to exit on SIGTERM"
    # A request that left for A's MAC just before B's gratuitous ARP hangs for its timeout: keep it short.
    assert wait_for_page(client, "from server 198.51.100.2", timeout=5, request_timeout=0.05) is not None, b.log
    outage = time.monotonic() - stopped
    assert outage <= SKEW_B + MARGIN, f"client saw B after {outage:.3f} s, bound {SKEW_B + MARGIN:.3f} s"
    assert vip_holders_become(nodes, ["b"]), f"A released the VIP on SIGTERM: {vip_holders(nodes)}"
    assert "BACKUP -> MASTER (master 198.51.100.1 resigned (priority 0 advert))" in b.current_log()
    assert client.neighbour_mac(VIP4) == b.host.mac

    # The gratuitous ARP that moved the client, with the fields RFC 5798 §6.4.2 asks for.
    frames = [f for f in rdpcap(str(sniffer.stop())) if f.haslayer(ARP) and f[ARP].psrc == VIP4]
    assert frames, "no gratuitous ARP seen"
    garp = frames[0]
    assert garp[Ether].dst == "ff:ff:ff:ff:ff:ff"
    assert garp[Ether].src == b.host.mac
    assert garp[ARP].op == 1
    assert garp[ARP].pdst == VIP4
    assert garp[ARP].hwsrc == b.host.mac

    # A comes back: it preempts, and only A holds the VIP.
    a.start()
    assert a.wait_state("MASTER"), a.log
    assert b.wait_state("BACKUP"), b.log
    assert wait_for_page(client, "from server 198.51.100.1", timeout=3) is not None
    assert vip_holders_become(nodes, ["a"]), vip_holders(nodes)
    assert "higher priority advert from 198.51.100.1 prio 100" in b.current_log()
