"""A fake clock and a fake wire for driving several sans-IO VRRP instances (h11's ConnectionPair idea).

Adverts cross the real codec (encode → decode) so the instance tests also
exercise the wire format.  Everything runs in simulated time: a whole
failover plays in microseconds.
"""

from __future__ import annotations

import heapq
import ipaddress
import itertools
from dataclasses import dataclass, field, replace
from typing import Any

from hafm.config.model import Authentication, InstanceConfig, IPAddress, Vip
from hafm.vrrp import actions as act
from hafm.vrrp import events as ev
from hafm.vrrp.codec import decode, encode
from hafm.vrrp.instance import VrrpInstance
from hafm.vrrp.state import State
from hafm.vrrp.timers import Timer

VIP = Vip(address=ipaddress.ip_interface("198.51.100.100/24"))
VIP6 = Vip(address=ipaddress.ip_interface("2001:db8::100/64"))
MULTICAST_V4 = ipaddress.ip_address("224.0.0.18")
MULTICAST_V6 = ipaddress.ip_address("ff02::12")


def instance_config(**overrides: Any) -> InstanceConfig:
    """The classic VI_1: VRRPv2, VRID 51, PASS 1111, one VIP (override any field)."""
    base: dict[str, Any] = dict(
        name="VI_1",
        interface="eth0",
        virtual_router_id=51,
        priority=100,
        advert_int=1.0,
        version=2,
        authentication=Authentication(auth_pass="1111"),
        virtual_ipaddress=(VIP,),
    )
    base.update(overrides)
    if base["version"] == 3:
        base["authentication"] = overrides.get("authentication")
    return InstanceConfig(**base)


@dataclass
class Node:
    name: str
    address: IPAddress
    instance: VrrpInstance
    timers: dict[Timer, float] = field(default_factory=dict)
    holds_vips: bool = False
    alive: bool = True  # False: killed (silent, SIGKILL)
    linked: bool = True  # False: cable pulled, nothing in or out
    transitions: list[tuple[float, State, State, str]] = field(default_factory=list)
    sent: list[tuple[float, int]] = field(default_factory=list)  # (time, priority)
    drops: list[act.DropAdvert] = field(default_factory=list)
    split_brains: list[act.SplitBrain] = field(default_factory=list)
    garps: list[tuple[float, int]] = field(default_factory=list)

    @property
    def state(self) -> State:
        return self.instance.state


class Cluster:
    """Several instances on one simulated multicast segment, with a fake clock."""

    def __init__(self) -> None:
        self.now = 0.0
        self.nodes: dict[str, Node] = {}
        self._queue: list[tuple[float, int, str, Any]] = []
        self._seq = itertools.count()

    def add(self, name: str, address: str, **config: Any) -> Node:
        addr = ipaddress.ip_address(address)
        node = Node(name=name, address=addr, instance=VrrpInstance(instance_config(**config)))
        self.nodes[name] = node
        return node

    def __getitem__(self, name: str) -> Node:
        return self.nodes[name]

    # -- driving ------------------------------------------------------------

    def feed(self, name: str, event: ev.Event) -> None:
        node = self.nodes[name]
        self._apply(node, node.instance.handle(event, self.now))

    def start(self, name: str) -> None:
        node = self.nodes[name]
        if node.instance.state is State.STOP:  # a restart is a fresh process
            node.instance = VrrpInstance(node.instance.config)
            node.timers.clear()
            node.alive = True
        self.feed(name, ev.Startup(primary_address=node.address))

    def restart(self, name: str, **config: Any) -> None:
        node = self.nodes[name]
        node.instance = VrrpInstance(replace(node.instance.config, **config))
        node.timers.clear()
        node.alive = True
        node.holds_vips = False
        self.feed(name, ev.Startup(primary_address=node.address))

    def kill(self, name: str) -> None:
        """SIGKILL: the node goes silent; its VIP stays configured until it restarts."""
        node = self.nodes[name]
        node.alive = False
        node.timers.clear()

    def run_until(self, until: float) -> None:
        while True:
            due = self._next_due()
            if due is None or due[0] > until:
                break
            when, kind, name, payload = due
            self.now = when
            node = self.nodes[name]
            if kind == "timer":
                if node.alive and node.timers.get(payload) == when:
                    del node.timers[payload]
                    self._apply(node, node.instance.handle(ev.TimerFired(timer=payload), when))
            elif node.alive and node.linked:
                self._apply(node, node.instance.handle(payload, when))
        self.now = until

    def run_for(self, seconds: float) -> None:
        self.run_until(self.now + seconds)

    def masters(self) -> list[str]:
        return [n.name for n in self.nodes.values() if n.alive and n.state is State.MASTER]

    def vip_holders(self) -> list[str]:
        return [n.name for n in self.nodes.values() if n.holds_vips]

    def became(self, name: str, state: State) -> float:
        """Time of the last transition of ``name`` into ``state``."""
        times = [t for t, _, new, _ in self.nodes[name].transitions if new is state]
        assert times, f"{name} never became {state.value}"
        return times[-1]

    # -- internals ------------------------------------------------------------

    def _next_due(self) -> tuple[float, str, str, Any] | None:
        candidates: list[tuple[float, int, str, str, Any]] = []
        for node in self.nodes.values():
            for timer, when in node.timers.items():
                candidates.append((when, 1, "timer", node.name, timer))
        if self._queue:
            when, seq, name, event = self._queue[0]
            candidates.append((when, 0, "packet", name, event))
        if not candidates:
            return None
        when, _, kind, name, payload = min(candidates, key=lambda c: (c[0], c[1]))
        if kind == "packet":
            heapq.heappop(self._queue)
        return when, kind, name, payload

    def _apply(self, node: Node, actions: list[act.Action]) -> None:
        for action in actions:
            match action:
                case act.SetTimer(timer=timer, deadline=deadline):
                    node.timers[timer] = deadline
                case act.CancelTimer(timer=timer):
                    node.timers.pop(timer, None)
                case act.SendAdvert(advert=advert):
                    node.sent.append((self.now, advert.priority))
                    self._broadcast(node, advert)
                case act.AddVips():
                    node.holds_vips = True
                case act.RemoveVips():
                    node.holds_vips = False
                case act.SendGratuitous(repeat=repeat):
                    node.garps.append((self.now, repeat))
                case act.StateChanged(old=old, new=new, reason=reason):
                    node.transitions.append((self.now, old, new, reason))
                case act.DropAdvert():
                    node.drops.append(action)
                case act.SplitBrain():
                    node.split_brains.append(action)

    def _broadcast(self, sender: Node, advert: Any) -> None:
        if not sender.linked:
            return
        dest = MULTICAST_V4 if sender.address.version == 4 else MULTICAST_V6
        checksum_as_v2 = sender.instance.config.v3_checksum_as_v2
        data = encode(advert, source=sender.address, destination=dest, checksum_as_v2=checksum_as_v2)
        for node in self.nodes.values():
            if node is sender or not node.linked:
                continue
            received = decode(data, source=sender.address, destination=dest, ttl=255, checksum_as_v2=checksum_as_v2)
            event = ev.AdvertReceived(advert=received, source=sender.address)
            heapq.heappush(self._queue, (self.now, next(self._seq), node.name, event))


class Segment:
    """Several daemons' coordinators on one simulated segment, with a fake clock (a whole daemon each).

    Adverts cross the real codec; timers are the drivers' (a dict per instance); outputs
    other than instance actions are recorded per node for assertions.
    """

    def __init__(self) -> None:
        self.now = 0.0
        self.nodes: dict[str, SegmentNode] = {}
        self._queue: list[tuple[float, int, str, Any]] = []
        self._seq = itertools.count()

    def add(self, name: str, address: str, config: Any) -> SegmentNode:
        from hafm.vrrp.coordinator import Coordinator

        node = SegmentNode(name=name, address=ipaddress.ip_address(address), coordinator=Coordinator(config))
        self.nodes[name] = node
        return node

    def __getitem__(self, name: str) -> SegmentNode:
        return self.nodes[name]

    def feed(self, name: str, event: Any) -> None:
        node = self.nodes[name]
        self._apply(node, node.coordinator.handle(event, self.now))

    def start(self, name: str, links: dict[str, bool] | None = None) -> None:
        from hafm.vrrp.coordinator import Started

        node = self.nodes[name]
        sources = {instance: node.address for instance in node.coordinator.members}
        self.feed(name, Started(sources=sources, links=links or {"eth0": True}))

    def run_until(self, until: float) -> None:
        from hafm.vrrp.coordinator import InstanceTimerFired

        while True:
            candidates = [
                (when, 1, node.name, key) for node in self.nodes.values() for key, when in node.timers.items()
            ]
            if self._queue:
                when, _, name, event = self._queue[0]
                candidates.append((when, 0, name, event))
            if not candidates:
                break
            when, kind, name, payload = min(candidates, key=lambda c: (c[0], c[1]))
            if when > until:
                break
            self.now = when
            node = self.nodes[name]
            if kind == 1:
                del node.timers[payload]
                if node.alive:
                    instance, timer = payload
                    self.feed(name, InstanceTimerFired(instance=instance, timer=timer))
            else:
                heapq.heappop(self._queue)
                if node.alive:
                    self.feed(name, payload)
        self.now = until

    def run_for(self, seconds: float) -> None:
        self.run_until(self.now + seconds)

    def state(self, name: str, instance: str) -> State:
        return self.nodes[name].coordinator.members[instance].instance.state

    def _apply(self, node: SegmentNode, outputs: list[Any]) -> None:
        from hafm.vrrp import coordinator as co

        for output in outputs:
            match output:
                case co.Perform(instance=instance, action=action):
                    self._perform(node, instance, action)
                case co.CallHook():
                    node.hooks.append(output)
                case co.Log():
                    node.logs.append(output.message)

    def _perform(self, node: SegmentNode, instance: str, action: act.Action) -> None:
        from hafm.vrrp.coordinator import PacketReceived

        match action:
            case act.SetTimer(timer=timer, deadline=deadline):
                node.timers[(instance, timer)] = deadline
            case act.CancelTimer(timer=timer):
                node.timers.pop((instance, timer), None)
            case act.AddVips(vips=vips):
                node.vips |= {str(v.address.ip) for v in vips}
            case act.RemoveVips(vips=vips):
                node.vips -= {str(v.address.ip) for v in vips}
            case act.SendAdvert(advert=advert):
                if not node.alive:
                    return
                dest = MULTICAST_V4 if node.address.version == 4 else MULTICAST_V6
                data = encode(advert, source=node.address, destination=dest)
                config = node.coordinator.config.instances[instance]
                for other in self.nodes.values():
                    if other is node:
                        continue
                    packet = PacketReceived(
                        interface=config.interface,
                        family=config.family,
                        payload=data,
                        source=node.address,
                        destination=dest,
                        ttl=255,
                    )
                    heapq.heappush(self._queue, (self.now, next(self._seq), other.name, packet))


@dataclass
class SegmentNode:
    name: str
    address: IPAddress
    coordinator: Any
    timers: dict[tuple[str, Timer], float] = field(default_factory=dict)
    vips: set[str] = field(default_factory=set)
    hooks: list[Any] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)
    alive: bool = True

    def hook_calls(self, name: str) -> list[dict[str, Any]]:
        return [dict(h.kwargs) for h in self.hooks if h.name == name]
