"""The network-namespace lab builds a working LAN, injects faults, and leaves nothing behind."""

from __future__ import annotations

import os
import signal
import socket
import struct
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from hafm.lab.network import Host, Lab, LabError, check_address, netns_unavailable_reason, wait_until
from hafm.lab.nodes import VipWatcher
from hafm.lab.testpage import page_body

_REASON = netns_unavailable_reason()
_F = TypeVar("_F", bound=Callable[..., object])


def needs_netns(test: _F) -> _F:
    """Mark ``test`` as a netns test, skipped with the reason where no lab can be built."""
    return pytest.mark.netns(pytest.mark.skipif(_REASON is not None, reason=_REASON or "")(test))


A_IP, B_IP, CLIENT_IP = "198.51.100.1", "198.51.100.2", "198.51.100.10"
TEST_URL = "http://{}/test/test.html"


def netns_names() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab(prefix=f"ht{os.getpid():x}lab") as built:
        built.add_host("a", f"{A_IP}/24", "2001:db8::1/64")
        built.add_host("b", f"{B_IP}/24", "2001:db8::2/64")
        built.add_host("client", f"{CLIENT_IP}/24", "2001:db8::10/64")
        built.host("a").start_test_page_server()
        built.host("b").start_test_page_server()
        yield built


# -- safety: these run without root, nothing is created before the check ----------------


@pytest.mark.parametrize(
    ("ipv4", "ipv6"),
    [
        ("10.0.0.1/24", None),
        ("192.168.1.1/24", None),
        ("198.51.101.1/24", None),  # just outside TEST-NET-2
        ("198.51.100.1/24", "fd00::1/64"),
        ("198.51.100.1/24", "2001:db9::1/64"),
        ("198.51.100.0/23", None),  # a network that spills out of the allowed /24
    ],
)
def test_refuses_addresses_outside_documentation_ranges(ipv4: str, ipv6: str | None) -> None:
    lab = Lab(prefix="hsafetycheck")
    with pytest.raises(ValueError, match="outside the documentation ranges"):
        lab.add_host("a", ipv4, ipv6)
    assert list(lab.iter_namespaces()) == []
    lab.teardown()


def test_refuses_address_of_the_wrong_family() -> None:
    lab = Lab(prefix="hsafetycheck")
    with pytest.raises(ValueError, match="not IPv4"):
        lab.add_host("a", "2001:db8::1/64")
    with pytest.raises(ValueError, match="not IPv6"):
        lab.add_host("a", "198.51.100.1/24", "203.0.113.1/24")
    assert list(lab.iter_namespaces()) == []


def test_documentation_ranges_are_accepted() -> None:
    assert str(check_address("203.0.113.9/24")) == "203.0.113.9/24"
    assert str(check_address("2001:db8:1::5/64")) == "2001:db8:1::5/64"


# -- a working LAN ---------------------------------------------------------------------


@needs_netns
def test_hosts_have_their_addresses_and_reach_each_other(lab: Lab) -> None:
    a, b = lab.host("a"), lab.host("b")
    assert a.netns == f"{lab.prefix}-a" and a.bridge_port == "a"
    assert {"198.51.100.1/24", "2001:db8::1/64"} <= set(a.addresses())
    assert a.ping(B_IP)
    assert a.ping("2001:db8::2")
    assert not a.ping("198.51.100.99", timeout=0.3)  # nobody there: the check can fail
    assert a.neighbour_mac(B_IP) == b.mac


@needs_netns
def test_test_page_is_served_across_the_bridge(lab: Lab) -> None:
    client = lab.host("client")
    assert client.http_get(TEST_URL.format(A_IP)) == "this is the test page <br> from server 198.51.100.1"
    assert client.http_get(TEST_URL.format(B_IP)) == page_body(B_IP)
    assert client.http_get("http://[2001:db8::1]/test/test.html") == page_body(A_IP)
    assert client.http_get(f"http://{A_IP}/other.html") is None  # 404


@needs_netns
def test_hanging_test_page_accepts_but_never_answers(lab: Lab) -> None:
    a, client = lab.host("a"), lab.host("client")
    a.start_test_page_server(hang=True)
    try:
        started = time.monotonic()
        assert client.http_get(TEST_URL.format(A_IP), timeout=0.3) is None
        assert time.monotonic() - started >= 0.25  # timed out, not refused
        with client.socket() as sock:
            sock.settimeout(1)
            assert sock.connect_ex((A_IP, 80)) == 0
    finally:
        a.start_test_page_server()
    assert client.http_get(TEST_URL.format(A_IP)) == page_body(A_IP)


@needs_netns
def test_stopped_test_page_refuses(lab: Lab) -> None:
    b, client = lab.host("b"), lab.host("client")
    b.stop_test_page_server()
    try:
        assert client.http_get(TEST_URL.format(B_IP)) is None
    finally:
        b.start_test_page_server()
    assert client.http_get(TEST_URL.format(B_IP)) == page_body(B_IP)


# -- faults ----------------------------------------------------------------------------


@needs_netns
def test_link_down_cuts_the_host_off_and_link_up_restores_it(lab: Lab) -> None:
    client = lab.host("client")
    lab.link_down("a")
    try:
        assert client.http_get(TEST_URL.format(A_IP), timeout=0.5) is None
        assert client.http_get(TEST_URL.format(B_IP)) == page_body(B_IP)
    finally:
        lab.link_up("a")
    assert wait_until(lambda: client.http_get(TEST_URL.format(A_IP), timeout=0.3) == page_body(A_IP), timeout=3)


@needs_netns
def test_isolate_partitions_the_servers_but_not_the_client(lab: Lab) -> None:
    a, b, client = lab.host("a"), lab.host("b"), lab.host("client")
    lab.isolate(a, b)
    try:
        assert not a.ping(B_IP, timeout=0.5)
        assert not b.ping(A_IP, timeout=0.5)
        assert client.ping(A_IP) and client.ping(B_IP)
        assert a.ping(CLIENT_IP)
    finally:
        lab.isolate(a, b, on=False)
    # ARP for b may have started while isolated: the kernel retries it once a second.
    assert wait_until(lambda: a.ping(B_IP, timeout=0.3), timeout=3)


def _vrrp_listener(host: Host) -> socket.socket:
    sock = host.socket(socket.AF_INET, socket.SOCK_RAW, 112)
    membership = struct.pack("4s4s", socket.inet_aton("224.0.0.18"), socket.inet_aton(str(host.ipv4.ip)))
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
    return sock


def _vrrp_delivered(sender: Host, receiver: socket.socket, destination: str) -> bool:
    marker = os.urandom(8)
    with sender.socket(socket.AF_INET, socket.SOCK_RAW, 112) as out:
        out.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(str(sender.ipv4.ip)))
        out.sendto(marker, (destination, 0))
    deadline = time.monotonic() + 0.5
    while (left := deadline - time.monotonic()) > 0:
        receiver.settimeout(left)
        try:
            data = receiver.recv(2048)
        except TimeoutError:
            return False
        if data[(data[0] & 0x0F) * 4 :] == marker:
            return True
    return False


@needs_netns
def test_drop_multicast_vrrp_drops_multicast_but_not_unicast(lab: Lab) -> None:
    a, b = lab.host("a"), lab.host("b")
    with _vrrp_listener(b) as listener:
        assert _vrrp_delivered(a, listener, "224.0.0.18")
        lab.drop_multicast_vrrp()
        lab.drop_multicast_vrrp()  # idempotent: one call to turn it off below is enough
        try:
            assert not _vrrp_delivered(a, listener, "224.0.0.18")
            assert _vrrp_delivered(a, listener, B_IP)  # unicast VRRP still passes
        finally:
            lab.drop_multicast_vrrp(on=False)
        assert _vrrp_delivered(a, listener, "224.0.0.18")


@needs_netns
def test_random_loss(lab: Lab) -> None:
    a, b = lab.host("a"), lab.host("b")
    # Static neighbours: a lost ARP exchange would otherwise fail every ping for a second of
    # retries, so pings would not be independent trials (0 of 40 answered was seen at 50 %).
    a.run("ip", "neigh", "replace", B_IP, "lladdr", b.mac, "dev", "eth0", "nud", "permanent")
    b.run("ip", "neigh", "replace", A_IP, "lladdr", a.mac, "dev", "eth0", "nud", "permanent")
    try:
        lab.random_loss(100)
        assert not a.ping(B_IP, timeout=0.3)
        lab.random_loss(50)  # request and reply each pass half the time: 1 in 4 pings comes back
        answered = sum(a.ping(B_IP, timeout=0.2) for _ in range(40))
        assert 1 <= answered <= 39, answered  # all or none: p < 1e-4
        lab.random_loss(0)
        assert all(a.ping(B_IP) for _ in range(5))
    finally:
        lab.random_loss(0)
        a.run("ip", "neigh", "del", B_IP, "dev", "eth0", check=False)
        b.run("ip", "neigh", "del", A_IP, "dev", "eth0", check=False)
    with pytest.raises(ValueError, match="0..100"):
        lab.random_loss(101)


@needs_netns
def test_vrrp_loss_drops_vrrp_only_and_counts(lab: Lab) -> None:
    a, b = lab.host("a"), lab.host("b")
    with _vrrp_listener(b) as listener:
        lab.vrrp_loss(99)
        try:
            delivered = sum(_vrrp_delivered(a, listener, B_IP) for _ in range(5))
            assert a.ping(B_IP), "only VRRP is lost"
            seen, dropped = lab.vrrp_loss_counters()
        finally:
            lab.vrrp_loss(0)
        assert delivered <= 1 and seen == 5 and dropped >= 4, (delivered, seen, dropped)
        assert lab.vrrp_loss_counters() == (0, 0), "off: the table is gone"
        assert _vrrp_delivered(a, listener, B_IP)
    with pytest.raises(ValueError, match="0..99"):
        lab.vrrp_loss(100)


def test_vip_watcher_timeline_counts_double_holding_and_changes() -> None:
    watcher = VipWatcher({})
    watcher.started = 10.0
    # a holds from the start, b joins at 12 and leaves at 12.5, a loses it at 13 and regains it at 14.
    watcher.events = [
        (10.0, "a", True), (10.0, "b", False), (12.0, "b", True), (12.5, "b", False),
        (13.0, "a", False), (14.0, "a", True),
    ]  # fmt: skip
    assert watcher.timeline(until=15.0) == [
        (10.0, 12.0, frozenset({"a"})),
        (12.0, 12.5, frozenset({"a", "b"})),
        (12.5, 13.0, frozenset({"a"})),
        (13.0, 14.0, frozenset()),
        (14.0, 15.0, frozenset({"a"})),
    ]
    assert watcher.dual_seconds() == 0.5
    assert watcher.dual_seconds(since=12.25) == 0.25
    assert watcher.most_holders() == 2 and watcher.most_holders(since=12.6) == 1
    assert watcher.changes("b", holds=True) == 1 and watcher.changes("a", holds=False) == 1
    assert watcher.changes("a", holds=True) == 1, "the state at the start is not a change"
    assert watcher.changes("b", holds=True, since=12.1) == 0


@needs_netns
def test_sniff_captures_traffic(lab: Lab, tmp_path: Path) -> None:
    from scapy.layers.inet import ICMP, IP
    from scapy.utils import rdpcap

    a, b = lab.host("a"), lab.host("b")
    sniffer = b.sniff(tmp_path / "b.pcap", bpf_filter="icmp")
    assert a.ping(B_IP)
    pcap = sniffer.stop()
    echoes = [p for p in rdpcap(str(pcap)) if ICMP in p and p[ICMP].type == 8]
    assert echoes and echoes[0][IP].src == A_IP and echoes[0][IP].dst == B_IP


@needs_netns
def test_refuses_hosts_and_namespaces_of_another_lab(lab: Lab) -> None:
    with Lab(prefix=f"ht{os.getpid():x}other") as other:
        stranger = other.add_host("a", "198.51.100.50/24")
        with pytest.raises(LabError, match="does not belong"):
            lab.link_down(stranger)
    with pytest.raises(LabError, match="not created by lab"):
        stranger.run("true")  # its lab is gone, so is its claim on the namespace


# -- teardown --------------------------------------------------------------------------


@needs_netns
def test_teardown_kills_processes_and_deletes_every_namespace() -> None:
    lab = Lab(prefix=f"ht{os.getpid():x}gone")
    with lab:
        host = lab.add_host("a", "198.51.100.1/24", "2001:db8::1/64")
        lab.add_host("b", "198.51.100.2/24")
        tracked = host.popen("sleep", "60")
        # A daemon that leaves its process group behaves like keepalived forking away.
        escaped = int(host.run("sh", "-c", "setsid sleep 60 >/dev/null 2>&1 & echo $!").stdout)
        assert {f"{lab.prefix}-br", f"{lab.prefix}-a", f"{lab.prefix}-b"} <= netns_names()
    assert tracked.poll() is not None
    assert wait_until(lambda: not _alive(escaped), timeout=2)
    assert not any(name.startswith(lab.prefix) for name in netns_names())
    lab.teardown()  # idempotent
    with pytest.raises(LabError, match="torn down"):
        lab.add_host("c", "198.51.100.3/24")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes (its parent, not us, must reap it).
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


@needs_netns
def test_teardown_runs_when_the_body_raises() -> None:
    prefix = f"ht{os.getpid():x}boom"
    with pytest.raises(RuntimeError, match="boom"), Lab(prefix=prefix) as lab:
        lab.add_host("a", "198.51.100.1/24")
        raise RuntimeError("boom")
    assert not any(name.startswith(prefix) for name in netns_names())


@needs_netns
def test_teardown_finishes_despite_ctrl_c() -> None:
    prefix = f"ht{os.getpid():x}intr"
    lab = Lab(prefix=prefix)
    lab.add_host("a", "198.51.100.1/24")
    proc = lab.host("a").popen("sleep", "60")
    # SIGINT arrives while teardown is waiting for the process to exit: it must finish
    # first and only then report the interrupt.
    original = signal.getsignal(signal.SIGINT)
    try:
        lab._processes.append(_SigintOnWait(proc))  # type: ignore[arg-type]
        with pytest.raises(KeyboardInterrupt):
            lab.teardown()
    finally:
        signal.signal(signal.SIGINT, original)
    assert proc.poll() is not None
    assert not any(name.startswith(prefix) for name in netns_names())


class _SigintOnWait:
    """Wraps a Popen so that teardown's wait() receives a Ctrl-C."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self._proc = proc
        self.pid = proc.pid

    def poll(self) -> int | None:
        return self._proc.poll()

    def wait(self, timeout: float | None = None) -> int:
        os.kill(os.getpid(), signal.SIGINT)
        return self._proc.wait(timeout)


def test_unavailable_reason_names_missing_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert netns_unavailable_reason() == "network namespace lab needs root"
