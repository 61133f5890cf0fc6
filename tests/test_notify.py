"""The notify runner: argv/env, per-instance order, parallel instances, timeouts, FIFO, coalescing, security."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import stat
import time
from collections.abc import Coroutine
from ipaddress import ip_interface
from pathlib import Path
from typing import Any, TypeVar

import pytest

from hafm.config.model import Config, GlobalConfig, InstanceConfig, Notify, SyncGroupConfig, Vip
from hafm.plugin_manager import call_safely, make_plugin_manager
from hafm.processes import Refusals
from hafm_plugins import notify_runner
from hafm_plugins.notify_runner import (
    ENV_PATH,
    Command,
    NotifyFifo,
    NotifyRunner,
    Transition,
    check_notify_fifo,
    check_notify_scripts,
    commands_for,
    environment,
    fifo_line,
    run_command,
)

T = TypeVar("T")

# Appends "start|end NAME STATE TIME ARGS" lines to the log given as $1, sleeping $2 s in between.
RECORDER = """#!/bin/sh
log=$1; pause=$2; shift 2
echo "start ${HAFM_INSTANCE:-$HAFM_GROUP} $HAFM_STATE $(date +%s.%N) $*" >> "$log"
sleep "$pause"
echo "end ${HAFM_INSTANCE:-$HAFM_GROUP} $HAFM_STATE $(date +%s.%N)" >> "$log"
"""


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def script(directory: Path, name: str, body: str, mode: int = 0o755) -> Path:
    path = directory / name
    path.write_text(body)
    path.chmod(mode)
    return path


def recorder(directory: Path) -> tuple[Path, Path]:
    """A RECORDER script and the log it should write, for VI_1."""
    return script(directory, "rec.sh", RECORDER), directory / "vi1.log"


def instance(
    name: str = "VI_1", notify: Notify | None = None, vips: tuple[str, ...] = ("198.51.100.100/24",)
) -> InstanceConfig:
    return InstanceConfig(
        name=name,
        interface="eth0",
        virtual_router_id=51,
        virtual_ipaddress=tuple(Vip(address=ip_interface(v)) for v in vips),
        notify=notify or Notify(),
    )


def config(
    *instances: InstanceConfig,
    fifo: str | None = None,
    groups: tuple[SyncGroupConfig, ...] = (),
    wait: bool = True,
    timeout: float = 30.0,
) -> Config:
    return Config(
        path=Path("/etc/hafm.toml"),
        global_=GlobalConfig(notify_fifo=fifo, notify_wait=wait, notify_timeout=timeout),
        instances={i.name: i for i in instances},
        sync_groups={g.name: g for g in groups},
    )


def records(log: Path) -> list[tuple[str, str, str, float, str]]:
    """(start|end, name, state, time, extra args) per line of a RECORDER log."""
    found = []
    for line in log.read_text().splitlines():
        kind, name, state, at, *rest = line.split(" ")
        found.append((kind, name, state, float(at), " ".join(rest)))
    return found


def runs(log: Path) -> list[tuple[str, float, float]]:
    """(state, start, end) per completed run, in start order, checking runs never overlap."""
    result: list[tuple[str, float, float]] = []
    open_run: tuple[str, float] | None = None
    for kind, _name, state, at, _extra in records(log):
        if kind == "start":
            assert open_run is None, f"{state} started at {at} while {open_run} was still running"
            open_run = (state, at)
        else:
            assert open_run is not None and open_run[0] == state
            result.append((state, open_run[1], at))
            open_run = None
    return result


async def until_idle(runner: NotifyRunner, timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        for queue in runner.queues.values():
            await queue.wait_idle()


def play(cfg: Config, *changes: tuple[str, str, str]) -> None:
    """Feed VI_1 the transitions ``(old, new, reason)`` (priority 100) and wait for their scripts."""

    async def scenario() -> None:
        runner = NotifyRunner(cfg)
        for old, new, reason in changes:
            runner.instance_changed("VI_1", old, new, reason, 100)
        await until_idle(runner)
        await runner.aclose()

    run(scenario())


# -- argv and environment --------------------------------------------------------


def test_instance_transition_runs_specific_then_generic_with_keepalived_arguments() -> None:
    transition = Transition(
        kind="INSTANCE",
        name="VI_1",
        old_state="BACKUP",
        new_state="MASTER",
        reason="master down timer expired",
        priority=100,
        vips=("198.51.100.100", "2001:db8::100"),
    )
    notify = Notify(master="/etc/hafm/to_master.sh 'two words' x", any="/etc/hafm/notify.sh --verbose")
    commands = commands_for(notify, transition)
    env = {
        "PATH": ENV_PATH,
        "HAFM_INSTANCE": "VI_1",
        "HAFM_STATE": "MASTER",
        "HAFM_PREV_STATE": "BACKUP",
        "HAFM_PRIORITY": "100",
        "HAFM_VIPS": "198.51.100.100 2001:db8::100",
        "HAFM_REASON": "master down timer expired",
    }
    assert commands == [
        Command(key="VI_1.notify_master", argv=("/etc/hafm/to_master.sh", "two words", "x"), env=env),
        Command(
            key="VI_1.notify",
            argv=("/etc/hafm/notify.sh", "--verbose", "INSTANCE", "VI_1", "MASTER", "100"),
            env=env,
        ),
    ]


@pytest.mark.parametrize(
    ("state", "expected_key"),
    [("BACKUP", "VI_1.notify_backup"), ("FAULT", "VI_1.notify_fault"), ("STOP", "VI_1.notify_stop")],
)
def test_each_state_selects_its_own_script(state: str, expected_key: str) -> None:
    notify = Notify(master="/m", backup="/b", fault="/f", stop="/s")
    transition = Transition(kind="INSTANCE", name="VI_1", old_state="MASTER", new_state=state, reason="r", priority=90)
    [command] = commands_for(notify, transition)
    assert command.key == expected_key
    assert command.argv == ("/" + state[0].lower(),)


def test_transition_into_init_notifies_nobody() -> None:
    notify = Notify(master="/m", backup="/b", fault="/f", stop="/s", any="/n")
    transition = Transition(kind="INSTANCE", name="VI_1", old_state="FAULT", new_state="INIT", reason="r", priority=1)
    assert commands_for(notify, transition) == []


def test_group_transition_has_no_priority_but_keepalived_zero_in_argv() -> None:
    transition = Transition(
        kind="GROUP", name="G1", old_state="BACKUP", new_state="MASTER", reason="VI_1 became MASTER", priority=None
    )
    master, generic = commands_for(Notify(master="/g_master", any="/g_notify"), transition)
    assert master.key == "vrrp_sync_group.G1.notify_master"
    assert generic.argv == ("/g_notify", "GROUP", "G1", "MASTER", "0")
    assert environment(transition) == {
        "PATH": ENV_PATH,
        "HAFM_GROUP": "G1",
        "HAFM_STATE": "MASTER",
        "HAFM_PREV_STATE": "BACKUP",
        "HAFM_VIPS": "",
        "HAFM_REASON": "VI_1 became MASTER",
    }


def test_fifo_lines_are_keepalived_format() -> None:
    t = Transition(kind="INSTANCE", name="VI_1", old_state="BACKUP", new_state="MASTER", reason="", priority=100)
    g = Transition(kind="GROUP", name="G1", old_state="MASTER", new_state="FAULT", reason="", priority=None)
    assert fifo_line(t) == 'INSTANCE "VI_1" MASTER 100\n'
    assert fifo_line(g) == 'GROUP "G1" FAULT 0\n'


def test_script_sees_exactly_the_documented_argv_and_environment(tmp_path: Path) -> None:
    out = tmp_path / "seen"
    dump = script(tmp_path, "dump.sh", f'#!/bin/sh\n{{ echo "$@"; env | sort; }} > {out}\n')
    cfg = config(instance(notify=Notify(any=f"{dump} first")))

    async def scenario() -> None:
        runner = NotifyRunner(cfg)
        runner.instance_changed("VI_1", "BACKUP", "MASTER", "preempting 198.51.100.2 prio 90", 100)
        await until_idle(runner)
        await runner.aclose()

    run(scenario())
    lines = out.read_text().splitlines()
    assert lines[0] == "first INSTANCE VI_1 MASTER 100"
    env = dict(line.split("=", 1) for line in lines[1:] if line.split("=", 1)[0] not in ("PWD", "SHLVL", "_"))
    assert env == {
        "PATH": ENV_PATH,
        "HAFM_INSTANCE": "VI_1",
        "HAFM_STATE": "MASTER",
        "HAFM_PREV_STATE": "BACKUP",
        "HAFM_PRIORITY": "100",
        "HAFM_VIPS": "198.51.100.100",
        "HAFM_REASON": "preempting 198.51.100.2 prio 90",
    }


# -- order and concurrency -------------------------------------------------------------


def test_fast_flap_runs_every_script_in_transition_order_without_overlap(tmp_path: Path) -> None:
    rec, log = recorder(tmp_path)
    cfg = config(instance(notify=Notify(master=f"{rec} {log} 0.15", backup=f"{rec} {log} 0.15")))

    async def scenario() -> bool:
        runner = NotifyRunner(cfg)
        runner.instance_changed("VI_1", "BACKUP", "MASTER", "a", 100)
        runner.instance_changed("VI_1", "MASTER", "BACKUP", "b", 100)
        runner.instance_changed("VI_1", "BACKUP", "MASTER", "c", 100)
        finished_when_queued = log.exists()  # queueing returns before any script has started
        await until_idle(runner)
        await runner.aclose()
        return finished_when_queued

    assert run(scenario()) is False, "queueing must not wait for the scripts"
    assert [state for state, _, _ in runs(log)] == ["MASTER", "BACKUP", "MASTER"]


def test_notify_wait_false_starts_each_transition_at_once(tmp_path: Path) -> None:
    rec, log = recorder(tmp_path)
    cfg = config(instance(notify=Notify(master=f"{rec} {log} 0.3", backup=f"{rec} {log} 0.3")), wait=False)

    async def scenario() -> None:
        runner = NotifyRunner(cfg)
        runner.instance_changed("VI_1", "BACKUP", "MASTER", "a", 100)
        runner.instance_changed("VI_1", "MASTER", "BACKUP", "b", 100)
        await until_idle(runner)
        runner.instance_changed("VI_1", "BACKUP", "MASTER", "c", 100)  # reuses an idle queue
        await until_idle(runner)
        assert len(runner.queues) == 1, "the idle extra queue was freed"
        await runner.aclose()

    run(scenario())
    starts = [at for kind, _, _, at, _ in records(log) if kind == "start"]
    ends = [at for kind, _, _, at, _ in records(log) if kind == "end"]
    assert len(starts) == 3
    assert starts[1] < ends[0], "keepalived-style: the second script did not wait for the first"
    with pytest.raises(AssertionError, match="while"):
        runs(log)


def test_generic_notify_runs_after_the_specific_script_never_beside_it(tmp_path: Path) -> None:
    rec, log = recorder(tmp_path)
    cfg = config(instance(notify=Notify(master=f"{rec} {log} 0.1 specific", any=f"{rec} {log} 0.1")))
    play(cfg, ("BACKUP", "MASTER", "a"), ("MASTER", "BACKUP", "b"))
    starts = [(state, extra) for kind, _, state, _, extra in records(log) if kind == "start"]
    assert starts == [
        ("MASTER", "specific"),
        ("MASTER", "INSTANCE VI_1 MASTER 100"),
        ("BACKUP", "INSTANCE VI_1 BACKUP 100"),
    ]
    runs(log)  # asserts no overlap


def test_different_instances_do_not_wait_for_each_other(tmp_path: Path) -> None:
    rec = script(tmp_path, "rec.sh", RECORDER)
    log1, log2 = tmp_path / "vi1.log", tmp_path / "vi2.log"
    cfg = config(
        instance("VI_1", Notify(master=f"{rec} {log1} 1.0")),
        instance("VI_2", Notify(master=f"{rec} {log2} 0.05")),
    )

    async def scenario() -> None:
        runner = NotifyRunner(cfg)
        runner.instance_changed("VI_1", "BACKUP", "MASTER", "a", 100)
        runner.instance_changed("VI_2", "BACKUP", "MASTER", "a", 100)
        await until_idle(runner)
        await runner.aclose()

    run(scenario())
    [(_, start1, end1)] = runs(log1)
    [(_, start2, end2)] = runs(log2)
    assert end2 < end1 - 0.5, "VI_2's quick script finished while VI_1's slow one was still running"
    assert start2 < start1 + 0.5


def test_hanging_script_is_killed_with_its_process_group_at_timeout(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pidfile = tmp_path / "child.pid"
    hang = script(tmp_path, "hang.sh", f"#!/bin/sh\nsleep 60 &\necho $! > {pidfile}\nwait\n")
    command = Command(key="VI_1.notify_master", argv=(str(hang),), env={"PATH": ENV_PATH})

    with caplog.at_level(logging.INFO, logger="hafm.notify"):
        assert run(run_command(command, timeout=0.5)) is None
    child = int(pidfile.read_text())
    assert wait_dead(child), "the script's background child survived the timeout"
    assert f"VI_1.notify_master: {hang} still running after 0.5 s: killed its process group" in caplog.text


def test_notify_timeout_from_the_config_kills_a_hanging_script_and_the_next_one_runs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    hang = script(tmp_path, "hang.sh", "#!/bin/sh\nexec sleep 60\n")
    rec, log = recorder(tmp_path)
    cfg = config(instance(notify=Notify(master=str(hang), backup=f"{rec} {log} 0")), timeout=0.4)

    async def scenario() -> None:
        runner = NotifyRunner(cfg)
        runner.instance_changed("VI_1", "BACKUP", "MASTER", "a", 100)
        runner.instance_changed("VI_1", "MASTER", "BACKUP", "b", 100)
        await until_idle(runner)
        await runner.aclose()

    with caplog.at_level(logging.INFO, logger="hafm.notify"):
        run(scenario())
    assert f"VI_1.notify_master: {hang} still running after 0.4 s: killed its process group" in caplog.text
    assert [state for state, _, _ in runs(log)] == ["BACKUP"]


def wait_dead(pid: int, timeout: float = 3) -> bool:
    """The process is gone (or a zombie nobody reaped yet: it no longer runs)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except FileNotFoundError:
            return True
        if "\nState:\tZ" in status:
            return True
        time.sleep(0.02)
    return False


def test_output_is_logged_with_the_script_name_and_failures_are_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    noisy = script(tmp_path, "noisy.sh", "#!/bin/sh\necho restarting tomcat\necho 'no pid file' >&2\nexit 3\n")
    command = Command(key="VI_1.notify_master", argv=(str(noisy),), env={"PATH": ENV_PATH})
    with caplog.at_level(logging.INFO, logger="hafm.notify"):
        assert run(run_command(command)) == 3
    assert "VI_1.notify_master noisy.sh: restarting tomcat" in caplog.text
    assert "VI_1.notify_master noisy.sh (stderr): no pid file" in caplog.text
    assert f"VI_1.notify_master: {noisy} exited 3 after" in caplog.text


def test_missing_program_is_one_log_line_and_the_queue_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rec, log = recorder(tmp_path)
    cfg = config(instance(notify=Notify(master=str(tmp_path / "gone.sh"), backup=f"{rec} {log} 0")))
    with caplog.at_level(logging.INFO, logger="hafm.notify"):
        play(cfg, ("BACKUP", "MASTER", "a"), ("MASTER", "BACKUP", "b"))
    assert f"VI_1.notify_master: cannot run {tmp_path / 'gone.sh'}: No such file or directory" in caplog.text
    assert [state for state, _, _ in runs(log)] == ["BACKUP"]


def test_daemon_a_script_started_is_left_running_and_does_not_block_the_queue(tmp_path: Path) -> None:
    pidfile = tmp_path / "daemon.pid"
    # Like tomcat's startup.sh: starts a background process that keeps stdout open, and exits.  The
    # child outlives pytest's timeout: a queue waiting for the pipe would fail the test.
    starter = script(tmp_path, "start.sh", f"#!/bin/sh\nsleep 600 &\necho $! > {pidfile}\necho started\n")
    cfg = config(instance(notify=Notify(master=str(starter))))

    async def scenario() -> None:
        runner = NotifyRunner(cfg)
        runner.instance_changed("VI_1", "BACKUP", "MASTER", "a", 100)
        await until_idle(runner)
        await runner.aclose()

    run(scenario())
    child = int(pidfile.read_text())
    try:
        assert not wait_dead(child, timeout=0.2), "a daemon started by a finished notify script was killed"
    finally:
        os.kill(child, 9)


def test_full_queue_coalesces_oldest_entries_keeps_order_and_the_latest(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rec, log = recorder(tmp_path)
    cfg = config(instance(notify=Notify(any=f"{rec} {log} 0.05")))

    async def scenario() -> None:
        runner = NotifyRunner(cfg, queue_limit=4)
        for number in range(1, 11):
            runner.instance_changed("VI_1", "BACKUP", "MASTER" if number % 2 else "BACKUP", "flap", number)
            if number == 1:
                await asyncio.sleep(0.02)  # the first one is running: never coalesced away
        await until_idle(runner)
        await runner.aclose()

    with caplog.at_level(logging.INFO, logger="hafm.notify"):
        run(scenario())
    priorities = [int(extra.split()[-1]) for kind, _, _, _, extra in records(log) if kind == "start"]
    assert priorities[0] == 1, "the first transition was already running"
    assert priorities[-1] == 10, "the latest transition always runs"
    assert priorities == sorted(priorities), "coalescing keeps the order"
    assert len(priorities) < 10
    runs(log)
    assert "VI_1: notify queue full, coalesced" in caplog.text
    coalesced = sum(
        int(r.getMessage().split("coalesced ")[1].split()[0]) for r in caplog.records if "coalesced" in r.getMessage()
    )
    assert coalesced == 10 - len(priorities)


# -- FIFO ------------------------------------------------------------------------------


def test_fifo_receives_one_line_per_transition_in_order(tmp_path: Path) -> None:
    fifo_path = tmp_path / "notify.fifo"
    cfg = config(
        instance("VI_1", Notify()),
        fifo=str(fifo_path),
        groups=(SyncGroupConfig(name="G1", group=("VI_1",)),),
    )
    probe = NotifyFifo(str(fifo_path))
    assert probe.write("x\n") is False  # creates the FIFO; nobody reads yet
    assert stat.S_ISFIFO(fifo_path.stat().st_mode)
    assert stat.S_IMODE(fifo_path.stat().st_mode) == 0o600
    reader = os.open(fifo_path, os.O_RDONLY | os.O_NONBLOCK)

    async def scenario() -> None:
        runner = NotifyRunner(cfg)
        runner.instance_changed("VI_1", "INIT", "BACKUP", "startup", 100)
        runner.instance_changed("VI_1", "BACKUP", "MASTER", "timer", 100)
        runner.group_changed("G1", "BACKUP", "MASTER", "VI_1")
        runner.instance_changed("VI_1", "MASTER", "INIT", "link down", 100)  # INIT: no line
        runner.instance_changed("VI_1", "MASTER", "STOP", "shutdown", 0)
        await runner.aclose()

    try:
        run(scenario())
        data = os.read(reader, 4096).decode()
    finally:
        os.close(reader)
    assert data.splitlines() == [
        'INSTANCE "VI_1" BACKUP 100',
        'INSTANCE "VI_1" MASTER 100',
        'GROUP "G1" MASTER 0',
        'INSTANCE "VI_1" STOP 0',
    ]


def test_fifo_without_reader_drops_lines_at_once_and_logs_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fifo = NotifyFifo(str(tmp_path / "nobody.fifo"))
    with caplog.at_level(logging.INFO, logger="hafm.notify"):  # opened O_NONBLOCK: a blocking open would hang
        assert [fifo.write('INSTANCE "VI_1" MASTER 100\n') for _ in range(3)] == [False, False, False]
    assert [r.getMessage() for r in caplog.records] == [
        f"notify FIFO {tmp_path / 'nobody.fifo'} has no reader; dropping notify lines until one appears"
    ]
    reader = os.open(tmp_path / "nobody.fifo", os.O_RDONLY | os.O_NONBLOCK)
    try:
        assert fifo.write('INSTANCE "VI_1" BACKUP 100\n')
        assert os.read(reader, 100) == b'INSTANCE "VI_1" BACKUP 100\n'
    finally:
        os.close(reader)
        fifo.close()


# -- the plugin and shutdown ------------------------------------------------------------


def test_plugin_runs_scripts_via_hooks_and_shutdown_runs_stop_but_kills_a_hanging_master(tmp_path: Path) -> None:
    rec, log = recorder(tmp_path)
    pidfile = tmp_path / "hang.pid"
    # Far longer than pytest's timeout: if shutdown waited for it, the test would fail.
    hang = script(tmp_path, "hang.sh", f"#!/bin/sh\necho $$ > {pidfile}\nexec sleep 600\n")
    group_log = tmp_path / "g1.log"
    cfg = config(
        instance(notify=Notify(master=str(hang), backup=f"{rec} {log} 0", stop=f"{rec} {log} 0")),
        groups=(SyncGroupConfig(name="G1", group=("VI_1",), notify=Notify(any=f"{rec} {group_log} 0")),),
    )
    pm = make_plugin_manager(load_entry_points=False)
    plugin = pm.get_plugin("hafm_plugins.notify")

    async def scenario() -> None:
        await call_safely(pm, "hafm_startup", config=cfg)
        for old, new in (("INIT", "BACKUP"), ("BACKUP", "MASTER")):
            await call_safely(
                pm, "hafm_state_changed", instance="VI_1", old_state=old, new_state=new, reason="r", priority=100
            )
        await call_safely(
            pm, "hafm_sync_group_state_changed", group="G1", old_state="BACKUP", new_state="MASTER", reason="r"
        )
        assert plugin.runner is not None
        assert await asyncio.to_thread(lambda: _wait_file(pidfile)), "notify_master never started"
        assert await asyncio.to_thread(lambda: _wait_file(group_log)), "the group's notify never started"
        # As in the daemon: the STOP hook call is scheduled, then shutdown is awaited.
        stop = asyncio.create_task(
            call_safely(
                pm,
                "hafm_state_changed",
                instance="VI_1",
                old_state="MASTER",
                new_state="STOP",
                reason="shutdown",
                priority=0,
            )
        )
        await call_safely(pm, "hafm_shutdown", config=cfg)
        await stop

    run(scenario())
    assert wait_dead(int(pidfile.read_text())), "the hanging notify_master survived shutdown"
    assert [state for state, _, _ in runs(log)] == ["BACKUP", "STOP"]
    assert [extra for kind, _, _, _, extra in records(group_log) if kind == "start"] == ["GROUP G1 MASTER 0"]
    assert plugin.runner is None


def _wait_file(path: Path, timeout: float = 5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return True
        time.sleep(0.01)
    return False


# -- security check --------------------------------------------------------------------

CFG = "/etc/hafm.toml: "


def test_safe_scripts_pass_the_check(tmp_path: Path) -> None:
    ok = script(tmp_path, "ok.sh", "#!/bin/sh\n")
    cfg = config(
        instance(notify=Notify(master=f"{ok} --flag", any="logger -t hafm")),  # logger is found in PATH
        groups=(SyncGroupConfig(name="G1", group=("VI_1",), notify=Notify(backup=str(ok))),),
    )
    assert check_notify_scripts(cfg) == []


def test_writable_script_is_refused_with_the_fix(tmp_path: Path) -> None:
    bad = script(tmp_path, "notify.sh", "#!/bin/sh\n", mode=0o775)
    cfg = config(instance(notify=Notify(master=str(bad))))
    assert check_notify_scripts(cfg) == [
        CFG + f"vrrp_instance.VI_1.notify_master: {bad} is writable by group/others (chmod go-w {bad})"
    ]


def test_script_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    if os.getuid() != 0:
        pytest.skip("chown needs root")
    bad = script(tmp_path, "notify.sh", "#!/bin/sh\n")
    os.chown(bad, 1000, 1000)
    cfg = config(instance(notify=Notify(backup=str(bad))))
    [problem] = check_notify_scripts(cfg)
    assert problem.startswith(CFG + f"vrrp_instance.VI_1.notify_backup: {bad} is owned by ")
    assert problem.endswith(f"(uid 1000), not root (chown root {bad})")


def test_missing_relative_and_non_executable_scripts_are_refused(tmp_path: Path) -> None:
    plain = script(tmp_path, "plain.sh", "#!/bin/sh\n", mode=0o644)
    cfg = config(
        instance("VI_1", Notify(master=str(tmp_path / "missing.sh"), fault=str(plain))),
        instance("VI_2", Notify(stop="no-such-notify-program", any="./relative.sh")),
        groups=(SyncGroupConfig(name="G1", group=("VI_1",), notify=Notify(master=str(tmp_path))),),
    )
    assert check_notify_scripts(cfg) == [
        CFG + f"vrrp_instance.VI_1.notify_master: {tmp_path / 'missing.sh'} does not exist",
        CFG + f"vrrp_instance.VI_1.notify_fault: {plain} is not executable (chmod 755 {plain})",
        CFG
        + f"vrrp_instance.VI_2.notify_stop: no-such-notify-program is not found in {ENV_PATH} (give an absolute path)",
        CFG + "vrrp_instance.VI_2.notify: ./relative.sh is a relative path (give an absolute path)",
        CFG + f"vrrp_sync_group.G1.notify_master: {tmp_path} is not a regular file",
    ]


def test_script_in_a_directory_others_can_write_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    ok = script(shared, "notify.sh", "#!/bin/sh\n")
    cfg = config(instance(notify=Notify(master=str(ok))))
    assert check_notify_scripts(cfg) == [
        CFG + f"vrrp_instance.VI_1.notify_master: {ok}: directory {shared} is writable by group/others "
        f"(chmod go-w {shared})"
    ]
    shared.chmod(0o1777)  # sticky, like /tmp: others cannot replace root's file
    assert check_notify_scripts(cfg) == []


def test_a_symlink_in_a_directory_others_can_write_is_refused_though_its_target_is_fine(tmp_path: Path) -> None:
    ok = script(tmp_path, "notify.sh", "#!/bin/sh\n")
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    (shared / "notify.sh").symlink_to(ok)  # another user could retarget it after start-up
    cfg = config(instance(notify=Notify(master=str(shared / "notify.sh"))))
    assert check_notify_scripts(cfg) == [
        CFG + f"vrrp_instance.VI_1.notify_master: {shared / 'notify.sh'}: directory {shared} is writable by "
        f"group/others (chmod go-w {shared})"
    ]


@pytest.mark.parametrize(
    "command",
    [
        "/bin/sh {bad}",  # the script of an interpreter
        "/usr/bin/env python3 -u {bad} --flag",
        "env -S 'LANG=C perl {bad}'",
        "{ok} --config {bad}",  # any argument naming an existing file
        "sh -ec 'echo starting; {bad} now'",  # the commands of a sh -c payload
    ],
)
def test_interpreter_scripts_and_file_arguments_are_checked_too(tmp_path: Path, command: str) -> None:
    ok = script(tmp_path, "ok.sh", "#!/bin/sh\n")
    bad = script(tmp_path, "n.sh", "#!/bin/sh\n", mode=0o666)
    cfg = config(instance(notify=Notify(master=command.format(ok=ok, bad=bad))))
    assert check_notify_scripts(cfg) == [
        CFG + f"vrrp_instance.VI_1.notify_master: {bad} is writable by group/others (chmod go-w {bad})"
    ]
    bad.chmod(0o644)
    assert check_notify_scripts(cfg) == []


def test_a_nul_byte_in_a_configured_command_is_a_config_error() -> None:
    cfg = config(instance(notify=Notify(master="/bin/true a\0b")))
    assert check_notify_scripts(cfg) == [CFG + "vrrp_instance.VI_1.notify_master: contains a NUL byte"]


def test_a_nul_byte_filled_in_at_run_time_is_one_error_line_and_the_queue_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rec, log = recorder(tmp_path)
    cfg = config(instance(notify=Notify(any=f"{rec} {log} 0")))
    with caplog.at_level(logging.INFO, logger="hafm.notify"):
        play(cfg, ("BACKUP", "MASTER", "peer said \0"), ("MASTER", "BACKUP", "fine"))  # the NUL: HAFM_REASON
    assert f"VI_1.notify: cannot run {rec}: an argument or environment value contains a NUL byte" in caplog.text
    assert "Traceback" not in caplog.text and "exception" not in caplog.text.lower()
    assert [state for state, _, _ in runs(log)] == ["BACKUP"]


def test_a_script_is_checked_again_before_every_run_and_refused_with_one_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rec, log = recorder(tmp_path)
    cfg = config(instance(notify=Notify(any=f"{rec} {log} 0")))
    assert check_notify_scripts(cfg) == []

    async def flap(runner: NotifyRunner, times: int) -> None:
        for number in range(times):
            runner.instance_changed("VI_1", "BACKUP", "MASTER" if number % 2 else "BACKUP", "flap", number)
        await until_idle(runner)

    async def scenario() -> None:
        runner = NotifyRunner(cfg)
        await flap(runner, 1)
        rec.chmod(0o777)  # became writable after start-up
        await flap(runner, 3)
        rec.chmod(0o755)
        await flap(runner, 1)
        await runner.aclose()

    with caplog.at_level(logging.INFO, logger="hafm.notify"):
        run(scenario())
    assert len(runs(log)) == 2, "the three runs in between were refused"
    refusals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert refusals == [f"VI_1.notify: refused to run: {rec} is writable by group/others (chmod go-w {rec})"]
    assert "VI_1.notify: trusted again, running it" in caplog.text


def test_refusals_are_logged_again_only_after_the_repeat_interval(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    refusals = Refusals(logging.getLogger("hafm.test"), repeat=600, now=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="hafm.test"):
        for at in (0, 1, 599, 600, 601):
            now[0] = at
            refusals.refused("VI_1.notify", "x is writable")
        refusals.refused("VI_1.notify", "y is writable")  # another problem: at once
    assert [r.getMessage() for r in caplog.records] == ["VI_1.notify: refused to run: x is writable"] * 2 + [
        "VI_1.notify: refused to run: y is writable"
    ]


def test_notify_wait_false_runs_at_most_a_few_scripts_per_instance_and_frees_idle_queues(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    running = 0
    most = 0
    ran = 0

    async def fake_run_command(command: Command, timeout: float = 0) -> int | None:
        nonlocal running, most, ran
        running += 1
        most = max(most, running)
        try:
            await release.wait()
        finally:
            running -= 1
        ran += 1
        return 0

    monkeypatch.setattr(notify_runner, "run_command", fake_run_command)
    cfg = config(instance(notify=Notify(any="/bin/true")), wait=False)

    async def scenario() -> None:
        nonlocal release
        release = asyncio.Event()
        runner = NotifyRunner(cfg)
        for number in range(100):
            runner.instance_changed("VI_1", "BACKUP", "MASTER" if number % 2 else "BACKUP", "flap", number)
        for _ in range(5):
            await asyncio.sleep(0)
        assert most == notify_runner.PARALLEL_LIMIT
        assert len(runner.queues) == notify_runner.PARALLEL_LIMIT
        release.set()
        await until_idle(runner)
        runner.instance_changed("VI_1", "BACKUP", "MASTER", "again", 100)
        await until_idle(runner)
        assert len(runner.queues) == 1, "idle queues are freed"
        assert [t for t in asyncio.all_tasks() if t.get_name().startswith("notify ")] == [], "no idle worker"
        await runner.aclose()

    release = asyncio.Event()
    run(scenario())
    assert most == notify_runner.PARALLEL_LIMIT
    assert ran == 101


# -- the FIFO is root's: no symlink, no file swapped in, no directory others control ---------


def test_fifo_through_a_symlink_is_refused(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    real = tmp_path / "real.fifo"
    os.mkfifo(real, 0o600)
    (tmp_path / "notify.fifo").symlink_to(real)
    reader = os.open(real, os.O_RDONLY | os.O_NONBLOCK)
    fifo = NotifyFifo(str(tmp_path / "notify.fifo"))
    try:
        with caplog.at_level(logging.INFO, logger="hafm.notify"):
            assert [fifo.write('INSTANCE "VI_1" MASTER 100\n') for _ in range(2)] == [False, False]
        assert os.read(reader, 100) == b"", "nothing was written (and no writer ever opened it)"
    finally:
        os.close(reader)
        fifo.close()
    assert [r.getMessage() for r in caplog.records] == [
        f"notify_fifo {tmp_path / 'notify.fifo'} refused: it is a symlink; notify lines are dropped"
    ]


def test_a_regular_file_at_the_fifo_path_is_never_written(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "notify.fifo"
    path.write_text("precious\n")
    path.chmod(0o600)
    fifo = NotifyFifo(str(path))
    with caplog.at_level(logging.INFO, logger="hafm.notify"):
        assert fifo.write('INSTANCE "VI_1" MASTER 100\n') is False
    assert path.read_text() == "precious\n"
    assert caplog.messages == [f"notify_fifo {path} refused: it exists and is not a FIFO; notify lines are dropped"]


def test_fifo_in_a_directory_others_can_write_is_refused_unless_sticky(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    fifo = NotifyFifo(str(shared / "notify.fifo"))
    with caplog.at_level(logging.INFO, logger="hafm.notify"):
        assert fifo.write("x\n") is False
    assert not (shared / "notify.fifo").exists()
    assert caplog.messages == [
        f"notify_fifo {shared / 'notify.fifo'} refused: directory {shared} is writable by group/others "
        f"(chmod go-w {shared}); notify lines are dropped"
    ]
    shared.chmod(0o1777)  # like /tmp
    fifo = NotifyFifo(str(shared / "notify.fifo"))
    assert fifo.write("x\n") is False  # no reader, but created
    assert stat.S_ISFIFO((shared / "notify.fifo").stat().st_mode)


def test_check_config_refuses_a_fifo_path_root_must_not_write_to(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    (tmp_path / "link.fifo").symlink_to(tmp_path / "real.fifo")
    (tmp_path / "file.fifo").write_text("")
    os.mkfifo(tmp_path / "ok.fifo", 0o600)
    refused = {
        shared / "n.fifo": f"directory {shared} is writable by group/others (chmod go-w {shared})",
        tmp_path / "link.fifo": "it is a symlink",
        tmp_path / "file.fifo": "it exists and is not a FIFO",
    }
    for path, problem in refused.items():
        assert check_notify_fifo(config(fifo=str(path))) == [CFG + f"global.notify_fifo: refused: {problem}"]
    assert check_notify_fifo(config(fifo=str(tmp_path / "ok.fifo"))) == []
    assert check_notify_fifo(config(fifo=str(tmp_path / "not-yet.fifo"))) == []
    pm = make_plugin_manager(load_entry_points=False)
    assert [CFG + f"global.notify_fifo: refused: {refused[shared / 'n.fifo']}"] in pm.hook.hafm_validate_config(
        config=config(fifo=str(shared / "n.fifo"))
    )


@pytest.mark.skipif(os.getuid() != 0, reason="chown needs root")
def test_fifo_owned_by_another_user_is_refused(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "notify.fifo"
    os.mkfifo(path, 0o600)
    os.chown(path, 65534, 65534)
    reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    fifo = NotifyFifo(str(path))
    try:
        with caplog.at_level(logging.INFO, logger="hafm.notify"):
            assert fifo.write("x\n") is False
    finally:
        os.close(reader)
    assert caplog.messages == [
        f"notify_fifo {path} refused: it is owned by uid 65534, not root; notify lines are dropped"
    ]


# -- docs/notify.md stays true -------------------------------------------------------------


def test_docs_state_the_real_defaults_and_every_variable() -> None:
    docs = (Path(__file__).resolve().parent.parent / "docs" / "notify.md").read_text()
    assert f"**Timeout: {notify_runner.NOTIFY_TIMEOUT:g} s**" in docs
    assert f"at most **{notify_runner.QUEUE_LIMIT}** pending" in docs
    assert f"at most **{notify_runner.PARALLEL_LIMIT}** run side" in docs
    assert f"**{notify_runner.SHUTDOWN_GRACE:g} s**" in docs
    assert f"`{ENV_PATH}`" in docs
    instance_env = environment(
        Transition(kind="INSTANCE", name="VI_1", old_state="INIT", new_state="BACKUP", reason="", priority=1)
    )
    group_env = environment(
        Transition(kind="GROUP", name="G1", old_state="INIT", new_state="BACKUP", reason="", priority=None)
    )
    documented = set(re.findall(r"^\| `([A-Z_]+)` \|", docs, re.MULTILINE))
    assert documented == set(instance_env) | set(group_env)
    for example in ("log-to-syslog.sh", "tomcat-on-master.sh", "webhook.sh"):
        path = Path(__file__).resolve().parent.parent / "contrib" / "notify" / example
        assert path.stat().st_mode & 0o111 and f"(../contrib/notify/{example})" in docs
