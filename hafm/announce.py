"""Gratuitous ARP (IPv4) and unsolicited Neighbor Advertisements (IPv6) for VIPs.

Frames are built with scapy once per (VIP, MAC) and cached as bytes, and sent
through one AF_PACKET socket per interface.  scapy's layers are imported
lazily, the first time a frame is built, so a daemon that never becomes
Master never pays for them.
"""

from __future__ import annotations

import logging
import socket
from functools import cache

from hafm.config_model import Vip

log = logging.getLogger(__name__)

ETH_P_ALL = 0x0003
BROADCAST_MAC = "ff:ff:ff:ff:ff:ff"
ALL_NODES_MAC = "33:33:00:00:00:01"
ALL_NODES = "ff02::1"


@cache
def gratuitous_arp(address: str, mac: str) -> bytes:
    """An ARP request for ``address`` from ``address`` (RFC 5798 §6.4.2 / RFC 5227 announcement)."""
    from scapy.layers.l2 import ARP, Ether

    frame = Ether(src=mac, dst=BROADCAST_MAC) / ARP(
        op=1, hwsrc=mac, psrc=address, hwdst="00:00:00:00:00:00", pdst=address
    )
    return bytes(frame)


@cache
def unsolicited_na(address: str, mac: str) -> bytes:
    """An unsolicited Neighbor Advertisement: R=1, S=0, O=1, target = the VIP (RFC 5798 §6.4.2)."""
    from scapy.layers.inet6 import ICMPv6ND_NA, ICMPv6NDOptDstLLAddr, IPv6
    from scapy.layers.l2 import Ether

    frame = (
        Ether(src=mac, dst=ALL_NODES_MAC)
        / IPv6(src=address, dst=ALL_NODES, hlim=255)
        / ICMPv6ND_NA(R=1, S=0, O=1, tgt=address)
        / ICMPv6NDOptDstLLAddr(lladdr=mac)
    )
    return bytes(frame)


def frame_for(vip: Vip, mac: str) -> bytes:
    address = str(vip.address.ip)
    return gratuitous_arp(address, mac) if vip.address.version == 4 else unsolicited_na(address, mac)


class Announcer:
    """Sends the announcement frames for VIPs on one interface."""

    def __init__(self, interface: str, mac: str) -> None:
        self.interface = interface
        self.mac = mac
        self._sock: socket.socket | None = None

    def prepare(self, vips: tuple[Vip, ...]) -> None:
        """Build and cache the frames now, so becoming Master costs only the send."""
        for vip in vips:
            frame_for(vip, self.mac)

    def send(self, vips: tuple[Vip, ...], repeat: int) -> None:
        if self._sock is None:
            self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
            self._sock.bind((self.interface, 0))
        for _ in range(max(repeat, 1)):
            for vip in vips:
                try:
                    self._sock.send(frame_for(vip, self.mac))
                except OSError as exc:
                    log.debug("%s: gratuitous announcement for %s failed: %s", self.interface, vip.address, exc)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
