"""Random VRRP loss on the bridge: hafm flaps no more than the loss explains, and not at all when
the loss is too low to lose 3 adverts in a row.

nftables in the bridge namespace drops each forwarded copy of a VRRP packet with the given
probability (``numgen random``; this kernel has no netem). A Backup that misses 3 adverts in a
row must take over (that is the protocol), so some flaps are expected at 30 %; more than the
arithmetic allows (:func:`hafm.lab.network.loss_flap_bound`) would mean hafm loses or delays
adverts of its own. bench/loss.py runs the same scenario for 60 s with keepalived alongside.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest

from hafm.lab.network import Lab, loss_flap_bound, wait_until
from hafm.lab.nodes import VipWatcher, start_classic_pair, vip_holders, vip_holders_become


@pytest.mark.slow
@pytest.mark.parametrize(
    ("version", "advert_int", "percent", "seconds"),
    [(2, 1.0, 30, 20), (3, 0.1, 10, 20), (3, 0.1, 2, 10)],
    ids=["v2-1s-30pct", "v3-100ms-10pct", "v3-100ms-2pct"],
)
@pytest.mark.timeout(90)
def test_random_vrrp_loss_flaps_no_more_than_the_loss_explains(
    lab: Lab, tmp_path: Path, version: int, advert_int: float, percent: int, seconds: float
) -> None:
    a, b, nodes = start_classic_pair(lab, tmp_path, version=version, advert_int=advert_int)
    lab.add_host("client", "198.51.100.50/24")  # a third port: adverts are flooded to it, and lost on the way too
    assert a.wait_state("MASTER") and b.wait_state("BACKUP"), a.log + b.log
    assert vip_holders_become(nodes, ["a"]), vip_holders(nodes)
    adverts = round(seconds / advert_int)
    bound = loss_flap_bound(percent / 100, adverts)

    with VipWatcher(nodes) as watcher:
        since = time.monotonic()
        lab.vrrp_loss(percent)
        try:
            time.sleep(seconds)
            copies, dropped = lab.vrrp_loss_counters()
        finally:
            lab.vrrp_loss(0)
        flaps = watcher.changes("b", holds=True, since=since) + watcher.changes("a", holds=False, since=since)
        dual = watcher.dual_seconds(since=since)
        assert wait_until(lambda: watcher.holders() == {"a"}, timeout=4 * advert_int + 1), watcher.timeline()
    print(
        f"\nv{version} advert_int {advert_int:g}, {percent} % VRRP loss for {seconds} s ({adverts} adverts): "
        f"{dropped} of {copies} copies dropped, {flaps} flaps (bound {bound}), two holders for {dual:.3f} s"
    )
    # The loss was real and at the rate asked: each forwarded copy is dropped with probability p.
    # Two ports (B and the client) per advert; the rule goes in a moment after the sleep's clock starts.
    assert copies >= 2 * adverts * 0.95, f"only {copies} VRRP copies crossed the bridge for {adverts} adverts"
    expected = copies * percent / 100
    assert abs(dropped - expected) <= 4 * math.sqrt(expected * (1 - percent / 100)) + 2, (
        f"{dropped} VRRP copies dropped, expected about {expected:.0f} of {copies}"
    )
    assert flaps <= bound, f"{flaps} flaps under {percent} % loss; at most {bound} explained by lost adverts"
    # A flap ends with the next advert of A's that reaches B; losing 4 more in a row is rarer than the flap.
    assert dual <= flaps * 4 * advert_int, f"two holders for {dual:.3f} s over {flaps} flaps"
    assert a.state() == "MASTER" and b.state() == "BACKUP", (a.transitions(), b.transitions())


def test_loss_flap_bound_follows_the_arithmetic() -> None:
    # 30 % over 20 adverts: about 0.38 runs of 3 losses expected, 3 is exceeded 0.06 % of the time.
    assert loss_flap_bound(0.3, 20) == 3
    # 2 % over 100 adverts: 0.0008 expected: too low to lose 3 in a row, no flap allowed.
    assert loss_flap_bound(0.02, 100) == 0
    assert loss_flap_bound(0.0, 1000) == 0
    assert loss_flap_bound(0.3, 60) > loss_flap_bound(0.3, 20)
