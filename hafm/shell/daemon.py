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
import ctypes
import errno
import gc
import json
import logging
import os
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

from hafm import __version__
from hafm.config.model import Config, InstanceConfig, IPAddress, Vip
from hafm.errors import ConfigError, DaemonError, HafmError, NetlinkProblem
from hafm.plugin_manager import check_types
from hafm.shell.announce import Announcer
from hafm.shell.checks import CheckRunner
from hafm.shell.control import ControlServer, read_trusted_file, write_file_atomically
from hafm.shell.dispatch import HookDispatcher
from hafm.shell.driver import InstanceDriver, Interface, vips_by_dev
from hafm.shell.inbox import Timed, events_from
from hafm.shell.leftovers import clear_leftover_vips
from hafm.shell.netlink import HAFM_ADDR_PROTO, InterfaceInfo, Netlink, watch_links
from hafm.shell.schedule import Scheduler
from hafm.shell.sockets import VrrpSocket
from hafm.shell.systemd import Systemd
from hafm.status import build_status
from hafm.vrrp import coordinator as co
from hafm.vrrp import events as ev
from hafm.vrrp.constants import OWNER_PRIORITY

if TYPE_CHECKING:
    from hafm.shell.metrics import MetricsServer
    from hafm.shell.witness import WitnessClient

__all__ = ["Daemon", "DaemonError"]

log = logging.getLogger("hafm")

SocketKey = co.SocketKey
# Packets read per data socket at a time.  Read lazily, a socket holds what arrived since the
# last read (a Backup of 200 instances at 1 s: ~550) and has room for ~10 000 (RECEIVE_BUFFER).
# More than EAGER_AFTER at once means a flood: the socket is then read as soon as it is
# readable, MAX_PACKETS_PER_WAKEUP at a time so the advert timers are not starved, until
# EAGER_SECONDS pass without a full read.
MAX_PACKETS_PER_READ = 4096
MAX_PACKETS_PER_WAKEUP = 64
EAGER_AFTER = 2048
EAGER_SECONDS = 5.0
SHUTDOWN_GRACE = 0.8  # seconds to remove VIPs at shutdown
HOOK_SHUTDOWN_GRACE = 2.0  # seconds for plugins' shutdown work
CORE_SECTIONS = frozenset({"schema", "instances", "sync_groups", "checks", "drops_unrouted", "process"})

# What a reload cannot change in a running process (sockets bound, logging set up, plugins imported).
RESTART_ONLY_GLOBALS = ("control_socket", "metrics_listen", "log_format", "log_level", "plugin_dirs")

# Loads and validates the configuration again for a reload: ConfigError (one line per problem) if bad.
Reloader = Callable[[], Config]


class Daemon:
    def __init__(self, config: Config, pm: pluggy.PluginManager, *, reload: Reloader | None = None) -> None:
        self.config = config
        self.pm = pm
        self.reloader = reload
        self.netlink = Netlink()
        self.hooks = HookDispatcher(pm)
        self.coordinator = co.Coordinator(config)
        self.infos: dict[str, InterfaceInfo] = {}
        self.interfaces: dict[str, Interface] = {}
        self.sockets: dict[SocketKey, VrrpSocket] = {}
        self.drivers: dict[str, InstanceDriver] = {}
        self.checks: CheckRunner | None = None
        self.witness: WitnessClient | None = None
        self._events: deque[tuple[co.CoordinatorEvent, float | None]] = deque()
        self._feeding = False
        self._status_due = False  # a STATUS= line is queued for the end of this loop turn
        self._last_now = 0.0  # the coordinator's clock never goes back
        self._eager: dict[SocketKey, float] = {}  # sockets read as soon as readable, until then
        self.scheduler: Scheduler | None = None
        self._stop = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._reload_lock = asyncio.Lock()
        self.control: ControlServer | None = None
        self.systemd = Systemd()
        self.metrics: MetricsServer | None = None
        self.started = 0.0
        self.maintenance_file = Path(config.global_.control_socket).parent / "maintenance.json"

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
        # First of all: a second hafm started by mistake must stop here, before it touches any VIP.
        self.control = ControlServer(
            self.config.global_.control_socket,
            {"status": self._status_command, "reload": self._reload_command, "maintenance": self._maintenance_command},
        )
        await self.control.start()
        try:
            await self.netlink.open()
        except OSError as exc:
            raise DaemonError(f"cannot open netlink: {exc.strerror}") from None
        await self._resolve_interfaces()
        for line in (await clear_leftover_vips(self.config, self.netlink, self.infos, strict=True)).removed:
            log.info("%s", line)
        self.scheduler = Scheduler(before=self._feed, fire=self._on_timers)
        self._open_sockets()
        self.interfaces = {
            name: Interface(index=info.index, announcer=Announcer(name, info.mac)) for name, info in self.infos.items()
        }
        await self._prepare_announcements()
        sources = {name: self._source_address(name, self.config) for name in self.config.instances}
        for name, config in self.config.instances.items():
            self._add_driver(config, sources[name])
        self._install_signals()
        self._spawn(watch_links(self._on_link, self._stop, self._resync_links))
        # Before any instance runs: a port in use stops start-up without moving a VIP.
        if self.config.global_.metrics_listen:
            from hafm.shell.metrics import MetricsServer  # prometheus-client costs ~4 MiB: only when asked for

            self.metrics = MetricsServer(self.config.global_.metrics_listen, self.status)
            await self.metrics.start()
        if self.config.checks:
            try:
                self.checks = CheckRunner(
                    self.config.checks, check_types(self.pm), self._on_check_change, on_probe=self._observe_probe
                )
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
        self._start_witness(sources)
        links = {name: info.up for name, info in self.infos.items()}
        self.started = asyncio.get_running_loop().time()
        self._feed(co.Started(sources=sources, links=links))
        self._restore_maintenance()
        if self.checks is not None:
            try:
                self.checks.start()
            except Exception as exc:
                raise DaemonError(f"cannot start the checks: {type(exc).__name__}: {exc}") from None
        self.systemd.ready(self._summary())
        self._spawn(self.systemd.watchdog())
        return_freed_memory()

    async def _shutdown(self) -> None:
        log.info("shutting down")
        self.systemd.stopping()
        if self.control is not None:
            await self.control.close()
        if self.checks is not None:
            await self.checks.stop()
        self._feed(ev.Shutdown())
        await asyncio.gather(*(driver.drain(SHUTDOWN_GRACE) for driver in self.drivers.values()))
        if self.witness is not None:
            await self.witness.close()
        await self.hooks.call_and_wait("hafm_shutdown", {"config": self.config}, timeout=HOOK_SHUTDOWN_GRACE)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._close()

    def _close(self) -> None:
        if self.metrics is not None:
            self.metrics.close()
            self.metrics = None
        self.systemd.close()
        if self.scheduler is not None:
            self.scheduler.close()
        for key in list(self.sockets):
            self._close_socket(key)
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
        loop.add_signal_handler(signal.SIGHUP, lambda: self._spawn(self.reload()))

    # -- the one way into the coordinator -------------------------------------------------------

    def _feed(self, *events: co.CoordinatorEvent) -> None:
        """Hand ``events`` to the coordinator, after what waits in the sockets, and perform the outputs.

        Every way into the coordinator comes here, so packets are always handled before
        anything that happened after them.  Performing an output can produce another event (a
        send fails); it is queued and handled after the current outputs, never re-entrantly.
        """
        self._events.extend((event, None) for event in events)
        if self._feeding:
            return
        self._feeding = True
        loop = asyncio.get_running_loop()
        changed = False
        try:
            for key, sock in self.sockets.items():
                self._events.extendleft(reversed(self._read(key, sock, loop.time())))
            while self._events:
                event, at = self._events.popleft()
                now = self._last_now = max(self._last_now, loop.time() if at is None else at)
                outputs = self.coordinator.handle(event, now)
                for output in outputs:
                    match output:
                        case co.Perform(instance=name, action=action):
                            self.drivers[name].perform(action)
                        case co.Log(level=level, message=message):
                            log.log(level, "%s", message)
                        case co.WitnessAcquire() | co.WitnessRelease():
                            if self.witness is not None:
                                self.witness.perform(output)
                # Plugins after the protocol: the new Master's advert and VIP changes are out before any
                # plugin code runs (hooks keep their order among themselves).
                for output in outputs:
                    if isinstance(output, co.CallHook):
                        changed = changed or output.name == "hafm_state_changed"
                        self.hooks.call(output.name, output.kwargs)
        finally:
            self._feeding = False
        if changed and self.systemd.enabled and not self._status_due:
            # One STATUS= per loop turn: 200 instances turning Backup one feed each would
            # otherwise summarise all 200 each time (40 000 reports at start-up).
            self._status_due = True
            asyncio.get_running_loop().call_soon(self._send_status)

    def _send_status(self) -> None:
        self._status_due = False
        self.systemd.status(self._summary())

    def _read(self, key: SocketKey, sock: VrrpSocket, loop_now: float) -> list[Timed]:
        """The packets waiting in ``sock``, as events at their arrival times."""
        eager_until = self._eager.get(key)
        limit = MAX_PACKETS_PER_WAKEUP if eager_until is not None else MAX_PACKETS_PER_READ
        interface, family = key
        absorbed = sock.absorbed()  # first: receive() may re-arm a VRID (events are sorted by arrival)
        packets = list(sock.receive(limit))
        found = events_from(
            packets,
            absorbed=absorbed,
            interface=interface,
            family=family,
            wall_now=time.time(),
            loop_now=loop_now,
            floor=self._last_now,
        )
        read = len(packets)
        if read >= EAGER_AFTER or (eager_until is not None and read >= MAX_PACKETS_PER_WAKEUP):
            if eager_until is None:
                log.info("%s IPv%d: %d packets waiting; reading as they arrive for now", interface, family, read)
                asyncio.get_running_loop().add_reader(sock.fileno(), self._feed)
            self._eager[key] = loop_now + EAGER_SECONDS
        elif eager_until is not None and loop_now > eager_until:
            del self._eager[key]
            asyncio.get_running_loop().remove_reader(sock.fileno())
        return found

    def _start_witness(self, sources: Mapping[str, IPAddress]) -> None:
        """The etcd client, when an instance uses the witness; this node's name is ``router_id`` or host@address."""
        witness = self.config.witness
        users = [name for name, c in self.config.instances.items() if c.uses_witness]
        if witness is None or not users:
            return
        from hafm.shell.witness import WitnessClient  # httpx only for daemons with a witness

        node = self.config.global_.router_id or f"{socket.gethostname()}@{sources[users[0]]}"
        try:
            self.witness = WitnessClient(witness, node, self._feed)
        except (OSError, ValueError) as exc:  # TLS files unreadable or not PEM
            raise DaemonError(f"{self.config.path}: witness: cannot set up the etcd client: {exc}") from None
        log.info("witness: etcd %s as node %s (ttl %d s)", ", ".join(witness.endpoints), node, witness.ttl)

    def _on_timers(self, due: list[Any]) -> None:
        self._feed(*(co.InstanceTimerFired(instance=name, timer=timer) for name, timer in due))

    def _on_send_failed(self, instance: str, destination: IPAddress, exc: OSError) -> None:
        self._feed(co.SendFailed(instance=instance, destination=destination, error=exc.strerror or str(exc)))

    def _on_check_change(self, name: str, up: bool, detail: str) -> None:
        assert self.checks is not None
        delta = self.checks.states[name].delta
        self._feed(co.CheckChanged(check=name, up=up, detail=detail, delta=delta))

    def _on_doorbell(self, key: SocketKey) -> None:
        sock = self.sockets.get(key)
        if sock is None:
            return
        rang = sock.ring(MAX_PACKETS_PER_WAKEUP)
        self._feed()
        if rang > sock.last_arrival:  # not in the data socket yet (should not happen): look again
            asyncio.get_running_loop().call_soon(self._feed)

    # -- control: status, reload, maintenance --------------------------------------------------

    def status(self) -> dict[str, Any]:
        """The status document (docs/status.md) as it stands now."""
        self._feed()  # the counters include what waits in the sockets
        checks: dict[str, tuple[str, bool, str]] = {}
        if self.checks is not None:
            for name, state in self.checks.states.items():
                checks[name] = (self.config.checks[name].type, state.up, state.detail)
        extra: dict[str, Any] = {"process": _process_usage()}
        for section in self.pm.hook.hafm_status():
            if not isinstance(section, Mapping):
                continue
            for name, value in section.items():
                if name in CORE_SECTIONS:
                    continue
                try:
                    json.dumps(value)
                except (TypeError, ValueError, RecursionError) as exc:
                    log.warning("status: plugin section %r left out: not JSON (%s)", name, exc)
                    continue
                extra[name] = value
        return build_status(
            self.coordinator,
            now=asyncio.get_running_loop().time(),
            wall_now=time.time(),
            started=self.started,
            version=__version__,
            pid=os.getpid(),
            config_path=str(self.config.path),
            checks=checks,
            extra=extra,
        )

    async def _status_command(self, request: Mapping[str, Any]) -> dict[str, Any]:
        status = self.status()
        wanted = request.get("instance")
        if wanted is not None:
            status["instances"] = [i for i in status["instances"] if i["name"] == wanted]
            if not status["instances"]:
                return {"ok": False, "error": f"no instance {wanted!r} (known: {', '.join(self.coordinator.members)})"}
        return {"ok": True, "status": status}

    async def _reload_command(self, request: Mapping[str, Any]) -> dict[str, Any]:
        return await self.reload()

    async def _maintenance_command(self, request: Mapping[str, Any]) -> dict[str, Any]:
        instance, on, reason = request.get("instance"), request.get("on"), request.get("reason") or ""
        if not isinstance(on, bool) or not isinstance(reason, str) or not isinstance(instance, str | None):
            return {"ok": False, "error": 'maintenance needs "on": true|false, optional "instance" and "reason"'}
        if instance is not None and instance not in self.coordinator.members:
            return {"ok": False, "error": f"no instance {instance!r} (known: {', '.join(self.coordinator.members)})"}
        self._feed(co.MaintenanceChanged(instance=instance, on=on, reason=reason))
        names = [instance] if instance else list(self.coordinator.members)
        state = {n: self.coordinator.members[n].maintenance for n in names}
        problem = self._save_maintenance()
        if problem is not None:
            return {"ok": False, "error": f"applied, but lost at the next restart: {problem}", "maintenance": state}
        return {"ok": True, "maintenance": state}

    def _restore_maintenance(self) -> None:
        """Maintenance survives restarts: the drained instances are read back from the state file.

        Only a regular file owned by root (or hafm's user) and writable by nobody else is obeyed:
        anyone who could write it could drain this node.
        """
        try:
            text = read_trusted_file(self.maintenance_file)
        except FileNotFoundError:
            return
        except OSError as exc:
            log.warning("%s: ignored (%s)", self.maintenance_file, exc.strerror or exc)
            return
        try:
            saved = json.loads(text)
        except (ValueError, RecursionError) as exc:
            log.warning("%s: ignored (not JSON: %s)", self.maintenance_file, type(exc).__name__)
            return
        if not isinstance(saved, dict):
            return
        for name, reason in saved.items():
            if name in self.coordinator.members and isinstance(reason, str):
                self._feed(co.MaintenanceChanged(instance=name, on=True, reason=reason))

    def _save_maintenance(self) -> str | None:
        """Write the drained instances; the reason it could not, or None."""
        drained = {n: m.maintenance for n, m in self.coordinator.members.items() if m.maintenance is not None}
        try:
            if drained:
                write_file_atomically(self.maintenance_file, json.dumps(drained))
            else:
                self.maintenance_file.unlink(missing_ok=True)
        except OSError as exc:
            problem = f"{self.maintenance_file}: cannot save the maintenance state: {exc.strerror or exc}"
            log.error("%s", problem)
            return problem
        return None

    async def reload(self) -> dict[str, Any]:
        """SIGHUP or ``hafm reload``: validate, then apply the difference; a bad config changes nothing."""
        async with self._reload_lock:
            if self.reloader is None:
                return {"ok": False, "error": "this daemon cannot reload"}
            log.info("reloading %s", self.config.path)
            self.systemd.reloading()
            try:
                new = self.reloader()
                await self._apply(new)
            except ConfigError as exc:
                for message in exc.messages:
                    log.error("%s", message)
                log.error("reload refused: the running configuration is unchanged")
                self.systemd.ready(self._summary())
                return {"ok": False, "error": "configuration refused, nothing changed", "errors": exc.messages}
            except HafmError as exc:
                log.error("reload refused: %s; the running configuration is unchanged", exc)
                self.systemd.ready(self._summary())
                return {"ok": False, "error": str(exc), "errors": [str(exc)]}
            except Exception as exc:  # hafm's bug: say so in one line, keep running
                log.error("reload failed: %s: %s", type(exc).__name__, exc)
                self.systemd.ready(self._summary())
                return {"ok": False, "error": f"internal error: {type(exc).__name__}: {exc}"}
            summary = self._summary()
            log.info("reload done: %s", summary)
            self.systemd.ready(summary)
            return {"ok": True, "summary": summary}

    def _observe_probe(self, check: str, seconds: float, ok: bool) -> None:
        if self.metrics is not None:
            self.metrics.observe_probe(check, seconds, ok)

    def _summary(self) -> str:
        """One line for logs and systemd's STATUS=: ``VI_1 MASTER, VI_2 BACKUP``."""
        return ", ".join(f"{i.name} {i.state.value}" for i in self._reports())

    def _reports(self) -> list[co.InstanceReport]:
        return [self.coordinator.report(name) for name in self.coordinator.members]

    async def _apply(self, new: Config) -> None:
        """Bring the running daemon to ``new``.  Everything that can fail is done before anything changes."""
        old = self.config
        if _witness_setup(old) != _witness_setup(new):
            raise DaemonError("[witness] changed, or the witness gets its first instance: restart hafm to apply it")
        for key in RESTART_ONLY_GLOBALS:
            if getattr(old.global_, key) != getattr(new.global_, key):
                log.warning(
                    "reload: [global] %s changed; restart hafm to apply it (kept: %r)", key, getattr(old.global_, key)
                )
        restarts = self.coordinator.restarts_needed(new)
        starting = [n for n in new.instances if n not in self.coordinator.members or n in restarts]
        await self._prepare_for(new, starting)
        if restarts:
            self._feed(co.RemoveInstances(names=restarts))
            await asyncio.gather(*(self.drivers.pop(n).drain(SHUTDOWN_GRACE) for n in restarts))
        sources = {name: self._source_address(name, new) for name in starting}
        for name in starting:
            self._add_driver(new.instances[name], sources[name])
        for name, driver in self.drivers.items():
            driver.config = new.instances[name]
        self.config = new
        # Plugins first (the notify runner), so the first transition of a new instance runs its scripts.
        await self.hooks.call_and_wait("hafm_startup", {"config": new}, timeout=HOOK_SHUTDOWN_GRACE)
        links = {name: info.up for name, info in self.infos.items()}
        self._feed(co.Reconfigured(config=new, sources=sources, links=links))
        self._restore_maintenance()
        self._close_unused_sockets()
        await self._restart_checks(old, new)

    async def _prepare_for(self, new: Config, starting: list[str]) -> None:
        """Interfaces, sockets and announcement frames the new configuration needs (DaemonError: nothing changed)."""
        old_vips = {v.address.ip for c in self.config.instances.values() for v in c.all_vips}
        for name, config in new.instances.items():
            for interface in (config.interface, *config.track_interface, *(v.dev for v in config.all_vips if v.dev)):
                if interface not in self.infos:
                    try:
                        self.infos[interface] = await self.netlink.interface(interface)
                    except NetlinkProblem as exc:
                        raise DaemonError(f"{name}: {exc}") from None
                if interface not in self.interfaces:
                    info = self.infos[interface]
                    self.interfaces[interface] = Interface(index=info.index, announcer=Announcer(interface, info.mac))
            if name not in starting:
                continue
            if config.unicast_src_ip is None and self.infos[config.interface].primary(config.family) is None:
                raise DaemonError(f"{name}: interface {config.interface} has no address to send from")
            key = (config.interface, config.family)
            if key not in self.sockets:
                self._open_socket(key, self.infos[config.interface].index)
        for config in new.instances.values():
            for vip in config.all_vips:
                if vip.address.ip in old_vips:
                    continue
                device = self.infos.get(vip.dev or config.interface)
                untagged = device is not None and any(
                    a.ip == vip.address.ip and proto != HAFM_ADDR_PROTO for a, proto in device.addresses
                )
                if untagged and config.priority < OWNER_PRIORITY:
                    raise DaemonError(
                        f"{config.name}: {vip.address.ip} is already configured and was not added by hafm"
                    )
        await self._prepare_announcements(config=new)

    def _close_unused_sockets(self) -> None:
        used = {(c.interface, c.family) for c in self.config.instances.values()}
        for key in [k for k in self.sockets if k not in used]:
            self._close_socket(key)

    async def _restart_checks(self, old: Config, new: Config) -> None:
        """Unchanged checks keep their state (a reload must not move the VIP); others start afresh."""
        previous = self.checks
        if previous is not None:
            await previous.stop()
        self.checks = None
        if not new.checks:
            return
        self.checks = CheckRunner(new.checks, check_types(self.pm), self._on_check_change, on_probe=self._observe_probe)
        if previous is not None:
            for name, state in previous.states.items():
                check = new.checks.get(name)
                if check is not None and co.same_probe(old.checks.get(name), check):
                    # Same probe, maybe new timing or hysteresis: the state carries over, with the new fall/rise.
                    state.fall, state.rise = check.fall, check.rise
                    self.checks.states[name] = state
        self.checks.start()

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
        asyncio.get_running_loop().add_reader(sock.doorbell.fileno(), self._on_doorbell, key)

    def _close_socket(self, key: SocketKey) -> None:
        sock = self.sockets.pop(key)
        loop = asyncio.get_running_loop()
        loop.remove_reader(sock.doorbell.fileno())
        if self._eager.pop(key, None) is not None:
            loop.remove_reader(sock.fileno())
        sock.close()

    async def _prepare_announcements(self, only: str | None = None, config: Config | None = None) -> None:
        """Build the gratuitous ARP / NA frames before any instance runs, so a takeover only sends."""
        announced: dict[str, tuple[Vip, ...]] = {}
        for instance in (config or self.config).instances.values():
            for dev, group in vips_by_dev(instance.all_vips, instance.interface).items():
                announced[dev] = announced.get(dev, ()) + group
        for dev, vips in announced.items():
            if only is not None and dev != only:
                continue
            try:
                await self.interfaces[dev].announcer.prepare(vips)
            except OSError as exc:
                raise DaemonError(f"cannot open a packet socket on {dev} for announcements: {exc.strerror}") from None

    def _add_driver(self, config: InstanceConfig, source: IPAddress) -> None:
        assert self.scheduler is not None  # made in _start, before any driver
        self.drivers[config.name] = InstanceDriver(
            config,
            sock=self.sockets[(config.interface, config.family)],
            source=source,
            netlink=self.netlink,
            interfaces=self.interfaces,
            scheduler=self.scheduler,
            on_send_failed=self._on_send_failed,
        )

    def _source_address(self, name: str, config_set: Config) -> IPAddress:
        config = config_set.instances[name]
        if config.unicast_src_ip is not None:
            return config.unicast_src_ip
        primary = self.infos[config.interface].primary(config.family)
        assert primary is not None  # checked in _resolve_interfaces
        return primary


def _witness_setup(config: Config) -> tuple[Any, ...]:
    """What the witness client was built from: a reload that changes it needs a restart.  (An instance
    whose ``witness`` or ``mode`` changes is restarted by the reload, like any identity change.)"""
    return config.witness, any(c.uses_witness for c in config.instances.values())


def return_freed_memory() -> None:
    """Hand back to the kernel the heap that start-up freed (imports, parsing): glibc keeps it otherwise.

    About 1.2 MiB of a lone daemon's RSS (bench/scale.py); a no-op where the C library has no ``malloc_trim``.
    """
    gc.collect()
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return
    trim(0)


def _process_usage() -> dict[str, int]:
    """What a leak would grow: resident memory, open descriptors, asyncio tasks, threads."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        fds = len(os.listdir("/proc/self/fd"))
    except OSError:
        pages, fds = 0, 0
    return {
        "rss_bytes": pages * os.sysconf("SC_PAGE_SIZE"),
        "open_fds": fds,
        "tasks": len(asyncio.all_tasks()),
        "threads": threading.active_count(),
    }
