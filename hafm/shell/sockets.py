"""Raw IPPROTO_VRRP sockets: one per (interface, address family), shared by the instances on it.

IPv4 raw sockets deliver the IP header (TTL and destination come from it);
IPv6 raw sockets don't, so the hop limit and destination arrive as ancillary
data (IPV6_RECVHOPLIMIT, IPV6_RECVPKTINFO).  The source address of what we
send is pinned with IP_PKTINFO / IPV6_PKTINFO so a VIP never becomes the
advert's source.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import struct
from dataclasses import dataclass

from hafm.config.model import IPAddress
from hafm.errors import MalformedAdvert
from hafm.vrrp.codec import IPPROTO_VRRP, parse_ipv4_packet

log = logging.getLogger(__name__)

VRRP_GROUP_V4 = ipaddress.IPv4Address("224.0.0.18")
VRRP_GROUP_V6 = ipaddress.IPv6Address("ff02::12")
VRRP_TTL = 255
_RECV_BUFFER = 65535
_ANCILLARY_BUFFER = socket.CMSG_SPACE(64) * 2
IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)  # missing from Python < 3.13 on Linux


@dataclass(frozen=True, kw_only=True)
class Received:
    """One packet off the wire: the VRRP payload and what the IP layer said about it."""

    payload: bytes
    source: IPAddress
    destination: IPAddress
    ttl: int


class VrrpSocket:
    """A non-blocking raw VRRP socket bound to one interface."""

    def __init__(self, *, interface: str, index: int, family: int) -> None:
        self.interface = interface
        self.index = index
        self.family = family
        af = socket.AF_INET if family == 4 else socket.AF_INET6
        self.sock = socket.socket(af, socket.SOCK_RAW, IPPROTO_VRRP)
        try:
            self._configure()
        except OSError:
            self.sock.close()
            raise

    def _configure(self) -> None:
        s = self.sock
        s.setblocking(False)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, self.interface.encode())
        if self.family == 4:
            s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, VRRP_TTL)
            s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, VRRP_TTL)
            s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
            mreqn = struct.pack("@4s4si", VRRP_GROUP_V4.packed, b"\0" * 4, self.index)
            s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, mreqn)
            s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)
        else:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, VRRP_TTL)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, VRRP_TTL)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, self.index)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
            mreq = struct.pack("@16sI", VRRP_GROUP_V6.packed, self.index)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        self.sock.close()

    @property
    def multicast_group(self) -> IPAddress:
        return VRRP_GROUP_V4 if self.family == 4 else VRRP_GROUP_V6

    def send(self, payload: bytes, *, source: IPAddress, destination: IPAddress) -> None:
        """Send one VRRP message from ``source``; raises OSError (e.g. link down) for the caller to count."""
        if self.family == 4:
            pktinfo = struct.pack("@I4s4s", self.index, source.packed, b"\0" * 4)
            cmsg = [(socket.IPPROTO_IP, IP_PKTINFO, pktinfo)]
            self.sock.sendmsg([payload], cmsg, 0, (str(destination), 0))
        else:
            pktinfo6 = struct.pack("@16sI", source.packed, self.index)
            cmsg = [(socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, pktinfo6)]
            self.sock.sendmsg([payload], cmsg, 0, (str(destination), 0, 0, self.index))

    def receive(self, limit: int) -> list[Received | MalformedAdvert]:
        """Read up to ``limit`` packets; a packet whose IP header is garbage comes back as the error."""
        packets: list[Received | MalformedAdvert] = []
        for _ in range(limit):
            try:
                data, ancillary, _flags, address = self.sock.recvmsg(_RECV_BUFFER, _ANCILLARY_BUFFER)
            except (BlockingIOError, InterruptedError):
                break
            try:
                packets.append(self._parse(data, ancillary, address))
            except MalformedAdvert as exc:
                packets.append(exc)
        return packets

    def _parse(self, data: bytes, ancillary: list[tuple[int, int, bytes]], address: tuple) -> Received:
        if self.family == 4:
            src4, dst4, ttl, _proto, payload = parse_ipv4_packet(data)
            return Received(payload=payload, source=src4, destination=dst4, ttl=ttl)
        source = ipaddress.IPv6Address(address[0].split("%")[0])
        destination: IPAddress = VRRP_GROUP_V6
        hop_limit = -1
        for level, kind, value in ancillary:
            if level != socket.IPPROTO_IPV6:
                continue
            if kind == socket.IPV6_HOPLIMIT:
                hop_limit = struct.unpack("@i", value[:4])[0]
            elif kind == socket.IPV6_PKTINFO:
                destination = ipaddress.IPv6Address(value[:16])
        return Received(payload=data, source=source, destination=destination, ttl=hop_limit)
