"""A drop-in whose hook blocks the event loop for 2 s: the plugin's bug, but hafm says which plugin and for how long.

Adverts are late while it blocks (nothing in one process can preempt a blocking call), so the test
asserts what an operator needs: the log line naming the plugin and the duration, the gap on the
wire matching it, and no flap (2 s is less than the Backup's Master_Down_Interval of 3.6 s).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from scapy.layers.inet import IP
from scapy.utils import rdpcap

from hafm.lab.network import Lab, wait_until
from hafm.lab.nodes import HafmPluginNode, instance_toml, vip_holders_become

BLOCKING = """\
import time

from hafm.hooks import hookimpl


@hookimpl
def hafm_state_changed(instance, new_state):
    if new_state == "MASTER":
        time.sleep(2)  # a CPU-bound or blocking plugin
"""


@pytest.mark.slow
def test_a_blocking_hook_is_named_with_how_long_it_held_the_loop(lab: Lab, tmp_path: Path) -> None:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "blocking.py").write_text(BLOCKING)
    hosts = {"a": lab.add_host("a", "198.51.100.1/24"), "b": lab.add_host("b", "198.51.100.2/24")}
    client = lab.add_host("client", "198.51.100.50/24")
    a = HafmPluginNode(
        host=hosts["a"],
        config=instance_toml(priority=100, state="MASTER"),
        workdir=tmp_path / "daemons",
        plugin_dirs=(str(plugins),),
    )
    b = HafmPluginNode(host=hosts["b"], config=instance_toml(priority=90), workdir=tmp_path / "daemons")
    sniffer = client.sniff(bpf_filter="ip proto 112 and src 198.51.100.1")
    b.start()
    a.start()
    nodes = {"a": a, "b": b}
    assert a.wait_state("MASTER"), a.log
    said = r"plugin \S*blocking\.py \(file \S+\) held the event loop for (\d+\.\d+) s in hafm_state_changed"
    assert wait_until(lambda: re.search(said, a.current_log()) is not None, timeout=5), a.current_log()
    held = float(re.search(said, a.current_log()).group(1))  # type: ignore[union-attr]
    assert 1.9 <= held <= 3.0, held
    assert vip_holders_become(nodes, ["a"], timeout=5)
    assert not wait_until(lambda: b.state() == "MASTER", timeout=4), "B took over during the block"
    times = [float(p.time) for p in rdpcap(str(sniffer.stop())) if p.haslayer(IP)]
    gaps = [later - earlier for earlier, later in zip(times, times[1:], strict=False)]
    assert gaps and max(gaps) >= 1.5, f"the block did not show on the wire: {gaps}"  # it held the loop
    assert all(gap <= 1.1 for gap in gaps[gaps.index(max(gaps)) + 1 :]), "adverts back on schedule after it"
