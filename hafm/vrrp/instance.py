"""One VRRP instance, sans-IO: ``handle(event, now)`` in, a list of actions out.

No sockets and no clock: ``now`` is a monotonic time in seconds supplied by
the caller, and every deadline in a :class:`~hafm.vrrp.actions.SetTimer` is on that
same clock.  Which state follows which is decided in :mod:`hafm.vrrp.state`; this
module evaluates the RFC's guards and produces the side effects.

Timing (the known traps):
- v2 (RFC 3768): Skew_Time = (256 - Priority) / 256 s, Master_Down_Interval =
  3 * Advertisement_Interval + Skew_Time, with our own configured interval.
- v3 (RFC 5798): Skew_Time = ((256 - Priority) * Master_Adver_Interval) / 256,
  Master_Down_Interval = 3 * Master_Adver_Interval + Skew_Time, where
  Master_Adver_Interval is learned from the Master's adverts.
"""

from __future__ import annotations

from dataclasses import dataclass

from hafm.config.model import InstanceConfig, IPAddress, Vip
from hafm.errors import DropReason, LocalProtocolError
from hafm.vrrp import actions as act
from hafm.vrrp import events as ev
from hafm.vrrp.codec import Advertisement
from hafm.vrrp.constants import OWNER_PRIORITY, master_down_interval, skew_time
from hafm.vrrp.state import State, Trigger, next_state
from hafm.vrrp.timers import Timer

AUTH_NONE = 0
AUTH_SIMPLE_TEXT = 1


@dataclass(frozen=True, kw_only=True)
class InstanceStatus:
    """A snapshot for logs, `hafm status` and tests."""

    name: str
    state: State
    priority: int
    master_adver_interval: float
    last_master: IPAddress | None
    last_master_priority: int | None
    fault_causes: tuple[str, ...]


class VrrpInstance:
    """The RFC 5798 §6 state machine of one virtual router."""

    def __init__(self, config: InstanceConfig) -> None:
        self.config = config
        self.state = State.INITIALIZE
        self.priority = config.priority
        self.primary_address: IPAddress | None = None
        self.master_adver_interval = config.advert_int
        self.last_master: IPAddress | None = None
        self.last_master_priority: int | None = None
        self._fault_causes: set[str] = set()
        self._next_advert: float | None = None
        self._master_resigned = False  # the Master we followed sent priority 0
        self._preempting = False  # the last Master heard had a lower priority than ours
        self._preempt_at: float | None = None  # preempt_delay: earliest preemption
        self._resign_latched = False  # resign_below fired; not again until priority recovers
        self._split_brain_seen: float | None = None  # when another Master was last heard while we were Master
        self._preempted: tuple[IPAddress | None, float] = (None, 0.0)  # the Master we preempted, and when
        self._answered_lower_at: float | None = None  # when we last answered a lower-priority Master
        self._advert_sent: tuple[tuple[object, ...], act.SendAdvert] | None = None
        self._auth_data = config.authentication.auth_pass.encode() if config.authentication is not None else b""
        self.vips: tuple[Vip, ...] = config.virtual_ipaddress + config.virtual_ipaddress_excluded

    # -- public API ---------------------------------------------------------

    def handle(self, event: ev.Event, now: float) -> list[act.Action]:
        """Feed one event; return the actions the driver must perform, in order."""
        if self.state is State.STOP:
            return []
        match event:
            case ev.Startup():
                return self._startup(event, now)
            case ev.AdvertReceived():
                return self._advert_received(event, now)
            case ev.TimerFired():
                return self._timer_fired(event.timer, now)
            case ev.PriorityChanged():
                return self._priority_changed(event, now)
            case ev.LinkChanged():
                cause = f"interface {event.interface} down"
                return self._fault_changed(cause, not event.up, now)
            case ev.FaultChanged():
                return self._fault_changed(event.cause, event.active, now)
            case ev.SyncGroupBackup():
                if self.state is not State.MASTER:
                    return []
                reason = f"sync group {event.group}: {event.member} went BACKUP"
                return self._transition(Trigger.SYNC_BACKUP, reason, now)
            case ev.Resign():
                if self.state is not State.MASTER:
                    return []
                return self._transition(Trigger.RESIGNED, event.reason, now)
            case ev.TakeOver():
                if self.state is not State.BACKUP:
                    return []
                return self._transition(Trigger.TAKE_OVER, event.reason, now)
            case ev.Shutdown():
                return self._transition(Trigger.SHUTDOWN, "shutdown", now)
        raise TypeError(f"not an event: {event!r}")

    def reconfigure(self, config: InstanceConfig, now: float) -> list[act.Action]:
        """Apply a reloaded configuration in place, keeping the state, the timers and the VIPs held.

        Only what :func:`replaceable_in_place` allows may differ.  A Master adds and announces new
        VIPs, removes dropped ones and advertises the change at once; a Backup re-arms its
        Master_Down timer when the interval changed.  Priority: the new base; tracking then
        feeds the effective priority as usual.
        """
        old = self.config
        if not replaceable_in_place(old, config):
            raise LocalProtocolError(f"{old.name}: reconfigure() cannot change identity fields in place")
        old_advert = self._advert(priority=self.priority)
        self.config = config
        self._auth_data = config.authentication.auth_pass.encode() if config.authentication is not None else b""
        old_vips, self.vips = self.vips, config.virtual_ipaddress + config.virtual_ipaddress_excluded
        if config.priority != old.priority:
            self.priority = config.priority
        if self.state is State.BACKUP and config.advert_int != old.advert_int:
            return [act.SetTimer(timer=Timer.MASTER_DOWN, deadline=now + self.master_down_interval)]
        if self.state is not State.MASTER:
            return []
        actions: list[act.Action] = []
        added = tuple(v for v in self.vips if v not in old_vips)
        removed = tuple(v for v in old_vips if v not in self.vips)
        if removed:
            actions.append(act.RemoveVips(vips=removed))
        if added:
            actions.append(act.AddVips(vips=added))
            actions.append(act.SendGratuitous(vips=added, repeat=config.garp_master_repeat))
        if config.garp_master_refresh != old.garp_master_refresh:
            actions.append(act.CancelTimer(timer=Timer.GARP_REFRESH))
            if config.garp_master_refresh > 0:
                deadline = now + config.garp_master_refresh
                actions.append(act.SetTimer(timer=Timer.GARP_REFRESH, deadline=deadline))
        if self._advert(priority=self.priority) != old_advert:
            self._next_advert = None  # the new content (and interval) goes out now
            actions += self._send_advert(now)
        return actions

    def status(self) -> InstanceStatus:
        return InstanceStatus(
            name=self.config.name,
            state=self.state,
            priority=self.priority,
            master_adver_interval=self.master_adver_interval,
            last_master=self.last_master,
            last_master_priority=self.last_master_priority,
            fault_causes=tuple(sorted(self._fault_causes)),
        )

    # -- timing -------------------------------------------------------------

    @property
    def advert_interval(self) -> float:
        return self.config.advert_int

    @property
    def _timing_interval(self) -> float:
        # v2 times everything by our own configured interval; v3 by the interval the Master advertises.
        return self.advert_interval if self.config.version == 2 else self.master_adver_interval

    @property
    def skew_time(self) -> float:
        return skew_time(self.priority, version=self.config.version, master_adver_interval=self._timing_interval)

    @property
    def master_down_interval(self) -> float:
        return master_down_interval(
            self.priority, version=self.config.version, master_adver_interval=self._timing_interval
        )

    @property
    def preempt(self) -> bool:
        return not self.config.nopreempt

    @property
    def preempting(self) -> bool:
        """The Master last heard has a lower priority than ours and we may preempt it."""
        return self._preempting

    # -- event handlers -----------------------------------------------------

    def _startup(self, event: ev.Startup, now: float) -> list[act.Action]:
        if self.state is not State.INITIALIZE:
            return []
        self.primary_address = event.primary_address
        if self._fault_causes:
            return self._transition(Trigger.STARTUP_IN_FAULT, self._fault_reason(), now)
        if self.priority == OWNER_PRIORITY:
            return self._transition(Trigger.STARTUP_AS_OWNER, "address owner (priority 255)", now)
        if self.config.preempt_delay:
            self._preempt_at = now + self.config.preempt_delay
        actions = self._transition(Trigger.STARTUP, "startup", now)
        if self.config.state == "MASTER" and self.preempt:
            # keepalived's `state MASTER`: claim the VIP after one advert interval
            # unless a better Master speaks up first, instead of a full Master_Down_Interval.
            actions.append(act.SetTimer(timer=Timer.MASTER_DOWN, deadline=now + self.advert_interval + self.skew_time))
        return actions

    def _advert_received(self, event: ev.AdvertReceived, now: float) -> list[act.Action]:
        drop = self._validate(event)
        if drop is not None:
            return [drop]
        advert, source = event.advert, event.source
        if self.state is State.BACKUP:
            return self._backup_receives(advert, source, now)
        if self.state is State.MASTER:
            return self._master_receives(advert, source, now)
        return []  # Initialize and Fault ignore adverts

    def _validate(self, event: ev.AdvertReceived) -> act.DropAdvert | None:
        """RFC 3768/5798 §7.1 checks that depend on this instance's configuration."""
        advert, source = event.advert, event.source

        def drop(reason: DropReason, detail: str) -> act.DropAdvert:
            return act.DropAdvert(reason=reason, source=source, detail=detail)

        if source == self.primary_address:
            return drop(DropReason.OWN_ADVERT, "our own advert looped back")
        if self.config.unicast_peer and source not in self.config.unicast_peer:
            return drop(DropReason.UNKNOWN_PEER, "source is not a configured unicast_peer")
        if advert.version != self.config.version:
            detail = f"VRRPv{advert.version} advert, instance is v{self.config.version}"
            return drop(DropReason.VERSION_MISMATCH, detail)
        if self.config.version == 2:
            expected_type = AUTH_SIMPLE_TEXT if self._auth_data else AUTH_NONE
            if advert.auth_type != expected_type:
                return drop(DropReason.AUTH_TYPE_MISMATCH, f"auth type {advert.auth_type}, expected {expected_type}")
            if self._auth_data and advert.auth_data != self._auth_data:
                return drop(DropReason.AUTH_FAILURE, "wrong authentication password")
            if advert.advert_int != int(self.advert_interval):
                return drop(
                    DropReason.BAD_ADVERT_INT,
                    f"advert_int {advert.advert_int} s, ours is {int(self.advert_interval)} s",
                )
        return None

    def _backup_receives(self, advert: Advertisement, source: IPAddress, now: float) -> list[act.Action]:
        if advert.priority == 0:
            # The Master resigned: take over after Skew_Time (RFC 5798 §6.4.2).
            self._master_resigned = True
            self._remember_master(source, advert)
            return [act.SetTimer(timer=Timer.MASTER_DOWN, deadline=now + self.skew_time)]
        if not self.preempt or advert.priority >= self.priority or self._preempt_delayed(now):
            self._master_resigned = self._preempting = False
            self._remember_master(source, advert)
            if self.config.version == 3:
                self.master_adver_interval = advert.interval
            if advert.priority >= self.priority:
                self._preempt_at = None
            return [act.SetTimer(timer=Timer.MASTER_DOWN, deadline=now + self.master_down_interval)]
        # A lower-priority Master and we may preempt: discard, the timer keeps running.
        self._preempting = True
        self._remember_master(source, advert)
        return []

    def _preempt_delayed(self, now: float) -> bool:
        """preempt_delay: a lower-priority Master is tolerated for that long after we first see it."""
        if not self.config.preempt_delay:
            return False
        if self._preempt_at is None:
            self._preempt_at = now + self.config.preempt_delay
        return now < self._preempt_at

    def _master_receives(self, advert: Advertisement, source: IPAddress, now: float) -> list[act.Action]:
        if advert.priority == 0:
            # Another Master resigned; make sure the Backups hear from us at once.
            return self._send_advert(now)
        assert self.primary_address is not None
        better = advert.priority > self.priority or (
            advert.priority == self.priority and _address_key(source) > _address_key(self.primary_address)
        )
        if better:
            actions: list[act.Action] = []
        else:
            actions = self._split_brain(source, advert, now)
        if not better:
            # Discard (RFC 5798 §6.4.3), but answer at once so the other Master yields without
            # waiting for our next advert, and re-announce the VIPs so clients that followed
            # the other Master come back (keepalived's garp_lower_prio_repeat).  At most once
            # per advert interval: a flood of forged adverts must not become a flood of ours.
            answered = self._answered_lower_at
            if answered is not None and now - answered < self.advert_interval:
                return actions
            self._answered_lower_at = now
            return [
                *actions,
                act.SendAdvert(advert=self._advert(priority=self.priority)),
                act.SendGratuitous(vips=self.vips, repeat=1),
            ]
        self._remember_master(source, advert)
        if self.config.version == 3:
            self.master_adver_interval = advert.interval
        reason = f"higher priority advert from {source} prio {advert.priority}"
        if advert.priority == self.priority:
            reason = f"equal priority advert from higher address {source} prio {advert.priority}"
        return actions + self._transition(Trigger.PREEMPTED, reason, now)

    def _split_brain(self, source: IPAddress, advert: Advertisement, now: float) -> list[act.Action]:
        """Another Master of our VRID that we outrank: one SplitBrain action per episode.

        The Master we have just preempted is not a split brain (its last advert crossed ours).
        An episode ends when no other Master has been heard for a Master_Down_Interval.
        """
        preempted, at = self._preempted
        if source == preempted and now - at <= self.master_down_interval:
            return []
        new_episode = self._split_brain_seen is None or now - self._split_brain_seen > self.master_down_interval
        self._split_brain_seen = now
        return [act.SplitBrain(peer=source, peer_priority=advert.priority)] if new_episode else []

    def _timer_fired(self, timer: Timer, now: float) -> list[act.Action]:
        if timer is Timer.MASTER_DOWN and self.state is State.BACKUP:
            if self._master_resigned:
                reason = f"master {self.last_master} resigned (priority 0 advert)"
            elif self._preempting:
                reason = f"preempting lower priority master {self.last_master} prio {self.last_master_priority}"
                self._preempted = (self.last_master, now)
            elif self.last_master is not None:
                reason = f"master down timer expired; last master {self.last_master} prio {self.last_master_priority}"
            else:
                reason = "master down timer expired; no master heard"
            return self._transition(Trigger.MASTER_DOWN, reason, now)
        if self.state is not State.MASTER:
            return []  # a stale timer the driver had not cancelled yet
        if timer is Timer.ADVERT:
            return self._send_advert(now)
        if timer is Timer.GARP_DELAY:
            return [act.SendGratuitous(vips=self.vips, repeat=self.config.garp_master_repeat)]
        if timer is Timer.GARP_REFRESH:
            refresh = self.config.garp_master_refresh
            return [
                act.SendGratuitous(vips=self.vips, repeat=1),
                act.SetTimer(timer=Timer.GARP_REFRESH, deadline=now + refresh),
            ]
        return []

    def _priority_changed(self, event: ev.PriorityChanged, now: float) -> list[act.Action]:
        if self.config.priority == OWNER_PRIORITY:
            return []  # the address owner is not changed by tracking
        self.priority = min(event.priority, OWNER_PRIORITY - 1)
        resign_below = self.config.resign_below
        if resign_below is None:
            return []
        if self.priority >= resign_below:
            self._resign_latched = False
            return []
        if self.state is State.MASTER and not self._resign_latched:
            self._resign_latched = True
            reason = f"priority {self.priority} fell below resign_below {resign_below}"
            if event.explanation:
                reason += f" ({event.explanation})"
            return self._transition(Trigger.RESIGNED, reason, now)
        return []

    def _fault_changed(self, cause: str, active: bool, now: float) -> list[act.Action]:
        was_faulty = bool(self._fault_causes)
        if active:
            self._fault_causes.add(cause)
        else:
            self._fault_causes.discard(cause)
        faulty = bool(self._fault_causes)
        if self.state is State.INITIALIZE or faulty == was_faulty:
            return []
        if faulty:
            return self._transition(Trigger.FAULT, cause, now)
        cleared = cause.replace(" down", " up") if cause.endswith(" down") else f"{cause} cleared"
        if self.priority == OWNER_PRIORITY:
            return self._transition(Trigger.RECOVERED_AS_OWNER, cleared, now)
        return self._transition(Trigger.RECOVERED, cleared, now)

    # -- transitions and their side effects ---------------------------------

    def _transition(self, trigger: Trigger, reason: str, now: float) -> list[act.Action]:
        old = self.state
        new = next_state(old, trigger)
        actions: list[act.Action] = []
        if old is State.MASTER:
            # Stepping down on our own: priority 0, so Backups take over after Skew_Time.  Preempted:
            # one last advert at our priority, so a winner that never heard us (a healed partition)
            # learns of the split brain and re-announces the VIPs to clients that followed us.
            farewell = self.priority if trigger is Trigger.PREEMPTED else 0
            actions += self._leave_master(farewell_priority=farewell)
        elif old is State.BACKUP:
            actions.append(act.CancelTimer(timer=Timer.MASTER_DOWN))
        self.state = new
        actions.append(act.StateChanged(old=old, new=new, reason=reason, priority=self.priority))
        if new is State.MASTER:
            actions += self._enter_master(now)
        elif new is State.BACKUP:
            actions.append(act.SetTimer(timer=Timer.MASTER_DOWN, deadline=now + self.master_down_interval))
        elif new is State.FAULT or new is State.STOP:
            self.last_master = None
            self.last_master_priority = None
        return actions

    def _enter_master(self, now: float) -> list[act.Action]:
        self._master_resigned = False
        self._next_advert = None
        actions: list[act.Action] = [*self._send_advert(now), act.AddVips(vips=self.vips)]
        actions.append(act.SendGratuitous(vips=self.vips, repeat=self.config.garp_master_repeat))
        if self.config.garp_master_delay > 0:
            actions.append(act.SetTimer(timer=Timer.GARP_DELAY, deadline=now + self.config.garp_master_delay))
        if self.config.garp_master_refresh > 0:
            deadline = now + self.config.garp_master_refresh
            actions.append(act.SetTimer(timer=Timer.GARP_REFRESH, deadline=deadline))
        return actions

    def _leave_master(self, *, farewell_priority: int) -> list[act.Action]:
        """Stop advertising and release the VIPs, after one last advert at ``farewell_priority``."""
        return [
            act.CancelTimer(timer=Timer.ADVERT),
            act.CancelTimer(timer=Timer.GARP_DELAY),
            act.CancelTimer(timer=Timer.GARP_REFRESH),
            act.SendAdvert(advert=self._advert(priority=farewell_priority)),
            act.RemoveVips(vips=self.vips),
        ]

    def _send_advert(self, now: float) -> list[act.Action]:
        # Schedule from the previous deadline, not from `now`, so adverts don't drift.
        interval = self.advert_interval
        if self._next_advert is None or self._next_advert + interval <= now:
            self._next_advert = now + interval
        else:
            self._next_advert += interval
        return [self._advert_action(), act.SetTimer(timer=Timer.ADVERT, deadline=self._next_advert)]

    def _advert_action(self) -> act.SendAdvert:
        # A Master sends the same advert every interval: build it again only when what it says changed.
        key = (self.priority, self.advert_interval, self.config, self._auth_data)
        cached = self._advert_sent
        if cached is None or cached[0] != key:
            cached = self._advert_sent = (key, act.SendAdvert(advert=self._advert(priority=self.priority)))
        return cached[1]

    def _advert(self, *, priority: int) -> Advertisement:
        version = self.config.version
        if version == 2:
            return Advertisement(
                version=2,
                vrid=self.config.virtual_router_id,
                priority=priority,
                advert_int=int(self.advert_interval),
                addresses=tuple(v.address.ip for v in self.config.virtual_ipaddress),
                auth_type=AUTH_SIMPLE_TEXT if self._auth_data else AUTH_NONE,
                auth_data=self._auth_data,
            )
        return Advertisement(
            version=3,
            vrid=self.config.virtual_router_id,
            priority=priority,
            advert_int=round(self.advert_interval * 100),
            addresses=tuple(v.address.ip for v in self.config.virtual_ipaddress),
        )

    def _remember_master(self, source: IPAddress, advert: Advertisement) -> None:
        self.last_master = source
        self.last_master_priority = advert.priority

    def _fault_reason(self) -> str:
        return ", ".join(sorted(self._fault_causes))


# What identifies an instance on the wire and on the host: a change means stop it and start anew.
IDENTITY_FIELDS = (
    "name",
    "interface",
    "virtual_router_id",
    "family",
    "version",
    "unicast_src_ip",
    "unicast_peer",
    "v3_checksum_as_v2",
    # Whether the etcd witness decides, and how: the key is taken or released from a clean start.
    "witness",
    "mode",
)


def replaceable_in_place(old: InstanceConfig, new: InstanceConfig) -> bool:
    """Whether ``old`` can become ``new`` without stopping (a reload keeps its state and VIPs)."""
    same_identity = all(getattr(old, name) == getattr(new, name) for name in IDENTITY_FIELDS)
    # The address owner (255) is Master by definition: becoming or ceasing to be one is a restart.
    owner_unchanged = (old.priority == OWNER_PRIORITY) == (new.priority == OWNER_PRIORITY)
    return same_identity and owner_unchanged


def _address_key(address: IPAddress) -> int:
    # RFC 5798 §6.4.3 compares primary addresses as unsigned integers.
    return int(address)
