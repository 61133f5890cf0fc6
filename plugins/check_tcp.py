"""The ``tcp`` check: up when a TCP connection to ``host:port`` opens within the timeout."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Mapping
from typing import Any

from hafm.config.model import CheckConfig
from hafm.hooks import CheckType, Probe, ProbeResult, check_keys, hookimpl


def validate(options: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``host`` (string) and ``port`` (1..65535) are required."""
    problems = check_keys(options, required=("host", "port"))
    if "host" in options and (not isinstance(options["host"], str) or not options["host"]):
        problems.append(("host", "must be a non-empty string"))
    port = options.get("port")
    if port is not None and (isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535):
        problems.append(("port", f"{port!r} is not a port number 1..65535"))
    return problems


def create(check: CheckConfig) -> Probe:
    host: str = check.options["host"]
    port: int = check.options["port"]

    async def probe() -> ProbeResult:
        try:
            _reader, writer = await asyncio.open_connection(host, port)
        except OSError as exc:
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            return ProbeResult(ok=False, detail=f"connect to {host}:{port} failed: {reason}")
        writer.close()
        # A reset after a successful connect still proves the port is open.
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return ProbeResult(ok=True, detail=f"connected to {host}:{port}")

    return probe


@hookimpl
def hafm_register_check_types() -> list[CheckType]:
    return [CheckType(name="tcp", validate=validate, create=create)]
