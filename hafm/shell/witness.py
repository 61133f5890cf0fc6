"""The asyncio side of the etcd witness: leases, keepalives, watches and the local lease deadline.

The coordinator decides (:mod:`hafm.vrrp.witness`); this module performs its
:class:`~hafm.vrrp.witness.WitnessAcquire` / :class:`~hafm.vrrp.witness.WitnessRelease` outputs and feeds
back :class:`~hafm.vrrp.witness.WitnessChanged` whenever what it knows changes.  Per instance that wants its
key there is one :class:`_Seat`:

* a lease granted for ``ttl``, renewed every ``ttl / 3``.  The **local deadline** is the send time of the
  last renewal that succeeded plus the granted TTL: etcd received that request later, so its own expiry
  is never earlier.  At the deadline the key is reported lost, whether or not etcd can be reached, so a
  Master cut from etcd steps down before etcd gives the key to another node;
* a create-if-absent transaction for the key (value: this node's name) and, when preempting, a candidacy
  ``{key}/candidates/{node}`` = priority under the same lease;
* a watch on the key's prefix, so a released key is taken at once and the holder sees candidates.  A
  watch that is silent for ``ttl`` is restarted after checking the key again: a dead TCP stream must not
  hide a release.

Release revokes the lease: the key and the candidacy go with it, so the next node takes over in about
Skew_Time instead of ``ttl``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hafm.config.model import WitnessConfig
from hafm.shell.etcd import EtcdClient, EtcdError, EtcdUnreachable, WatchInterrupted
from hafm.vrrp.witness import WitnessAcquire, WitnessChanged, WitnessRelease, candidate_prefix

__all__ = ["WitnessClient"]

log = logging.getLogger("hafm")

# The shortest wait before asking an unreachable etcd again.
RETRY_INTERVAL = 0.2
# How long a shutdown waits for its revocations.
REVOKE_GRACE = 1.0


@dataclass(eq=False)
class _Seat:
    instance: str
    key: str
    candidate_priority: int | None = None
    lease: int | None = None
    deadline: float | None = None  # on the loop's clock
    held: bool = False
    holder: str | None = None
    reachable: bool = True
    detail: str = ""
    challenger: tuple[str, int] | None = None
    reported: tuple[Any, ...] | None = None
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    deadline_handle: asyncio.TimerHandle | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)


class WitnessClient:
    """Holds etcd keys for the instances the coordinator says want them."""

    def __init__(self, config: WitnessConfig, node: str, feed: Callable[[WitnessChanged], None]) -> None:
        self.config = config
        self.node = node
        self._feed = feed
        self.ttl = config.ttl
        # A request must fail over to another endpoint well inside one renewal period.
        self.etcd = EtcdClient(
            config.endpoints,
            timeout=max(0.2, config.ttl / 6),
            ca_file=config.ca_file,
            cert_file=config.cert_file,
            key_file=config.key_file,
            user=config.user,
            password=config.password,
        )
        # httpx logs every request at INFO and httpcore every socket step at DEBUG: a renewal every
        # ttl/3 would drown hafm's own lines.  Their warnings still come through.
        for name in ("httpx", "httpcore"):
            logging.getLogger(name).setLevel(logging.WARNING)
        self.seats: dict[str, _Seat] = {}
        self._revoking: set[asyncio.Task[None]] = set()

    # -- the coordinator's outputs ---------------------------------------------------------------

    def perform(self, output: WitnessAcquire | WitnessRelease) -> None:
        match output:
            case WitnessAcquire():
                seat = self.seats.get(output.instance)
                if seat is not None and seat.key == output.key:
                    if seat.candidate_priority != output.candidate_priority:
                        seat.candidate_priority = output.candidate_priority
                        seat.wake.set()
                    seat.reported = None  # the coordinator asked again: tell it where things stand
                    self._report(seat)
                    return
                if seat is not None:
                    self._drop(seat)
                seat = _Seat(instance=output.instance, key=output.key, candidate_priority=output.candidate_priority)
                self.seats[output.instance] = seat
                seat.tasks = [asyncio.create_task(self._hold(seat)), asyncio.create_task(self._renew(seat))]
            case WitnessRelease():
                seat = self.seats.pop(output.instance, None)
                if seat is not None:
                    self._drop(seat)

    async def close(self) -> None:
        """Revoke every lease (bounded by :data:`REVOKE_GRACE`), so other nodes take over at once."""
        seats, self.seats = list(self.seats.values()), {}
        for seat in seats:
            self._drop(seat, revoke=False)
        leases = [s.lease for s in seats if s.lease is not None]
        # Revocations already under way (the coordinator released at shutdown) finish first.
        pending = [*self._revoking, *(self._revoke(lease) for lease in leases)]
        if pending:
            try:
                await asyncio.wait_for(asyncio.gather(*pending), REVOKE_GRACE)
            except TimeoutError:
                log.warning("witness: leases not revoked in %g s; they expire within %d s", REVOKE_GRACE, self.ttl)
        await self.etcd.aclose()

    # -- one seat --------------------------------------------------------------------------------

    def _drop(self, seat: _Seat, *, revoke: bool = True) -> None:
        for task in seat.tasks:
            task.cancel()
        if seat.deadline_handle is not None:
            seat.deadline_handle.cancel()
        if revoke and seat.lease is not None:
            lease, seat.lease = seat.lease, None
            task = asyncio.create_task(self._revoke(lease))
            self._revoking.add(task)
            task.add_done_callback(self._revoking.discard)

    async def _revoke(self, lease: int) -> None:
        try:
            await self.etcd.revoke(lease)
        except EtcdError as exc:
            log.warning("witness: lease %x not revoked (%s); it expires within %d s", lease, exc, self.ttl)

    def _report(self, seat: _Seat) -> None:
        """Feed the coordinator when what we know changed."""
        challenger, priority = seat.challenger if seat.challenger is not None else (None, None)
        news = (seat.held, seat.holder, seat.reachable, challenger, priority)
        if news == seat.reported:
            return
        seat.reported = news
        self._feed(
            WitnessChanged(
                instance=seat.instance,
                held=seat.held,
                holder=seat.holder,
                reachable=seat.reachable,
                challenger=challenger,
                challenger_priority=priority,
                detail=seat.detail,
            )
        )

    def _unreachable(self, seat: _Seat, exc: EtcdError) -> None:
        seat.detail = str(exc)
        if seat.reachable:
            log.warning("%s: witness: %s", seat.instance, exc)
        seat.reachable = False
        self._report(seat)  # a held key stays held until the local deadline

    def _lose_lease(self, seat: _Seat, detail: str) -> None:
        seat.lease = seat.deadline = None
        if seat.deadline_handle is not None:
            seat.deadline_handle.cancel()
            seat.deadline_handle = None
        seat.held, seat.detail = False, detail
        if seat.holder == self.node:
            seat.holder = None
        self._report(seat)
        seat.wake.set()

    def _extend(self, seat: _Seat, sent: float, ttl: int) -> None:
        loop = asyncio.get_running_loop()
        seat.deadline = sent + ttl
        if seat.deadline_handle is not None:
            seat.deadline_handle.cancel()
        seat.deadline_handle = loop.call_at(seat.deadline, self._lose_lease, seat, "lease expired")

    async def _lease(self, seat: _Seat) -> int:
        if seat.lease is None:
            sent = asyncio.get_running_loop().time()
            seat.lease, ttl = await self.etcd.grant(self.ttl)
            self._extend(seat, sent, ttl)
        return seat.lease

    async def _renew(self, seat: _Seat) -> None:
        """Renew every ``ttl / 3``; after a failure, again at once (another member may have a leader by then)."""
        loop = asyncio.get_running_loop()
        pause = self.ttl / 3
        while True:
            await asyncio.sleep(pause)
            pause = self.ttl / 3
            lease = seat.lease
            if lease is None:
                continue
            sent = loop.time()
            try:
                ttl = await self.etcd.keepalive(lease)
            except EtcdUnreachable as exc:
                self._unreachable(seat, exc)
                pause = RETRY_INTERVAL
                continue
            except EtcdError as exc:
                log.warning("%s: witness: keepalive refused: %s", seat.instance, exc)
                pause = RETRY_INTERVAL
                continue
            if lease != seat.lease:
                continue
            if ttl <= 0:
                self._lose_lease(seat, "lease not found at etcd")
                continue
            self._extend(seat, sent, ttl)
            if not seat.reachable:
                seat.reachable, seat.detail = True, ""
                self._report(seat)

    async def _hold(self, seat: _Seat) -> None:
        """Take the key when free, and keep watching it (and the candidates when it is ours)."""
        while True:
            seat.wake.clear()
            try:
                revision = await self._attempt(seat)
                watching = asyncio.create_task(self._watch(seat, revision))
                woken = asyncio.create_task(seat.wake.wait())
                try:
                    await asyncio.wait((watching, woken), return_when=asyncio.FIRST_COMPLETED)
                finally:
                    woken.cancel()
                    watching.cancel()
                failure = watching.exception() if watching.done() and not watching.cancelled() else None
                if failure is not None:
                    raise failure
            except WatchInterrupted as exc:
                log.info("%s: witness: %s; looking again", seat.instance, exc)
            except EtcdUnreachable as exc:
                self._unreachable(seat, exc)
                await asyncio.sleep(RETRY_INTERVAL)
            except EtcdError as exc:
                log.warning("%s: witness: %s", seat.instance, exc)
                await asyncio.sleep(RETRY_INTERVAL)

    async def _watch(self, seat: _Seat, revision: int) -> None:
        """Until the key is released or taken (or the watch has been idle for ``ttl``)."""
        async for event in self.etcd.watch(seat.key, revision + 1, idle=self.ttl):
            if event.kv.key == seat.key and (event.deleted or event.kv.value != self.node):
                return
            if seat.held and event.kv.key.startswith(candidate_prefix(seat.key)):
                await self._challengers(seat)

    async def _attempt(self, seat: _Seat) -> int:
        """One look at the key: take it if free; report who holds it; the store revision."""
        lease = await self._lease(seat)
        if seat.candidate_priority is not None:
            await self.etcd.put(f"{candidate_prefix(seat.key)}{self.node}", str(seat.candidate_priority), lease)
        created, current, revision = await self.etcd.create(seat.key, self.node, lease)
        ours = created or (current is not None and current.lease == lease)
        seat.reachable, seat.detail = True, ""
        seat.held = ours and seat.lease == lease
        seat.holder = self.node if seat.held else (current.value if current is not None else None)
        if seat.held:
            await self._challengers(seat)
        else:
            seat.challenger = None
        self._report(seat)
        return revision

    async def _challengers(self, seat: _Seat) -> None:
        candidates = []
        for kv in await self.etcd.range_prefix(candidate_prefix(seat.key)):
            node = kv.key.removeprefix(candidate_prefix(seat.key))
            if node != self.node and kv.value.isdigit():
                candidates.append((int(kv.value), node))
        best = max(candidates, default=None)
        seat.challenger = (best[1], best[0]) if best is not None else None
        self._report(seat)
