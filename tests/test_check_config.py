"""Tests for `hafm check-config` (hafm.config.check.run): exit codes, stdout and stderr."""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hafm.config.check import run

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "contrib" / "hafm.toml"
TOMCAT_DROPIN = REPO / "conf.d" / "tomcat.toml"


def run_captured(path: Path, **kwargs: Any) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(path, out=out, err=err, **kwargs)
    return code, out.getvalue(), err.getvalue()


def test_example_config_is_valid_and_shows_provenance() -> None:
    code, out, err = run_captured(EXAMPLE)
    assert code == 0
    assert err == f"{EXAMPLE}: configuration OK\n"
    lines = out.splitlines()
    for line in [
        f'router_id = "NodeA"  # {EXAMPLE}',
        f"virtual_router_id = 51  # {EXAMPLE}",
        f"priority = 100  # {EXAMPLE}",
        f'state = "MASTER"  # {EXAMPLE}',
        f'authentication = {{ auth_type = "PASS", auth_pass = "1111" }}  # {EXAMPLE}',
        f'virtual_ipaddress = ["192.168.8.100/24"]  # {EXAMPLE}',
        f'track_check = ["tomcat"]  # {EXAMPLE}',
        f'include = ["{REPO}/conf.d/*.toml"]  # {EXAMPLE}',
        "[check.tomcat]",
        f'type = "http"  # {TOMCAT_DROPIN}',
        f'url = "http://127.0.0.1:8080/test/test.html"  # {TOMCAT_DROPIN}',
        f'expect_body = "this is the test page"  # {TOMCAT_DROPIN}',
        f"weight = -20  # {TOMCAT_DROPIN}",
        "garp_master_delay = 5  # default",
    ]:
        assert line in lines


def test_example_config_passes_a_validator_for_http(tmp_path: Path) -> None:
    seen: list[dict[str, Any]] = []

    def http(options: Mapping[str, Any]) -> list[tuple[str, str]]:
        seen.append(dict(options))
        return []

    code, _, _ = run_captured(EXAMPLE, check_validators={"http": http, "ping": lambda options: []})
    assert code == 0
    assert seen[0]["url"] == "http://127.0.0.1:8080/test/test.html"


def test_example_config_passes_the_builtin_check_validators() -> None:
    from hafm.plugin_manager import check_types, make_plugin_manager

    validators = {name: t.validate for name, t in check_types(make_plugin_manager(load_entry_points=False)).items()}
    code, out, err = run_captured(EXAMPLE, check_validators=validators)
    assert code == 0, err
    assert "[check.gateway]" in out


def test_errors_go_to_stderr_one_per_line_and_exit_1(tmp_path: Path) -> None:
    path = tmp_path / "hafm.toml"
    path.write_text(
        '[vrrp_instance.VI_1]\ninterface = "eth0"\nvirtual_router_id = 300\npriority = 0\nallow_no_vip = true\n'
    )
    code, out, err = run_captured(path)
    assert code == 1
    assert out == ""
    assert err.splitlines() == [
        f"{path}: vrrp_instance.VI_1.virtual_router_id: 300 is out of range 1..255",
        f"{path}: vrrp_instance.VI_1.priority: 0 is out of range 1..255",
        f"{path}: configuration has 2 errors",
    ]


def test_unknown_check_type_with_validators_exits_1(tmp_path: Path) -> None:
    path = tmp_path / "hafm.toml"
    path.write_text('[vrrp_instance.VI_1]\ninterface = "eth0"\nvirtual_router_id = 1\n[check.c]\ntype = "ping"\n')
    code, _, err = run_captured(path, check_validators={"http": lambda options: []})
    assert code == 1
    assert err.splitlines()[0] == f"{path}: check.c.type: unknown check type 'ping' (known: http)"


def test_missing_file_exits_1(tmp_path: Path) -> None:
    path = tmp_path / "missing.toml"
    code, out, err = run_captured(path)
    assert (code, out) == (1, "")
    assert err.splitlines() == [
        f"{path}: cannot read configuration file: No such file or directory",
        f"{path}: configuration has 1 error",
    ]
