"""hafm.shell.ebpf: the absorber's filter, run by the kernel on a socketpair.

A datagram socketpair shows the filter exactly the bytes sent, laid out as a raw IPv4 socket
hands them over (IP header first).  The IPv6 layout needs a real raw socket for its hop limit
(SKF_NET_OFF): tests/integration/test_absorber.py tries both families on the wire.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterator

import pytest

from hafm.shell import ebpf

SOURCE, OTHER, GROUP = bytes([198, 51, 100, 1]), bytes([198, 51, 100, 2]), bytes([224, 0, 0, 18])


def ipv4(
    vrid: int = 51, priority: int = 100, *, source: bytes = SOURCE, ttl: int = 255, ident: int = 1, tail: bytes = b""
) -> bytes:
    """An advert with a fixed checksum field, so that only the part changed differs."""
    vrrp = bytes([0x21, vrid, priority, 1, 0, 1, 0x12, 0x34]) + bytes([198, 51, 100, 100]) + tail
    header = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(vrrp), ident, 0, ttl, 112, 0, source, GROUP)
    return header + vrrp


def _with_ip_option(packet: bytes) -> bytes:
    """The same total length and VRRP start, but a 4-byte IP option in place of the VRRP message's last word."""
    return bytes([0x46]) + packet[1:20] + bytes([1, 1, 1, 1]) + packet[20:-4]


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket, ebpf.Absorber]]:
    sender, receiver = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.setblocking(False)
    absorber = ebpf.Absorber.create(receiver, 4)
    if absorber is None:
        pytest.skip("the kernel refused the eBPF absorber (bpf() needs root or CAP_BPF)")
    yield sender, receiver, absorber
    absorber.close()
    sender.close()
    receiver.close()


def passed(receiver: socket.socket) -> int:
    count = 0
    while True:
        try:
            receiver.recv(2048)
        except BlockingIOError:
            return count
        count += 1


def identity(packet: bytes) -> ebpf.Identity | None:
    return ebpf.identity_of(4, packet, source=b"", destination=b"", hop_limit=0)  # IPv4: all from the header


def arm(absorber: ebpf.Absorber, packet: bytes, token: object = "P") -> None:
    identity = ebpf.identity_of(4, packet, source=b"", destination=b"", hop_limit=0)
    assert identity is not None
    absorber.arm(51, identity, token)


def test_copies_of_the_armed_advert_are_absorbed_and_counted(pair) -> None:
    sender, receiver, absorber = pair
    sender.send(ipv4())
    assert passed(receiver) == 1, "nothing is absorbed before a VRID is armed"
    arm(absorber, ipv4())
    before = time.monotonic()
    for ident in range(5):
        sender.send(ipv4(ident=ident + 2))  # the IPv4 ID and checksum may differ
    assert passed(receiver) == 0
    ((vrid, token, copies, newest),) = absorber.absorbed()
    assert (vrid, token, copies) == (51, "P", 5)
    assert before <= newest <= time.monotonic(), "arrival on CLOCK_MONOTONIC, the loop's clock"
    assert absorber.absorbed() == [], "each copy is reported once"


@pytest.mark.parametrize(
    "different",
    [
        ipv4(priority=101),
        ipv4(priority=0),
        ipv4(source=OTHER),
        ipv4(ttl=254),
        ipv4(vrid=52),
        ipv4(tail=bytes(4)),  # longer, all else equal
        ipv4()[:24] + bytes([100, 198, 51, 100]),  # the VIP's bytes swapped: the same checksum, another VIP
        _with_ip_option(ipv4()),  # IHL 6, the same total length: another VRRP message length
        bytes([0x45]) + bytes(19) + bytes([0x21, 51]),  # a runt: user space counts it
    ],
    ids=["priority", "priority-0", "source", "ttl", "vrid", "length", "vip", "ihl", "runt"],
)
def test_anything_else_reaches_the_socket(pair, different: bytes) -> None:
    sender, receiver, absorber = pair
    arm(absorber, ipv4())
    sender.send(different)
    assert passed(receiver) == 1
    assert absorber.absorbed() == []


def test_a_disarmed_vrid_is_read_again(pair) -> None:
    sender, receiver, absorber = pair
    arm(absorber, ipv4())
    absorber.disarm(51)
    sender.send(ipv4())
    assert passed(receiver) == 1


def test_identity_of_reads_what_the_filter_compares() -> None:
    found = identity(ipv4())
    assert found is not None
    assert found.addresses[:2] == (int.from_bytes(SOURCE, "big"), int.from_bytes(GROUP, "big"))
    assert found.words == (0x21336401, 0x00011234, 0xC6336464)
    assert (found.byte0, found.length) == (0x45, (32 << 16) | (255 << 8) | 112)
    assert identity(ipv4()[:27]) is None, "not whole words"
    assert identity(ipv4(tail=bytes(4 * ebpf.MAX_WORDS))) is None, "too long to compare: read as usual"
    v6 = ebpf.identity_of(
        6, bytes([0x31, 51, 100, 1, 0, 10, 0, 0]), source=bytes(15) + b"\1", destination=bytes(16), hop_limit=255
    )
    assert v6 == ebpf.Identity(0, (8 << 16) | (255 << 8), (0, 0, 0, 1, 0, 0, 0, 0), (0x31336401, 0x000A0000))


def test_what_was_absorbed_before_a_re_arm_is_still_reported(pair) -> None:
    sender, _receiver, absorber = pair
    arm(absorber, ipv4(), token="old")
    sender.send(ipv4())
    arm(absorber, ipv4(priority=90), token="new")
    sender.send(ipv4(priority=90))
    assert [(token, copies) for _vrid, token, copies, _at in absorber.absorbed()] == [("old", 1), ("new", 1)]
    sender.send(ipv4(priority=90))
    absorber.disarm(51)
    assert [(token, copies) for _vrid, token, copies, _at in absorber.absorbed()] == [("new", 1)]
