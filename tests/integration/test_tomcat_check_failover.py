"""A failed local health check moves the VIP: the gap a plain VRRP pair leaves open, closed.

A (100, MASTER) and B (90) each run hafm and a test page server, and each checks its own page
the way conf.d/tomcat.toml checks a local Tomcat.  Only A's page server stops: A's VRRP keeps
running, so without the check nobody would notice.

* plain mode: A's priority drops to 80 and B preempts it when its master-down timer runs out
  (RFC 5798 §6.4.2: a Backup discards a lower-priority advert and lets the timer run), so the
  takeover costs up to fall × interval + Master_Down_Interval;
* ``resign_below = 90``: A gives up mastership itself with a priority-0 advert, so B takes over
  after only its Skew_Time.
"""

from __future__ import annotations

import time
from pathlib import Path

from hafm.lab.network import Host, Lab, wait_until
from hafm.lab.nodes import (
    ClientPoller,
    DaemonNode,
    first_answer_from,
    instance_toml,
    start_nodes,
    vip_holders,
    vip_holders_become,
)
from hafm.lab.tomcat import tomcat_check_toml

A, B = "198.51.100.1", "198.51.100.2"
ADVERT_INT = 1
# conf.d/tomcat.toml probes every 2 s (fall 3); 0.5 s here keeps the test fast, the arithmetic is the same.
CHECK_INTERVAL = 0.5
FALL = RISE = 2
MARGIN = 0.5
SKEW_A, SKEW_B = (256 - 100) / 256, (256 - 90) / 256
MDI_A, MDI_B = 3 * ADVERT_INT + SKEW_A, 3 * ADVERT_INT + SKEW_B
# Plain mode can't be faster than this: the check is down after (fall - 1) more probes at the
# earliest, and B's timer was last reset by an advert at most one advert interval before that.
PLAIN_MIN = (FALL - 1) * CHECK_INTERVAL + MDI_B - ADVERT_INT
PLAIN_BOUND = FALL * CHECK_INTERVAL + MDI_B + MARGIN
RESIGN_BOUND = FALL * CHECK_INTERVAL + SKEW_B + MARGIN
# Back up: rise successes, then A (a Backup at 100 discarding B's adverts at 90) waits out its timer.
FAILBACK_BOUND = RISE * CHECK_INTERVAL + MDI_A + MARGIN

# conf.d/tomcat.toml's check against the lab's test page (port 80), with this test's timing.
TOMCAT = tomcat_check_toml(port=80, interval=CHECK_INTERVAL, fall=FALL, rise=RISE, timeout=0.3)


def start_pair(lab: Lab, tmp_path: Path, extra_a: str = "", extra_b: str = "") -> tuple[dict[str, DaemonNode], Host]:
    """A and B with the tomcat check, both up and settled (A Master at 100), and a client."""
    track = 'track_check = ["tomcat"]\n'
    nodes = start_nodes(
        lab,
        tmp_path,
        {
            "a": (f"{A}/24", instance_toml(priority=100, state="MASTER", extra=track + extra_a) + TOMCAT),
            "b": (f"{B}/24", instance_toml(priority=90, extra=track + extra_b) + TOMCAT),
        },
    )
    a, b = nodes["a"], nodes["b"]
    # The check probes 127.0.0.1 inside each node's namespace: the test page server must answer there.
    assert f"from server {A}" in (a.host.http_get("http://127.0.0.1/test/test.html") or "")
    for node in (a, b):
        assert _wait_log(node, "check tomcat: up (HTTP 200)"), node.log
    assert a.wait_state("MASTER"), a.log
    assert b.wait_state("BACKUP"), b.log
    assert _wait_log(a, "VI_1: priority 80 -> 100"), a.log
    assert vip_holders_become(nodes, ["a"]), vip_holders(nodes)
    return nodes, lab.add_host("client", "198.51.100.50/24")


def _wait_log(node: DaemonNode, text: str, timeout: float = 8.0) -> bool:
    return wait_until(lambda: text in node.current_log(), timeout=timeout, interval=0.02)


def fail_a_and_measure(nodes: dict[str, DaemonNode], poller: ClientPoller, bound: float) -> float:
    """Stop A's page server only; seconds until the client gets B's page through the VIP."""
    a = nodes["a"]
    assert poller.wait_for(A, timeout=3), "client never saw A"
    stopped = time.monotonic()
    a.host.stop_test_page_server()
    assert poller.wait_for(B, timeout=bound + 3), f"B never answered through the VIP\n{a.log}"
    took = first_answer_from(poller, B, stopped)
    assert took is not None
    return took


def fail_back(nodes: dict[str, DaemonNode], poller: ClientPoller) -> float:
    """Restart A's page server; seconds until the client gets A's page again."""
    a, b = nodes["a"], nodes["b"]
    started = time.monotonic()
    a.host.start_test_page_server()
    assert poller.wait_for(A, timeout=FAILBACK_BOUND + 3), f"A never came back\n{a.log}"
    took = first_answer_from(poller, A, started)
    assert took is not None
    assert a.wait_state("MASTER"), a.log
    assert b.wait_state("BACKUP"), b.log
    assert "VI_1: priority 80 -> 100" in a.current_log().rsplit("check tomcat: down", 1)[-1]
    assert vip_holders_become(nodes, ["a"]), vip_holders(nodes)
    return took


def test_failed_tomcat_check_hands_the_vip_to_the_backup(lab: Lab, tmp_path: Path) -> None:
    nodes, client = start_pair(lab, tmp_path)
    a, b = nodes["a"], nodes["b"]
    with ClientPoller(client) as poller:
        # Start-up logs "priority 100 -> 80" too (checks start down): look only at what follows.
        a_mark, b_mark = len(a.current_log()), len(b.current_log())
        took = fail_a_and_measure(nodes, poller, PLAIN_BOUND)
        print(f"\nplain mode: client saw B {took:.3f} s after A's page server stopped (bound {PLAIN_BOUND:.3f} s)")
        assert PLAIN_MIN - 0.1 <= took <= PLAIN_BOUND, (
            f"plain mode takeover after {took:.3f} s, expected {PLAIN_MIN:.3f}..{PLAIN_BOUND:.3f} s\n{b.log}"
        )
        # A is alive and demoted, not dead: BACKUP at 80 because its check failed.
        assert a.proc is not None and a.proc.poll() is None
        assert a.wait_state("BACKUP"), a.log
        log = a.current_log()[a_mark:]
        assert "check tomcat: down (" in log
        assert "VI_1: priority 100 -> 80 (base 100, tomcat down -20 → 80)" in log
        assert "VI_1: MASTER -> BACKUP (higher priority advert from 198.51.100.2 prio 90)" in log
        assert f"BACKUP -> MASTER (preempting lower priority master {A} prio 80)" in b.current_log()[b_mark:]
        assert vip_holders_become(nodes, ["b"]), vip_holders(nodes)

        back = fail_back(nodes, poller)
        print(f"plain mode: client saw A again {back:.3f} s after its page server restarted")
        assert back <= FAILBACK_BOUND, f"failback after {back:.3f} s, bound {FAILBACK_BOUND:.3f} s\n{a.log}"


def test_resign_below_hands_over_after_skew_time(lab: Lab, tmp_path: Path) -> None:
    # resign_below must be below the node's own priority, so B can't use 90: with 80, B too would
    # resign as soon as its own check fails (90 - 20 = 70), rather than wait for A to preempt it.
    nodes, client = start_pair(lab, tmp_path, extra_a="resign_below = 90\n", extra_b="resign_below = 80\n")
    a, b = nodes["a"], nodes["b"]
    with ClientPoller(client) as poller:
        a_mark, b_mark = len(a.current_log()), len(b.current_log())
        took = fail_a_and_measure(nodes, poller, RESIGN_BOUND)
        print(
            f"\nresign_below: client saw B {took:.3f} s after A's page server stopped (bound {RESIGN_BOUND:.3f} s; "
            f"plain mode cannot beat {PLAIN_MIN:.3f} s)"
        )
        assert took <= RESIGN_BOUND, f"resign_below takeover after {took:.3f} s, bound {RESIGN_BOUND:.3f} s\n{b.log}"
        # Well below plain mode: at least half an advert interval faster than plain mode's best case.
        assert took <= PLAIN_MIN - 0.5, f"resign_below took {took:.3f} s, plain mode's minimum is {PLAIN_MIN:.3f} s"
        assert a.proc is not None and a.proc.poll() is None
        assert a.wait_state("BACKUP"), a.log
        log = a.current_log()[a_mark:]
        assert "VI_1: priority 100 -> 80 (base 100, tomcat down -20 → 80)" in log
        assert "VI_1: MASTER -> BACKUP (priority 80 fell below resign_below 90" in log
        assert f"BACKUP -> MASTER (master {A} resigned (priority 0 advert))" in b.current_log()[b_mark:]
        assert vip_holders_become(nodes, ["b"]), vip_holders(nodes)

        back = fail_back(nodes, poller)
        print(f"resign_below: client saw A again {back:.3f} s after its page server restarted")
        assert back <= FAILBACK_BOUND, f"failback after {back:.3f} s, bound {FAILBACK_BOUND:.3f} s\n{a.log}"
