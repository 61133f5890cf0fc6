"""What keepalived corrects or ignores when it reads an instance, the converter writes out and says."""

from __future__ import annotations

import io
import shutil
import tempfile
import tomllib
from pathlib import Path
from typing import Any

import pytest

from hafm.config.loader import load_config
from hafm.keepalived.convert import DROPIN_HINT, USER_MEANING, ConversionResult, convert_text, run
from hafm.plugin_manager import check_types, make_plugin_manager
from hafm.processes import ENV_PATH

DATA = Path(__file__).parent / "data" / "keepalived"
SOURCE = "keepalived/vrrp/vrrp.c (vrrp_complete_instance)"


def master(*lines: str, vips: str = "192.0.2.1/24") -> str:
    body = "".join(f"    {line}\n" for line in lines)
    return (
        "vrrp_instance VI_1 {\n    state MASTER\n    interface eth0\n    virtual_router_id 7\n"
        f"{body}    virtual_ipaddress {{\n        {vips}\n    }}\n}}\n"
    )


def converted(text: str) -> tuple[dict[str, Any], ConversionResult]:
    result = convert_text(text)
    return tomllib.loads(result.toml), result


def validators() -> dict[str, Any]:
    types = check_types(make_plugin_manager(load_entry_points=False))
    return {name: check_type.validate for name, check_type in types.items()}


def test_master_without_priority_is_the_address_owner() -> None:
    document, result = converted(master())
    assert document["vrrp_instance"]["VI_1"]["priority"] == 255
    assert result.notes == [
        "keepalived.conf:2: state MASTER: note: no priority: keepalived makes a MASTER without priority "
        f"the address owner ({SOURCE}); written as priority = 255"
    ]
    assert result.warnings == []


def test_backup_without_priority_keeps_the_default() -> None:
    document, result = converted(master().replace("state MASTER", "state BACKUP"))
    assert "priority" not in document["vrrp_instance"]["VI_1"]  # hafm's default is keepalived's 100
    assert result.notes == []


def test_master_ignores_nopreempt_and_preempt_delay() -> None:
    document, result = converted(master("priority 100", "nopreempt", "preempt_delay 10"))
    instance = document["vrrp_instance"]["VI_1"]
    assert "nopreempt" not in instance and "preempt_delay" not in instance
    assert result.notes == [
        'keepalived.conf:6: nopreempt: note: keepalived ignores it ("Warning - nopreempt will not work with '
        f'initial state MASTER - clearing", {SOURCE}); not written',
        'keepalived.conf:7: preempt_delay: note: keepalived ignores it ("Warning - preempt delay will not work '
        f'with initial state MASTER - clearing", {SOURCE}); not written',
    ]


def test_owner_ignores_nopreempt_in_keepalived_order() -> None:
    backup = master("nopreempt", "preempt_delay 5").replace("state MASTER", "state BACKUP")
    document, result = converted(backup)
    # BACKUP 100: nopreempt kept, and keepalived resets preempt_delay under nopreempt
    assert document["vrrp_instance"]["VI_1"]["nopreempt"] is True
    assert "preempt_delay" not in document["vrrp_instance"]["VI_1"]
    assert [note.split(": ")[1] for note in result.notes] == ["preempt_delay"]
    document, result = converted(backup.replace("nopreempt", "priority 255\n    nopreempt"))
    # the owner drops nopreempt first, so preempt_delay stays
    assert document["vrrp_instance"]["VI_1"]["preempt_delay"] == 5
    assert "nopreempt" not in document["vrrp_instance"]["VI_1"]
    assert result.notes == [
        'keepalived.conf:6: nopreempt: note: keepalived ignores it ("nopreempt is incompatible with priority 255. '
        f'resetting nopreempt", {SOURCE}); not written'
    ]


def test_version_3_ignores_authentication_and_passes_check_config(tmp_path: Path) -> None:
    auth = "authentication {\n        auth_type PASS\n        auth_pass secret\n    }"
    text = "global_defs {\n    vrrp_version 3\n}\n" + master("priority 100", auth)
    document, result = converted(text)
    assert "authentication" not in document["vrrp_instance"]["VI_1"]
    assert result.notes == [
        'keepalived.conf:9: authentication: note: keepalived ignores it ("VRRP version 3 does not support '
        f'authentication. Ignoring.", {SOURCE}); not written'
    ]
    # IPv6 forces version 3 the same way; run() checks its output with hafm's loader.
    source = tmp_path / "keepalived.conf"
    source.write_text(master("priority 100", auth, vips="2001:db8::1/64"))
    target = tmp_path / "hafm.toml"
    assert run(source, target, out=io.StringIO(), err=io.StringIO()) == 0
    assert load_config(target, check_validators=validators()).instances["VI_1"].version == 3


def test_output_that_check_config_refuses_is_not_written(tmp_path: Path) -> None:
    source = tmp_path / "keepalived.conf"
    # The converter does not compare address families; hafm's loader does.
    source.write_text(master("priority 100", "unicast_peer {\n        2001:db8::2\n    }"))
    target = tmp_path / "hafm.toml"
    err = io.StringIO()
    assert run(source, target, out=io.StringIO(), err=err) == 1
    assert not target.exists()
    lines = err.getvalue().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"{source}: converted, but hafm's check-config refuses it: vrrp_instance.VI_1.")


def test_dev_tcp_script_becomes_a_tcp_check(tmp_path: Path) -> None:
    text = (DATA / "localcheck.conf").read_text()
    document, result = converted(text)
    assert document["check"]["chk_http_port"] == {
        "type": "tcp",
        "host": "127.0.0.1",
        "port": 80,
        "interval": 1,
        "timeout": 1,
        "weight": -2,
        "init_state": "down",
    }
    assert (
        "keepalived.conf:9: script: note: keepalived runs </dev/tcp/127.0.0.1/80 through /bin/sh, which connects "
        "to 127.0.0.1 port 80 when /bin/sh is bash (with dash it always fails); converted to a tcp check of "
        "127.0.0.1:80" in result.notes
    )
    # A file test has no hafm equivalent: reported, and so is its use.
    assert result.warnings == [
        "keepalived.conf:15: script </etc/keepalived/enabled: not converted (keepalived runs `</FILE` through "
        "/bin/sh to test that FILE opens; hafm runs no shell (use a script such as `test -r FILE`))",
        "keepalived.conf:30: track_script chk_enabled: not converted (its vrrp_script was not converted)",
    ]
    target = tmp_path / "hafm.toml"
    assert run(DATA / "localcheck.conf", target, out=io.StringIO(), err=io.StringIO()) == 2
    assert load_config(target, check_validators=validators()).checks["chk_http_port"].type == "tcp"


def test_checks_start_down_like_keepalived_init() -> None:
    text = master("priority 100", "track_script {\n        chk\n    }")
    script = 'vrrp_script chk {\n    script "/bin/true"\n    weight -20\n    rise 3\n}\n'
    document, result = converted(script + text)
    # keepalived's INIT counts as failed: a check already failing at start applies its penalty at once.
    assert document["check"]["chk"]["init_state"] == "down"
    assert result.notes == [
        "keepalived.conf:1: vrrp_script chk: note: keepalived brings a new script up at its first success; "
        "hafm's check starts down and needs rise (3) successes"
    ]
    _, result = converted(script.replace("rise 3", "rise 1") + text)
    assert result.notes == []


def test_lvs_only_file_is_nothing_for_hafm(tmp_path: Path) -> None:
    target = tmp_path / "hafm.toml"
    err = io.StringIO()
    out = io.StringIO()
    assert run(DATA / "lvs_only.conf", None, out=out, err=err) == 1
    assert run(DATA / "lvs_only.conf", target, out=out, err=err) == 1
    assert out.getvalue() == "" and not target.exists()
    message = f"{DATA / 'lvs_only.conf'}: nothing for hafm in this file (no vrrp_instance to convert)\n"
    assert err.getvalue() == message * 2


def test_user_means_uid_gid_and_groups() -> None:
    script = 'vrrp_script chk {\n    script "/bin/true"\n    user nobody nogroup\n}\n'
    _, result = converted(script + master("priority 100"))
    assert result.warnings == [
        "keepalived.conf:3: user group: not converted "
        "(hafm runs the check with the user's primary group and supplementary groups)"
    ]
    assert "primary group and supplementary groups" in USER_MEANING


def test_output_says_where_drop_ins_go() -> None:
    _, result = converted(master())
    assert result.toml.splitlines()[1] == f"# {DROPIN_HINT}"
    assert "STEM.d/ beside this file" in DROPIN_HINT


@pytest.mark.parametrize(
    ("command", "target"),
    [
        ("</dev/tcp/::1/8080", ("::1", 8080)),
        ("</dev/tcp/db.example/5432", ("db.example", 5432)),
        ("</dev/tcp/127.0.0.1/99999", None),  # no such port
        ("</dev/udp/127.0.0.1/53", None),  # bash's UDP "connect" proves nothing
        ("</dev/tcp/127.0.0.1/80 && /bin/false", None),  # a shell command line
    ],
)
def test_only_a_plain_dev_tcp_redirection_becomes_a_tcp_check(command: str, target: tuple[str, int] | None) -> None:
    text = f'vrrp_script chk {{\n    script "{command}"\n}}\n' + master("priority 100")
    document, result = converted(text)
    if target is None:
        assert "check" not in document
        assert result.warnings[0].startswith(f"keepalived.conf:2: script {command}: not converted (")
    else:
        check = document["check"]["chk"]
        assert (check["type"], check["host"], check["port"]) == ("tcp", *target)
        assert result.warnings == []


def test_programs_found_on_keepalived_path_are_written_with_their_path() -> None:
    true = shutil.which("true", path=ENV_PATH)
    assert true is not None
    text = 'vrrp_script chk {\n    script "true -x"\n}\n' + master("priority 100", "notify_master true")
    text += 'vrrp_script other {\n    script "no-such-program-here"\n}\n'
    document, result = converted(text)
    assert document["check"]["chk"]["script"] == f"{true} -x"
    assert document["vrrp_instance"]["VI_1"]["notify_master"] == true
    assert document["check"]["other"]["script"] == "no-such-program-here"  # left for check-config to report
    assert result.notes == [
        f"keepalived.conf:2: script: note: keepalived searches its PATH for true; written as {true}, found here",
        f"keepalived.conf:9: notify_master: note: keepalived searches its PATH for true; written as {true}, found here",
    ]


def test_no_temporary_directory_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "missing"))
    source = tmp_path / "keepalived.conf"
    source.write_text(master())
    err = io.StringIO()
    assert run(source, None, out=io.StringIO(), err=err) == 1
    assert err.getvalue() == f"{source}: cannot check the converted configuration: No such file or directory\n"
