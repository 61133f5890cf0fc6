"""systemd notifications: real datagrams to a real AF_UNIX socket standing in for systemd's."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hafm.shell.systemd import Systemd


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    """A datagram socket playing systemd, and the NOTIFY_SOCKET value naming it."""
    path = tmp_path / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(5)
    yield sock, str(path)
    sock.close()


def received(sock: socket.socket) -> list[str]:
    return sock.recv(4096).decode().split("\n")


def test_ready_status_stopping_are_one_datagram_each(manager: tuple[socket.socket, str]) -> None:
    sock, path = manager
    systemd = Systemd({"NOTIFY_SOCKET": path})
    systemd.ready("VI_1 MASTER,\nVI_2 BACKUP")
    systemd.status("VI_1 BACKUP, VI_2 BACKUP")
    systemd.stopping()
    assert received(sock) == ["READY=1", "STATUS=VI_1 MASTER, VI_2 BACKUP"]
    assert received(sock) == ["STATUS=VI_1 BACKUP, VI_2 BACKUP"]
    assert received(sock) == ["STOPPING=1"]
    systemd.close()


def test_reloading_carries_the_monotonic_time(manager: tuple[socket.socket, str]) -> None:
    sock, path = manager
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    Systemd({"NOTIFY_SOCKET": path}).reloading()
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    reloading, monotonic = received(sock)
    assert reloading == "RELOADING=1"
    assert before <= int(monotonic.removeprefix("MONOTONIC_USEC=")) <= after


def test_an_abstract_socket_is_named_with_an_at_sign() -> None:
    name = f"hafm-test-{os.getpid()}-{id(object())}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        Systemd({"NOTIFY_SOCKET": "@" + name}).status("up")
        assert received(sock) == ["STATUS=up"]


@pytest.mark.parametrize("value", ["", "relative/path", "vsock:2:1234"])
def test_without_a_usable_notify_socket_everything_is_a_no_op(value: str) -> None:
    systemd = Systemd({"NOTIFY_SOCKET": value, "WATCHDOG_USEC": "1000"})
    assert not systemd.enabled
    systemd.ready("x")
    systemd.reloading()
    systemd.stopping()
    asyncio.run(asyncio.wait_for(systemd.watchdog(), 5))  # returns at once: nothing to ping
    assert systemd._sock is None


def test_a_vanished_systemd_is_one_warning_not_an_exception(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    systemd = Systemd({"NOTIFY_SOCKET": str(tmp_path / "gone")})
    systemd.status("a")
    systemd.status("b")
    warnings = [r.getMessage() for r in caplog.records if r.name == "hafm.systemd"]
    assert len(warnings) == 1 and "cannot notify systemd" in warnings[0]


def test_the_watchdog_pings_at_half_the_period(manager: tuple[socket.socket, str]) -> None:
    sock, path = manager
    systemd = Systemd({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "20000", "WATCHDOG_PID": str(os.getpid())})
    assert systemd.watchdog_interval == 0.01

    async def pings() -> list[list[str]]:
        task = asyncio.create_task(systemd.watchdog())
        loop = asyncio.get_running_loop()
        got = [await loop.run_in_executor(None, received, sock) for _ in range(3)]
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return got

    assert asyncio.run(pings()) == [["WATCHDOG=1"]] * 3


@pytest.mark.parametrize(
    "env",
    [
        {"WATCHDOG_USEC": "20000", "WATCHDOG_PID": str(os.getpid() + 1)},  # for another process
        {},  # no WatchdogSec
        {"WATCHDOG_USEC": "0"},
        {"WATCHDOG_USEC": "soon"},
    ],
)
def test_no_watchdog_unless_it_is_ours(manager: tuple[socket.socket, str], env: dict[str, str]) -> None:
    _, path = manager
    systemd = Systemd({"NOTIFY_SOCKET": path, **env})
    assert systemd.watchdog_interval is None
    asyncio.run(asyncio.wait_for(systemd.watchdog(), 5))


UNIT = Path(__file__).resolve().parent.parent / "contrib" / "hafm.service"


def test_the_unit_is_type_notify_with_reload_and_watchdog() -> None:
    settings = dict(
        line.split("=", 1) for line in UNIT.read_text().splitlines() if "=" in line and not line.startswith("#")
    )
    assert settings["Type"] == "notify"
    assert settings["NotifyAccess"] == "main"
    assert settings["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert settings["SystemCallFilter"].split() == ["@system-service", "bpf"]  # the absorber (hafm/shell/ebpf.py)
    # `hafm cleanup` after every stop: a killed Master's VIPs do not stay beside the new Master's.
    assert settings["ExecStopPost"] == "-/usr/local/bin/hafm cleanup --config /etc/hafm.toml"
    assert int(settings["WatchdogSec"]) > 0
    assert settings["CapabilityBoundingSet"].split() == [
        "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_SETUID", "CAP_SETGID", "CAP_KILL", "CAP_BPF"
    ]  # fmt: skip


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    # verify also checks that ExecStart exists: point it at a program this machine has.
    unit = tmp_path / "hafm.service"
    unit.write_text(UNIT.read_text().replace("/usr/local/bin/hafm", "/bin/true"))
    result = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, check=False)
    assert result.returncode == 0 and not result.stderr, result.stderr
