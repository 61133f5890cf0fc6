"""Real VRRP daemons (hafm, keepalived) inside :mod:`hafm.lab.network` hosts, and a client that watches the VIP.

Shared by the integration tests, ``hafm demo`` and ``bench/failover.py`` so all
three run the same scenario the same way.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import tomli_w

from hafm.lab.network import Host, Lab, wait_until

VIP4 = "198.51.100.100"
VIP6 = "2001:db8::100"
TEST_PAGE = f"http://{VIP4}/test/test.html"
HAFM = [sys.executable, "-m", "hafm"]


def instance_toml(
    *,
    priority: int,
    state: str = "BACKUP",
    version: int = 2,
    advert_int: float = 1,
    vips: tuple[str, ...] = (f"{VIP4}/24",),
    auth_pass: str | None = "1111",
    name: str = "VI_1",
    vrid: int = 51,
    extra: str = "",
    interface: str = "eth0",
) -> str:
    """One [vrrp_instance] table; ``extra`` is appended verbatim (more keys)."""
    lines = [
        f"[vrrp_instance.{name}]",
        f'state = "{state}"',
        f'interface = "{interface}"',
        f"virtual_router_id = {vrid}",
        f"priority = {priority}",
        f"advert_int = {advert_int}",
        f"version = {version}",
        "virtual_ipaddress = [" + ", ".join(f'"{v}"' for v in vips) + "]",
        # Tests want the first burst only; the second one would be noise on the wire.
        "garp_master_delay = 0",
    ]
    if auth_pass is not None and version == 2:
        lines.append(f'authentication = {{ auth_type = "PASS", auth_pass = "{auth_pass}" }}')
    return "\n".join(lines) + "\n" + extra + "\n"


@dataclass
class DaemonNode:
    """A VRRP daemon in a lab host; its config and log live in ``workdir``."""

    host: Host
    config: str
    workdir: Path
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    suffix: ClassVar[str] = ".conf"
    # (instance name, state) pairs in the daemon's log, in order.
    transition_pattern: ClassVar[str] = ""

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = self.workdir / f"{self.host.name}{self.suffix}"
        self.config_path.write_text(self.config)
        self.log_path = self.workdir / f"{self.host.name}.log"

    def argv(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> None:
        self.starts += 1
        log = open(self.log_path, "a")  # noqa: SIM115 - handed to the child
        log.write(f"=== start {self.starts}\n")
        log.flush()
        self.proc = self.host.popen(*self.argv(), stderr=log, stdout=log)

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def stop(self, timeout: float = 3.0) -> int:
        """SIGTERM and wait; the exit code."""
        self.signal(signal.SIGTERM)
        assert self.proc is not None
        return self.proc.wait(timeout)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        assert self.proc is not None
        self.proc.wait(3)

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def current_log(self) -> str:
        """The log of the latest start only."""
        return self.log.rsplit(f"=== start {self.starts}\n", 1)[-1]

    def transitions(self, instance: str = "VI_1") -> list[str]:
        """Target states in order, e.g. ['BACKUP', 'MASTER'], for the latest start."""
        return [state for name, state in re.findall(self.transition_pattern, self.current_log()) if name == instance]

    def state(self, instance: str = "VI_1") -> str | None:
        found = self.transitions(instance)
        return found[-1] if found else None

    def wait_state(self, state: str, timeout: float = 8.0, instance: str = "VI_1") -> bool:
        return wait_until(lambda: self.state(instance) == state, timeout=timeout, interval=0.02)

    def has_vip(self, vip: str = VIP4, dev: str = "eth0") -> bool:
        return any(a.split("/")[0] == vip for a in self.host.addresses(dev))


@dataclass
class HafmNode(DaemonNode):
    suffix: ClassVar[str] = ".toml"
    transition_pattern: ClassVar[str] = r"(\S+): \S+ -> (\S+) \("
    log_level: str = "debug"

    def __post_init__(self) -> None:
        header = tomli_w.dumps({"global": {"include": [], "plugin_dirs": [], "control_socket": self.socket_path}})
        self.config = header + "\n" + self.config
        super().__post_init__()

    @property
    def socket_path(self) -> str:
        """Each lab daemon has its own control socket (they share one file system)."""
        return str(self.workdir.resolve() / f"{self.host.name}.sock")

    def argv(self) -> list[str]:
        return [*HAFM, "--config", str(self.config_path), "--log-level", self.log_level]

    def control(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """Run ``hafm ARGS --socket <this node's socket>`` (status, reload, maintenance)."""
        return subprocess.run(
            [*HAFM, *args, "--socket", self.socket_path], capture_output=True, text=True, timeout=timeout, check=False
        )


@dataclass
class KeepalivedNode(DaemonNode):
    """keepalived (the Debian package) in the foreground, VRRP only, with its own pid files."""

    transition_pattern: ClassVar[str] = r"\((\S+)\) Entering (\S+) STATE"

    def argv(self) -> list[str]:
        pids = self.workdir / self.host.name
        return [
            "keepalived", "--dont-fork", "--log-console", "--log-detail", "--vrrp",
            "--use-file", str(self.config_path),
            "--pid", f"{pids}.pid", "--vrrp_pid", f"{pids}.vrrp.pid", "--checkers_pid", f"{pids}.checkers.pid",
        ]  # fmt: skip


def keepalived_conf(
    *,
    priority: int,
    state: str = "BACKUP",
    version: int = 2,
    advert_int: float = 1,
    vips: tuple[str, ...] = (f"{VIP4}/24",),
    auth_pass: str | None = "1111",
    name: str = "VI_1",
    vrid: int = 51,
    extra: str = "",
) -> str:
    """The keepalived twin of :func:`instance_toml`."""
    auth = f"    authentication {{\n        auth_type PASS\n        auth_pass {auth_pass}\n    }}\n"
    vip_lines = "".join(f"        {v}\n" for v in vips)
    return (
        "global_defs {\n    router_id lab\n    vrrp_garp_master_delay 0\n}\n"
        f"vrrp_instance {name} {{\n"
        f"    state {state}\n    interface eth0\n    virtual_router_id {vrid}\n"
        f"    priority {priority}\n    advert_int {advert_int}\n    version {version}\n"
        + (auth if auth_pass is not None and version == 2 else "")
        + f"    virtual_ipaddress {{\n{vip_lines}    }}\n"
        + extra
        + "}\n"
    )


def start_nodes(
    lab: Lab,
    workdir: Path,
    specs: dict[str, tuple[str, str]],
    kind: type[DaemonNode] = HafmNode,
    *,
    start: bool = True,
) -> dict[str, DaemonNode]:
    """Hosts named in ``specs`` ({name: (ipv4/prefix, config)}), each with a test page and a daemon.

    The daemons start together unless ``start`` is false (when a test needs them up in a given order).
    """
    nodes: dict[str, DaemonNode] = {}
    for number, (name, (address, config)) in enumerate(specs.items(), start=1):
        host = lab.add_host(name, address, f"2001:db8::{number}/64")
        host.start_test_page_server()
        nodes[name] = kind(host=host, config=config, workdir=workdir / "daemons")
    if start:
        for node in nodes.values():
            node.start()
    return nodes


def start_classic_pair(
    lab: Lab, workdir: Path, *, kind: type[DaemonNode] = HafmNode, **common: Any
) -> tuple[DaemonNode, DaemonNode, dict[str, DaemonNode]]:
    """The classic two-Tomcat pair: A (198.51.100.1, priority 100, MASTER) and B (198.51.100.2, 90, BACKUP).

    ``common`` goes to :func:`instance_toml` for both nodes (e.g. ``version=3, advert_int=0.1``).
    """
    nodes = start_nodes(
        lab,
        workdir,
        {
            "a": ("198.51.100.1/24", instance_toml(priority=100, state="MASTER", **common)),
            "b": ("198.51.100.2/24", instance_toml(priority=90, **common)),
        },
        kind=kind,
    )
    return nodes["a"], nodes["b"], nodes


def vip_holders(nodes: dict[str, DaemonNode], vip: str = VIP4, dev: str = "eth0") -> list[str]:
    return [name for name, node in nodes.items() if node.has_vip(vip, dev)]


def vip_holders_become(
    nodes: dict[str, DaemonNode], expected: list[str], vip: str = VIP4, dev: str = "eth0", timeout: float = 2.0
) -> bool:
    """Wait until exactly ``expected`` (in any order) hold ``vip``.

    A daemon logs its new state first and adds or removes the VIP a moment later, so a test that
    has just seen a transition in the log must wait for the address, not look once.
    """
    return wait_until(lambda: sorted(vip_holders(nodes, vip, dev)) == sorted(expected), timeout=timeout)


def wait_for_page(
    client: Host, expected: str, timeout: float, url: str = TEST_PAGE, request_timeout: float = 0.2
) -> float | None:
    """Poll the VIP every 5 ms until the page says ``expected``; seconds taken, or None.

    A request sent to the old Master's MAC waits ``request_timeout`` before the next one, so a
    test that times a takeover gives a short one (answers on the lab's LAN take under 1 ms).
    """
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        body = client.http_get(url, timeout=request_timeout)
        if body is not None and expected in body:
            return time.monotonic() - start
        time.sleep(0.005)
    return None


@dataclass(frozen=True)
class Sample:
    at: float  # time.monotonic()
    server: str | None  # the address the page named, None for no answer


class ClientPoller:
    """A client that GETs the test page through the VIP every ``interval`` s, in a thread."""

    # On a LAN an answer takes well under a millisecond; a short timeout keeps a request sent
    # to the old Master's MAC from hiding the takeover from the measurement.
    def __init__(self, client: Host, url: str = TEST_PAGE, interval: float = 0.005, timeout: float = 0.05) -> None:
        self.client = client
        self.url = url
        self.interval = interval
        self.timeout = timeout
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="client-poller", daemon=True)

    def __enter__(self) -> ClientPoller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(2)

    def _poll(self) -> None:
        while not self._stop.is_set():
            body = self.client.http_get(self.url, timeout=self.timeout)
            server = None
            if body is not None:
                found = re.search(r"from server (\S+)", body)
                server = found.group(1) if found else "?"
            self.samples.append(Sample(time.monotonic(), server))
            self._stop.wait(self.interval)

    @property
    def latest(self) -> str | None:
        return self.samples[-1].server if self.samples else None

    def wait_for(self, server: str, timeout: float) -> bool:
        return wait_until(lambda: self.latest == server, timeout=timeout, interval=0.01)

    def outage(self, since: float, new_server: str) -> float | None:
        """Client-seen outage around an event at ``since``: from the last good answer before the
        first answer from ``new_server`` to that answer (None if it never came)."""
        last_good = since
        for sample in self.samples:
            if sample.at < since:
                if sample.server is not None:
                    last_good = sample.at
                continue
            if sample.server == new_server:
                return sample.at - last_good
            if sample.server is not None:
                last_good = sample.at
        return None


def check_toml(name: str, **keys: object) -> str:
    """One ``[check.NAME]`` table (keys as given, e.g. ``type="http"``), for a config next to
    :func:`instance_toml`."""
    return tomli_w.dumps({"check": {name: keys}}) + "\n"


@dataclass
class HafmPluginNode(HafmNode):
    """A :class:`HafmNode` that loads ``*.py`` drop-in plugins from ``plugin_dirs``.

    HafmNode's own ``[global]`` loads none (so a test never picks up the repository's
    conf.d); a config may hold only one ``[global]`` table, hence this variant.
    """

    plugin_dirs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        plugin_dirs = [str(d) for d in self.plugin_dirs]
        header = tomli_w.dumps(
            {"global": {"include": [], "plugin_dirs": plugin_dirs, "control_socket": self.socket_path}}
        )
        self.config = header + "\n" + self.config
        DaemonNode.__post_init__(self)


@dataclass
class RawHafmNode(HafmNode):
    """hafm whose ``config`` is the complete file, written as is (e.g. ``hafm convert`` output with its own
    ``[global]`` table), where :class:`HafmNode` would prepend a ``[global]`` header of its own.
    Only ``control_socket`` is set in it, so lab daemons never share one."""

    def __post_init__(self) -> None:
        document = tomllib.loads(self.config)
        document.setdefault("global", {})["control_socket"] = self.socket_path
        self.config = tomli_w.dumps(document)
        DaemonNode.__post_init__(self)


def start_mixed_nodes(
    lab: Lab, workdir: Path, specs: dict[str, tuple[str, type[DaemonNode], str]], *, start: bool = True
) -> dict[str, DaemonNode]:
    """Like :func:`start_nodes`, but each host names its daemon kind: {name: (ipv4/prefix, kind, config)}.

    For clusters mixing keepalived and hafm; the daemons start in the order given, or not at all
    with ``start=False`` (to set up a fault first, then call ``node.start()``).
    """
    nodes: dict[str, DaemonNode] = {}
    for number, (name, (address, kind, config)) in enumerate(specs.items(), start=1):
        host = lab.add_host(name, address, f"2001:db8::{number}/64")
        host.start_test_page_server()
        nodes[name] = kind(host=host, config=config, workdir=workdir / "daemons")
    for node in nodes.values():
        if start:
            node.start()
    return nodes


def first_answer_from(poller: ClientPoller, server: str, since: float) -> float | None:
    """Seconds from ``since`` (a time.monotonic()) to the poller's first answer from ``server``
    after it, or None if none came."""
    for sample in list(poller.samples):
        if sample.at >= since and sample.server == server:
            return sample.at - since
    return None


class VipWatcher:
    """Who holds the VIP, over time: ``ip monitor address`` in every node's namespace, in threads.

    Event-driven rather than polled, so a brief double holding is not missed between samples
    and watching costs nothing while nothing changes. Times are ``time.monotonic()``.
    """

    def __init__(self, nodes: dict[str, DaemonNode], vip: str = VIP4, dev: str = "eth0") -> None:
        self.nodes = nodes
        self.vip = vip
        self.dev = dev
        self.started = 0.0
        # (time, node, holds) in arrival order; the first entry per node is its state at start.
        self.events: list[tuple[float, str, bool]] = []
        self._lock = threading.Lock()
        self._procs: list[subprocess.Popen[str]] = []
        self._pattern = re.compile(rf"^(Deleted )?\d+: {re.escape(dev)}\s+inet6? {re.escape(vip)}/")

    def __enter__(self) -> VipWatcher:
        for name, node in self.nodes.items():
            proc = node.host.popen("ip", "-o", "monitor", "address", stdout=subprocess.PIPE, text=True, bufsize=1)
            self._procs.append(proc)
            threading.Thread(target=self._follow, args=(name, proc), name=f"vip-watch-{name}", daemon=True).start()
        # The monitors are subscribed once they print nothing yet still run; a short pause covers
        # the gap between exec and the netlink subscription, then the current state is read.
        time.sleep(0.1)
        self.started = time.monotonic()
        for name, node in self.nodes.items():
            self._record(name, node.has_vip(self.vip, self.dev))
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in self._procs:
            proc.terminate()
        for proc in self._procs:
            try:
                proc.wait(2)
            except subprocess.TimeoutExpired:  # a loaded machine; the lab's teardown would get it too
                proc.kill()
                proc.wait(2)

    def _record(self, name: str, holds: bool) -> None:
        with self._lock:
            self.events.append((time.monotonic(), name, holds))

    def _follow(self, name: str, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            found = self._pattern.match(line)
            if found:
                self._record(name, found.group(1) is None)

    def timeline(self, until: float | None = None) -> list[tuple[float, float, frozenset[str]]]:
        """(start, end, holders) spans from the watcher's start to ``until`` (default now)."""
        end = until if until is not None else time.monotonic()
        with self._lock:
            events = list(self.events)
        spans: list[tuple[float, float, frozenset[str]]] = []
        holders: set[str] = set()
        at = self.started
        for when, name, holds in events:
            if when > at:
                spans.append((at, when, frozenset(holders)))
                at = when
            (holders.add if holds else holders.discard)(name)
        spans.append((at, max(at, end), frozenset(holders)))
        return spans

    def holders(self) -> frozenset[str]:
        """The holders now, as the events say."""
        return self.timeline()[-1][2]

    def seconds_with(self, predicate: Callable[[frozenset[str]], bool], since: float = 0.0) -> float:
        """Total seconds since ``since`` during which the holders satisfied ``predicate``."""
        return sum(
            min(end, time.monotonic()) - max(start, since)
            for start, end, holders in self.timeline()
            if end > since and predicate(holders)
        )

    def dual_seconds(self, since: float = 0.0) -> float:
        """Seconds since ``since`` during which two or more nodes held the VIP."""
        return self.seconds_with(lambda holders: len(holders) > 1, since)

    def changes(self, name: str, holds: bool, since: float = 0.0) -> int:
        """How often ``name`` gained (``holds``) or lost the VIP since ``since``."""
        with self._lock:
            events = list(self.events)
        count, current = 0, False
        for when, who, now in events:
            if who != name:
                continue
            if now != current and now == holds and when >= since and when > self.started:
                count += 1
            current = now
        return count

    def most_holders(self, since: float = 0.0) -> int:
        """The largest number of simultaneous holders since ``since``."""
        return max((len(holders) for start, end, holders in self.timeline() if end >= since), default=0)


def install_dropin(directory: Path, name: str, source: str) -> Path:
    """Write a ``conf.d``-style drop-in plugin ``directory/name`` (created if missing) as an operator
    would: root's, mode 0644, since hafm refuses a drop-in that group or others could write."""
    directory.mkdir(parents=True, exist_ok=True)
    plugin = directory / name
    plugin.write_text(source)
    plugin.chmod(0o644)
    return plugin
