"""What hafm puts on the wire, field by field, as another host on the LAN captures it.

One hafm node per case becomes Master, advertises a few times and is stopped with SIGTERM
while a second host runs tcpdump. The capture is read back with scapy and checked against
RFC 3768 (VRRPv2) / RFC 5798 (VRRPv3) §5 and §6.4.2 (gratuitous ARP, unsolicited NA);
checksums are recomputed by scapy, and tcpdump (and tshark, where installed) dissect the
same capture independently.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from scapy.layers.inet import IP
from scapy.layers.inet6 import ICMPv6ND_NA, ICMPv6NDOptDstLLAddr, IPv6
from scapy.layers.l2 import ARP, Ether
from scapy.layers.vrrp import VRRP, VRRPv3
from scapy.packet import Packet
from scapy.utils import checksum, rdpcap

from hafm.lab.network import Lab
from hafm.lab.nodes import VIP4, VIP6, HafmNode, instance_toml
from tests.integration.conftest import unique_lab_prefix

NODE_ADDR = "198.51.100.1"
VRID = 51


@dataclass(frozen=True, kw_only=True)
class Case:
    version: int
    advert_int: float
    vip: str
    prefix: int
    as_v2: bool = False  # hafm's v3_checksum_as_v2

    @property
    def ipv6(self) -> bool:
        return ":" in self.vip


CASES = {
    "v2-ipv4": Case(version=2, advert_int=1, vip=VIP4, prefix=24),
    "v3-ipv4": Case(version=3, advert_int=0.1, vip=VIP4, prefix=24),
    "v3-ipv4-checksum-as-v2": Case(version=3, advert_int=0.1, vip=VIP4, prefix=24, as_v2=True),
    "v3-ipv6": Case(version=3, advert_int=1, vip=VIP6, prefix=64),
}


@dataclass(frozen=True, kw_only=True)
class Capture:
    case: Case
    pcap: Path
    frames: list[Packet]
    mac: str  # the node's eth0
    link_local: str
    log: str

    def adverts(self) -> list[Packet]:
        layer = IPv6 if self.case.ipv6 else IP
        return [f for f in self.frames if f.haslayer(layer) and f.haslayer(VRRP if self.case.version == 2 else VRRPv3)]

    def vrrp(self, frame: Packet) -> Packet:
        return frame[VRRP] if self.case.version == 2 else frame[VRRPv3]


@pytest.fixture(scope="module", params=list(CASES), ids=list(CASES))
def capture(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Capture]:
    """hafm Master for a few adverts, then SIGTERM, seen from another host."""
    case = CASES[request.param]
    workdir = tmp_path_factory.mktemp(request.param)
    with Lab(prefix=unique_lab_prefix(), workdir=workdir / "lab") as lab:
        host = lab.add_host("node", f"{NODE_ADDR}/24", "2001:db8::1/64")
        watcher = lab.add_host("watch", "198.51.100.50/24", "2001:db8::50/64")
        extra = "v3_checksum_as_v2 = true\n" if case.as_v2 else ""
        config = instance_toml(
            priority=100,
            state="MASTER",
            version=case.version,
            advert_int=case.advert_int,
            vips=(f"{case.vip}/{case.prefix}",),
            extra=extra,
        )
        node = HafmNode(host=host, config=config, workdir=workdir / "daemons")
        sniffer = watcher.sniff(bpf_filter="arp or icmp6 or ip proto 112 or ip6 proto 112")
        node.start()
        assert node.wait_state("MASTER"), node.log
        time.sleep(4 * case.advert_int + 0.1)  # a few regular adverts
        assert node.stop() == 0
        time.sleep(0.2)
        pcap = sniffer.stop()
        link_local = next(a.split("/")[0] for a in host.addresses() if a.startswith("fe80:"))
        yield Capture(
            case=case, pcap=pcap, frames=list(rdpcap(str(pcap))), mac=host.mac, link_local=link_local, log=node.log
        )


def test_adverts_go_to_the_vrrp_group_with_ttl_255(capture: Capture) -> None:
    adverts = capture.adverts()
    assert len(adverts) >= 3, capture.log
    for frame in adverts:
        assert frame[Ether].src == capture.mac
        if capture.case.ipv6:
            assert frame[Ether].dst == "33:33:00:00:00:12"
            assert frame[IPv6].dst == "ff02::12"
            assert frame[IPv6].src == capture.link_local, "VRRPv3 over IPv6 is sent from the link-local address"
            assert frame[IPv6].hlim == 255
            assert frame[IPv6].nh == 112
        else:
            assert frame[Ether].dst == "01:00:5e:00:00:12"
            assert frame[IP].dst == "224.0.0.18"
            assert frame[IP].src == NODE_ADDR
            assert frame[IP].ttl == 255
            assert frame[IP].proto == 112


def test_advert_fields(capture: Capture) -> None:
    case = capture.case
    regular = capture.adverts()[:-1]  # the last one is the priority-0 advert
    assert regular
    for frame in regular:
        vrrp = capture.vrrp(frame)
        assert vrrp.version == case.version
        assert vrrp.type == 1  # ADVERTISEMENT
        assert vrrp.vrid == VRID
        assert vrrp.priority == 100
        assert vrrp.ipcount == 1
        assert list(vrrp.addrlist) == [case.vip]
        if case.version == 2:
            assert vrrp.adv == 1  # seconds
            assert vrrp.authtype == 1  # simple text password
            auth = vrrp.auth1.to_bytes(4, "big") + vrrp.auth2.to_bytes(4, "big")
            assert auth == b"1111\0\0\0\0"
            assert len(bytes(vrrp)) == 8 + 4 + 8
        else:
            assert vrrp.adv == round(case.advert_int * 100)  # centiseconds
            assert vrrp.res == 0
            assert len(bytes(vrrp)) == 8 + (16 if case.ipv6 else 4)


def test_adverts_keep_the_advertisement_interval(capture: Capture) -> None:
    regular = capture.adverts()[:-1]
    times = [float(frame.time) for frame in regular]
    gaps = [later - earlier for earlier, later in zip(times, times[1:], strict=False)]
    assert len(gaps) >= 2
    interval = capture.case.advert_int
    assert abs(statistics.median(gaps) - interval) <= 0.25 * interval, gaps


def rfc_checksum(frame: Packet, capture: Capture) -> int:
    """The checksum scapy computes itself for this advert (v3: with the IP pseudo-header)."""
    rebuilt = frame.copy()
    del capture.vrrp(rebuilt).chksum
    return int(capture.vrrp(Ether(bytes(rebuilt))).chksum)


def test_advert_checksum(capture: Capture) -> None:
    for frame in capture.adverts():
        vrrp = capture.vrrp(frame)
        if capture.case.as_v2:
            # keepalived's v3_checksum_as_v2: the VRRP message alone, no pseudo-header ...
            message = bytearray(bytes(vrrp))
            message[6:8] = b"\0\0"
            assert vrrp.chksum == checksum(bytes(message))
            # ... which is not what RFC 5798 gives, or this case would prove nothing.
            assert vrrp.chksum != rfc_checksum(frame, capture)
        else:
            assert vrrp.chksum == rfc_checksum(frame, capture)
        if not capture.case.ipv6:
            rebuilt = frame.copy()
            del rebuilt[IP].chksum
            assert frame[IP].chksum == Ether(bytes(rebuilt))[IP].chksum


def test_priority_zero_advert_on_sigterm(capture: Capture) -> None:
    adverts = capture.adverts()
    last = capture.vrrp(adverts[-1])
    assert last.priority == 0, "the last advert before exit must have priority 0"
    assert [capture.vrrp(f).priority for f in adverts].count(0) >= 1
    assert last.vrid == VRID
    assert list(last.addrlist) == [capture.case.vip]
    if not capture.case.as_v2:
        assert last.chksum == rfc_checksum(adverts[-1], capture)


def test_gratuitous_announcement_of_the_vip(capture: Capture) -> None:
    if capture.case.ipv6:
        nas = [f for f in capture.frames if f.haslayer(ICMPv6ND_NA) and f[ICMPv6ND_NA].tgt == VIP6]
        assert nas, "no unsolicited neighbour advertisement for the VIP"
        for frame in nas:
            na = frame[ICMPv6ND_NA]
            assert frame[Ether].src == capture.mac
            assert frame[Ether].dst == "33:33:00:00:00:01"
            assert frame[IPv6].dst == "ff02::1"
            assert frame[IPv6].hlim == 255
            assert na.type == 136
            assert (na.R, na.S, na.O) == (1, 0, 1)
            assert frame[ICMPv6NDOptDstLLAddr].lladdr == capture.mac
            rebuilt = frame.copy()
            del rebuilt[ICMPv6ND_NA].cksum
            assert na.cksum == Ether(bytes(rebuilt))[ICMPv6ND_NA].cksum
    else:
        garps = [f for f in capture.frames if f.haslayer(ARP) and f[ARP].psrc == VIP4]
        assert garps, "no gratuitous ARP for the VIP"
        for frame in garps:
            arp = frame[ARP]
            assert frame[Ether].dst == "ff:ff:ff:ff:ff:ff"
            assert frame[Ether].src == capture.mac
            assert arp.op == 1
            assert arp.pdst == VIP4
            assert arp.hwsrc == capture.mac


def test_tcpdump_dissects_the_capture(capture: Capture) -> None:
    """tcpdump -v verifies VRRP checksums itself (RFC 5798 rule for v3 over IPv4)."""
    out = subprocess.run(
        ["tcpdump", "-r", str(capture.pcap), "-n", "-v"], capture_output=True, text=True, check=True
    ).stdout
    vrrp_lines = [line for line in out.splitlines() if "VRRPv" in line]
    assert len(vrrp_lines) == len(capture.adverts()), out
    assert all(f"vrid {VRID}" in line for line in vrrp_lines), out
    if capture.case.as_v2:
        assert all("bad vrrp cksum" in line for line in vrrp_lines), "tcpdump uses the pseudo-header"
    else:
        assert "bad vrrp cksum" not in out, out
    assert "[|vrrp]" not in out, out


def test_tshark_finds_no_bad_checksum_or_malformed_packet(capture: Capture) -> None:
    tshark = shutil.which("tshark")
    if tshark is None:
        pytest.skip("tshark is not installed: the Wireshark dissector check is not run")
    argv = [tshark, "-r", str(capture.pcap), "-V"]
    if capture.case.as_v2:
        argv += ["-o", "vrrp.v3_checksum_as_in_v2:TRUE"]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    assert "Virtual Router Redundancy Protocol" in out
    lowered = out.lower()
    assert "bad checksum" not in lowered and "incorrect" not in lowered, out
    assert "malformed" not in lowered, out
