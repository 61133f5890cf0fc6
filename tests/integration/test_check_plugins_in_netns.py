"""The tomcat failover driven by other check types: a ``script`` check and a check type that a
``conf.d/*.py`` drop-in plugin adds.  Same pair as test_tomcat_check_failover.py, plain mode:
A (100, MASTER) and B (90) each check their own test page; only A's page server stops.
"""

from __future__ import annotations

import stat
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import pytest

from hafm.lab.network import Lab, wait_until
from hafm.lab.nodes import (
    ClientPoller,
    DaemonNode,
    HafmPluginNode,
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
FALL = RISE = 2
MARGIN = 0.5
SKEW_A, SKEW_B = (256 - 100) / 256, (256 - 90) / 256
TAKEOVER_BOUND = FALL * CHECK_INTERVAL + 3 * ADVERT_INT + SKEW_B + MARGIN
FAILBACK_BOUND = RISE * CHECK_INTERVAL + 3 * ADVERT_INT + SKEW_A + MARGIN

# The script check runs with PATH only and no shell: bash's /dev/tcp does the HTTP GET, so the
# check needs neither curl nor a Python start-up per probe.
PAGE_SCRIPT = """#!/bin/bash
exec 3<>/dev/tcp/127.0.0.1/80 || exit 2
printf 'GET /test/test.html HTTP/1.0\\r\\nHost: 127.0.0.1\\r\\n\\r\\n' >&3
grep -q 'this is the test page' <&3 || { echo "page lacks the test text"; exit 1; }
"""

# A drop-in as an operator would write it in /etc/hafm/conf.d/page.py.
PAGE_PLUGIN = '''"""conf.d/page.py: a `page` check type, up while a URL's body contains a text."""

import asyncio
import urllib.request

from hafm.hooks import CheckType, ProbeResult, check_keys, hookimpl


def validate(options):
    return check_keys(options, required=("url", "contains"))


def create(check):
    url, contains, timeout = check.options["url"], check.options["contains"], check.timeout

    def fetch():
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                body = response.read(65536).decode("utf-8", "replace")
        except OSError as exc:
            return ProbeResult(ok=False, detail=f"page: {exc}")
        return ProbeResult(ok=contains in body, detail=f"page: {len(body)} bytes")

    async def probe():
        # urllib blocks: keep it off the event loop that sends the adverts.
        return await asyncio.to_thread(fetch)

    return probe


@hookimpl
def hafm_register_check_types():
    return [CheckType(name="page", validate=validate, create=create)]
'''


class CheckSetup(NamedTuple):
    table: str  # the [check.tomcat] table
    plugin_dirs: tuple[str, ...]
    up_detail: str  # how the check's "up" detail starts in the log
    label: str


COMMON = {"interval": CHECK_INTERVAL, "fall": FALL, "rise": RISE, "weight": -20}


def script_setup(tmp_path: Path) -> CheckSetup:
    """A script check that GETs the local page."""
    script = tmp_path / "check_page.sh"
    script.write_text(PAGE_SCRIPT)
    script.chmod(0o755)
    # A script is a process per probe: give it more time than an in-process HTTP request.
    table = check_toml("tomcat", type="script", script=[str(script)], timeout=0.4, **COMMON)
    return CheckSetup(table=table, plugin_dirs=(), up_detail="exit 0", label="script check")


def plugin_setup(tmp_path: Path) -> CheckSetup:
    """The drop-in's `page` check on the local page; the drop-in in the node's plugin dir."""
    plugins = tmp_path / "conf.d"
    plugins.mkdir()
    plugin = plugins / "page.py"
    plugin.write_text(PAGE_PLUGIN)
    plugin.chmod(0o644)  # hafm refuses a drop-in that group or others could write
    assert plugin.stat().st_uid == 0 and stat.S_IMODE(plugin.stat().st_mode) == 0o644
    table = check_toml(
        "tomcat",
        type="page",
        url="http://127.0.0.1/test/test.html",
        contains="this is the test page",
        timeout=0.3,
        **COMMON,
    )
    return CheckSetup(table=table, plugin_dirs=(str(plugins),), up_detail="page: ", label="drop-in page check")


def _wait_log(node: DaemonNode, text: str, timeout: float = 8.0) -> bool:
    return wait_until(lambda: text in node.current_log(), timeout=timeout, interval=0.02)


@pytest.mark.parametrize("setup", [script_setup, plugin_setup], ids=["script", "dropin_plugin"])
def test_check_type_moves_the_vip(lab: Lab, tmp_path: Path, setup: Callable[[Path], CheckSetup]) -> None:
    check, plugin_dirs, up_detail, label = setup(tmp_path)
    track = 'track_check = ["tomcat"]\n'
    specs = {
        "a": (f"{A}/24", instance_toml(priority=100, state="MASTER", extra=track) + check),
        "b": (f"{B}/24", instance_toml(priority=90, extra=track) + check),
    }
    nodes: dict[str, DaemonNode] = {}
    for number, (name, (address, config)) in enumerate(specs.items(), start=1):
        host = lab.add_host(name, address, f"2001:db8::{number}/64")
        host.start_test_page_server()
        nodes[name] = HafmPluginNode(host=host, config=config, workdir=tmp_path / "daemons", plugin_dirs=plugin_dirs)
    for node in nodes.values():
        node.start()
    a, b = nodes["a"], nodes["b"]
    for node in (a, b):
        assert _wait_log(node, f"check tomcat: up ({up_detail}"), node.log
    assert a.wait_state("MASTER"), a.log
    assert b.wait_state("BACKUP"), b.log
    assert _wait_log(a, "VI_1: priority 80 -> 100"), a.log
    client = lab.add_host("client", "198.51.100.50/24")

    with ClientPoller(client) as poller:
        assert poller.wait_for(A, timeout=3), "client never saw A"
        a_mark = len(a.current_log())
        stopped = time.monotonic()
        a.host.stop_test_page_server()
        assert poller.wait_for(B, timeout=TAKEOVER_BOUND + 3), f"B never answered through the VIP\n{a.log}"
        took = first_answer_from(poller, B, stopped)
        assert took is not None
        print(f"\n{label}: client saw B {took:.3f} s after A's page server stopped")
        assert took <= TAKEOVER_BOUND, f"takeover after {took:.3f} s, bound {TAKEOVER_BOUND:.3f} s\n{b.log}"
        assert a.proc is not None and a.proc.poll() is None
        assert a.wait_state("BACKUP"), a.log
        log = a.current_log()[a_mark:]
        assert "check tomcat: down (" in log
        assert "VI_1: priority 100 -> 80 (base 100, tomcat down -20 → 80)" in log
        assert vip_holders_become(nodes, ["b"]), vip_holders(nodes)

        a_mark = len(a.current_log())
        started = time.monotonic()
        a.host.start_test_page_server()
        assert poller.wait_for(A, timeout=FAILBACK_BOUND + 3), f"A never came back\n{a.log}"
        back = first_answer_from(poller, A, started)
        assert back is not None and back <= FAILBACK_BOUND, f"failback after {back} s\n{a.log}"
        assert a.wait_state("MASTER"), a.log
        assert b.wait_state("BACKUP"), b.log
        assert f"check tomcat: up ({up_detail}" in a.current_log()[a_mark:]
        assert "VI_1: priority 80 -> 100" in a.current_log()[a_mark:]
        assert vip_holders_become(nodes, ["a"]), vip_holders(nodes)


GATEWAY_EXAMPLE = Path(__file__).resolve().parents[2] / "conf.d" / "gateway.toml"
GW = "198.51.100.254"


def test_gateway_ping_check_puts_an_unreachable_node_in_fault(lab: Lab, tmp_path: Path) -> None:
    """The arbiter pattern, with the shipped conf.d/gateway.toml (only its host changed)."""
    example = tomllib.loads(GATEWAY_EXAMPLE.read_text())["check"]["gateway"]
    assert example["weight"] == 0 and example["type"] == "ping"
    gateway = check_toml("gateway", **{**example, "host": GW})
    interval, fall, rise, timeout = example["interval"], example["fall"], example["rise"], example["timeout"]
    gw = lab.add_host("gw", f"{GW}/24")
    # Only A tracks the gateway here: the gateway's link going down stands in for A losing its
    # uplink (in production both nodes track it, and the one that still reaches it keeps the VIP).
    nodes = start_nodes(
        lab,
        tmp_path,
        {
            "a": (
                f"{A}/24",
                instance_toml(priority=100, state="MASTER", extra='track_check = ["gateway"]\n') + gateway,
            ),
            "b": (f"{B}/24", instance_toml(priority=90)),
        },
    )
    a, b = nodes["a"], nodes["b"]
    assert _wait_log(a, f"check gateway: up (reply from {GW}"), a.log
    assert a.wait_state("MASTER", timeout=10), a.log
    assert b.wait_state("BACKUP"), b.log
    client = lab.add_host("client", "198.51.100.50/24")

    with ClientPoller(client) as poller:
        assert poller.wait_for(A, timeout=3), "client never saw A"
        a_mark = len(a.current_log())
        cut = time.monotonic()
        lab.link_down(gw)
        # Down after `fall` lost pings; A leaves MASTER with a priority-0 advert, B waits only Skew_Time.
        bound = fall * interval + timeout + SKEW_B + MARGIN
        assert poller.wait_for(B, timeout=bound + 3), f"B never answered through the VIP\n{a.log}"
        took = first_answer_from(poller, B, cut)
        assert took is not None
        print(f"\ngateway down: client saw B {took:.3f} s after the gateway's link went down (bound {bound:.3f} s)")
        assert took <= bound, f"takeover after {took:.3f} s, bound {bound:.3f} s\n{a.log}"
        assert a.wait_state("FAULT"), a.log
        log = a.current_log()[a_mark:]
        assert "check gateway: down (" in log
        assert "VI_1: MASTER -> FAULT (" in log
        assert f"BACKUP -> MASTER (master {A} resigned (priority 0 advert))" in b.current_log()
        assert vip_holders_become(nodes, ["b"]), f"A in FAULT must not hold the VIP: {vip_holders(nodes)}"

        a_mark = len(a.current_log())
        healed = time.monotonic()
        lab.link_up(gw)
        # Up after `rise` answered pings, then A (BACKUP at 100) preempts B when its timer runs out.
        back_bound = rise * interval + timeout + 3 * ADVERT_INT + SKEW_A + MARGIN
        assert poller.wait_for(A, timeout=back_bound + 3), f"A never came back\n{a.log}"
        back = first_answer_from(poller, A, healed)
        assert back is not None and back <= back_bound, f"A back after {back} s, bound {back_bound:.3f} s\n{a.log}"
        assert a.wait_state("MASTER"), a.log
        assert b.wait_state("BACKUP"), b.log
        log = a.current_log()[a_mark:]
        assert "check gateway: up (" in log
        assert "VI_1: FAULT -> BACKUP (" in log
        assert vip_holders_become(nodes, ["a"]), vip_holders(nodes)
