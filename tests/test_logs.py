"""Daemon logging: text with or without timestamps, JSON lines for log shippers, pyroute2's chatter filtered."""

from __future__ import annotations

import datetime
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from hafm import cli
from hafm.logs import setup_logging


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def emitted(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return capsys.readouterr().err.splitlines()


def test_json_lines_carry_time_level_logger_and_message(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("info", "json")
    logging.getLogger("hafm").info("VI_1: BACKUP -> MASTER (%s)", 'master down "timer"\nexpired')
    logging.getLogger("hafm").debug("not at info")
    (line,) = emitted(capsys)
    entry = json.loads(line)
    assert entry["level"] == "info"
    assert entry["logger"] == "hafm"
    assert entry["message"] == 'VI_1: BACKUP -> MASTER (master down "timer"\nexpired)'
    stamp = datetime.datetime.fromisoformat(entry["time"])
    assert stamp.utcoffset() == datetime.timedelta(0)
    assert set(entry) == {"time", "level", "logger", "message"}


def test_json_carries_a_traceback_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("info", "json")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("hafm.checks").exception("check.web: probe raised")
    (line,) = emitted(capsys)
    entry = json.loads(line)
    assert entry["logger"] == "hafm.checks"
    assert entry["level"] == "error"
    assert "RuntimeError: boom" in entry["exception"]


def test_text_has_a_timestamp_except_under_journald(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    setup_logging("info", "text")
    logging.getLogger("hafm").warning("hello")
    (line,) = emitted(capsys)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} WARNING hello", line)

    monkeypatch.setenv("JOURNAL_STREAM", "8:1234")
    setup_logging("info", "text")
    logging.getLogger("hafm").warning("hello")
    assert emitted(capsys) == ["WARNING hello"]


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_pyroute2_debug_is_filtered_but_its_warnings_are_not(capsys: pytest.CaptureFixture[str], fmt: str) -> None:
    setup_logging("debug", fmt)
    logging.getLogger("pyroute2.netlink").debug("every netlink message")
    logging.getLogger("pyroute2.netlink").warning("netlink trouble")
    logging.getLogger("hafm").debug("ours")
    lines = emitted(capsys)
    assert len(lines) == 2
    assert "netlink trouble" in lines[0] and "ours" in lines[1]


def test_log_format_flag_overrides_the_config(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str | None, str | None]] = []
    monkeypatch.setattr(cli, "_run_daemon", lambda path, level, fmt: calls.append((level, fmt)) or 0)
    assert cli.main(["--log-format", "json"]) == 0
    assert cli.main(["run", "--log-level", "debug"]) == 0
    assert calls == [(None, "json"), ("debug", None)]


def test_a_bad_log_format_flag_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["--log-format", "xml"])
    assert exc.value.code == 2
    assert "invalid choice: 'xml'" in capsys.readouterr().err


def test_the_daemon_logs_in_the_configured_format_unless_the_flag_says_otherwise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "hafm.toml"
    config.write_text(
        '[global]\nlog_format = "json"\nlog_level = "warning"\n'
        '[vrrp_instance.VI_1]\ninterface = "eth0"\nvirtual_router_id = 51\nvirtual_ipaddress = ["203.0.113.1/24"]\n'
    )
    calls: list[tuple[str, str]] = []
    monkeypatch.setattr(cli, "setup_logging", lambda level, fmt: calls.append((level, fmt)))

    class NoDaemon:
        def __init__(self, *args: object, **kwargs: object) -> None:
            pass

        async def run(self) -> int:
            return 0

    monkeypatch.setattr("hafm.shell.daemon.Daemon", NoDaemon)
    assert cli.main(["--config", str(config)]) == 0
    assert cli.main(["--config", str(config), "--log-format", "text", "--log-level", "debug"]) == 0
    assert calls == [("warning", "json"), ("debug", "text")]
