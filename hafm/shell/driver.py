"""Runs one sans-IO :class:`~hafm.vrrp.instance.VrrpInstance` on asyncio: the thin I/O shell.

Adverts are sent and timers armed synchronously (microseconds); VIP changes
and gratuitous announcements go through a per-instance queue worked by one
task, so they happen in order (VIPs before GARP) without blocking the loop.
No protocol decision is taken here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from hafm.config.model import IPAddress, Vip
from hafm.shell.announce import Announcer
from hafm.shell.netlink import Netlink, NetlinkProblem
from hafm.shell.sockets import VrrpSocket
from hafm.vrrp import actions as act
from hafm.vrrp import events as ev
from hafm.vrrp.codec import encode
from hafm.vrrp.instance import VrrpInstance
from hafm.vrrp.state import State
from hafm.vrrp.timers import Timer

log = logging.getLogger("hafm")


@dataclass(frozen=True, kw_only=True)
class Interface:
    """What the driver needs to place a VIP: its index and an announcer for its MAC."""

    index: int
    announcer: Announcer


StateCallback = Callable[[str, act.StateChanged], None]
DropCallback = Callable[[str, act.DropAdvert], None]
SplitBrainCallback = Callable[[str, act.SplitBrain], None]


class InstanceDriver:
    def __init__(
        self,
        instance: VrrpInstance,
        *,
        sock: VrrpSocket,
        netlink: Netlink,
        interfaces: dict[str, Interface],
        on_state: StateCallback,
        on_drop: DropCallback,
        on_split_brain: SplitBrainCallback,
    ) -> None:
        self.instance = instance
        self.name = instance.config.name
        self.sock = sock
        self.netlink = netlink
        self.interfaces = interfaces
        self.on_state = on_state
        self.on_drop = on_drop
        self.on_split_brain = on_split_brain
        self.source: IPAddress | None = None
        self.send_errors = 0
        self.adverts_sent = 0
        self._loop = asyncio.get_running_loop()
        self._timers: dict[Timer, asyncio.TimerHandle] = {}
        self._side_effects: asyncio.Queue[act.Action] = asyncio.Queue()
        self._worker = asyncio.create_task(self._work(), name=f"{self.name}-vips")
        config = instance.config
        if config.unicast_peer:
            self.destinations: tuple[IPAddress, ...] = config.unicast_peer
        else:
            self.destinations = (sock.multicast_group,)

    def feed(self, event: ev.Event) -> None:
        self._perform(self.instance.handle(event, self._loop.time()))

    def start(self, source: IPAddress) -> None:
        self.source = source
        self.feed(ev.Startup(primary_address=source))

    async def stop(self, timeout: float = 0.8) -> None:
        """Shutdown: priority-0 advert if Master, VIPs removed, then the worker ends."""
        self.feed(ev.Shutdown())
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        try:
            await asyncio.wait_for(self._side_effects.join(), timeout)
        except TimeoutError:
            log.error("%s: VIPs not removed within %.1f s", self.name, timeout)
        self._worker.cancel()

    # -- actions ---------------------------------------------------------------

    def _perform(self, actions: list[act.Action]) -> None:
        for action in actions:
            match action:
                case act.SendAdvert():
                    self._send(action)
                case act.SetTimer(timer=timer, deadline=deadline):
                    self._cancel(timer)
                    self._timers[timer] = self._loop.call_at(deadline, self._fire, timer)
                case act.CancelTimer(timer=timer):
                    self._cancel(timer)
                case act.StateChanged():
                    self.on_state(self.name, action)
                case act.DropAdvert():
                    self.on_drop(self.name, action)
                case act.SplitBrain():
                    self.on_split_brain(self.name, action)
                case act.AddVips() | act.RemoveVips() | act.SendGratuitous():
                    self._side_effects.put_nowait(action)

    def _fire(self, timer: Timer) -> None:
        self._timers.pop(timer, None)
        self.feed(ev.TimerFired(timer=timer))

    def _cancel(self, timer: Timer) -> None:
        handle = self._timers.pop(timer, None)
        if handle is not None:
            handle.cancel()

    def _send(self, action: act.SendAdvert) -> None:
        assert self.source is not None
        checksum_as_v2 = self.instance.config.v3_checksum_as_v2
        for destination in self.destinations:
            payload = encode(action.advert, source=self.source, destination=destination, checksum_as_v2=checksum_as_v2)
            try:
                self.sock.send(payload, source=self.source, destination=destination)
                self.adverts_sent += 1
            except OSError as exc:
                # Link down or no route: counted; the state machine learns of links from netlink.
                self.send_errors += 1
                log.debug("%s: advert to %s not sent: %s", self.name, destination, exc)

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
                if self.instance.state is not State.MASTER:
                    return  # lost mastership while queued
                for dev, group in vips_by_dev(vips, self.instance.config.interface).items():
                    self.interfaces[dev].announcer.send(group, repeat)

    def _interface(self, vip: Vip) -> Interface:
        return self.interfaces[vip.dev or self.instance.config.interface]


def vips_by_dev(vips: tuple[Vip, ...], default: str) -> dict[str, tuple[Vip, ...]]:
    """VIPs grouped by the interface they live on (``default``: the instance's interface)."""
    groups: dict[str, list[Vip]] = {}
    for vip in vips:
        groups.setdefault(vip.dev or default, []).append(vip)
    return {dev: tuple(group) for dev, group in groups.items()}
