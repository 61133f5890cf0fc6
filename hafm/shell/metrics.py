"""The Prometheus endpoint (``[global] metrics_listen``): the status document as metrics, plus timing histograms.

Every scrape turns a fresh status document (schema ``hafm-status/1``, :mod:`hafm.status`) into metric
families (:func:`metric_families`), so the endpoint and ``hafm status`` can never disagree and the
daemon keeps no second set of counters (notify durations too: the notify plugin's section of the
document carries them as cumulative histogram counts).  Probe durations are not in the document: the
daemon reports each one with :meth:`MetricsServer.observe_probe`
into ``prometheus_client`` histograms.  docs/metrics.md lists every metric; tests/test_metrics.py keeps
it in step.

Why a thread, and how the snapshot stays safe: ``prometheus_client`` serves HTTP (content negotiation
with OpenMetrics, gzip, ``name[]`` filtering, HEAD) from a WSGI server in a thread, and hafm uses that
rather than hand-writing an HTTP server on the event loop.  The status document is *not* thread-safe
(the coordinator changes on the loop), so the scrape thread never reads it: it asks the loop to build
the snapshot (``call_soon_threadsafe``) and waits at most :data:`SNAPSHOT_TIMEOUT`.  The loop does the
same small amount of work as for ``hafm status``; the text formatting happens in the thread.  A loop
that does not answer in time makes the scrape fail with HTTP 503, which is what an operator must see
(``up == 0`` for a daemon whose loop is stuck), and never blocks the loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime
import logging
import socket
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Histogram, ProcessCollector, disable_created_metrics, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from hafm.config.schema import Invalid, split_host_port
from hafm.errors import DaemonError, DropReason
from hafm.vrrp.state import State

__all__ = ["MetricsServer", "metric_families"]

log = logging.getLogger("hafm.metrics")

# Longest wait of a scrape for the event loop to build the status document.
SNAPSHOT_TIMEOUT = 2.0
# How often the HTTP thread looks for close(); close() waits at most this long.
SERVE_POLL_INTERVAL = 0.05

# Probes run from a millisecond (file, TCP on localhost) to their timeout (seconds).
PROBE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

# Every state gets a sample (0 or 1), so `hafm_instance_state{state="MASTER"} == 0` is a series, not an absence.
STATES = tuple(state.value for state in State)
# Not "instance": Prometheus attaches its own `instance` label (the scraped host:port) to every series.
INSTANCE = "vrrp_instance"


def _gauge(name: str, doc: str, labels: Iterable[str] = (INSTANCE,)) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=list(labels))


def _counter(name: str, doc: str, labels: Iterable[str] = (INSTANCE,)) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, labels=list(labels))


def _epoch(iso: str) -> float:
    return datetime.datetime.fromisoformat(iso).timestamp()


# (metric name without _total, help, key in the instance's "counters")
INSTANCE_COUNTERS = (
    ("hafm_instance_transitions", "State changes of the instance.", "transitions"),
    ("hafm_instance_became_master", "Times the instance became MASTER.", "became_master"),
    ("hafm_instance_adverts_sent", "VRRP advertisements sent.", "adverts_sent"),
    (
        "hafm_instance_adverts_received",
        "VRRP advertisements accepted for the instance.",
        "adverts_received",
    ),
    ("hafm_instance_gratuitous_sent", "Gratuitous ARP / unsolicited neighbour advertisements sent.", "gratuitous_sent"),
    ("hafm_instance_send_errors", "Advertisements the kernel refused to send.", "send_errors"),
    ("hafm_instance_split_brains", "Episodes of another MASTER heard while MASTER (split brain).", "split_brains"),
)

# (metric name, help, value of one instance entry, or None for no sample)
INSTANCE_GAUGES: tuple[tuple[str, str, Callable[[Mapping[str, Any]], float | None]], ...] = (
    ("hafm_instance_priority", "Effective priority (base plus tracking).", lambda i: i["priority"]["effective"]),
    ("hafm_instance_base_priority", "Configured priority.", lambda i: i["priority"]["base"]),
    (
        "hafm_instance_master_priority",
        "Priority of the current MASTER as last heard (absent when none was heard).",
        lambda i: i["master"]["priority"] if i["master"] else None,
    ),
    ("hafm_instance_maintenance", "1 while the instance is drained for maintenance.", lambda i: bool(i["maintenance"])),
    ("hafm_instance_holds_vips", "1 while the virtual addresses are on this node.", lambda i: i["holds_vips"]),
    (
        "hafm_instance_advert_interval_seconds",
        "Configured advertisement interval.",
        lambda i: i["advert_interval"]["configured"],
    ),
    (
        "hafm_instance_master_advert_interval_seconds",
        "Advertisement interval learned from the MASTER (VRRPv3).",
        lambda i: i["advert_interval"]["learned"],
    ),
)


def metric_families(status: Mapping[str, Any]) -> list[Metric]:
    """The status document ``status`` (schema ``hafm-status/1``) as Prometheus metric families."""
    families: list[Metric] = []
    build = _gauge("hafm_build_info", "hafm's version; always 1.", ["version"])
    build.add_metric([str(status["hafm_version"])], 1)
    generated = _epoch(status["generated_at"])
    families += [
        build,
        GaugeMetricFamily(
            "hafm_start_time_seconds", "When the daemon started (Unix time).", _epoch(status["started_at"])
        ),
    ]
    families += _instance_families(status["instances"], generated)
    families += _check_families(status.get("checks", []))
    families += _group_families(status.get("sync_groups", []))
    unrouted = _counter(
        "hafm_unrouted_dropped_packets",
        "Packets dropped before reaching an instance (unknown VRID, bad header...), by reason.",
        ["reason"],
    )
    drops = status.get("drops_unrouted", {})
    for reason in DropReason:
        unrouted.add_metric([reason.value], drops.get(reason.value, 0))
    families.append(unrouted)
    process = status.get("process")
    if process is not None:  # memory and descriptors come from ProcessCollector's process_* metrics
        families += [
            GaugeMetricFamily("hafm_asyncio_tasks", "asyncio tasks alive in the daemon.", process.get("tasks", 0)),
            GaugeMetricFamily("hafm_threads", "Threads alive in the daemon.", process.get("threads", 0)),
        ]
    notify = status.get("notify")
    if notify is not None:
        runs = CounterMetricFamily("hafm_notify_runs", "Notify scripts started.", notify.get("runs", 0))
        failures = CounterMetricFamily(
            "hafm_notify_failures",
            "Notify scripts that failed: non-zero exit, killed at notify_timeout, or not started.",
            notify.get("failures", 0),
        )
        families += [runs, failures]
        duration = notify.get("duration_seconds")
        if duration is not None:
            histogram = HistogramMetricFamily(
                "hafm_notify_duration_seconds", "How long notify scripts ran (failed ones included)."
            )
            buckets = [(_bound(bound), count) for bound, count in duration["buckets"]]
            histogram.add_metric([], [*buckets, ("+Inf", duration["count"])], sum_value=duration["sum"])
            families.append(histogram)
    return families


def _bound(seconds: float) -> str:
    return f"{float(seconds)}"


def _instance_families(instances: list[Mapping[str, Any]], generated: float) -> Iterator[Metric]:
    info = _gauge(
        "hafm_instance_info",
        "Identity of a VRRP instance; always 1.",
        [INSTANCE, "interface", "vrid", "family", "version", "sync_group"],
    )
    state = _gauge(
        "hafm_instance_state",
        "1 for the instance's current state, 0 for the others.",
        [INSTANCE, "vrid", "family", "state"],
    )
    since = _gauge("hafm_instance_state_change_timestamp_seconds", "When the instance entered its state (Unix time).")
    gauges = [(_gauge(name, doc), value) for name, doc, value in INSTANCE_GAUGES]
    counters = [(_counter(name, doc), key) for name, doc, key in INSTANCE_COUNTERS]
    dropped = _counter(
        "hafm_instance_dropped_packets", "Advertisements for the instance dropped, by reason.", [INSTANCE, "reason"]
    )
    for item in instances:
        name = item["name"]
        vrid, family = str(item["vrid"]), str(item["family"])
        info.add_metric([name, item["interface"], vrid, family, str(item["version"]), item["sync_group"] or ""], 1)
        for value in STATES:
            state.add_metric([name, vrid, family, value], int(item["state"] == value))
        since.add_metric([name], generated - item["since_seconds"])
        for family_, get in gauges:
            sample = get(item)
            if sample is not None:
                family_.add_metric([name], float(sample))
        for counter, key in counters:
            counter.add_metric([name], item["counters"][key])
        drops = item["counters"]["drops"]
        for reason in DropReason:
            dropped.add_metric([name, reason.value], drops.get(reason.value, 0))
    yield from (info, state, since)
    yield from (family_ for family_, _ in gauges)
    yield from (counter for counter, _ in counters)
    yield dropped


def _check_families(checks: list[Mapping[str, Any]]) -> Iterator[Metric]:
    up = _gauge("hafm_check_up", "1 while the check is up (after fall/rise), 0 while down.", ["check", "type"])
    for check in checks:
        up.add_metric([check["name"], check["type"]], int(check["up"]))
    yield up


def _group_families(groups: list[Mapping[str, Any]]) -> Iterator[Metric]:
    state = _gauge(
        "hafm_sync_group_state", "1 for the sync group's current state, 0 for the others.", ["sync_group", "state"]
    )
    for group in groups:
        for value in STATES:
            state.add_metric([group["name"], value], int(group["state"] == value))
    yield state


class ScrapeFailed(Exception):
    """The event loop did not build the status document for a scrape."""


class _StatusCollector(Collector):
    def __init__(self, snapshot: Callable[[], Mapping[str, Any]]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterable[Metric]:
        return metric_families(self._snapshot())


class _QuietHandler(WSGIRequestHandler):
    """No access log on stderr: a scrape every 15 s is not news."""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's parameter name
        pass


class MetricsServer:
    """``/metrics`` on ``listen`` (``HOST:PORT`` or ``[IPV6]:PORT``); ``snapshot()`` returns the status
    document and is only ever called on the event loop that called :meth:`start`."""

    def __init__(self, listen: str, snapshot: Callable[[], Mapping[str, Any]]) -> None:
        try:
            self.host, self.port = split_host_port(listen)
        except Invalid as exc:
            raise DaemonError(f"metrics_listen: {exc}") from None
        self.listen = listen
        self._snapshot = snapshot
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None
        # A `_created` gauge per histogram series only helps OpenMetrics scrapers that need it for counter
        # resets; Prometheus's text format shows it as noise.  (A process-wide switch: hafm is the process.)
        disable_created_metrics()
        self.registry = CollectorRegistry(auto_describe=False)
        self.probe_duration = Histogram(
            "hafm_check_probe_duration_seconds",
            "How long each check probe took, by check and result (ok or failed).",
            ["check", "result"],
            buckets=PROBE_BUCKETS,
            registry=self.registry,
        )
        ProcessCollector(registry=self.registry)
        self.registry.register(_StatusCollector(self._snapshot_from_loop))
        self._metrics_app = make_wsgi_app(self.registry)

    async def start(self) -> None:
        """Bind and serve; raises :class:`DaemonError` (one line) when the address cannot be used."""
        self._loop = asyncio.get_running_loop()
        # Binding resolves names (getaddrinfo, and getfqdn in HTTPServer.server_bind): not on the loop.
        self._server = await self._loop.run_in_executor(None, self._bind)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": SERVE_POLL_INTERVAL}, name="hafm-metrics"
        )
        self._thread.daemon = True
        self._thread.start()
        log.info("metrics on http://%s/metrics", self.listen)

    def _bind(self) -> WSGIServer:
        try:
            family = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]

            class Server(ThreadingWSGIServer):
                address_family = family

            return make_server(self.host, self.port, self._app, Server, handler_class=_QuietHandler)
        except OSError as exc:
            raise DaemonError(f"metrics_listen {self.listen}: cannot listen: {exc.strerror or exc}") from None

    def close(self) -> None:
        """Stop serving and free the port (waits up to :data:`SERVE_POLL_INTERVAL`)."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        self._loop = None

    def observe_probe(self, check: str, seconds: float, ok: bool) -> None:
        """Record one probe of check ``check``."""
        self.probe_duration.labels(check=check, result="ok" if ok else "failed").observe(seconds)

    # -- in the HTTP thread --------------------------------------------------------------------------

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        try:
            return self._metrics_app(environ, start_response)
        except ScrapeFailed as exc:
            # One line, not wsgiref's traceback on the daemon's stderr.
            log.warning("metrics scrape failed: %s", exc)
            start_response("503 Service Unavailable", [("Content-Type", "text/plain; charset=utf-8")])
            return [f"hafm: {exc}\n".encode()]

    def _snapshot_from_loop(self) -> Mapping[str, Any]:
        loop = self._loop
        if loop is None:
            raise ScrapeFailed("the daemon is shutting down")
        future: concurrent.futures.Future[Mapping[str, Any]] = concurrent.futures.Future()

        def take() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(self._snapshot())
            except Exception as exc:
                future.set_exception(exc)

        try:
            loop.call_soon_threadsafe(take)
        except RuntimeError:  # the loop is closed
            raise ScrapeFailed("the daemon is shutting down") from None
        try:
            return future.result(timeout=SNAPSHOT_TIMEOUT)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise ScrapeFailed(f"the event loop did not answer within {SNAPSHOT_TIMEOUT:g} s") from None
        except Exception as exc:
            raise ScrapeFailed(f"building the status failed: {type(exc).__name__}: {exc}") from None
