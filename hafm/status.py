"""``hafm status``: the status document (schema ``hafm-status/1``) and its 80-column table.

:func:`build_status` turns what the coordinator and the check runner know into
a JSON-ready dict; :func:`render_table` prints it for a terminal.  Both are
pure.  The schema is documented field by field in docs/status.md, and
``tests/test_status.py`` keeps the two in step.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from hafm.vrrp.coordinator import Coordinator, InstanceReport
from hafm.vrrp.tracking import Tracked

SCHEMA = "hafm-status/1"


def _iso(wall: float) -> str:
    return datetime.datetime.fromtimestamp(wall, datetime.UTC).isoformat(timespec="seconds")


def contribution(tracked: Tracked) -> int | str:
    """What one tracked check adds to the priority now: a number, ``"fault"`` or 0."""
    if tracked.up and tracked.file_delta is not None:
        if tracked.weight == 0:
            return "fault" if tracked.file_delta else 0
        return tracked.file_delta * tracked.weight
    if tracked.weight == 0:
        return 0 if tracked.up else "fault"
    if tracked.weight < 0:
        return 0 if tracked.up else tracked.weight
    return tracked.weight if tracked.up else 0


def instance_status(
    report: InstanceReport, *, now: float, wall_now: float, check_details: Mapping[str, str]
) -> dict[str, Any]:
    """One entry of ``instances`` (``now`` on the coordinator's clock, ``wall_now`` the epoch time)."""
    counters = report.counters
    return {
        "name": report.name,
        "interface": report.interface,
        "family": report.family,
        "vrid": report.vrid,
        "version": report.version,
        "state": report.state.value,
        "since": _iso(wall_now - (now - report.since)),
        "since_seconds": round(now - report.since, 3),
        "reason": report.reason,
        "maintenance": report.maintenance,
        "sync_group": report.sync_group,
        "priority": {"base": report.base_priority, "effective": report.priority, "explanation": report.explanation},
        "tracked_checks": [
            {
                "name": t.name,
                "weight": t.weight,
                "up": t.up,
                "value": t.file_delta,
                "contribution": contribution(t),
                "last_result": check_details.get(t.name, ""),
            }
            for t in report.tracked
        ],
        "master": (
            {"address": str(report.master), "priority": report.master_priority} if report.master is not None else None
        ),
        "advert_interval": {"configured": report.advert_int, "learned": report.master_adver_interval},
        "vips": list(report.vips),
        "holds_vips": report.holds_vips,
        "fault_causes": list(report.fault_causes),
        "counters": {
            "adverts_sent": counters.adverts_sent,
            "adverts_received": counters.adverts_received,
            "transitions": counters.transitions,
            "became_master": counters.became_master,
            "gratuitous_sent": counters.gratuitous_sent,
            "send_errors": counters.send_errors,
            "split_brains": counters.split_brains,
            "drops": {reason.value: n for reason, n in sorted(counters.drops.items(), key=lambda i: i[0].value)},
        },
    }


def build_status(
    coordinator: Coordinator,
    *,
    now: float,
    wall_now: float,
    started: float,
    version: str,
    pid: int,
    config_path: str,
    checks: Mapping[str, tuple[str, bool, str]] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The whole document.  ``checks`` maps a check name to ``(type, up, last result)``;
    ``extra`` holds sections plugins add (e.g. ``notify``)."""
    checks = checks or {}
    details = {name: detail for name, (_, _, detail) in checks.items()}
    return {
        "schema": SCHEMA,
        "hafm_version": version,
        "pid": pid,
        "config": config_path,
        "started_at": _iso(wall_now - (now - started)),
        "generated_at": _iso(wall_now),
        "instances": [
            instance_status(coordinator.report(name), now=now, wall_now=wall_now, check_details=details)
            for name in coordinator.members
        ],
        "sync_groups": [
            {"name": name, "state": coordinator.group_states[name], "members": list(group.group)}
            for name, group in coordinator.config.sync_groups.items()
        ],
        "checks": [
            {"name": name, "type": kind, "up": up, "last_result": detail} for name, (kind, up, detail) in checks.items()
        ],
        "drops_unrouted": {reason.value: n for reason, n in coordinator.unrouted_drops.items()},
        **dict(extra or {}),
    }


def render_table(status: Mapping[str, Any], *, width: int = 80) -> str:
    """The document as lines that fit ``width`` columns: one block per instance."""
    lines = [f"hafm {status['hafm_version']} (pid {status['pid']}) since {status['started_at']}, {status['config']}"]
    for item in status["instances"]:
        prio = item["priority"]
        state = item["state"] + (" (maintenance)" if item["maintenance"] else "")
        head = f"{item['name']}  {state}  since {item['since']}"
        lines.append("")
        lines.append(head)
        master = item["master"]
        heard = f"{master['address']} prio {master['priority']}" if master else "none heard"
        interval = item["advert_interval"]
        lines.append(
            f"  {item['interface']} v{item['version']} IPv{item['family']} VRID {item['vrid']}, "
            f"advert {interval['configured']:g} s (learned {interval['learned']:g} s)"
        )
        lines.append(f"  priority {prio['effective']} (base {prio['base']}), master {heard}")
        lines.append(f"  reason: {item['reason']}")
        if item["maintenance"]:
            lines.append(f"  maintenance: {item['maintenance']}")
        for cause in item["fault_causes"]:
            lines.append(f"  fault: {cause}")
        held = "held" if item["holds_vips"] else "not held"
        lines.append(f"  VIPs ({held}): {', '.join(item['vips'])}")
        for check in item["tracked_checks"]:
            contrib = check["contribution"]
            contrib_text = contrib if isinstance(contrib, str) else f"{contrib:+d}"
            lines.append(
                f"  check {check['name']}: {'up' if check['up'] else 'down'} weight {check['weight']} "
                f"-> {contrib_text}; {check['last_result']}"
            )
        counters = item["counters"]
        lines.append(
            f"  adverts sent {counters['adverts_sent']} recv {counters['adverts_received']}, "
            f"transitions {counters['transitions']}, garp/na {counters['gratuitous_sent']}"
        )
        drops = ", ".join(f"{reason} {n}" for reason, n in counters["drops"].items()) or "none"
        lines.append(
            f"  send errors {counters['send_errors']}, split brains {counters['split_brains']}, drops: {drops}"
        )
    for group in status["sync_groups"]:
        lines.append("")
        lines.append(f"sync group {group['name']}: {group['state']} ({', '.join(group['members'])})")
    if status.get("drops_unrouted"):
        drops = ", ".join(f"{reason} {n}" for reason, n in status["drops_unrouted"].items())
        lines.append("")
        lines.append(f"dropped before reaching an instance: {drops}")
    notify = status.get("notify")
    if notify:
        lines.append("")
        lines.append(f"notify scripts: {notify.get('runs', 0)} runs, {notify.get('failures', 0)} failed")
    return "\n".join(_fit(line, width) for line in lines) + "\n"


def _fit(line: str, width: int) -> str:
    return line if len(line) <= width else line[: width - 1] + "…"
