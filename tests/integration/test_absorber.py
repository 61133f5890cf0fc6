"""The eBPF absorber on real raw VRRP sockets in a lab, IPv4 and IPv6: a Backup's routine adverts stay in
the kernel and come back as a count with their newest arrival; anything else is read as before."""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable
from typing import Any

import pytest

from hafm.lab.network import Host, Lab, _call_in_netns
from hafm.shell.sockets import Received, VrrpSocket

ADDRESSES = {"a": ("198.51.100.1/24", "2001:db8::1/64"), "b": ("198.51.100.2/24", "2001:db8::2/64")}
VIP = {4: ipaddress.ip_address("198.51.100.100").packed, 6: ipaddress.ip_address("2001:db8::100").packed}


def open_socket(host: Host, family: int) -> VrrpSocket:
    make: Callable[[], VrrpSocket] = lambda: VrrpSocket(  # noqa: E731
        interface="eth0", index=socket.if_nametoindex("eth0"), family=family
    )
    return _call_in_netns(host.netns, make)


def advert(priority: int = 100) -> bytes:
    return bytes([0x31, 51, priority, 1, 0, 10, 0x12, 0x34])


def read(sock: VrrpSocket) -> list[Any]:
    time.sleep(0.05)  # a veth and a bridge away
    return [packet for _arrival, packet in sock.receive(64)]


@pytest.mark.parametrize("family", [4, 6])
def test_routine_adverts_stay_in_the_kernel_until_asked_for(lab: Lab, family: int) -> None:
    a, b = (lab.add_host(name, *ADDRESSES[name]) for name in ("a", "b"))
    sender, receiver = open_socket(a, family), open_socket(b, family)
    try:
        if receiver._absorber is None:
            pytest.skip("the kernel refused the eBPF absorber")
        source = ipaddress.ip_interface(ADDRESSES["a"][0 if family == 4 else 1]).ip

        def send(payload: bytes, times: int = 1) -> None:
            for _ in range(times):
                sender.send(payload + VIP[family], source=source, destination=sender.multicast_group)

        receiver.backing(51, True)
        send(advert())
        (first,) = read(receiver)
        assert isinstance(first, Received) and first.ttl == 255, "read, and the VRID armed with it"

        before = time.monotonic()
        send(advert(), times=5)
        assert read(receiver) == []
        ((arrival, packet, copies),) = receiver.absorbed()
        assert packet is first and copies == 5
        assert before - 0.01 <= arrival - (time.time() - time.monotonic()) <= time.monotonic()
        assert receiver.absorbed() == []

        send(advert(priority=90))
        assert [p.payload[2] for p in read(receiver)] == [90], "a changed advert is read (and re-arms)"
        hops = (
            (socket.IPPROTO_IP, socket.IP_MULTICAST_TTL)
            if family == 4
            else (socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS)
        )
        sender.sock.setsockopt(*hops, 254)
        send(advert(priority=90))
        assert [p.ttl for p in read(receiver)] == [254], "an advert from off the link is read, to be dropped"
        sender.sock.setsockopt(*hops, 255)

        receiver.backing(51, False)  # Master or Init: every advert matters
        send(advert(priority=90), times=2)
        assert len(read(receiver)) == 2 and receiver.absorbed() == []
    finally:
        sender.close()
        receiver.close()
