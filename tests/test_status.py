"""The status document and its table (hafm/status.py); docs/status.md documents every field."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any

from hafm.config.model import CheckConfig, Config, TrackCheck
from hafm.status import SCHEMA, build_status, contribution, render_table
from hafm.vrrp import coordinator as co
from hafm.vrrp.tracking import Tracked
from tests.helpers import instance_config

DOCS = Path(__file__).resolve().parent.parent / "docs" / "status.md"


def document() -> dict[str, Any]:
    config = Config(
        path=Path("/etc/hafm.toml"),
        instances={"VI_1": instance_config(track_check=(TrackCheck(name="tomcat", weight=-20),))},
        checks={"tomcat": CheckConfig(name="tomcat", type="http", weight=-20)},
    )
    coordinator = co.Coordinator(config)
    coordinator.handle(co.Started(sources={"VI_1": ipaddress.ip_address("198.51.100.1")}, links={"eth0": True}), 0)
    coordinator.handle(co.CheckChanged(check="tomcat", up=False, detail="HTTP 500"), 1)
    coordinator.handle(co.InstanceTimerFired(instance="VI_1", timer=co.Timer.MASTER_DOWN), 4)
    return build_status(
        coordinator,
        now=10.0,
        wall_now=1_800_000_000.0,
        started=0.0,
        version="0.1.0",
        pid=42,
        config_path="/etc/hafm.toml",
        checks={"tomcat": ("http", False, "HTTP 500")},
        extra={"notify": {"runs": 2, "failures": 1}},
    )


def test_the_document_says_what_an_operator_asks() -> None:
    status = document()
    assert status["schema"] == SCHEMA
    vi_1 = status["instances"][0]
    assert vi_1["state"] == "MASTER" and vi_1["since_seconds"] == 6.0
    assert vi_1["priority"]["base"] == 100 and vi_1["priority"]["effective"] == 80
    assert vi_1["tracked_checks"] == [
        {"name": "tomcat", "weight": -20, "up": False, "value": None, "contribution": -20, "last_result": "HTTP 500"}
    ]
    assert vi_1["master"] == {"address": "198.51.100.1", "priority": 80}
    assert vi_1["counters"]["became_master"] == 1


def test_contributions_follow_the_tracking_rules() -> None:
    def of(weight: int, up: bool, delta: int | None = None) -> int | str:
        return contribution(Tracked("c", weight, up, delta))

    assert of(-20, False) == -20 and of(-20, True) == 0
    assert of(10, True) == 10 and of(10, False) == 0
    assert of(0, False) == "fault" and of(0, True) == 0
    assert of(5, True, 3) == 15 and of(0, True, 1) == "fault"


def test_the_table_fits_80_columns() -> None:
    table = render_table(document())
    assert "VI_1  MASTER" in table and "notify scripts: 2 runs, 1 failed" in table
    assert max(len(line) for line in table.splitlines()) <= 80


def test_every_field_is_documented() -> None:
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", DOCS.read_text(), flags=re.M))
    status = document()
    missing = set(status) - documented
    missing |= set(status["instances"][0]) - documented
    assert not missing, f"fields missing from docs/status.md: {sorted(missing)}"
    assert f"`{SCHEMA}`" in DOCS.read_text()
