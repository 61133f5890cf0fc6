"""Tracked health checks: fall/rise counting, priority arithmetic, and an asyncio runner.

The first two parts are pure logic (no clock, no I/O) and mirror keepalived's
``vrrp_script`` / ``track_file`` rules:

* :class:`CheckState` turns probe results into an up/down state with
  ``fall``/``rise`` hysteresis.
* :func:`effective_priority` turns a base priority and the tracked checks'
  states into the priority an instance advertises (or FAULT).

:class:`CheckRunner` runs every check's probe on its own schedule.

Initial state.  keepalived starts a ``vrrp_script`` in an "INIT" state that
counts as failed but lets the first success bring it up at once (and
``init_fail`` requires a full ``rise``).  hafm is stricter and simpler: a check
starts in its ``init_state`` ("down" by default) and leaves it only after
``rise`` consecutive successes (or ``fall`` consecutive failures for
``init_state = "up"``).  Starting down means a node never advertises a
priority it has not earned yet; the cost is ``rise × interval`` at start.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from hafm.config.model import CheckConfig
from hafm.hookspecs import CheckType, Probe, ProbeResult
from hafm.vrrp.instance import OWNER_PRIORITY

__all__ = [
    "FAULT_THRESHOLD",
    "CheckRunner",
    "CheckState",
    "PriorityVerdict",
    "Tracked",
    "effective_priority",
    "run_probe",
]

log = logging.getLogger(__name__)

MIN_PRIORITY = 1
MAX_PRIORITY = 254
# keepalived track_file: a (value × weight) at or below -254 puts the instance in FAULT.
FAULT_THRESHOLD = -254


@dataclass(kw_only=True)
class CheckState:
    """The up/down state of one check, with keepalived-style fall/rise hysteresis.

    ``fall`` consecutive failures take an up check down; ``rise`` consecutive
    successes take a down check up.  ``delta`` is the value reported by the
    last successful run of a value check (``file``), else ``None``.
    """

    name: str
    fall: int = 1
    rise: int = 1
    up: bool = False
    detail: str = "not run yet"
    delta: int | None = None
    _streak: int = field(default=0, repr=False)  # consecutive results against the current state

    @classmethod
    def from_config(cls, check: CheckConfig) -> CheckState:
        """A fresh state in the check's ``init_state``."""
        return cls(name=check.name, fall=check.fall, rise=check.rise, up=check.init_state == "up")

    def record(self, result: ProbeResult) -> bool:
        """Account for one probe result; return True when the tracked state changed.

        "Changed" means up/down flipped, or (for a value check that is up) the
        reported ``delta`` changed: both alter the effective priority.
        """
        self.detail = result.detail
        if result.ok == self.up:
            self._streak = 0
            if self.up and result.delta != self.delta:
                self.delta = result.delta
                return True
            return False
        self._streak += 1
        if self._streak < (self.rise if result.ok else self.fall):
            return False
        self._streak = 0
        self.up = result.ok
        self.delta = result.delta if result.ok else None
        return True


class Tracked(NamedTuple):
    """One tracked check as an instance sees it: ``weight`` is the effective weight."""

    name: str
    weight: int
    up: bool
    file_delta: int | None = None


@dataclass(frozen=True, kw_only=True)
class PriorityVerdict:
    """What an instance should advertise: ``priority`` (1..255) unless ``fault``."""

    priority: int
    fault: bool
    explanation: str


def effective_priority(base: int, tracked: Sequence[Tracked | tuple[str, int, bool, int | None]]) -> PriorityVerdict:
    """Compute the effective priority of an instance with base priority ``base``.

    Rules (keepalived's ``track_script``/``track_file``):

    * a check with ``weight < 0`` subtracts ``|weight|`` while down;
    * a check with ``weight > 0`` adds ``weight`` while up;
    * a check with ``weight == 0`` puts the instance in FAULT while down;
    * a value check that is up (``file_delta`` not None, the integer read from
      the file): with ``weight == 0`` a non-zero value means FAULT and 0 means
      OK; otherwise ``value × weight`` is added, and a product at or below
      -254 means FAULT.  A value check that is down (file missing or not an
      integer) follows the plain rules above;
    * the result is clamped to 1..254;
    * ``base == 255`` (the address owner) never changes: weights are ignored,
      only FAULT applies.
    """
    owner = base == OWNER_PRIORITY
    total = base
    parts: list[str] = []
    faults: list[str] = []
    for entry in tracked:
        name, weight, up, file_delta = Tracked(*entry)
        if up and file_delta is not None:
            if weight == 0:
                if file_delta != 0:
                    faults.append(f"{name} value {file_delta} (weight 0)")
                continue
            adjust = file_delta * weight
            if adjust <= FAULT_THRESHOLD:
                faults.append(f"{name} value {file_delta} × {weight} = {adjust}")
                continue
            if adjust and not owner:
                total += adjust
                parts.append(f"{name} value {file_delta} × {weight} {adjust:+d}")
            continue
        if weight == 0:
            if not up:
                faults.append(f"{name} down (weight 0)")
        elif weight < 0 and not up and not owner:
            total += weight
            parts.append(f"{name} down {weight:+d}")
        elif weight > 0 and up and not owner:
            total += weight
            parts.append(f"{name} up {weight:+d}")
    if owner:
        priority = OWNER_PRIORITY
        head = f"base {base} (address owner, weights ignored)"
    else:
        priority = min(MAX_PRIORITY, max(MIN_PRIORITY, total))
        head = f"base {base}"
    words = [head, *parts]
    if faults:
        return PriorityVerdict(priority=priority, fault=True, explanation=", ".join(words + faults) + " → FAULT")
    tail = f"{priority}" if priority == total or owner else f"{priority} (clamped from {total})"
    return PriorityVerdict(priority=priority, fault=False, explanation=", ".join(words) + f" → {tail}")


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
        while True:
            result = await run_probe(probe, timeout=check.timeout, plugin=plugin)
            if state.record(result):
                await self._notify(state)
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
