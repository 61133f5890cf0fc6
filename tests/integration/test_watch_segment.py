"""`hafm watch` on a lab segment: a hafm pair (VRID 51, VRRPv2), a keepalived pair (VRID 52, VRRPv3 over
IPv6) and a misconfigured third node on VRID 51 (other interval, one VIP more, started as MASTER).

The third node and hafm's Master drop each other's adverts (the VRRPv2 intervals differ), so both stay
Master: watch, listening on the bridge, must show every speaker and name each problem.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from hafm.lab.network import Lab
from hafm.lab.nodes import VIP4, DaemonNode, HafmNode, KeepalivedNode, instance_toml, keepalived_conf, start_mixed_nodes

pytestmark = pytest.mark.skipif(shutil.which("keepalived") is None, reason="keepalived is not on PATH")

VIP52 = "2001:db8::52"
ODD_VIP = "198.51.100.101"
WATCH_SECONDS = 6
AS_V2 = "v3_checksum_as_v2 = true\n"


def link_local(node: DaemonNode) -> str:
    [address] = [a.split("/")[0] for a in node.host.addresses() if a.startswith("fe80:")]
    return address


def test_watch_reports_every_speaker_and_what_breaks_the_cluster(lab: Lab, tmp_path: Path) -> None:
    nodes = start_mixed_nodes(
        lab,
        tmp_path,
        {
            "a": ("198.51.100.1/24", HafmNode, instance_toml(priority=100, state="MASTER")),
            "b": ("198.51.100.2/24", HafmNode, instance_toml(priority=90)),
            "c": (
                "198.51.100.3/24",
                KeepalivedNode,
                keepalived_conf(priority=100, state="MASTER", vrid=52, version=3, vips=(f"{VIP52}/64",)),
            ),
            "d": (
                "198.51.100.4/24",
                KeepalivedNode,
                keepalived_conf(priority=90, vrid=52, version=3, vips=(f"{VIP52}/64",)),
            ),
            "e": (
                "198.51.100.9/24",
                HafmNode,
                instance_toml(priority=80, state="MASTER", advert_int=2, vips=(f"{VIP4}/24", f"{ODD_VIP}/24")),
            ),
        },
    )
    for name in ("a", "c", "e"):
        assert nodes[name].wait_state("MASTER"), nodes[name].current_log()
    for name in ("b", "d"):
        assert nodes[name].wait_state("BACKUP"), nodes[name].current_log()

    argv = [sys.executable, "-m", "hafm", "watch", "br0", "--seconds", str(WATCH_SECONDS), "--json"]
    # VRRPv3 over IPv6 is sent from the link-local address.
    c_ll, d_ll = (link_local(nodes[name]) for name in ("c", "d"))
    argv += ["--expect", "51=198.51.100.1,198.51.100.2", "--expect", f"52={c_ll},{d_ll}"]
    argv += ["--config", str(nodes["a"].config_path)]
    result = lab.bridge_run(*argv, timeout=WATCH_SECONDS + 20)
    document = json.loads(result.stdout)

    speakers = {(s["vrid"], s["source"]): s for s in document["speakers"]}
    assert set(speakers) == {(51, "198.51.100.1"), (51, "198.51.100.9"), (52, c_ll)}, document
    expected_rows: dict[tuple[int, str], dict[str, Any]] = {
        (51, "198.51.100.1"): {"version": 2, "priority": 100, "interval": 1.0, "auth_type": 1, "addresses": [VIP4]},
        (51, "198.51.100.9"): {
            "version": 2,
            "priority": 80,
            "interval": 2.0,
            "auth_type": 1,
            "addresses": [VIP4, ODD_VIP],
        },
        (52, c_ll): {"version": 3, "priority": 100, "interval": 1.0, "auth_type": None, "addresses": [VIP52]},
    }
    for key, fields in expected_rows.items():
        row = speakers[key]
        assert {name: row[name] for name in fields} == fields, row
        assert row["ttl"] == 255 and row["count"] >= 2, row
    v6 = speakers[(52, c_ll)]
    assert (v6["family"], v6["destination"], v6["checksum"]) == (6, "ff02::12", "rfc"), v6

    findings: dict[str, list[dict[str, Any]]] = {}
    for finding in document["findings"]:
        findings.setdefault(finding["kind"], []).append(finding)
    assert set(findings) == {
        "two_masters",
        "address_mismatch",
        "interval_mismatch",
        "unknown_router",
        "config_mismatch",
    }, document["findings"]
    assert all(f["vrid"] == 51 for kind in findings.values() for f in kind), "VRID 52 is healthy"
    [two_masters] = findings["two_masters"]
    assert two_masters["sources"] == ["198.51.100.1", "198.51.100.9"]
    [unknown] = findings["unknown_router"]
    assert unknown["sources"] == ["198.51.100.9"]
    [config] = findings["config_mismatch"]
    assert config["sources"] == ["198.51.100.9"] and f"VI_1 in {nodes['a'].config_path}" in config["message"]


def test_watch_tells_which_checksum_rule_each_vrrpv3_sender_uses(lab: Lab, tmp_path: Path) -> None:
    """hafm with v3_checksum_as_v2 and keepalived with the RFC checksum drop each other's adverts: two Masters."""
    nodes = start_mixed_nodes(
        lab,
        tmp_path,
        {
            # keepalived 2.2.7 as Master hardly advertises while it drops an invalid advert every 0.1 s (0 to 3
            # of its 0.1 s adverts in 2 s, once none in 5 s), so hafm advertises slower than keepalived here.
            "a": (
                "198.51.100.1/24",
                HafmNode,
                instance_toml(priority=100, state="MASTER", version=3, advert_int=1, extra=AS_V2),
            ),
            "b": ("198.51.100.2/24", KeepalivedNode, keepalived_conf(priority=90, version=3, advert_int=0.1)),
        },
    )
    for node in nodes.values():
        assert node.wait_state("MASTER"), node.current_log()

    result = lab.bridge_run(sys.executable, "-m", "hafm", "watch", "br0", "--seconds", "3", "--json", timeout=20)
    document = json.loads(result.stdout)

    rules = {s["source"]: s["checksum"] for s in document["speakers"]}
    assert rules == {"198.51.100.1": "as_v2", "198.51.100.2": "rfc"}, document
    findings = {f["kind"]: f["sources"] for f in document["findings"]}
    both = ["198.51.100.1", "198.51.100.2"]
    assert findings == {"checksum_mismatch": both, "interval_mismatch": both, "two_masters": both}, document
