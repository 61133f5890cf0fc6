"""Every instance of one daemon, sans-IO: the policy that spans instances.

:class:`Coordinator` takes daemon-level events (a packet read on an interface,
a timer of one instance, a check that changed, a link, a shutdown) at a time
``now`` the caller supplies, and returns outputs: actions for one instance to
perform (:class:`Perform`), hook notifications (:class:`CallHook`) and log
lines (:class:`Log`).  It never does I/O and never reads a clock.

What it owns, so the asyncio shell decides nothing:

* **Demultiplexing**: a packet becomes an advert for the instance with its
  VRID on that interface and family, or a counted drop.  The TTL/hop-limit
  check comes first; an advert byte-identical to the last one from the same
  source is not decoded again (a stable Master repeats itself every interval).
* **Tracking**: check states become each instance's effective priority or a
  fault; members of a sync group share the largest penalty of any member, so
  a group moves as one (keepalived refuses weights in sync groups unless
  ``sync_group_tracking_weight`` is set, and then lets members drift apart).
* **Sync groups**: a member leaving MASTER for BACKUP takes the others with it,
  a member in FAULT puts the others in FAULT, and the group's own state is
  reported after its members'.
* **Counters** (:class:`InstanceCounters`) and bounded drop reporting.
* **Maintenance**: a drained instance resigns and stays Backup at priority 1.
* **The witness** (:mod:`hafm.vrrp.witness`): an instance with ``witness = true`` becomes or stays
  Master only while it holds its etcd key; a ``mode = "lease"`` instance sends no VRRP at all.

Events produced while handling an event (one member's transition moving
another member) are queued and handled after the current instance's actions
are complete, never re-entrantly.
"""

from __future__ import annotations

import logging
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hafm.config.model import CheckConfig, Config, InstanceConfig
from hafm.errors import DropReason, MalformedAdvert
from hafm.vrrp import actions as act
from hafm.vrrp import events as ev
from hafm.vrrp.codec import Advertisement, IPAddress, decode
from hafm.vrrp.constants import MAX_PRIORITY, MIN_PRIORITY, OWNER_PRIORITY
from hafm.vrrp.instance import VrrpInstance, replaceable_in_place
from hafm.vrrp.state import State
from hafm.vrrp.timers import Timer
from hafm.vrrp.tracking import PriorityVerdict, Tracked, effective_priority
from hafm.vrrp.witness import Decision, Say, SetReason, WitnessAcquire, WitnessChanged, WitnessPolicy, WitnessRelease

__all__ = [
    "CallHook",
    "CheckChanged",
    "Coordinator",
    "InstanceCounters",
    "InstanceReport",
    "InstanceTimerFired",
    "Log",
    "MaintenanceChanged",
    "Output",
    "PacketReceived",
    "PacketRejected",
    "Perform",
    "Reconfigured",
    "RemoveInstances",
    "SendFailed",
    "Started",
    "WitnessAcquire",
    "WitnessChanged",
    "WitnessRelease",
]

VRRP_TTL = 255
# Drops of one (instance, reason) are reported (log line and hook) at most once per window,
# whatever the number of forged source addresses: the bound is instances × reasons.
DROP_REPORT_WINDOW = 60.0
_NO_VRIDS: dict[int, str] = {}  # the instances of an interface with none (never written to)
# The group state of a sync group: FAULT if any member is, MASTER when all are (keepalived's view).
INIT_GROUP_STATE = "INIT"

# Internal events one event may cascade into (sync groups move their members) before it is a bug.
MAX_QUEUED_PER_EVENT = 10_000

SocketKey = tuple[str, int]  # (interface, address family 4|6)
_ReportKey = tuple[str | None, DropReason | None]  # (instance, drop reason; None: a send error)


# -- events ------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Started:
    """Sockets are open: ``sources`` is each instance's advert source address, ``links`` the link states."""

    sources: Mapping[str, IPAddress]
    links: Mapping[str, bool]


@dataclass(frozen=True, kw_only=True)
class PacketReceived:
    """An IP protocol 112 packet read on ``interface`` (IPv4 header already removed).

    ``count``: how many identical ones arrived in a row, the last at ``now`` (the shell reads
    sockets in batches); they are counted, and handled once.
    """

    interface: str
    family: int
    payload: bytes
    source: IPAddress
    destination: IPAddress
    ttl: int
    count: int = 1


@dataclass(frozen=True, kw_only=True)
class PacketRejected:
    """A packet the socket layer could not even parse (e.g. a truncated IPv4 header)."""

    interface: str
    reason: DropReason
    detail: str


@dataclass(frozen=True, kw_only=True)
class InstanceTimerFired:
    instance: str
    timer: Timer


@dataclass(frozen=True, kw_only=True)
class CheckChanged:
    """A tracked check changed state (after fall/rise); ``delta`` is a value check's reading."""

    check: str
    up: bool
    detail: str
    delta: int | None = None


@dataclass(frozen=True, kw_only=True)
class SendFailed:
    """The shell could not send an advert of ``instance``."""

    instance: str
    destination: IPAddress
    error: str


@dataclass(frozen=True, kw_only=True)
class MaintenanceChanged:
    """Drain (``on``) or restore one instance, or every instance when ``instance`` is None."""

    instance: str | None
    on: bool
    reason: str = ""


@dataclass(frozen=True, kw_only=True)
class RemoveInstances:
    """A reload drops (or must restart) these instances: a Master resigns with priority 0 and
    releases its VIPs.  The shell performs the outputs with the old drivers, then forgets them."""

    names: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class Reconfigured:
    """A validated reload: instances in ``config`` that are not running start (``sources`` gives
    their advert source addresses), the others are updated in place (:func:`replaceable_in_place`).
    ``links`` holds the state of interfaces the new configuration brings."""

    config: Config
    sources: Mapping[str, IPAddress]
    links: Mapping[str, bool]


CoordinatorEvent = (
    Started
    | RemoveInstances
    | Reconfigured
    | PacketReceived
    | PacketRejected
    | InstanceTimerFired
    | CheckChanged
    | ev.LinkChanged
    | SendFailed
    | MaintenanceChanged
    | WitnessChanged
    | ev.Shutdown
)


# -- outputs -----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Perform:
    """``instance``'s driver must perform ``action`` (outputs keep the order the instance gave)."""

    instance: str
    action: act.Action


@dataclass(frozen=True, kw_only=True)
class CallHook:
    """Call hook ``name`` with ``kwargs`` (see :mod:`hafm.hookspecs`)."""

    name: str
    kwargs: Mapping[str, Any]


@dataclass(frozen=True, kw_only=True)
class Log:
    """A line worth logging; the coordinator decides what is said and how often, the shell writes it."""

    level: int
    message: str


Output = Perform | CallHook | Log | WitnessAcquire | WitnessRelease


# -- what the coordinator knows ----------------------------------------------------------------


@dataclass(kw_only=True)
class InstanceCounters:
    """Counters of one instance, read by ``hafm status`` and the metrics endpoint."""

    adverts_sent: int = 0
    adverts_received: int = 0
    transitions: int = 0
    gratuitous_sent: int = 0  # gratuitous ARP / unsolicited NA packets asked for
    send_errors: int = 0
    split_brains: int = 0
    became_master: int = 0
    drops: Counter[DropReason] = field(default_factory=Counter)


@dataclass(frozen=True, kw_only=True)
class InstanceReport:
    """A snapshot of one instance for ``hafm status``; times are on the caller's clock."""

    name: str
    interface: str
    family: int
    vrid: int
    version: int
    state: State
    since: float
    reason: str
    base_priority: int
    priority: int
    explanation: str
    tracked: tuple[Tracked, ...]  # each tracked check with its effective weight
    master: IPAddress | None
    master_priority: int | None
    advert_int: float
    master_adver_interval: float
    vips: tuple[str, ...]
    holds_vips: bool
    fault_causes: tuple[str, ...]
    maintenance: str | None
    sync_group: str | None
    counters: InstanceCounters


@dataclass
class _Member:
    """The coordinator's bookkeeping for one instance."""

    instance: VrrpInstance
    state_since: float = 0.0
    reason: str = "configured"
    explanation: str = ""
    check_fault: str | None = None  # the fault cause tracking gave it
    sync_causes: set[str] = field(default_factory=set)  # fault causes its sync group gave it
    maintenance: str | None = None
    counters: InstanceCounters = field(default_factory=InstanceCounters)


class Coordinator:
    """All instances of one configuration; ``handle(event, now)`` in, outputs out."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.members: dict[str, _Member] = {name: _Member(VrrpInstance(c)) for name, c in config.instances.items()}
        self.links: dict[str, bool] = {}
        self.checks: dict[str, tuple[bool, int | None]] = {
            name: (check.init_state == "up", None) for name, check in config.checks.items()
        }
        self.unrouted_drops: Counter[DropReason] = Counter()
        self.group_states: dict[str, str] = {name: INIT_GROUP_STATE for name in config.sync_groups}
        self._group_of = {member: group.name for group in config.sync_groups.values() for member in group.group}
        self._by_vrid: dict[SocketKey, dict[int, str]] = {}
        for name, instance in config.instances.items():
            self._by_vrid.setdefault((instance.interface, instance.family), {})[instance.virtual_router_id] = name
        self._last_advert: dict[tuple[str, int], tuple[bytes, IPAddress, IPAddress, Advertisement]] = {}
        self._drop_reported: dict[_ReportKey, float] = {}
        self._drops_unreported: Counter[_ReportKey] = Counter()
        self._queue: deque[tuple[str, _Queued]] = deque()
        self._groups_touched: dict[str, tuple[str, act.StateChanged]] = {}
        self._out: list[Output] = []
        self._now = 0.0
        self._packets = 1  # identical packets the event being handled stands for
        self.witness = WitnessPolicy(config.witness, config.instances)

    # -- public API ----------------------------------------------------------------------------

    def handle(self, event: CoordinatorEvent, now: float) -> list[Output]:
        """Feed one event; return every output in the order it must be performed."""
        self._now = now
        self._out = []
        self._packets = 1
        match event:
            case Started():
                self._started(event)
            case RemoveInstances():
                self._remove(event.names)
            case Reconfigured():
                self._reconfigured(event)
            case PacketReceived():
                self._packet(event)
            case PacketRejected():
                self._drop(None, event.reason, "?", f"{event.detail} on {event.interface}")
            case InstanceTimerFired():
                if event.instance in self.members:
                    self._timer_fired(event)
            case WitnessChanged():
                self._witness_changed(event)
            case CheckChanged():
                self._check_changed(event)
            case ev.LinkChanged():
                self._link_changed(event)
            case SendFailed():
                self._send_failed(event)
            case MaintenanceChanged():
                self._maintenance(event)
            case ev.Shutdown():
                for name in self.members:
                    self._feed(name, ev.Shutdown())
            case _:
                raise TypeError(f"not a coordinator event: {event!r}")
        self._run_queue()
        out, self._out = self._out, []
        return out

    def report(self, name: str) -> InstanceReport:
        """What ``hafm status`` shows for instance ``name``."""
        member = self.members[name]
        instance = member.instance
        config = instance.config
        return InstanceReport(
            name=name,
            interface=config.interface,
            family=config.family,
            vrid=config.virtual_router_id,
            version=config.version,
            state=instance.state,
            since=member.state_since,
            reason=member.reason,
            base_priority=config.priority,
            priority=instance.priority,
            explanation=member.explanation or f"base {config.priority}",
            tracked=tuple(self._tracked(config)),
            master=instance.primary_address if instance.state is State.MASTER else instance.last_master,
            master_priority=instance.priority if instance.state is State.MASTER else instance.last_master_priority,
            advert_int=config.advert_int,
            master_adver_interval=instance.master_adver_interval,
            vips=tuple(str(v.address) for v in instance.vips),
            holds_vips=instance.state is State.MASTER,
            fault_causes=instance.status().fault_causes,
            maintenance=member.maintenance,
            sync_group=self._group_of.get(name),
            counters=member.counters,
        )

    # -- events --------------------------------------------------------------------------------

    def _started(self, event: Started) -> None:
        self.links.update(event.links)
        for name, member in self.members.items():
            config = member.instance.config
            for interface in (config.interface, *config.track_interface):
                if not self.links.get(interface, True):
                    self._queue.append((name, ev.LinkChanged(interface=interface, up=False)))
        self._apply_tracking(self.members)
        self._run_queue()
        for name in self.members:
            self._queue.append((name, ev.Startup(primary_address=event.sources[name])))
        self._queue.append(("", _SYNC_GROUPS))

    def restarts_needed(self, config: Config) -> tuple[str, ...]:
        """Running instances a reload to ``config`` must stop: removed, or changed beyond an in-place update."""
        return tuple(
            name
            for name, member in self.members.items()
            if name not in config.instances or not replaceable_in_place(member.instance.config, config.instances[name])
        )

    def _remove(self, names: Iterable[str]) -> None:
        names = [n for n in names if n in self.members]
        for name in names:
            self._feed(name, ev.Shutdown())
        self._run_queue()
        for name in names:
            del self.members[name]
            self._log(logging.INFO, f"{name}: removed by reload")
        # Until Reconfigured arrives, their VRIDs belong to nobody: a packet for one is an unknown VRID.
        self._by_vrid = {
            key: {vrid: name for vrid, name in vrids.items() if name in self.members}
            for key, vrids in self._by_vrid.items()
        }

    def _reconfigured(self, event: Reconfigured) -> None:
        old, new = self.config, event.config
        self.config = new
        self.links.update({name: up for name, up in event.links.items() if name not in self.links})
        self._group_of = {member: group.name for group in new.sync_groups.values() for member in group.group}
        self.group_states = {name: self.group_states.get(name, INIT_GROUP_STATE) for name in new.sync_groups}
        self._by_vrid = {}
        for name, instance in new.instances.items():
            self._by_vrid.setdefault((instance.interface, instance.family), {})[instance.virtual_router_id] = name
        # A check keeps its state unless what it probes changed (a new interval or weight is not a new check).
        self.checks = {
            name: self.checks[name]
            if name in self.checks and same_probe(old.checks.get(name), check)
            else (check.init_state == "up", None)
            for name, check in new.checks.items()
        }
        started = []
        for name, config in new.instances.items():
            member = self.members.get(name)
            if member is None:
                self.members[name] = _Member(VrrpInstance(config), state_since=self._now)
                started.append(name)
                continue
            before = member.instance.config
            if before == config:
                continue
            for action in member.instance.reconfigure(config, self._now):
                self._perform(name, member, action)
            self._relink(name, before, config)
            self._log(logging.INFO, f"{name}: updated in place by reload")
        self.witness.update(new.witness, new.instances)
        for name in started:
            config = new.instances[name]
            for interface in (config.interface, *config.track_interface):
                if not self.links.get(interface, True):
                    self._feed(name, ev.LinkChanged(interface=interface, up=False))
        self._apply_tracking(self.members)
        self._run_queue()
        for name in started:
            self._feed(name, ev.Startup(primary_address=event.sources[name]))
        self._queue.append(("", _SYNC_GROUPS))

    def _relink(self, name: str, before: InstanceConfig, after: InstanceConfig) -> None:
        """Link faults for interfaces an in-place update stopped or started tracking."""
        old = set(before.track_interface) | {before.interface}
        new = set(after.track_interface) | {after.interface}
        for interface in sorted(old - new):
            if not self.links.get(interface, True):
                self._feed(name, ev.LinkChanged(interface=interface, up=True))
        for interface in sorted(new - old):
            if not self.links.get(interface, True):
                self._feed(name, ev.LinkChanged(interface=interface, up=False))

    def _packet(self, packet: PacketReceived) -> None:
        self._packets = packet.count  # until the next event: the instance may drop it too
        if packet.ttl != VRRP_TTL:  # cheapest check first: forged or routed packets stop here
            detail = f"TTL/hop limit {packet.ttl} on {packet.interface}"
            self._drop(None, DropReason.BAD_TTL, str(packet.source), detail)
            return
        vrid = packet.payload[1] if len(packet.payload) > 1 else 0
        name = self._by_vrid.get((packet.interface, packet.family), _NO_VRIDS).get(vrid)
        advert = self._decode(packet, name)
        if advert is None:
            return
        if name is None:
            self._drop(None, DropReason.UNKNOWN_VRID, str(packet.source), f"VRID {vrid} on {packet.interface}")
            return
        if self.witness.lease_mode(name):
            return  # lease mode: VRRP plays no part, whatever is on the wire
        self.members[name].counters.adverts_received += packet.count
        self._feed(name, ev.AdvertReceived(advert=advert, source=packet.source))

    def _decode(self, packet: PacketReceived, name: str | None) -> Advertisement | None:
        # A Master repeats itself: remember the last advert per VRID.  Keyed without the source (an
        # address hashes slowly) and compared with ``is`` first (the shell hands repeats out as the
        # same objects); two sources taking turns on one VRID (a split brain) are just decoded each time.
        key = (packet.interface, packet.payload[1] if len(packet.payload) > 1 else 0)
        remembered = self._last_advert.get(key)
        if (
            remembered is not None
            and remembered[0] == packet.payload
            and (remembered[1] is packet.source or remembered[1] == packet.source)
            and (remembered[2] is packet.destination or remembered[2] == packet.destination)
        ):
            return remembered[3]
        checksum_as_v2 = self.members[name].instance.config.v3_checksum_as_v2 if name else False
        try:
            advert = decode(
                packet.payload,
                source=packet.source,
                destination=packet.destination,
                ttl=packet.ttl,
                checksum_as_v2=checksum_as_v2,
            )
        except MalformedAdvert as exc:
            self._drop(name, exc.reason, str(packet.source), exc.detail)
            return None
        self._last_advert[key] = (packet.payload, packet.source, packet.destination, advert)
        return advert

    def _check_changed(self, event: CheckChanged) -> None:
        if event.check not in self.checks:
            return
        self.checks[event.check] = (event.up, event.delta)
        self._log(logging.INFO, f"check {event.check}: {'up' if event.up else 'down'} ({event.detail})")
        self._hook("hafm_check_changed", check_name=event.check, up=event.up, detail=event.detail)
        self._apply_tracking(
            name
            for name, member in self.members.items()
            if any(t.name == event.check for t in member.instance.config.track_check)
        )

    def _link_changed(self, event: ev.LinkChanged) -> None:
        if event.interface not in self.links or self.links[event.interface] == event.up:
            return
        self.links[event.interface] = event.up
        self._log(logging.INFO, f"{event.interface}: link {'up' if event.up else 'down'}")
        for name, member in self.members.items():
            config = member.instance.config
            if event.interface == config.interface or event.interface in config.track_interface:
                self._queue.append((name, event))
        self._queue.append(("", _SYNC_GROUPS))

    def _send_failed(self, event: SendFailed) -> None:
        member = self.members.get(event.instance)
        if member is None:
            return
        member.counters.send_errors += 1
        self._report_once(
            (event.instance, None),
            logging.WARNING,
            f"{event.instance}: advert to {event.destination} not sent: {event.error}",
        )

    def _maintenance(self, event: MaintenanceChanged) -> None:
        names = [event.instance] if event.instance is not None else list(self.members)
        for name in names:
            member = self.members.get(name)
            if member is None:
                continue
            wanted = (event.reason or "maintenance") if event.on else None
            if member.maintenance == wanted:
                continue
            member.maintenance = wanted
            what = f"on ({wanted})" if event.on else "off"
            self._log(logging.WARNING, f"{name}: maintenance {what}")
            self._apply_tracking([name])
            if wanted is not None:
                # Hand over at once (priority-0 advert); at priority 1 it takes the VIP back only
                # when no other node is alive.
                self._feed(name, ev.Resign(reason=f"maintenance ({wanted})"))
            elif self.witness.uses(name):
                self._apply_witness(name, self.witness.maintenance_off(name, member.instance.state))

    # -- the witness ---------------------------------------------------------------------------

    def _timer_fired(self, event: InstanceTimerFired) -> None:
        name = event.instance
        if event.timer is Timer.MASTER_DOWN and self.witness.uses(name):
            self._apply_witness(name, self.witness.master_down(name, self.members[name].instance))
            return
        self._feed(name, ev.TimerFired(timer=event.timer))

    def _witness_changed(self, event: WitnessChanged) -> None:
        member = self.members.get(event.instance)
        if member is None or not self.witness.uses(event.instance):
            return
        self._apply_witness(event.instance, self.witness.changed(event, member.instance))

    def _apply_witness(self, name: str, decisions: list[Decision]) -> None:
        for decision in decisions:
            match decision:
                case SetReason(reason=reason):
                    self.members[name].reason = reason
                case Say(level=level, message=message):
                    self._log(level, message)
                case WitnessAcquire() | WitnessRelease():
                    self._out.append(decision)
                case _:
                    self._feed(name, decision)

    # -- feeding instances ---------------------------------------------------------------------

    def _feed(self, name: str, event: ev.Event) -> None:
        self._queue.append((name, event))

    def _run_queue(self) -> None:
        budget = MAX_QUEUED_PER_EVENT
        while self._queue:
            budget -= 1
            if budget < 0:  # a feedback loop between instances is hafm's bug: say so, keep running
                self._log(logging.ERROR, f"internal error: event cascade did not settle; {len(self._queue)} dropped")
                self._queue.clear()
                return
            name, event = self._queue.popleft()
            if isinstance(event, _SyncGroupsUpdate):
                self._sync_groups_update()
                continue
            member = self.members[name]
            for action in member.instance.handle(event, self._now):
                self._perform(name, member, action)
        touched, self._groups_touched = self._groups_touched, {}
        for group, (member_name, change) in touched.items():
            self._group_state(group, member_name, change)

    def _perform(self, name: str, member: _Member, action: act.Action) -> None:
        counters = member.counters
        match action:
            case act.StateChanged():
                self._state_changed(name, member, action)
                return
            case act.DropAdvert():
                self._drop(name, action.reason, str(action.source), action.detail)
                return
            case act.SplitBrain():
                counters.split_brains += 1
                self._log(
                    logging.WARNING, f"{name}: split brain: another master {action.peer} prio {action.peer_priority}"
                )
                self._hook("hafm_split_brain", instance=name, peer=str(action.peer), peer_priority=action.peer_priority)
                return
            case act.SendAdvert():
                if self.witness.lease_mode(name):
                    return  # lease mode sends no VRRP packets at all
                config = member.instance.config
                counters.adverts_sent += len(config.unicast_peer) or 1
            case act.SendGratuitous(vips=vips, repeat=repeat):
                counters.gratuitous_sent += len(vips) * repeat
        self._out.append(Perform(instance=name, action=action))

    def _state_changed(self, name: str, member: _Member, change: act.StateChanged) -> None:
        member.state_since = self._now
        member.reason = change.reason
        member.counters.transitions += 1
        if change.new is State.MASTER:
            member.counters.became_master += 1
        self._out.append(Perform(instance=name, action=change))
        self._log(logging.INFO, f"{name}: {change.old.value} -> {change.new.value} ({change.reason})")
        self._hook(
            "hafm_state_changed",
            instance=name,
            old_state=change.old.value,
            new_state=change.new.value,
            reason=change.reason,
            priority=change.priority,
        )
        if self.witness.uses(name):
            maintenance = member.maintenance is not None
            self._apply_witness(name, self.witness.state_changed(name, change.old, change.new, maintenance=maintenance))
        group = self._group_of.get(name)
        if group is None:
            return
        # Members follow after this member's own actions and hook, so notify scripts see the member first.
        if change.old is State.MASTER and change.new is State.BACKUP:
            for other in self.config.sync_groups[group].group:
                if other != name and other in self.members:
                    self._queue.append((other, ev.SyncGroupBackup(group=group, member=name)))
        self._queue.append(("", _SYNC_GROUPS))
        # The group's own state is judged once the cascade has settled, after every member's hook.
        self._groups_touched.setdefault(group, (name, change))

    # -- tracking ------------------------------------------------------------------------------

    def _tracked(self, config: InstanceConfig) -> list[Tracked]:
        """The instance's tracked checks as they stand, each with its effective weight."""
        tracked = []
        for track in config.track_check:
            up, delta = self.checks[track.name]
            weight = track.weight if track.weight is not None else self.config.checks[track.name].weight
            tracked.append(Tracked(track.name, weight, up, delta))
        return tracked

    def _apply_tracking(self, names: Iterable[str]) -> None:
        """New priorities and check faults for the instances ``names`` and their sync groups."""
        names = set(names)
        groups = {self._group_of[n] for n in names if n in self._group_of}
        names |= {m for g in groups for m in self.config.sync_groups[g].group if m in self.members}
        tracked = {n: self._tracked(m.instance.config) for n, m in self.members.items()}
        verdicts = {n: effective_priority(self.members[n].instance.config.priority, t) for n, t in tracked.items() if t}
        for name in sorted(names):
            member = self.members[name]
            base = member.instance.config.priority
            group = self._group_of.get(name)
            shifts = []  # (priority shift, not our own, why) per member that tracks checks
            for peer in self.config.sync_groups[group].group if group else (name,):
                verdict = verdicts.get(peer)
                if verdict is None or peer not in self.members:
                    continue
                peer_base = self.members[peer].instance.config.priority
                if peer_base == OWNER_PRIORITY:
                    continue  # the address owner is not changed by tracking
                why = verdict.explanation
                if group is not None and peer != name:
                    why = f"sync group {group}: {peer}: {why}"
                shifts.append((verdict.priority - peer_base, peer != name, why))
            shift, _, explanation = min(shifts, default=(0, False, f"base {base}"))
            priority = max(MIN_PRIORITY, min(base + shift, MAX_PRIORITY))
            if member.maintenance is not None:
                priority, explanation = MIN_PRIORITY, f"maintenance ({member.maintenance})"
            self._set_priority(name, member, priority, explanation)
            self._set_check_fault(name, member, tracked[name], verdicts.get(name))
        self._queue.append(("", _SYNC_GROUPS))

    def _set_priority(self, name: str, member: _Member, priority: int, explanation: str) -> None:
        instance = member.instance
        member.explanation = explanation
        if instance.config.priority == OWNER_PRIORITY:
            # The address owner keeps 255; in maintenance it can only step aside through FAULT.
            cause = "maintenance"
            if member.maintenance is not None and cause not in instance.status().fault_causes:
                self._feed(name, ev.FaultChanged(cause=cause, active=True))
            elif member.maintenance is None and cause in instance.status().fault_causes:
                self._feed(name, ev.FaultChanged(cause=cause, active=False))
            return
        old = instance.priority
        if priority != old:
            self._log(logging.INFO, f"{name}: priority {old} -> {priority} ({explanation})")
            self._feed(name, ev.PriorityChanged(priority=priority, explanation=explanation))
            self._hook("hafm_priority_changed", instance=name, old=old, new=priority, explanation=explanation)

    def _set_check_fault(
        self, name: str, member: _Member, tracked: list[Tracked], verdict: PriorityVerdict | None
    ) -> None:
        cause = member.check_fault
        faulty = verdict is not None and verdict.fault
        if verdict is not None and faulty and cause is None:
            down = [t.name for t in tracked if t.weight == 0 and not t.up]
            cause = f"check {', '.join(down)} down" if down else f"tracked check fault ({verdict.explanation})"
            member.check_fault = cause
            self._feed(name, ev.FaultChanged(cause=cause, active=True))
        elif not faulty and cause is not None:
            member.check_fault = None
            self._feed(name, ev.FaultChanged(cause=cause, active=False))

    # -- sync groups ---------------------------------------------------------------------------

    def _sync_groups_update(self) -> None:
        """Give every member of a group a fault cause for each *other* member with a fault of its own."""
        for name, member in self.members.items():
            if name not in self._group_of:  # no group (any more, after a reload): nothing it gave stays
                for cause in sorted(member.sync_causes):
                    self._queue.append((name, ev.FaultChanged(cause=cause, active=False)))
                member.sync_causes.clear()
        for group in self.config.sync_groups.values():
            members = {m: self.members[m] for m in group.group if m in self.members}
            own_faults = {m for m, member in members.items() if self._has_own_fault(member)}
            for name, member in members.items():
                wanted = {f"sync group {group.name}: {other} in FAULT" for other in own_faults - {name}}
                for cause in sorted(wanted - member.sync_causes):
                    member.sync_causes.add(cause)
                    self._queue.append((name, ev.FaultChanged(cause=cause, active=True)))
                for cause in sorted(member.sync_causes - wanted):
                    member.sync_causes.discard(cause)
                    self._queue.append((name, ev.FaultChanged(cause=cause, active=False)))

    def _has_own_fault(self, member: _Member) -> bool:
        """A fault from the member's own sources (links, checks, maintenance), whatever its group says.

        Decided from what the coordinator knows, not from the instance: a fault change queued for
        the instance has not reached it yet while the queue is being worked.
        """
        config = member.instance.config
        if any(not self.links.get(name, True) for name in (config.interface, *config.track_interface)):
            return True
        owner_in_maintenance = member.maintenance is not None and config.priority == OWNER_PRIORITY
        return member.check_fault is not None or owner_in_maintenance

    def _group_state(self, group_name: str, member: str, change: act.StateChanged) -> None:
        group = self.config.sync_groups[group_name]
        states = [self.members[m].instance.state.value for m in group.group if m in self.members]
        new = _group_state(states)
        old = self.group_states[group.name]
        if new == old:
            return
        self.group_states[group.name] = new
        reason = f"{member} {change.old.value} -> {change.new.value} ({change.reason})"
        self._log(logging.INFO, f"{group.name}: group {old} -> {new} ({reason})")
        self._hook("hafm_sync_group_state_changed", group=group.name, old_state=old, new_state=new, reason=reason)

    # -- drops and bounded reporting -------------------------------------------------------------

    def _drop(self, name: str | None, reason: DropReason, peer: str, detail: str) -> None:
        if name is None:
            self.unrouted_drops[reason] += self._packets
        else:
            self.members[name].counters.drops[reason] += self._packets
        # Other VRIDs on a shared segment and our own looped-back adverts are normal: debug only.
        level = logging.DEBUG if reason in (DropReason.UNKNOWN_VRID, DropReason.OWN_ADVERT) else logging.WARNING
        if self._report_once(
            (name, reason), level, f"{name or '*'}: dropped advert from {peer}: {reason.value} ({detail})"
        ):
            self._hook("hafm_packet_dropped", instance=name, reason=reason, peer=peer)

    def _report_once(self, key: _ReportKey, level: int, message: str) -> bool:
        """Log ``message`` unless ``key`` was reported less than a window ago; say how many were not."""
        last = self._drop_reported.get(key)
        if last is not None and self._now - last < DROP_REPORT_WINDOW:
            self._drops_unreported[key] += self._packets
            return False
        self._drop_reported[key] = self._now
        suppressed = self._drops_unreported.pop(key, 0)
        if suppressed:
            message += f" (and {suppressed} more like it in the last {DROP_REPORT_WINDOW:g} s)"
        self._log(level, message)
        return True

    def _log(self, level: int, message: str) -> None:
        self._out.append(Log(level=level, message=message))

    def _hook(self, name: str, **kwargs: Any) -> None:
        self._out.append(CallHook(name=name, kwargs=kwargs))


@dataclass(frozen=True)
class _SyncGroupsUpdate:
    """Queued after anything that can change a fault: recompute sync-group fault propagation."""


_SYNC_GROUPS = _SyncGroupsUpdate()
_Queued = ev.Event | _SyncGroupsUpdate


def same_probe(old: CheckConfig | None, new: CheckConfig) -> bool:
    """Whether a reloaded check probes the same thing, so its up/down state carries over."""
    return old is not None and (old.type, old.options) == (new.type, new.options)


def _group_state(states: list[str]) -> str:
    """A group is FAULT if any member is, MASTER when all are, otherwise BACKUP (keepalived's view)."""
    for state in ("FAULT", "INIT"):
        if state in states:
            return state
    if all(s == "STOP" for s in states):
        return "STOP"
    return "MASTER" if all(s == "MASTER" for s in states) else "BACKUP"
