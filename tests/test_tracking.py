"""fall/rise hysteresis, priority arithmetic and the concurrent check runner."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from hafm.config.loader import load_config
from hafm.config.model import CheckConfig
from hafm.errors import ConfigError
from hafm.hooks import CheckType, Probe, ProbeResult
from hafm.shell import checks as checks_module
from hafm.shell.checks import CheckRunner, next_delay, run_probe
from hafm.vrrp.tracking import CheckState, Tracked, effective_priority

# Async tests run on asyncio through anyio's pytest plugin (no pytest-asyncio needed).
pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


OK = ProbeResult(ok=True, detail="ok")
FAIL = ProbeResult(ok=False, detail="fail")


def run_sequence(state: CheckState, results: str) -> list[tuple[bool, bool]]:
    """Feed "+-+" (success/failure) and return (changed, up) after each."""
    return [(state.record(OK if r == "+" else FAIL), state.up) for r in results]


@pytest.mark.parametrize(
    ("fall", "rise", "init_up", "results", "expected_up", "changes"),
    [
        # starts down, rise 1: first success brings it up
        (1, 1, False, "+", [True], 1),
        # rise 3 needs three successes in a row; a failure resets the streak
        (1, 3, False, "++-+++", [False, False, False, False, False, True], 1),
        # fall 2: a single failure between successes never takes it down
        (2, 1, True, "-+-+-+", [True] * 6, 0),
        (2, 1, True, "--", [True, False], 1),
        # flapping with fall 1 / rise 1 changes on every flip
        (1, 1, True, "-+-", [False, True, False], 3),
        # repeated failures while down are not changes
        (1, 1, False, "---", [False, False, False], 0),
    ],
)
def test_fall_rise(fall: int, rise: int, init_up: bool, results: str, expected_up: list[bool], changes: int) -> None:
    state = CheckState(name="c", fall=fall, rise=rise, up=init_up)
    observed = run_sequence(state, results)
    assert [up for _, up in observed] == expected_up
    assert sum(changed for changed, _ in observed) == changes


def test_state_from_config_uses_init_state() -> None:
    assert CheckState.from_config(CheckConfig(name="a", type="tcp")).up is False
    assert CheckState.from_config(CheckConfig(name="a", type="tcp", init_state="up")).up is True


def test_value_change_while_up_is_a_change_and_down_clears_delta() -> None:
    state = CheckState(name="f", up=False)
    assert state.record(ProbeResult(ok=True, detail="value 3", delta=3)) is True
    assert state.delta == 3
    assert state.record(ProbeResult(ok=True, detail="value 3", delta=3)) is False
    assert state.record(ProbeResult(ok=True, detail="value 5", delta=5)) is True
    assert state.delta == 5
    assert state.record(ProbeResult(ok=False, detail="cannot read")) is True
    assert state.delta is None and state.detail == "cannot read"


@pytest.mark.parametrize(
    ("base", "tracked", "priority", "fault"),
    [
        (100, [], 100, False),
        (100, [("tomcat", -20, False, None)], 80, False),
        (100, [("tomcat", -20, True, None)], 100, False),
        (100, [("uplink", 10, True, None)], 110, False),
        (100, [("uplink", 10, False, None)], 100, False),
        (100, [("a", -20, False, None), ("b", 15, True, None)], 95, False),
        # clamping to 1..254
        (100, [("big", 200, True, None)], 254, False),
        (10, [("big", -200, False, None)], 1, False),
        # weight 0: FAULT while down, nothing while up
        (100, [("db", 0, False, None)], 100, True),
        (100, [("db", 0, True, None)], 100, False),
        # the address owner never changes priority, but FAULT still applies
        (255, [("tomcat", -20, False, None), ("up", 10, True, None)], 255, False),
        (255, [("db", 0, False, None)], 255, True),
        # file checks (keepalived track_file): value x weight, weight 0 -> nonzero is FAULT
        (100, [("f", 0, True, 0)], 100, False),
        (100, [("f", 0, True, 7)], 100, True),
        (100, [("f", 1, True, 7)], 107, False),
        (100, [("f", -2, True, 10)], 80, False),
        (100, [("f", 10, True, -25)], 1, False),  # -250 is above the FAULT threshold: clamp
        (100, [("f", 1, True, -254)], 100, True),
        (100, [("f", 2, True, -200)], 100, True),
        (255, [("f", 5, True, 3)], 255, False),
        # an unreadable file is a down check: plain weight rules
        (100, [("f", -20, False, None)], 80, False),
        (100, [("f", 0, False, None)], 100, True),
    ],
)
def test_effective_priority(
    base: int, tracked: list[tuple[str, int, bool, int | None]], priority: int, fault: bool
) -> None:
    verdict = effective_priority(base, tracked)
    assert (verdict.priority, verdict.fault) == (priority, fault)


def test_explanations_are_readable() -> None:
    assert effective_priority(100, [Tracked("tomcat", -20, False)]).explanation == "base 100, tomcat down -20 → 80"
    assert (
        effective_priority(100, [Tracked("big", 200, True)]).explanation
        == "base 100, big up +200 → 254 (clamped from 300)"
    )
    assert effective_priority(100, [Tracked("db", 0, False)]).explanation == "base 100, db down (weight 0) → FAULT"
    assert effective_priority(100, [Tracked("f", -2, True, 10)]).explanation == "base 100, f value 10 × -2 -20 → 80"
    assert "address owner" in effective_priority(255, [Tracked("t", -20, False)]).explanation


# -- probes under a timeout -------------------------------------------------------------------


async def test_run_probe_timeout_is_a_failure() -> None:
    async def hang() -> ProbeResult:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    result = await run_probe(hang, timeout=0.05, plugin="slow")
    assert result == ProbeResult(ok=False, detail="timeout after 0.05 s")


async def test_run_probe_exception_names_the_plugin() -> None:
    async def broken() -> ProbeResult:
        raise ValueError("bad url")

    result = await run_probe(broken, timeout=1, plugin="hafm_example")
    assert not result.ok
    assert result.detail == "plugin hafm_example raised ValueError: bad url"


# -- the runner ---------------------------------------------------------------------------------


def _no_keys(options: Mapping[str, Any]) -> list[tuple[str, str]]:
    return []


def scripted_type(name: str, behaviour: dict[str, Any]) -> CheckType:
    """A check type whose probes do what ``behaviour[check name]`` says and count their runs."""

    def create(check: CheckConfig) -> Probe:
        async def probe() -> ProbeResult:
            spec = behaviour[check.name]
            spec["runs"] = spec.get("runs", 0) + 1
            if spec.get("hang"):
                await asyncio.Event().wait()
            if spec.get("raise"):
                raise RuntimeError("boom")
            return ProbeResult(ok=spec["ok"], detail=f"run {spec['runs']}")

        return probe

    return CheckType(name=name, validate=_no_keys, create=create, plugin="test_plugin")


async def test_hung_probe_does_not_block_a_fast_check() -> None:
    behaviour: dict[str, Any] = {"hung": {"hang": True, "ok": True}, "fast": {"ok": True}}
    checks = {
        "hung": CheckConfig(name="hung", type="scripted", interval=0.02, timeout=0.3, init_state="up"),
        "fast": CheckConfig(name="fast", type="scripted", interval=0.02, timeout=0.3),
    }
    changes: list[tuple[str, bool, str]] = []
    runner = CheckRunner(checks, {"scripted": scripted_type("scripted", behaviour)}, lambda *a: changes.append(a))
    runner.start()
    await asyncio.sleep(0.2)
    # The fast check ran on its own schedule while the hung one was still inside its first probe.
    assert behaviour["fast"]["runs"] >= 5
    assert behaviour["hung"]["runs"] == 1
    assert changes == [("fast", True, "run 1")]
    await asyncio.sleep(0.2)
    await runner.stop()
    assert ("hung", False, "timeout after 0.3 s") in changes
    assert runner.states["hung"].up is False
    assert runner.tracked("fast", -20) == Tracked("fast", -20, True, None)


async def test_runner_counts_a_raising_plugin_as_failing() -> None:
    behaviour: dict[str, Any] = {"c": {"raise": True, "ok": True}}
    checks = {"c": CheckConfig(name="c", type="scripted", interval=0.01, fall=2, init_state="up")}
    changes: list[tuple[str, bool, str]] = []

    async def on_change(name: str, up: bool, detail: str) -> None:
        changes.append((name, up, detail))

    runner = CheckRunner(checks, {"scripted": scripted_type("scripted", behaviour)}, on_change)
    runner.start()
    await asyncio.sleep(0.1)
    await runner.stop()
    assert changes == [("c", False, "plugin test_plugin raised RuntimeError: boom")]


async def test_runner_fall_rise_end_to_end_and_stop_stops() -> None:
    behaviour: dict[str, Any] = {"c": {"ok": False}}
    checks = {"c": CheckConfig(name="c", type="scripted", interval=0.01, rise=3, init_state="down")}
    changes: list[tuple[str, bool, str]] = []
    runner = CheckRunner(checks, {"scripted": scripted_type("scripted", behaviour)}, lambda *a: changes.append(a))
    runner.start()
    await asyncio.sleep(0.05)
    assert changes == []
    behaviour["c"]["ok"] = True
    await asyncio.sleep(0.1)
    assert changes[0][:2] == ("c", True)
    await runner.stop()
    runs = behaviour["c"]["runs"]
    await asyncio.sleep(0.05)
    assert behaviour["c"]["runs"] == runs


async def test_runner_reports_every_probe_with_its_duration() -> None:
    behaviour: dict[str, Any] = {"c": {"ok": True}}
    checks = {"c": CheckConfig(name="c", type="scripted", interval=0.01, init_state="up")}
    probes: list[tuple[str, float, bool]] = []
    runner = CheckRunner(
        checks,
        {"scripted": scripted_type("scripted", behaviour)},
        lambda *a: None,
        on_probe=lambda *a: probes.append(a),
    )
    runner.start()
    await asyncio.sleep(0.05)
    behaviour["c"]["ok"] = False
    await asyncio.sleep(0.05)
    await runner.stop()
    assert {name for name, _, _ in probes} == {"c"}
    assert all(seconds >= 0 for _, seconds, _ in probes)
    assert (True in {ok for *_, ok in probes}) and (False in {ok for *_, ok in probes})


def test_runner_rejects_unknown_type() -> None:
    with pytest.raises(ValueError, match="unknown check type.*nope"):
        CheckRunner({"c": CheckConfig(name="c", type="nope")}, {}, lambda *a: None)


# -- fast_interval (HAProxy's fastinter) -------------------------------------------------------


@pytest.mark.parametrize(
    ("fast", "up", "last_ok", "expected"),
    [
        (0.1, True, False, 0.1),  # up, failed, fall not reached yet: confirm quickly
        (0.1, True, True, 2.0),  # up and fine: steady-state probing
        (0.1, False, False, 2.0),  # fall reached, the check is down: back to the interval
        (0.1, False, True, 2.0),  # down, rising: the brief's fastinter is for the fall side only
        (None, True, False, 2.0),  # no fast_interval configured
    ],
)
def test_next_delay(fast: float | None, up: bool, last_ok: bool, expected: float) -> None:
    check = CheckConfig(name="c", type="t", interval=2.0, fast_interval=fast)
    assert next_delay(check, up, last_ok) == expected


async def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll ``condition`` on the running loop; a generous bound, not a timing assertion."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)
    return True


async def test_fast_interval_confirms_a_failure_before_the_next_interval() -> None:
    behaviour: dict[str, Any] = {"c": {"ok": False}}
    # Without fast_interval the second of three failures would come 60 s after the first.
    checks = {"c": CheckConfig(name="c", type="scripted", interval=60, fast_interval=0.01, fall=3, init_state="up")}
    changes: list[tuple[str, bool, str]] = []
    runner = CheckRunner(checks, {"scripted": scripted_type("scripted", behaviour)}, lambda *a: changes.append(a))
    runner.start()
    try:
        assert await wait_for(lambda: bool(changes))
        assert changes == [("c", False, "run 3")]
        await asyncio.sleep(0.05)
        assert behaviour["c"]["runs"] == 3, "once down, probing is back at the 60 s interval"
    finally:
        await runner.stop()


async def test_a_probe_that_ignores_cancellation_is_not_started_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checks_module, "CANCEL_GRACE", 0.02)
    release = asyncio.Event()
    runs = 0

    async def stubborn() -> ProbeResult:
        nonlocal runs
        runs += 1
        while not release.is_set():
            with contextlib.suppress(asyncio.CancelledError):
                await release.wait()
        return ProbeResult(ok=True, detail="finally")

    kind = CheckType(name="stubborn", validate=_no_keys, create=lambda check: stubborn, plugin="test_plugin")
    checks = {"c": CheckConfig(name="c", type="stubborn", interval=0.01, timeout=0.02, fall=2, init_state="up")}
    changes: list[tuple[str, bool, str]] = []
    runner = CheckRunner(checks, {"stubborn": kind}, lambda *a: changes.append(a))
    runner.start()
    try:
        # Before, the runner waited for the probe forever and the check stayed up.
        assert await wait_for(lambda: bool(changes))
        assert changes == [("c", False, "the previous run is still hung; not started again")]
        assert runs == 1
        release.set()
        assert await wait_for(lambda: runs >= 2), "started again once the hung run ended"
    finally:
        release.set()
        await runner.stop()


async def test_each_result_is_logged_at_debug_only(caplog: pytest.LogCaptureFixture) -> None:
    behaviour: dict[str, Any] = {"c": {"ok": True}}
    checks = {"c": CheckConfig(name="c", type="scripted", interval=0.01)}
    runner = CheckRunner(checks, {"scripted": scripted_type("scripted", behaviour)}, lambda *a: None)
    with caplog.at_level(logging.DEBUG, logger="hafm.shell.checks"):
        runner.start()
        await wait_for(lambda: behaviour["c"].get("runs", 0) >= 3)
        await runner.stop()
    records = [r for r in caplog.records if r.name == "hafm.shell.checks"]
    assert {r.levelno for r in records} == {logging.DEBUG}
    assert records[0].getMessage() == "check c: ok (run 1)"


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("0", "check.c.fast_interval: 0 is out of range 0.01..86400"),
        ('"1s"', "check.c.fast_interval: expected a number, got string '1s'"),
    ],
)
def test_fast_interval_is_validated_like_interval(tmp_path: Path, value: str, error: str) -> None:
    path = tmp_path / "hafm.toml"
    head = '[global]\ninclude = []\nplugin_dirs = []\n[vrrp_instance.VI_1]\ninterface = "eth0"\n'
    head += 'virtual_router_id = 51\nvirtual_ipaddress = ["198.51.100.100/24"]\n'
    path.write_text(head + f'[check.c]\ntype = "script"\nscript = "/bin/true"\nfast_interval = {value}\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.messages == [f"{path}: {error}"]
    path.write_text(head + '[check.c]\ntype = "script"\nscript = "/bin/true"\nfast_interval = 0.25\n')
    assert load_config(path).checks["c"].fast_interval == 0.25
