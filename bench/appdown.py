"""Client-seen outage when the Master's application dies: health checks, not VRRP, must notice.

Node a (198.51.100.1, priority 100, MASTER) and node b (198.51.100.2, priority 90) each check their
own test page every second, ``fall 2``, weight -20, so a with a dead page advertises 80 and b
(90) takes over. The client polls the VIP's page every 5 ms; the bench stops a's page server
(connections refused at once) and records the outage the client saw, as bench/failover.py does.

Variants, in the same lab and run:

- ``keepalived``: ``vrrp_script`` running curl, ``interval 1 fall 2 rise 2 weight -20``;
- ``hafm``: an ``http`` check with the same numbers;
- ``hafm fast_interval 0.2``: the same, probing every 0.2 s between the first failure and ``fall``;
- ``hafm resign_below 90`` (on a): a resigns (priority-0 advert) when its priority drops below 90,
  instead of waiting for b's Master_Down timer;
- ``hafm fast + resign``: both.

Run ``sudo .venv/bin/python bench/appdown.py --rounds 3``; see docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import failover

from hafm.lab.network import Host, Lab
from hafm.lab.nodes import (
    VIP4,
    ClientPoller,
    DaemonNode,
    HafmNode,
    KeepalivedNode,
    check_toml,
    instance_toml,
    keepalived_conf,
)

A_IP, B_IP, CLIENT_IP = "198.51.100.1", "198.51.100.2", "198.51.100.50"
URL = "http://127.0.0.1/test/test.html"
INTERVAL, FALL, RISE, WEIGHT = 1.0, 2, 2, -20


@dataclass(frozen=True, kw_only=True)
class Variant:
    name: str
    daemon: type[DaemonNode]
    fast_interval: float | None = None
    resign_below: int | None = None


VARIANTS = (
    Variant(name="keepalived", daemon=KeepalivedNode),
    Variant(name="hafm", daemon=HafmNode),
    Variant(name="hafm fast_interval 0.2", daemon=HafmNode, fast_interval=0.2),
    Variant(name="hafm resign_below 90", daemon=HafmNode, resign_below=90),
    Variant(name="hafm fast + resign", daemon=HafmNode, fast_interval=0.2, resign_below=90),
)


def config(variant: Variant, *, priority: int, state: str) -> str:
    """One node's configuration: the instance tracking its own test page."""
    if variant.daemon is KeepalivedNode:
        script = (
            f'vrrp_script app {{\n    script "/usr/bin/curl -sf -o /dev/null -m 1 {URL}"\n'
            f"    interval {INTERVAL:g}\n    timeout 1\n    fall {FALL}\n    rise {RISE}\n    weight {WEIGHT}\n}}\n"
        )
        text = keepalived_conf(priority=priority, state=state, extra="    track_script {\n        app\n    }\n")
        head, sep, rest = text.partition("}\n")  # after global_defs
        security = "    script_user root\n    enable_script_security\n"
        return head + security + sep + script + rest
    extra = 'track_check = ["app"]\n'
    if variant.resign_below is not None and state == "MASTER":  # a's application is the one that dies
        extra += f"resign_below = {variant.resign_below}\n"
    keys: dict[str, object] = dict(type="http", url=URL, interval=INTERVAL, timeout=1.0, fall=FALL, rise=RISE)
    if variant.fast_interval is not None:
        keys["fast_interval"] = variant.fast_interval
    return instance_toml(priority=priority, state=state, extra=extra) + check_toml("app", weight=WEIGHT, **keys)


def run_round(lab: Lab, a: Host, b: Host, client: Host, variant: Variant, workdir: Path) -> float | None:
    """Start both nodes, wait for a steady Master with its check up, kill a's page; the outage."""
    kind = variant.daemon
    master = kind(host=a, config=config(variant, priority=100, state="MASTER"), workdir=workdir)
    backup = kind(host=b, config=config(variant, priority=90, state="BACKUP"), workdir=workdir)
    for node in (master, backup):
        if isinstance(node, HafmNode):
            node.log_level = "info"
    try:
        master.start()
        if not master.wait_state("MASTER", timeout=15):
            raise RuntimeError(f"{variant.name}: a never became MASTER; log {master.log_path}")
        backup.start()
        # rise 2 at 1 s, then a few quiet adverts: a must be at full priority before the kill.
        if not failover.settle(master, backup, 1.0) or not master.wait_state("MASTER"):
            raise RuntimeError(f"{variant.name}: no steady MASTER/BACKUP; logs in {workdir}")
        time.sleep(RISE * INTERVAL + 1.0)
        with ClientPoller(client, url=f"http://{VIP4}/test/test.html", timeout=failover.CLIENT_TIMEOUT) as poller:
            if not poller.wait_for(A_IP, timeout=5):
                raise RuntimeError(f"{variant.name}: the client never saw a")
            killed = time.monotonic()
            a.stop_test_page_server()
            poller.wait_for(B_IP, timeout=15)
            time.sleep(0.1)
            return poller.outage(since=killed, new_server=B_IP)
    finally:
        failover.stop_node(master)
        failover.stop_node(backup)
        for host in (a, b):
            failover.remove_vip(host, VIP4)
        a.start_test_page_server()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bench/appdown.py", description="Client-seen outage when the Master's HTTP server dies (needs root)."
    )
    parser.add_argument("--rounds", type=int, default=3, help="kills per variant (default 3)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="save every round's outage here")
    parser.add_argument("--workdir", type=Path, help="where daemon logs go (default: a new temporary directory)")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    reason = failover.preflight_problem()
    if reason is not None:
        print(f"bench/appdown.py: {reason}", file=sys.stderr)
        return 1
    workdir = args.workdir or failover.new_workdir()
    print(failover.machine_line())
    print(f"check interval {INTERVAL:g} s, fall {FALL}, weight {WEIGHT}; logs in {workdir}", flush=True)
    outages: dict[str, list[float | None]] = {v.name: [] for v in VARIANTS}
    with Lab(prefix=f"bad{os.getpid() % 100000}", workdir=workdir / "lab") as lab:
        a = lab.add_host("a", f"{A_IP}/24")
        b = lab.add_host("b", f"{B_IP}/24")
        for host in (a, b):
            host.start_test_page_server()
        client = lab.add_host("client", f"{CLIENT_IP}/24")
        for round_no in range(args.rounds):
            order = VARIANTS if round_no % 2 == 0 else tuple(reversed(VARIANTS))
            for variant in order:
                where = workdir / f"round{round_no}-{variant.name.replace(' ', '-')}"
                outage = run_round(lab, a, b, client, variant, where)
                outages[variant.name].append(outage)
                shown = f"{outage:.3f} s" if outage is not None else "no failover"
                print(f"  round {round_no + 1}/{args.rounds} {variant.name:<24} outage {shown}", flush=True)
    print()
    print("client-seen outage after a's HTTP server stops, seconds: median [min-max]")
    lines = [[name, failover.format_stats(failover.summarize(found))] for name, found in outages.items()]
    print(failover.format_table(["variant", "outage"], lines))
    if args.json is not None:
        args.json.write_text(json.dumps({"machine": failover.machine_line(), "outages": outages}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
