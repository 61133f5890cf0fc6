"""Example third-party hafm plugin: the ``process`` check type.

Up while at least ``min_count`` processes whose name (``/proc/PID/comm``)
equals ``process`` are running.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hafm.config.model import CheckConfig
from hafm.hooks import CheckType, Probe, ProbeResult, check_keys, hookimpl

# The kernel truncates comm to 15 bytes.
COMM_LEN = 15


def validate(options: Mapping[str, Any]) -> list[tuple[str, str]]:
    problems = check_keys(options, required=("process",), optional=("min_count",))
    if "process" in options and (not isinstance(options["process"], str) or not options["process"]):
        problems.append(("process", "must be a process name"))
    count = options.get("min_count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        problems.append(("min_count", f"{count!r} is not a positive integer"))
    return problems


def count_processes(name: str) -> int:
    wanted = name[:COMM_LEN]
    count = 0
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().rstrip("\n") == wanted:
                count += 1
        except OSError:  # the process exited while we looked
            continue
    return count


def create(check: CheckConfig) -> Probe:
    name: str = check.options["process"]
    min_count: int = check.options.get("min_count", 1)

    async def probe() -> ProbeResult:
        count = await asyncio.to_thread(count_processes, name)
        return ProbeResult(ok=count >= min_count, detail=f"{count} {name} process(es) running")

    return probe


@hookimpl
def hafm_register_check_types() -> list[CheckType]:
    return [CheckType(name="process", validate=validate, create=create)]
