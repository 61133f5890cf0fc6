"""The Prometheus endpoint: a real MetricsServer scraped over HTTP, the status of a real coordinator as metrics,
docs/metrics.md and the contrib/ dashboard and alert rules in step with what is exported."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import re
import shutil
import socket
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from hafm import __version__
from hafm.config import schema
from hafm.config.model import CheckConfig, Config, SyncGroupConfig, TrackCheck, Vip
from hafm.errors import DaemonError, DropReason
from hafm.shell import metrics
from hafm.shell.metrics import MetricsServer, metric_families
from hafm.status import build_status
from hafm.vrrp import coordinator as co
from hafm.vrrp.codec import Advertisement, encode
from tests.helpers import MULTICAST_V4, Segment, instance_config

ROOT = Path(__file__).resolve().parent.parent
A, B = "198.51.100.1", "198.51.100.2"
WALL = 1_800_000_000.0  # the epoch time the sample document is "generated" at


def node_config(priority: int) -> Config:
    """VI_1 (VRID 51, tracks check ``app`` with weight -20) and VI_2 (VRID 52) in sync group G1."""
    vi_1 = instance_config(
        name="VI_1",
        virtual_router_id=51,
        priority=priority,
        virtual_ipaddress=(Vip(address=ipaddress.ip_interface("198.51.100.100/24")),),
        track_check=(TrackCheck(name="app"),),
    )
    vi_2 = instance_config(
        name="VI_2",
        virtual_router_id=52,
        priority=priority,
        virtual_ipaddress=(Vip(address=ipaddress.ip_interface("198.51.100.101/24")),),
    )
    return Config(
        path=Path("/etc/hafm.toml"),
        instances={"VI_1": vi_1, "VI_2": vi_2},
        checks={"app": CheckConfig(name="app", type="file", weight=-20, init_state="up")},
        sync_groups={"G1": SyncGroupConfig(name="G1", group=("VI_1", "VI_2"))},
    )


def sample_status() -> dict[str, Any]:
    """Node a's status after it became Master, dropped a forged advert and a runt, and its check went down."""
    segment = Segment()
    segment.add("a", A, node_config(100))
    segment.add("b", B, node_config(90))
    segment.start("a")
    segment.run_for(0.1)
    segment.start("b")
    segment.run_for(5)
    forged = bytearray(
        encode(
            Advertisement(version=2, vrid=51, priority=200, advert_int=1, addresses=()),
            source=ipaddress.ip_address(B),
            destination=MULTICAST_V4,
        )
    )
    forged[6] ^= 0xFF  # break the checksum
    segment.feed(
        "a",
        co.PacketReceived(
            interface="eth0",
            family=4,
            payload=bytes(forged),
            source=ipaddress.ip_address(B),
            destination=MULTICAST_V4,
            ttl=255,
        ),
    )
    segment.feed("a", co.PacketRejected(interface="eth0", reason=DropReason.TOO_SHORT, detail="3 bytes"))
    segment.feed("a", co.CheckChanged(check="app", up=False, detail="missing"))
    segment.run_for(1)
    return build_status(
        segment["a"].coordinator,
        now=segment.now,
        wall_now=WALL,
        started=0.0,
        version=__version__,
        pid=1234,
        config_path="/etc/hafm.toml",
        checks={"app": ("file", False, "missing")},
        extra={
            "notify": notify_section(),
            "process": {"rss_bytes": 40_000_000, "open_fds": 12, "tasks": 9, "threads": 2},
        },
    )


def notify_section() -> dict[str, Any]:
    from hafm_plugins.notify_runner import NotifyStats

    stats = NotifyStats()
    for seconds, ok in ((0.2, True), (1.5, True), (31.0, False)):
        stats.record(seconds, ok)
    return stats.section()


STATUS = sample_status()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def scrape(
    snapshot: Callable[[], Mapping[str, Any]] = lambda: STATUS,
    before: Callable[[MetricsServer], None] = lambda server: None,
) -> tuple[int, str]:
    """Serve ``snapshot`` on a free port and GET /metrics from another thread, as Prometheus would."""

    async def run() -> tuple[int, str]:
        server = MetricsServer(f"127.0.0.1:{free_port()}", snapshot)
        await server.start()
        try:
            before(server)
            return await asyncio.get_running_loop().run_in_executor(
                None, get, f"http://127.0.0.1:{server.port}/metrics"
            )
        finally:
            server.close()

    return asyncio.run(run())


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(found: Mapping[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return found[(name, frozenset(labels.items()))]


# -- the scrape ------------------------------------------------------------------------------------


def test_a_scrape_shows_the_coordinator_as_the_status_document_does() -> None:
    def observe(server: MetricsServer) -> None:
        server.observe_probe("app", 0.003, ok=True)
        server.observe_probe("app", 2.0, ok=False)

    code, text = scrape(before=observe)
    assert code == 200
    found = samples(text)
    vi_1, vi_2 = STATUS["instances"]
    assert vi_1["state"] == vi_2["state"] == "MASTER"
    for item in (vi_1, vi_2):
        name, vrid = item["name"], str(item["vrid"])
        states = {
            state: value(found, "hafm_instance_state", vrrp_instance=name, vrid=vrid, family="4", state=state)
            for state in ("INIT", "BACKUP", "MASTER", "FAULT", "STOP")
        }
        assert states == {"INIT": 0, "BACKUP": 0, "MASTER": 1, "FAULT": 0, "STOP": 0}
        for key in ("transitions", "adverts_sent", "adverts_received", "gratuitous_sent", "split_brains"):
            assert value(found, f"hafm_instance_{key}_total", vrrp_instance=name) == item["counters"][key]
    assert value(found, "hafm_instance_priority", vrrp_instance="VI_1") == 80  # 100, check down -20
    assert value(found, "hafm_instance_base_priority", vrrp_instance="VI_1") == 100
    assert value(found, "hafm_instance_holds_vips", vrrp_instance="VI_1") == 1
    assert value(found, "hafm_instance_adverts_sent_total", vrrp_instance="VI_1") > 0
    assert value(found, "hafm_instance_dropped_packets_total", vrrp_instance="VI_1", reason="bad_checksum") == 1
    assert value(found, "hafm_instance_dropped_packets_total", vrrp_instance="VI_1", reason="auth_failure") == 0
    assert value(found, "hafm_unrouted_dropped_packets_total", reason="too_short") == 1
    assert value(found, "hafm_check_up", check="app", type="file") == 0
    assert value(found, "hafm_sync_group_state", sync_group="G1", state="MASTER") == 1
    assert value(found, "hafm_notify_runs_total") == 3
    assert value(found, "hafm_notify_failures_total") == 1
    assert value(found, "hafm_build_info", version=__version__) == 1
    assert value(found, "hafm_asyncio_tasks") == 9
    assert value(found, "hafm_threads") == 2
    # Started 6.1 s before the document on the fake clock; the document keeps whole seconds.
    assert value(found, "hafm_start_time_seconds") == WALL - 7
    since = value(found, "hafm_instance_state_change_timestamp_seconds", vrrp_instance="VI_1")
    assert since == WALL - vi_1["since_seconds"]
    assert value(found, "hafm_check_probe_duration_seconds_count", check="app", result="failed") == 1
    assert value(found, "hafm_check_probe_duration_seconds_bucket", check="app", result="ok", le="0.005") == 1
    assert value(found, "hafm_notify_duration_seconds_sum") == 32.7
    assert value(found, "hafm_notify_duration_seconds_bucket", le="0.25") == 1
    assert value(found, "hafm_notify_duration_seconds_bucket", le="+Inf") == 3


def test_the_snapshot_is_taken_on_the_event_loop_thread() -> None:
    threads: list[int] = []

    def snapshot() -> Mapping[str, Any]:
        threads.append(threading.get_ident())
        return STATUS

    loop_thread: list[int] = []
    code, _ = scrape(snapshot, before=lambda server: loop_thread.append(threading.get_ident()))
    assert code == 200
    assert threads == loop_thread


def test_a_stuck_event_loop_fails_the_scrape_with_one_line(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(metrics, "SNAPSHOT_TIMEOUT", 0.2)

    async def run() -> tuple[int, str]:
        server = MetricsServer(f"127.0.0.1:{free_port()}", lambda: STATUS)
        await server.start()
        try:
            return get(f"http://127.0.0.1:{server.port}/metrics")  # blocks the loop the snapshot needs
        finally:
            server.close()

    code, body = asyncio.run(run())
    assert code == 503
    assert body == "hafm: the event loop did not answer within 0.2 s\n"
    assert [r.getMessage() for r in caplog.records if r.name == "hafm.metrics" and r.levelname == "WARNING"] == [
        "metrics scrape failed: the event loop did not answer within 0.2 s"
    ]


def test_a_failing_snapshot_is_a_503_not_a_traceback(capfd: pytest.CaptureFixture[str]) -> None:
    def broken() -> Mapping[str, Any]:
        raise KeyError("instances")

    code, body = scrape(broken)
    assert code == 503
    assert body == "hafm: building the status failed: KeyError: 'instances'\n"
    assert "Traceback" not in capfd.readouterr().err


def test_close_frees_the_port() -> None:
    port = free_port()

    async def run() -> None:
        for _ in range(2):  # the second server binds the port the first one released
            server = MetricsServer(f"127.0.0.1:{port}", lambda: STATUS)
            await server.start()
            server.close()

    asyncio.run(run())


def test_ipv6_listen_address() -> None:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")

    async def run() -> tuple[int, str]:
        port = free_port()
        server = MetricsServer(f"[::1]:{port}", lambda: STATUS)
        await server.start()
        try:
            return await asyncio.get_running_loop().run_in_executor(None, get, f"http://[::1]:{port}/metrics")
        finally:
            server.close()

    code, text = asyncio.run(run())
    assert code == 200 and "hafm_instance_state" in text


# -- listen errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("listen", "message"),
    [
        ("127.0.0.1", 'metrics_listen: \'127.0.0.1\' is not HOST:PORT (e.g. "127.0.0.1:9650" or "[::1]:9650")'),
        ("example.org:9650", "metrics_listen: 'example.org' in 'example.org:9650' is not an IP address or localhost"),
        ("127.0.0.1:99999", "metrics_listen: port '99999' in '127.0.0.1:99999' is not a number 1..65535"),
    ],
)
def test_a_bad_listen_value_is_one_line(listen: str, message: str) -> None:
    with pytest.raises(DaemonError) as exc:
        MetricsServer(listen, lambda: STATUS)
    assert str(exc.value) == message


def test_a_port_in_use_is_one_line() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        server = MetricsServer(f"127.0.0.1:{port}", lambda: STATUS)
        with pytest.raises(DaemonError) as exc:
            asyncio.run(server.start())
    assert str(exc.value) == f"metrics_listen 127.0.0.1:{port}: cannot listen: Address already in use"


def test_an_address_not_on_this_host_is_one_line() -> None:
    server = MetricsServer("203.0.113.7:9650", lambda: STATUS)
    with pytest.raises(DaemonError) as exc:
        asyncio.run(server.start())
    assert str(exc.value) == "metrics_listen 203.0.113.7:9650: cannot listen: Cannot assign requested address"


@pytest.mark.parametrize(
    ("listen", "expected"),
    [("127.0.0.1:9650", ("127.0.0.1", 9650)), ("[::1]:1", ("::1", 1)), ("localhost:65535", ("localhost", 65535))],
)
def test_good_listen_values(listen: str, expected: tuple[str, int]) -> None:
    assert schema.split_host_port(listen) == expected
    assert schema.listen_address(listen) == listen


# -- the families, without HTTP ------------------------------------------------------------------------


def test_without_notify_and_process_sections_there_are_no_such_metrics() -> None:
    document = {key: item for key, item in STATUS.items() if key not in ("notify", "process")}
    names = {family.name for family in metric_families(document)}
    assert not names & {"hafm_notify_runs", "hafm_notify_failures", "hafm_asyncio_tasks", "hafm_threads"}
    assert "hafm_instance_state" in names


def test_every_drop_reason_has_a_series_from_the_start() -> None:
    (dropped,) = [f for f in metric_families(STATUS) if f.name == "hafm_instance_dropped_packets"]
    reasons = {s.labels["reason"] for s in dropped.samples if s.labels["vrrp_instance"] == "VI_2"}
    assert reasons == {reason.value for reason in DropReason}


# -- docs and contrib in step with the exporter -------------------------------------------------------


def exported_families() -> list[Metric]:
    _, text = scrape(before=lambda server: (server.observe_probe("app", 0.1, True), None))
    return list(text_string_to_metric_families(text))


EXPORTED = exported_families()


def documented_name(family: Metric) -> str:
    """The name docs/metrics.md uses: counters with ``_total``, histograms by their base name."""
    return family.name + "_total" if family.type == "counter" else family.name


def exposed_names() -> set[str]:
    """Every sample name a query can use (``_total``, ``_bucket``, ``_sum``, ``_count``...)."""
    return {sample.name for family in EXPORTED for sample in family.samples}


def test_every_exported_metric_is_documented_and_every_documented_one_exported() -> None:
    docs = (ROOT / "docs" / "metrics.md").read_text()
    rows = [line for line in docs.splitlines() if line.startswith("| `")]
    documented = {re.match(r"\| `([a-z_0-9]+)`", row).group(1) for row in rows}  # type: ignore[union-attr]
    exported = {documented_name(family) for family in EXPORTED}
    assert exported - documented == set(), "exported but missing from docs/metrics.md"
    assert documented - exported == set(), "in docs/metrics.md but not exported"


def test_documented_types_match() -> None:
    docs = (ROOT / "docs" / "metrics.md").read_text()
    types = dict(re.findall(r"^\| `([a-z_0-9]+)` \| (\w+) \|", docs, re.MULTILINE))
    assert {documented_name(f): f.type for f in EXPORTED} == types


def names_in(text: str) -> set[str]:
    return set(re.findall(r"\b(?:hafm|process)_[a-z0-9_]+", text))


def test_alert_rules_parse_and_use_exported_metrics() -> None:
    rules = yaml.safe_load((ROOT / "contrib" / "prometheus" / "hafm-alerts.yml").read_text())
    alerts = [rule for group in rules["groups"] for rule in group["rules"]]
    expected = {"HafmInstanceFault", "HafmSplitBrain", "HafmNoMaster", "HafmTwoMasters", "HafmCheckDown"}
    assert {rule["alert"] for rule in alerts} >= expected
    used = set().union(*(names_in(rule["expr"]) for rule in alerts))
    assert used and used <= exposed_names()


def test_the_dashboard_is_json_and_uses_exported_metrics() -> None:
    dashboard = json.loads((ROOT / "contrib" / "grafana" / "hafm-dashboard.json").read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    assert len(exprs) >= 5
    used = set().union(*(names_in(expr) for expr in exprs))
    assert used <= exposed_names()
    assert {"hafm_instance_state", "hafm_instance_priority", "hafm_check_up"} <= used


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian package prometheus) is not installed")
def test_alert_rules_pass_their_promtool_unit_tests() -> None:
    result = subprocess.run(
        ["promtool", "test", "rules", "hafm-alerts.test.yml"],
        cwd=ROOT / "contrib" / "prometheus",
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
