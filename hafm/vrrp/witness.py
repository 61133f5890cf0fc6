"""The etcd witness as policy, sans-IO: when an instance may be Master, given what the shell says of its key.

An instance with ``witness = true`` (or ``mode = "lease"``) may enter or stay MASTER only while it holds
its key ``{prefix}{cluster}/{family}/{vrid}``, bound to its own lease.  The shell
(:mod:`hafm.shell.witness`) owns the lease, the watch and the local lease deadline; it reports what it
knows as :class:`WitnessChanged` and performs :class:`WitnessAcquire` / :class:`WitnessRelease`.
Everything else is decided here, and the coordinator applies it:

* **VRRP mode**: VRRP still decides who *should* be Master.  A Backup whose Master_Down timer fires
  does not become Master: it asks for the key and waits.  When the shell reports the key held, the
  deferred Master_Down is fed to the instance.  While another node holds it, the instance stays
  Backup and says why (log line once per holder, and its status reason).
* **Preemption** through the witness: a Backup that preempts a lower-priority Master announces a
  candidacy with its priority (:attr:`WitnessAcquire.candidate_priority`).  The holder resigns (priority-0
  advert, VIPs dropped) and releases the key when a candidate outranks it; the candidate takes the VIP
  only once the key is its own.
* **Losing the key** (lease not renewed before the local deadline, key deleted, etcd unreachable): a
  Master resigns at once.  Unreachable is fail-closed: nobody may become Master until etcd answers.
* **Leaving MASTER** (preempted, resigned, fault, shutdown) releases the key, so the next node takes
  it in about Skew_Time instead of ``ttl``.
* **Lease mode**: no VRRP packets at all; a Backup always wants the key (except in maintenance) and the
  holder is Master.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from hafm.config.model import InstanceConfig, WitnessConfig
from hafm.vrrp import events as ev
from hafm.vrrp.instance import VrrpInstance
from hafm.vrrp.state import State
from hafm.vrrp.timers import Timer

__all__ = [
    "WitnessAcquire",
    "WitnessChanged",
    "WitnessPolicy",
    "WitnessRelease",
    "candidate_prefix",
    "witness_key",
]

UNREACHABLE_MASTER = "witness unreachable: {detail}; stepping down; no node may become Master until etcd answers"
UNREACHABLE_BACKUP = "witness unreachable: {detail}; staying BACKUP until etcd answers"


def witness_key(witness: WitnessConfig, instance: InstanceConfig) -> str:
    """The etcd key an instance must hold to be Master: ``{prefix}{cluster}/{family}/{vrid}``."""
    return f"{witness.prefix}{witness.cluster}/{instance.family}/{instance.virtual_router_id}"


def candidate_prefix(key: str) -> str:
    """Where preempting nodes announce themselves: ``{key}/candidates/{node}`` = their priority."""
    return f"{key}/candidates/"


# -- the event the shell feeds, the outputs it performs -------------------------------------------


@dataclass(frozen=True, kw_only=True)
class WitnessChanged:
    """What the shell knows of ``instance``'s key.

    ``held``: the key is ours, bound to our lease, and the local lease deadline has not passed.
    ``holder``: the node holding it (None: free or unknown).  ``reachable``: etcd answered lately.
    ``challenger``/``challenger_priority``: the highest-priority other candidate, if any.
    ``detail``: why, for the log (an error from the client, "lease expired").
    """

    instance: str
    held: bool
    holder: str | None = None
    reachable: bool = True
    challenger: str | None = None
    challenger_priority: int | None = None
    detail: str = ""


@dataclass(frozen=True, kw_only=True)
class WitnessAcquire:
    """Take ``key`` for ``instance`` (create-if-absent under our lease) and keep trying when it is released.

    ``candidate_priority`` set: also announce a candidacy with that priority, so the holder yields.
    Repeating it updates the candidacy; it never takes a key another lease holds.
    """

    instance: str
    key: str
    candidate_priority: int | None = None


@dataclass(frozen=True, kw_only=True)
class WitnessRelease:
    """Give up ``key`` for ``instance``: revoke the lease (the key and any candidacy go with it)."""

    instance: str
    key: str
    reason: str


WitnessOutput = WitnessAcquire | WitnessRelease


@dataclass(frozen=True, kw_only=True)
class SetReason:
    """The instance's status reason (why it is in its state) changes without a transition."""

    reason: str


@dataclass(frozen=True, kw_only=True)
class Say:
    level: int
    message: str


# What the policy asks the coordinator to do: feed an instance event, perform an output, log, set a reason.
Decision = ev.Event | WitnessOutput | SetReason | Say


@dataclass
class _Seat:
    """What the policy knows of one instance's key."""

    key: str
    lease_mode: bool
    wanted: bool = False
    held: bool = False
    holder: str | None = None
    reachable: bool = True
    told_holder: str | None = None  # the holder last named in a "stays BACKUP" line
    unreachable_told: bool = False  # the unreachable line of this episode is out


class WitnessPolicy:
    """The witness decisions of every instance that uses it (see the module docstring)."""

    def __init__(self, witness: WitnessConfig | None, instances: dict[str, InstanceConfig]) -> None:
        self.seats: dict[str, _Seat] = {}
        self.update(witness, instances)

    def update(self, witness: WitnessConfig | None, instances: dict[str, InstanceConfig]) -> None:
        """A (re)loaded configuration: seats for instances that use the witness, kept when unchanged."""
        seats: dict[str, _Seat] = {}
        if witness is not None:
            for name, config in instances.items():
                if not config.uses_witness:
                    continue
                key = witness_key(witness, config)
                old = self.seats.get(name)
                lease_mode = config.mode == "lease"
                keep = old is not None and old.key == key and old.lease_mode == lease_mode
                seats[name] = old if keep and old is not None else _Seat(key=key, lease_mode=lease_mode)
        self.seats = seats

    def uses(self, name: str) -> bool:
        return name in self.seats

    def lease_mode(self, name: str) -> bool:
        seat = self.seats.get(name)
        return seat is not None and seat.lease_mode

    def held(self, name: str) -> bool:
        seat = self.seats.get(name)
        return seat is not None and seat.held

    # -- decisions -------------------------------------------------------------------------------

    def master_down(self, name: str, instance: VrrpInstance) -> list[Decision]:
        """The Master_Down timer of a Backup fired: become Master only with the key in hand."""
        seat = self.seats[name]
        if seat.held or instance.state is not State.BACKUP:
            return [ev.TimerFired(timer=Timer.MASTER_DOWN)]
        if seat.lease_mode:
            return []  # a lease-mode Backup already wants the key; VRRP timers do not decide anything
        candidate = instance.priority if instance.preempting else None
        return self._want(seat, name, candidate)

    def changed(self, event: WitnessChanged, instance: VrrpInstance) -> list[Decision]:
        """The shell's news about the key."""
        seat = self.seats[event.instance]
        name = event.instance
        was_reachable = seat.reachable
        seat.held, seat.holder, seat.reachable = event.held, event.holder, event.reachable
        decisions: list[Decision] = []
        if event.reachable and not was_reachable and seat.unreachable_told:
            # Only an episode that was announced is closed: a renewal that failed over to another
            # member in time is no news.
            seat.unreachable_told = False
            decisions.append(Say(level=logging.WARNING, message=f"{name}: witness reachable again"))
        state = instance.state
        if state is State.MASTER:
            if not event.held:
                decisions += self._lost(seat, name, event)
            elif event.challenger_priority is not None and event.challenger_priority > instance.priority:
                reason = (
                    f"witness candidate {event.challenger} prio {event.challenger_priority} "
                    f"outranks our {instance.priority}: handing over"
                )
                decisions.append(ev.Resign(reason=reason))
            return decisions
        if state is not State.BACKUP or not seat.wanted:
            return decisions
        if event.held:
            if seat.lease_mode:
                decisions.append(ev.TakeOver(reason="holds the witness lease"))
            else:
                decisions.append(ev.TimerFired(timer=Timer.MASTER_DOWN))
            return decisions
        return decisions + self._waiting(seat, name, event)

    def state_changed(self, name: str, old: State, new: State, *, maintenance: bool) -> list[Decision]:
        """After a transition: release what a non-Master holds; a lease-mode Backup asks again."""
        seat = self.seats[name]
        decisions: list[Decision] = []
        if new is not State.MASTER and (seat.wanted or seat.held or old is State.MASTER):
            seat.wanted = seat.held = False
            seat.told_holder = None
            decisions.append(WitnessRelease(instance=name, key=seat.key, reason=f"{old.value} -> {new.value}"))
        if new is State.BACKUP and seat.lease_mode and not maintenance:
            decisions += self._want(seat, name, None)
        return decisions

    def maintenance_off(self, name: str, state: State) -> list[Decision]:
        """A lease-mode Backup out of maintenance competes for the key again."""
        seat = self.seats[name]
        if seat.lease_mode and state is State.BACKUP and not seat.wanted:
            return self._want(seat, name, None)
        return []

    # -- helpers ---------------------------------------------------------------------------------

    def _want(self, seat: _Seat, name: str, candidate: int | None) -> list[Decision]:
        seat.wanted = True
        what = f"candidate with prio {candidate}" if candidate is not None else "waiting"
        return [
            WitnessAcquire(instance=name, key=seat.key, candidate_priority=candidate),
            SetReason(reason=f"asking the witness for {seat.key} ({what})"),
        ]

    def _lost(self, seat: _Seat, name: str, event: WitnessChanged) -> list[Decision]:
        decisions: list[Decision] = []
        if not event.reachable:
            detail = event.detail or "no etcd endpoint answers"
            reason = f"witness unreachable ({detail})"
            if not seat.unreachable_told:
                seat.unreachable_told = True
                decisions.append(
                    Say(level=logging.ERROR, message=f"{name}: " + UNREACHABLE_MASTER.format(detail=detail))
                )
        elif event.holder is not None:
            reason = f"witness key {seat.key} now held by {event.holder}"
        else:
            reason = f"witness key {seat.key} lost ({event.detail or 'lease expired'})"
        decisions.append(ev.Resign(reason=reason))
        return decisions

    def _waiting(self, seat: _Seat, name: str, event: WitnessChanged) -> list[Decision]:
        if not event.reachable:
            detail = event.detail or "no etcd endpoint answers"
            decisions: list[Decision] = [
                SetReason(reason=f"witness unreachable ({detail}): no Master until etcd answers")
            ]
            if not seat.unreachable_told:
                seat.unreachable_told = True
                decisions.append(
                    Say(level=logging.ERROR, message=f"{name}: " + UNREACHABLE_BACKUP.format(detail=detail))
                )
            return decisions
        if event.holder is None:
            return []
        reason = f"witness key {seat.key} held by {event.holder}"
        decisions = [SetReason(reason=f"stays BACKUP: {reason}")]
        if seat.told_holder != event.holder:
            seat.told_holder = event.holder
            decisions.append(Say(level=logging.WARNING, message=f"{name}: stays BACKUP: {reason}"))
        return decisions
