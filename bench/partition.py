"""Partition-and-heal benchmark: after each heal, how soon is there one Master, and does the client follow it?

For each daemon (hafm, then keepalived) a fresh lab holds node a (198.51.100.1, priority 100,
MASTER), node b (198.51.100.2, 90) and a client. Each cycle isolates a's and b's bridge ports from
each other (the client still reaches both, so it follows b's gratuitous ARP), waits until both hold
the VIP, heals, and records when a alone holds the VIP and when the client's neighbour entry for the
VIP is a's MAC again (giving up after ``--wait`` seconds), and whether the VIP then answers a ping.

Run ``sudo .venv/bin/python bench/partition.py --cycles 5``; see docs/faults.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from loss import prepare

from hafm.lab.network import Lab, wait_until
from hafm.lab.nodes import VIP4, DaemonNode, HafmNode, KeepalivedNode, instance_toml, keepalived_conf, start_nodes


def run(kind: type[DaemonNode], version: int, advert_int: float, cycles: int, wait: float, workdir: Path) -> str:
    """One lab, ``cycles`` partitions and heals; a summary line."""
    conf = keepalived_conf if kind is KeepalivedNode else instance_toml
    common = {"version": version, "advert_int": advert_int}
    specs = {
        "a": ("198.51.100.1/24", conf(priority=100, state="MASTER", **common)),  # type: ignore[arg-type]
        "b": ("198.51.100.2/24", conf(priority=90, **common)),  # type: ignore[arg-type]
    }
    name = "hafm" if kind is HafmNode else "keepalived"
    with Lab(prefix=f"bp{os.getpid() % 100000}v{version}{name[0]}", workdir=workdir / f"{name}-v{version}") as lab:
        nodes = start_nodes(lab, lab.workdir, specs, kind=kind)
        a, b = nodes["a"], nodes["b"]
        client = lab.add_host("client", "198.51.100.50/24")

        def holders() -> list[str]:
            return [n for n, node in nodes.items() if node.has_vip()]

        if not wait_until(lambda: holders() == ["a"], timeout=15):
            return f"{name}: a never held the VIP alone; logs in {lab.workdir}"
        time.sleep(3 * advert_int + 0.5)
        client.ping(VIP4)
        one_after: list[float] = []
        followed: list[float] = []
        answered = 0
        for _ in range(cycles):
            lab.isolate(a.host, b.host)
            wait_until(lambda: sorted(holders()) == ["a", "b"], timeout=10)
            wait_until(lambda: client.neighbour_mac(VIP4) == b.host.mac, timeout=2)
            healed = time.monotonic()
            lab.isolate(a.host, b.host, on=False)
            if wait_until(lambda: holders() == ["a"], timeout=3 * advert_int + 2, interval=0.01):
                one_after.append(time.monotonic() - healed)
            if wait_until(lambda: client.neighbour_mac(VIP4) == a.host.mac, timeout=wait, interval=0.01):
                followed.append(time.monotonic() - healed)
            answered += client.ping(VIP4, timeout=1)
            time.sleep(3 * advert_int)
    one = f"max {max(one_after):.3f} s" if one_after else "never"
    mac = f"max {max(followed):.3f} s" if followed else "-"
    return (
        f"{name:<10} v{version} adv {advert_int:<4g} one Master after {len(one_after)}/{cycles} heals ({one}); "
        f"client on the winner's MAC within {wait:g} s after {len(followed)}/{cycles} ({mac}); "
        f"VIP answered a ping after {answered}/{cycles}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/partition.py", description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=5, help="partitions and heals per daemon (default 5)")
    parser.add_argument("--wait", type=float, default=5.0, help="seconds to wait for the client to follow")
    parser.add_argument("--workdir", type=Path, help="where logs go (default: a new temporary directory)")
    args = parser.parse_args(argv)
    if args.cycles < 1 or args.wait <= 0:
        parser.error("--cycles must be at least 1 and --wait positive")
    workdir = prepare("bench/partition.py", args.workdir)
    if workdir is None:
        return 1
    for version, advert_int in ((2, 1.0), (3, 0.1)):
        for kind in (HafmNode, KeepalivedNode):
            print(run(kind, version, advert_int, args.cycles, args.wait, workdir), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
