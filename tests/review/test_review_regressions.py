"""Regressions from the attacker/operator review: each test reproduced one defect before its fix.

Unprivileged users are played by uid/gid 65534 (nobody): files they "write" are chowned to it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib.util
import json
import marshal
import os
import struct
from pathlib import Path
from typing import Any

import pytest

from hafm.config.model import Config, GlobalConfig
from hafm.errors import DaemonError, HafmError, PluginError
from hafm.hooks import hookimpl
from hafm.lab.network import Lab, netns_unavailable_reason, wait_until
from hafm.lab.nodes import (
    HAFM,
    VIP4,
    HafmNode,
    check_toml,
    instance_toml,
    start_classic_pair,
    start_nodes,
    vip_holders_become,
)
from hafm.plugin_manager import HafmPluginManager, check_types, make_plugin_manager
from hafm.processes import command_problem, split_command
from hafm.shell.control import MAX_CLIENTS, ControlServer, request
from hafm.shell.daemon import Daemon
from hafm.shell.dispatch import MAX_PENDING, HookDispatcher
from hafm.vrrp import coordinator as co
from hafm.vrrp.state import State
from tests.helpers import instance_config
from tests.test_coordinator import check, group_config, pair

NOBODY = 65534


def sticky_dir(parent: Path) -> Path:
    """A directory like /tmp: owned by root, world-writable, sticky (the trust rule accepts it)."""
    shared = parent / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    return shared


def as_nobody(path: Path) -> Path:
    os.lchown(path, NOBODY, NOBODY)
    return path


# -- trust rule: code root runs ------------------------------------------------------------------


def plant_bytecode(plugin: Path, code: str) -> None:
    """A __pycache__ .pyc of ``code`` owned by uid 65534, stamped to match ``plugin``'s source."""
    st = plugin.stat()
    pyc = Path(importlib.util.cache_from_source(str(plugin)))
    pyc.parent.mkdir(exist_ok=True)
    as_nobody(pyc.parent)
    header = importlib.util.MAGIC_NUMBER + b"\0\0\0\0" + struct.pack("<II", int(st.st_mtime), st.st_size)
    pyc.write_bytes(header + marshal.dumps(compile(code, str(plugin), "exec")))
    as_nobody(pyc)


def test_plugin_directory_others_can_write_is_refused_even_sticky(tmp_path: Path) -> None:
    """In a sticky directory anyone may plant a __pycache__ (or any file) next to root's drop-in."""
    shared = sticky_dir(tmp_path)
    (shared / "site.py").write_text("PWNED = False\n")
    with pytest.raises(PluginError, match="plugin directory refused: .* writable by group/others"):
        make_plugin_manager([shared], load_entry_points=False)


def test_plugin_dropin_never_runs_planted_bytecode(tmp_path: Path) -> None:
    """A drop-in is compiled from the source that passed the trust rule, never from __pycache__."""
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    plugin = plugins / "site.py"
    plugin.write_text("PWNED = False\n")  # root's own plugin, 0644
    plant_bytecode(plugin, "PWNED = True\n")
    pm = make_plugin_manager([plugins], load_entry_points=False)
    module = pm.get_plugin(str(plugin))
    assert module is not None
    assert module.PWNED is False, "root executed bytecode written by uid 65534"


@pytest.fixture
def evil(tmp_path: Path) -> Path:
    shared = sticky_dir(tmp_path)
    script = shared / "evil.sh"
    script.write_text("#!/bin/sh\nid > /tmp/owned\n")
    script.chmod(0o755)
    as_nobody(script)
    return script


@pytest.mark.parametrize(
    "template",
    [
        "sh -c '. {file}'",
        "sh -c 'exec {file}'",
        "sh -c 'sh < {file}'",
        "sh -c 'cd {dir} && ./evil.sh'",
        "env PATH={dir} evil.sh",
        "env -C {dir} ./evil.sh",
        "env BASH_ENV={file} bash -c true",
        "bash --init-file={file}",
    ],
)
def test_notify_command_running_another_users_file_is_refused(evil: Path, template: str) -> None:
    command = template.format(file=evil, dir=evil.parent)
    assert command_problem(split_command(command)) is not None, f"{command!r} runs {evil} (uid 65534) as root"


# -- hook dispatch --------------------------------------------------------------------------------


class _Blocked:
    def __init__(self) -> None:
        self.gate = asyncio.Event()

    @hookimpl
    async def hafm_state_changed(
        self, instance: str, old_state: str, new_state: str, reason: str, priority: int
    ) -> Any:
        await self.gate.wait()


def test_dispatcher_overflow_makes_every_later_wait_hang() -> None:
    """After one drop (a slow async plugin), Queue.join() never returns: drop forgets task_done(), so the
    reload's call_and_wait('hafm_startup') (no timeout) hangs forever holding the reload lock."""
    from hafm import hookspecs

    async def scenario() -> None:
        pm = HafmPluginManager()
        pm.add_hookspecs(hookspecs)
        plugin = _Blocked()
        pm.register(plugin, "slow")
        dispatcher = HookDispatcher(pm)
        kwargs = {"instance": "VI_1", "old_state": "BACKUP", "new_state": "MASTER", "reason": "r", "priority": 100}
        for _ in range(MAX_PENDING + 2):
            dispatcher.call("hafm_state_changed", kwargs)
        assert dispatcher.dropped >= 1
        plugin.gate.set()  # the plugin catches up
        await asyncio.wait_for(dispatcher.call_and_wait("hafm_shutdown", {"config": None}), 3)

    asyncio.run(scenario())


# -- reload: sync groups ----------------------------------------------------------------------------


def test_reload_removing_a_sync_group_clears_the_fault_it_gave() -> None:
    """VI_2 is in FAULT only because its group G1 partner VI_1 is; a reload that drops G1 leaves VI_2 in
    FAULT forever (_sync_groups_update only visits groups of the new config)."""
    segment = pair(group_config(100, check_weight=0), group_config(90))
    check(segment, "a", up=False)
    assert segment.state("a", "VI_2") is State.FAULT
    ungrouped = dataclasses.replace(group_config(100, check_weight=0), sync_groups={})
    segment.feed("a", co.Reconfigured(config=ungrouped, sources={}, links={}))
    segment.run_for(10)
    assert segment["a"].coordinator.report("VI_2").fault_causes == ()
    assert segment.state("a", "VI_2") is not State.FAULT


# -- control socket and the maintenance state file ----------------------------------------------------


def daemon_config(socket_dir: Path) -> Config:
    return Config(
        path=Path("/etc/hafm.toml"),
        global_=GlobalConfig(control_socket=str(socket_dir / "hafm.sock")),
        instances={"VI_1": instance_config()},
    )


def test_control_socket_in_a_sticky_directory_is_refused(tmp_path: Path) -> None:
    """control_socket = "/tmp/hafm.sock" is accepted (the trust rule lets sticky directories through), yet
    maintenance.json / maintenance.tmp beside it are then anyone's (see the next two tests)."""
    server = ControlServer(str(sticky_dir(tmp_path) / "hafm.sock"), {})

    async def start() -> None:
        try:
            await server.start()
        finally:
            await server.close()

    with pytest.raises(DaemonError):
        asyncio.run(start())


def test_maintenance_save_writes_through_another_users_symlink(tmp_path: Path) -> None:
    shared = sticky_dir(tmp_path)
    victim = tmp_path / "victim"  # stands for /etc/shadow
    victim.write_text("root:secret\n")
    (shared / "maintenance.tmp").symlink_to(victim)
    as_nobody(shared / "maintenance.tmp")

    async def scenario() -> None:
        daemon = Daemon(daemon_config(shared), HafmPluginManager())
        daemon.coordinator.members["VI_1"].maintenance = "patching"
        daemon._save_maintenance()

    asyncio.run(scenario())
    assert victim.read_text() == "root:secret\n", "root overwrote a file chosen by uid 65534"


def test_maintenance_file_planted_by_another_user_is_not_obeyed(tmp_path: Path) -> None:
    shared = sticky_dir(tmp_path)
    planted = shared / "maintenance.json"
    planted.write_text(json.dumps({"VI_1": "uid 65534 says so"}))
    as_nobody(planted)
    fed: list[Any] = []

    async def scenario() -> None:
        daemon = Daemon(daemon_config(shared), HafmPluginManager())
        daemon._feed = fed.append  # type: ignore[method-assign,assignment]
        daemon._restore_maintenance()

    asyncio.run(scenario())
    assert fed == [], "a file written by uid 65534 drained VI_1 (hands the VIP away at start and every reload)"


def test_maintenance_on_says_ok_when_the_state_was_not_saved(tmp_path: Path) -> None:
    """`hafm maintenance on` prints success although maintenance.json was not written: the drain is lost at
    the next restart, the opposite of what the operator was told."""
    directory = tmp_path / "run"
    directory.mkdir()
    (directory / "maintenance.json").mkdir()  # any write failure (read-only /run, ENOSPC) does the same

    async def scenario() -> dict[str, Any]:
        daemon = Daemon(daemon_config(directory), HafmPluginManager())

        def feed(event: Any) -> None:
            daemon.coordinator.members["VI_1"].maintenance = event.reason or "maintenance"

        daemon._feed = feed  # type: ignore[method-assign]
        return await daemon._maintenance_command({"on": True, "reason": "patching"})

    reply = asyncio.run(scenario())
    assert (directory / "maintenance.json").is_dir(), "nothing was saved"
    assert reply["ok"] is False or "warning" in reply, reply


class _StatusPlugin:
    @hookimpl
    def hafm_status(self) -> Any:
        return {"inventory": {"tags": {"web", "eu"}}}  # a set: not JSON


def test_status_with_a_non_json_plugin_section_answers_with_an_error(tmp_path: Path) -> None:
    """One plugin section that json.dumps cannot encode: the control socket closes without a word and
    `hafm status` says only "sent an unreadable answer" (the exception is logged at DEBUG)."""
    from hafm import hookspecs

    pm = HafmPluginManager()
    pm.add_hookspecs(hookspecs)
    pm.register(_StatusPlugin(), "inventory")
    directory = tmp_path / "run"

    async def scenario() -> Any:
        daemon = Daemon(daemon_config(directory), pm)
        server = ControlServer(str(directory / "hafm.sock"), {"status": daemon._status_command})
        await server.start()
        try:
            return await asyncio.to_thread(request, str(directory / "hafm.sock"), {"command": "status"}, timeout=5)
        except HafmError as exc:
            return exc
        finally:
            await server.close()

    reply = asyncio.run(scenario())
    assert isinstance(reply, dict), f"no answer: {reply}"


# -- reload: checks (unit and in the netns lab) -------------------------------------------------------


def test_reload_changing_a_check_interval_keeps_the_master() -> None:
    """Tuning a tracked check (interval 1 -> 2) resets it to init_state, "down" by default: the Master goes
    to FAULT and hands the VIP over, although the application never failed (coordinator.py:406-411,
    daemon.py:450-453 keep the state only for an identical definition)."""
    segment = pair(group_config(100, check_weight=0, init_state="down"), group_config(90))
    check(segment, "a", up=True)
    segment.run_for(5)
    assert segment.state("a", "VI_1") is State.MASTER
    tuned = group_config(100, check_weight=0, init_state="down")
    tuned.checks["app"] = dataclasses.replace(tuned.checks["app"], interval=2.0)
    segment.feed("a", co.Reconfigured(config=tuned, sources={}, links={}))
    segment.run_for(1)
    assert segment.state("a", "VI_1") is State.MASTER, "a reload that only tuned a check moved the VIP"


@pytest.mark.netns
@pytest.mark.skipif(netns_unavailable_reason() is not None, reason=str(netns_unavailable_reason()))
def test_netns_reload_tuning_a_check_moves_the_vip(lab: Lab, tmp_path: Path) -> None:
    healthy = tmp_path / "healthy"
    healthy.write_text("0\n")
    track = 'track_check = ["app"]\n'

    def config(interval: float) -> str:
        return instance_toml(priority=100, state="MASTER", extra=track) + check_toml(
            "app", type="file", path=str(healthy), interval=interval
        )

    nodes = start_nodes(
        lab,
        tmp_path,
        {"a": ("198.51.100.1/24", config(1.0)), "b": ("198.51.100.2/24", instance_toml(priority=90))},
    )
    a, b = nodes["a"], nodes["b"]
    assert isinstance(a, HafmNode)
    assert a.wait_state("MASTER"), a.log
    assert b.wait_state("BACKUP"), b.log
    assert vip_holders_become(nodes, ["a"])
    a.config_path.write_text(a.config.replace(config(1.0), config(2.0)))
    assert a.control("reload").returncode == 0
    moved = wait_until(lambda: b.has_vip(), timeout=4)
    assert not moved, "B took the VIP after a reload that only changed a check's interval:\n" + a.current_log()
    assert a.transitions() == ["BACKUP", "MASTER"] or a.transitions()[-1] == "MASTER"


def reload_instance(node: HafmNode, instance: str) -> tuple[int, str]:
    node.config_path.write_text(node.config.split("\n[vrrp_instance", 1)[0] + "\n" + instance)
    done = node.control("reload")
    return done.returncode, done.stdout + done.stderr


@pytest.mark.netns
@pytest.mark.skipif(netns_unavailable_reason() is not None, reason=str(netns_unavailable_reason()))
def test_netns_reload_adding_a_vip_on_another_device_works_as_at_start(lab: Lab, tmp_path: Path) -> None:
    """A VIP with `dev` on an interface the running config did not use: the in-place update never resolves it
    (daemon.py:385 `starting` excludes updated instances, so _prepare_for skips it) and
    _prepare_announcements raises KeyError: `hafm reload: internal error: KeyError: 'lo'`, systemd is left
    in RELOADING (no READY=1), and every later reload fails the same way. The same file starts fine."""
    a, b, nodes = start_classic_pair(lab, tmp_path)
    assert isinstance(a, HafmNode)
    assert a.wait_state("MASTER"), a.log
    extra_vip = '{ address = "198.51.100.103/32", dev = "lo" }'
    instance = instance_toml(priority=100, state="MASTER").replace(
        f'virtual_ipaddress = ["{VIP4}/24"]', f'virtual_ipaddress = ["{VIP4}/24", {extra_vip}]'
    )
    code, output = reload_instance(a, instance)
    assert code == 0, output
    assert wait_until(lambda: a.has_vip("198.51.100.103", dev="lo"), timeout=3), a.current_log()


@pytest.mark.netns
@pytest.mark.skipif(netns_unavailable_reason() is not None, reason=str(netns_unavailable_reason()))
def test_netns_reload_adding_track_interface_tracks_it(lab: Lab, tmp_path: Path) -> None:
    """track_interface added by reload is never resolved (not in Daemon.infos, daemon.py:385/403-421), so
    its link changes are ignored (daemon.py:459-461): A stays MASTER with its tracked link down."""
    a, b, nodes = start_classic_pair(lab, tmp_path)
    assert isinstance(a, HafmNode)
    assert a.wait_state("MASTER"), a.log
    code, output = reload_instance(a, instance_toml(priority=100, state="MASTER", extra='track_interface = ["lo"]'))
    assert code == 0, output
    a.host.run("ip", "link", "set", "lo", "down")
    assert wait_until(lambda: a.state() == "FAULT", timeout=3), "tracked lo went down, A stayed MASTER"


@pytest.mark.netns
@pytest.mark.skipif(netns_unavailable_reason() is not None, reason=str(netns_unavailable_reason()))
def test_netns_reload_refuses_a_track_interface_that_does_not_exist(lab: Lab, tmp_path: Path) -> None:
    """Start-up refuses it (_resolve_interfaces); reload says "reloaded" and tracks nothing."""
    a, b, nodes = start_classic_pair(lab, tmp_path)
    assert isinstance(a, HafmNode)
    assert a.wait_state("MASTER"), a.log
    missing = 'track_interface = ["nosuch0"]'
    code, output = reload_instance(a, instance_toml(priority=100, state="MASTER", extra=missing))
    assert code != 0, "a track_interface that does not exist was accepted by reload: " + output


# -- garbage in ------------------------------------------------------------------------------------


async def _answer_ok(_: Any) -> dict[str, Any]:
    return {"ok": True}


def test_control_request_nested_too_deeply_gets_an_answer(tmp_path: Path) -> None:
    """json.loads raises RecursionError (not ValueError) for 60000 '[': control.py:111-114 lets it out of
    _serve, the client gets no answer at all instead of "the request is not JSON"."""
    directory = tmp_path / "run"

    async def scenario() -> bytes:
        server = ControlServer(str(directory / "hafm.sock"), {"status": _answer_ok})
        await server.start()
        try:
            reader, writer = await asyncio.open_unix_connection(str(directory / "hafm.sock"))
            writer.write(b"[" * 60000 + b"\n")
            answer = await asyncio.wait_for(reader.read(), 10)
            writer.close()
            return answer
        finally:
            await server.close()

    assert b'"ok": false' in asyncio.run(scenario())


def test_maintenance_file_nested_too_deeply_does_not_stop_the_daemon(tmp_path: Path) -> None:
    """_restore_maintenance catches ValueError only (daemon.py:319): RecursionError escapes, so start-up fails
    ("start-up failed: RecursionError") and every reload answers "internal error"."""
    directory = tmp_path / "run"
    directory.mkdir()
    (directory / "maintenance.json").write_text("[" * 60000)

    async def scenario() -> None:
        daemon = Daemon(daemon_config(directory), HafmPluginManager())
        daemon._restore_maintenance()

    asyncio.run(scenario())


def test_check_type_plugin_returning_one_check_type_is_a_one_line_error(tmp_path: Path) -> None:
    """`return CheckType(...)` instead of `[CheckType(...)]` (an easy slip): _contained's post-processing
    (plugin_manager.py:355) runs outside its try, so `hafm check-config` / `hafm run` print a traceback
    ending in "TypeError: 'CheckType' object is not iterable" instead of one line naming the plugin."""
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "odd.py").write_text(
        "from hafm.hooks import CheckType, hookimpl\n\n"
        "@hookimpl\n"
        "def hafm_register_check_types():\n"
        "    return CheckType(name='odd', validate=lambda options: [], create=lambda check: None)\n"
    )
    with pytest.raises(PluginError, match="odd"):
        check_types(make_plugin_manager([plugins], load_entry_points=False))


@pytest.mark.netns
@pytest.mark.skipif(netns_unavailable_reason() is not None, reason=str(netns_unavailable_reason()))
def test_netns_a_second_hafm_started_by_mistake_leaves_the_masters_vip(lab: Lab, tmp_path: Path) -> None:
    """`hafm --config /etc/hafm.toml` typed while the service runs: the second process removes every VIP
    tagged as hafm's (_clear_leftover_vips, daemon.py:118/531-544) *before* it finds the control socket
    taken (daemon.py:157, control.py:76) and exits; the running Master still believes it holds the VIP."""
    a, b, nodes = start_classic_pair(lab, tmp_path)
    assert isinstance(a, HafmNode)
    assert a.wait_state("MASTER"), a.log
    assert vip_holders_become(nodes, ["a"])
    second = a.host.run(*HAFM, "--config", str(a.config_path), check=False, timeout=20)
    assert second.returncode != 0 and "another hafm is listening" in second.stderr, second.stderr
    gone = not a.has_vip()
    restored = wait_until(lambda: a.has_vip() or b.has_vip(), timeout=5)
    state = a.state()
    assert not gone, f"the second hafm removed the Master's VIP; back within 5 s: {restored}; A says {state}"


def test_idle_control_clients_do_not_lock_out_status(tmp_path: Path) -> None:
    """MAX_CLIENTS connections that never send a newline hold every slot for REQUEST_TIMEOUT (5 s) each, and a
    waiting client's own timeout only starts once it has a slot (control.py:89-90): a local root process
    (the only one the 0600 socket admits) reconnecting in a loop keeps `hafm status` out indefinitely."""
    directory = tmp_path / "run"

    async def scenario() -> float:
        server = ControlServer(str(directory / "hafm.sock"), {"status": _answer_ok})
        await server.start()
        idle = [await asyncio.open_unix_connection(str(directory / "hafm.sock")) for _ in range(MAX_CLIENTS)]
        try:
            loop = asyncio.get_running_loop()
            started = loop.time()
            await asyncio.to_thread(request, str(directory / "hafm.sock"), {"command": "status"}, timeout=10)
            return loop.time() - started
        finally:
            for _, writer in idle:
                writer.close()
            await server.close()

    assert asyncio.run(scenario()) < 1.0


def test_control_socket_path_too_long_is_a_readable_error(tmp_path: Path) -> None:
    """An AF_UNIX path over 107 bytes: OSError has no strerror, so start-up ends with
    "control socket /…sock: None" (control.py:58); check-config accepts the path."""
    server = ControlServer(str(tmp_path / ("x" * 120) / "hafm.sock"), {})
    with pytest.raises(DaemonError) as raised:
        asyncio.run(server.start())
    assert not str(raised.value).endswith(": None"), str(raised.value)


@pytest.mark.netns
@pytest.mark.skipif(netns_unavailable_reason() is not None, reason=str(netns_unavailable_reason()))
def test_netns_instance_added_by_reload_runs_its_notify_script(lab: Lab, tmp_path: Path) -> None:
    """Daemon._apply feeds Reconfigured (daemon.py:397: the new instance's INIT -> BACKUP, or INIT -> MASTER for
    an address owner) before hafm_startup hands the notify plugin the new file (daemon.py:401), so the
    first transition of an instance added by reload runs no script; at start-up the order is the other way."""
    marker = tmp_path / "vi_2_backup"
    nodes = start_nodes(lab, tmp_path, {"a": ("198.51.100.1/24", instance_toml(priority=100, state="MASTER"))})
    a = nodes["a"]
    assert isinstance(a, HafmNode)
    assert a.wait_state("MASTER"), a.log
    added = instance_toml(
        priority=100,
        name="VI_2",
        vrid=52,
        vips=("198.51.100.102/24",),
        extra=f'notify_backup = "/usr/bin/touch {marker}"',
    )
    a.config_path.write_text(a.config + "\n" + added)
    done = a.control("reload")
    assert done.returncode == 0, done.stderr
    assert a.wait_state("BACKUP", instance="VI_2") or a.state("VI_2") is not None, a.current_log()
    assert wait_until(marker.exists, timeout=3), "VI_2 went INIT -> BACKUP but its notify_backup never ran"


def test_advert_for_an_instance_removed_by_reload_before_reconfigured_is_dropped() -> None:
    """Daemon._apply feeds RemoveInstances, then awaits the drivers' drain (daemon.py:388-389) before
    Reconfigured rebuilds _by_vrid; a peer's advert for the removed VRID in that window is routed to the
    deleted member: KeyError in Coordinator._decode/_packet (coordinator.py:469, 461), a traceback from the
    socket reader callback instead of an unknown_vrid drop."""
    segment = pair(group_config(90), group_config(100))  # B is Master of VI_1 and VI_2, advertising
    segment.feed("a", co.RemoveInstances(names=("VI_2",)))
    segment.run_for(2)  # B's adverts keep coming while A drains
