"""hafm.shell.schedule.TimerHeap: one heap for every timer, lazily pushed back, adverts coalesced."""

import asyncio

from hafm.shell.schedule import MAX_EARLY, Scheduler, TimerHeap


def test_due_in_deadline_order_and_disarmed() -> None:
    heap = TimerHeap()
    heap.set("b", 2.0)
    heap.set("a", 1.0)
    assert heap.next_wake() == 1.0
    assert heap.pop_due(0.5) == []
    assert heap.pop_due(2.0) == ["a", "b"]
    assert len(heap) == 0 and heap.next_wake() is None


def test_a_deadline_pushed_back_is_not_due_at_the_old_time_and_wakes_once_at_the_new_one() -> None:
    heap = TimerHeap()
    heap.set("master_down", 3.6)
    for advert in range(1, 10):  # a Backup hears an advert every second
        heap.set("master_down", advert + 3.6)
    assert heap.next_wake() == 3.6  # the stale entry: nothing was re-armed per advert
    assert heap.pop_due(3.6) == []
    assert heap.next_wake() == 12.6
    assert heap.pop_due(12.6) == ["master_down"]


def test_every_entry_pushed_back_is_re_armed_at_one_wake_up() -> None:
    heap = TimerHeap()
    for number in range(200):
        heap.set(number, 3.6 + number / 200)
    for number in range(200):  # one read of the socket pushed every deadline back
        heap.set(number, 6.0 + number / 200)
    assert heap.pop_due(3.6) == []
    assert heap.next_wake() == 6.0, "the next wake-up is the next real deadline"


def test_an_earlier_deadline_wins_and_cancel_forgets() -> None:
    heap = TimerHeap()
    heap.set("x", 5.0)
    heap.set("x", 1.0)
    assert heap.next_wake() == 1.0
    assert heap.deadline("x") == 1.0
    heap.cancel("x")
    assert "x" not in heap
    assert heap.pop_due(10.0) == [] and heap.next_wake() is None


def test_adverts_within_their_early_window_fire_with_the_one_due() -> None:
    heap = TimerHeap()
    heap.set("advert 1", 1.000, early=0.05)
    heap.set("advert 2", 1.004, early=0.05)
    heap.set("advert 3", 1.200, early=0.05)
    heap.set("master_down", 1.001)  # never early
    assert heap.pop_due(1.000) == ["advert 1", "advert 2"]
    assert heap.next_wake() == 1.001


def test_early_is_capped() -> None:
    heap = TimerHeap()
    heap.set("advert", 10.0, early=5.0)
    assert heap.pop_due(10.0 - MAX_EARLY - 0.01) == []
    assert heap.pop_due(10.0 - MAX_EARLY) == ["advert"]


def test_the_scheduler_looks_before_it_fires_and_never_fires_an_exact_timer_early() -> None:
    fired: list[tuple[object, float]] = []
    looks: list[float] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        scheduler = Scheduler(
            before=lambda: looks.append(loop.time()), fire=lambda due: fired.extend((k, loop.time()) for k in due)
        )
        start = loop.time()
        scheduler.set("master_down", start + 0.02)
        scheduler.set("advert", start + 0.022, early=0.005)  # shares the wake-up
        scheduler.set("pushed back", start + 0.01)
        scheduler.set("pushed back", start + 0.5)  # later: must not fire at 0.01
        await asyncio.sleep(0.1)
        scheduler.close()
        deadlines = {"master_down": start + 0.02, "advert": start + 0.022}
        assert [key for key, _ in fired] == ["master_down", "advert"]
        assert fired[0][1] >= deadlines["master_down"], "an exact timer never fires early"
        assert fired[1][1] == fired[0][1] or fired[1][1] >= deadlines["advert"] - 0.005
        assert looks and looks[-1] <= fired[0][1], "the world is looked at before firing"

    asyncio.run(main())
