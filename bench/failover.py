"""Failover benchmark: hafm and keepalived in the same lab, the same scenario, the same client.

For each row a fresh :class:`hafm.lab.network.Lab` holds node a (198.51.100.1, priority
100, MASTER), node b (198.51.100.2, priority 90, BACKUP) and a client
(198.51.100.50) polling the VIP's test page every 5 ms. Each round starts a pair
of daemons (hafm on both nodes, then keepalived on both nodes, alternating which
goes first), lets the Backup settle, fails the Master, and records the outage the
client saw. A packet watcher on the client timestamps the adverts and the
gratuitous ARP/NA on the wire, to say where the time went.

Run ``sudo .venv/bin/python bench/failover.py --rounds 5``; see docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import memory

import hafm
from hafm.lab.network import Host, Lab, netns_unavailable_reason
from hafm.lab.nodes import (
    VIP4,
    VIP6,
    ClientPoller,
    DaemonNode,
    HafmNode,
    KeepalivedNode,
    instance_toml,
    keepalived_conf,
)

A_IP, B_IP, CLIENT_IP = "198.51.100.1", "198.51.100.2", "198.51.100.50"
PRIO_A, PRIO_B = 100, 90
TARGET_MARGIN = 0.020  # the issue: hafm within 20 ms of the RFC bound
# A connect sent to the old Master's MAC is silently dropped; the client only tries
# again after this timeout, so it bounds how late the client notices the new Master.
CLIENT_TIMEOUT = 0.01
Daemon = Literal["hafm", "keepalived"]
Event = Literal["sigterm", "linkdown"]


# -- the rows and their RFC bounds (pure) ----------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Row:
    """One scenario of the table."""

    number: int
    version: Literal[2, 3]
    advert_int: float
    event: Event
    family: Literal[4, 6] = 4
    keepalived_in_issue: float  # what the issue measured for keepalived, for reference

    @property
    def title(self) -> str:
        event = "SIGTERM" if self.event == "sigterm" else "link down"
        ipv6 = " IPv6" if self.family == 6 else ""
        return f"v{self.version}{ipv6} adv {self.advert_int:g} {event}"

    @property
    def vip(self) -> str:
        """The VIP with its prefix, as configured."""
        return f"{VIP6}/64" if self.family == 6 else f"{VIP4}/24"

    @property
    def address(self) -> str:
        return VIP6 if self.family == 6 else VIP4

    @property
    def url(self) -> str:
        host = f"[{VIP6}]" if self.family == 6 else VIP4
        return f"http://{host}/test/test.html"


ROWS: tuple[Row, ...] = (
    Row(number=1, version=2, advert_int=1.0, event="sigterm", keepalived_in_issue=0.67),
    Row(number=2, version=2, advert_int=1.0, event="linkdown", keepalived_in_issue=3.67),
    Row(number=3, version=3, advert_int=0.1, event="sigterm", keepalived_in_issue=0.084),
    Row(number=4, version=3, advert_int=0.1, event="linkdown", keepalived_in_issue=0.37),
    Row(number=5, version=3, advert_int=1.0, event="linkdown", family=6, keepalived_in_issue=3.67),
)


def skew_time(priority: int, version: int, advert_int: float) -> float:
    """Skew_Time: (256 - Priority)/256 s in v2 (RFC 3768), × Master_Adver_Interval in v3 (RFC 5798)."""
    return (256 - priority) / 256 * (1.0 if version == 2 else advert_int)


def master_down_interval(priority: int, version: int, advert_int: float) -> float:
    """Master_Down_Interval = 3 × Advertisement_Interval + Skew_Time."""
    return 3 * advert_int + skew_time(priority, version, advert_int)


def rfc_bound(row: Row, priority: int = PRIO_B) -> float:
    """The takeover time the RFC promises the Backup: Skew_Time after a priority-0 advert
    (SIGTERM), Master_Down_Interval after the last advert (link down)."""
    if row.event == "sigterm":
        return skew_time(priority, row.version, row.advert_int)
    return master_down_interval(priority, row.version, row.advert_int)


def expected_window(row: Row, priority: int = PRIO_B) -> tuple[float, float]:
    """The outage the RFC allows when measured from the event.

    The Backup's Master_Down timer started at the last advert it heard, which can be up to
    one interval before the cable was pulled: so a link-down outage lies anywhere in
    [MDI - interval, MDI]. A priority-0 advert leaves only Skew_Time.
    """
    bound = rfc_bound(row, priority)
    if row.event == "sigterm":
        return bound, bound
    return bound - row.advert_int, bound


def parse_rows(items: Sequence[str], count: int = len(ROWS)) -> tuple[int, ...]:
    """``["1,3-4", "5"]`` -> (1, 3, 4, 5); raises ValueError naming a bad item."""
    chosen: set[int] = set()
    for item in items:
        for part in item.split(","):
            part = part.strip()
            if not part:
                continue
            low, _, high = part.partition("-")
            try:
                first, last = int(low), int(high or low)
            except ValueError:
                raise ValueError(f"--rows: {part!r} is not a row number or range") from None
            if not 1 <= first <= last <= count:
                raise ValueError(f"--rows: {part!r} is outside 1-{count}")
            chosen.update(range(first, last + 1))
    if not chosen:
        raise ValueError("--rows: no row chosen")
    return tuple(sorted(chosen))


@dataclass(frozen=True, kw_only=True)
class Stats:
    median: float
    low: float
    high: float
    count: int


def summarize(values: Sequence[float | None]) -> Stats | None:
    """Median, min and max of the rounds that produced a figure (None if none did)."""
    found = [v for v in values if v is not None]
    if not found:
        return None
    return Stats(median=statistics.median(found), low=min(found), high=max(found), count=len(found))


def ratio(hafm_stats: Stats | None, keepalived_stats: Stats | None) -> float | None:
    """hafm median / keepalived median."""
    if hafm_stats is None or keepalived_stats is None or keepalived_stats.median <= 0:
        return None
    return hafm_stats.median / keepalived_stats.median


def target_misses(row: Row, hafm_stats: Stats | None, keepalived_stats: Stats | None, rounds: int) -> list[str]:
    """Why hafm misses the issue's target in this row (empty if it meets it)."""
    misses = []
    if hafm_stats is None:
        return ["hafm never failed over"]
    if hafm_stats.count < rounds:
        misses.append(f"hafm failed over in {hafm_stats.count}/{rounds} rounds")
    bound = rfc_bound(row)
    if hafm_stats.median > bound + TARGET_MARGIN:
        misses.append(f"median {hafm_stats.median - bound:+.3f} s over the bound")
    found = ratio(hafm_stats, keepalived_stats)
    # Compared as printed (two decimals): 1.004 is "1.00", which the issue accepts.
    if found is not None and round(found, 2) > 1.0:
        misses.append(f"ratio {found:.2f} > 1.00")
    return misses


def format_stats(stats: Stats | None) -> str:
    if stats is None:
        return "-"
    return f"{stats.median:.3f} [{stats.low:.3f}-{stats.high:.3f}]"


def format_table(header: Sequence[str], lines: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell, the first one left-aligned."""
    widths = [max(len(row[i]) for row in (header, *lines)) for i in range(len(header))]

    def one(cells: Sequence[str]) -> str:
        padded = [
            cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(padded).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([one(header), rule, *(one(cells) for cells in lines)])


# -- watching the wire from the client -------------------------------------------------

ETH_P_ALL = 0x0003
SO_TIMESTAMPNS = 35  # Linux; not exported by the socket module
VRRP_PROTO = 112


@dataclass(frozen=True)
class WireEvent:
    at: float  # time.monotonic() scale, from the kernel's receive timestamp
    kind: Literal["advert", "announce"]  # announce = gratuitous ARP or unsolicited NA for a VIP
    mac: str  # Ethernet source
    priority: int | None = None  # adverts only


def classify_frame(frame: bytes, vips: frozenset[str]) -> tuple[Literal["advert", "announce"], str, int | None] | None:
    """(kind, source MAC, priority) for a VRRP advert or a GARP/NA announcing one of ``vips``."""
    if len(frame) < 14:
        return None
    mac = frame[6:12].hex(":")
    ethertype = struct.unpack("!H", frame[12:14])[0]
    payload = frame[14:]
    if ethertype == 0x0800 and len(payload) >= 20:
        header = (payload[0] & 0x0F) * 4
        if payload[9] == VRRP_PROTO and len(payload) >= header + 3:
            return "advert", mac, payload[header + 2]
    elif ethertype == 0x86DD and len(payload) >= 40:
        next_header = payload[6]
        if next_header == VRRP_PROTO and len(payload) >= 43:
            return "advert", mac, payload[42]
        is_na = next_header == 58 and len(payload) >= 64 and payload[40] == 136  # Neighbor Advertisement
        if is_na and socket.inet_ntop(socket.AF_INET6, payload[48:64]) in vips:
            return "announce", mac, None
    elif ethertype == 0x0806 and len(payload) >= 28 and socket.inet_ntoa(payload[14:18]) in vips:
        return "announce", mac, None  # ARP whose sender protocol address is a VIP
    return None


class WireWatcher:
    """Records VRRP adverts and VIP announcements the client's eth0 receives, in a thread."""

    def __init__(self, client: Host, vips: frozenset[str]) -> None:
        self.vips = vips
        self.events: list[WireEvent] = []
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._sock = client.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self._sock.bind(("eth0", 0))
        self._sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self._sock.settimeout(0.1)
        # Kernel timestamps are CLOCK_REALTIME; everything else here is monotonic.
        self._offset = time.time() - time.monotonic()
        self._thread = threading.Thread(target=self._run, name="wire-watcher", daemon=True)

    def __enter__(self) -> WireWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(2)
        self._sock.close()

    def _run(self) -> None:
        space = socket.CMSG_SPACE(16)
        while not self._stop.is_set():
            try:
                frame, ancillary, _flags, address = self._sock.recvmsg(2048, space)
            except TimeoutError:
                continue
            except OSError:
                return
            if address[2] == socket.PACKET_OUTGOING:
                continue
            at = time.monotonic()
            for level, kind, data in ancillary:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= 16:
                    seconds, nanoseconds = struct.unpack("qq", data[:16])
                    at = seconds + nanoseconds / 1e9 - self._offset
            found = classify_frame(frame, self.vips)
            if found is None:
                continue
            with self._changed:
                self.events.append(WireEvent(at, found[0], found[1], found[2]))
                self._changed.notify_all()

    def wait_advert(self, mac: str, after: float, timeout: float) -> float | None:
        """Block until an advert from ``mac`` arrives later than ``after``; its time, or None."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for event in reversed(self.events):
                    if event.at <= after:
                        break
                    if event.kind == "advert" and event.mac == mac:
                        return event.at
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._changed.wait(left)

    def first(self, kind: str, mac: str, after: float, positive: bool = False) -> float | None:
        """The first ``kind`` event from ``mac`` after ``after`` (adverts with priority > 0 if ``positive``)."""
        with self._changed:
            for event in self.events:
                wanted = event.kind == kind and event.mac == mac and (not positive or (event.priority or 0) > 0)
                if event.at > after and wanted:
                    return event.at
        return None

    def last_advert_before(self, mac: str, before: float) -> float | None:
        with self._changed:
            found = [e.at for e in self.events if e.kind == "advert" and e.mac == mac and e.at <= before]
        return found[-1] if found else None


# -- one round ---------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Round:
    """What one failover looked like, times in seconds relative to the event."""

    daemon: Daemon
    outage: float | None  # client-seen, ClientPoller.outage
    a_advert: float | None  # SIGTERM: A's priority-0 advert; link down: A's last advert (negative)
    b_advert: float | None  # B's first advert as Master
    b_announce: float | None  # B's first gratuitous ARP / unsolicited NA
    client: float | None  # the client's first answer from B
    startup_flaps: int  # times B went Master before the event, although A was Master all along
    log_dir: Path


@dataclass
class RowLab:
    """The hosts of one row's lab."""

    lab: Lab
    a: Host
    b: Host
    client: Host
    workdir: Path
    rounds: dict[Daemon, list[Round]] = field(default_factory=lambda: {"hafm": [], "keepalived": []})


def build_row_lab(row: Row, workdir: Path) -> RowLab:
    lab = Lab(prefix=f"bfo{os.getpid() % 100000}r{row.number}", workdir=workdir / "lab")
    lab.start()
    try:
        a = lab.add_host("a", f"{A_IP}/24", "2001:db8::1/64")
        b = lab.add_host("b", f"{B_IP}/24", "2001:db8::2/64")
        for host in (a, b):
            host.start_test_page_server()
        client = lab.add_host("client", f"{CLIENT_IP}/24", "2001:db8::50/64")
    except BaseException:
        lab.teardown()
        raise
    return RowLab(lab=lab, a=a, b=b, client=client, workdir=workdir)


def daemon_configs(row: Row, daemon: Daemon) -> tuple[str, str]:
    """Equivalent configs for A and B: same VRID, priorities, interval, version, auth, VIP."""
    make = instance_toml if daemon == "hafm" else keepalived_conf
    common = dict(version=row.version, advert_int=row.advert_int, vips=(row.vip,), auth_pass="1111")
    return (
        make(priority=PRIO_A, state="MASTER", **common),  # type: ignore[arg-type]
        make(priority=PRIO_B, state="BACKUP", **common),  # type: ignore[arg-type]
    )


def remove_vip(host: Host, address: str) -> None:
    """Delete ``address`` from eth0 if a daemon left it behind."""
    for found in host.addresses():
        if found.split("/")[0] == address:
            host.run("ip", "addr", "del", found, "dev", "eth0", check=False)


def settle(a: DaemonNode, b: DaemonNode, advert_int: float, timeout: float = 30.0) -> bool:
    """Wait for A MASTER and B BACKUP with neither log changing for max(5 intervals, 1.5 s).

    The quiet period also covers hafm's start-up work (it imports scapy in a thread, which
    holds the GIL for a few hundred ms): the failover must not be measured during it.
    """
    quiet = max(5 * advert_int, 1.5)
    deadline = time.monotonic() + timeout
    seen: tuple[int, int] | None = None
    since = time.monotonic()
    while time.monotonic() < deadline:
        now = time.monotonic()
        current = (len(a.transitions()), len(b.transitions()))
        if current != seen:
            seen, since = current, now
        elif a.state() == "MASTER" and b.state() == "BACKUP" and now - since >= quiet:
            return True
        for node in (a, b):
            if node.proc is not None and node.proc.poll() is not None:
                return False
        time.sleep(0.05)
    return False


def stop_node(node: DaemonNode) -> None:
    if node.proc is None or node.proc.poll() is not None:
        return
    try:
        node.stop(timeout=5)
    except subprocess.TimeoutExpired:
        node.kill()


def run_round(rl: RowLab, row: Row, daemon: Daemon, round_no: int) -> Round:
    """Start A, then B, settle, fail A, measure; always leaves the lab clean."""
    log_dir = rl.workdir / f"round{round_no}-{daemon}"
    kind: type[DaemonNode] = HafmNode if daemon == "hafm" else KeepalivedNode
    config_a, config_b = daemon_configs(row, daemon)
    a = kind(host=rl.a, config=config_a, workdir=log_dir)
    b = kind(host=rl.b, config=config_b, workdir=log_dir)
    for node in (a, b):
        if isinstance(node, HafmNode):
            node.log_level = "info"  # as in production; keepalived logs state changes only, too
    for host in (rl.a, rl.b):
        remove_vip(host, row.address)
    empty = Round(
        daemon=daemon,
        outage=None,
        a_advert=None,
        b_advert=None,
        b_announce=None,
        client=None,
        startup_flaps=0,
        log_dir=log_dir,
    )
    link_is_down = False
    a.start()
    try:
        # B joins a running Master, so any Master episode of B's before the event is a flap.
        if not a.wait_state("MASTER", timeout=15):
            print(f"  {daemon} round {round_no}: A never became MASTER; logs in {log_dir}")
            return empty
        b.start()
        if not settle(a, b, row.advert_int):
            states = f"A {a.transitions()}, B {b.transitions()}"
            print(f"  {daemon} round {round_no}: did not settle ({states}); logs in {log_dir}")
            return empty
        # B should only have entered BACKUP; a MASTER here means it took over from a live Master.
        startup_flaps = b.transitions().count("MASTER")
        with (
            WireWatcher(rl.client, frozenset({row.address})) as wire,
            ClientPoller(rl.client, url=row.url, interval=0.005, timeout=CLIENT_TIMEOUT) as poller,
        ):
            if not poller.wait_for(A_IP, timeout=5):
                print(f"  {daemon} round {round_no}: client never reached A through the VIP")
                return empty
            time.sleep(3 * row.advert_int)  # a few adverts with the client's ARP/ND entry in place
            # Fail A just after one of its adverts, the same phase for both daemons: otherwise
            # a link-down outage falls anywhere in [MDI - interval, MDI] and the two daemons
            # could not be compared on a few rounds.
            if wire.wait_advert(rl.a.mac, after=time.monotonic(), timeout=3 * row.advert_int + 1) is None:
                print(f"  {daemon} round {round_no}: no advert from A on the wire")
                return empty
            event_at = time.monotonic()
            if row.event == "sigterm":
                a.signal(signal.SIGTERM)
            else:
                rl.lab.link_down(rl.a)
                link_is_down = True
            poller.wait_for(B_IP, timeout=rfc_bound(row) + 5)
            time.sleep(0.2)  # the GARP burst and a few more answers
        outage = poller.outage(event_at, B_IP)
        client_at = next((s.at for s in poller.samples if s.at >= event_at and s.server == B_IP), None)
        if row.event == "sigterm":
            a_at = wire.first("advert", rl.a.mac, event_at)
        else:
            a_at = wire.last_advert_before(rl.a.mac, event_at)

        def rel(at: float | None) -> float | None:
            return None if at is None else at - event_at

        return Round(
            daemon=daemon,
            outage=outage,
            a_advert=rel(a_at),
            b_advert=rel(wire.first("advert", rl.b.mac, event_at, positive=True)),
            b_announce=rel(wire.first("announce", rl.b.mac, event_at)),
            client=rel(client_at),
            startup_flaps=startup_flaps,
            log_dir=log_dir,
        )
    finally:
        stop_node(a)
        stop_node(b)
        if link_is_down:
            rl.lab.link_up(rl.a)
        for host in (rl.a, rl.b):
            remove_vip(host, row.address)


def run_row(row: Row, workdir: Path, rounds: int) -> RowLab:
    """All rounds of one row in one fresh lab, hafm and keepalived alternating which goes first."""
    rl = build_row_lab(row, workdir / f"row{row.number}")
    try:
        for round_no in range(rounds):
            order: list[Daemon] = ["hafm", "keepalived"] if round_no % 2 == 0 else ["keepalived", "hafm"]
            for daemon in order:
                result = run_round(rl, row, daemon, round_no)
                rl.rounds[daemon].append(result)
                shown = f"{result.outage:.3f} s" if result.outage is not None else "no failover"
                if result.startup_flaps:
                    shown += f" (B went Master {result.startup_flaps}x at start-up under a live Master)"
                print(f"  row {row.number} round {round_no + 1}/{rounds} {daemon:<10} outage {shown}", flush=True)
    finally:
        rl.lab.teardown()
    return rl


# -- reporting ------------------------------------------------------------------------


def outage_table(results: dict[int, RowLab], rounds: int) -> str:
    header = ["row", "RFC bound", "hafm outage", "keepalived outage", "ratio", "target"]
    lines = []
    for row in ROWS:
        if row.number not in results:
            continue
        found = results[row.number].rounds
        hafm_stats = summarize([r.outage for r in found["hafm"]])
        ka_stats = summarize([r.outage for r in found["keepalived"]])
        ratio_value = ratio(hafm_stats, ka_stats)
        misses = target_misses(row, hafm_stats, ka_stats, rounds)
        low, high = expected_window(row)
        bound = f"{high:.3f}" if low == high else f"{high:.3f} ({low:.3f}-)"
        lines.append(
            [
                f"{row.number} {row.title}",
                bound,
                format_stats(hafm_stats),
                format_stats(ka_stats),
                f"{ratio_value:.2f}" if ratio_value is not None else "-",
                "ok" if not misses else "MISS: " + "; ".join(misses),
            ]
        )
    return format_table(header, lines)


def breakdown_table(results: dict[int, RowLab]) -> str:
    """Medians, in ms after the event, of what the client's wire and its HTTP polls saw."""
    header = [
        "row", "daemon", "A advert", "B advert", "B GARP/NA", "client",
        "detect", "RFC", "announce", "client-lag", "B Master at start-up",
    ]  # fmt: skip
    lines = []

    def ms(value: float | None) -> str:
        return f"{value * 1000:.1f}" if value is not None else "-"

    for row in ROWS:
        if row.number not in results:
            continue
        for daemon in ("hafm", "keepalived"):
            found = results[row.number].rounds[daemon]

            def med(values: list[float | None]) -> float | None:
                stats = summarize(values)
                return stats.median if stats is not None else None

            detect = [r.b_advert - r.a_advert for r in found if r.b_advert is not None and r.a_advert is not None]
            announce = [r.b_announce - r.b_advert for r in found if r.b_announce is not None and r.b_advert is not None]
            lag = [r.client - r.b_announce for r in found if r.client is not None and r.b_announce is not None]
            lines.append(
                [
                    f"{row.number} {row.title}",
                    daemon,
                    ms(med([r.a_advert for r in found])),
                    ms(med([r.b_advert for r in found])),
                    ms(med([r.b_announce for r in found])),
                    ms(med([r.client for r in found])),
                    ms(med(list(detect))),
                    ms(rfc_bound(row)),
                    ms(med(list(announce))),
                    ms(med(list(lag))),
                    f"{sum(r.startup_flaps > 0 for r in found)}/{len(found)} rounds",
                ]
            )
    return format_table(header, lines)


# -- entry point --------------------------------------------------------------------------


def preflight_problem() -> str | None:
    """Why the bench cannot run here, in one line, or None."""
    if os.geteuid() != 0:
        return "needs root (it builds network namespaces): run it with sudo"
    if shutil.which("keepalived") is None:
        return "keepalived is not installed (apt-get install keepalived); it is the reference"
    return netns_unavailable_reason()


def new_workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="hafm-bench-"))


def machine_line() -> str:
    try:
        keepalived = subprocess.run(["keepalived", "--version"], capture_output=True, text=True, timeout=5)
        ka_version = (keepalived.stderr or keepalived.stdout).splitlines()[0].strip()
    except (OSError, subprocess.SubprocessError, IndexError):
        ka_version = "keepalived ?"
    return (
        f"machine: {os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), kernel {platform.release()}, "
        f"Python {platform.python_version()}, hafm {hafm.__version__}, {ka_version}"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bench/failover.py",
        description="Client-seen failover time of hafm vs keepalived in a network-namespace lab (needs root).",
    )
    parser.add_argument("--rounds", type=int, default=3, help="failovers per row and daemon (default 3)")
    parser.add_argument("--rows", nargs="+", default=["1-5"], metavar="N", help="rows to run, e.g. 1 3 or 2-4")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory / start-up table")
    parser.add_argument("--workdir", type=Path, help="where daemon logs go (default: a new temporary directory)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="save every round's outage here (bench/plots.py)")
    return parser


def outages_json(results: dict[int, RowLab]) -> dict[str, object]:
    """Every round's client-seen outage (None: no failover), per row and daemon."""
    return {
        "machine": machine_line(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "rows": {
            f"{number} {ROWS[number - 1].title}": {
                "rfc_bound": rfc_bound(ROWS[number - 1]),
                **{daemon: [r.outage for r in rounds] for daemon, rounds in rl.rounds.items()},
            }
            for number, rl in results.items()
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        chosen = parse_rows(args.rows)
    except ValueError as exc:
        parser.error(str(exc))
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    reason = preflight_problem()
    if reason is not None:
        print(f"bench/failover.py: {reason}", file=sys.stderr)
        return 1
    workdir = args.workdir or new_workdir()
    print(machine_line())
    print(
        f"rounds per row and daemon: {args.rounds}; client polls every 5 ms "
        f"(timeout {CLIENT_TIMEOUT * 1000:.0f} ms); logs in {workdir}"
    )
    results: dict[int, RowLab] = {}
    for row in ROWS:
        if row.number in chosen:
            print(f"row {row.number}: {row.title}", flush=True)
            results[row.number] = run_row(row, workdir, args.rounds)
    print()
    print("client-seen outage, seconds: median [min-max]; RFC bound for link down: MDI (MDI - interval)")
    print(outage_table(results, args.rounds))
    print()
    print("where the time went, ms after the event, medians (A advert: the priority-0 one for SIGTERM,")
    print("the last one before the cut for link down; seen on the client's wire)")
    print("detect = B advert - A advert, announce = B GARP/NA - B advert, client-lag = client - B GARP/NA")
    print(breakdown_table(results))
    if args.json is not None:
        args.json.write_text(json.dumps(outages_json(results), indent=1) + "\n")
    if not args.no_memory:
        print()
        print(f"one daemon alone (BACKUP, v2 adv 1), RSS {memory.SETTLE_AFTER_BACKUP:g} s after reaching BACKUP:")
        samples = memory.measure(workdir / "memory", args.rounds, prefix=f"bmem{os.getpid() % 100000}")
        print(memory.format_memory_table(samples))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
