"""Performs one instance's actions on asyncio: sends adverts, arms timers, places VIPs.

Adverts are sent and timers armed synchronously (microseconds); VIP changes
and gratuitous announcements go through a per-instance queue worked by one
task, so they happen in order (VIPs before GARP) without blocking the loop.
No protocol decision is taken here: what to do comes from
:class:`hafm.vrrp.coordinator.Coordinator`, and what happened (a timer fired,
a send failed) goes back to it through the two callbacks.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from hafm.config.model import InstanceConfig, IPAddress, Vip
from hafm.errors import NetlinkProblem
from hafm.shell.announce import Announcer
from hafm.shell.netlink import Netlink
from hafm.shell.schedule import Scheduler
from hafm.shell.sockets import VrrpSocket
from hafm.vrrp import actions as act
from hafm.vrrp.codec import Advertisement, encode
from hafm.vrrp.state import State
from hafm.vrrp.timers import Timer

log = logging.getLogger("hafm")


@dataclass(kw_only=True)
class Interface:
    """What a driver needs to place a VIP: the interface's index and an announcer for its MAC.

    Mutable: when the interface is deleted and created again, the daemon rebinds it in place.
    """

    index: int
    announcer: Announcer


SendFailedCallback = Callable[[str, IPAddress, OSError], None]


class InstanceDriver:
    def __init__(
        self,
        config: InstanceConfig,
        *,
        sock: VrrpSocket,
        source: IPAddress,
        netlink: Netlink,
        interfaces: dict[str, Interface],
        scheduler: Scheduler,
        on_send_failed: SendFailedCallback,
    ) -> None:
        self.config = config
        self.name = config.name
        self.sock = sock
        self.source = source
        self.netlink = netlink
        self.interfaces = interfaces
        self.scheduler = scheduler
        self.on_send_failed = on_send_failed
        self.state = State.INITIALIZE
        self.destinations: tuple[IPAddress, ...] = config.unicast_peer or (sock.multicast_group,)
        self._encoded: dict[IPAddress, tuple[Advertisement, bytes]] = {}
        self._side_effects: asyncio.Queue[act.Action] = asyncio.Queue()
        self._worker = asyncio.create_task(self._work(), name=f"{self.name}-vips")

    def perform(self, action: act.Action) -> None:
        match action:
            case act.SendAdvert(advert=advert):
                self._send(advert)
            case act.SetTimer(timer=timer, deadline=deadline):
                # A Master's advert may go out a twentieth of its interval early, to share a wake-up
                # with the others' (hafm.shell.schedule): far inside Master_Down_Interval.  From the
                # config in use, which a reload may have changed.
                early = self.config.advert_int / 20 if timer is Timer.ADVERT else 0.0
                self.scheduler.set((self.name, timer), deadline, early)
            case act.CancelTimer(timer=timer):
                self.scheduler.cancel((self.name, timer))
            case act.StateChanged(new=new):
                self.state = new
                self.sock.backing(self.config.virtual_router_id, new is State.BACKUP)
            case act.AddVips() | act.RemoveVips() | act.SendGratuitous():
                self._side_effects.put_nowait(action)

    async def drain(self, timeout: float) -> None:
        """Wait (bounded) until queued VIP changes are done, then stop: the end of a shutdown."""
        for timer in Timer:
            self.scheduler.cancel((self.name, timer))
        self.sock.backing(self.config.virtual_router_id, False)
        try:
            await asyncio.wait_for(self._side_effects.join(), timeout)
        except TimeoutError:
            log.error("%s: VIPs not removed within %.1f s", self.name, timeout)
        self._worker.cancel()

    # -- adverts -------------------------------------------------------------------------------

    def _send(self, advert: Advertisement) -> None:
        for destination in self.destinations:
            payload = self._encode(advert, destination)
            try:
                self.sock.send(payload, source=self.source, destination=destination)
            except OSError as exc:
                # Link down or no route: the coordinator counts it and says so, rate-limited.
                self.on_send_failed(self.name, destination, exc)

    def _encode(self, advert: Advertisement, destination: IPAddress) -> bytes:
        # A Master sends the same advert every interval: encode it once per destination.
        cached = self._encoded.get(destination)
        if cached is not None and cached[0] == advert:
            return cached[1]
        payload = encode(
            advert, source=self.source, destination=destination, checksum_as_v2=self.config.v3_checksum_as_v2
        )
        self._encoded[destination] = (advert, payload)
        return payload

    def rebind(self, sock: VrrpSocket) -> None:
        """The interface was created again: send (and be woken) on its new socket."""
        self.sock = sock
        sock.backing(self.config.virtual_router_id, self.state is State.BACKUP)

    # -- VIPs and announcements ----------------------------------------------------------------

    async def _work(self) -> None:
        while True:
            action = await self._side_effects.get()
            try:
                await self._side_effect(action)
            except NetlinkProblem as exc:
                log.error("%s: %s", self.name, exc)
            except Exception:  # never let one failure stop VIP handling
                log.exception("%s: unexpected error handling %s", self.name, type(action).__name__)
            finally:
                self._side_effects.task_done()

    async def _side_effect(self, action: act.Action) -> None:
        match action:
            case act.AddVips(vips=vips):
                for vip in vips:
                    await self.netlink.add_vip(vip, self._interface(vip).index)
            case act.RemoveVips(vips=vips):
                for vip in vips:
                    await self.netlink.remove_vip(vip, self._interface(vip).index)
            case act.SendGratuitous(vips=vips, repeat=repeat):
                if self.state is not State.MASTER:
                    return  # lost mastership while queued
                for dev, group in vips_by_dev(vips, self.config.interface).items():
                    self.interfaces[dev].announcer.send(group, repeat)

    def _interface(self, vip: Vip) -> Interface:
        return self.interfaces[vip.dev or self.config.interface]


def vips_by_dev(vips: tuple[Vip, ...], default: str) -> dict[str, tuple[Vip, ...]]:
    """VIPs grouped by the interface they live on (``default``: the instance's interface)."""
    groups: dict[str, list[Vip]] = {}
    for vip in vips:
        groups.setdefault(vip.dev or default, []).append(vip)
    return {dev: tuple(group) for dev, group in groups.items()}
