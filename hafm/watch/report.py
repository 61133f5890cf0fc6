"""How ``hafm watch`` shows a :class:`~hafm.watch.analysis.SegmentView`: an 80-column table, or a JSON document.

Pure functions of the view and the time: the capture shell decides when to print.
"""

from __future__ import annotations

import textwrap
from typing import Any

from hafm.vrrp.codec import IPAddress
from hafm.watch.analysis import Finding, Row, SegmentView

__all__ = ["JSON_SCHEMA_VERSION", "WIDTH", "render_json", "render_table"]

WIDTH = 80
JSON_SCHEMA_VERSION = 1
_CONTINUATION_INDENT = 5
_AUTH_NAMES = {0: "none", 1: "pass", 2: "ah"}
# (title, width, right-aligned); ADDRESSES takes the rest of the line.
_COLUMNS = (
    ("VRID", 4, True),
    ("VER", 3, False),
    ("SOURCE", 15, False),
    ("PRIO", 4, True),
    ("INTVL", 6, True),
    ("AUTH", 4, False),
    ("CKSUM", 6, False),
    ("SEEN", 5, True),
    ("COUNT", 6, True),
)
_SOURCE = 2  # index of the SOURCE column


def render_table(view: SegmentView, *, now: float, interface: str, elapsed: float) -> str:
    """The speakers as a table no wider than :data:`WIDTH`, then the findings, one wrapped paragraph each."""
    rows = view.rows()
    widths = [width for _, width, _ in _COLUMNS]
    address_width = WIDTH - sum(widths) - len(widths)
    lines = [
        f"hafm watch {interface}: {len(rows)} speaker(s) in {elapsed:.1f} s",
        _line([title for title, _, _ in _COLUMNS], widths) + " ADDRESSES",
    ]
    for row in rows:
        router = [str(row.vrid), f"v{row.version}", str(row.source)]
        # SOURCE fits any IPv4 address; a wider (IPv6) source ends a line of its own and the
        # row goes on below it, so that the address column keeps room for a VIP.
        if len(router[_SOURCE]) > widths[_SOURCE]:
            lines.append(_line(router + [""] * (len(widths) - len(router)), widths).rstrip())
            router = [""] * len(router)
        cells = [
            *router,
            str(row.priority),
            f"{row.interval:g}s",
            "-" if row.auth_type is None else _AUTH_NAMES.get(row.auth_type, str(row.auth_type)),
            row.checksum.value.replace("_", "-"),
            _ago(now - row.last_seen),
            str(row.count),
        ]
        addresses = ", ".join(str(address) for address in row.addresses) or "-"
        if len(addresses) <= address_width:
            lines.append(_line(cells, widths) + " " + addresses)
        else:
            # Too many for the column: all of them below the row, at nearly full width.
            lines.append(_line(cells, widths) + " " + f"{len(row.addresses)} addresses:")
            lines += textwrap.wrap(
                addresses,
                WIDTH,
                initial_indent=" " * _CONTINUATION_INDENT,
                subsequent_indent=" " * _CONTINUATION_INDENT,
            )
    findings = view.findings()
    lines.append("")
    if not findings:
        lines.append("no findings")
    for finding in findings:
        lines += textwrap.wrap(f"! {finding.message}", WIDTH, subsequent_indent="    ", break_on_hyphens=False)
    return "\n".join(lines) + "\n"


def _line(cells: list[str], widths: list[int]) -> str:
    return " ".join(
        cell.rjust(width) if right else cell.ljust(width)
        for cell, width, (_, _, right) in zip(cells, widths, _COLUMNS, strict=True)
    )


def _ago(seconds: float) -> str:
    seconds = max(seconds, 0.0)
    if seconds < 10:
        return f"{seconds:.1f}s"
    if seconds < 100:
        return f"{seconds:.0f}s"
    if seconds < 6000:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.0f}h"


def render_json(view: SegmentView, *, now: float, interface: str, elapsed: float) -> dict[str, Any]:
    """The view as a JSON-ready document (schema in docs/watch.md, versioned by ``schema``)."""
    return {
        "schema": JSON_SCHEMA_VERSION,
        "interface": interface,
        "vrid": view.vrid,
        "elapsed": round(elapsed, 3),
        "speakers": [_row_json(row, now) for row in view.rows()],
        "findings": [_finding_json(finding) for finding in view.findings()],
    }


def _row_json(row: Row, now: float) -> dict[str, Any]:
    return {
        "vrid": row.vrid,
        "family": row.family,
        "source": str(row.source),
        "destination": str(row.destination),
        "version": row.version,
        "priority": row.priority,
        "interval": row.interval,
        "auth_type": row.auth_type,
        "addresses": _strings(row.addresses),
        "checksum": row.checksum.value,
        "ttl": row.ttl,
        "bad_ttl": row.bad_ttl,
        "first_seen": row.first_seen,
        "last_seen": row.last_seen,
        "seen_ago": round(now - row.last_seen, 3),
        "count": row.count,
    }


def _finding_json(finding: Finding) -> dict[str, Any]:
    return {
        "kind": finding.kind.value,
        "vrid": finding.vrid,
        "family": finding.family,
        "sources": _strings(finding.sources),
        "message": finding.message,
    }


def _strings(addresses: tuple[IPAddress, ...]) -> list[str]:
    return [str(address) for address in addresses]
