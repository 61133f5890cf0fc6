"""What it costs to run: hafm against keepalived, CPU, memory, VIP placement and start-up.

For each case a fresh :class:`hafm.lab.network.Lab` holds node a (198.51.100.1, priority
100, MASTER for every instance) and node b (198.51.100.2, priority 90, BACKUP), each with the
test page server. Both nodes run the same daemon with N instances (VRID i, one VIP
203.0.113.i/32 each), or one instance tracking 50 HTTP checks of the node's own test page
(hafm: ``type = "http"`` checks; keepalived: ``vrrp_script`` running curl). Once a holds every
VIP and b none (or after a timeout), for ``--window`` seconds we measure on both nodes:

- CPU as % of one core: ``utime + stime + cutime + cstime`` (``/proc/PID/stat``) summed over the
  daemon's process tree, end minus start: the CPU of children reaped in the window (curl, scripts)
  is in their parent's ``cutime``, a child still alive is counted itself;
- RSS: ``VmRSS`` summed over the daemon's processes, at the end of the window;
- VIPs, every ``VIP_SAMPLE`` s: how many a holds, how many b holds, how many neither holds
  (missing) and how many both hold (duplicated); the table shows the worst sample.

The start-up table is :mod:`memory`'s (a lone Backup, time to BACKUP and RSS). Every daemon
variant runs in the same invocation: keepalived, hafm from this tree, and with ``--before DIR``
hafm from another source tree (e.g. ``git archive`` of an older commit), for before/after tables.
``--json PATH`` saves everything for ``bench/plots.py``.

Run ``sudo .venv/bin/python bench/scale.py`` (about 20 min); ``--quick`` is a smoke run of a
minute. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import ClassVar

import failover
import memory

from hafm.lab.network import Host, Lab
from hafm.lab.nodes import DaemonNode, HafmNode, KeepalivedNode, check_toml, instance_toml, keepalived_conf

A_IP, B_IP = "198.51.100.1", "198.51.100.2"
PRIO_A, PRIO_B = 100, 90
VIP_SAMPLE = 2.0  # seconds between two looks at where the VIPs are
SETTLE_TIMEOUT = 60.0
KEEPALIVED_GLOBAL = "global_defs {\n    router_id lab\n    vrrp_garp_master_delay 0\n}\n"
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, kw_only=True)
class Case:
    """One line of the scale table."""

    instances: int
    version: int
    advert_int: float
    checks: int = 0  # HTTP checks tracked by the (single) instance

    @property
    def title(self) -> str:
        if self.checks:
            return f"{self.instances} inst + {self.checks} HTTP checks at 1 s"
        return f"{self.instances} inst v{self.version} adv {self.advert_int:g}"


def cases(quick: bool) -> list[Case]:
    """The issue's cases; ``quick`` keeps the smallest of each kind."""
    counts = (1, 2) if quick else (1, 50, 100, 200)
    found = [Case(instances=n, version=2, advert_int=1.0) for n in counts]
    found += [Case(instances=n, version=3, advert_int=0.1) for n in counts]
    found.append(Case(instances=1, version=2, advert_int=1.0, checks=2 if quick else 50))
    return found


def vip(index: int) -> str:
    """The VIP of instance ``index`` (1-based): 203.0.113.index/32."""
    if not 1 <= index <= 254:
        raise ValueError(f"instance {index} has no VIP: at most 254 instances")
    return f"203.0.113.{index}/32"


def check_url(address: str) -> str:
    return f"http://{address}/test/test.html"


def hafm_config(case: Case, *, priority: int, state: str, address: str) -> str:
    """The hafm configuration of one node for ``case``."""
    tables = []
    track = ""
    if case.checks:
        names = [f"c{j}" for j in range(1, case.checks + 1)]
        tables = [
            check_toml(name, type="http", url=check_url(address), interval=1.0, timeout=1.0, weight=-1)
            for name in names
        ]
        track = "track_check = [" + ", ".join(f'"{n}"' for n in names) + "]\n"
    for index in range(1, case.instances + 1):
        tables.append(
            instance_toml(
                priority=priority,
                state=state,
                version=case.version,
                advert_int=case.advert_int,
                vips=(vip(index),),
                name=f"VI_{index}",
                vrid=index,
                extra=track,
            )  # fmt: skip
        )
    return "\n".join(tables)


def keepalived_config(case: Case, *, priority: int, state: str, address: str) -> str:
    """The keepalived twin of :func:`hafm_config`: curl in a vrrp_script for each HTTP check."""
    parts = [KEEPALIVED_GLOBAL.replace("}\n", "    script_user root\n    enable_script_security\n}\n", 1)]
    track = ""
    if case.checks:
        for j in range(1, case.checks + 1):
            parts.append(
                f'vrrp_script c{j} {{\n    script "/usr/bin/curl -sf -o /dev/null -m 1 {check_url(address)}"\n'
                "    interval 1\n    timeout 1\n    weight -1\n}\n"
            )
        track = "    track_script {\n" + "".join(f"        c{j}\n" for j in range(1, case.checks + 1)) + "    }\n"
    for index in range(1, case.instances + 1):
        text = keepalived_conf(
            priority=priority, state=state, version=case.version, advert_int=case.advert_int,
            vips=(vip(index),), name=f"VI_{index}", vrid=index, extra=track,
        )  # fmt: skip
        if not text.startswith(KEEPALIVED_GLOBAL):
            raise AssertionError("hafm.lab.nodes.keepalived_conf changed its global_defs")
        parts.append(text.removeprefix(KEEPALIVED_GLOBAL))
    return "".join(parts)


# -- measuring a process tree from /proc (pure parsers first) ----------------------------------


def parse_cpu_ticks(stat: str) -> int:
    """utime + stime + cutime + cstime (clock ticks) of a ``/proc/PID/stat`` line.

    The command name (field 2) may hold spaces and parentheses, so fields are counted
    from the last ``)``.
    """
    fields = stat.rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state); utime..cstime are fields 14..17.
    return sum(int(value) for value in fields[11:15])


def tree_cpu_ticks(pid: int) -> int:
    """CPU ticks of ``pid``'s live process tree, reaped children included."""
    total = 0
    for member in memory.process_tree(pid):
        try:
            total += parse_cpu_ticks(Path(f"/proc/{member}/stat").read_text())
        except (OSError, IndexError, ValueError):  # ended while we looked
            continue
    return total


def cpu_percent(ticks: int, seconds: float) -> float:
    """``ticks`` over ``seconds`` of wall time, as % of one core."""
    return 100.0 * ticks / CLK_TCK / seconds


@dataclass(frozen=True, kw_only=True)
class VipSample:
    on_master: int
    on_backup: int
    missing: int
    duplicated: int


def vip_sample(expected: Sequence[str], on_master: set[str], on_backup: set[str]) -> VipSample:
    """Where the ``expected`` VIPs (addresses, no prefix) are."""
    wanted = set(expected)
    return VipSample(
        on_master=len(wanted & on_master),
        on_backup=len(wanted & on_backup),
        missing=len(wanted - on_master - on_backup),
        duplicated=len(wanted & on_master & on_backup),
    )


@dataclass(kw_only=True)
class Result:
    """One case for one daemon variant."""

    daemon: str
    case: str
    instances: int
    settled: float | None  # seconds from start until a held every VIP and b none
    cpu_master: float
    cpu_backup: float
    rss_master_mib: float
    rss_backup_mib: float
    vips: list[VipSample] = field(default_factory=list)

    @property
    def worst(self) -> VipSample | None:
        """The worst of the samples, field by field; None if every sample was lost."""
        if not self.vips:
            return None
        return VipSample(
            on_master=min(s.on_master for s in self.vips),
            on_backup=max(s.on_backup for s in self.vips),
            missing=max(s.missing for s in self.vips),
            duplicated=max(s.duplicated for s in self.vips),
        )


# -- the daemon variants ------------------------------------------------------------------------


@dataclass
class TreeHafmNode(HafmNode):
    """hafm run from another source tree (``PYTHONPATH``), with this interpreter and its packages.

    ``PYTHONSAFEPATH``: ``python -m`` would otherwise put the working directory first on
    ``sys.path``, and run from a checkout that is this tree's ``hafm``, not the other one's.
    """

    tree: ClassVar[Path | None] = None
    bench_label: ClassVar[str] = "hafm before"

    def argv(self) -> list[str]:
        assert self.tree is not None
        return ["env", "PYTHONSAFEPATH=1", f"PYTHONPATH={self.tree}", *super().argv()]


def variants(before: Path | None) -> dict[str, type[DaemonNode]]:
    found: dict[str, type[DaemonNode]] = {"keepalived": KeepalivedNode}
    if before is not None:
        TreeHafmNode.tree = before.resolve()
        found["hafm before"] = TreeHafmNode
    found["hafm"] = HafmNode
    return found


def node_config(kind: type[DaemonNode], case: Case, *, priority: int, state: str, address: str) -> str:
    make = hafm_config if issubclass(kind, HafmNode) else keepalived_config
    return make(case, priority=priority, state=state, address=address)


# -- one case --------------------------------------------------------------------------------------


def holding(host: Host) -> set[str] | None:
    """The addresses on ``host``'s eth0, or None when ``ip`` did not answer in time (a loaded machine)."""
    try:
        return {address.split("/")[0] for address in host.addresses()}
    except subprocess.TimeoutExpired:
        return None


def vip_sample_of(expected: Sequence[str], a: Host, b: Host) -> VipSample | None:
    """Where the VIPs are now, or None if either host could not be asked."""
    on_master, on_backup = holding(a), holding(b)
    if on_master is None or on_backup is None:
        return None
    return vip_sample(expected, on_master, on_backup)


def wait_settled(a: Host, b: Host, expected: list[str], nodes: list[DaemonNode], timeout: float) -> float | None:
    """Seconds until a holds every expected VIP and b none, or None."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        sample = vip_sample_of(expected, a, b)
        if sample is not None and sample.on_master == len(expected) and sample.on_backup == 0:
            return time.monotonic() - started
        if any(node.proc is not None and node.proc.poll() is not None for node in nodes):
            raise RuntimeError(f"a daemon exited; logs in {nodes[0].workdir}")
        time.sleep(0.2)
    return None


def run_case(lab: Lab, a: Host, b: Host, kind: type[DaemonNode], case: Case, window: float, workdir: Path) -> Result:
    """Start ``kind`` on a and b with ``case``'s configs, settle, measure, stop; leaves no VIP behind."""
    master = kind(
        host=a, config=node_config(kind, case, priority=PRIO_A, state="MASTER", address=A_IP), workdir=workdir
    )
    backup = kind(
        host=b, config=node_config(kind, case, priority=PRIO_B, state="BACKUP", address=B_IP), workdir=workdir
    )
    nodes = [master, backup]
    for node in nodes:
        if isinstance(node, HafmNode):
            node.log_level = "info"  # debug logging would be work keepalived is not doing
    expected = [vip(i).split("/")[0] for i in range(1, case.instances + 1)]
    try:
        master.start()
        backup.start()
        settled = wait_settled(a, b, expected, nodes, SETTLE_TIMEOUT)
        time.sleep(max(2.0, 5 * case.advert_int))  # let start-up work finish before measuring
        assert master.proc is not None and backup.proc is not None
        pids = (master.proc.pid, backup.proc.pid)
        before = [tree_cpu_ticks(pid) for pid in pids]
        started = time.monotonic()
        samples = []
        while True:
            sample = vip_sample_of(expected, a, b)
            if sample is not None:  # a sample lost to a slow `ip` is left out, not counted as missing
                samples.append(sample)
            left = window - (time.monotonic() - started)
            if left <= 0:
                break
            time.sleep(min(VIP_SAMPLE, left))
        elapsed = time.monotonic() - started
        after = [tree_cpu_ticks(pid) for pid in pids]
        rss = [memory.tree_rss_kib(pid)[0] / 1024 for pid in pids]
    finally:
        for node in nodes:
            failover.stop_node(node)
        for host in (a, b):
            for address in (holding(host) or set()) & set(expected):
                failover.remove_vip(host, address)
    return Result(
        daemon=memory.label_of(kind),
        case=case.title,
        instances=case.instances,
        settled=settled,
        cpu_master=cpu_percent(after[0] - before[0], elapsed),
        cpu_backup=cpu_percent(after[1] - before[1], elapsed),
        rss_master_mib=rss[0],
        rss_backup_mib=rss[1],
        vips=samples,
    )


def run_cases(
    chosen: list[Case], kinds: dict[str, type[DaemonNode]], window: float, workdir: Path
) -> dict[str, list[Result]]:
    """Every case in one lab, every daemon variant one after the other per case."""
    results: dict[str, list[Result]] = {label: [] for label in kinds}
    with Lab(prefix=f"bsc{os.getpid() % 100000}", workdir=workdir / "lab") as lab:
        a = lab.add_host("a", f"{A_IP}/24")
        b = lab.add_host("b", f"{B_IP}/24")
        for host in (a, b):
            host.start_test_page_server()
        for number, case in enumerate(chosen):
            order = list(kinds.items())
            if number % 2:
                order.reverse()
            for label, kind in order:
                where = workdir / f"case{number}-{label.replace(' ', '-')}"
                result = run_case(lab, a, b, kind, case, window, where)
                results[label].append(result)
                print(
                    f"  {case.title:<34} {label:<12} CPU {result.cpu_master:5.1f} % / {result.cpu_backup:5.1f} %"
                    f"  RSS {result.rss_master_mib:5.1f} MiB  VIPs {vip_cell(result)}",
                    flush=True,
                )
    return results


# -- reporting -------------------------------------------------------------------------------------


def vip_cell(result: Result) -> str:
    worst = result.worst
    if worst is None:
        return "no sample (ip timed out)"
    cell = f"{worst.on_master}/{result.instances} a, {worst.on_backup} b"
    if worst.missing or worst.duplicated:
        cell += f" ({worst.missing} missing, {worst.duplicated} dup)"
    if result.settled is None:
        cell += ", never settled"
    return cell


def scale_table(results: dict[str, list[Result]]) -> str:
    """One line per case and daemon variant."""
    header = ["case", "daemon", "CPU master %", "CPU backup %", "RSS master MiB", "RSS backup MiB", "VIPs (worst)"]
    lines = []
    by_case: dict[str, list[Result]] = {}
    for found in results.values():
        for result in found:
            by_case.setdefault(result.case, []).append(result)
    for case, found in by_case.items():
        for result in found:
            lines.append(
                [
                    case,
                    result.daemon,
                    f"{result.cpu_master:.1f}",
                    f"{result.cpu_backup:.1f}",
                    f"{result.rss_master_mib:.1f}",
                    f"{result.rss_backup_mib:.1f}",
                    vip_cell(result),
                ]
            )
    return failover.format_table(header, lines)


def to_json(
    results: dict[str, list[Result]],
    startup: dict[str, list[memory.MemorySample]],
    startup6: dict[str, list[memory.MemorySample]],
) -> dict[str, object]:
    return {
        "machine": failover.machine_line(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "scale": {
            label: [{**asdict(r), "vips": [asdict(s) for s in r.vips]} for r in found]
            for label, found in results.items()
        },
        "startup": {label: [asdict(s) for s in found] for label, found in startup.items()},
        "startup_ipv6": {label: [asdict(s) for s in found] for label, found in startup6.items()},
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bench/scale.py",
        description="CPU, RSS, VIP placement and start-up of hafm vs keepalived in a netns lab (needs root).",
    )
    parser.add_argument("--window", type=float, default=20.0, help="seconds of measurement per case (default 20)")
    parser.add_argument("--rounds", type=int, default=5, help="starts per daemon for the start-up table (default 5)")
    parser.add_argument("--before", type=Path, metavar="DIR", help="also run hafm from this source tree")
    parser.add_argument("--only", nargs="+", metavar="TEXT", help="only the cases whose title contains TEXT")
    parser.add_argument("--json", type=Path, metavar="PATH", help="save every figure here (for bench/plots.py)")
    parser.add_argument("--quick", action="store_true", help="smoke run: small cases, 2 s windows, 1 round")
    parser.add_argument("--workdir", type=Path, help="where daemon logs go (default: a new temporary directory)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.window <= 0 or args.rounds < 1:
        parser.error("--window must be > 0 and --rounds >= 1")
    if args.before is not None and not (args.before / "hafm" / "__init__.py").is_file():
        parser.error(f"--before {args.before}: no hafm/__init__.py there")
    window, rounds = (2.0, 1) if args.quick else (args.window, args.rounds)
    chosen = [c for c in cases(args.quick) if not args.only or any(t in c.title for t in args.only)]
    reason = failover.preflight_problem()
    if reason is not None:
        print(f"bench/scale.py: {reason}", file=sys.stderr)
        return 1
    workdir = args.workdir or failover.new_workdir()
    kinds = variants(args.before)
    print(failover.machine_line())
    print(f"daemons: {', '.join(kinds)}; window {window:g} s per case; logs in {workdir}", flush=True)
    results = run_cases(chosen, kinds, window, workdir)
    print()
    print(f"CPU as % of one core over {window:g} s (reaped children included), RSS summed over the daemon's")
    print(f"processes; VIPs: the worst of the samples taken every {VIP_SAMPLE:g} s")
    print(scale_table(results))
    print()
    print(f"one daemon alone (BACKUP, v2 adv 1), RSS {memory.SETTLE_AFTER_BACKUP:g} s after reaching BACKUP:")
    startup = memory.measure(
        workdir / "memory", rounds, prefix=f"bsm{os.getpid() % 100000}", kinds=list(kinds.values())
    )
    print(memory.format_memory_table(startup))
    print()
    print("the same with an IPv6 VIP (v3 adv 1):")
    startup6 = memory.measure(
        workdir / "memory6", rounds, prefix=f"bs6{os.getpid() % 100000}", kinds=list(kinds.values()), ipv6=True
    )
    print(memory.format_memory_table(startup6))
    if args.json is not None:
        args.json.write_text(json.dumps(to_json(results, startup, startup6), indent=1) + "\n")
        print(f"\nfigures saved to {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
