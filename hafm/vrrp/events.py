"""Events fed into a :class:`hafm.vrrp.instance.VrrpInstance` (inputs of the sans-IO core)."""

from __future__ import annotations

from dataclasses import dataclass

from hafm.config.model import IPAddress
from hafm.vrrp.codec import Advertisement
from hafm.vrrp.timers import Timer


@dataclass(frozen=True, kw_only=True)
class Startup:
    """The daemon is ready: sockets open, ``primary_address`` known.

    ``primary_address`` is the address adverts are sent from (the interface's
    primary address, ``unicast_src_ip``, or the IPv6 link-local address); it
    also breaks ties between equal-priority masters.
    """

    primary_address: IPAddress


@dataclass(frozen=True, kw_only=True)
class AdvertReceived:
    """A syntactically valid advert for this instance's VRID (the codec already checked TTL and checksum)."""

    advert: Advertisement
    source: IPAddress


@dataclass(frozen=True, kw_only=True)
class TimerFired:
    timer: Timer


@dataclass(frozen=True, kw_only=True)
class PriorityChanged:
    """Tracked checks changed the effective priority; ``explanation`` says why (for the log)."""

    priority: int
    explanation: str = ""

    def __post_init__(self) -> None:
        if not 1 <= self.priority <= 255:
            raise ValueError(f"priority {self.priority} out of range 1..255")


@dataclass(frozen=True, kw_only=True)
class LinkChanged:
    """The instance interface or a tracked interface went down or came up."""

    interface: str
    up: bool


@dataclass(frozen=True, kw_only=True)
class FaultChanged:
    """Another fault source (a weight-0 check, a sync group) is set or cleared."""

    cause: str
    active: bool


@dataclass(frozen=True, kw_only=True)
class SyncGroupBackup:
    """Another member of this instance's sync group left MASTER for BACKUP: a Master follows it."""

    group: str
    member: str


@dataclass(frozen=True, kw_only=True)
class Resign:
    """Step aside now: a Master sends a priority-0 advert and becomes Backup (maintenance)."""

    reason: str


@dataclass(frozen=True, kw_only=True)
class TakeOver:
    """Become Master now (a Backup in lease mode that holds the witness lease; VRRP timers play no part)."""

    reason: str


@dataclass(frozen=True, kw_only=True)
class Shutdown:
    """Stop the instance: a Master sends a priority-0 advert and releases its VIPs."""


Event = (
    Startup
    | AdvertReceived
    | TimerFired
    | PriorityChanged
    | LinkChanged
    | FaultChanged
    | SyncGroupBackup
    | Resign
    | TakeOver
    | Shutdown
)
