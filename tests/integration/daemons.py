"""Run real hafm daemons inside lab hosts, and watch what they do."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from hafm.lab import Host, Lab, wait_until

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
) -> str:
    """One [vrrp_instance] table; ``extra`` is appended verbatim (more keys)."""
    lines = [
        f"[vrrp_instance.{name}]",
        f'state = "{state}"',
        'interface = "eth0"',
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
class HafmNode:
    """One hafm daemon in a lab host; config and log live in the lab's work dir."""

    host: Host
    config: str
    workdir: Path
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = self.workdir / f"{self.host.name}.toml"
        self.config_path.write_text('[global]\ninclude = []\nplugin_dirs = []\n\n' + self.config)
        self.log_path = self.workdir / f"{self.host.name}.log"

    def start(self, *, log_level: str = "debug") -> None:
        self.starts += 1
        log = open(self.log_path, "a")  # noqa: SIM115 - handed to the child
        log.write(f"=== start {self.starts}\n")
        log.flush()
        self.proc = self.host.popen(
            *HAFM, "--config", str(self.config_path), "--log-level", log_level, stderr=log, stdout=log
        )

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
        return self.log_path.read_text() if self.log_path.exists() else ""

    def current_log(self) -> str:
        """The log of the latest start only."""
        return self.log.rsplit(f"=== start {self.starts}\n", 1)[-1]

    def transitions(self, instance: str = "VI_1") -> list[str]:
        """Target states in order, e.g. ['BACKUP', 'MASTER'], for the latest start."""
        return re.findall(rf"{instance}: \S+ -> (\S+) \(", self.current_log())

    def state(self, instance: str = "VI_1") -> str | None:
        found = self.transitions(instance)
        return found[-1] if found else None

    def wait_state(self, state: str, timeout: float = 8.0, instance: str = "VI_1") -> bool:
        return wait_until(lambda: self.state(instance) == state, timeout=timeout, interval=0.02)

    def has_vip(self, vip: str = VIP4) -> bool:
        return any(a.split("/")[0] == vip for a in self.host.addresses())


def start_nodes(lab: Lab, tmp_path: Path, specs: dict[str, tuple[str, str]]) -> dict[str, HafmNode]:
    """Hosts named in ``specs`` ({name: (ipv4/prefix, config)}), each with a test page and hafm running."""
    nodes = {}
    for number, (name, (address, config)) in enumerate(specs.items(), start=1):
        host = lab.add_host(name, address, f"2001:db8::{number}/64")
        host.start_test_page_server()
        nodes[name] = HafmNode(host=host, config=config, workdir=tmp_path / "hafm")
    for node in nodes.values():
        node.start()
    return nodes


def vip_holders(nodes: dict[str, HafmNode], vip: str = VIP4) -> list[str]:
    return [name for name, node in nodes.items() if node.has_vip(vip)]


def wait_for_page(client: Host, expected: str, timeout: float, url: str = TEST_PAGE) -> float | None:
    """Poll the VIP every 5 ms until the page says ``expected``; seconds taken, or None."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        body = client.http_get(url, timeout=0.2)
        if body is not None and expected in body:
            return time.monotonic() - start
        time.sleep(0.005)
    return None
