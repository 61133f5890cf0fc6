"""``hafm demo``: the classic two-server failover, played for real in network namespaces.

Two "Tomcat" hosts (a test page server each) share 198.51.100.100; node A
(priority 100) is Master, node B (90) Backup.  A client polls the VIP every
5 ms while A fails and comes back; the demo prints what the client saw next
to the RFC's bound.
"""

from __future__ import annotations

import atexit
import sys
import tempfile
import time
from pathlib import Path

from hafm.lab.network import Lab, netns_unavailable_reason
from hafm.lab.nodes import VIP4, ClientPoller, DaemonNode, HafmNode, start_classic_pair
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


def run_demo(*, keep: bool = False, event: str = "term", vrrp_version: int = 2) -> int:
    reason = netns_unavailable_reason()
    if reason is not None:
        print(f"hafm demo: {reason} (it builds network namespaces: run it as root)", file=sys.stderr)
        return 1
    advert_int = 1.0
    workdir = Path(tempfile.mkdtemp(prefix="hafm-demo-"))
    lab = Lab(workdir=workdir)
    lab.start()
    try:
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
        poller.wait_for(B, timeout=bound + 5)
        show(nodes, poller, 1.0)
        outage = poller.outage(failed_at, B)
        if outage is None:
            say("the client never reached node B; B's log:\n" + b.log)
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
