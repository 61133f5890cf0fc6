"""hafm convert: keepalived.conf -> hafm TOML."""

from __future__ import annotations

import io
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hafm import cli
from hafm.config.loader import load_config
from hafm.errors import ConfigError
from hafm.keepalived import convert
from hafm.keepalived.convert import convert_text, run
from hafm.keepalived.parser import ParseError, parse_text, tokenize_line
from hafm.plugin_manager import check_types, make_plugin_manager

DATA = Path(__file__).parent / "data" / "keepalived"
DOCS = Path(__file__).parent.parent / "docs" / "migrating-from-keepalived.md"
GOOD_FILES = [
    "nodeA.conf",
    "nodeB.conf",
    "scripts.conf",
    "sync_group.conf",
    "unicast.conf",
    "ipv6.conf",
    "notify.conf",
    "include_main.conf",
    "lvs.conf",
    "track_file.conf",
    "localcheck.conf",
]


MINIMAL_INSTANCE = "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 1\n}\n"


def convert_file(name: str) -> tuple[dict[str, Any], list[str], list[str]]:
    path = DATA / name
    result = convert_text(path.read_text(), filename=name, base_dir=DATA)
    return tomllib.loads(result.toml), result.warnings, result.notes


def classic(router_id: str, state: str, priority: int) -> dict[str, Any]:
    return {
        "global": {"router_id": router_id},
        "vrrp_instance": {
            "VI_1": {
                "state": state,
                "interface": "eth0",
                "virtual_router_id": 51,
                "priority": priority,
                "advert_int": 1,
                "version": 2,
                "authentication": {"auth_type": "PASS", "auth_pass": "1111"},
                "virtual_ipaddress": ["192.168.8.100/24"],
            }
        },
    }


# --- the classic MASTER/BACKUP pair ------------------------------------------------------------


def test_classic_pair_node_a() -> None:
    document, warnings, notes = convert_file("nodeA.conf")
    assert document == classic("NodeA", "MASTER", 100)
    assert warnings == []
    assert notes == []


def test_classic_pair_node_b() -> None:
    document, warnings, _ = convert_file("nodeB.conf")
    assert document == classic("NodeB", "BACKUP", 90)
    assert warnings == []


def test_advert_int_stays_an_integer_for_v2() -> None:
    result = convert_text((DATA / "nodeA.conf").read_text())
    assert re.search(r"^advert_int = 1$", result.toml, re.MULTILINE)
    assert isinstance(tomllib.loads(result.toml)["vrrp_instance"]["VI_1"]["advert_int"], int)


# --- the other features --------------------------------------------------------------------------


def test_vrrp_script_and_track_script() -> None:
    document, warnings, notes = convert_file("scripts.conf")
    assert warnings == []
    instance = document["vrrp_instance"]["VI_1"]
    assert instance["nopreempt"] is True
    # keepalived resets preempt_delay under nopreempt (see test_keepalived_corrections.py)
    assert "preempt_delay" not in instance
    assert instance["virtual_ipaddress"] == [
        {"address": "192.168.8.100/24", "dev": "eth0", "label": "eth0:vip"},
        {"address": "192.168.9.100/24", "dev": "eth1"},
    ]
    assert instance["track_interface"] == ["eth1"]
    assert instance["track_check"] == ["chk_tomcat", {"name": "chk_disk", "weight": -30}]
    assert document["check"] == {
        "chk_tomcat": {
            "type": "script",
            "script": "/usr/bin/curl -sf http://127.0.0.1:8080/",
            "interval": 2,
            "timeout": 1,
            "fall": 3,
            "rise": 2,
            "weight": -20,
            "user": "tomcat",
            # keepalived's INIT counts as failed until the first result
            "init_state": "down",
        },
        "chk_disk": {
            "type": "script",
            # unquoted words are re-joined into one command line
            "script": "/usr/local/bin/check_disk --min 10",
            "interval": 5,
            # keepalived's default timeout is the interval
            "timeout": 5,
            # global script_user is the default user
            "user": "keepalived_script",
            "init_state": "down",  # init_fail
        },
    }
    assert [n.split(": ")[1] for n in notes] == [
        "script_user",
        "enable_script_security",
        "vrrp_script chk_tomcat",
        "preempt_delay",
    ]
    assert notes[1].startswith("scripts.conf:5: enable_script_security: note: ")
    assert notes[0] == (
        "scripts.conf:4: script_user: note: applied as `user` of every script check without one: "
        "the check runs as that user with its primary group and supplementary groups, like keepalived's script_user"
    )


def test_track_file_becomes_a_file_check() -> None:
    document, warnings, _ = convert_file("track_file.conf")
    assert document["check"] == {
        "maintenance": {"type": "file", "path": "/run/keepalived/maintenance", "weight": -50},
        # keepalived's default track_file weight is 1
        "ext_weight": {"type": "file", "path": "/run/keepalived/weight", "weight": 1},
    }
    assert document["vrrp_instance"]["VI_1"]["track_check"] == ["maintenance", {"name": "ext_weight", "weight": 10}]
    assert warnings == [
        f"track_file.conf:7: init_file: not converted ({convert.FILE_UNSUPPORTED['init_file']})",
    ]


def test_track_script_cannot_name_a_track_file() -> None:
    text = (DATA / "track_file.conf").read_text().replace("    track_file {", "    track_script {")
    result = convert_text(text)
    # nothing was tracked, so no empty list is written
    assert "track_check" not in tomllib.loads(result.toml)["vrrp_instance"]["VI_1"]
    assert (
        "keepalived.conf:18: track_script maintenance: not converted (no vrrp_script of that name)" in result.warnings
    )


def test_sync_group() -> None:
    document, warnings, _ = convert_file("sync_group.conf")
    assert warnings == []
    assert document["vrrp_sync_group"] == {
        "G1": {
            "group": ["VI_1", "VI_2"],
            "notify_master": "/etc/keepalived/group.sh master",
            "notify_backup": "/etc/keepalived/group_backup.sh",
            "notify": "/etc/keepalived/group_any.sh",
        }
    }
    assert set(document["vrrp_instance"]) == {"VI_1", "VI_2"}


def test_sync_group_with_unknown_member_is_reported() -> None:
    text = (DATA / "sync_group.conf").read_text().replace("        VI_2\n", "        VI_9\n")
    result = convert_text(text)
    assert tomllib.loads(result.toml)["vrrp_sync_group"]["G1"]["group"] == ["VI_1"]
    assert result.warnings == [
        "keepalived.conf:4: VI_9: not converted (vrrp_sync_group G1 names no vrrp_instance VI_9)"
    ]


def test_unicast() -> None:
    document, warnings, _ = convert_file("unicast.conf")
    assert warnings == []
    instance = document["vrrp_instance"]["VI_1"]
    assert instance["unicast_src_ip"] == "192.168.8.4"
    assert instance["unicast_peer"] == ["192.168.8.5", "192.168.8.6"]


def test_ipv6_instance_is_version_3_with_fractional_advert_int() -> None:
    document, warnings, _ = convert_file("ipv6.conf")
    instance = document["vrrp_instance"]["VI_6"]
    assert instance["version"] == 3
    assert instance["advert_int"] == 0.1
    assert instance["virtual_ipaddress"] == ["fe80::1/64", "2001:db8::100/64"]
    assert warnings == [
        "ipv6.conf:7: native_ipv6: not converted (ignored: the address family comes from the virtual addresses)"
    ]


def test_version_3_from_global_defs() -> None:
    text = "global_defs {\n vrrp_version 3\n}\n" + (DATA / "unicast.conf").read_text()
    document = tomllib.loads(convert_text(text).toml)
    assert document["global"]["vrrp_version"] == 3
    assert document["vrrp_instance"]["VI_1"]["version"] == 3


def test_version_3_in_instance_keeps_fractional_advert_int() -> None:
    text = (DATA / "unicast.conf").read_text().replace("advert_int 1", "version 3\n advert_int 0.25")
    instance = tomllib.loads(convert_text(text).toml)["vrrp_instance"]["VI_1"]
    assert (instance["version"], instance["advert_int"]) == (3, 0.25)


def test_fractional_advert_int_for_v2_is_rounded_like_keepalived() -> None:
    text = (DATA / "unicast.conf").read_text().replace("advert_int 1", "advert_int 2.5")
    result = convert_text(text)
    assert tomllib.loads(result.toml)["vrrp_instance"]["VI_1"]["advert_int"] == 3
    assert result.notes == ["keepalived.conf:6: advert_int: note: VRRPv2 carries whole seconds; 2.5 rounded to 3"]


def test_notify_scripts_and_garp() -> None:
    document, warnings, _ = convert_file("notify.conf")
    assert warnings == []
    assert document["global"] == {"notify_fifo": "/run/hafm/notify.fifo"}
    assert document["vrrp_instance"]["VI_1"] == {
        "interface": "eth0",
        "virtual_router_id": 51,
        "version": 2,
        "virtual_ipaddress": ["192.168.8.100/32"],
        "notify_master": "/etc/keepalived/master.sh",
        "notify_backup": "/etc/keepalived/state.sh BACKUP",
        "notify_fault": "/etc/keepalived/state.sh FAULT",
        "notify_stop": "/etc/keepalived/stop.sh",
        "notify": "/etc/keepalived/notify.sh",
        "garp_master_delay": 10,
        "garp_master_repeat": 3,
        "garp_master_refresh": 60,
    }


def test_notify_user_is_reported() -> None:
    text = (DATA / "notify.conf").read_text().replace("master.sh\n", "master.sh root\n")
    result = convert_text(text)
    assert result.warnings == [
        "keepalived.conf:10: notify_master user root: not converted (hafm runs notify commands as its own user)"
    ]


def test_include_follows_globs_and_reports_missing_files() -> None:
    document, warnings, _ = convert_file("include_main.conf")
    assert list(document["vrrp_instance"]) == ["VI_1", "VI_2"]
    assert warnings == ["include_main.conf:5: include missing/nothing.conf: not converted (no file matches)"]


def test_include_of_unreadable_file_is_a_warning(tmp_path: Path) -> None:
    (tmp_path / "dir.conf").mkdir()
    result = convert_text("include dir.conf\n" + MINIMAL_INSTANCE, base_dir=tmp_path)
    assert len(result.warnings) == 1
    assert result.warnings[0].startswith(
        f"keepalived.conf:1: include {tmp_path / 'dir.conf'}: not converted (is a directory (keepalived skips it))"
    )


def test_warning_in_included_file_names_that_file(tmp_path: Path) -> None:
    (tmp_path / "extra.conf").write_text("\nstatic_routes {\n 10.9.0.0/16 dev eth1\n}\n")
    result = convert_text("include extra.conf\n" + (DATA / "nodeA.conf").read_text(), base_dir=tmp_path)
    why = convert.TOP_LEVEL_UNSUPPORTED["static_routes"]
    assert result.warnings == [f"{tmp_path / 'extra.conf'}:2: static_routes: not converted ({why})"]


def test_virtual_server_is_a_warning_with_its_line(tmp_path: Path) -> None:
    err = io.StringIO()
    out = io.StringIO()
    assert run(DATA / "lvs.conf", None, out=out, err=err) == 2
    assert err.getvalue().splitlines() == [
        f"{DATA / 'lvs.conf'}:11: virtual_server 192.168.8.100 80: not converted "
        "(LVS/IPVS load balancing is not part of hafm)"
    ]
    # the VRRP part is still converted
    assert tomllib.loads(out.getvalue())["vrrp_instance"]["VI_1"]["priority"] == 100


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        ("use_vmac", "use_vmac: not converted (hafm has no VMAC"),
        ("vmac_xmit_base", "vmac_xmit_base: not converted (hafm has no VMAC"),
        ("dont_track_primary", "dont_track_primary: not converted ("),
        ("virtual_routes {\n 10.1.0.0/16 via 192.168.8.1\n}", "virtual_routes: not converted ("),
        ("frobnicate 7", "frobnicate: not converted (unknown vrrp_instance keyword)"),
        ("track_interface {\n eth1 weight -10\n}", "track_interface eth1 weight -10: not converted ("),
        ("authentication {\n auth_type AH\n auth_pass x\n}", "auth_type AH: not converted ("),
        ("virtual_ipaddress {\n 192.168.8.101/24 scope link\n}", "192.168.8.101/24 scope link: not converted ("),
        ("virtual_ipaddress {\n 192.168.8.101/24 brd 192.168.8.7\n}", "brd 192.168.8.7: not converted ("),
        ("track_script {\n nosuch\n}", "track_script nosuch: not converted (no vrrp_script of that name)"),
    ],
)
def test_instance_keywords_without_equivalent_are_reported(snippet: str, expected: str) -> None:
    text = (DATA / "unicast.conf").read_text().replace("    state MASTER\n", f"    state MASTER\n{snippet}\n")
    result = convert_text(text)
    assert len(result.warnings) == 1
    assert result.warnings[0].startswith("keepalived.conf:")
    assert expected in result.warnings[0]
    assert tomllib.loads(result.toml)["vrrp_instance"]["VI_1"]["virtual_router_id"] == 51


def test_trivial_broadcast_is_only_a_note() -> None:
    text = (DATA / "unicast.conf").read_text().replace("192.168.8.100/24\n", "192.168.8.100/24 brd +\n")
    result = convert_text(text)
    assert result.warnings == []
    assert tomllib.loads(result.toml)["vrrp_instance"]["VI_1"]["virtual_ipaddress"] == ["192.168.8.100/24"]
    assert len(result.notes) == 1


def test_global_defs_others_are_reported() -> None:
    text = "global_defs {\n router_id x\n vrrp_strict\n smtp_server 127.0.0.1\n}\n" + MINIMAL_INSTANCE
    result = convert_text(text)
    assert tomllib.loads(result.toml)["global"] == {"router_id": "x"}
    assert result.warnings == [
        "keepalived.conf:3: vrrp_strict: not converted (hafm has no strict mode switch)",
        "keepalived.conf:4: smtp_server: not converted (hafm sends no e-mail; use a notify command)",
    ]


def test_global_garp_defaults_apply_to_instances() -> None:
    text = "global_defs {\n vrrp_garp_master_delay 1\n}\n" + (DATA / "unicast.conf").read_text()
    document = tomllib.loads(convert_text(text).toml)
    assert document["vrrp_instance"]["VI_1"]["garp_master_delay"] == 1
    assert "global" not in document


# --- malformed input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("bad_braces.conf", "bad_braces.conf:1: vrrp_instance: '{' is never closed (missing '}')"),
        ("bad_block.conf", "bad_block.conf:4: vrrp_instanse: unknown block at top level"),
        ("bad_value.conf", "bad_value.conf:4: priority: bad value 'abc' (expected an integer)"),
    ],
)
def test_malformed_files_exit_1_with_one_line(name: str, message: str) -> None:
    err = io.StringIO()
    out = io.StringIO()
    assert run(DATA / name, None, out=out, err=err) == 1
    assert err.getvalue() == f"{DATA}/{message}\n"
    assert out.getvalue() == ""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("}\n", "keepalived.conf:1: '}' without a matching '{'"),
        ('vrrp_script s {\n script "/bin/true\n}\n', 'keepalived.conf:2: unterminated " quote'),
        (
            "vrrp_instance VI_1 {\n interface eth0\n}\n",
            "keepalived.conf:1: vrrp_instance VI_1: missing virtual_router_id",
        ),
        (
            "vrrp_instance VI_1 {\n virtual_router_id 256\n}\n",
            "keepalived.conf:2: virtual_router_id: 256 is out of range 1..255",
        ),
        (
            "vrrp_instance VI_1 {\n state SLAVE\n}\n",
            "keepalived.conf:2: state: bad value 'SLAVE' (expected MASTER or BACKUP)",
        ),
        (
            "vrrp_instance VI_1 {\n unicast_peer {\n 10.0.0.300\n }\n}\n",
            "keepalived.conf:3: 10.0.0.300: bad value '10.0.0.300' (expected an IP address)",
        ),
        (
            "vrrp_instance VI_1 {\n advert_int fast\n}\n",
            "keepalived.conf:2: advert_int: bad value 'fast' (expected a number)",
        ),
        (
            "vrrp_instance VI_1 {\n virtual_ipaddress 1.2.3.4\n}\n",
            "keepalived.conf:2: virtual_ipaddress: expects a { ... } block",
        ),
        ("frob\n", "keepalived.conf:1: frob: unknown keyword at top level"),
    ],
)
def test_malformed_text_raises_one_line(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        convert_text(text)
    assert info.value.messages == [message]


def test_missing_input_file_exits_1(tmp_path: Path) -> None:
    err = io.StringIO()
    assert run(tmp_path / "nope.conf", None, out=io.StringIO(), err=err) == 1
    assert err.getvalue().startswith(f"{tmp_path / 'nope.conf'}: cannot read: ")


# --- run() and the command line --------------------------------------------------------------


def test_run_writes_output_file(tmp_path: Path) -> None:
    target = tmp_path / "hafm.toml"
    out = io.StringIO()
    err = io.StringIO()
    assert run(DATA / "nodeB.conf", target, out=out, err=err) == 0
    assert out.getvalue() == ""
    assert err.getvalue() == ""
    assert tomllib.loads(target.read_text()) == classic("NodeB", "BACKUP", 90)


def test_hafm_convert_runs_through_the_one_cli_parser(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert not hasattr(convert, "main")  # hafm/cli.py is the only argument parser
    target = tmp_path / "out.toml"
    assert cli.main(["convert", str(DATA / "lvs.conf"), "-o", str(target)]) == 2
    assert "virtual_server" in capsys.readouterr().err
    assert "VI_1" in tomllib.loads(target.read_text())["vrrp_instance"]


@pytest.mark.parametrize("name", GOOD_FILES)
def test_converted_output_passes_the_hafm_loader(name: str, tmp_path: Path) -> None:
    target = tmp_path / "hafm.toml"
    assert run(DATA / name, target, out=io.StringIO(), err=io.StringIO()) in (0, 2)
    config = load_config(target)
    assert config.instances


def test_loader_sees_the_converted_values(tmp_path: Path) -> None:
    target = tmp_path / "hafm.toml"
    run(DATA / "scripts.conf", target, out=io.StringIO(), err=io.StringIO())
    config = load_config(target)
    instance = config.instances["VI_1"]
    assert instance.priority == 150
    assert [t.name for t in instance.track_check] == ["chk_tomcat", "chk_disk"]
    assert config.checks["chk_tomcat"].options == {
        "script": "/usr/bin/curl -sf http://127.0.0.1:8080/",
        "user": "tomcat",
    }
    assert config.checks["chk_tomcat"].init_state == "down"


def test_converted_checks_pass_the_plugin_validators(tmp_path: Path) -> None:
    """The `file` and `script` check types accept what the converter writes (root always exists)."""
    types = check_types(make_plugin_manager(load_entry_points=False))
    validators = {name: check_type.validate for name, check_type in types.items()}
    text = (DATA / "track_file.conf").read_text() + '\nvrrp_script chk {\n script "/bin/true x"\n user root\n}\n'
    target = tmp_path / "hafm.toml"
    target.write_text(convert_text(text).toml)
    config = load_config(target, check_validators=validators)
    assert {name: check.type for name, check in config.checks.items()} == {
        "maintenance": "file",
        "ext_weight": "file",
        "chk": "script",
    }


# --- the tokenizer and parser ------------------------------------------------------------------


def test_tokenizer_comments_and_quotes() -> None:
    tokens = tokenize_line("notify \"/bin/x a#b\" 'c d' e # comment ! more")
    assert [t.text for t in tokens] == ["notify", "/bin/x a#b", "c d", "e"]
    assert [t.quoted for t in tokens] == [False, True, True, False]
    assert [t.text for t in tokenize_line("a!b")] == ["a"]
    assert [t.text for t in tokenize_line('x "a \\" b"')] == ["x", 'a " b']


def test_parser_blocks_on_one_line_and_brace_on_next_line() -> None:
    result = parse_text("vrrp_instance VI_1\n{\n authentication { auth_type PASS\n auth_pass 1 }\n}\n")
    (instance,) = result.nodes
    assert (instance.keyword, instance.args, instance.line) == ("vrrp_instance", ["VI_1"], 1)
    assert instance.children is not None
    (auth,) = instance.children
    assert auth.children is not None
    assert [(c.keyword, c.args, c.line) for c in auth.children] == [("auth_type", ["PASS"], 3), ("auth_pass", ["1"], 4)]


def test_parse_error_is_a_config_error() -> None:
    with pytest.raises(ParseError) as info:
        parse_text("a {\n", filename="f.conf")
    assert str(info.value) == "f.conf:1: a: '{' is never closed (missing '}')"
    assert (info.value.filename, info.value.line) == ("f.conf", 1)


# --- the migration guide ---------------------------------------------------------------------


def _doc_sections() -> dict[str, set[str]]:
    sections: dict[str, set[str]] = {}
    current = ""
    for line in DOCS.read_text().splitlines():
        if line.startswith("### "):
            current = line[4:].strip().strip("`")
            sections[current] = set()
        match = re.match(r"^\| `([^`]+)`", line)
        if match and current:
            sections[current].add(match.group(1))
    return sections


@pytest.mark.parametrize(
    ("section", "keywords"),
    [
        ("global_defs", [*convert.GLOBAL_HANDLED, *convert.GLOBAL_UNSUPPORTED]),
        ("vrrp_instance", [*convert.INSTANCE_HANDLED, *convert.INSTANCE_UNSUPPORTED]),
        ("vrrp_script", [*convert.SCRIPT_HANDLED, *convert.SCRIPT_UNSUPPORTED]),
        ("vrrp_sync_group", [*convert.SYNC_GROUP_HANDLED, *convert.SYNC_GROUP_UNSUPPORTED]),
        ("vrrp_track_file / track_file", [*convert.FILE_HANDLED, *convert.FILE_UNSUPPORTED]),
        ("Top-level blocks", [*convert.TOP_LEVEL_UNSUPPORTED, *convert.FILE_BLOCKS, "global_defs", "vrrp_instance"]),
    ],
)
def test_migration_guide_lists_every_keyword(section: str, keywords: list[str]) -> None:
    documented = _doc_sections()[section]
    missing = [k for k in keywords if k not in documented]
    assert missing == []


def test_migration_guide_example_is_the_real_output() -> None:
    text = DOCS.read_text()
    expected = convert_text((DATA / "nodeA.conf").read_text(), filename="nodeA.conf").toml
    assert expected in text


# --- robustness ----------------------------------------------------------------------------------

SAMPLES = sorted(Path("/usr/share/doc/keepalived/samples").glob("keepalived.conf.*"))


@pytest.mark.skipif(not SAMPLES, reason="keepalived's sample configurations are not installed")
@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_keepalived_samples_convert_without_error(sample: Path) -> None:
    err = io.StringIO()
    out = io.StringIO()
    status = run(sample, None, out=out, err=err)
    if status == 1:  # an LVS-only sample
        assert err.getvalue() == f"{sample}: nothing for hafm in this file (no vrrp_instance to convert)\n"
        return
    assert status in (0, 2), err.getvalue()
    tomllib.loads(out.getvalue())
    # every message is one FILE:LINE: line
    assert all(re.match(r"^/\S+:\d+: ", line) for line in err.getvalue().splitlines())


_ALPHABET = "{}\"'#!\\ \n$~@=()," + "abcdeilnprstuv_0123456789./:"


@given(st.text(alphabet=_ALPHABET, max_size=300))
@settings(max_examples=300, deadline=None)
def test_any_input_gives_toml_or_one_line_errors(text: str) -> None:
    try:
        result = convert_text(text)
    except ConfigError as exc:
        assert exc.messages
        assert all("\n" not in m and m.startswith("keepalived.conf:") for m in exc.messages)
    else:
        tomllib.loads(result.toml)


@given(st.sampled_from(GOOD_FILES), st.data())
@settings(max_examples=300, deadline=None)
def test_damaged_real_configs_give_toml_or_one_line_errors(name: str, data: st.DataObject) -> None:
    text = (DATA / name).read_text()
    start = data.draw(st.integers(0, len(text)))
    end = data.draw(st.integers(start, min(len(text), start + 40)))
    insert = data.draw(st.text(alphabet=_ALPHABET, max_size=5))
    try:
        result = convert_text(text[:start] + insert + text[end:], base_dir=DATA)
    except ConfigError as exc:
        assert all(re.fullmatch(r"\S+(:\d+)?: [^\n]+", m) for m in exc.messages)
    else:
        tomllib.loads(result.toml)
