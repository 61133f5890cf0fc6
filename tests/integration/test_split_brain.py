"""A partition makes both nodes Master; healing it leaves exactly one, and the client follows the winner."""

import functools
import time
from pathlib import Path

from hafm.lab.network import Lab, wait_until
from hafm.lab.nodes import VIP4, HafmPluginNode, start_classic_pair, vip_holders, vip_holders_become

ADVERT_INT = 1.0

# A third-party plugin on the split-brain hook, loaded as a conf.d/*.py drop-in.
RECORDER = """\
from pathlib import Path

from hafm.hooks import hookimpl


@hookimpl
def hafm_split_brain(instance, peer, peer_priority):
    with open(Path(__file__).with_name("split_brain.log"), "a") as log:
        log.write(f"{instance} {peer} {peer_priority}\\n")
"""


def test_partition_then_heal(lab: Lab, tmp_path: Path) -> None:
    plugins = tmp_path / "conf.d"
    plugins.mkdir()
    (plugins / "recorder.py").write_text(RECORDER)
    recording = functools.partial(HafmPluginNode, plugin_dirs=(str(plugins),))
    a, b, nodes = start_classic_pair(lab, tmp_path, kind=recording)  # type: ignore[arg-type]
    client = lab.add_host("client", "198.51.100.50/24")
    assert a.wait_state("MASTER") and b.wait_state("BACKUP")
    assert client.http_get("http://198.51.100.100/test/test.html") is not None  # the client knows A's MAC
    assert client.neighbour_mac(VIP4) == a.host.mac

    lab.isolate(a.host, b.host)
    assert b.wait_state("MASTER", timeout=6), b.log
    assert vip_holders_become(nodes, ["a", "b"]), vip_holders(nodes)
    # B's gratuitous ARP moved the client to B during the partition.
    assert wait_until(lambda: client.neighbour_mac(VIP4) == b.host.mac, timeout=2)

    healed = time.monotonic()
    lab.isolate(a.host, b.host, on=False)
    assert b.wait_state("BACKUP", timeout=3 * ADVERT_INT), b.log
    assert time.monotonic() - healed <= 3 * ADVERT_INT
    assert a.state() == "MASTER"
    assert vip_holders_become(nodes, ["a"], timeout=1), vip_holders(nodes)
    assert "VI_1: split brain: another master 198.51.100.2 prio 90" in a.current_log()
    assert a.current_log().count("split brain") == 1, "logged once per episode"
    assert wait_until(lambda: (plugins / "split_brain.log").exists(), timeout=1)
    assert (plugins / "split_brain.log").read_text() == "VI_1 198.51.100.2 90\n", "the hook fired once"
    # The winner re-announced the VIP: the client is back on A without waiting for ARP to age.
    assert wait_until(lambda: client.neighbour_mac(VIP4) == a.host.mac, timeout=2)
    assert client.http_get("http://198.51.100.100/test/test.html") is not None
