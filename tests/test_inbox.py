"""hafm.shell.inbox: packets read late become events at their arrival, runs of repeats folded."""

import ipaddress

from hafm.errors import DropReason, MalformedAdvert
from hafm.shell.inbox import events_from, to_loop_time
from hafm.shell.sockets import Received
from hafm.vrrp import coordinator as co

MASTER = ipaddress.ip_address("198.51.100.1")
OTHER = ipaddress.ip_address("198.51.100.3")
GROUP = ipaddress.ip_address("224.0.0.18")


def advert(vrid: int, priority: int = 100, source: ipaddress.IPv4Address = MASTER) -> Received:
    return Received(payload=bytes([0x21, vrid, priority, 1]), source=source, destination=GROUP, ttl=255)


def events(packets, *, wall_now: float = 1000.0, loop_now: float = 50.0, floor: float = 0.0):
    return events_from(packets, interface="eth0", family=4, wall_now=wall_now, loop_now=loop_now, floor=floor)


def test_arrival_is_put_on_the_loop_clock() -> None:
    assert to_loop_time(999.0, wall_now=1000.0, loop_now=50.0, floor=0.0) == 49.0


def test_arrival_is_bounded_by_the_last_time_given_and_by_now() -> None:
    assert to_loop_time(900.0, wall_now=1000.0, loop_now=50.0, floor=48.5) == 48.5, "the clock never goes back"
    assert to_loop_time(1005.0, wall_now=1000.0, loop_now=50.0, floor=0.0) == 50.0, "never in the future"
    assert to_loop_time(0.0, wall_now=1000.0, loop_now=50.0, floor=0.0) == 50.0, "no timestamp: now"


def test_a_run_of_identical_adverts_is_one_event_at_the_last_arrival() -> None:
    same = advert(51)
    found = events([(997.0, same), (998.0, same), (999.0, same)])
    assert len(found) == 1
    event, at = found[0]
    assert isinstance(event, co.PacketReceived) and event.count == 3 and at == 49.0


def test_a_different_advert_for_the_vrid_ends_the_run_and_order_is_kept() -> None:
    found = events([(997.0, advert(51)), (998.0, advert(51, priority=0)), (999.0, advert(51))])
    assert [(e.payload[2], e.count, at) for e, at in found] == [(100, 1, 47.0), (0, 1, 48.0), (100, 1, 49.0)]


def test_runs_of_different_vrids_come_out_by_their_last_arrival() -> None:
    found = events([(996.0, advert(51)), (997.0, advert(52)), (999.0, advert(51))])
    assert [(e.payload[1], e.count, at) for e, at in found] == [(52, 1, 47.0), (51, 2, 49.0)]


def test_a_bad_ip_header_becomes_a_rejected_packet() -> None:
    bad = MalformedAdvert(DropReason.TOO_SHORT, "3 bytes")
    ((event, at),) = events([(999.5, bad)])
    assert event == co.PacketRejected(interface="eth0", reason=DropReason.TOO_SHORT, detail="3 bytes")
    assert at == 49.5
