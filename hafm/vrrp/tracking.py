"""Tracked health checks: fall/rise counting and priority arithmetic.

Pure logic (no clock, no I/O) that mirrors keepalived's ``vrrp_script`` /
``track_file`` rules:

* :class:`CheckState` turns probe results into an up/down state with
  ``fall``/``rise`` hysteresis.
* :func:`effective_priority` turns a base priority and the tracked checks'
  states into the priority an instance advertises (or FAULT).

:class:`hafm.shell.checks.CheckRunner` runs every check's probe on its own schedule.

Initial state.  keepalived starts a ``vrrp_script`` in an "INIT" state that
counts as failed but lets the first success bring it up at once (and
``init_fail`` requires a full ``rise``).  hafm is stricter and simpler: a check
starts in its ``init_state`` ("down" by default) and leaves it only after
``rise`` consecutive successes (or ``fall`` consecutive failures for
``init_state = "up"``).  Starting down means a node never advertises a
priority it has not earned yet; the cost is ``rise × interval`` at start.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from hafm.config.model import CheckConfig
from hafm.vrrp.constants import MAX_PRIORITY, MIN_PRIORITY, OWNER_PRIORITY

__all__ = [
    "FAULT_THRESHOLD",
    "CheckState",
    "PriorityVerdict",
    "Tracked",
    "effective_priority",
]

# keepalived track_file: a (value × weight) at or below -254 puts the instance in FAULT.
FAULT_THRESHOLD = -254


class Outcome(Protocol):
    """One probe run as tracking needs it (:class:`hafm.hookspecs.ProbeResult` is one)."""

    @property
    def ok(self) -> bool: ...
    @property
    def detail(self) -> str: ...
    @property
    def delta(self) -> int | None: ...


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

    def record(self, result: Outcome) -> bool:
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
