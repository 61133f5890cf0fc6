"""The ``file`` check: keepalived's ``track_file``.

The probe reads an integer from ``path`` (decimal, optional sign, surrounding
whitespace ignored).  The value is reported as ``ProbeResult.delta`` and
:func:`hafm.vrrp.tracking.effective_priority` applies keepalived's rules with the
tracking weight:

* weight 0: value 0 is OK, any other value puts the instance in FAULT;
* weight ≠ 0: ``value × weight`` is added to the priority (clamped to 1..254);
  a product at or below -254 puts the instance in FAULT.

Note keepalived's own default weight for a track_file is 1, hafm's check
weight defaults to 0: write ``weight = 1`` for keepalived's behaviour.

One deliberate difference: keepalived reads a missing, empty or
non-numeric file as 0 (healthy).  hafm counts it as a failed run (the check
goes down after ``fall``), so a typo in ``path`` or a half-written file never
reads as "healthy".

Reads run on this plugin's own small thread pool (:data:`READ_THREADS`), not
the event loop's default executor: a read hung on a dead NFS mount can never
take the threads that DNS lookups (``loop.getaddrinfo``) of other checks
need.  While a check's previous read is still hung, its next probe fails at
once instead of taking another thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
from collections.abc import Mapping
from typing import Any

from hafm.config.model import CheckConfig
from hafm.hooks import CheckType, Probe, ProbeResult, check_keys, hookimpl

# Like keepalived, read at most this much: the file holds one small integer.
MAX_READ = 128
# Threads for file reads, shared by every file check; hung reads queue here and nowhere else.
READ_THREADS = 4

_readers = concurrent.futures.ThreadPoolExecutor(max_workers=READ_THREADS, thread_name_prefix="hafm-file-check")


def validate(options: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``path`` (absolute path) is required."""
    problems = check_keys(options, required=("path",))
    path = options.get("path")
    if path is not None and (not isinstance(path, str) or not os.path.isabs(path)):
        problems.append(("path", f"{path!r} is not an absolute path"))
    return problems


def read_value(path: str) -> ProbeResult:
    """Read the tracked integer from ``path`` (blocking; small)."""
    try:
        # O_NONBLOCK: a FIFO at that path must not hang the probe.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        try:
            data = os.read(fd, MAX_READ)
        finally:
            os.close(fd)
    except OSError as exc:
        return ProbeResult(ok=False, detail=f"cannot read {path}: {exc.strerror or exc}")
    text = data.decode("ascii", "replace").strip()
    try:
        value = int(text, 10)
    except ValueError:
        return ProbeResult(ok=False, detail=f"{path}: {text[:40]!r} is not an integer")
    return ProbeResult(ok=True, detail=f"value {value}", delta=value)


def create(check: CheckConfig) -> Probe:
    path: str = check.options["path"]
    previous: concurrent.futures.Future[ProbeResult] | None = None

    async def probe() -> ProbeResult:
        nonlocal previous
        if previous is not None and not previous.done():
            return ProbeResult(ok=False, detail=f"the previous read of {path} is still hung")
        # A file on a hung NFS mount must not block the loop that sends adverts.
        previous = _readers.submit(read_value, path)
        return await asyncio.wrap_future(previous)

    return probe


@hookimpl
def hafm_register_check_types() -> list[CheckType]:
    return [CheckType(name="file", validate=validate, create=create)]
