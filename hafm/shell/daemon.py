"""The hafm daemon: every configured instance in one asyncio process.

Wires the sans-IO instances (:mod:`hafm.vrrp.instance`) to raw sockets, netlink
and the plugin hooks.  Start-up problems become one-line :class:`DaemonError`
messages; nothing here decides protocol behaviour.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
from collections import Counter
from collections.abc import Coroutine, Iterable
from typing import Any

import pluggy

from hafm import __version__
from hafm.config.model import Config, InstanceConfig, IPAddress, Vip
from hafm.errors import DropReason, HafmError, MalformedAdvert
from hafm.plugin_manager import call_safely, check_types
from hafm.shell.announce import Announcer
from hafm.shell.checks import CheckRunner
from hafm.shell.driver import InstanceDriver, Interface, vips_by_dev
from hafm.shell.netlink import HAFM_ADDR_PROTO, InterfaceInfo, Netlink, NetlinkProblem, watch_links
from hafm.shell.sockets import Received, VrrpSocket
from hafm.vrrp import actions as act
from hafm.vrrp import events as ev
from hafm.vrrp.codec import decode
from hafm.vrrp.constants import MAX_PRIORITY, MIN_PRIORITY, OWNER_PRIORITY
from hafm.vrrp.instance import VrrpInstance
from hafm.vrrp.state import State
from hafm.vrrp.tracking import PriorityVerdict, Tracked, effective_priority

log = logging.getLogger("hafm")

# (instance, reason, peer) combinations already logged; past this many the memory starts again.
MAX_REMEMBERED_DROPS = 4096

SocketKey = tuple[str, int]  # (interface, address family 4|6)


class DaemonError(HafmError):
    """A start-up problem: one line, exit code 1."""


class Daemon:
    def __init__(self, config: Config, pm: pluggy.PluginManager) -> None:
        self.config = config
        self.pm = pm
        self.netlink = Netlink()
        self.infos: dict[str, InterfaceInfo] = {}
        self.interfaces: dict[str, Interface] = {}
        self.sockets: dict[SocketKey, VrrpSocket] = {}
        self.drivers: dict[str, InstanceDriver] = {}
        self.by_vrid: dict[SocketKey, dict[int, InstanceDriver]] = {}
        self.link_up: dict[str, bool] = {}
        self.drops: Counter[tuple[str | None, DropReason]] = Counter()
        self.split_brains: Counter[str] = Counter()
        self.checks: CheckRunner | None = None
        self._check_fault: dict[str, str] = {}  # instance -> the fault cause it was given
        self._sync_causes: dict[str, set[str]] = {}  # instance -> fault causes its sync group gave it
        self._following: set[str] = set()  # sync groups whose members are being moved to BACKUP
        self.group_states: dict[str, str] = {name: "INIT" for name in config.sync_groups}
        self._group_of = {member: group for group in config.sync_groups.values() for member in group.group}
        self._logged_drops: set[tuple[str | None, DropReason, str]] = set()
        self._stop = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- lifecycle -------------------------------------------------------------

    async def run(self) -> int:
        """Run until SIGTERM/SIGINT; raises DaemonError on a start-up problem."""
        try:
            await self._start()
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
        self.interfaces = interfaces = {
            name: Interface(index=info.index, announcer=Announcer(name, info.mac)) for name, info in self.infos.items()
        }
        for config in self.config.instances.values():
            self._add_driver(config, interfaces)
        # Announcement frames and sockets are made before any instance runs, so a takeover
        # only sends; see hafm.shell.announce for why the frames are built in a child process.
        announced: dict[str, tuple[Vip, ...]] = {}
        for driver in self.drivers.values():
            for dev, vips in vips_by_dev(driver.instance.vips, driver.instance.config.interface).items():
                announced[dev] = announced.get(dev, ()) + vips
        for dev, vips in announced.items():
            await interfaces[dev].announcer.prepare(vips)
        self._install_signals()
        self._spawn(watch_links(self._on_link, self._stop))
        self._start_checks()
        await call_safely(self.pm, "hafm_startup", config=self.config)
        log.info(
            "hafm %s started: %s",
            __version__,
            ", ".join(
                f"{i.name} ({i.interface}, VRID {i.virtual_router_id}, v{i.version}, prio {i.priority})"
                for i in self.config.instances.values()
            ),
        )
        for driver in self.drivers.values():
            config = driver.instance.config
            for name in (config.interface, *config.track_interface):
                if not self.link_up.get(name, True):
                    driver.feed(ev.LinkChanged(interface=name, up=False))
            driver.start(self._source_address(config))
        self._sync_groups_update()

    async def _shutdown(self) -> None:
        log.info("shutting down")
        if self.checks is not None:
            await self.checks.stop()
        await asyncio.gather(*(driver.stop() for driver in self.drivers.values()))
        await call_safely(self.pm, "hafm_shutdown", config=self.config)
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

    # -- start-up checks ---------------------------------------------------------

    async def _resolve_interfaces(self) -> None:
        names: list[str] = []
        for config in self.config.instances.values():
            names += [config.interface, *config.track_interface]
            names += [v.dev for v in (*config.virtual_ipaddress, *config.virtual_ipaddress_excluded) if v.dev]
        problems = []
        for name in dict.fromkeys(names):
            try:
                info = await self.netlink.interface(name)
            except NetlinkProblem as exc:
                problems.append(str(exc))
                continue
            self.infos[name] = info
            self.link_up[name] = info.up
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
                        await self.netlink.remove_vip(vip, info.index)
                    elif config.priority < OWNER_PRIORITY:
                        raise DaemonError(
                            f"{config.name}: {vip.address.ip} is already configured on {info.name} and was not "
                            "added by hafm (remove it, or give this node priority 255 as its address owner)"
                        )

    def _open_sockets(self) -> None:
        loop = asyncio.get_running_loop()
        for config in self.config.instances.values():
            key = (config.interface, config.family)
            if key in self.sockets:
                continue
            try:
                index = self.infos[config.interface].index
                sock = VrrpSocket(interface=config.interface, index=index, family=config.family)
            except PermissionError:
                raise DaemonError(
                    "cannot open a raw VRRP socket: permission denied (run hafm as root or with CAP_NET_RAW)"
                ) from None
            except OSError as exc:
                if exc.errno == errno.EPERM:
                    raise DaemonError("cannot open a raw VRRP socket: operation not permitted (needs root)") from None
                raise DaemonError(f"cannot open a raw VRRP socket on {config.interface}: {exc.strerror}") from None
            self.sockets[key] = sock
            loop.add_reader(sock.fileno(), self._on_readable, key)

    def _add_driver(self, config: InstanceConfig, interfaces: dict[str, Interface]) -> None:
        key = (config.interface, config.family)
        driver = InstanceDriver(
            VrrpInstance(config),
            sock=self.sockets[key],
            netlink=self.netlink,
            interfaces=interfaces,
            on_state=self._on_state,
            on_drop=self._on_instance_drop,
            on_split_brain=self._on_split_brain,
        )
        self.drivers[config.name] = driver
        self.by_vrid.setdefault(key, {})[config.virtual_router_id] = driver

    def _source_address(self, config: InstanceConfig) -> IPAddress:
        if config.unicast_src_ip is not None:
            return config.unicast_src_ip
        primary = self.infos[config.interface].primary(config.family)
        assert primary is not None  # checked in _resolve_interfaces
        return primary

    # -- packets ---------------------------------------------------------------

    def _on_readable(self, key: SocketKey) -> None:
        for packet in self.sockets[key].receive_all():
            if isinstance(packet, MalformedAdvert):
                self._count_drop(None, packet.reason, "?", packet.detail)
            else:
                self._route(key, packet)

    def _route(self, key: SocketKey, packet: Received) -> None:
        vrid = packet.payload[1] if len(packet.payload) > 1 else 0
        driver = self.by_vrid.get(key, {}).get(vrid)
        checksum_as_v2 = driver.instance.config.v3_checksum_as_v2 if driver else False
        try:
            advert = decode(
                packet.payload,
                source=packet.source,
                destination=packet.destination,
                ttl=packet.ttl,
                checksum_as_v2=checksum_as_v2,
            )
        except MalformedAdvert as exc:
            self._count_drop(driver.name if driver else None, exc.reason, str(packet.source), exc.detail)
            return
        if driver is None:
            self._count_drop(None, DropReason.UNKNOWN_VRID, str(packet.source), f"VRID {vrid} on {key[0]}")
            return
        driver.feed(ev.AdvertReceived(advert=advert, source=packet.source))

    def _count_drop(self, instance: str | None, reason: DropReason, peer: str, detail: str) -> None:
        self.drops[(instance, reason)] += 1
        seen = (instance, reason, peer)
        if seen in self._logged_drops:
            return  # a noisy or forging peer gets one log line and one hook call, not one per packet
        if len(self._logged_drops) >= MAX_REMEMBERED_DROPS:
            self._logged_drops.clear()  # forged source addresses must not grow memory without bound
        self._logged_drops.add(seen)
        # Other VRIDs on a shared segment are normal: only worth a debug line.
        level = logging.DEBUG if reason in (DropReason.UNKNOWN_VRID, DropReason.OWN_ADVERT) else logging.WARNING
        log.log(level, "%s: dropped advert from %s: %s (%s)", instance or "*", peer, reason.value, detail)
        self._spawn(call_safely(self.pm, "hafm_packet_dropped", instance=instance, reason=reason, peer=peer))

    # -- callbacks from drivers ------------------------------------------------

    def _on_state(self, name: str, change: act.StateChanged) -> None:
        log.info("%s: %s -> %s (%s)", name, change.old.value, change.new.value, change.reason)
        self._spawn(
            call_safely(
                self.pm,
                "hafm_state_changed",
                instance=name,
                old_state=change.old.value,
                new_state=change.new.value,
                reason=change.reason,
                priority=change.priority,
            )
        )
        # After the member's own hook, so notify scripts see the member before its group.
        group = self._group_of.get(name)
        if group is not None:
            self._follow_sync_group(group.name, name, change)

    def _on_instance_drop(self, name: str, drop: act.DropAdvert) -> None:
        self._count_drop(name, drop.reason, str(drop.source), drop.detail)

    def _on_split_brain(self, name: str, event: act.SplitBrain) -> None:
        self.split_brains[name] += 1
        log.warning("%s: split brain: another master %s prio %d", name, event.peer, event.peer_priority)
        peer, priority = str(event.peer), event.peer_priority
        self._spawn(call_safely(self.pm, "hafm_split_brain", instance=name, peer=peer, peer_priority=priority))

    def _on_link(self, name: str, up: bool) -> None:
        if name not in self.link_up or self.link_up[name] == up:
            return
        self.link_up[name] = up
        log.info("%s: link %s", name, "up" if up else "down")
        for driver in self.drivers.values():
            config = driver.instance.config
            if name == config.interface or name in config.track_interface:
                driver.feed(ev.LinkChanged(interface=name, up=up))
        self._sync_groups_update()

    # -- tracked checks ------------------------------------------------------------

    def _start_checks(self) -> None:
        if not self.config.checks:
            return
        self.checks = CheckRunner(self.config.checks, check_types(self.pm), self._on_check_change)
        self._apply_tracking(self.drivers)
        self.checks.start()

    def _on_check_change(self, name: str, up: bool, detail: str) -> None:
        log.info("check %s: %s (%s)", name, "up" if up else "down", detail)
        self._spawn(call_safely(self.pm, "hafm_check_changed", check_name=name, up=up, detail=detail))
        self._apply_tracking(
            {n for n, d in self.drivers.items() if any(t.name == name for t in d.instance.config.track_check)}
        )

    def _tracked(self, config: InstanceConfig) -> list[Tracked]:
        """The instance's tracked checks as they stand, each with its effective weight."""
        assert self.checks is not None
        return [
            self.checks.tracked(t.name, t.weight if t.weight is not None else self.config.checks[t.name].weight)
            for t in config.track_check
        ]

    def _apply_tracking(self, names: Iterable[str]) -> None:
        """Feed new priorities and check faults to the instances ``names`` and their sync groups.

        Members of a sync group share the largest priority penalty of any member, so a group
        moves as one by the RFC's own rules (keepalived refuses weights in sync groups unless
        ``sync_group_tracking_weight`` is set, and then lets members drift apart).
        """
        groups = {self._group_of[n].name for n in names if n in self._group_of}
        names = set(names) | {m for g in groups for m in self.config.sync_groups[g].group if m in self.drivers}
        tracked = {n: self._tracked(d.instance.config) for n, d in self.drivers.items()}
        verdicts = {n: effective_priority(self.drivers[n].instance.config.priority, t) for n, t in tracked.items() if t}
        for name in sorted(names):
            driver = self.drivers[name]
            base = driver.instance.config.priority
            group = self._group_of.get(name)
            shifts = []  # (priority shift, not our own, why) per member that tracks checks
            for peer in group.group if group else (name,):
                verdict = verdicts.get(peer)
                peer_base = self.drivers[peer].instance.config.priority if peer in self.drivers else OWNER_PRIORITY
                if verdict is None or peer_base == OWNER_PRIORITY:
                    continue  # the address owner is not changed by tracking
                why = verdict.explanation
                if group is not None and peer != name:
                    why = f"sync group {group.name}: {peer}: {why}"
                shifts.append((verdict.priority - peer_base, peer != name, why))
            shift, _, explanation = min(shifts, default=(0, False, f"base {base}"))
            self._set_priority(driver, max(MIN_PRIORITY, min(base + shift, MAX_PRIORITY)), explanation)
            self._set_check_fault(driver, tracked[name], verdicts.get(name))
        self._sync_groups_update()

    def _set_priority(self, driver: InstanceDriver, priority: int, explanation: str) -> None:
        old = driver.instance.priority
        if priority == old or driver.instance.config.priority == OWNER_PRIORITY:
            return
        log.info("%s: priority %d -> %d (%s)", driver.name, old, priority, explanation)
        driver.feed(ev.PriorityChanged(priority=priority, explanation=explanation))
        self._spawn(
            call_safely(
                self.pm, "hafm_priority_changed", instance=driver.name, old=old, new=priority, explanation=explanation
            )
        )

    def _set_check_fault(self, driver: InstanceDriver, tracked: list[Tracked], verdict: PriorityVerdict | None) -> None:
        cause = self._check_fault.get(driver.name)
        faulty = verdict is not None and verdict.fault
        if verdict is not None and faulty and cause is None:
            down = [t.name for t in tracked if t.weight == 0 and not t.up]
            cause = f"check {', '.join(down)} down" if down else f"tracked check fault ({verdict.explanation})"
            self._check_fault[driver.name] = cause
            driver.feed(ev.FaultChanged(cause=cause, active=True))
        elif not faulty and cause is not None:
            del self._check_fault[driver.name]
            driver.feed(ev.FaultChanged(cause=cause, active=False))

    # -- sync groups -----------------------------------------------------------------

    def _follow_sync_group(self, group: str, member: str, change: act.StateChanged) -> None:
        """Members move together: BACKUP is followed at once, the rest through :meth:`_sync_groups_update`."""
        members = self.config.sync_groups[group].group
        # A member that steps down because the group told it to must not tell the group again.
        if change.old is State.MASTER and change.new is State.BACKUP and group not in self._following:
            self._following.add(group)
            try:
                for other in members:
                    if other != member and other in self.drivers:
                        self.drivers[other].feed(ev.SyncGroupBackup(group=group, member=member))
            finally:
                self._following.discard(group)
        self._sync_groups_update()
        states = [self.drivers[m].instance.state.value for m in members if m in self.drivers]
        new = _group_state(states)
        old = self.group_states[group]
        if new != old:
            self.group_states[group] = new
            reason = f"{member} {change.old.value} -> {change.new.value} ({change.reason})"
            log.info("%s: group %s -> %s (%s)", group, old, new, reason)
            self._spawn(
                call_safely(
                    self.pm, "hafm_sync_group_state_changed", group=group, old_state=old, new_state=new, reason=reason
                )
            )

    def _sync_groups_update(self) -> None:
        """Give every member of a group a fault cause for each *other* member with a fault of its own."""
        for group in self.config.sync_groups.values():
            members = {m: self.drivers[m].instance for m in group.group if m in self.drivers}
            for member in members:
                # Recomputed per member: feeding one member below can move the others.
                faulty = {
                    m
                    for m, instance in members.items()
                    if set(instance.status().fault_causes) - self._sync_causes.get(m, set())
                }
                wanted = {f"sync group {group.name}: {other} in FAULT" for other in faulty - {member}}
                applied = self._sync_causes.setdefault(member, set())
                for cause in sorted(wanted - applied):
                    applied.add(cause)
                    self.drivers[member].feed(ev.FaultChanged(cause=cause, active=True))
                for cause in sorted(applied - wanted):
                    applied.discard(cause)
                    self.drivers[member].feed(ev.FaultChanged(cause=cause, active=False))


def _group_state(states: list[str]) -> str:
    """A group is FAULT if any member is, MASTER when all are, otherwise BACKUP (keepalived's view)."""
    for state in ("FAULT", "INIT"):
        if state in states:
            return state
    if all(s == "STOP" for s in states):
        return "STOP"
    return "MASTER" if all(s == "MASTER" for s in states) else "BACKUP"
