"""Raw IPPROTO_VRRP sockets: one pair per (interface, address family), shared by the instances on it.

The data socket receives every VRRP packet and is read lazily: when a timer is due, before
any other event is handled, and when the doorbell rings.  The doorbell is a second raw socket
whose BPF filter (:mod:`hafm.shell.bpf`) passes only what cannot wait for the next timer: a
priority-0 advert, an advert for a VRID this node does not back, a runt.  A steady Backup
thus wakes about once per Master_Down_Interval instead of once per advert.  Every packet
carries its kernel arrival time (SO_TIMESTAMPNS), so reading it late changes no deadline.
Where the kernel allows eBPF, the data socket's own filter (:mod:`hafm.shell.ebpf`) keeps a
Backup's routine adverts out of it altogether and counts them: :meth:`VrrpSocket.absorbed`.

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
import time
from collections.abc import Iterator
from dataclasses import dataclass

from hafm.config.model import IPAddress
from hafm.errors import MalformedAdvert
from hafm.shell import bpf, ebpf
from hafm.vrrp.codec import IPPROTO_VRRP, parse_ipv4_packet

log = logging.getLogger(__name__)

VRRP_GROUP_V4 = ipaddress.IPv4Address("224.0.0.18")
VRRP_GROUP_V6 = ipaddress.IPv6Address("ff02::12")
VRRP_TTL = 255
_RECV_BUFFER = 65535
_ANCILLARY_BUFFER = socket.CMSG_SPACE(64) * 2
IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)  # missing from Python < 3.13 on Linux
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
_TIMESPEC = struct.Struct("@ll")
# The data socket holds what arrives between two reads: at 2 000 adverts/s and a read every
# 0.3 s that is ~600 packets (~1 KiB of kernel memory each); 4 MiB leaves room for bursts.
RECEIVE_BUFFER = 4 * 1024 * 1024
MAX_RECENT = 1024  # packets remembered by their bytes


@dataclass(frozen=True, kw_only=True)
class Received:
    """One packet off the wire: the VRRP payload and what the IP layer said about it."""

    payload: bytes
    source: IPAddress
    destination: IPAddress
    ttl: int


class VrrpSocket:
    """A non-blocking raw VRRP socket bound to one interface, with its doorbell."""

    def __init__(self, *, interface: str, index: int, family: int) -> None:
        self._absorber: ebpf.Absorber | None = None  # first: close() needs it if set-up fails
        self.interface = interface
        self.index = index
        self.family = family
        self.last_arrival = 0.0  # wall-clock arrival of the newest packet read from the data socket
        self._backed: set[int] = set()
        self._recent: dict[object, Received] = {}
        self._routes: dict[tuple[IPAddress, IPAddress], tuple[list[tuple[int, int, bytes]], int, tuple]] = {}
        af = socket.AF_INET if family == 4 else socket.AF_INET6
        # The doorbell first: the kernel delivers to the newest raw socket first, so a packet is in
        # the data socket by the time its doorbell copy wakes us.
        self.doorbell = socket.socket(af, socket.SOCK_RAW, IPPROTO_VRRP)
        try:
            self._configure(self.doorbell)
            bpf.attach(self.doorbell, bpf.doorbell_program(family, ()))
            self.sock = socket.socket(af, socket.SOCK_RAW, IPPROTO_VRRP)
        except OSError:
            self.doorbell.close()
            raise
        try:
            self._configure(self.sock)
            self._enlarge_buffer()
        except OSError:
            self.close()
            raise
        self._absorber = ebpf.Absorber.create(self.sock, family)

    def _enlarge_buffer(self) -> None:
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RECEIVE_BUFFER)
        except PermissionError:  # without CAP_NET_ADMIN: as much as net.core.rmem_max allows
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)

    def _configure(self, s: socket.socket) -> None:
        s.setblocking(False)
        s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
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
        self.doorbell.close()
        if self._absorber is not None:
            self._absorber.close()
            self._absorber = None

    def backing(self, vrid: int, backup: bool) -> None:
        """Whether this socket's instance for ``vrid`` is a Backup, whose routine adverts need not wake us."""
        if (vrid in self._backed) == backup:
            return
        if backup:
            self._backed.add(vrid)
        else:
            self._backed.discard(vrid)
            if self._absorber is not None:
                self._absorber.disarm(vrid)
        bpf.attach(self.doorbell, bpf.doorbell_program(self.family, self._backed))

    def ring(self, limit: int) -> float:
        """Empty (up to ``limit`` packets of) the doorbell; the newest arrival in it (wall clock), 0.0 if none."""
        newest = 0.0
        for _ in range(limit):
            try:
                _data, ancillary, _flags, _address = self.doorbell.recvmsg(bpf.RING, _ANCILLARY_BUFFER)
            except (BlockingIOError, InterruptedError):
                break
            newest = max(newest, _arrival(ancillary))
        return newest

    @property
    def multicast_group(self) -> IPAddress:
        return VRRP_GROUP_V4 if self.family == 4 else VRRP_GROUP_V6

    def send(self, payload: bytes, *, source: IPAddress, destination: IPAddress) -> None:
        """Send one VRRP message from ``source``; raises OSError (e.g. link down) for the caller to count."""
        route = self._routes.get((source, destination))
        if route is None:
            route = self._routes[(source, destination)] = self._route(source, destination)
        self.sock.sendmsg([payload], *route)

    def _route(self, source: IPAddress, destination: IPAddress) -> tuple[list[tuple[int, int, bytes]], int, tuple]:
        """sendmsg's ancillary data, flags and address for ``source`` -> ``destination``."""
        if self.family == 4:
            pktinfo = struct.pack("@I4s4s", self.index, source.packed, b"\0" * 4)
            return [(socket.IPPROTO_IP, IP_PKTINFO, pktinfo)], 0, (str(destination), 0)
        pktinfo6 = struct.pack("@16sI", source.packed, self.index)
        return [(socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, pktinfo6)], 0, (str(destination), 0, 0, self.index)

    def absorbed(self) -> list[tuple[float, Received, int]]:
        """(newest arrival on the wall clock, packet, copies) the kernel absorbed since the last call.

        Call it before :meth:`receive`, whose reads may re-arm a VRID; the events are put in
        order of arrival afterwards (:func:`hafm.shell.inbox.events_from`).
        """
        if self._absorber is None:
            return []
        found = self._absorber.absorbed()
        if not found:
            return []
        wall_minus_monotonic = time.time() - time.monotonic()
        return [(newest + wall_minus_monotonic, token, copies) for _vrid, token, copies, newest in found]  # type: ignore[misc]

    def receive(self, limit: int) -> Iterator[tuple[float, Received | MalformedAdvert]]:
        """Read up to ``limit`` packets, each with its arrival (wall clock); a garbage IP header comes as the error."""
        recvmsg, recent = self.sock.recvmsg, self._recent
        for _ in range(limit):
            try:
                data, ancillary, _flags, address = recvmsg(_RECV_BUFFER, _ANCILLARY_BUFFER)
            except (BlockingIOError, InterruptedError):
                return
            arrival = _arrival(ancillary)
            self.last_arrival = arrival
            # A Master repeats itself: the same packet, bar the IPv4 ID and header checksum,
            # is parsed once and handed out again as the same object.
            identity = self._identity(data, ancillary, address)
            packet = recent.get(identity)
            if packet is None:
                try:
                    packet = self._parse(data, ancillary, address)
                except MalformedAdvert as exc:
                    yield arrival, exc
                    continue
                if len(recent) >= MAX_RECENT:
                    recent.clear()  # forged sources must not grow memory without bound
                recent[identity] = packet
            if self._absorber is not None:
                self._absorb_copies_of(packet, data)
            yield arrival, packet

    def _absorb_copies_of(self, packet: Received, data: bytes) -> None:
        """Have the kernel absorb copies of a Backup's routine advert, ``packet`` as read (``data``)."""
        payload = packet.payload
        if len(payload) < 8 or payload[1] not in self._backed or payload[2] == 0 or packet.ttl != VRRP_TTL:
            return
        assert self._absorber is not None
        armed = self._absorber.armed.get(payload[1])
        if armed is not None and armed[0] is packet:
            return
        identity = ebpf.identity_of(
            self.family, data, source=packet.source.packed, destination=packet.destination.packed, hop_limit=packet.ttl
        )
        if identity is not None:
            self._absorber.arm(payload[1], identity, packet)

    def _identity(self, data: bytes, ancillary: list[tuple[int, int, bytes]], address: tuple) -> object:
        if self.family == 4:
            return data[:4] + data[6:10] + data[12:]
        return (address[0], data, *(value for level, _kind, value in ancillary if level == socket.IPPROTO_IPV6))

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


def _arrival(ancillary: list[tuple[int, int, bytes]]) -> float:
    """The SO_TIMESTAMPNS of a packet (wall clock, seconds), 0.0 if the kernel gave none."""
    for level, kind, value in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
            seconds, nanoseconds = _TIMESPEC.unpack_from(value)
            return seconds + nanoseconds * 1e-9
    return 0.0
