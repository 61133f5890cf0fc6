"""Garbage and hostile adverts from a third host: counted and logged, never a crash or a flap."""

import collections
import functools
import socket
import time
from pathlib import Path

from scapy.layers.inet import IP
from scapy.layers.vrrp import VRRP, VRRPv3
from scapy.packet import Packet, fuzz

from hafm.lab.network import Lab, wait_until
from hafm.lab.nodes import HafmPluginNode, start_classic_pair, vip_holders, vip_holders_become

ATTACKER = "198.51.100.66"

# A conf.d/*.py drop-in recording every hafm_packet_dropped call, by daemon pid.
RECORDER = """\
import os
from pathlib import Path

from hafm.hooks import hookimpl


@hookimpl
def hafm_packet_dropped(instance, reason, peer):
    with open(Path(__file__).with_name("dropped.log"), "a") as log:
        log.write(f"{os.getpid()} {instance} {reason.value} {peer}\\n")
"""


def corrupt_checksum(payload: bytes) -> bytes:
    return payload[:6] + bytes([payload[6] ^ 0xFF]) + payload[7:]


def with_checksum(vrrp: Packet) -> bytes:
    """The VRRP bytes with a correct checksum, so the packet reaches the checks after it."""
    return bytes(IP(src=ATTACKER, dst="224.0.0.18", ttl=255) / vrrp)[20:]


def test_fuzzed_and_forged_adverts_do_not_disturb_the_pair(lab: Lab, tmp_path: Path) -> None:
    plugins = tmp_path / "conf.d"
    plugins.mkdir()
    (plugins / "recorder.py").write_text(RECORDER)
    recording = functools.partial(HafmPluginNode, plugin_dirs=(str(plugins),))
    a, b, nodes = start_classic_pair(lab, tmp_path, kind=recording)  # type: ignore[arg-type]
    assert a.wait_state("MASTER") and b.wait_state("BACKUP")
    attacker = lab.add_host("attacker", f"{ATTACKER}/24")
    sock = attacker.socket(socket.AF_INET, socket.SOCK_RAW, 112)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 255)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(ATTACKER))

    forged = [
        with_checksum(VRRP(vrid=51, priority=254, addrlist=["198.51.100.100"], authtype=1, auth1=0x62616421)),
        with_checksum(VRRP(vrid=51, priority=254, addrlist=["198.51.100.100"])),  # no auth
        with_checksum(VRRP(vrid=51, priority=254, adv=3, authtype=1, auth1=0x31313131, addrlist=["198.51.100.100"])),
        with_checksum(VRRP(vrid=51, priority=254, addrlist=["198.51.100.100"], authtype=1, auth1=0x31313131))[:-4],
        corrupt_checksum(with_checksum(VRRP(vrid=51, priority=254, authtype=1, auth1=0x31313131))),
        b"",
        b"\x21",
        b"\x21\x33" + b"\xff" * 2000,
    ]
    fuzzed = [bytes(fuzz(VRRP())) for _ in range(150)] + [bytes(fuzz(VRRPv3())) for _ in range(150)]
    for number, payload in enumerate(forged + fuzzed):
        for destination in ("224.0.0.18", "198.51.100.1", "198.51.100.2"):
            sock.sendto(payload, (destination, 0))
        if number % 20 == 0:
            time.sleep(0.01)  # a flood the kernel would drop at the socket proves nothing about hafm
    sock.close()

    # Several advert intervals later nothing has moved.
    assert not wait_until(lambda: a.state() != "MASTER" or b.state() != "BACKUP", timeout=3)
    assert vip_holders_become(nodes, ["a"]), vip_holders(nodes)
    for node in (a, b):
        log = node.current_log()
        assert "Traceback" not in log
        assert a.proc is not None and a.proc.poll() is None and b.proc is not None and b.proc.poll() is None
        assert f"dropped advert from {ATTACKER}: auth_failure" in log
        assert f"dropped advert from {ATTACKER}: bad_advert_int" in log
        assert f"dropped advert from {ATTACKER}: bad_checksum" in log
        assert f"dropped advert from {ATTACKER}: bad_length" in log

    # Each node saw every forged advert at least twice (multicast and unicast), yet the hook fired
    # once per (instance, reason, peer): a flood cannot flood plugins.
    calls = (plugins / "dropped.log").read_text().splitlines()
    by_pid = collections.Counter(call.split(" ", 1)[0] for call in calls)
    assert a.proc is not None and b.proc is not None
    assert set(by_pid) == {str(a.proc.pid), str(b.proc.pid)}, calls
    repeated = [call for call, count in collections.Counter(calls).items() if count > 1]
    assert not repeated, f"hook called more than once for {repeated}"
    assert f"{a.proc.pid} VI_1 auth_failure {ATTACKER}" in calls
