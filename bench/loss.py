"""Packet-loss benchmark: hafm and keepalived side by side, in the same lab, under the same loss, at the same time.

One lab holds two pairs on one bridge: hafm on ha (priority 100, MASTER) and hb (90), VRID 51,
VIP 198.51.100.100; keepalived on ka (100) and kb (90), VRID 52, VIP 198.51.100.101; and a client.
nftables in the bridge namespace drops each forwarded copy of a VRRP packet with probability p
(``numgen random``), so both pairs live through the very same loss for the very same seconds.

For each pair it counts flaps (the Backup taking the VIP, or the Master losing it), the time two
nodes held the VIP at once, and the silences on the Backup's wire (no advert from its Master for a
Master_Down_Interval, as tcpdump on the Backup's eth0 saw it), next to the number of flaps the loss
alone explains (:func:`hafm.lab.network.loss_flap_bound`).

Run ``sudo .venv/bin/python bench/loss.py`` (both scenarios, 60 s each, about 2.5 min) or
``--scenarios 30:2:1 --seconds 120 --rounds 3``; see docs/faults.md.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from failover import machine_line, new_workdir, preflight_problem
from scapy.layers.inet import IP
from scapy.utils import rdpcap

from hafm.lab.network import Lab, LabError, loss_flap_bound, wait_until
from hafm.lab.nodes import (
    DaemonNode,
    HafmNode,
    KeepalivedNode,
    VipWatcher,
    instance_toml,
    keepalived_conf,
    start_mixed_nodes,
)
from hafm.vrrp.constants import master_down_interval

HAFM_VIP, KEEPALIVED_VIP = "198.51.100.100", "198.51.100.101"


@dataclass(frozen=True)
class Scenario:
    percent: int
    version: int
    advert_int: float

    @property
    def title(self) -> str:
        return f"{self.percent} % loss, VRRPv{self.version} advert_int {self.advert_int:g}"


@dataclass(frozen=True)
class Outcome:
    daemon: str
    flaps: int
    dual_seconds: float
    silences: int  # times the Backup's wire carried no advert from its Master for a Master_Down_Interval


DEFAULT_SCENARIOS = (Scenario(30, 2, 1.0), Scenario(10, 3, 0.1))


def parse_scenario(text: str) -> Scenario:
    """``PERCENT:VERSION:ADVERT_INT``, e.g. ``30:2:1``."""
    try:
        percent, version, advert_int = text.split(":")
        scenario = Scenario(int(percent), int(version), float(advert_int))
    except ValueError:
        raise argparse.ArgumentTypeError(f"scenario {text!r} is not PERCENT:VERSION:ADVERT_INT (e.g. 30:2:1)") from None
    if not 0 <= scenario.percent < 100 or scenario.version not in (2, 3) or scenario.advert_int <= 0:
        raise argparse.ArgumentTypeError(f"scenario {text!r}: percent 0..99, version 2 or 3, advert_int > 0")
    if scenario.version == 2 and scenario.advert_int != int(scenario.advert_int):
        raise argparse.ArgumentTypeError(f"scenario {text!r}: VRRPv2 advert_int is whole seconds")
    return scenario


def flaps(watcher: VipWatcher, master: str, backup: str, since: float) -> int:
    return watcher.changes(backup, holds=True, since=since) + watcher.changes(master, holds=False, since=since)


def silences(pcap: Path, master_ip: str, longer_than: float) -> int:
    """Gaps longer than ``longer_than`` between the Master's adverts as captured on the Backup's eth0.

    Each one entitles the Backup to take over, whether adverts were lost or sent late: a daemon
    that flaps more often than this flapped without cause.
    """
    times = [float(p.time) for p in rdpcap(str(pcap)) if IP in p and p[IP].src == master_ip]
    return sum(1 for earlier, later in zip(times, times[1:], strict=False) if later - earlier > longer_than)


def run_once(scenario: Scenario, seconds: float, workdir: Path, number: int) -> list[Outcome]:
    """Both pairs up and settled, ``seconds`` of loss, then what each pair went through."""
    common = {"version": scenario.version, "advert_int": scenario.advert_int}
    hafm = {"vips": (f"{HAFM_VIP}/24",), **common}
    ka = {"vrid": 52, "vips": (f"{KEEPALIVED_VIP}/24",), **common}
    specs: dict[str, tuple[str, type[DaemonNode], str]] = {
        "ha": ("198.51.100.1/24", HafmNode, instance_toml(priority=100, state="MASTER", **hafm)),  # type: ignore[arg-type]
        "hb": ("198.51.100.2/24", HafmNode, instance_toml(priority=90, **hafm)),  # type: ignore[arg-type]
        "ka": ("198.51.100.3/24", KeepalivedNode, keepalived_conf(priority=100, state="MASTER", **ka)),  # type: ignore[arg-type]
        "kb": ("198.51.100.4/24", KeepalivedNode, keepalived_conf(priority=90, **ka)),  # type: ignore[arg-type]
    }  # fmt: skip
    with Lab(prefix=f"bl{os.getpid() % 100000}n{number}", workdir=workdir / f"run{number}") as lab:
        nodes = start_mixed_nodes(lab, lab.workdir, specs)
        lab.add_host("client", "198.51.100.50/24")
        pairs = {"hafm": ("ha", "hb", HAFM_VIP), "keepalived": ("ka", "kb", KEEPALIVED_VIP)}
        for master, _backup, vip in pairs.values():
            if not wait_until(lambda m=master, v=vip: nodes[m].has_vip(v), timeout=15):  # type: ignore[misc]
                raise SystemExit(f"bench/loss.py: {master} never took {vip}; logs in {lab.workdir}")
        time.sleep(3 * scenario.advert_int + 1)  # the Backups have heard their Master
        mdi = master_down_interval(90, version=scenario.version, master_adver_interval=scenario.advert_int)
        with contextlib.ExitStack() as stack:
            watchers = {
                daemon: stack.enter_context(VipWatcher({master: nodes[master], backup: nodes[backup]}, vip=vip))
                for daemon, (master, backup, vip) in pairs.items()
            }
            sniffers = {
                daemon: nodes[backup].host.sniff(bpf_filter=f"ip proto 112 and src {nodes[master].host.ipv4.ip}")
                for daemon, (master, backup, _vip) in pairs.items()
            }
            since = time.monotonic()
            lab.vrrp_loss(scenario.percent)
            time.sleep(seconds)
            lab.vrrp_loss(0)
            pcaps = {daemon: sniffer.stop() for daemon, sniffer in sniffers.items()}
            return [
                Outcome(
                    daemon,
                    flaps(watchers[daemon], master, backup, since),
                    watchers[daemon].dual_seconds(since),
                    silences(pcaps[daemon], str(nodes[master].host.ipv4.ip), mdi),
                )
                for daemon, (master, backup, _vip) in pairs.items()
            ]


def prepare(prog: str, workdir: Path | None) -> Path | None:
    """The work directory, once the machine line is printed; None (and one line on stderr) if the
    bench cannot run here. Shared with bench/partition.py."""
    reason = preflight_problem()
    if reason is not None:
        print(f"{prog}: {reason}", file=sys.stderr)
        return None
    print(machine_line())
    return workdir or new_workdir()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/loss.py", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scenarios",
        nargs="+",
        type=parse_scenario,
        default=list(DEFAULT_SCENARIOS),
        help="PERCENT:VERSION:ADVERT_INT each (default: 30:2:1 10:3:0.1)",
    )
    parser.add_argument("--seconds", type=float, default=60.0, help="seconds of loss per run (default 60)")
    parser.add_argument("--rounds", type=int, default=1, help="runs per scenario (default 1)")
    parser.add_argument("--workdir", type=Path, help="where logs go (default: a new temporary directory)")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.seconds <= 0:
        parser.error("--rounds must be at least 1 and --seconds positive")
    workdir = prepare("bench/loss.py", args.workdir)
    if workdir is None:
        return 1
    print(f"{args.seconds:g} s of random VRRP loss per run, {args.rounds} run(s) per scenario; logs in {workdir}")
    print("flaps: the Backup took the VIP or the Master lost it; silences: Master_Down_Intervals without an")
    print("advert on the Backup's wire (each entitles a takeover); dual s: seconds both held the VIP")
    print(f"{'':<38} {'':>3} {'':>5}  {'hafm':^24}  {'keepalived':^24}")
    columns = f"{'flaps':>6} {'silences':>8} {'dual s':>8}"
    print(f"{'scenario':<38} {'run':>3} {'bound':>5}  {columns}  {columns}")
    number = 0
    for scenario in args.scenarios:
        bound = loss_flap_bound(scenario.percent / 100, round(args.seconds / scenario.advert_int))
        for run in range(1, args.rounds + 1):
            number += 1
            try:
                found = {o.daemon: o for o in run_once(scenario, args.seconds, workdir, number)}
            except (LabError, subprocess.SubprocessError) as exc:
                # One broken run (a command timing out on a loaded machine) should not lose the others.
                print(f"{scenario.title:<38} {run:>3} {bound:>5}  run failed: {exc}", flush=True)
                continue
            h, k = found["hafm"], found["keepalived"]
            cells = [f"{o.flaps:>6} {o.silences:>8} {o.dual_seconds:>8.3f}" for o in (h, k)]
            print(f"{scenario.title:<38} {run:>3} {bound:>5}  {cells[0]}  {cells[1]}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
