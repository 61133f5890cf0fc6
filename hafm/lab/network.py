"""A throw-away network of Linux network namespaces for tests and ``hafm demo``.

Topology: one namespace holds a bridge ``br0``; every host is its own namespace
whose ``eth0`` is one end of a veth pair, the other end being a port of ``br0``::

    <prefix>-a [eth0] ---- [a] <prefix>-br [br0] [b] ---- [eth0] <prefix>-b
                                            [client] ---- [eth0] <prefix>-client

Faults are injected on the bridge side (link down, port isolation, nftables drops),
so the daemons under test see them exactly as they would on a real LAN.

Safety rules, enforced here rather than left to callers:

* only documentation addresses (198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32);
* only namespaces this :class:`Lab` created itself: they are the only ones it runs
  commands in, and the only ones :meth:`Lab.teardown` deletes. Links are created
  directly inside lab namespaces, so the host's own namespace is never touched.

Everything is plain ``ip``/``nft``/``sysctl`` through :mod:`subprocess`: each call is
visible in a process listing, and the commands can be pasted into a shell to debug.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import http.client
import ipaddress
import json
import math
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO, Any, TypeVar

import icmplib

import hafm

__all__ = [
    "ALLOWED_NETWORKS",
    "Host",
    "Lab",
    "LabCommandError",
    "LabError",
    "Sniffer",
    "check_address",
    "loss_flap_bound",
    "netns_unavailable_reason",
    "wait_until",
]

ALLOWED_NETWORKS: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = (
    ipaddress.ip_network("198.51.100.0/24"),  # RFC 5737 TEST-NET-2
    ipaddress.ip_network("203.0.113.0/24"),  # RFC 5737 TEST-NET-3
    ipaddress.ip_network("2001:db8::/32"),  # RFC 3849 documentation prefix
)

BRIDGE = "br0"
HOST_DEV = "eth0"
NETNS_DIR = Path("/run/netns")
_NFT_MCAST_TABLE = "hafm_vrrp_mcast"
_NFT_LOSS_TABLE = "hafm_loss"
_NFT_VRRP_LOSS_TABLE = "hafm_vrrp_loss"
_CLONE_NEWNET = 0x40000000
_HOST_NAME = re.compile(r"[a-z][a-z0-9]{0,14}")  # also the bridge port name: IFNAMSIZ-1 = 15
_PREFIX = re.compile(r"[a-z][a-z0-9]{0,19}")


class LabError(RuntimeError):
    """The lab could not be built or was asked to do something it refuses to do."""


class LabCommandError(subprocess.CalledProcessError):
    """A lab command failed; unlike the base class, the message includes stderr."""

    def __str__(self) -> str:
        err = self.stderr.strip() if isinstance(self.stderr, str) else ""
        cmd = " ".join(self.cmd) if isinstance(self.cmd, list | tuple) else str(self.cmd)
        return f"{cmd!r} exited with {self.returncode}" + (f": {err}" if err else "")


def check_address(
    address: str | ipaddress.IPv4Interface | ipaddress.IPv6Interface,
) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
    """Parse ``address`` (``"198.51.100.1/24"``) and refuse anything outside documentation ranges.

    Raises ValueError naming the address: the lab must never put a real or private
    address on a wire, even a virtual one.
    """
    iface = ipaddress.ip_interface(address)
    if not any(
        iface.version == net.version and iface.network.subnet_of(net)  # type: ignore[arg-type]
        for net in ALLOWED_NETWORKS
    ):
        allowed = ", ".join(str(net) for net in ALLOWED_NETWORKS)
        raise ValueError(f"lab address {iface} is outside the documentation ranges ({allowed})")
    return iface


def netns_unavailable_reason() -> str | None:
    """Why the lab cannot run on this machine (not root, no ``ip netns``), or None if it can."""
    if sys.platform != "linux":
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "network namespace lab needs root"
    for tool in ("ip", "nft", "sysctl"):
        if shutil.which(tool) is None:
            return f"network namespace lab needs the {tool!r} command"
    try:
        subprocess.run(["ip", "netns", "list"], capture_output=True, check=True, timeout=5)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"'ip netns' is unavailable: {exc}"
    return None


def loss_flap_bound(loss: float, adverts: int, misses: int = 3, tail: float = 1e-3) -> int:
    """Most Backup takeovers that ``adverts`` adverts under independent random ``loss`` (0..1) explain.

    A Backup takes over when ``misses`` adverts in a row are lost (3: Master_Down_Interval is 3
    advert intervals plus a skew shorter than one). Such runs start after a received advert with
    probability (1 - loss) * loss ** misses, so their count is about Poisson with that mean times
    ``adverts``; the bound is the count exceeded with probability at most ``tail``. 0 means: this
    loss is too low to lose ``misses`` adverts in a row, expect no flap at all.
    """
    mean = adverts * (1 - loss) * loss**misses
    bound, term = 0, math.exp(-mean)
    below = term
    while 1 - below > tail:
        bound += 1
        term *= mean / bound
        below += term
    return bound


def wait_until(predicate: Callable[[], object], timeout: float = 5.0, interval: float = 0.05) -> bool:
    """Poll ``predicate`` until it returns something truthy; False if ``timeout`` passes first."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def _run(
    argv: Sequence[str], *, check: bool = True, timeout: float = 10, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, input=input, check=False)
    if check and proc.returncode != 0:
        raise LabCommandError(proc.returncode, list(argv), proc.stdout, proc.stderr)
    return proc


_libc: ctypes.CDLL | None = None


_T = TypeVar("_T")


def _setns(fd: int) -> None:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    if _libc.setns(fd, _CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def _call_in_netns(netns: str, function: Callable[[], _T]) -> _T:
    """Run ``function`` in a short-lived thread that has entered ``netns``, and return its result.

    setns() only affects the calling thread, and a socket keeps the namespace it was created
    in; this avoids starting a process per request when tests poll a service many times a second.
    """
    result: list[Any] = []

    def run() -> None:
        try:
            fd = os.open(NETNS_DIR / netns, os.O_RDONLY | os.O_CLOEXEC)
            try:
                _setns(fd)
            finally:
                os.close(fd)
            result.append(function())
        except BaseException as exc:  # handed to the caller's thread below
            result.append(exc)

    thread = threading.Thread(target=run, name=f"netns-{netns}", daemon=True)
    thread.start()
    thread.join()
    outcome = result[0]
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


def _socket_in_netns(netns: str, family: int, type: int, proto: int = 0) -> socket.socket:
    """Open a socket that lives in ``netns``, without moving this process there."""
    return _call_in_netns(netns, lambda: socket.socket(family, type, proto))


def _ping_in_netns(netns: str, address: str, timeout: float) -> bool:
    try:
        reply = _call_in_netns(netns, lambda: icmplib.ping(address, count=1, timeout=timeout, privileged=True))
    except (icmplib.ICMPLibError, OSError):  # e.g. ENETUNREACH while the link is down
        return False
    return bool(reply.is_alive)


@dataclass(frozen=True, kw_only=True)
class Host:
    """One host namespace of a :class:`Lab`; its mutable state (processes) lives in the lab."""

    name: str
    netns: str
    ipv4: ipaddress.IPv4Interface
    ipv6: ipaddress.IPv6Interface | None
    mac: str  # of eth0
    bridge_port: str  # the veth peer of eth0, a port of br0 in the bridge namespace
    lab: Lab = field(repr=False, compare=False)

    def run(
        self, *argv: str, check: bool = True, timeout: float = 10, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside this host's namespace and wait for it (text output captured)."""
        return self.lab._run_in(self.netns, argv, check=check, timeout=timeout, input=input)

    def popen(self, *argv: str, **kwargs: Any) -> subprocess.Popen[Any]:
        """Start ``argv`` in this namespace; the lab kills its process group on teardown."""
        return self.lab._popen_in(self.netns, argv, **kwargs)

    def socket(self, family: int = socket.AF_INET, type: int = socket.SOCK_STREAM, proto: int = 0) -> socket.socket:
        """A socket created inside this host's namespace (usable from the calling process)."""
        self.lab._check_netns(self.netns)
        return _socket_in_netns(self.netns, family, type, proto)

    def ping(self, address: str, timeout: float = 1.0) -> bool:
        """Send one ICMP echo request to ``address`` from this namespace; True if answered in time.

        Done in-process with icmplib on a raw socket: no dependency on a ``ping`` binary.
        """
        self.lab._check_netns(self.netns)
        return _ping_in_netns(self.netns, str(ipaddress.ip_address(address)), timeout)

    def addresses(self, dev: str = HOST_DEV) -> list[str]:
        """Addresses on ``dev`` as ``"198.51.100.100/24"`` strings, IPv4 and IPv6, link-local included."""
        out = self.run("ip", "-j", "addr", "show", "dev", dev).stdout
        return [
            f"{info['local']}/{info['prefixlen']}"
            for link in json.loads(out or "[]")
            for info in link.get("addr_info", [])
        ]

    def neighbour_mac(self, address: str) -> str | None:
        """The MAC this host's neighbour table holds for ``address`` on eth0, or None."""
        ip = str(ipaddress.ip_address(address))
        out = self.run("ip", "-j", "neigh", "show", "to", ip, "dev", HOST_DEV).stdout
        for entry in json.loads(out or "[]"):
            if entry.get("dst") == ip and entry.get("lladdr"):
                return str(entry["lladdr"])
        return None

    def http_get(self, url: str, timeout: float = 1.0) -> str | None:
        """GET ``url`` from inside this namespace; the body, or None on any failure or HTTP error."""
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "http" or parts.hostname is None:
            raise ValueError(f"http_get wants an http:// URL, got {url!r}")
        target = parts.hostname
        port = parts.port or 80
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        family = socket.AF_INET6 if ":" in target else socket.AF_INET
        conn = http.client.HTTPConnection(target, port, timeout=timeout)
        try:
            sock = self.socket(family, socket.SOCK_STREAM)
            conn.sock = sock
            sock.settimeout(timeout)
            sock.connect((target, port))
            conn.request("GET", path)
            response = conn.getresponse()
            body = response.read().decode("utf-8", "replace")
        except (OSError, http.client.HTTPException):
            return None
        finally:
            conn.close()
        return body if response.status < 400 else None

    def start_test_page_server(self, port: int = 80, hang: bool = False, timeout: float = 5.0) -> None:
        """Serve the test page (:mod:`hafm.lab.testpage`) on ``port``, naming this host's IPv4.

        Returns once the port accepts connections. With ``hang`` the server accepts and
        reads requests but never answers. A running test page server is replaced.
        """
        self.lab._start_test_page(self, port, hang, timeout)

    def stop_test_page_server(self) -> None:
        """Stop this host's test page server, if one runs."""
        self.lab._stop_test_page(self)

    def sniff(self, path: Path | str | None = None, bpf_filter: str = "", dev: str = HOST_DEV) -> Sniffer:
        """Start ``tcpdump`` on ``dev`` writing to ``path`` (default: in the lab's work dir)."""
        return self.lab._sniff(self, Path(path) if path is not None else None, bpf_filter, dev)


@dataclass(kw_only=True)
class Sniffer:
    """A running capture; :meth:`stop` ends it and returns the pcap file."""

    path: Path
    process: subprocess.Popen[Any]

    def stop(self, timeout: float = 5.0) -> Path:
        """Stop the capture (flushing it to disk) and return the pcap path."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.path


class Lab:
    """A bridge namespace plus host namespaces; a context manager that always tears down."""

    def __init__(self, prefix: str | None = None, workdir: Path | str | None = None) -> None:
        """Describe a lab; nothing is created until :meth:`start` or the first :meth:`add_host`.

        ``prefix`` starts every namespace name (default ``"h"`` + 5 random hex digits).
        ``workdir`` holds logs and captures; by default a temporary directory that
        :meth:`teardown` removes.
        """
        self.prefix = prefix if prefix is not None else "h" + secrets.token_hex(3)[:5]
        if not _PREFIX.fullmatch(self.prefix):
            raise ValueError(f"lab prefix {self.prefix!r} must be a lowercase letter then up to 19 [a-z0-9]")
        self.bridge_ns = f"{self.prefix}-br"
        self._given_workdir = Path(workdir) if workdir is not None else None
        self._workdir: Path | None = None
        self._namespaces: list[str] = []  # created by us, in creation order
        self._hosts: dict[str, Host] = {}
        self._processes: list[subprocess.Popen[Any]] = []
        self._test_pages: dict[str, subprocess.Popen[Any]] = {}
        self._started = False
        self._torn_down = False

    # -- lifecycle -------------------------------------------------------------------

    def __enter__(self) -> Lab:
        try:
            self.start()
        except BaseException:
            self.teardown()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.teardown()

    @property
    def workdir(self) -> Path:
        """Directory for logs and captures of this lab."""
        if self._workdir is None:
            if self._given_workdir is not None:
                self._given_workdir.mkdir(parents=True, exist_ok=True)
                self._workdir = self._given_workdir
            else:
                self._workdir = Path(tempfile.mkdtemp(prefix=f"{self.prefix}-lab-"))
        return self._workdir

    @property
    def hosts(self) -> tuple[Host, ...]:
        """Hosts in the order they were added."""
        return tuple(self._hosts.values())

    def start(self) -> None:
        """Create the bridge namespace with ``br0`` (idempotent)."""
        if self._torn_down:
            raise LabError(f"lab {self.prefix} was torn down; make a new one")
        if self._started:
            return
        self._started = True
        # A process killed without teardown (SIGKILL aside) still cleans up after itself.
        atexit.register(self.teardown)
        self._add_netns(self.bridge_ns)
        # No IPv6 on the bridge side: its link-locals and MLD would only add noise to captures.
        self._sysctl(self.bridge_ns, "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
        self.bridge_run("ip", "link", "set", "dev", "lo", "up")
        self._add_bridge(BRIDGE)

    def _add_bridge(self, name: str) -> None:
        # mcast_snooping 0: the bridge floods VRRP multicast instead of waiting for IGMP/MLD joins.
        self.bridge_run("ip", "link", "add", "name", name, "type", "bridge", "mcast_snooping", "0", "stp_state", "0")
        self.bridge_run("ip", "link", "set", "dev", name, "up")

    def teardown(self) -> None:
        """Kill every process started in the lab and delete every namespace it created.

        Idempotent, and finishes even if interrupted: a Ctrl-C arriving meanwhile is
        held back and re-raised once everything is gone.
        """
        if self._torn_down:
            return
        self._torn_down = True
        interrupted: list[bool] = []
        previous: Any = None
        in_main = threading.current_thread() is threading.main_thread()
        if in_main:

            def defer(signum: int, frame: FrameType | None) -> None:
                interrupted.append(True)

            previous = signal.signal(signal.SIGINT, defer)
        try:
            self._teardown_steps()
        finally:
            if in_main:
                signal.signal(signal.SIGINT, previous)
            with contextlib.suppress(Exception):
                atexit.unregister(self.teardown)
        if interrupted:
            raise KeyboardInterrupt

    def _teardown_steps(self) -> None:
        procs = [p for p in self._processes if p.poll() is None]
        for proc in procs:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 2.0
        for proc in procs:
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(2.0)
        # Anything still inside our namespaces (a daemon that forked away from its group)
        # would keep the namespace and its veths alive after the name is deleted.
        for ns in self._namespaces:
            self._kill_netns_pids(ns)
        for ns in reversed(self._namespaces):
            try:
                _run(["ip", "netns", "delete", ns], timeout=10)
            except (LabCommandError, OSError, subprocess.SubprocessError) as exc:
                print(f"hafm.lab.network: could not delete namespace {ns}: {exc}", file=sys.stderr)
        self._namespaces.clear()
        self._hosts.clear()
        if self._workdir is not None and self._given_workdir is None:
            shutil.rmtree(self._workdir, ignore_errors=True)

    def _kill_netns_pids(self, ns: str) -> None:
        def pids() -> list[int]:
            try:
                out = _run(["ip", "netns", "pids", ns], check=False, timeout=5).stdout
            except (OSError, subprocess.SubprocessError):
                return []
            return [int(p) for p in out.split() if p.isdigit() and int(p) != os.getpid()]

        for sig in (signal.SIGTERM, signal.SIGKILL):
            found = pids()
            if not found:
                return
            for pid in found:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, sig)
            wait_until(lambda: not pids(), timeout=1.0)

    # -- namespaces and commands -----------------------------------------------------

    def _add_netns(self, ns: str) -> None:
        if (NETNS_DIR / ns).exists():
            raise LabError(f"namespace {ns} already exists and is not ours; choose another lab prefix")
        try:
            _run(["ip", "netns", "add", ns])
        except LabCommandError:
            raise
        except BaseException:
            # Interrupted: if the namespace appeared, it is ours to delete.
            if (NETNS_DIR / ns).exists():
                self._namespaces.append(ns)
            raise
        self._namespaces.append(ns)

    def _check_netns(self, ns: str) -> None:
        if ns not in self._namespaces:
            raise LabError(f"namespace {ns!r} was not created by lab {self.prefix}; refusing to touch it")

    def _run_in(
        self, ns: str, argv: Sequence[str], *, check: bool = True, timeout: float = 10, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        self._check_netns(ns)
        return _run(["ip", "netns", "exec", ns, *argv], check=check, timeout=timeout, input=input)

    def _popen_in(self, ns: str, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        self._check_netns(ns)
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        # Own process group, so teardown can kill the process and whatever it spawned.
        kwargs["start_new_session"] = True
        proc: subprocess.Popen[Any] = subprocess.Popen(["ip", "netns", "exec", ns, *argv], **kwargs)
        self._processes.append(proc)
        return proc

    def bridge_run(
        self, *argv: str, check: bool = True, timeout: float = 10, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside the bridge namespace (e.g. ``nft list ruleset``)."""
        return self._run_in(self.bridge_ns, argv, check=check, timeout=timeout, input=input)

    def _sysctl(self, ns: str, *settings: str) -> None:
        self._run_in(ns, ["sysctl", "-qw", *settings])

    # -- hosts -----------------------------------------------------------------------

    def add_host(self, name: str, ipv4: str, ipv6: str | None = None) -> Host:
        """Create namespace ``<prefix>-<name>`` wired to ``br0``, with ``eth0`` addressed and up.

        ``ipv4``/``ipv6`` are interface addresses such as ``"198.51.100.1/24"`` and
        ``"2001:db8::1/64"``. IPv6 duplicate address detection is off so addresses
        are usable at once; returns when eth0's link-local address is usable too.
        """
        if not _HOST_NAME.fullmatch(name) or name == BRIDGE:
            raise ValueError(f"lab host name {name!r} must be a lowercase letter then up to 14 [a-z0-9]")
        if name in self._hosts:
            raise ValueError(f"lab host {name!r} already exists")
        v4 = check_address(ipv4)
        if not isinstance(v4, ipaddress.IPv4Interface):
            raise ValueError(f"lab host {name!r}: ipv4 address {ipv4!r} is not IPv4")
        v6 = check_address(ipv6) if ipv6 is not None else None
        if v6 is not None and not isinstance(v6, ipaddress.IPv6Interface):
            raise ValueError(f"lab host {name!r}: ipv6 address {ipv6!r} is not IPv6")
        self.start()

        ns = f"{self.prefix}-{name}"
        self._add_netns(ns)
        # Set before eth0 exists so the link-local address is born without DAD too.
        self._sysctl(
            ns,
            "net.ipv6.conf.all.accept_dad=0",
            "net.ipv6.conf.default.accept_dad=0",
            "net.ipv6.conf.default.dad_transmits=0",
        )
        # Created inside the bridge namespace with its peer born in the host namespace:
        # neither end ever appears in the namespace this process runs in.
        self.bridge_run("ip", "link", "add", "name", name, "type", "veth", "peer", "name", HOST_DEV, "netns", ns)
        self.bridge_run("ip", "link", "set", "dev", name, "master", BRIDGE)
        self.bridge_run("ip", "link", "set", "dev", name, "up")
        self._run_in(ns, ["ip", "link", "set", "dev", "lo", "up"])
        self._run_in(ns, ["ip", "addr", "add", str(v4), "dev", HOST_DEV])
        if v6 is not None:
            self._run_in(ns, ["ip", "addr", "add", str(v6), "dev", HOST_DEV, "nodad"])
        self._run_in(ns, ["ip", "link", "set", "dev", HOST_DEV, "up"])
        link = json.loads(self._run_in(ns, ["ip", "-j", "link", "show", HOST_DEV]).stdout)[0]
        host = Host(name=name, netns=ns, ipv4=v4, ipv6=v6, mac=link["address"], bridge_port=name, lab=self)
        self._hosts[name] = host
        self._wait_link_ready(host)
        return host

    def host(self, name: str) -> Host:
        """The host called ``name``."""
        try:
            return self._hosts[name]
        except KeyError:
            raise KeyError(f"lab {self.prefix} has no host {name!r}") from None

    def _resolve(self, host: Host | str) -> Host:
        found = self.host(host) if isinstance(host, str) else host
        if self._hosts.get(found.name) is not found:
            raise LabError(f"host {found.name!r} does not belong to lab {self.prefix}")
        return found

    def _link_ready(self, host: Host) -> bool:
        out = host.run("ip", "-j", "-6", "addr", "show", "dev", HOST_DEV).stdout
        links = json.loads(out or "[]")
        if not links or "LOWER_UP" not in links[0].get("flags", []):
            return False
        infos = links[0].get("addr_info", [])
        return any(i.get("scope") == "link" for i in infos) and not any(i.get("tentative") for i in infos)

    def _wait_link_ready(self, host: Host, timeout: float = 5.0) -> None:
        if not wait_until(lambda: self._link_ready(host), timeout=timeout):
            raise LabError(f"{host.netns}: eth0 has no carrier or usable link-local address after {timeout}s")

    # -- faults ----------------------------------------------------------------------

    def add_link(self, host: Host | str, ipv4: str, *, dev: str = "eth1", bridge: str = "br1") -> str:
        """Give ``host`` a second interface ``dev`` on another bridge (a second network, e.g. a back end).

        ``bridge`` is created in the bridge namespace on first use. Returns the bridge port's
        name, which :meth:`bridge_run` can set down to pull that cable.
        """
        found = self._resolve(host)
        address = check_address(ipv4)
        if not isinstance(address, ipaddress.IPv4Interface):
            raise ValueError(f"lab host {found.name!r}: {ipv4!r} is not IPv4")
        port = f"{found.name}-{dev}"
        if len(port) > 15:
            raise ValueError(f"bridge port name {port!r} is longer than 15 characters: use a shorter host name")
        links = json.loads(self.bridge_run("ip", "-j", "link", "show").stdout or "[]")
        if not any(link.get("ifname") == bridge for link in links):
            self._add_bridge(bridge)
        self.bridge_run("ip", "link", "add", "name", port, "type", "veth", "peer", "name", dev, "netns", found.netns)
        self.bridge_run("ip", "link", "set", "dev", port, "master", bridge)
        self.bridge_run("ip", "link", "set", "dev", port, "up")
        self._run_in(found.netns, ["ip", "addr", "add", str(address), "dev", dev])
        self._run_in(found.netns, ["ip", "link", "set", "dev", dev, "up"])
        return port

    def link_down(self, host: Host | str) -> None:
        """Set the host's bridge port down: its eth0 loses carrier, as if the cable were pulled."""
        self.bridge_run("ip", "link", "set", "dev", self._resolve(host).bridge_port, "down")

    def link_up(self, host: Host | str) -> None:
        """Undo :meth:`link_down`; returns once the host's eth0 is usable again."""
        found = self._resolve(host)
        self.bridge_run("ip", "link", "set", "dev", found.bridge_port, "up")
        self._wait_link_ready(found)

    def isolate(self, *hosts: Host | str, on: bool = True) -> None:
        """Mark the hosts' bridge ports isolated: they can't reach each other, only non-isolated ports."""
        for host in hosts:
            port = self._resolve(host).bridge_port
            self.bridge_run("ip", "link", "set", "dev", port, "type", "bridge_slave", "isolated", "on" if on else "off")

    def _nft_table(self, table: str, rules: Sequence[str] | None) -> None:
        # "add; delete; define" in one transaction: idempotent whether or not it existed.
        script = f"table bridge {table} {{}}\ndelete table bridge {table}\n"
        if rules is not None:
            body = "\n".join(f"    {rule}" for rule in rules)
            script += (
                f"table bridge {table} {{\n  chain forward {{\n"
                f"    type filter hook forward priority 0; policy accept;\n{body}\n  }}\n}}\n"
            )
        self.bridge_run("nft", "-f", "-", input=script)

    def drop_multicast_vrrp(self, on: bool = True) -> None:
        """Drop VRRP to 224.0.0.18 / ff02::12 on the bridge, so only unicast VRRP gets through."""
        rules = [
            "ip protocol 112 ip daddr 224.0.0.18 counter drop",
            "ip6 nexthdr 112 ip6 daddr ff02::12 counter drop",
        ]
        self._nft_table(_NFT_MCAST_TABLE, rules if on else None)

    def random_loss(self, percent: int) -> None:
        """Drop ``percent``% of all frames crossing the bridge at random (0 turns loss off)."""
        if not 0 <= percent <= 100:
            raise ValueError(f"loss percent must be 0..100, got {percent}")
        # numgen's range is 0..99, so "< 100" is not a valid expression: total loss is a plain drop.
        rules = [f"numgen random mod 100 < {percent} counter drop" if percent < 100 else "counter drop"]
        self._nft_table(_NFT_LOSS_TABLE, rules if percent else None)

    def vrrp_loss(self, percent: int) -> None:
        """Drop ``percent``% of VRRP packets (IPv4 and IPv6, protocol 112) crossing the bridge, at random.

        Each copy of a flooded advert is judged on its own (the forward hook runs per output port),
        so A's advert may reach B and not the client, as on a lossy LAN. Other traffic is untouched.
        """
        if not 0 <= percent < 100:
            raise ValueError(f"VRRP loss percent must be 0..99, got {percent}")
        rules = [
            "ip protocol 112 counter",
            f"ip protocol 112 numgen random mod 100 < {percent} counter drop",
            "ip6 nexthdr 112 counter",
            f"ip6 nexthdr 112 numgen random mod 100 < {percent} counter drop",
        ]
        self._nft_table(_NFT_VRRP_LOSS_TABLE, rules if percent else None)

    def vrrp_loss_counters(self) -> tuple[int, int]:
        """(forwarded, dropped) VRRP packet copies since :meth:`vrrp_loss` was turned on; (0, 0) when off."""
        out = self.bridge_run("nft", "list", "table", "bridge", _NFT_VRRP_LOSS_TABLE, check=False).stdout
        seen = dropped = 0
        for line in out.splitlines():
            found = re.search(r"counter packets (\d+)", line)
            if found is None:
                continue
            if line.rstrip().endswith("drop"):
                dropped += int(found.group(1))
            else:
                seen += int(found.group(1))
        return seen, dropped

    # -- services --------------------------------------------------------------------

    def _start_test_page(self, host: Host, port: int, hang: bool, timeout: float) -> None:
        self._stop_test_page(host)
        env = dict(os.environ)
        # hafm may not be installed: make the copy this lab came from importable.
        package_root = str(Path(hafm.__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        argv = [sys.executable, "-m", "hafm.lab.testpage", "--port", str(port), "--address", str(host.ipv4.ip)]
        if hang:
            argv.append("--hang")
        log = self.workdir / f"{host.name}-testpage.log"
        with open(log, "w") as log_file:
            proc = host.popen(*argv, stdout=log_file, stderr=subprocess.STDOUT, env=env)
        self._test_pages[host.name] = proc

        def listening() -> bool:
            if proc.poll() is not None:
                raise LabError(f"{host.netns}: test page server exited: {log.read_text().strip()}")
            with host.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.settimeout(0.2)
                return sock.connect_ex(("127.0.0.1", port)) == 0

        if not wait_until(listening, timeout=timeout):
            self._stop_test_page(host)
            raise LabError(f"{host.netns}: test page server not listening on port {port} after {timeout}s")

    def _stop_test_page(self, host: Host) -> None:
        proc = self._test_pages.pop(host.name, None)
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(3.0)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def _sniff(self, host: Host, path: Path | None, bpf_filter: str, dev: str) -> Sniffer:
        pcap = path if path is not None else self.workdir / f"{host.name}-{dev}-{time.monotonic_ns()}.pcap"
        # --immediate-mode: otherwise packets still in the kernel ring buffer when we
        # stop are lost. -Z root: no privilege drop, the pcap may go to a root-only dir.
        argv = ["tcpdump", "-i", dev, "--immediate-mode", "-U", "-n", "-Z", "root", "-s", "0", "-w", str(pcap)]
        if bpf_filter:
            argv.append(bpf_filter)
        proc = host.popen(*argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        # tcpdump says "listening on ..." once the capture is live; packets sent
        # before that would be missed silently.
        stderr: IO[str] | None = proc.stderr
        assert stderr is not None
        first_line = stderr.readline()
        if "listening on" not in first_line:
            proc.kill()
            proc.wait()
            raise LabError(f"{host.netns}: tcpdump did not start: {first_line.strip() or 'no output'}")
        # Keep draining stderr so tcpdump never blocks on a full pipe.
        threading.Thread(target=stderr.read, name=f"tcpdump-{host.name}", daemon=True).start()
        return Sniffer(path=pcap, process=proc)

    def iter_namespaces(self) -> Iterator[str]:
        """Names of the namespaces this lab created and has not deleted yet."""
        yield from self._namespaces
