"""hafm.shell.bpf: the doorbell filter, run by the kernel on a socketpair (no root needed).

A raw IPv4 socket's filter sees the IP header first, a raw IPv6 socket's the VRRP header; a
datagram socketpair shows the filter exactly the bytes sent, so both layouts can be tried here.
"""

import socket
from collections.abc import Iterator

import pytest

from hafm.shell import bpf

IPV4_HEADER = bytes([0x45]) + bytes(19)  # version 4, IHL 5: 20 bytes


def vrrp(vrid: int, priority: int) -> bytes:
    return bytes([0x21, vrid, priority, 1, 0, 1, 0, 0]) + bytes(8)


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    sender, receiver = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.setblocking(False)
    yield sender, receiver
    sender.close()
    receiver.close()


def rings(pair: tuple[socket.socket, socket.socket], family: int, quiet: list[int], packet: bytes) -> bool:
    sender, receiver = pair
    bpf.attach(receiver, bpf.doorbell_program(family, quiet))
    sender.send(packet)
    try:
        receiver.recv(2048)
    except BlockingIOError:
        return False
    return True


@pytest.mark.parametrize(("family", "header"), [(4, IPV4_HEADER), (6, b"")])
def test_a_routine_advert_for_a_vrid_we_back_is_quiet(pair, family: int, header: bytes) -> None:
    assert not rings(pair, family, [51, 52], header + vrrp(51, 100))
    assert not rings(pair, family, [51, 52], header + vrrp(52, 1))


@pytest.mark.parametrize(("family", "header"), [(4, IPV4_HEADER), (6, b"")])
def test_what_cannot_wait_rings(pair, family: int, header: bytes) -> None:
    assert rings(pair, family, [51], header + vrrp(51, 0)), "priority 0: the Master resigns"
    assert rings(pair, family, [51], header + vrrp(60, 100)), "a VRID we do not back (Master, unknown, flood)"
    assert rings(pair, family, [51], header + vrrp(51, 100)[:5]), "a runt"
    assert rings(pair, family, [], header + vrrp(51, 100)), "nothing backed: everything rings"


def test_ipv4_options_move_the_vrrp_header(pair) -> None:
    with_options = bytes([0x46]) + bytes(23)  # IHL 6: 24 bytes
    assert not rings(pair, 4, [51], with_options + vrrp(51, 100))
    assert rings(pair, 4, [51], with_options + vrrp(51, 0))


def test_every_vrid_fits_the_kernel_limit(pair) -> None:
    program = bpf.doorbell_program(4, range(1, 256))
    assert len(program) <= bpf.MAX_INSTRUCTIONS
    assert not rings(pair, 4, list(range(1, 256)), IPV4_HEADER + vrrp(255, 100))


def test_a_vrid_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="1-255"):
        bpf.doorbell_program(4, [0])
