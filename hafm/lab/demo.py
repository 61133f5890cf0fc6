"""``hafm demo``: the classic two-server failover, played for real in network namespaces.

Two "Tomcat" hosts (a test page server each) share 198.51.100.100; node A
(priority 100) is Master, node B (90) Backup.  A client polls the VIP every
5 ms while A fails and comes back; the demo prints what the client saw next
to the RFC's bound.  With ``--tomcat`` the servers are Debian's real tomcat10,
tracked by an http check, and both halves of the seed are played: A's hafm
stops, then (hafm running again) only A's Tomcat stops.
"""

from __future__ import annotations

import atexit
import sys
import tempfile
import time
from pathlib import Path

from hafm.lab.network import Lab, netns_unavailable_reason
from hafm.lab.nodes import VIP4, ClientPoller, DaemonNode, HafmNode, start_classic_pair
from hafm.lab.tomcat import TOMCAT_PORT, start_tomcat_pair, tomcat_unavailable_reason
from hafm.vrrp.constants import master_down_interval, skew_time

A, B = "198.51.100.1", "198.51.100.2"
PRIO_A, PRIO_B = 100, 90


def say(message: str) -> None:
    print(message, flush=True)


def rfc_bound(event: str, version: int, advert_int: float) -> tuple[float, str]:
    """The takeover time RFC 5798 promises for this failure, and its name."""
    if event == "term":
        return skew_time(PRIO_B, version=version, master_adver_interval=advert_int), "Skew_Time (priority-0 advert)"
    return master_down_interval(PRIO_B, version=version, master_adver_interval=advert_int), "Master_Down_Interval"


def show(nodes: dict[str, DaemonNode], poller: ClientPoller, seconds: float) -> None:
    """Print who holds the VIP and what the client sees, a line every 0.25 s."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        holders = [name.upper() for name, node in nodes.items() if node.has_vip()] or ["nobody"]
        states = ", ".join(f"{name.upper()} {node.state() or '…'}" for name, node in nodes.items())
        seen = poller.latest
        client = f"page from server {seen}" if seen else "no answer"
        say(f"  VIP on {'+'.join(holders):<6} | {states:<22} | client: {client}")
        time.sleep(0.25)


def _client_moves_to_b(
    nodes: dict[str, DaemonNode], poller: ClientPoller, failed_at: float, timeout: float
) -> float | None:
    """Wait for the client to reach B, show the pair; the client-seen outage, or None (B's log said)."""
    poller.wait_for(B, timeout=timeout)
    show(nodes, poller, 1.0)
    outage = poller.outage(failed_at, B)
    if outage is None:
        say("the client never reached node B; B's log:\n" + nodes["b"].log)
    return outage


def run_demo(*, keep: bool = False, event: str = "term", vrrp_version: int = 2, tomcat: bool = False) -> int:
    reason = netns_unavailable_reason()
    if reason is not None:
        print(f"hafm demo: {reason} (it builds network namespaces: run it as root)", file=sys.stderr)
        return 1
    if tomcat and (reason := tomcat_unavailable_reason()) is not None:
        print(f"hafm demo --tomcat: {reason}", file=sys.stderr)
        return 1
    advert_int = 1.0
    workdir = Path(tempfile.mkdtemp(prefix="hafm-demo-"))
    lab = Lab(workdir=workdir)
    lab.start()
    try:
        if tomcat:
            played = _play_tomcat(lab, workdir, version=vrrp_version, advert_int=advert_int)
            if keep:
                say(f"\nThe lab is still up (namespaces {lab.prefix}-*; Tomcat on port 8080); logs in {workdir}")
            return played
        return _play(lab, workdir, keep=keep, event=event, version=vrrp_version, advert_int=advert_int)
    finally:
        if keep:
            atexit.unregister(lab.teardown)
        else:
            lab.teardown()
            say("lab torn down.")


def _play(lab: Lab, workdir: Path, *, keep: bool, event: str, version: int, advert_int: float) -> int:
    say(f"hafm demo: two servers behind VIP {VIP4} (VRRPv{version}, VRID 51, advert_int {advert_int:g} s)")
    say(f"  node A {A} priority {PRIO_A} MASTER, node B {B} priority {PRIO_B} BACKUP")
    say(f"  namespaces {lab.prefix}-*, logs and configs in {workdir}")
    a, b, nodes = start_classic_pair(lab, workdir, version=version, advert_int=advert_int)
    client = lab.add_host("client", "198.51.100.50/24")
    with ClientPoller(client) as poller:
        if not (a.wait_state("MASTER") and poller.wait_for(A, timeout=5)):
            say("node A did not become MASTER; its log:\n" + a.log)
            return 1
        show(nodes, poller, 1.0)

        bound, bound_name = rfc_bound(event, version, advert_int)
        action = {"term": "SIGTERM to hafm on A", "kill": "SIGKILL to hafm on A", "linkdown": "A's cable pulled"}
        say(f"\n>>> {action[event]}")
        failed_at = time.monotonic()
        if event == "term":
            a.stop()
        elif event == "kill":
            a.kill()
        else:
            lab.link_down(a.host)
        outage = _client_moves_to_b(nodes, poller, failed_at, timeout=bound + 5)
        if outage is None:
            return 1
        say(f"\nclient-seen outage: {outage:.3f} s   (RFC bound: {bound_name} = {bound:.3f} s)")
        if isinstance(b, HafmNode):
            say(f"\n$ hafm status --socket {b.socket_path}   # on node B, after the takeover")
            say(b.control("status").stdout.rstrip())

        say("\n>>> node A comes back")
        back_at = time.monotonic()
        if event == "linkdown":
            lab.link_up(a.host)
        else:
            if event == "kill":
                say("  (the killed daemon left its VIP behind; the restarted one removes it)")
            a.start()
        poller.wait_for(A, timeout=10)
        show(nodes, poller, 1.0)
        back = poller.outage(back_at, A)
        say(f"\nA preempted B; client-seen switch-back gap: {back:.3f} s" if back is not None else "A did not preempt")
        say("\nnode A log:\n" + "".join(f"  {line}\n" for line in a.log.splitlines() if " -> " in line))
        say("node B log:\n" + "".join(f"  {line}\n" for line in b.log.splitlines() if " -> " in line))
    if keep:
        prefix = lab.prefix
        say(f"\nThe lab is still up (namespaces {prefix}-a, {prefix}-b, {prefix}-client, {prefix}-br). Try:")
        say(
            f'  ip netns exec {prefix}-client python3 -c "import urllib.request as u; '
            f"print(u.urlopen('http://{VIP4}/test/test.html').read().decode())\""
        )
        say(f"  ip -n {prefix}-a addr show eth0;  ip -n {prefix}-br link set a down   # pull A's cable")
        say(f"  logs and configs: {workdir}")
        say(
            f"  tear down: for ns in $(ip netns list | grep -o '^{prefix}-[a-z]*'); do "
            "ip netns pids $ns | xargs -r kill; ip netns del $ns; done"
        )
    return 0


def _play_tomcat(lab: Lab, workdir: Path, *, version: int, advert_int: float) -> int:
    """The seed with real Tomcat: A's hafm stops, then only A's Tomcat stops (hafm keeps running)."""
    say(f"hafm demo --tomcat: two real Tomcat servers behind VIP {VIP4}:{TOMCAT_PORT} (VRRPv{version})")
    say(f"  node A {A} priority {PRIO_A} MASTER, node B {B} priority {PRIO_B} BACKUP, each tracking its Tomcat")
    say(f"  namespaces {lab.prefix}-*, logs, configs and CATALINA_BASEs in {workdir}")
    pair = start_tomcat_pair(lab, workdir, advert_int=advert_int)
    a, nodes = pair.nodes["a"], pair.nodes
    with ClientPoller(pair.client, url=pair.page_url, timeout=0.2) as poller:
        if not (a.wait_state("MASTER", timeout=10) and poller.wait_for(A, timeout=10)):
            say("node A did not become MASTER; its log:\n" + a.log)
            return 1
        show(nodes, poller, 1.0)
        halves = (
            ("SIGTERM to hafm on A (A's Tomcat keeps running)", a.stop, a.start),
            ("A's Tomcat stopped (hafm on A keeps running)", pair.tomcats["a"].stop, pair.tomcats["a"].start),
        )
        for action, fail, repair in halves:
            say(f"\n>>> {action}")
            failed_at = time.monotonic()
            fail()
            outage = _client_moves_to_b(nodes, poller, failed_at, timeout=10)
            if outage is None:
                return 1
            say(f"\nclient-seen outage: {outage:.3f} s")
            say("\n>>> repaired: A comes back")
            back_at = time.monotonic()
            repair()
            if not poller.wait_for(A, timeout=15):
                say("A did not take the VIP back; its log:\n" + a.log)
                return 1
            show(nodes, poller, 1.0)
            say(f"A took the VIP back {time.monotonic() - back_at:.3f} s after the repair began")
        say("\nnode A log:\n" + "".join(f"  {line}\n" for line in a.log.splitlines() if " -> " in line))
    return 0
