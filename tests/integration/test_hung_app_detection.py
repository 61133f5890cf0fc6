"""A hung application (accepts, never answers) is caught by the check's timeout, and the hung
probes never disturb the advert rhythm: the probe runs on the event loop that sends adverts.

A (100, MASTER) and B (90) check their own test page as conf.d/tomcat.toml does; A's page server is
replaced by one that reads requests and never replies.
"""

from __future__ import annotations

import time
from pathlib import Path

from scapy.layers.inet import IP
from scapy.layers.vrrp import VRRP
from scapy.utils import rdpcap

from hafm.lab.network import Lab, wait_until
from hafm.lab.nodes import (
    ClientPoller,
    DaemonNode,
    check_toml,
    first_answer_from,
    instance_toml,
    start_nodes,
    vip_holders,
    vip_holders_become,
)

A, B = "198.51.100.1", "198.51.100.2"
ADVERT_INT = 1
CHECK_INTERVAL = 0.5  # conf.d/tomcat.toml uses 2 s; 0.5 s keeps the test fast
CHECK_TIMEOUT = 0.3
FALL = 2
MARGIN = 0.5
SKEW_B = (256 - 90) / 256
# Each failed run now takes the whole timeout before it counts.
TAKEOVER_BOUND = FALL * CHECK_INTERVAL + CHECK_TIMEOUT + 3 * ADVERT_INT + SKEW_B + MARGIN
MAX_JITTER = 0.05

TOMCAT = check_toml(
    "tomcat",
    type="http",
    url="http://127.0.0.1/test/test.html",
    expect_status=200,
    expect_body="this is the test page",
    interval=CHECK_INTERVAL,
    timeout=CHECK_TIMEOUT,
    fall=FALL,
    rise=2,
    weight=-20,
)


def _wait_log(node: DaemonNode, text: str, timeout: float = 8.0) -> bool:
    return wait_until(lambda: text in node.current_log(), timeout=timeout, interval=0.02)


def test_hung_app_times_out_and_adverts_keep_their_rhythm(lab: Lab, tmp_path: Path) -> None:
    track = 'track_check = ["tomcat"]\n'
    nodes = start_nodes(
        lab,
        tmp_path,
        {
            "a": (f"{A}/24", instance_toml(priority=100, state="MASTER", extra=track) + TOMCAT),
            "b": (f"{B}/24", instance_toml(priority=90, extra=track) + TOMCAT),
        },
    )
    a, b = nodes["a"], nodes["b"]
    for node in (a, b):
        assert _wait_log(node, "check tomcat: up (HTTP 200)"), node.log
    assert a.wait_state("MASTER"), a.log
    assert b.wait_state("BACKUP"), b.log
    assert _wait_log(a, "VI_1: priority 80 -> 100"), a.log
    client = lab.add_host("client", "198.51.100.50/24")

    sniffer = client.sniff(bpf_filter="ip proto 112")
    with ClientPoller(client) as poller:
        assert poller.wait_for(A, timeout=3), "client never saw A"
        a_mark = len(a.current_log())
        hung_wall, hung = time.time(), time.monotonic()
        a.host.start_test_page_server(hang=True)
        # A hung server still accepts connections: only the check's timeout can tell.
        with a.host.socket() as sock:
            sock.settimeout(1)
            sock.connect(("127.0.0.1", 80))
        assert poller.wait_for(B, timeout=TAKEOVER_BOUND + 3), f"B never answered through the VIP\n{a.log}"
        took = first_answer_from(poller, B, hung)
    pcap = sniffer.stop()
    assert took is not None
    print(f"\nhung app: client saw B {took:.3f} s after A's server hung (bound {TAKEOVER_BOUND:.3f} s)")
    assert took <= TAKEOVER_BOUND, f"takeover after {took:.3f} s, bound {TAKEOVER_BOUND:.3f} s\n{b.log}"
    assert a.wait_state("BACKUP"), a.log
    log = a.current_log()[a_mark:]
    down = [line for line in log.splitlines() if "check tomcat: down (" in line]
    assert down and "timeout" in down[0].lower(), f"check went down for another reason: {down}\n{a.log}"
    assert "VI_1: priority 100 -> 80 (base 100, tomcat down -20 → 80)" in log
    assert vip_holders_become(nodes, ["b"]), vip_holders(nodes)

    # A's timer-driven adverts from the moment its server hung until B's first advert as Master
    # (A answers that one with a farewell advert when it steps down: not part of the rhythm).
    frames = [
        (float(frame.time), frame[IP].src, frame[VRRP].priority)
        for frame in rdpcap(str(pcap))
        if frame.haslayer(VRRP) and float(frame.time) >= hung_wall
    ]
    b_master_at = min(at for at, source, _ in frames if source == B)
    sent = [(at, priority) for at, source, priority in frames if source == A and at < b_master_at]
    priorities = [priority for _, priority in sent]
    assert 80 in priorities, f"A never advertised its lowered priority: {priorities}"
    intervals = [later - earlier for (earlier, _), (later, _) in zip(sent, sent[1:], strict=False)]
    assert len(intervals) >= 2, f"too few adverts from A while its check hung: {sent}"
    jitter = max(abs(interval - ADVERT_INT) for interval in intervals)
    shown = ", ".join(f"{interval:.3f}" for interval in intervals)
    print(f"hung app: A's advert intervals while the check hung: {shown} s; jitter {jitter * 1000:.1f} ms")
    assert jitter < MAX_JITTER, f"advert jitter {jitter * 1000:.1f} ms while the check hung (intervals {shown} s)"
