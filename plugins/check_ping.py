"""The ``ping`` check: one ICMP/ICMPv6 echo request; up when the matching reply arrives.

No external ``ping`` binary.  The probe first tries an unprivileged ICMP
datagram socket (``socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP)``, allowed when
the group is inside ``net.ipv4.ping_group_range``; the kernel then owns the
echo identifier and filters replies), and falls back to a raw socket, which
needs root or CAP_NET_RAW.  A raw socket sees every ICMP packet on the host,
so replies are matched on source address, identifier, sequence and payload.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import socket
import struct
import time
from collections.abc import Mapping
from typing import Any

from hafm.config.model import CheckConfig
from hafm.hooks import CheckType, Probe, ProbeResult, check_keys, hookimpl
from hafm.vrrp.codec import checksum

ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST = 0, 8
ICMP6_ECHO_REQUEST, ICMP6_ECHO_REPLY = 128, 129

_sequence = itertools.count(1)


def validate(options: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``host`` (address or name) is required."""
    problems = check_keys(options, required=("host",))
    host = options.get("host")
    if host is not None and (not isinstance(host, str) or not host):
        problems.append(("host", "must be an IP address or host name"))
    return problems


def echo_request(family: int, ident: int, seq: int, payload: bytes) -> bytes:
    """An echo request; for ICMPv6 the kernel fills in the checksum (it covers a pseudo-header)."""
    kind = ICMP_ECHO_REQUEST if family == socket.AF_INET else ICMP6_ECHO_REQUEST
    header = struct.pack("!BBHHH", kind, 0, 0, ident, seq)
    if family == socket.AF_INET6:
        return header + payload
    return struct.pack("!BBHHH", kind, 0, checksum(header + payload), ident, seq) + payload


def parse_reply(family: int, packet: bytes, *, raw: bool) -> tuple[int, int, bytes] | None:
    """``(ident, seq, payload)`` of an echo reply, or None for any other packet.

    A raw IPv4 socket delivers the IP header too; IPv6 and datagram sockets do not.
    """
    if raw and family == socket.AF_INET:
        if len(packet) < 20:
            return None
        packet = packet[(packet[0] & 0x0F) * 4 :]
    if len(packet) < 8:
        return None
    kind, _code, _sum, ident, seq = struct.unpack("!BBHHH", packet[:8])
    if kind != (ICMP_ECHO_REPLY if family == socket.AF_INET else ICMP6_ECHO_REPLY):
        return None
    return ident, seq, packet[8:]


def open_icmp_socket(family: int) -> tuple[socket.socket, bool]:
    """An ICMP socket for ``family``: datagram if allowed, else raw.  Returns (socket, is_raw)."""
    proto = socket.IPPROTO_ICMP if family == socket.AF_INET else socket.IPPROTO_ICMPV6
    try:
        return socket.socket(family, socket.SOCK_DGRAM, proto), False
    except PermissionError:
        return socket.socket(family, socket.SOCK_RAW, proto), True


async def ping_once(host: str) -> ProbeResult:
    """Send one echo request to ``host`` and wait (forever: the caller bounds it) for its reply."""
    loop = asyncio.get_running_loop()
    # SOCK_DGRAM only to get one entry per address; the port is ignored for ICMP.
    infos = await loop.getaddrinfo(host, 0, type=socket.SOCK_DGRAM)
    family, _, _, _, sockaddr = infos[0]
    address = str(sockaddr[0])
    try:
        sock, raw = open_icmp_socket(family)
    except OSError as exc:
        return ProbeResult(ok=False, detail=f"cannot open ICMP socket: {exc.strerror or exc}")
    with contextlib.closing(sock):
        sock.setblocking(False)
        # connect() makes the kernel filter on the peer address, for raw sockets too.  It
        # completes at once for ICMP sockets; loop.sock_connect would re-resolve with SOCK_RAW.
        sock.connect(sockaddr)
        ident = os.getpid() & 0xFFFF if raw else 0  # a datagram socket's kernel picks the id
        seq = next(_sequence) & 0xFFFF
        payload = b"hafm" + os.urandom(12)
        started = time.monotonic()
        await loop.sock_sendall(sock, echo_request(family, ident, seq, payload))
        while True:
            reply = parse_reply(family, await loop.sock_recv(sock, 2048), raw=raw)
            if reply is None:
                continue
            reply_ident, reply_seq, reply_payload = reply
            if reply_seq != seq or reply_payload != payload or (raw and reply_ident != ident):
                continue
            rtt_ms = (time.monotonic() - started) * 1000
            return ProbeResult(ok=True, detail=f"reply from {address} in {rtt_ms:.1f} ms")


def create(check: CheckConfig) -> Probe:
    host: str = check.options["host"]

    async def probe() -> ProbeResult:
        try:
            return await ping_once(host)
        except socket.gaierror as exc:
            return ProbeResult(ok=False, detail=f"cannot resolve {host}: {exc.strerror}")
        except OSError as exc:
            return ProbeResult(ok=False, detail=f"ping {host}: {exc.strerror or exc}")

    return probe


@hookimpl
def hafm_register_check_types() -> list[CheckType]:
    return [CheckType(name="ping", validate=validate, create=create)]
