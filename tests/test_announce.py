"""Announcement frames: what the child process builds is what scapy reads as an RFC 5798 announcement."""

import asyncio

from scapy.layers.inet6 import ICMPv6ND_NA, ICMPv6NDOptDstLLAddr, IPv6
from scapy.layers.l2 import ARP, Ether

from hafm.shell.announce import build_frame, build_frames

MAC = "02:00:5e:00:01:33"


def test_child_process_builds_the_same_frames() -> None:
    frames = asyncio.run(build_frames(MAC, ["198.51.100.100", "2001:db8::100"]))
    assert frames == {a: build_frame(a, MAC) for a in ("198.51.100.100", "2001:db8::100")}


def test_gratuitous_arp_fields() -> None:
    frame = Ether(build_frame("198.51.100.100", MAC))
    assert (frame.dst, frame.src, frame.type) == ("ff:ff:ff:ff:ff:ff", MAC, 0x0806)
    arp = frame[ARP]
    assert (arp.op, arp.hwsrc, arp.hwdst) == (1, MAC, "00:00:00:00:00:00")
    assert arp.psrc == arp.pdst == "198.51.100.100"


def test_unsolicited_na_fields() -> None:
    frame = Ether(build_frame("2001:db8::100", MAC))
    assert (frame.dst, frame.src) == ("33:33:00:00:00:01", MAC)
    assert (frame[IPv6].dst, frame[IPv6].hlim) == ("ff02::1", 255)
    na = frame[ICMPv6ND_NA]
    assert (na.R, na.S, na.O, na.tgt) == (1, 0, 1, "2001:db8::100")
    assert frame[ICMPv6NDOptDstLLAddr].lladdr == MAC
