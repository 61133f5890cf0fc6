"""A frozen Master (SIGSTOP for 5 × Master_Down_Interval, then SIGCONT): the Backup takes over,
and on resume the pair settles on exactly one Master within 3 adverts, with the client on it.

A frozen process is the nastiest clean-looking failure: its VIP stays on the interface and, once
thawed, it still believes it is Master. The higher-priority A must win back without a flap, and
re-announce the VIP so the client, whose neighbour entry now points at B, follows it.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from hafm.lab.network import Lab, wait_until
from hafm.lab.nodes import VIP4, ClientPoller, VipWatcher, start_classic_pair, vip_holders, vip_holders_become
from hafm.vrrp.constants import master_down_interval

A, B = "198.51.100.1", "198.51.100.2"
MARGIN = 0.3  # scheduling on a small, shared machine


@pytest.mark.slow
@pytest.mark.parametrize(("version", "advert_int"), [(2, 1.0), (3, 0.1)], ids=["v2-1s", "v3-100ms"])
def test_frozen_master_hands_over_and_wins_back_cleanly(
    lab: Lab, tmp_path: Path, version: int, advert_int: float
) -> None:
    a, b, nodes = start_classic_pair(lab, tmp_path, version=version, advert_int=advert_int)
    client = lab.add_host("client", "198.51.100.50/24")
    assert a.wait_state("MASTER") and b.wait_state("BACKUP"), a.log + b.log
    assert vip_holders_become(nodes, ["a"]), vip_holders(nodes)
    mdi = master_down_interval(90, version=version, master_adver_interval=advert_int)

    with ClientPoller(client, timeout=0.2) as poller, VipWatcher(nodes) as watcher:
        assert poller.wait_for(A, timeout=3)
        frozen = time.monotonic()
        a.signal(signal.SIGSTOP)
        try:
            assert b.wait_state("MASTER", timeout=mdi + MARGIN + 1), b.log
            took = time.monotonic() - frozen
            assert took <= mdi + MARGIN, f"B took over {took:.3f} s after A froze; Master_Down_Interval {mdi:.3f} s"
            assert poller.wait_for(B, timeout=2), "the client did not follow B while A was frozen"
            time.sleep(max(0.0, frozen + 5 * mdi - time.monotonic()))
            b_mark = len(b.current_log())
        finally:
            a.signal(signal.SIGCONT)
        resumed = time.monotonic()

        # Exactly one Master (A, the higher priority) within 3 adverts of the resume.
        one = wait_until(lambda: watcher.holders() == {"a"}, timeout=3 * advert_int + MARGIN, interval=0.005)
        assert one, watcher.timeline()
        settled = time.monotonic() - resumed
        assert b.wait_state("BACKUP", timeout=0.5), b.log
        assert a.state() == "MASTER", a.log
        assert settled <= 3 * advert_int + MARGIN, f"one holder after {settled:.3f} s, 3 adverts = {3 * advert_int} s"
        assert "MASTER -> BACKUP" in b.current_log()[b_mark:]
        assert a.transitions().count("MASTER") == 1, f"A flapped: {a.transitions()}"
        # The client follows: its neighbour entry moves back to A's MAC and A's page answers.
        assert poller.wait_for(A, timeout=2), f"the client stayed on {poller.latest}"
        assert wait_until(lambda: client.neighbour_mac(VIP4) == a.host.mac, timeout=1), client.neighbour_mac(VIP4)
        time.sleep(5 * advert_int)  # and it stays settled: no late flap
        assert watcher.holders() == {"a"} and b.state() == "BACKUP", watcher.timeline()
        assert watcher.dual_seconds(since=resumed + settled) == 0
        print(
            f"\nv{version} advert_int {advert_int:g}: B took over after {took:.3f} s (MDI {mdi:.3f} s); "
            f"one Master {settled:.3f} s after SIGCONT; "
            f"dual holding after resume {watcher.dual_seconds(since=resumed):.3f} s"
        )
