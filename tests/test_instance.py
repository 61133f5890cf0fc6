"""The VRRP state machine driven on a fake clock and a fake wire (see helpers.Cluster)."""

import ipaddress

import pytest

from hafm.config.model import Authentication
from hafm.errors import DropReason
from hafm.vrrp import actions as act
from hafm.vrrp import events as ev
from hafm.vrrp.codec import Advertisement
from hafm.vrrp.instance import VrrpInstance
from hafm.vrrp.state import State
from hafm.vrrp.timers import Timer

from .helpers import VIP, VIP6, Cluster, instance_config

A_ADDR, B_ADDR, C_ADDR = "198.51.100.1", "198.51.100.2", "198.51.100.3"
SKEW_90 = (256 - 90) / 256
SKEW_100 = (256 - 100) / 256
MDI_90 = 3 * 1 + SKEW_90


def classic(**a_overrides: object) -> Cluster:
    """A prio 100 MASTER, B prio 90 BACKUP, v2, advert_int 1, both started at t=0."""
    cluster = Cluster()
    cluster.add("A", A_ADDR, priority=100, state="MASTER", **a_overrides)
    cluster.add("B", B_ADDR, priority=90, state="BACKUP")
    cluster.start("A")
    cluster.start("B")
    cluster.run_for(10)
    return cluster


def test_classic_startup_only_a_holds_the_vip() -> None:
    cluster = classic()
    assert cluster.masters() == ["A"]
    assert cluster.vip_holders() == ["A"]
    assert cluster["B"].state is State.BACKUP
    # `state MASTER` claims after one advert interval + skew, not a full Master_Down_Interval.
    assert cluster.became("A", State.MASTER) == pytest.approx(1 + SKEW_100)


def test_master_shutdown_backup_takes_over_after_skew_time() -> None:
    cluster = classic()
    cluster.feed("A", ev.Shutdown())
    assert cluster["A"].state is State.STOP
    assert cluster["A"].sent[-1] == (10.0, 0), "a stopping master announces priority 0"
    assert not cluster["A"].holds_vips
    cluster.run_for(5)
    assert cluster.became("B", State.MASTER) == pytest.approx(10 + SKEW_90)
    assert cluster.vip_holders() == ["B"]
    assert "resigned (priority 0 advert)" in cluster["B"].transitions[-1][3]


def test_master_silent_backup_takes_over_after_master_down_interval() -> None:
    cluster = classic()
    last_advert = cluster["A"].sent[-1][0]
    cluster.kill("A")
    cluster.run_for(10)
    assert cluster.became("B", State.MASTER) == pytest.approx(last_advert + MDI_90)
    reason = cluster["B"].transitions[-1][3]
    assert reason == f"master down timer expired; last master {A_ADDR} prio 100"


def test_returning_master_preempts() -> None:
    cluster = classic()
    cluster.feed("A", ev.Shutdown())
    cluster.run_for(5)
    assert cluster.masters() == ["B"]
    cluster.start("A")
    cluster.run_for(5)
    assert cluster.masters() == ["A"]
    assert cluster.vip_holders() == ["A"]
    assert cluster["B"].transitions[-1][1:3] == (State.MASTER, State.BACKUP)
    assert "higher priority advert from 198.51.100.1 prio 100" in cluster["B"].transitions[-1][3]
    assert cluster["A"].split_brains == [], "preempting B is not a split brain"
    assert cluster["A"].transitions[-1][3] == "preempting lower priority master 198.51.100.2 prio 90"


def test_nopreempt_returning_node_does_not_take_the_vip_back() -> None:
    cluster = classic(nopreempt=True)
    cluster.feed("A", ev.Shutdown())
    cluster.run_for(5)
    cluster.start("A")
    cluster.run_for(30)
    assert cluster.masters() == ["B"]
    assert cluster["A"].state is State.BACKUP


def test_lower_priority_advert_in_backup_with_preempt_does_not_reset_the_timer() -> None:
    inst = VrrpInstance(instance_config(priority=100))
    inst.handle(ev.Startup(primary_address=ipaddress.ip_address(A_ADDR)), 0.0)
    low = Advertisement(version=2, vrid=51, priority=90, advert_int=1, addresses=(), auth_type=1, auth_data=b"1111")
    assert inst.handle(ev.AdvertReceived(advert=low, source=ipaddress.ip_address(B_ADDR)), 1.0) == []
    high = Advertisement(version=2, vrid=51, priority=110, advert_int=1, addresses=(), auth_type=1, auth_data=b"1111")
    actions = inst.handle(ev.AdvertReceived(advert=high, source=ipaddress.ip_address(B_ADDR)), 1.0)
    assert actions == [act.SetTimer(timer=Timer.MASTER_DOWN, deadline=pytest.approx(1.0 + 3 + SKEW_100))]


def test_equal_priority_advert_in_backup_is_valid() -> None:
    inst = VrrpInstance(instance_config(priority=100))
    inst.handle(ev.Startup(primary_address=ipaddress.ip_address(B_ADDR)), 0.0)
    same = Advertisement(version=2, vrid=51, priority=100, advert_int=1, addresses=(), auth_type=1, auth_data=b"1111")
    actions = inst.handle(ev.AdvertReceived(advert=same, source=ipaddress.ip_address(A_ADDR)), 2.0)
    assert actions == [act.SetTimer(timer=Timer.MASTER_DOWN, deadline=pytest.approx(2.0 + 3 + SKEW_100))]


def test_tie_break_between_masters_goes_to_the_higher_address() -> None:
    cluster = Cluster()
    cluster.add("A", A_ADDR, priority=100)
    cluster.add("B", B_ADDR, priority=100)
    cluster["A"].linked = cluster["B"].linked = False  # partitioned: both become Master
    cluster.start("A")
    cluster.start("B")
    cluster.run_for(5)
    assert sorted(cluster.masters()) == ["A", "B"]
    cluster["A"].linked = cluster["B"].linked = True
    cluster.run_for(3)
    assert cluster.masters() == ["B"], "198.51.100.2 > 198.51.100.1"
    assert "equal priority advert from higher address 198.51.100.2" in cluster["A"].transitions[-1][3]
    assert cluster["B"].split_brains, "B saw the other master"


def test_address_owner_is_master_at_once() -> None:
    cluster = Cluster()
    cluster.add("A", A_ADDR, priority=255)
    cluster.start("A")
    assert cluster["A"].state is State.MASTER
    assert cluster["A"].holds_vips
    cluster.feed("A", ev.PriorityChanged(priority=50))
    assert cluster["A"].instance.priority == 255, "tracking never changes the owner"


def test_three_nodes_highest_live_one_wins() -> None:
    cluster = Cluster()
    for name, addr, prio in (("A", A_ADDR, 100), ("B", B_ADDR, 90), ("C", C_ADDR, 80)):
        cluster.add(name, addr, priority=prio)
        cluster.start(name)
    cluster.run_for(10)
    assert cluster.masters() == ["A"]
    cluster.kill("A")
    cluster.run_for(10)
    assert cluster.masters() == ["B"]
    cluster.kill("B")
    cluster.run_for(10)
    assert cluster.masters() == ["C"]
    assert cluster.vip_holders().count("C") == 1


def test_v3_skew_and_master_down_use_the_learned_interval() -> None:
    cluster = Cluster()
    cluster.add("A", A_ADDR, priority=100, version=3, advert_int=0.1, state="MASTER")
    cluster.add("B", B_ADDR, priority=90, version=3, advert_int=1.0)  # B configured slower
    cluster.start("A")
    cluster.start("B")
    cluster.run_for(5)
    assert cluster.masters() == ["A"]
    assert cluster["B"].instance.master_adver_interval == pytest.approx(0.1)
    last = cluster["A"].sent[-1][0]
    cluster.kill("A")
    cluster.run_for(5)
    assert cluster.became("B", State.MASTER) == pytest.approx(last + 3 * 0.1 + SKEW_90 * 0.1)


def test_v3_shutdown_takeover_after_v3_skew_time() -> None:
    cluster = Cluster()
    cluster.add("A", A_ADDR, priority=100, version=3, advert_int=0.1, state="MASTER")
    cluster.add("B", B_ADDR, priority=90, version=3, advert_int=0.1)
    cluster.start("A")
    cluster.start("B")
    cluster.run_for(5)
    cluster.feed("A", ev.Shutdown())
    cluster.run_for(1)
    assert cluster.became("B", State.MASTER) == pytest.approx(5 + SKEW_90 * 0.1)


def test_v3_ipv6() -> None:
    cluster = Cluster()
    cluster.add("A", "fe80::1", priority=100, version=3, virtual_ipaddress=(VIP6,), state="MASTER")
    cluster.add("B", "fe80::2", priority=90, version=3, virtual_ipaddress=(VIP6,))
    cluster.start("A")
    cluster.start("B")
    cluster.run_for(5)
    assert cluster.masters() == ["A"]
    cluster.kill("A")
    cluster.run_for(5)
    assert cluster.masters() == ["B"]


def test_link_down_on_master_goes_to_fault_and_backup_takes_over() -> None:
    cluster = classic()
    cluster["A"].linked = False
    cluster.feed("A", ev.LinkChanged(interface="eth0", up=False))
    assert cluster["A"].state is State.FAULT
    assert not cluster["A"].holds_vips
    assert Timer.ADVERT not in cluster["A"].timers, "no adverts in Fault"
    assert cluster["A"].transitions[-1][3] == "interface eth0 down"
    cluster.run_for(10)
    assert cluster.masters() == ["B"]
    cluster["A"].linked = True
    cluster.feed("A", ev.LinkChanged(interface="eth0", up=True))
    assert cluster["A"].state is State.BACKUP
    assert cluster["A"].transitions[-1][3] == "interface eth0 up"
    cluster.run_for(10)
    assert cluster.masters() == ["A"], "preempts after recovery"


def test_fault_needs_every_cause_cleared() -> None:
    cluster = classic()
    cluster.feed("A", ev.LinkChanged(interface="eth1", up=False))
    cluster.feed("A", ev.FaultChanged(cause="check gw down", active=True))
    cluster.feed("A", ev.LinkChanged(interface="eth1", up=True))
    assert cluster["A"].state is State.FAULT
    cluster.feed("A", ev.FaultChanged(cause="check gw down", active=False))
    assert cluster["A"].state is State.BACKUP


def test_startup_while_faulty() -> None:
    cluster = Cluster()
    cluster.add("A", A_ADDR)
    cluster.feed("A", ev.LinkChanged(interface="eth0", up=False))
    cluster.start("A")
    assert cluster["A"].state is State.FAULT
    assert not cluster["A"].timers


def test_priority_drop_without_resign_waits_master_down_interval() -> None:
    cluster = classic()
    cluster.feed("A", ev.PriorityChanged(priority=80, explanation="base 100, tomcat down -20 → 80"))
    cluster.run_for(10)
    assert cluster.masters() == ["B"]
    took_over = cluster.became("B", State.MASTER)
    # B discards A's prio-80 adverts; its timer runs out ~Master_Down_Interval after A's last prio-100 advert.
    assert 10 + MDI_90 - 1 <= took_over <= 10 + MDI_90
    assert cluster["A"].state is State.BACKUP
    assert cluster["A"].instance.priority == 80


def test_resign_below_hands_over_after_skew_time() -> None:
    cluster = classic(resign_below=90)
    cluster.feed("A", ev.PriorityChanged(priority=80, explanation="tomcat down"))
    assert cluster["A"].state is State.BACKUP
    assert cluster["A"].sent[-1] == (10.0, 0)
    assert "priority 80 fell below resign_below 90 (tomcat down)" in cluster["A"].transitions[-1][3]
    cluster.run_for(10)
    assert cluster.became("B", State.MASTER) == pytest.approx(10 + SKEW_90)
    assert cluster.masters() == ["B"], "A (80) does not preempt B (90): no flap"


def test_resign_below_alone_does_not_flap() -> None:
    cluster = Cluster()
    cluster.add("A", A_ADDR, priority=100, resign_below=90)
    cluster.start("A")
    cluster.run_for(10)
    cluster.feed("A", ev.PriorityChanged(priority=80))
    cluster.run_for(30)
    assert cluster.masters() == ["A"], "nobody else: back to Master once, then stays"
    assert [t[2] for t in cluster["A"].transitions].count(State.MASTER) == 2


def test_preempt_delay_tolerates_a_lower_master_for_a_while() -> None:
    cluster = classic()
    cluster.feed("A", ev.Shutdown())
    cluster.run_for(5)
    cluster.restart("A", preempt_delay=5.0, state="BACKUP")
    cluster.run_for(4)
    assert cluster.masters() == ["B"], "still within preempt_delay"
    cluster.run_for(6)
    assert cluster.masters() == ["A"]


def test_adverts_do_not_drift() -> None:
    cluster = Cluster()
    cluster.add("A", A_ADDR, priority=255)
    cluster.start("A")
    cluster.run_for(100.5)
    times = [t for t, _ in cluster["A"].sent]
    assert times == pytest.approx([float(i) for i in range(101)])


def test_late_timer_schedules_from_the_previous_deadline() -> None:
    inst = VrrpInstance(instance_config(priority=255))
    actions = inst.handle(ev.Startup(primary_address=ipaddress.ip_address(A_ADDR)), 0.0)
    assert act.SetTimer(timer=Timer.ADVERT, deadline=1.0) in actions
    late = inst.handle(ev.TimerFired(timer=Timer.ADVERT), 1.03)
    assert act.SetTimer(timer=Timer.ADVERT, deadline=2.0) in late


def test_garp_bursts_on_becoming_master() -> None:
    cluster = Cluster()
    cluster.add("A", A_ADDR, priority=255, garp_master_delay=5, garp_master_repeat=3, garp_master_refresh=20)
    cluster.start("A")
    cluster.run_for(45)
    assert cluster["A"].garps == [(0.0, 3), (5.0, 3), (20.0, 1), (40.0, 1)]


@pytest.mark.parametrize(
    ("advert_kwargs", "source", "config", "reason"),
    [
        (dict(auth_type=1, auth_data=b"wrong"), B_ADDR, {}, DropReason.AUTH_FAILURE),
        (dict(auth_type=0, auth_data=b""), B_ADDR, {}, DropReason.AUTH_TYPE_MISMATCH),
        (dict(auth_type=1, auth_data=b"1111", advert_int=2), B_ADDR, {}, DropReason.BAD_ADVERT_INT),
        (dict(auth_type=1, auth_data=b"1111"), A_ADDR, {}, DropReason.OWN_ADVERT),
        (
            dict(auth_type=1, auth_data=b"1111"),
            C_ADDR,
            {"unicast_peer": (ipaddress.ip_address(B_ADDR),)},
            DropReason.UNKNOWN_PEER,
        ),
        (dict(auth_type=1, auth_data=b"1111"), B_ADDR, {"version": 3}, DropReason.VERSION_MISMATCH),
    ],
)
def test_instance_level_drops(advert_kwargs: dict, source: str, config: dict, reason: DropReason) -> None:
    inst = VrrpInstance(instance_config(**config))
    inst.handle(ev.Startup(primary_address=ipaddress.ip_address(A_ADDR)), 0.0)
    fields = dict(version=2, vrid=51, priority=200, advert_int=1, addresses=())
    fields.update(advert_kwargs)
    actions = inst.handle(ev.AdvertReceived(advert=Advertisement(**fields), source=ipaddress.ip_address(source)), 1)
    assert len(actions) == 1
    assert isinstance(actions[0], act.DropAdvert)
    assert actions[0].reason is reason
    assert inst.state is State.BACKUP


def test_no_auth_instance_accepts_no_auth_adverts() -> None:
    cluster = Cluster()
    cluster.add("A", A_ADDR, priority=100, authentication=None)
    cluster.add("B", B_ADDR, priority=90, authentication=None)
    cluster.start("A")
    cluster.start("B")
    cluster.run_for(10)
    assert cluster.masters() == ["A"]
    assert not cluster["B"].drops


def test_wrong_password_peer_cannot_disturb() -> None:
    cluster = Cluster()
    cluster.add("A", A_ADDR, priority=100)
    cluster.add("B", B_ADDR, priority=200, authentication=Authentication(auth_pass="bad"))
    cluster.start("A")
    cluster.run_for(5)
    cluster.start("B")
    cluster.run_for(10)
    assert cluster["A"].state is State.MASTER, "A ignores B's adverts"
    assert {d.reason for d in cluster["A"].drops} == {DropReason.AUTH_FAILURE}


def test_backup_shutdown_is_silent() -> None:
    cluster = classic()
    sent = len(cluster["B"].sent)
    cluster.feed("B", ev.Shutdown())
    assert cluster["B"].state is State.STOP
    assert len(cluster["B"].sent) == sent
    assert cluster["B"].instance.handle(ev.Startup(primary_address=ipaddress.ip_address(B_ADDR)), 20) == []


def test_priority_changed_rejects_out_of_range() -> None:
    with pytest.raises(ValueError, match="out of range"):
        ev.PriorityChanged(priority=0)


def test_split_brain_is_one_episode_and_the_winner_reannounces() -> None:
    cluster = Cluster()
    cluster.add("A", A_ADDR, priority=100)
    cluster.add("B", B_ADDR, priority=90)
    cluster["A"].linked = cluster["B"].linked = False
    cluster.start("A")
    cluster.start("B")
    cluster.run_for(5)
    assert sorted(cluster.masters()) == ["A", "B"]
    garps_before = len(cluster["A"].garps)
    cluster["A"].linked = cluster["B"].linked = True
    cluster.run_for(3)
    assert cluster.masters() == ["A"]
    assert [(s.peer, s.peer_priority) for s in cluster["A"].split_brains] == [(ipaddress.ip_address(B_ADDR), 90)]
    assert cluster["B"].split_brains == [], "only the Master that stays counts it"
    assert len(cluster["A"].garps) > garps_before, "the winner re-announces the VIP"
    # A second partition later is a new episode.
    cluster["A"].linked = cluster["B"].linked = False
    cluster.run_for(10)
    cluster["A"].linked = cluster["B"].linked = True
    cluster.run_for(3)
    assert len(cluster["A"].split_brains) == 2


def test_sync_group_backup_makes_a_master_step_down() -> None:
    cluster = classic()
    cluster.feed("A", ev.SyncGroupBackup(group="G1", member="VI_2"))
    assert cluster["A"].state is State.BACKUP
    assert cluster["A"].transitions[-1][3] == "sync group G1: VI_2 went BACKUP"
    assert cluster["A"].sent[-1] == (10.0, 0), "steps down with a priority-0 advert"
    cluster.feed("B", ev.SyncGroupBackup(group="G1", member="VI_2"))
    assert cluster["B"].state is State.BACKUP, "a Backup ignores it"


def test_a_flood_of_lower_priority_masters_is_answered_at_most_once_per_interval() -> None:
    """Each answer is an advert plus a GARP per VIP: forged adverts must not multiply our traffic."""
    instance = VrrpInstance(instance_config(priority=100))
    instance.handle(ev.Startup(primary_address=ipaddress.ip_address(A_ADDR)), 0.0)
    instance.handle(ev.TimerFired(timer=Timer.MASTER_DOWN), 4.0)
    assert instance.state is State.MASTER
    lower = Advertisement(
        version=2, vrid=51, priority=90, advert_int=1, addresses=(VIP.address.ip,), auth_type=1, auth_data=b"1111"
    )
    answers = 0
    for i in range(1000):  # 1000 adverts in half a second
        actions = instance.handle(ev.AdvertReceived(advert=lower, source=ipaddress.ip_address(B_ADDR)), 5.0 + i / 2000)
        answers += sum(isinstance(a, act.SendGratuitous) for a in actions)
    assert answers == 1
    actions = instance.handle(ev.AdvertReceived(advert=lower, source=ipaddress.ip_address(B_ADDR)), 6.5)
    assert any(isinstance(a, act.SendGratuitous) for a in actions), "answered again after an interval"
