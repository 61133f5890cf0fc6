"""Memory and start-up time of one VRRP daemon: hafm against keepalived.

A lone daemon (priority 90, state BACKUP, VRRPv2, advert_int 1) is started in a
fresh lab host; we time it from ``Popen`` to its first "BACKUP" log line, wait
one more second so any start-up work left is done, and read ``VmRSS`` from ``/proc/PID/status`` for every process of the
daemon: hafm is one process, keepalived ``--vrrp`` is a parent plus its VRRP
child. Both figures go in the second table of ``bench/failover.py``; this file
can also be run on its own (``sudo .venv/bin/python bench/memory.py``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from hafm.lab.network import Lab
from hafm.lab.nodes import DaemonNode, HafmNode, KeepalivedNode, instance_toml, keepalived_conf

SETTLE_AFTER_BACKUP = 1.0


@dataclass(frozen=True, kw_only=True)
class MemorySample:
    """One start of one daemon."""

    daemon: str
    rss_kib: int  # summed over the daemon's processes
    processes: int
    startup_to_backup: float  # seconds from Popen to the BACKUP log line


def parse_vm_rss(status: str) -> int:
    """The ``VmRSS`` of a ``/proc/PID/status`` text, in KiB (0 for a kernel thread or zombie)."""
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            value, unit = line.split()[1:3]
            if unit != "kB":
                raise ValueError(f"VmRSS in unexpected unit {unit!r}")
            return int(value)
    return 0


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants that are still alive (from /proc/PID/task/*/children)."""
    found: list[int] = []
    todo = [pid]
    while todo:
        current = todo.pop()
        task_dir = Path(f"/proc/{current}/task")
        if not task_dir.exists():
            continue
        found.append(current)
        for task in task_dir.iterdir():
            try:
                todo += [int(child) for child in (task / "children").read_text().split()]
            except OSError:  # the task ended while we looked
                continue
    return found


def tree_rss_kib(pid: int) -> tuple[int, int]:
    """Summed VmRSS (KiB) of ``pid``'s process tree, and how many processes it has."""
    total = 0
    pids = process_tree(pid)
    for member in pids:
        try:
            total += parse_vm_rss(Path(f"/proc/{member}/status").read_text())
        except OSError:
            continue
    return total, len(pids)


IPV6_VIP = "2001:db8::100/64"


def daemon_config(kind: type[DaemonNode], ipv6: bool = False) -> str:
    """The lone Backup's configuration, the same for both daemons: v2 with an IPv4 VIP, or v3 with an IPv6 one."""
    make = instance_toml if issubclass(kind, HafmNode) else keepalived_conf
    if ipv6:
        return make(priority=90, state="BACKUP", version=3, advert_int=1.0, vips=(IPV6_VIP,))
    return make(priority=90, state="BACKUP", version=2, advert_int=1.0)


def measure_once(lab: Lab, name: str, kind: type[DaemonNode], workdir: Path, ipv6: bool = False) -> MemorySample:
    """Start ``kind`` on a new lab host ``name``; time to BACKUP and settled RSS. Stops it again."""
    host = lab.add_host(name, f"198.51.100.{60 + len(lab.hosts)}/24")
    node = kind(host=host, config=daemon_config(kind, ipv6), workdir=workdir)
    if isinstance(node, HafmNode):
        node.log_level = "info"  # debug logging would be work keepalived is not doing
    started = time.monotonic()
    node.start()
    try:
        deadline = started + 15
        while node.state() != "BACKUP":
            if time.monotonic() > deadline or (node.proc is not None and node.proc.poll() is not None):
                raise RuntimeError(f"{kind.__name__} did not reach BACKUP; log {node.log_path}")
            time.sleep(0.002)
        startup = time.monotonic() - started
        time.sleep(SETTLE_AFTER_BACKUP)
        assert node.proc is not None
        rss, processes = tree_rss_kib(node.proc.pid)
    finally:
        node.stop(timeout=5)
    return MemorySample(daemon=label_of(kind), rss_kib=rss, processes=processes, startup_to_backup=startup)


def label_of(kind: type[DaemonNode]) -> str:
    """The daemon's name in the tables: a ``bench_label`` class attribute, else hafm or keepalived."""
    return getattr(kind, "bench_label", "hafm" if issubclass(kind, HafmNode) else "keepalived")


def measure(
    workdir: Path,
    rounds: int,
    prefix: str = "bmem",
    kinds: list[type[DaemonNode]] | None = None,
    ipv6: bool = False,
) -> dict[str, list[MemorySample]]:
    """``rounds`` starts of each daemon (default hafm and keepalived), alternating the order, in one lab.

    ``ipv6``: a VRRPv3 instance with an IPv6 VIP instead of v2 with an IPv4 one.
    """
    order = list(kinds) if kinds is not None else [HafmNode, KeepalivedNode]
    samples: dict[str, list[MemorySample]] = {label_of(kind): [] for kind in order}
    with Lab(prefix=prefix, workdir=workdir / "lab") as lab:
        for round_no in range(rounds):
            for kind in order if round_no % 2 == 0 else reversed(order):
                sample = measure_once(lab, f"m{len(lab.hosts)}", kind, workdir / f"mem{round_no}", ipv6)
                samples[sample.daemon].append(sample)
    return samples


def format_memory_table(samples: dict[str, list[MemorySample]]) -> str:
    """The memory / start-up table: medians with min–max."""
    lines = [f"{'daemon':<11} {'processes':>9} {'RSS MiB [min-max]':>20} {'start-up to BACKUP s [min-max]':>32}"]
    for daemon, found in samples.items():
        if not found:
            continue
        rss = [s.rss_kib / 1024 for s in found]
        boot = [s.startup_to_backup for s in found]
        lines.append(
            f"{daemon:<11} {found[0].processes:>9} "
            f"{f'{statistics.median(rss):.1f} [{min(rss):.1f}-{max(rss):.1f}]':>20} "
            f"{f'{statistics.median(boot):.3f} [{min(boot):.3f}-{max(boot):.3f}]':>32}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``python bench/memory.py [--rounds N]``: print the memory table."""
    parser = argparse.ArgumentParser(description="RSS and start-up time of hafm vs keepalived (needs root).")
    parser.add_argument("--rounds", type=int, default=3, help="starts of each daemon (default 3)")
    parser.add_argument("--workdir", type=Path, help="where logs go (default: a new temporary directory)")
    args = parser.parse_args(argv)
    import failover  # the sibling script: same pre-flight checks

    reason = failover.preflight_problem()
    if reason is not None:
        print(f"bench/memory.py: {reason}", file=sys.stderr)
        return 1
    workdir = args.workdir or failover.new_workdir()
    print(format_memory_table(measure(workdir, args.rounds)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
