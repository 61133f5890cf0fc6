"""Announcement frames: hafm packs them by hand, scapy (the oracle) builds the same bytes."""

from __future__ import annotations

import subprocess
import sys

import pytest
from scapy.layers.inet6 import ICMPv6ND_NA, ICMPv6NDOptDstLLAddr, IPv6, in6_chksum
from scapy.layers.l2 import ARP, Ether

from hafm.shell.announce import build_frame, gratuitous_arp, unsolicited_na

MACS = ["02:00:5e:00:01:33", "00:00:5e:00:01:01", "fe:ff:ff:ff:ff:fe", "0a:1b:2c:3d:4e:5f"]
IPV4 = ["198.51.100.100", "203.0.113.1", "198.51.100.255", "203.0.113.254"]
IPV6 = ["2001:db8::100", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "2001:db8::1", "fe80::200:5eff:fe00:101"]


def scapy_arp(address: str, mac: str) -> bytes:
    return bytes(
        Ether(src=mac, dst="ff:ff:ff:ff:ff:ff")
        / ARP(op=1, hwsrc=mac, psrc=address, hwdst="00:00:00:00:00:00", pdst=address)
    )


def scapy_na(address: str, mac: str) -> bytes:
    return bytes(
        Ether(src=mac, dst="33:33:00:00:00:01")
        / IPv6(src=address, dst="ff02::1", hlim=255)
        / ICMPv6ND_NA(R=1, S=0, O=1, tgt=address)
        / ICMPv6NDOptDstLLAddr(lladdr=mac)
    )


@pytest.mark.parametrize("mac", MACS)
@pytest.mark.parametrize("address", IPV4)
def test_gratuitous_arp_is_scapys_byte_for_byte(address: str, mac: str) -> None:
    assert gratuitous_arp(address, mac) == scapy_arp(address, mac)
    assert build_frame(address, mac) == scapy_arp(address, mac)


@pytest.mark.parametrize("mac", MACS)
@pytest.mark.parametrize("address", IPV6)
def test_unsolicited_na_is_scapys_byte_for_byte(address: str, mac: str) -> None:
    assert unsolicited_na(address, mac) == scapy_na(address, mac)
    assert build_frame(address, mac) == scapy_na(address, mac)


def test_na_checksum_verifies() -> None:
    frame = Ether(unsolicited_na("2001:db8::100", MACS[0]))
    na = frame[ICMPv6ND_NA]
    assert in6_chksum(58, frame[IPv6], bytes(na)) == 0


def test_gratuitous_arp_fields() -> None:
    mac = MACS[0]
    frame = Ether(build_frame("198.51.100.100", mac))
    assert (frame.dst, frame.src, frame.type) == ("ff:ff:ff:ff:ff:ff", mac, 0x0806)
    arp = frame[ARP]
    assert (arp.op, arp.hwsrc, arp.hwdst) == (1, mac, "00:00:00:00:00:00")
    assert arp.psrc == arp.pdst == "198.51.100.100"


def test_unsolicited_na_fields() -> None:
    mac = MACS[0]
    frame = Ether(build_frame("2001:db8::100", mac))
    assert (frame.dst, frame.src) == ("33:33:00:00:00:01", mac)
    assert (frame[IPv6].dst, frame[IPv6].hlim) == ("ff02::1", 255)
    na = frame[ICMPv6ND_NA]
    assert (na.R, na.S, na.O, na.tgt) == (1, 0, 1, "2001:db8::100")
    assert frame[ICMPv6NDOptDstLLAddr].lladdr == mac


def test_bad_mac_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="not an Ethernet address"):
        build_frame("198.51.100.1", "02:00:00:00:00")


def test_the_daemon_side_never_imports_scapy() -> None:
    code = "import sys, hafm.shell.announce as a; a.build_frame('2001:db8::1', '02:00:00:00:00:01'); "
    code += "print(any(m.startswith('scapy') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
