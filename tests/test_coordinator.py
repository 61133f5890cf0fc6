"""The coordinator: sync groups, tracking, demultiplexing, drops, counters, maintenance — without root.

Whole daemons play on a fake segment (tests/helpers.py ``Segment``) with a fake clock, so what the
netns tests prove for sync groups and tracking is proved here in milliseconds.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
from pathlib import Path
from typing import Any

import pytest

from hafm.config.model import CheckConfig, Config, SyncGroupConfig, TrackCheck, Vip
from hafm.errors import DropReason
from hafm.vrrp import actions as act
from hafm.vrrp import coordinator as co
from hafm.vrrp import events as ev
from hafm.vrrp.codec import Advertisement, encode
from hafm.vrrp.state import State
from tests.helpers import MULTICAST_V4, Segment, instance_config

A, B = "198.51.100.1", "198.51.100.2"
FRONT = Vip(address=ipaddress.ip_interface("198.51.100.100/24"))
BACK = Vip(address=ipaddress.ip_interface("198.51.100.101/24"))


def group_config(priority: int, *, check_weight: int | None = None, init_state: str = "up") -> Config:
    """VI_1 (VRID 51) and VI_2 (VRID 52) in sync group G1; VI_1 tracks check ``app`` when a weight is given."""
    track = (TrackCheck(name="app"),) if check_weight is not None else ()
    vi_1 = instance_config(
        name="VI_1", virtual_router_id=51, priority=priority, virtual_ipaddress=(FRONT,), track_check=track
    )
    vi_2 = instance_config(name="VI_2", virtual_router_id=52, priority=priority, virtual_ipaddress=(BACK,))
    checks = {}
    if check_weight is not None:
        checks["app"] = CheckConfig(name="app", type="file", weight=check_weight, init_state=init_state)  # type: ignore[arg-type]
    return Config(
        path=Path("/etc/hafm.toml"),
        instances={"VI_1": vi_1, "VI_2": vi_2},
        checks=checks,
        sync_groups={"G1": SyncGroupConfig(name="G1", group=("VI_1", "VI_2"))},
    )


def single_config(priority: int = 100, **overrides: Any) -> Config:
    return Config(path=Path("/etc/hafm.toml"), instances={"VI_1": instance_config(priority=priority, **overrides)})


def pair(a: Config, b: Config) -> Segment:
    segment = Segment()
    segment.add("a", A, a)
    segment.add("b", B, b)
    segment.start("a")
    segment.run_for(0.1)
    segment.start("b")
    segment.run_for(5)
    return segment


def check(segment: Segment, node: str, up: bool, delta: int | None = None) -> None:
    segment.feed(node, co.CheckChanged(check="app", up=up, detail="test", delta=delta))


# -- sync groups ---------------------------------------------------------------------------------


def test_a_member_fault_moves_the_whole_group_and_it_comes_back() -> None:
    segment = pair(group_config(100, check_weight=0), group_config(90))
    assert segment["a"].vips == {"198.51.100.100", "198.51.100.101"}

    check(segment, "a", up=False)  # VI_1's own fault
    assert segment.state("a", "VI_1") is State.FAULT
    assert segment.state("a", "VI_2") is State.FAULT
    assert "VI_2: MASTER -> FAULT (sync group G1: VI_1 in FAULT)" in segment["a"].logs
    segment.run_for(4)
    assert segment["b"].vips == {"198.51.100.100", "198.51.100.101"} and not segment["a"].vips

    check(segment, "a", up=True)
    segment.run_for(5)
    assert segment.state("a", "VI_1") is State.MASTER and segment.state("a", "VI_2") is State.MASTER
    assert segment["a"].vips == {"198.51.100.100", "198.51.100.101"} and not segment["b"].vips


def test_a_value_check_fault_clears_without_a_feedback_loop() -> None:
    """Clearing a fault while the other member's sync-group fault is still queued must settle."""
    segment = pair(group_config(100, check_weight=0), group_config(90))
    check(segment, "a", up=True, delta=1)  # weight 0 and a non-zero value: FAULT
    assert segment.state("a", "VI_2") is State.FAULT
    check(segment, "a", up=True, delta=0)
    assert segment.state("a", "VI_1") is State.BACKUP and segment.state("a", "VI_2") is State.BACKUP
    assert not any("did not settle" in line for line in segment["a"].logs)


def test_link_down_faults_the_group() -> None:
    segment = pair(group_config(100), group_config(90))
    segment.feed("a", ev.LinkChanged(interface="eth0", up=False))
    assert {segment.state("a", n) for n in ("VI_1", "VI_2")} == {State.FAULT}
    segment.feed("a", ev.LinkChanged(interface="eth0", up=True))
    assert {segment.state("a", n) for n in ("VI_1", "VI_2")} == {State.BACKUP}


def test_tracking_penalty_is_shared_and_the_preempted_group_stays_together() -> None:
    """A's VI_1 drops to 80: B (90) preempts both; A's VI_2 (own 100) does not take VI_2 back."""
    segment = pair(group_config(100, check_weight=-20), group_config(90))
    check(segment, "a", up=False)
    vi_2 = segment["a"].coordinator.report("VI_2")
    assert vi_2.priority == 80 and "sync group G1: VI_1" in vi_2.explanation
    segment.run_for(30)  # many Master_Down_Intervals
    assert segment["b"].vips == {"198.51.100.100", "198.51.100.101"} and not segment["a"].vips
    assert segment.state("a", "VI_2") is State.BACKUP

    check(segment, "a", up=True)
    segment.run_for(5)
    assert segment["a"].vips == {"198.51.100.100", "198.51.100.101"} and not segment["b"].vips


def test_a_member_leaving_master_takes_the_others_along() -> None:
    """Preemption of one member only (B outranks A on VI_1 alone): A's VI_2 follows to BACKUP."""
    a = group_config(100)
    b_instances = dict(group_config(90).instances)
    b_instances["VI_1"] = instance_config(name="VI_1", virtual_router_id=51, priority=200, virtual_ipaddress=(FRONT,))
    b = Config(path=Path("/b.toml"), instances=b_instances, sync_groups=a.sync_groups)
    segment = Segment()
    segment.add("a", A, a)
    segment.start("a")
    segment.run_for(5)
    segment.add("b", B, b)
    segment.start("b")
    segment.run_for(5)  # B's VI_1 (200) preempts after its Master_Down_Interval
    assert "VI_2: MASTER -> BACKUP (sync group G1: VI_1 went BACKUP)" in segment["a"].logs


def test_member_hooks_come_before_the_group_hook() -> None:
    segment = pair(group_config(100, check_weight=0), group_config(90))
    segment["a"].hooks.clear()
    check(segment, "a", up=False)
    order = [(h.name, h.kwargs.get("instance") or h.kwargs.get("group")) for h in segment["a"].hooks]
    state_hooks = [o for o in order if o[0] in ("hafm_state_changed", "hafm_sync_group_state_changed")]
    assert state_hooks == [
        ("hafm_state_changed", "VI_1"),
        ("hafm_state_changed", "VI_2"),
        ("hafm_sync_group_state_changed", "G1"),
    ]


# -- demultiplexing and drops --------------------------------------------------------------------


def packet(advert: Advertisement, source: str = B, ttl: int = 255) -> co.PacketReceived:
    src = ipaddress.ip_address(source)
    payload = encode(advert, source=src, destination=MULTICAST_V4)
    return co.PacketReceived(interface="eth0", family=4, payload=payload, source=src, destination=MULTICAST_V4, ttl=ttl)


def advert(vrid: int = 51, priority: int = 90, auth: bytes = b"1111") -> Advertisement:
    return Advertisement(
        version=2,
        vrid=vrid,
        priority=priority,
        advert_int=1,
        addresses=(FRONT.address.ip,),
        auth_type=1,
        auth_data=auth,
    )


def started(config: Config | None = None) -> co.Coordinator:
    coordinator = co.Coordinator(config or single_config())
    coordinator.handle(co.Started(sources={"VI_1": ipaddress.ip_address(A)}, links={"eth0": True}), 0.0)
    return coordinator


def test_packets_are_routed_by_vrid_and_others_counted() -> None:
    coordinator = started()
    coordinator.handle(packet(advert(vrid=51)), 1.0)
    coordinator.handle(packet(advert(vrid=77)), 1.0)
    coordinator.handle(packet(advert(vrid=51), ttl=64), 1.0)
    report = coordinator.report("VI_1")
    assert report.counters.adverts_received == 1
    assert report.master == ipaddress.ip_address(B)
    assert coordinator.unrouted_drops == {DropReason.UNKNOWN_VRID: 1, DropReason.BAD_TTL: 1}


def test_a_forged_flood_is_counted_but_reported_a_bounded_number_of_times() -> None:
    coordinator = started()
    logs, hooks = 0, 0
    for i in range(20_000):
        source = str(ipaddress.ip_address("203.0.113.0") + (i % 250) + 1)
        outputs = coordinator.handle(packet(advert(auth=b"wrong"), source=source), 1.0 + i / 100_000)
        logs += sum(isinstance(o, co.Log) for o in outputs)
        hooks += sum(isinstance(o, co.CallHook) and o.name == "hafm_packet_dropped" for o in outputs)
    assert coordinator.report("VI_1").counters.drops == {DropReason.AUTH_FAILURE: 20_000}
    assert logs == 1 and hooks == 1


def test_drop_reports_resume_after_the_window_with_a_count() -> None:
    coordinator = started()
    for _ in range(5):
        coordinator.handle(packet(advert(auth=b"wrong")), 1.0)
    outputs = coordinator.handle(packet(advert(auth=b"wrong")), 1.0 + co.DROP_REPORT_WINDOW)
    lines = [o.message for o in outputs if isinstance(o, co.Log)]
    assert len(lines) == 1 and "and 4 more like it" in lines[0]


def test_identical_adverts_are_decoded_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real_decode = co.decode

    def counting_decode(*args: Any, **kwargs: Any) -> Advertisement:
        calls.append(1)
        return real_decode(*args, **kwargs)

    monkeypatch.setattr(co, "decode", counting_decode)
    coordinator = started()
    for second in range(1, 50):
        coordinator.handle(packet(advert()), float(second))
    assert len(calls) == 1
    assert coordinator.report("VI_1").counters.adverts_received == 49
    coordinator.handle(packet(advert(priority=91)), 50.0)  # a different advert is decoded
    assert len(calls) == 2


def test_a_folded_run_of_packets_counts_each_and_acts_once() -> None:
    coordinator = started()
    repeated = dataclasses.replace(packet(advert(priority=200)), count=5)
    outputs = coordinator.handle(repeated, 3.0)
    timers = [o.action for o in outputs if isinstance(o, co.Perform) and isinstance(o.action, act.SetTimer)]
    assert len(timers) == 1 and timers[0].deadline > 3.0, "one Master_Down re-arm, from the last arrival"
    assert coordinator.report("VI_1").counters.adverts_received == 5
    coordinator.handle(dataclasses.replace(packet(advert(auth=b"wrong")), count=7), 4.0)
    coordinator.handle(dataclasses.replace(packet(advert(vrid=77)), count=3), 4.0)
    assert coordinator.report("VI_1").counters.drops == {DropReason.AUTH_FAILURE: 7}
    assert coordinator.unrouted_drops == {DropReason.UNKNOWN_VRID: 3}


def test_send_failures_are_counted_and_warned_once_per_window() -> None:
    coordinator = started()
    warnings = []
    for i in range(100):
        failed = co.SendFailed(instance="VI_1", destination=MULTICAST_V4, error="Network is unreachable")
        warnings += [o for o in coordinator.handle(failed, 1.0 + i * 0.01) if isinstance(o, co.Log)]
    assert coordinator.report("VI_1").counters.send_errors == 100
    assert len(warnings) == 1 and warnings[0].level == logging.WARNING


# -- counters and status -------------------------------------------------------------------------


def test_counters_follow_a_failover() -> None:
    segment = pair(single_config(100), single_config(90))
    segment.run_for(5)
    a = segment["a"].coordinator.report("VI_1")
    b = segment["b"].coordinator.report("VI_1")
    assert a.state is State.MASTER and a.counters.became_master == 1
    assert a.counters.adverts_sent >= 5 and b.counters.adverts_received >= 4
    assert a.counters.gratuitous_sent == 10  # garp_master_repeat × one VIP, and again after garp_master_delay
    assert b.master == ipaddress.ip_address(A) and b.master_priority == 100
    segment.feed("a", ev.Shutdown())
    segment.run_for(1)
    assert segment.state("b", "VI_1") is State.MASTER
    assert segment["b"].coordinator.report("VI_1").reason.startswith("master 198.51.100.1 resigned")


# -- maintenance ---------------------------------------------------------------------------------


def test_maintenance_hands_over_at_once_and_holds_off_until_turned_off() -> None:
    segment = pair(single_config(100), single_config(90))
    segment.feed("a", co.MaintenanceChanged(instance="VI_1", on=True, reason="patching tomcat"))
    assert segment.state("a", "VI_1") is State.BACKUP
    segment.run_for(1)  # the priority-0 advert: B takes over after Skew_Time
    assert segment["b"].vips and not segment["a"].vips
    report = segment["a"].coordinator.report("VI_1")
    assert report.maintenance == "patching tomcat" and report.priority == 1
    segment.run_for(30)
    assert segment.state("a", "VI_1") is State.BACKUP

    segment.feed("a", co.MaintenanceChanged(instance="VI_1", on=False))
    segment.run_for(5)
    assert segment["a"].vips and not segment["b"].vips  # preempts back at priority 100


def test_a_node_in_maintenance_takes_the_vip_only_when_no_other_node_is_alive() -> None:
    segment = pair(single_config(100), single_config(90))
    segment.feed("b", co.MaintenanceChanged(instance=None, on=True))
    segment["a"].alive = False  # the only other node dies
    segment.run_for(5)
    assert segment.state("b", "VI_1") is State.MASTER
