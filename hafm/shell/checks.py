"""Runs every tracked check's probe on its own schedule (the I/O half of :mod:`hafm.vrrp.tracking`)."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping

from hafm.config.model import CheckConfig
from hafm.hookspecs import CheckType, Probe, ProbeResult
from hafm.vrrp.tracking import CheckState, Tracked

__all__ = ["CheckRunner", "next_delay", "run_probe"]

log = logging.getLogger(__name__)

# How long a probe may take to end once its timeout has cancelled it. One that takes longer
# (it swallows the cancellation, or waits on something that cannot be cancelled) is left
# running, counted as failed, and not started again until it has ended.
CANCEL_GRACE = 1.0


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


def next_delay(check: CheckConfig, up: bool, last_ok: bool) -> float:
    """Seconds from one probe's start to the next one's.

    HAProxy's ``fastinter``: ``fast_interval`` while an up check has failed but not yet
    ``fall`` times in a row (``up`` is the state after the last result was recorded), so a
    dead application is confirmed quickly while steady-state probing stays cheap.
    """
    if check.fast_interval is not None and up and not last_ok:
        return check.fast_interval
    return check.interval


OnChange = Callable[[str, bool, str], None | Awaitable[None]]
# (check name, seconds the probe took, ok): the metrics endpoint's probe duration histogram.
OnProbe = Callable[[str, float, bool], None]


class CheckRunner:
    """Run every configured check concurrently, each on its own schedule.

    Each check is one asyncio task: run the probe (bounded by the check's
    ``timeout``), record the result, call ``on_change(name, up, detail)``
    when :meth:`CheckState.record` reports a change, then sleep until
    :func:`next_delay` after the previous start.  A hung probe only delays
    its own check; one that does not end when its timeout cancels it is
    counted as failed at every slot until it has ended, and no second run
    of the same check is started meanwhile.  ``on_change`` may be a plain
    function or a coroutine function; an exception from it is logged, not
    raised.  Each result is logged at debug; changes are the caller's to log.
    """

    def __init__(
        self,
        checks: Mapping[str, CheckConfig],
        types: Mapping[str, CheckType],
        on_change: OnChange,
        on_probe: OnProbe | None = None,
    ) -> None:
        missing = sorted({c.type for c in checks.values()} - set(types))
        if missing:
            raise ValueError(f"unknown check type(s): {', '.join(missing)}")
        self._checks = dict(checks)
        self._types = dict(types)
        self._on_change = on_change
        self._on_probe = on_probe
        self.states: dict[str, CheckState] = {name: CheckState.from_config(c) for name, c in checks.items()}
        self._tasks: list[asyncio.Task[None]] = []
        self._hung: dict[str, asyncio.Task[ProbeResult]] = {}

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
        hung, self._hung = list(self._hung.values()), {}
        for hung_run in hung:
            hung_run.cancel()
        if hung:  # they ignored one cancellation already: do not wait for them forever
            await asyncio.wait(hung, timeout=CANCEL_GRACE)

    async def _run(self, check: CheckConfig, probe: Probe, plugin: str) -> None:
        loop = asyncio.get_running_loop()
        state = self.states[check.name]
        next_at = loop.time()
        first = True
        while True:
            started = loop.time()
            result = await self._probe(check, probe, plugin)
            if self._on_probe is not None:
                self._on_probe(check.name, loop.time() - started, result.ok)
            log.debug("check %s: %s (%s)", check.name, "ok" if result.ok else "failed", result.detail)
            if state.record(result):
                await self._notify(state)
            elif first and not state.up and not result.ok:
                # A check starts down: one that never succeeds never changes state, and without this
                # line a wrong URL or a plugin that raises on every call would never say why.
                log.warning("check %s: down from the start (%s)", check.name, result.detail)
            first = False
            next_at += next_delay(check, state.up, result.ok)
            now = loop.time()
            if next_at < now:  # the probe overran: skip missed slots rather than burst
                next_at = now
            await asyncio.sleep(next_at - now)

    async def _probe(self, check: CheckConfig, probe: Probe, plugin: str) -> ProbeResult:
        """One run of ``probe``, unless its previous run is still hung."""
        previous = self._hung.get(check.name)
        if previous is not None:
            if not previous.done():
                return ProbeResult(ok=False, detail="the previous run is still hung; not started again")
            del self._hung[check.name]
        run = asyncio.ensure_future(run_probe(probe, timeout=check.timeout, plugin=plugin))
        try:
            done, _ = await asyncio.wait({run}, timeout=check.timeout + CANCEL_GRACE)
        except asyncio.CancelledError:
            run.cancel()
            raise
        if run in done:
            return run.result()
        self._hung[check.name] = run
        run.add_done_callback(_forget_result)
        return ProbeResult(ok=False, detail=f"timeout after {check.timeout:g} s, and the probe ignores cancellation")

    async def _notify(self, state: CheckState) -> None:
        try:
            outcome = self._on_change(state.name, state.up, state.detail)
            if inspect.isawaitable(outcome):
                await outcome
        except Exception:
            log.exception("on_change callback failed for check %s", state.name)


def _forget_result(task: asyncio.Task[ProbeResult]) -> None:
    # run_probe never raises; this only keeps asyncio from warning about an unretrieved cancellation.
    if not task.cancelled():
        task.exception()
