"""SVG plots for docs/benchmarks.md from the JSON that bench/scale.py and bench/failover.py save.

    .venv/bin/pip install -e '.[bench]'      # matplotlib: a benchmark dependency, not hafm's
    .venv/bin/python bench/plots.py --scale scale.json --failover failover.json --out docs/

writes ``bench-cpu.svg`` (CPU against instance count, both daemons, master and backup, one panel
per advert interval) and ``bench-failover.svg`` (the client-seen outage of every round, per row
and daemon, next to the RFC bound).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

# Series styles: one colour per daemon variant, solid for the master, dashed for the backup.
COLOURS = {"keepalived": "tab:blue", "hafm before": "tab:grey", "hafm": "tab:orange"}


def cpu_series(scale: dict[str, Any]) -> dict[str, dict[str, list[tuple[int, float]]]]:
    """{panel title: {"DAEMON master|backup": [(instances, cpu %), ...]}} from scale.py's JSON.

    Panels are the advert intervals ("v2 adv 1", "v3 adv 0.1"); the HTTP-check case is left out.
    """
    panels: dict[str, dict[str, list[tuple[int, float]]]] = {}
    for daemon, results in scale["scale"].items():
        for result in results:
            if "HTTP" in result["case"]:
                continue
            panel = result["case"].split(" ", 2)[2]  # "50 inst v3 adv 0.1" -> "v3 adv 0.1"
            for role in ("master", "backup"):
                series = panels.setdefault(panel, {}).setdefault(f"{daemon} {role}", [])
                series.append((result["instances"], result[f"cpu_{role}"]))
    for panel in panels.values():
        for series in panel.values():
            series.sort()
    return panels


def outage_points(failover: dict[str, Any]) -> list[tuple[str, str, list[float], float]]:
    """[(row, daemon, outages of the rounds that failed over, RFC bound)] from failover.py's JSON."""
    points = []
    for row, found in failover["rows"].items():
        for daemon in ("keepalived", "hafm"):
            values = [value for value in found.get(daemon, []) if value is not None]
            points.append((row, daemon, values, found["rfc_bound"]))
    return points


def plot_cpu(scale: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("svg")
    from matplotlib import pyplot

    panels = cpu_series(scale)
    figure, axes = pyplot.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), squeeze=False)
    for axis, (title, series) in zip(axes[0], panels.items(), strict=True):
        for name, points in sorted(series.items()):
            daemon, role = name.rsplit(" ", 1)
            xs, ys = zip(*points, strict=True)
            axis.plot(
                xs, ys, marker="o", label=name, color=COLOURS.get(daemon, "black"),
                linestyle="-" if role == "master" else "--",
            )  # fmt: skip
        axis.set_title(f"{title}: CPU against instance count")
        axis.set_xlabel("VRRP instances")
        axis.set_ylabel("CPU, % of one core")
        axis.grid(alpha=0.3)
        axis.legend(fontsize="small")
    figure.suptitle(scale.get("machine", ""), fontsize="x-small")
    figure.tight_layout()
    figure.savefig(path, metadata={"Date": None})
    pyplot.close(figure)


def plot_failover(failover: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("svg")
    from matplotlib import pyplot

    points = outage_points(failover)
    rows = list(dict.fromkeys(row for row, *_ in points))
    figure, axes = pyplot.subplots(1, len(rows), figsize=(2.6 * len(rows), 4), squeeze=False)
    for axis, row in zip(axes[0], rows, strict=True):
        for position, (_, daemon, values, bound) in enumerate(p for p in points if p[0] == row):
            axis.scatter([position] * len(values), values, color=COLOURS[daemon], label=daemon, alpha=0.7)
            axis.axhline(bound, color="black", linewidth=0.8, linestyle=":")
        axis.set_xticks([0, 1], ["keepalived", "hafm"])
        axis.set_xlim(-0.6, 1.6)
        axis.set_title(row, fontsize="small")
        axis.set_ylabel("client-seen outage, s (dotted: RFC bound)")
        axis.grid(alpha=0.3, axis="y")
    figure.suptitle(failover.get("machine", ""), fontsize="x-small")
    figure.tight_layout()
    figure.savefig(path, metadata={"Date": None})
    pyplot.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/plots.py", description="SVG plots from the benchmarks' JSON.")
    parser.add_argument("--scale", type=Path, help="JSON from bench/scale.py --json")
    parser.add_argument("--failover", type=Path, help="JSON from bench/failover.py --json")
    parser.add_argument("--out", type=Path, default=Path("docs"), help="directory for the SVGs (default docs)")
    args = parser.parse_args(argv)
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("bench/plots.py: matplotlib is missing: pip install -e '.[bench]'", file=sys.stderr)
        return 1
    if args.scale is not None:
        plot_cpu(json.loads(args.scale.read_text()), args.out / "bench-cpu.svg")
    if args.failover is not None:
        plot_failover(json.loads(args.failover.read_text()), args.out / "bench-failover.svg")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
