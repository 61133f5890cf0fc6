"""What the VRRP sockets hold, as coordinator events on the loop's clock.

Packets are read late on purpose (see :mod:`hafm.shell.sockets`), so each event is handed to
the coordinator at its kernel arrival time, converted from the wall clock to the loop's
monotonic clock.  The conversion is bounded on both sides: never before the last time the
coordinator was given (its clock must not go back) and never after now, so a wall-clock step
between arrival and reading costs at most the time the packet waited.

A stable Master sends the same bytes every interval: a run of identical packets for one VRID
becomes one event with a ``count``, at the arrival of the last of them; what the earlier ones
would have done (push the Master_Down timer back) the last one does.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass

from hafm.errors import MalformedAdvert
from hafm.shell.sockets import Received
from hafm.vrrp import coordinator as co

Timed = tuple[co.CoordinatorEvent, float]  # an event and the loop time it happened at


def to_loop_time(arrival: float, *, wall_now: float, loop_now: float, floor: float) -> float:
    """``arrival`` (wall clock) on the loop's clock, within [``floor``, ``loop_now``]."""
    if arrival <= 0.0:  # no timestamp: it arrived at the latest now
        return loop_now
    return min(loop_now, max(floor, loop_now - (wall_now - arrival)))


@dataclass
class _Run:
    packet: Received | MalformedAdvert
    count: int
    at: float


def events_from(
    packets: Iterable[tuple[float, Received | MalformedAdvert]],
    *,
    absorbed: Iterable[tuple[float, Received, int]] = (),
    interface: str,
    family: int,
    wall_now: float,
    loop_now: float,
    floor: float,
) -> list[Timed]:
    """Events for ``packets`` (arrival, packet) read from one socket, runs folded, in order of time.

    ``absorbed`` are (newest arrival, packet, copies) the kernel kept out of the socket
    (:mod:`hafm.shell.ebpf`), read before the socket was.
    """
    found: list[_Run] = []
    runs: dict[int, _Run] = {}  # VRID -> its latest run
    for arrival, packet, copies in itertools.chain(absorbed, ((a, p, 1) for a, p in packets)):
        at = to_loop_time(arrival, wall_now=wall_now, loop_now=loop_now, floor=floor)
        if isinstance(packet, MalformedAdvert):
            found.append(_Run(packet, copies, at))
            continue
        vrid = packet.payload[1] if len(packet.payload) > 1 else -1
        run = runs.get(vrid)
        if run is not None and run.packet == packet:
            run.count += copies
            run.at = max(run.at, at)
            continue
        runs[vrid] = run = _Run(packet, copies, at)
        found.append(run)
    found.sort(key=lambda run: run.at)
    return [(_event(run, interface, family), run.at) for run in found]


def _event(run: _Run, interface: str, family: int) -> co.CoordinatorEvent:
    packet = run.packet
    if isinstance(packet, MalformedAdvert):
        return co.PacketRejected(interface=interface, reason=packet.reason, detail=packet.detail)
    return co.PacketReceived(
        interface=interface,
        family=family,
        payload=packet.payload,
        source=packet.source,
        destination=packet.destination,
        ttl=packet.ttl,
        count=run.count,
    )
