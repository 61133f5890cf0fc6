"""Tests for `hafm check-config` (hafm.config.check.run): exit codes, stdout and stderr."""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from hafm import cli
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


# --- paths and files that used to hang check-config or end it with a traceback --------------------------

GOOD = '[vrrp_instance.VI_1]\ninterface = "eth0"\nvirtual_router_id = 1\nvirtual_ipaddress = ["203.0.113.1/24"]\n'


def check_config_cli(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    """``hafm check-config PATH`` as the operator runs it (plugins included); returns (exit code, stderr lines)."""
    code = cli.main(["check-config", str(path)])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.err.splitlines()


@pytest.mark.timeout(20)
def test_a_fifo_as_config_path_is_refused_without_opening_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fifo = tmp_path / "hafm.toml"
    os.mkfifo(fifo)
    assert check_config_cli(fifo, capsys) == (
        1,
        [
            f"{fifo}: cannot read configuration file: it is a FIFO, not a regular file",
            f"{fifo}: configuration has 1 error",
        ],
    )


@pytest.mark.timeout(20)
@pytest.mark.parametrize(("path", "kind"), [(Path("/dev/zero"), "a character device"), (Path("/"), "a directory")])
def test_a_device_or_directory_as_config_path_is_one_line(
    path: Path, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines = check_config_cli(path, capsys)
    assert (code, lines[0]) == (1, f"{path}: cannot read configuration file: it is {kind}, not a regular file")


@pytest.mark.timeout(20)
def test_a_fifo_among_the_dropins_is_an_error_not_a_hang(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main = tmp_path / "hafm.toml"
    main.write_text('[global]\ninclude = ["drop/*.toml"]\nplugin_dirs = []\n' + GOOD)
    (tmp_path / "drop").mkdir()
    os.mkfifo(tmp_path / "drop/x.toml")
    (tmp_path / "drop/gone.toml").symlink_to(tmp_path / "nowhere.toml")
    assert check_config_cli(main, capsys)[1] == [
        f"{tmp_path}/drop/gone.toml: cannot read configuration file: No such file or directory",
        f"{tmp_path}/drop/x.toml: cannot read configuration file: it is a FIFO, not a regular file",
        f"{main}: configuration has 2 errors",
    ]


def test_a_toml_array_nested_3000_deep_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main = tmp_path / "hafm.toml"
    main.write_text(GOOD + "garp_master_delay = " + "[" * 3000 + "]" * 3000 + "\n")
    assert check_config_cli(main, capsys) == (
        1,
        [
            f"{main}: TOML syntax error: arrays or tables nested too deeply (at most 32)",
            f"{main}: configuration has 1 error",
        ],
    )


def test_options_nested_deeper_than_the_bound_are_refused_before_any_validator(tmp_path: Path) -> None:
    main = tmp_path / "hafm.toml"
    main.write_text(GOOD + '[check.c]\ntype = "x"\nopts = ' + "[" * 100 + "]" * 100 + "\n")
    code, _, err = run_captured(main)
    assert (code, err.splitlines()[0]) == (
        1,
        f"{main}: TOML syntax error: arrays or tables nested too deeply (at most 32)",
    )


def test_an_integer_beyond_pythons_digit_limit_is_one_line(tmp_path: Path) -> None:
    main = tmp_path / "hafm.toml"
    main.write_text(GOOD + "priority = " + "1" * 5000 + "\n")
    code, _, err = run_captured(main)
    assert code == 1
    assert err.splitlines()[0].startswith(f"{main}: TOML syntax error: Exceeds the limit (4300 digits)")


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (
            lambda d: (d / "gone.py").symlink_to(d / "nowhere.py"),
            "gone.py: cannot read plugin drop-in: No such file or directory",
        ),
        (lambda d: os.mkfifo(d / "fifo.py"), "fifo.py: plugin drop-in refused: not a regular file"),
        (
            lambda d: (d / "quit.py").write_text("import sys\n\nsys.exit(3)\n"),
            "quit.py:3: import failed: SystemExit: 3",
        ),
    ],
    ids=["dangling-symlink", "fifo-hangs-an-import", "sys-exit-ended-hafm-silently"],
)
def test_a_bad_plugin_dropin_is_one_line(
    tmp_path: Path, make: Callable[[Path], object], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    main = tmp_path / "hafm.toml"
    main.write_text('[global]\nplugin_dirs = ["plugins"]\n' + GOOD)
    (tmp_path / "plugins").mkdir()
    make(tmp_path / "plugins")
    assert check_config_cli(main, capsys) == (1, [f"hafm: {tmp_path}/plugins/{expected}"])


# --- the default drop-in directory (issue 13: /etc/hafm.toml must not read OpenRC's /etc/conf.d) ----------------


def test_check_config_prints_the_dropin_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main = tmp_path / "hafm.toml"
    main.write_text(GOOD)
    assert cli.main(["check-config", str(main)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert f"# drop-ins: {tmp_path}/hafm.d/*.toml (default: hafm.d/ beside the main file)" in out
    assert f"# plugins (*.py) from: {tmp_path}/hafm.d (default: hafm.d/ beside the main file)" in out


@pytest.mark.parametrize("config", [GOOD, GOOD + "priority = 0\n"], ids=["valid", "broken"])
def test_plugins_come_from_stem_dot_d_not_conf_d(
    tmp_path: Path, config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    main = tmp_path / "hafm.toml"
    main.write_text(config)
    for directory in ("conf.d", "hafm.d"):
        (tmp_path / directory).mkdir()
        (tmp_path / directory / "quit.py").write_text("raise SystemExit(3)\n")
    assert check_config_cli(main, capsys) == (
        1,
        [f"hafm: {tmp_path}/hafm.d/quit.py:1: import failed: SystemExit: 3"],
    )
