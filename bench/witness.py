"""Witness benchmark: the client-seen outage of hafm in plain VRRP, VRRP with the etcd witness, and lease-only mode.

Each round builds a fresh lab: node a (198.51.100.1, priority 100) and node b (198.51.100.2, 90), VRRPv2
at 1 s, one etcd member (198.51.100.60, Debian's etcd-server) for the witness modes, and a client
(198.51.100.50) polling the VIP's test page every 5 ms.  The Master is stopped (SIGTERM) or crashes
(SIGKILL, and its test page stops answering) and the outage the client saw is recorded
(:meth:`hafm.lab.nodes.ClientPoller.outage`).

    sudo .venv/bin/python bench/witness.py --rounds 3

Needs root, ``ip``, ``nft`` and ``etcd``; exits 1 with a one-line reason otherwise.  Results: docs/witness.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from hafm.lab.etcd import etcd_available, start_etcd, witness_toml
from hafm.lab.network import Lab, netns_unavailable_reason
from hafm.lab.nodes import ClientPoller, instance_toml, start_nodes
from hafm.vrrp.constants import master_down_interval, skew_time

Mode = Literal["vrrp", "witness", "lease"]
Event = Literal["sigterm", "sigkill"]
MODES: tuple[Mode, ...] = ("vrrp", "witness", "lease")
EVENTS: tuple[Event, ...] = ("sigterm", "sigkill")
A_IP, B_IP = "198.51.100.1", "198.51.100.2"
TTL = 2  # etcd 3.4's minimum lease TTL with its default timings
MODE_KEYS = {"vrrp": "", "witness": "witness = true\n", "lease": 'mode = "lease"\n'}


@dataclass(frozen=True)
class Result:
    mode: Mode
    event: Event
    outages: tuple[float, ...]


def expected(mode: Mode, event: Event, ttl: int = TTL) -> str:
    """What the design promises for B (priority 90, v2, 1 s), for the table."""
    skew = skew_time(90, version=2, master_adver_interval=1)
    down = master_down_interval(90, version=2, master_adver_interval=1)
    if mode == "lease":
        return "revoke + watch (≈ 0)" if event == "sigterm" else f"ttl ({ttl} s) + watch"
    if event == "sigterm":
        return f"Skew_Time ({skew:.3f} s)"
    if mode == "vrrp":
        return f"Master_Down_Interval ({down:.3f} s)"
    return f"max(Master_Down_Interval, ttl) ({max(down, ttl):.3f} s)"


def one_round(mode: Mode, event: Event, workdir: Path) -> float | None:
    with Lab(workdir=workdir / "lab") as lab:
        head = ""
        if mode != "vrrp":
            head = witness_toml(start_etcd(lab, workdir / "etcd"), TTL)
        extra = MODE_KEYS[mode]
        nodes = start_nodes(
            lab,
            workdir,
            {
                "a": (f"{A_IP}/24", head + instance_toml(priority=100, state="MASTER", extra=extra)),
                "b": (f"{B_IP}/24", head + instance_toml(priority=90, extra=extra)),
            },
            start=False,
        )
        a, b = nodes["a"], nodes["b"]
        a.start()
        if not a.wait_state("MASTER", timeout=10):
            raise RuntimeError(f"a never became MASTER; see {a.log_path}")
        b.start()
        if not b.wait_state("BACKUP", timeout=10):
            raise RuntimeError(f"b never became BACKUP; see {b.log_path}")
        time.sleep(1.5)  # b has heard a (or watches the key) and every lease is renewed at least once
        client = lab.add_host("client", "198.51.100.50/24")
        with ClientPoller(client) as poller:
            if not poller.wait_for(A_IP, timeout=5):
                raise RuntimeError("the client never reached a through the VIP")
            since = time.monotonic()
            if event == "sigterm":
                a.stop()
            else:
                # A crash: a SIGKILLed hafm leaves the VIP on a, and a's page server would go on
                # answering; a crashed host answers nothing.
                a.host.stop_test_page_server()
                a.kill()
            poller.wait_for(B_IP, timeout=10)
            return poller.outage(since, B_IP)


def run(modes: tuple[Mode, ...], events: tuple[Event, ...], rounds: int, workdir: Path) -> list[Result]:
    results = []
    for mode in modes:
        for event in events:
            outages = []
            for number in range(rounds):
                outage = one_round(mode, event, workdir / f"{mode}-{event}-{number}")
                if outage is None:
                    raise RuntimeError(f"{mode} {event} round {number}: the client never reached b")
                outages.append(outage)
                print(f"  {mode:8} {event:8} round {number + 1}: {outage:.3f} s", file=sys.stderr)
            results.append(Result(mode, event, tuple(outages)))
    return results


def table(results: list[Result]) -> str:
    lines = [
        "| mode | event | median outage | min–max | design bound |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.mode} | {r.event.upper()} | {statistics.median(r.outages):.3f} s | "
            f"{min(r.outages):.3f}–{max(r.outages):.3f} s | {expected(r.mode, r.event)} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated: vrrp, witness, lease")
    parser.add_argument("--events", default=",".join(EVENTS), help="comma-separated: sigterm, sigkill")
    args = parser.parse_args(argv)
    modes = tuple(m for m in args.modes.split(",") if m)
    events = tuple(e for e in args.events.split(",") if e)
    bad = [m for m in modes if m not in MODES] + [e for e in events if e not in EVENTS]
    if bad or args.rounds < 1:
        print(f"bench/witness.py: bad --modes/--events/--rounds: {', '.join(bad) or args.rounds}", file=sys.stderr)
        return 2
    reason = netns_unavailable_reason() or etcd_available()
    if reason is not None:
        print(f"bench/witness.py: {reason}", file=sys.stderr)
        return 1
    workdir = Path(tempfile.mkdtemp(prefix="hafm-bench-witness-"))
    print(f"work directory: {workdir}", file=sys.stderr)
    results = run(modes, events, args.rounds, workdir)  # type: ignore[arg-type]
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
