"""Actions returned by a :class:`hafm.vrrp.instance.VrrpInstance` (outputs of the sans-IO core).

The daemon performs them in order; the core never does I/O itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from hafm.config.model import IPAddress, Vip
from hafm.errors import DropReason
from hafm.vrrp.codec import Advertisement
from hafm.vrrp.state import State
from hafm.vrrp.timers import Timer


@dataclass(frozen=True, kw_only=True)
class SendAdvert:
    """Send ``advert`` to the multicast group (or every unicast peer)."""

    advert: Advertisement


@dataclass(frozen=True, kw_only=True)
class AddVips:
    vips: tuple[Vip, ...]


@dataclass(frozen=True, kw_only=True)
class RemoveVips:
    vips: tuple[Vip, ...]


@dataclass(frozen=True, kw_only=True)
class SendGratuitous:
    """Announce the VIPs: gratuitous ARP (IPv4) / unsolicited NA (IPv6), ``repeat`` times each."""

    vips: tuple[Vip, ...]
    repeat: int


@dataclass(frozen=True, kw_only=True)
class SetTimer:
    """Arm (or re-arm) ``timer`` to fire at ``deadline`` on the clock the caller passes as ``now``."""

    timer: Timer
    deadline: float


@dataclass(frozen=True, kw_only=True)
class CancelTimer:
    timer: Timer


@dataclass(frozen=True, kw_only=True)
class StateChanged:
    """The instance moved from ``old`` to ``new``; ``reason`` is a human-readable sentence."""

    old: State
    new: State
    reason: str
    priority: int


@dataclass(frozen=True, kw_only=True)
class DropAdvert:
    """An advert was discarded by this instance (auth, version, interval, peer…)."""

    reason: DropReason
    source: IPAddress
    detail: str


@dataclass(frozen=True, kw_only=True)
class SplitBrain:
    """We are Master and heard another Master of the same VRID that we outrank."""

    peer: IPAddress
    peer_priority: int


Action = (
    SendAdvert | AddVips | RemoveVips | SendGratuitous | SetTimer | CancelTimer | StateChanged | DropAdvert | SplitBrain
)
