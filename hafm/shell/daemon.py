"""The hafm daemon: sockets, netlink, timers and checks around one sans-IO coordinator.

Every decision is the :class:`~hafm.vrrp.coordinator.Coordinator`'s; this
module opens what it needs at start-up (start-up problems become one-line
:class:`DaemonError` messages), turns what happens into coordinator events,
and performs the outputs: instance actions through each
:class:`~hafm.shell.driver.InstanceDriver`, hook calls through the
:class:`~hafm.shell.dispatch.HookDispatcher`, and log lines.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
from collections import deque
from collections.abc import Coroutine
from typing import Any

import pluggy

from hafm import __version__
from hafm.config.model import Config, IPAddress, Vip
from hafm.errors import DaemonError, MalformedAdvert, NetlinkProblem
from hafm.plugin_manager import check_types
from hafm.shell.announce import Announcer
from hafm.shell.checks import CheckRunner
from hafm.shell.dispatch import HookDispatcher
from hafm.shell.driver import InstanceDriver, Interface, vips_by_dev
from hafm.shell.netlink import HAFM_ADDR_PROTO, InterfaceInfo, Netlink, watch_links
from hafm.shell.sockets import VrrpSocket
from hafm.vrrp import coordinator as co
from hafm.vrrp import events as ev
from hafm.vrrp.constants import OWNER_PRIORITY
from hafm.vrrp.timers import Timer

__all__ = ["Daemon", "DaemonError"]

log = logging.getLogger("hafm")

SocketKey = co.SocketKey
# Packets read per socket per wake-up: a flood must not starve the advert timers (the
# socket stays readable, so the loop comes back to it after the timers due meanwhile).
MAX_PACKETS_PER_WAKEUP = 64
SHUTDOWN_GRACE = 0.8  # seconds to remove VIPs at shutdown
HOOK_SHUTDOWN_GRACE = 2.0  # seconds for plugins' shutdown work


class Daemon:
    def __init__(self, config: Config, pm: pluggy.PluginManager) -> None:
        self.config = config
        self.pm = pm
        self.netlink = Netlink()
        self.hooks = HookDispatcher(pm)
        self.coordinator = co.Coordinator(config)
        self.infos: dict[str, InterfaceInfo] = {}
        self.interfaces: dict[str, Interface] = {}
        self.sockets: dict[SocketKey, VrrpSocket] = {}
        self.drivers: dict[str, InstanceDriver] = {}
        self.checks: CheckRunner | None = None
        self._events: deque[co.CoordinatorEvent] = deque()
        self._feeding = False
        self._stop = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- lifecycle -----------------------------------------------------------------------------

    async def run(self) -> int:
        """Run until SIGTERM/SIGINT; raises DaemonError on a start-up problem."""
        try:
            await self._start()
        except DaemonError:
            self._close()
            raise
        except Exception as exc:  # whatever it was, one line and exit 1, never a traceback
            self._close()
            raise DaemonError(f"start-up failed: {type(exc).__name__}: {exc}") from None
        except BaseException:
            self._close()
            raise
        await self._stop.wait()
        await self._shutdown()
        return 0

    def request_stop(self) -> None:
        self._stop.set()

    async def _start(self) -> None:
        try:
            await self.netlink.open()
        except OSError as exc:
            raise DaemonError(f"cannot open netlink: {exc.strerror}") from None
        await self._resolve_interfaces()
        await self._clear_leftover_vips()
        self._open_sockets()
        self.interfaces = {
            name: Interface(index=info.index, announcer=Announcer(name, info.mac)) for name, info in self.infos.items()
        }
        await self._prepare_announcements()
        sources = {name: self._source_address(name) for name in self.config.instances}
        for name, config in self.config.instances.items():
            self.drivers[name] = InstanceDriver(
                config,
                sock=self.sockets[(config.interface, config.family)],
                source=sources[name],
                netlink=self.netlink,
                interfaces=self.interfaces,
                on_timer=self._on_timer,
                on_send_failed=self._on_send_failed,
            )
        self._install_signals()
        self._spawn(watch_links(self._on_link, self._stop, self._resync_links))
        if self.config.checks:
            try:
                self.checks = CheckRunner(self.config.checks, check_types(self.pm), self._on_check_change)
            except Exception as exc:
                raise DaemonError(f"cannot create the checks: {type(exc).__name__}: {exc}") from None
        await self.hooks.call_and_wait("hafm_startup", {"config": self.config})
        log.info(
            "hafm %s started: %s",
            __version__,
            ", ".join(
                f"{i.name} ({i.interface}, VRID {i.virtual_router_id}, v{i.version}, prio {i.priority})"
                for i in self.config.instances.values()
            ),
        )
        links = {name: info.up for name, info in self.infos.items()}
        self._feed(co.Started(sources=sources, links=links))
        if self.checks is not None:
            try:
                self.checks.start()
            except Exception as exc:
                raise DaemonError(f"cannot start the checks: {type(exc).__name__}: {exc}") from None

    async def _shutdown(self) -> None:
        log.info("shutting down")
        if self.checks is not None:
            await self.checks.stop()
        self._feed(ev.Shutdown())
        await asyncio.gather(*(driver.drain(SHUTDOWN_GRACE) for driver in self.drivers.values()))
        await self.hooks.call_and_wait("hafm_shutdown", {"config": self.config}, timeout=HOOK_SHUTDOWN_GRACE)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._close()

    def _close(self) -> None:
        for sock in self.sockets.values():
            asyncio.get_running_loop().remove_reader(sock.fileno())
            sock.close()
        self.sockets.clear()
        for interface in self.interfaces.values():
            interface.announcer.close()
        self.netlink.close()

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.request_stop)
        loop.add_signal_handler(signal.SIGINT, self.request_stop)
        loop.add_signal_handler(
            signal.SIGHUP,
            lambda: log.warning("SIGHUP: configuration reload is not supported yet; restart hafm to apply changes"),
        )

    # -- the one way into the coordinator -------------------------------------------------------

    def _feed(self, event: co.CoordinatorEvent) -> None:
        """Hand ``event`` to the coordinator and perform its outputs.

        Performing an output can produce another event (a send fails); it is queued and
        handled after the current outputs, never re-entrantly.
        """
        self._events.append(event)
        if self._feeding:
            return
        self._feeding = True
        loop = asyncio.get_running_loop()
        try:
            while self._events:
                for output in self.coordinator.handle(self._events.popleft(), loop.time()):
                    match output:
                        case co.Perform(instance=name, action=action):
                            self.drivers[name].perform(action)
                        case co.CallHook(name=hook, kwargs=kwargs):
                            self.hooks.call(hook, kwargs)
                        case co.Log(level=level, message=message):
                            log.log(level, "%s", message)
        finally:
            self._feeding = False

    def _on_timer(self, instance: str, timer: Timer) -> None:
        self._feed(co.InstanceTimerFired(instance=instance, timer=timer))

    def _on_send_failed(self, instance: str, destination: IPAddress, exc: OSError) -> None:
        self._feed(co.SendFailed(instance=instance, destination=destination, error=exc.strerror or str(exc)))

    def _on_check_change(self, name: str, up: bool, detail: str) -> None:
        assert self.checks is not None
        delta = self.checks.states[name].delta
        self._feed(co.CheckChanged(check=name, up=up, detail=detail, delta=delta))

    def _on_readable(self, key: SocketKey) -> None:
        sock = self.sockets.get(key)
        if sock is None:
            return
        interface, family = key
        for packet in sock.receive(MAX_PACKETS_PER_WAKEUP):
            if isinstance(packet, MalformedAdvert):
                self._feed(co.PacketRejected(interface=interface, reason=packet.reason, detail=packet.detail))
            else:
                self._feed(
                    co.PacketReceived(
                        interface=interface,
                        family=family,
                        payload=packet.payload,
                        source=packet.source,
                        destination=packet.destination,
                        ttl=packet.ttl,
                    )
                )

    # -- links ---------------------------------------------------------------------------------

    def _on_link(self, name: str, index: int, up: bool) -> None:
        info = self.infos.get(name)
        if info is None:
            return
        if index and index != info.index:
            self._spawn(self._rebind(name))
            return
        self._feed(ev.LinkChanged(interface=name, up=up))

    async def _resync_links(self) -> None:
        """After the link monitor restarted: learn what changed while it was down."""
        for name, info in list(self.infos.items()):
            try:
                current = await self.netlink.interface(name)
            except NetlinkProblem:
                self._feed(ev.LinkChanged(interface=name, up=False))
                continue
            if current.index != info.index:
                await self._rebind(name)
            else:
                self._feed(ev.LinkChanged(interface=name, up=current.up))

    async def _rebind(self, name: str) -> None:
        """``name`` was deleted and created again (a new ifindex): reopen what was bound to the old one."""
        try:
            info = await self.netlink.interface(name)
        except NetlinkProblem:
            return  # gone again; a later link message brings it back
        old = self.infos[name]
        if info.index == old.index:
            return
        log.warning("%s: interface re-created (index %d -> %d); rebinding sockets", name, old.index, info.index)
        self.infos[name] = info
        interface = self.interfaces[name]
        interface.announcer.close()
        interface.index = info.index
        interface.announcer = Announcer(name, info.mac)
        for key in [k for k in self.sockets if k[0] == name]:
            self._close_socket(key)
            try:
                self._open_socket(key, info.index)
            except DaemonError as exc:
                log.error("%s", exc)
                continue
            for driver in self.drivers.values():
                if (driver.config.interface, driver.config.family) == key:
                    driver.rebind(self.sockets[key])
        try:
            await self._prepare_announcements(only=name)
        except DaemonError as exc:
            log.error("%s", exc)
        self._feed(ev.LinkChanged(interface=name, up=info.up))

    # -- start-up ------------------------------------------------------------------------------

    async def _resolve_interfaces(self) -> None:
        names: list[str] = []
        for config in self.config.instances.values():
            names += [config.interface, *config.track_interface]
            names += [v.dev for v in (*config.virtual_ipaddress, *config.virtual_ipaddress_excluded) if v.dev]
        problems = []
        for name in dict.fromkeys(names):
            try:
                self.infos[name] = await self.netlink.interface(name)
            except NetlinkProblem as exc:
                problems.append(str(exc))
        if problems:
            raise DaemonError("; ".join(problems))
        for config in self.config.instances.values():
            if config.unicast_src_ip is None and self.infos[config.interface].primary(config.family) is None:
                kind = "IPv4" if config.family == 4 else "IPv6 link-local"
                raise DaemonError(f"{config.name}: interface {config.interface} has no {kind} address to send from")

    async def _clear_leftover_vips(self) -> None:
        """Remove VIPs a killed predecessor left behind; refuse a VIP that is a real address."""
        for config in self.config.instances.values():
            for vip in (*config.virtual_ipaddress, *config.virtual_ipaddress_excluded):
                info = self.infos[vip.dev or config.interface]
                for address, proto in info.addresses:
                    if address.ip != vip.address.ip:
                        continue
                    if proto == HAFM_ADDR_PROTO:
                        log.info("%s: removing %s left on %s by an earlier hafm", config.name, address, info.name)
                        try:
                            await self.netlink.remove_leftover(vip, info.index)
                        except NetlinkProblem as exc:
                            raise DaemonError(f"{config.name}: {exc}") from None
                    elif config.priority < OWNER_PRIORITY:
                        raise DaemonError(
                            f"{config.name}: {vip.address.ip} is already configured on {info.name} and was not "
                            "added by hafm (remove it, or give this node priority 255 as its address owner)"
                        )

    def _open_sockets(self) -> None:
        for config in self.config.instances.values():
            key = (config.interface, config.family)
            if key not in self.sockets:
                self._open_socket(key, self.infos[config.interface].index)

    def _open_socket(self, key: SocketKey, index: int) -> None:
        interface, family = key
        try:
            sock = VrrpSocket(interface=interface, index=index, family=family)
        except PermissionError:
            raise DaemonError(
                "cannot open a raw VRRP socket: permission denied (run hafm as root or with CAP_NET_RAW)"
            ) from None
        except OSError as exc:
            if exc.errno == errno.EPERM:
                raise DaemonError("cannot open a raw VRRP socket: operation not permitted (needs root)") from None
            raise DaemonError(f"cannot open a raw VRRP socket on {interface}: {exc.strerror}") from None
        self.sockets[key] = sock
        asyncio.get_running_loop().add_reader(sock.fileno(), self._on_readable, key)

    def _close_socket(self, key: SocketKey) -> None:
        sock = self.sockets.pop(key)
        asyncio.get_running_loop().remove_reader(sock.fileno())
        sock.close()

    async def _prepare_announcements(self, only: str | None = None) -> None:
        """Build the gratuitous ARP / NA frames before any instance runs, so a takeover only sends."""
        announced: dict[str, tuple[Vip, ...]] = {}
        for config in self.config.instances.values():
            vips = config.virtual_ipaddress + config.virtual_ipaddress_excluded
            for dev, group in vips_by_dev(vips, config.interface).items():
                announced[dev] = announced.get(dev, ()) + group
        for dev, vips in announced.items():
            if only is not None and dev != only:
                continue
            try:
                await self.interfaces[dev].announcer.prepare(vips)
            except OSError as exc:
                raise DaemonError(f"cannot open a packet socket on {dev} for announcements: {exc.strerror}") from None

    def _source_address(self, name: str) -> IPAddress:
        config = self.config.instances[name]
        if config.unicast_src_ip is not None:
            return config.unicast_src_ip
        primary = self.infos[config.interface].primary(config.family)
        assert primary is not None  # checked in _resolve_interfaces
        return primary
