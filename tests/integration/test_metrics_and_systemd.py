"""A real daemon under a stand-in systemd: READY/STATUS/WATCHDOG/RELOADING/STOPPING datagrams arrive when they
should, /metrics shows the instance as Master, and log_format = "json" gives one JSON object per line."""

from __future__ import annotations

import json
import signal
import socket
import sys
import tomllib
from pathlib import Path

import pytest
import tomli_w
from prometheus_client.parser import text_string_to_metric_families

import hafm.shell.daemon
from hafm.lab.network import Lab, wait_until
from hafm.lab.nodes import VIP4, HafmNode, instance_toml, start_nodes

METRICS_PORT = 9650
# Until the daemon constructs them, this test has nothing to run against.
pytestmark = pytest.mark.skipif(
    "MetricsServer" not in Path(hafm.shell.daemon.__file__).read_text(),
    reason="hafm/shell/daemon.py does not wire MetricsServer and Systemd yet",
)


class FakeSystemd:
    """The notify socket systemd would create; collects every datagram hafm sends."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.1)
        self.messages: list[list[str]] = []

    def poll(self) -> list[list[str]]:
        try:
            while True:
                self.messages.append(self.sock.recv(4096).decode().split("\n"))
        except TimeoutError:
            return self.messages

    def saw(self, *fields: str) -> bool:
        return any(all(f in message for f in fields) for message in self.poll())


def scrape(node: HafmNode) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    with node.host.socket() as sock:
        sock.settimeout(5)
        sock.connect(("127.0.0.1", METRICS_PORT))
        sock.sendall(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        response = b""
        while chunk := sock.recv(65536):
            response += chunk
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200"), head
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def test_systemd_hears_each_step_and_metrics_show_the_master(
    lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Not started yet: A gets a metrics endpoint, JSON logs and the notify socket first.
    pair = {"a": ("198.51.100.1/24", 100, "MASTER"), "b": ("198.51.100.2/24", 90, "BACKUP")}
    specs = {name: (address, instance_toml(priority=p, state=state)) for name, (address, p, state) in pair.items()}
    nodes = start_nodes(lab, tmp_path, specs, start=False)
    a, b = nodes["a"], nodes["b"]
    assert isinstance(a, HafmNode)
    config = tomllib.loads(a.config_path.read_text())
    config["global"] |= {"metrics_listen": f"127.0.0.1:{METRICS_PORT}", "log_format": "json"}
    a.config_path.write_text(tomli_w.dumps(config))
    systemd = FakeSystemd(tmp_path / "notify")

    monkeypatch.setenv("NOTIFY_SOCKET", str(systemd.path))
    monkeypatch.setenv("WATCHDOG_USEC", "1000000")
    a.start()
    monkeypatch.delenv("NOTIFY_SOCKET")
    monkeypatch.delenv("WATCHDOG_USEC")
    b.start()

    assert wait_until(lambda: systemd.saw("READY=1"), timeout=10), a.log
    assert wait_until(lambda: systemd.saw("STATUS=VI_1 MASTER"), timeout=10), (systemd.messages, a.log)
    # WATCHDOG_USEC is 1 s: a ping every 0.5 s.
    assert wait_until(lambda: systemd.poll().count(["WATCHDOG=1"]) >= 2, timeout=5), systemd.messages

    found = scrape(a)
    labels = {"vrrp_instance": "VI_1", "vrid": "51", "family": "4", "state": "MASTER"}
    assert found[("hafm_instance_state", frozenset(labels.items()))] == 1
    assert found[("hafm_instance_priority", frozenset({("vrrp_instance", "VI_1")}))] == 100
    assert found[("hafm_instance_became_master_total", frozenset({("vrrp_instance", "VI_1")}))] == 1

    a.signal(signal.SIGHUP)
    assert wait_until(lambda: systemd.saw("RELOADING=1"), timeout=5), a.log
    reloading = next(m for m in systemd.messages if "RELOADING=1" in m)
    assert reloading[1].startswith("MONOTONIC_USEC=")
    after_reload = systemd.messages.index(reloading)
    assert wait_until(lambda: any("READY=1" in m for m in systemd.poll()[after_reload:]), timeout=5), a.log

    assert a.stop() == 0
    assert systemd.saw("STOPPING=1")
    lines = [line for line in a.current_log().splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]
    assert {"time", "level", "logger", "message"} <= set(entries[0])
    assert any(e["message"].startswith("VI_1: BACKUP -> MASTER") for e in entries)


def test_a_metrics_port_in_use_stops_start_up_with_one_line(lab: Lab, tmp_path: Path) -> None:
    host = lab.add_host("a", "198.51.100.1/24")
    config = tmp_path / "hafm.toml"
    global_ = {"include": [], "plugin_dirs": [], "control_socket": str(tmp_path / "hafm.sock")}
    global_["metrics_listen"] = f"127.0.0.1:{METRICS_PORT}"
    config.write_text(tomli_w.dumps({"global": global_}) + instance_toml(priority=100))
    with host.socket() as busy:
        busy.bind(("127.0.0.1", METRICS_PORT))
        busy.listen()
        result = host.run(sys.executable, "-m", "hafm", "--config", str(config), check=False, timeout=20)
    assert result.returncode == 1, result.stderr
    assert [line for line in result.stderr.splitlines() if line.strip()] == [
        f"hafm: metrics_listen 127.0.0.1:{METRICS_PORT}: cannot listen: Address already in use"
    ]
    assert VIP4 not in [address.split("/")[0] for address in host.addresses("eth0")]
