"""Start-up problems are one line on stderr and exit code 1, never a traceback."""

import subprocess
import sys
from pathlib import Path

import pytest

from hafm.lab.network import Host, Lab
from hafm.lab.nodes import instance_toml

HEADER = "[global]\ninclude = []\nplugin_dirs = []\n"


def run_hafm(host: Host, config: Path, *prefix: str) -> subprocess.CompletedProcess[str]:
    return host.run(*prefix, sys.executable, "-m", "hafm", "--config", str(config), check=False, timeout=20)


@pytest.fixture
def host(lab: Lab) -> Host:
    return lab.add_host("a", "198.51.100.1/24")


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "hafm.toml"
    path.write_text(HEADER + f'control_socket = "{tmp_path / "hafm.sock"}"\n' + body)
    return path


def assert_one_line_error(result: subprocess.CompletedProcess[str], expected: str) -> None:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [expected], result.stderr


def test_missing_interface(host: Host, tmp_path: Path) -> None:
    config = write(tmp_path, instance_toml(priority=100).replace('interface = "eth0"', 'interface = "eth9"'))
    assert_one_line_error(run_hafm(host, config), "hafm: interface eth9 does not exist")


def test_vip_already_configured_by_the_operator(host: Host, tmp_path: Path) -> None:
    host.run("ip", "addr", "add", "198.51.100.100/24", "dev", "eth0")
    config = write(tmp_path, instance_toml(priority=100))
    assert_one_line_error(
        run_hafm(host, config),
        "hafm: VI_1: 198.51.100.100 is already configured on eth0 and was not added by hafm "
        "(remove it, or give this node priority 255 as its address owner)",
    )


def test_without_cap_net_raw(host: Host, tmp_path: Path) -> None:
    config = write(tmp_path, instance_toml(priority=100))
    no_raw = ("setpriv", "--bounding-set=-net_raw", "--inh-caps=-net_raw", "--")
    assert_one_line_error(
        run_hafm(host, config, *no_raw),
        "hafm: cannot open a raw VRRP socket: permission denied (run hafm as root or with CAP_NET_RAW)",
    )


def test_bad_config_lists_every_error(host: Host, tmp_path: Path) -> None:
    config = write(tmp_path, instance_toml(priority=300).replace("virtual_router_id = 51", "virtual_router_id = 0"))
    result = run_hafm(host, config)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"{config}: vrrp_instance.VI_1.priority: 300 is out of range 1..255" in result.stderr
    assert f"{config}: vrrp_instance.VI_1.virtual_router_id: 0 is out of range 1..255" in result.stderr


def test_bad_command_line(host: Host) -> None:
    result = host.run(sys.executable, "-m", "hafm", "--log-level", "loud", check=False)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "invalid choice: 'loud'" in result.stderr


def test_unsafe_notify_script_is_refused(host: Host, tmp_path: Path) -> None:
    script = tmp_path / "notify.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o775)
    config = write(tmp_path, instance_toml(priority=100, extra=f'notify_master = "{script}"'))
    assert_one_line_error(
        run_hafm(host, config),
        f"{config}: vrrp_instance.VI_1.notify_master: {script} is writable by group/others (chmod go-w {script})",
    )
    check = host.run(sys.executable, "-m", "hafm", "check-config", str(config), check=False)
    assert check.returncode == 1
    assert f"vrrp_instance.VI_1.notify_master: {script} is writable by group/others" in check.stderr
