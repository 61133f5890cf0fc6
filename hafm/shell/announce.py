"""Gratuitous ARP (IPv4) and unsolicited Neighbor Advertisements (IPv6) for VIPs.

Both are fixed layouts, so they are packed here with :mod:`struct` (a few
microseconds per VIP) and sent as cached bytes through one send-only AF_PACKET
socket per interface.  scapy would cost ~45 MiB and ~0.3 s to import, which is
why an earlier version built them in a child process at start-up;
``tests/test_announce.py`` keeps scapy as the oracle, byte for byte.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import struct

from hafm.config.model import Vip
from hafm.vrrp.codec import checksum

__all__ = ["Announcer", "build_frame", "gratuitous_arp", "unsolicited_na"]

log = logging.getLogger(__name__)

BROADCAST_MAC = b"\xff" * 6
ALL_NODES_MAC = b"\x33\x33\x00\x00\x00\x01"
ALL_NODES = ipaddress.IPv6Address("ff02::1")
ETH_P_IP, ETH_P_ARP, ETH_P_IPV6 = 0x0800, 0x0806, 0x86DD
ARP_REQUEST = 1
ARPHRD_ETHER = 1
IPPROTO_ICMPV6 = 58
ND_NEIGHBOR_ADVERT = 136
NA_ROUTER, NA_OVERRIDE = 0x80000000, 0x20000000  # RFC 4861 §4.4 flags (S, solicited, stays 0)
ND_OPT_TARGET_LL_ADDR = 2


def _mac(mac: str) -> bytes:
    packed = bytes.fromhex(mac.replace(":", ""))
    if len(packed) != 6:
        raise ValueError(f"{mac!r} is not an Ethernet address")
    return packed


def gratuitous_arp(address: str, mac: str) -> bytes:
    """An ARP request for ``address`` from ``address`` (RFC 5798 §6.4.2 / RFC 5227 announcement)."""
    hw, ip = _mac(mac), ipaddress.IPv4Address(address).packed
    ether = BROADCAST_MAC + hw + struct.pack("!H", ETH_P_ARP)
    arp = struct.pack("!HHBBH", ARPHRD_ETHER, ETH_P_IP, 6, 4, ARP_REQUEST) + hw + ip + b"\0" * 6 + ip
    return ether + arp


def unsolicited_na(address: str, mac: str) -> bytes:
    """An unsolicited Neighbor Advertisement: R=1, S=0, O=1, target = the VIP (RFC 5798 §6.4.2),
    with the target link-layer address option, from the VIP to all nodes, hop limit 255."""
    hw, source = _mac(mac), ipaddress.IPv6Address(address).packed
    option = struct.pack("!BB", ND_OPT_TARGET_LL_ADDR, 1) + hw  # length in units of 8 octets
    body = struct.pack("!I", NA_ROUTER | NA_OVERRIDE) + source + option
    # RFC 4443 §2.3: the checksum covers the RFC 8200 §8.1 pseudo-header.
    length = 4 + len(body)
    pseudo = source + ALL_NODES.packed + struct.pack("!I3xB", length, IPPROTO_ICMPV6)
    value = checksum(pseudo + struct.pack("!BBH", ND_NEIGHBOR_ADVERT, 0, 0) + body)
    icmp = struct.pack("!BBH", ND_NEIGHBOR_ADVERT, 0, value) + body
    ipv6 = struct.pack("!IHBB", 6 << 28, length, IPPROTO_ICMPV6, 255) + source + ALL_NODES.packed
    return ALL_NODES_MAC + hw + struct.pack("!H", ETH_P_IPV6) + ipv6 + icmp


def build_frame(address: str, mac: str) -> bytes:
    """The announcement frame for one VIP address (either family) from ``mac``."""
    return unsolicited_na(address, mac) if ":" in address else gratuitous_arp(address, mac)


class Announcer:
    """Sends the announcement frames for VIPs on one interface."""

    def __init__(self, interface: str, mac: str) -> None:
        self.interface = interface
        self.mac = mac
        self.frames: dict[str, bytes] = {}
        self._sock: socket.socket | None = None

    async def prepare(self, vips: tuple[Vip, ...]) -> None:
        """Build the frames and open the socket now, so becoming Master costs only the send.

        Protocol 0: a send-only packet socket.  ETH_P_ALL would also receive a copy of
        every frame on the interface, and its bind() waits for an RCU grace period (~15 ms).
        (A coroutine for the daemon's sake: it was one while a child process built the frames.)
        """
        for vip in vips:
            address = str(vip.address.ip)
            if address not in self.frames:
                self.frames[address] = build_frame(address, self.mac)
        if self._sock is None:
            self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
            self._sock.bind((self.interface, 0))

    def send(self, vips: tuple[Vip, ...], repeat: int) -> None:
        assert self._sock is not None, "Announcer.prepare() first"
        for _ in range(max(repeat, 1)):
            for vip in vips:
                address = str(vip.address.ip)
                frame = self.frames.get(address) or self.frames.setdefault(address, build_frame(address, self.mac))
                try:
                    self._sock.send(frame)
                except OSError as exc:
                    log.debug("%s: gratuitous announcement for %s failed: %s", self.interface, address, exc)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
