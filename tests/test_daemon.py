"""hafm/shell/daemon.py without sockets: what the shell does with the coordinator's outputs."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from hafm.config.model import Config, GlobalConfig
from hafm.plugin_manager import HafmPluginManager
from hafm.shell.daemon import Daemon
from hafm.vrrp import coordinator as co
from tests.helpers import instance_config


class RecordingSystemd:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.statuses: list[str] = []

    def status(self, text: str) -> None:
        self.statuses.append(text)


def daemon_whose_every_event_changes_a_state(tmp_path: Path, systemd: RecordingSystemd) -> tuple[Daemon, list[int]]:
    config = Config(
        path=Path("/etc/hafm.toml"),
        global_=GlobalConfig(control_socket=str(tmp_path / "hafm.sock")),
        instances={"VI_1": instance_config()},
    )
    daemon = Daemon(config, HafmPluginManager())
    summaries = [0]

    def handle(event: Any, now: float) -> list[Any]:
        return [co.CallHook(name="hafm_state_changed", kwargs={})]

    def summary() -> str:
        summaries[0] += 1
        return "VI_1 BACKUP"

    daemon.coordinator.handle = handle  # type: ignore[method-assign]
    daemon.hooks.call = lambda name, kwargs: None  # type: ignore[method-assign]
    daemon._summary = summary  # type: ignore[method-assign]
    daemon.systemd = systemd  # type: ignore[assignment]
    return daemon, summaries


@pytest.mark.parametrize("enabled", [True, False])
def test_status_goes_to_systemd_once_per_loop_turn_and_only_under_systemd(tmp_path: Path, enabled: bool) -> None:
    """200 instances turning Backup in 200 feeds at start-up summarised all 200 each time (40 000 reports)."""
    systemd = RecordingSystemd(enabled)
    daemon, summaries = daemon_whose_every_event_changes_a_state(tmp_path, systemd)
    tick = co.MaintenanceChanged(instance="VI_1", on=True)  # any event: handle() is scripted

    async def two_turns() -> None:
        for _ in range(3):
            daemon._feed(tick)
        await asyncio.sleep(0)
        daemon._feed(tick)
        await asyncio.sleep(0)

    asyncio.run(two_turns())
    assert systemd.statuses == (["VI_1 BACKUP"] * 2 if enabled else [])
    assert summaries == [2 if enabled else 0]
