"""The seed, for real: Debian's tomcat10 on both nodes, and both halves of what the seed promises.

A and B each run a real Tomcat (its own CATALINA_BASE, serving /test/test.html "this is the test
page / from server X") and hafm tracking it with conf.d/tomcat.toml's http check. A client
fetches the page through the VIP on Tomcat's port:

* the Master's hafm stops (its Tomcat keeps running) → the client is served by B;
* only the Master's Tomcat stops (its hafm keeps running) → the http check lowers A's priority
  below B's and the VIP moves to B; once Tomcat is back, A takes the VIP back.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from hafm.lab import demo
from hafm.lab.network import Lab, wait_until
from hafm.lab.nodes import ClientPoller, DaemonNode, first_answer_from, vip_holders, vip_holders_become
from hafm.lab.tomcat import TomcatPair, start_tomcat_pair, tomcat_unavailable_reason
from hafm.vrrp.constants import master_down_interval, skew_time

needs_tomcat = pytest.mark.skipif(tomcat_unavailable_reason() is not None, reason=str(tomcat_unavailable_reason()))

A, B = "198.51.100.1", "198.51.100.2"
ADVERT_INT = 1.0
CHECK_INTERVAL, FALL, RISE = 0.5, 2, 2
MARGIN = 1.0  # two JVMs and two daemons share a small, busy machine
# SIGTERM: A sends a priority-0 advert, B takes over after its Skew_Time.
TERM_BOUND = skew_time(90, version=2, master_adver_interval=ADVERT_INT) + MARGIN
# Tomcat down: fall probes, then B (discarding A's adverts at 80) waits out Master_Down_Interval.
CHECK_BOUND = FALL * CHECK_INTERVAL + master_down_interval(90, version=2, master_adver_interval=ADVERT_INT) + MARGIN
# A back at 100 after rise probes, preempting B after its own Master_Down_Interval.
FAILBACK_BOUND = RISE * CHECK_INTERVAL + master_down_interval(100, version=2, master_adver_interval=ADVERT_INT) + MARGIN


def _wait_log(node: DaemonNode, text: str, timeout: float = 10.0) -> bool:
    return wait_until(lambda: text in node.current_log(), timeout=timeout, interval=0.02)


def _settled(pair: TomcatPair, poller: ClientPoller) -> None:
    """A Master at full priority with the VIP, B Backup, the client served by A's Tomcat."""
    a, b = pair.nodes["a"], pair.nodes["b"]
    assert a.wait_state("MASTER", timeout=10), a.log
    assert b.wait_state("BACKUP", timeout=10), b.log
    assert _wait_log(a, "VI_1: priority 80 -> 100"), a.log
    assert vip_holders_become(pair.nodes, ["a"], timeout=5), vip_holders(pair.nodes)
    assert poller.wait_for(A, timeout=5), f"client never got A's page: {poller.latest}"


@pytest.mark.slow
@needs_tomcat
def test_real_tomcat_both_halves_of_the_seed(lab: Lab, tmp_path: Path) -> None:
    pair = start_tomcat_pair(lab, tmp_path, advert_int=ADVERT_INT, check_interval=CHECK_INTERVAL)
    a, b = pair.nodes["a"], pair.nodes["b"]
    for node in (a, b):
        assert _wait_log(node, "check tomcat: up (HTTP 200)"), node.log
    with ClientPoller(pair.client, url=pair.page_url, timeout=0.2) as poller:
        _settled(pair, poller)

        # Half 1: the Master's hafm stops; its Tomcat is fine, but the VIP must move.
        stopped = time.monotonic()
        assert a.stop() == 0, a.log
        assert poller.wait_for(B, timeout=TERM_BOUND + 3), f"client not on B after hafm stopped\n{b.log}"
        took = first_answer_from(poller, B, stopped)
        assert took is not None and took <= TERM_BOUND, f"B served after {took} s, bound {TERM_BOUND:.2f} s"
        assert pair.tomcats["a"].running, "A's Tomcat was not supposed to stop"
        assert vip_holders_become(pair.nodes, ["b"]), vip_holders(pair.nodes)
        print(f"\nhafm on A stopped: client on B's Tomcat after {took:.3f} s (bound {TERM_BOUND:.3f} s)")

        a.start()
        assert poller.wait_for(A, timeout=FAILBACK_BOUND + 5), f"A did not take the VIP back\n{a.log}"
        _settled(pair, poller)

        # Half 2: only the Master's Tomcat stops; hafm on A keeps running and must hand over.
        mark = len(a.current_log())
        stopped = time.monotonic()
        pair.tomcats["a"].stop()
        assert poller.wait_for(B, timeout=CHECK_BOUND + 3), f"client not on B after Tomcat stopped\n{a.log}"
        took = first_answer_from(poller, B, stopped)
        assert took is not None and took <= CHECK_BOUND, f"B served after {took} s, bound {CHECK_BOUND:.2f} s"
        assert a.proc is not None and a.proc.poll() is None, "hafm on A must keep running"
        assert a.wait_state("BACKUP"), a.log
        log = a.current_log()[mark:]
        assert "check tomcat: down (" in log
        assert "VI_1: priority 100 -> 80" in log
        assert vip_holders_become(pair.nodes, ["b"]), vip_holders(pair.nodes)
        print(f"Tomcat on A stopped: client on B's Tomcat after {took:.3f} s (bound {CHECK_BOUND:.3f} s)")

        # Tomcat back on A: the check rises and A preempts B again.
        back = time.monotonic()
        pair.tomcats["a"].start()
        assert poller.wait_for(A, timeout=FAILBACK_BOUND + 5), f"A did not take the VIP back\n{a.log}"
        _settled(pair, poller)
        print(f"Tomcat on A back: client on A's Tomcat {time.monotonic() - back:.3f} s after restart began")


@pytest.mark.slow
@needs_tomcat
def test_demo_tomcat_plays_both_halves_and_cleans_up() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hafm", "demo", "--tomcat"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert ">>> SIGTERM to hafm on A (A's Tomcat keeps running)" in out
    assert ">>> A's Tomcat stopped (hafm on A keeps running)" in out
    assert out.count("client-seen outage:") == 2, out
    assert out.count("A took the VIP back") == 2, out
    assert "page from server 198.51.100.2" in out
    assert "lab torn down." in out


def test_demo_tomcat_without_tomcat_is_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(demo, "tomcat_unavailable_reason", lambda: "tomcat10 is not installed (test)")
    assert demo.run_demo(tomcat=True) == 1
    captured = capsys.readouterr()
    assert captured.err == "hafm demo --tomcat: tomcat10 is not installed (test)\n"
    assert captured.out == "", "nothing was built"
