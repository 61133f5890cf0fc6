"""Where a steady hafm spends its CPU: one :mod:`scale` case with both daemons under cProfile.

Node a (MASTER for every instance) and node b (BACKUP) run the case's hafm configs as in
``bench/scale.py``; once the VIPs have settled, both run for ``--window`` seconds, then get
SIGTERM, and cProfile writes ``a.prof`` and ``b.prof`` in the work directory. The top functions
by internal time are printed for each; open the files with ``python -m pstats`` for more.

Run ``sudo .venv/bin/python bench/profile.py --case "200 inst v2"`` (about a minute).
cProfile slows every Python call, so compare functions with each other, not with
``bench/scale.py``'s CPU figures.
"""

from __future__ import annotations

import argparse
import os
import pstats
import sys
import time
from dataclasses import dataclass

import failover
import scale

from hafm.lab.network import Lab
from hafm.lab.nodes import HafmNode


@dataclass
class ProfiledHafmNode(HafmNode):
    """hafm under ``python -m cProfile``; the profile is written when the daemon exits."""

    def argv(self) -> list[str]:
        profile = self.workdir / f"{self.host.name}.prof"
        return [sys.executable, "-m", "cProfile", "-o", str(profile), *super().argv()[1:]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/profile.py", description=__doc__.splitlines()[0])
    parser.add_argument("--case", default="200 inst v2", help="a bench/scale.py case title, or part of one")
    parser.add_argument("--window", type=float, default=20.0, help="seconds profiled after settling (default 20)")
    parser.add_argument("--top", type=int, default=25, help="functions shown per node (default 25)")
    args = parser.parse_args(argv)
    chosen = [c for c in scale.cases(quick=False) if args.case in c.title]
    if not chosen:
        parser.error(f"--case {args.case!r}: no such case in bench/scale.py")
    reason = failover.preflight_problem()
    if reason is not None:
        print(f"bench/profile.py: {reason}", file=sys.stderr)
        return 1
    workdir = failover.new_workdir()
    case = chosen[0]
    print(f"{case.title}: profiling both nodes for {args.window:g} s; files in {workdir}", flush=True)
    with Lab(prefix=f"bpr{os.getpid() % 100000}", workdir=workdir / "lab") as lab:
        a = lab.add_host("a", f"{scale.A_IP}/24")
        b = lab.add_host("b", f"{scale.B_IP}/24")
        for host in (a, b):
            host.start_test_page_server()
        started = time.monotonic()
        scale.run_case(lab, a, b, ProfiledHafmNode, case, args.window, workdir)
        print(f"ran {time.monotonic() - started:.0f} s")
    for name in ("a", "b"):
        print(f"\n== node {name} ({'MASTER' if name == 'a' else 'BACKUP'}), by internal time")
        stats = pstats.Stats(str(workdir / f"{name}.prof"))
        stats.sort_stats("tottime").print_stats(args.top)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
