"""Runs every tracked check's probe on its own schedule (the I/O half of :mod:`hafm.vrrp.tracking`)."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping

from hafm.config.model import CheckConfig
from hafm.hookspecs import CheckType, Probe, ProbeResult
from hafm.vrrp.tracking import CheckState, Tracked

__all__ = ["CheckRunner", "run_probe"]

log = logging.getLogger(__name__)


async def run_probe(probe: Probe, *, timeout: float, plugin: str = "") -> ProbeResult:
    """Run one probe under ``timeout``; a timeout or an exception is a failed result, never raised."""
    try:
        async with asyncio.timeout(timeout):
            result = await probe()
    except TimeoutError:
        return ProbeResult(ok=False, detail=f"timeout after {timeout:g} s")
    except Exception as exc:
        who = f"plugin {plugin}" if plugin else "probe"
        return ProbeResult(ok=False, detail=f"{who} raised {type(exc).__name__}: {exc}")
    if not isinstance(result, ProbeResult):
        who = f"plugin {plugin}" if plugin else "probe"
        return ProbeResult(ok=False, detail=f"{who} returned {type(result).__name__}, not a ProbeResult")
    return result


OnChange = Callable[[str, bool, str], None | Awaitable[None]]


class CheckRunner:
    """Run every configured check concurrently, each on its own schedule.

    Each check is one asyncio task: run the probe (bounded by the check's
    ``timeout``), record the result, call ``on_change(name, up, detail)``
    when :meth:`CheckState.record` reports a change, then sleep until the
    next multiple of ``interval`` after the previous start.  A hung probe
    only delays its own check.  ``on_change`` may be a plain function or a
    coroutine function; an exception from it is logged, not raised.
    """

    def __init__(
        self,
        checks: Mapping[str, CheckConfig],
        types: Mapping[str, CheckType],
        on_change: OnChange,
    ) -> None:
        missing = sorted({c.type for c in checks.values()} - set(types))
        if missing:
            raise ValueError(f"unknown check type(s): {', '.join(missing)}")
        self._checks = dict(checks)
        self._types = dict(types)
        self._on_change = on_change
        self.states: dict[str, CheckState] = {name: CheckState.from_config(c) for name, c in checks.items()}
        self._tasks: list[asyncio.Task[None]] = []

    def tracked(self, name: str, weight: int) -> Tracked:
        """The current state of check ``name`` as an input to :func:`effective_priority`."""
        state = self.states[name]
        return Tracked(name, weight, state.up, state.delta)

    def start(self) -> None:
        """Start one task per check on the running loop (idempotent)."""
        if self._tasks:
            return
        for name, check in self._checks.items():
            check_type = self._types[check.type]
            probe = check_type.create(check)
            task = asyncio.get_running_loop().create_task(
                self._run(check, probe, check_type.plugin), name=f"hafm-check-{name}"
            )
            self._tasks.append(task)

    async def stop(self) -> None:
        """Cancel every check task and wait for them (probes clean up on cancel)."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self, check: CheckConfig, probe: Probe, plugin: str) -> None:
        loop = asyncio.get_running_loop()
        state = self.states[check.name]
        next_at = loop.time()
        first = True
        while True:
            result = await run_probe(probe, timeout=check.timeout, plugin=plugin)
            if state.record(result):
                await self._notify(state)
            elif first and not state.up and not result.ok:
                # A check starts down: one that never succeeds never changes state, and without this
                # line a wrong URL or a plugin that raises on every call would never say why.
                log.warning("check %s: down from the start (%s)", check.name, result.detail)
            first = False
            next_at += check.interval
            now = loop.time()
            if next_at < now:  # the probe overran: skip missed slots rather than burst
                next_at = now
            await asyncio.sleep(next_at - now)

    async def _notify(self, state: CheckState) -> None:
        try:
            outcome = self._on_change(state.name, state.up, state.detail)
            if inspect.isawaitable(outcome):
                await outcome
        except Exception:
            log.exception("on_change callback failed for check %s", state.name)
