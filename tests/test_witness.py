"""The witness policy (hafm.vrrp.witness through the coordinator) on a fake segment with a fake etcd and clock.

The fake etcd does what hafm.shell.witness promises the coordinator: a create-if-absent key per
VRID, released keys handed to the next waiting node, candidacies shown to the holder, and a lease
that lapses ``ttl`` after a node was cut from etcd or killed (reported to the node at its local deadline).
"""

from __future__ import annotations

import heapq
import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hafm.config.model import Config, Vip, WitnessConfig
from hafm.vrrp import coordinator as co
from hafm.vrrp import events as ev
from hafm.vrrp.constants import master_down_interval, skew_time
from hafm.vrrp.state import State
from hafm.vrrp.witness import WitnessAcquire, WitnessChanged, WitnessRelease, candidate_prefix, witness_key
from tests.helpers import Segment, SegmentNode, instance_config

A, B, ETCD = "198.51.100.1", "198.51.100.2", "198.51.100.60"
VIP = Vip(address=ipaddress.ip_interface("198.51.100.100/24"))
TTL = 3
LATENCY = 0.01  # one etcd round trip
KEY = "/hafm/default/4/51"


@dataclass(frozen=True)
class _Expire:
    """The lease of ``node`` lapses now: at etcd, and at the node's own deadline."""

    node: str


class WitnessSegment(Segment):
    """A :class:`Segment` with a fake etcd and partitions (node pairs, node to etcd)."""

    def __init__(self) -> None:
        super().__init__()
        self.holders: dict[str, str] = {}
        self.wanting: dict[str, dict[str, int | None]] = {}  # key -> {node: candidate priority}
        self.cut_from_etcd: set[str] = set()
        self.partitioned: set[frozenset[str]] = set()
        self.etcd_up = True
        self.holder_history: list[tuple[float, tuple[str, ...]]] = []
        self.expiring: set[str] = set()
        super().add("etcd", ETCD, Config(path=Path("/etc/hafm.toml")))

    # -- the wire --------------------------------------------------------------------------------

    def feed(self, name: str, event: Any) -> None:
        if name == "etcd":
            if isinstance(event, _Expire):
                self._expire(event.node)
            return
        if isinstance(event, co.PacketReceived):
            sender = next(n for n, node in self.nodes.items() if node.address == event.source)
            if frozenset({sender, name}) in self.partitioned:
                return
        super().feed(name, event)
        holders = tuple(sorted(n for n, node in self.nodes.items() if node.vips))
        if not self.holder_history or self.holder_history[-1][1] != holders:
            self.holder_history.append((self.now, holders))

    def _apply(self, node: SegmentNode, outputs: list[Any]) -> None:
        super()._apply(node, outputs)
        for output in outputs:
            if isinstance(output, WitnessAcquire):
                self.wanting.setdefault(output.key, {})[node.name] = output.candidate_priority
                self._try(node.name, output.key)
            elif isinstance(output, WitnessRelease):
                self.wanting.get(output.key, {}).pop(node.name, None)
                if self.holders.get(output.key) == node.name:
                    del self.holders[output.key]
                    self._hand_over(output.key)

    # -- the fake etcd ---------------------------------------------------------------------------

    def _reachable(self, name: str) -> bool:
        return self.etcd_up and name not in self.cut_from_etcd

    def _tell(self, name: str, key: str, **news: Any) -> None:
        instance = next(iter(self.nodes[name].coordinator.members))
        event = WitnessChanged(instance=instance, **news)
        heapq.heappush(self._queue, (self.now + LATENCY, next(self._seq), name, event))

    def _try(self, name: str, key: str) -> None:
        if not self._reachable(name):
            self._tell(name, key, held=False, reachable=False, detail="connection refused")
            return
        holder = self.holders.setdefault(key, name)
        if holder == name:
            self._tell(name, key, held=True, holder=name)
            return
        self._tell(name, key, held=False, holder=holder)
        self._show_challengers(key)

    def _show_challengers(self, key: str) -> None:
        holder = self.holders.get(key)
        if holder is None or not self._reachable(holder):
            return
        candidates = [(p, n) for n, p in self.wanting.get(key, {}).items() if p is not None and n != holder]
        if candidates:
            priority, node = max(candidates)
            self._tell(holder, key, held=True, holder=holder, challenger=node, challenger_priority=priority)

    def _hand_over(self, key: str) -> None:
        """A released key: the first reachable node that wants it takes it (the watch fires)."""
        for name in self.wanting.get(key, {}):
            if self._reachable(name) and self.nodes[name].alive:
                self._try(name, key)
                return

    def _expire(self, name: str) -> None:
        self.expiring.discard(name)
        for key, holder in list(self.holders.items()):
            if holder == name:
                del self.holders[key]
                if self.nodes[name].alive:
                    self._tell(name, key, held=False, reachable=self._reachable(name), detail="lease expired")
                if self.etcd_up:
                    self._hand_over(key)

    def _lapse(self, name: str) -> None:
        if name not in self.expiring:
            self.expiring.add(name)
            heapq.heappush(self._queue, (self.now + TTL, next(self._seq), "etcd", _Expire(name)))

    # -- what tests do ---------------------------------------------------------------------------

    def cut(self, name: str) -> None:
        self.cut_from_etcd.add(name)
        self._lapse(name)

    def etcd_down(self) -> None:
        self.etcd_up = False
        for name in list(self.holders.values()):
            self._lapse(name)

    def etcd_back(self) -> None:
        self.etcd_up = True
        for key, wanting in self.wanting.items():
            for name in wanting:
                self._tell(name, key, held=False, reachable=True)
            if key not in self.holders:
                self._hand_over(key)

    def kill(self, name: str) -> None:
        self.nodes[name].alive = False
        self.nodes[name].vips.clear()
        self._lapse(name)

    def holders_between(self, start: float, end: float) -> set[tuple[str, ...]]:
        """Every VIP-holder set seen between ``start`` and ``end`` (including the one current at ``start``)."""
        before = [h for t, h in self.holder_history if t <= start]
        during = {h for t, h in self.holder_history if start < t <= end}
        return during | ({before[-1]} if before else set())


def witness_config(priority: int, *, mode: str = "vrrp", **overrides: Any) -> Config:
    instance = instance_config(
        priority=priority, virtual_ipaddress=(VIP,), witness=mode == "vrrp", mode=mode, **overrides
    )
    witness = WitnessConfig(type="etcd", endpoints=(f"http://{ETCD}:2379",), ttl=TTL)
    return Config(path=Path("/etc/hafm.toml"), instances={"VI_1": instance}, witness=witness)


def pair(a: Config, b: Config) -> WitnessSegment:
    segment = WitnessSegment()
    segment.add("a", A, a)
    segment.add("b", B, b)
    segment.start("a")
    segment.run_for(4)
    segment.start("b")
    segment.run_for(2)
    assert segment.state("a", "VI_1") is State.MASTER and segment.state("b", "VI_1") is State.BACKUP
    assert segment.holders == {KEY: "a"}
    return segment


def classic() -> WitnessSegment:
    return pair(witness_config(100), witness_config(90))


def test_the_key_names_prefix_cluster_family_and_vrid() -> None:
    config = witness_config(100)
    assert config.witness is not None
    assert witness_key(config.witness, config.instances["VI_1"]) == KEY
    assert candidate_prefix(KEY) == KEY + "/candidates/"


def test_partition_with_both_sides_reaching_etcd_keeps_one_vip_holder() -> None:
    segment = classic()
    cut_at = segment.now
    segment.partitioned.add(frozenset({"a", "b"}))
    segment.run_for(8)
    assert segment.holders_between(cut_at, segment.now) == {("a",)}, segment.holder_history
    assert segment.state("b", "VI_1") is State.BACKUP
    assert segment["b"].logs.count(f"VI_1: stays BACKUP: witness key {KEY} held by a") == 1, "once per holder"
    assert segment["b"].coordinator.report("VI_1").reason == f"stays BACKUP: witness key {KEY} held by a"

    segment.partitioned.clear()
    segment.run_for(4)
    assert segment.holders_between(cut_at, segment.now) == {("a",)}
    assert segment.state("b", "VI_1") is State.BACKUP


def test_plain_vrrp_gives_two_holders_in_the_same_partition() -> None:
    """The control experiment: without the witness, the same partition makes both Masters."""
    plain = WitnessSegment()
    plain.add("a", A, Config(path=Path("/x"), instances={"VI_1": instance_config(priority=100)}))
    plain.add("b", B, Config(path=Path("/x"), instances={"VI_1": instance_config(priority=90)}))
    plain.start("a")
    plain.run_for(4)
    plain.start("b")
    plain.run_for(2)
    plain.partitioned.add(frozenset({"a", "b"}))
    plain.run_for(8)
    assert plain.state("a", "VI_1") is State.MASTER and plain.state("b", "VI_1") is State.MASTER


def test_a_master_cut_from_etcd_steps_down_within_ttl_and_the_backup_takes_over() -> None:
    segment = classic()
    cut_at = segment.now
    segment.cut("a")
    segment.run_for(TTL + 2 * LATENCY)
    assert segment.state("a", "VI_1") is State.BACKUP
    assert not segment["a"].vips
    lost = [t for t, h in segment.holder_history if t > cut_at and "a" not in h][0]
    assert lost - cut_at <= TTL + 2 * LATENCY
    segment.run_for(2)
    assert segment.state("b", "VI_1") is State.MASTER and segment.holders == {KEY: "b"}
    assert all(len(h) <= 1 for _, h in segment.holder_history), "never two holders"
    message = "VI_1: witness unreachable: lease expired; stepping down; no node may become Master until etcd answers"
    assert segment["a"].logs.count(message) == 1
    # A hears B, preempts, asks for the key, and cannot have it: B stays.
    segment.run_for(10)
    assert segment.state("b", "VI_1") is State.MASTER and segment.state("a", "VI_1") is State.BACKUP


def test_sigterm_hands_the_key_over_in_about_skew_time() -> None:
    segment = classic()
    stopped = segment.now
    segment.feed("a", ev.Shutdown())
    segment.run_for(3)
    took_over = [t for t, h in segment.holder_history if h == ("b",)][0]
    assert took_over - stopped <= skew_time(90, version=2, master_adver_interval=1) + 2 * LATENCY
    assert segment.holders == {KEY: "b"}


def test_sigkill_takes_the_larger_of_master_down_interval_and_ttl() -> None:
    segment = classic()
    killed = segment.now
    segment.kill("a")
    segment.run_for(10)
    took_over = [t for t, h in segment.holder_history if h == ("b",)][0]
    limit = max(master_down_interval(90, version=2, master_adver_interval=1), TTL)
    assert limit - 1 < took_over - killed <= limit + 2 * LATENCY
    assert segment.holders == {KEY: "b"}


def test_etcd_down_fails_closed_and_recovers_when_it_answers() -> None:
    segment = classic()
    down = segment.now
    segment.etcd_down()
    segment.run_for(TTL + 2 * LATENCY)
    assert segment.state("a", "VI_1") is State.BACKUP and not segment["a"].vips
    segment.run_for(20)
    assert segment.holders_between(down + TTL + 2 * LATENCY, segment.now) == {()}, "nobody is Master"
    assert any("witness unreachable" in line and "stepping down" in line for line in segment["a"].logs)
    assert sum("witness unreachable" in line for line in segment["b"].logs) == 1, "once per episode"
    assert "no Master until etcd answers" in segment["b"].coordinator.report("VI_1").reason

    segment.etcd_back()
    segment.run_for(5)
    masters = [n for n in ("a", "b") if segment.state(n, "VI_1") is State.MASTER]
    assert len(segment.holders) == 1 and masters == list(segment.holders.values())
    assert any(line == "VI_1: witness reachable again" for line in segment["b"].logs)


def test_preemption_hands_the_key_to_the_better_node_before_it_takes_the_vip() -> None:
    segment = WitnessSegment()
    segment.add("a", A, witness_config(100))
    segment.add("b", B, witness_config(90))
    segment.start("b")
    segment.run_for(5)
    assert segment.holders == {KEY: "b"}
    started = segment.now
    segment.start("a")
    segment.run_for(6)
    assert segment.state("a", "VI_1") is State.MASTER and segment.state("b", "VI_1") is State.BACKUP
    assert segment.holders == {KEY: "a"}
    assert all(len(h) <= 1 for t, h in segment.holder_history if t >= started), segment.holder_history
    assert any("witness candidate a prio 100 outranks our 90" in line for line in segment["b"].logs)


def test_nopreempt_makes_no_candidacy() -> None:
    segment = WitnessSegment()
    segment.add("a", A, witness_config(100, nopreempt=True))
    segment.add("b", B, witness_config(90))
    segment.start("b")
    segment.run_for(5)
    segment.start("a")
    segment.run_for(10)
    assert segment.holders == {KEY: "b"} and segment.state("a", "VI_1") is State.BACKUP


def test_maintenance_releases_the_key_at_once() -> None:
    segment = classic()
    drained = segment.now
    segment.feed("a", co.MaintenanceChanged(instance="VI_1", on=True, reason="upgrade"))
    segment.run_for(3)
    took_over = [t for t, h in segment.holder_history if h == ("b",)][0]
    assert took_over - drained <= skew_time(90, version=2, master_adver_interval=1) + 2 * LATENCY
    assert segment.holders == {KEY: "b"}


# -- lease mode ----------------------------------------------------------------------------------


def lease_pair() -> WitnessSegment:
    return pair(witness_config(100, mode="lease"), witness_config(90, mode="lease"))


def test_lease_mode_sends_no_vrrp_and_the_holder_is_master() -> None:
    segment = lease_pair()
    for name in ("a", "b"):
        assert segment[name].coordinator.members["VI_1"].counters.adverts_sent == 0
    assert segment["a"].vips == {"198.51.100.100"} and not segment["b"].vips
    assert "VI_1: BACKUP -> MASTER (holds the witness lease)" in segment["a"].logs


def test_lease_mode_failover_after_kill_takes_ttl() -> None:
    segment = lease_pair()
    killed = segment.now
    segment.kill("a")
    segment.run_for(TTL + 1)
    took_over = [t for t, h in segment.holder_history if h == ("b",)][0]
    assert TTL <= took_over - killed <= TTL + 2 * LATENCY


def test_lease_mode_sigterm_hands_over_at_once() -> None:
    segment = lease_pair()
    stopped = segment.now
    segment.feed("a", ev.Shutdown())
    segment.run_for(1)
    took_over = [t for t, h in segment.holder_history if h == ("b",)][0]
    assert took_over - stopped <= 3 * LATENCY


def test_lease_mode_in_maintenance_does_not_take_the_key_back() -> None:
    segment = lease_pair()
    segment.feed("a", co.MaintenanceChanged(instance="VI_1", on=True, reason="upgrade"))
    segment.run_for(1)
    assert segment.holders == {KEY: "b"} and KEY not in {k for k, w in segment.wanting.items() if "a" in w}
    segment.feed("b", ev.Shutdown())
    segment.run_for(5)
    assert segment.state("a", "VI_1") is State.BACKUP and not segment.holders
    segment.feed("a", co.MaintenanceChanged(instance="VI_1", on=False))
    segment.run_for(1)
    assert segment.holders == {KEY: "a"} and segment.state("a", "VI_1") is State.MASTER


def test_lease_mode_ignores_vrrp_on_the_wire() -> None:
    segment = WitnessSegment()
    segment.add("a", A, witness_config(100, mode="lease"))
    segment.add("b", B, Config(path=Path("/x"), instances={"VI_1": instance_config(priority=200)}))
    segment.start("a")
    segment.start("b")
    segment.run_for(6)
    assert segment.state("a", "VI_1") is State.MASTER, "a VRRP advert does not move a lease-mode instance"
    assert segment["a"].coordinator.members["VI_1"].counters.adverts_received == 0


def test_a_renewal_that_fails_over_in_time_is_no_news() -> None:
    segment = classic()
    segment.feed("a", WitnessChanged(instance="VI_1", held=True, holder="a", reachable=False, detail="timeout"))
    segment.feed("a", WitnessChanged(instance="VI_1", held=True, holder="a", reachable=True))
    segment.run_for(2)
    assert segment.state("a", "VI_1") is State.MASTER
    assert not [line for line in segment["a"].logs if "witness" in line]


def test_a_reload_that_changes_the_witness_setup_is_told_apart() -> None:
    """The daemon refuses such a reload (restart to apply): it compares these."""
    from hafm.shell.daemon import _witness_setup

    same = _witness_setup(witness_config(100))
    assert _witness_setup(witness_config(90)) == same, "a priority change is an ordinary reload"
    assert _witness_setup(witness_config(100, mode="lease")) == same, "the instance restarts, the client stays"
    plain = Config(path=Path("/etc/hafm.toml"), instances={"VI_1": instance_config(priority=100)})
    more = Config(path=Path("/x"), instances={n: instance_config(name=n, priority=100) for n in ("VI_1", "VI_2")})
    assert _witness_setup(plain) != same, "no client was built"
    assert _witness_setup(more) == _witness_setup(plain), "plain configurations reload as before"


def test_changing_witness_or_mode_restarts_the_instance() -> None:
    from hafm.vrrp.instance import replaceable_in_place

    old = witness_config(100).instances["VI_1"]
    assert not replaceable_in_place(old, witness_config(100, mode="lease").instances["VI_1"])
    assert not replaceable_in_place(old, instance_config(priority=100, virtual_ipaddress=(VIP,)))
    assert replaceable_in_place(old, witness_config(90).instances["VI_1"])


def test_check_config_prints_the_witness_table_or_one_line_per_problem(tmp_path: Path) -> None:
    import io

    from hafm.config.check import run

    table = '[witness]\ntype = "etcd"\nendpoints = ["http://198.51.100.60:2379"]\nttl = 2\n'
    instance = (
        '[vrrp_instance.VI_1]\ninterface = "eth0"\nvirtual_router_id = 51\nvirtual_ipaddress = ["203.0.113.1/24"]\n'
    )
    good = tmp_path / "good.toml"
    good.write_text(table + instance + 'mode = "lease"\n')
    out, err = io.StringIO(), io.StringIO()
    assert run(good, out=out, err=err) == 0
    assert f"ttl = 2  # {good}" in out.getvalue().splitlines()
    assert f'mode = "lease"  # {good}' in out.getvalue().splitlines()

    bad = tmp_path / "bad.toml"
    bad.write_text(table.replace("ttl = 2", "ttl = 0") + instance + "witness = true\n")
    out, err = io.StringIO(), io.StringIO()
    assert run(bad, out=out, err=err) == 1
    assert err.getvalue().splitlines() == [
        f"{bad}: witness.ttl: 0 is out of range 1..3600",
        f"{bad}: configuration has 1 error",
    ]
