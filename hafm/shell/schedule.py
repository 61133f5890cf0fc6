"""Every instance timer of the daemon on one asyncio handle.

200 instances each arming its own handles cost a loop wake-up per timer: 200 a second for
the Masters' adverts, and a Backup's Master_Down handle is pushed back with every advert.
Here all timers share one heap and one handle armed at the earliest deadline:

- **Lazily pushed back**: a deadline that moves later is only recorded; the heap entry fires
  at the old time, sees the new deadline and goes back in the heap once (a Backup hears an
  advert every interval but re-arms about once per Master_Down_Interval).
- **Coalesced**: a timer may say how early it may fire (``early``).  An advert sent a few
  milliseconds early harms nobody, so the Masters' adverts due within that window go out in
  the same wake-up, and from then on share their deadline.  Master_Down never fires early.
- **Checked after the caller's look at the world**: ``before`` runs first at each wake-up
  (the daemon reads the adverts waiting in its sockets, which may push Master_Down deadlines
  back), and only then is it decided what is due.
- **On time to the microsecond**: epoll waits in whole milliseconds, rounded up, so a handle
  armed for a deadline fires up to 1 ms late.  The handle is armed :data:`PRECISION` early;
  a timer that may not fire early and is due within that millisecond is waited for with a
  sleep of the remainder (the loop blocks that long, only then), and the world looked at again.

:class:`TimerHeap` is the bookkeeping, with no clock and no I/O (unit-tested with numbers);
:class:`Scheduler` puts it on the running loop.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

MAX_EARLY = 0.05  # seconds: the largest ``early`` taken (bounds the heap scan at a wake-up)
PRECISION = 0.001  # seconds: epoll's resolution


@dataclass
class _Entry:
    deadline: float
    early: float
    armed: float  # the time of this timer's live heap entry (older entries are stale)


class TimerHeap:
    """Deadlines by key, one live heap entry each, lazily pushed back."""

    def __init__(self) -> None:
        self._entries: dict[Hashable, _Entry] = {}
        self._heap: list[tuple[float, int, Hashable]] = []
        self._pushed = 0  # tie-breaker: keys need not be orderable

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._entries

    def set(self, key: Hashable, deadline: float, early: float = 0.0) -> bool:
        """Arm ``key`` for ``deadline``; it may fire up to ``early`` seconds before.  Whether the heap changed."""
        early = min(max(early, 0.0), MAX_EARLY)
        entry = self._entries.get(key)
        if entry is not None and entry.armed <= deadline:
            entry.deadline, entry.early = deadline, early  # the live entry fires first and re-arms
            return False
        self._entries[key] = _Entry(deadline, early, deadline)
        self._push(deadline, key)
        return True

    def cancel(self, key: Hashable) -> None:
        self._entries.pop(key, None)  # its heap entry is skipped as stale

    def deadline(self, key: Hashable) -> float | None:
        entry = self._entries.get(key)
        return entry.deadline if entry is not None else None

    def next_wake(self) -> float | None:
        """When the earliest live heap entry is due, or None with no timer."""
        while self._heap:
            armed, _, key = self._heap[0]
            entry = self._entries.get(key)
            if entry is not None and entry.armed == armed:
                return armed
            heapq.heappop(self._heap)  # stale: cancelled, fired or re-armed since
        return None

    def pop_due(self, now: float) -> list[Hashable]:
        """The keys due at ``now`` (deadline minus ``early`` reached), earliest first; they are disarmed.

        Entries whose deadline was pushed back go back in the heap at their deadline while they
        are at its top, so the next wake-up is the next real deadline, not a stale one.
        """
        due: list[tuple[float, Hashable]] = []
        later: list[Hashable] = []
        while self._heap:
            armed, _, key = self._heap[0]
            entry = self._entries.get(key)
            if entry is None or entry.armed != armed:
                heapq.heappop(self._heap)
            elif entry.deadline - entry.early <= now:
                heapq.heappop(self._heap)
                due.append((entry.deadline, key))
                del self._entries[key]
            elif entry.deadline > armed or armed <= now + MAX_EARLY:
                heapq.heappop(self._heap)  # pushed back, or near enough that a later one may be due early
                later.append(key)
            else:
                break
        for key in later:
            entry = self._entries[key]
            entry.armed = entry.deadline
            self._push(entry.deadline, key)
        return [key for _, key in sorted(due, key=lambda item: item[0])]

    def _push(self, when: float, key: Hashable) -> None:
        self._pushed += 1
        heapq.heappush(self._heap, (when, self._pushed, key))


class Scheduler:
    """A :class:`TimerHeap` on the running loop: ``before()``, then ``fire(due keys)`` at each wake-up."""

    def __init__(self, before: Callable[[], None], fire: Callable[[list[Hashable]], None]) -> None:
        self._loop = asyncio.get_running_loop()
        self._before = before
        self._fire = fire
        self.timers = TimerHeap()
        self._handle: asyncio.TimerHandle | None = None
        self._handle_at: float | None = None

    def set(self, key: Hashable, deadline: float, early: float = 0.0) -> None:
        if self.timers.set(key, deadline, early):  # a deadline pushed back changes no wake-up
            self._rearm()

    def cancel(self, key: Hashable) -> None:
        self.timers.cancel(key)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._handle = self._handle_at = None

    def _rearm(self) -> None:
        wake = self.timers.next_wake()
        if wake == self._handle_at:
            return
        if self._handle is not None:
            self._handle.cancel()
        self._handle_at = wake
        self._handle = None if wake is None else self._loop.call_at(wake - PRECISION, self._wake)

    def _wake(self) -> None:
        self._handle = self._handle_at = None
        try:
            self._before()
            now = self._loop.time()
            due = self.timers.pop_due(now)
            upcoming = self.timers.next_wake()
            if upcoming is not None and now < upcoming <= now + PRECISION:
                time.sleep(upcoming - now)
                self._before()  # what arrived meanwhile may push it back
                due += self.timers.pop_due(self._loop.time())
            if due:
                self._fire(due)
        finally:
            self._rearm()
