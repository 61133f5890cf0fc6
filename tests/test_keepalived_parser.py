"""Reading keepalived.conf as keepalived does: files, encodings, includes, nesting, parameters."""

from __future__ import annotations

import io
import os
import tomllib
from pathlib import Path
from typing import Any

import pytest

from hafm import cli
from hafm.errors import ConfigError
from hafm.keepalived.convert import convert_text, run
from hafm.keepalived.params import MAX_SUBSTITUTIONS
from hafm.keepalived.parser import MAX_BLOCK_DEPTH, brace_expand

DATA = Path(__file__).parent / "data" / "keepalived"
NODE_A = (DATA / "nodeA.conf").read_text()


def instance(text: str, name: str = "VI_1") -> dict[str, Any]:
    return tomllib.loads(convert_text(text).toml)["vrrp_instance"][name]


def one_error(text: str, base_dir: Path | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        convert_text(text, base_dir=base_dir)
    (message,) = info.value.messages
    assert "\n" not in message and len(message) < 300
    return message


def run_file(path: Path, tmp_path: Path) -> tuple[int, str, Path]:
    err = io.StringIO()
    target = tmp_path / "out.toml"
    status = run(path, target, out=io.StringIO(), err=err)
    return status, err.getvalue(), target


# --- files and bytes ---------------------------------------------------------------------------


def test_non_utf8_byte_in_a_comment_is_ignored_like_keepalived(tmp_path: Path) -> None:
    source = tmp_path / "keepalived.conf"
    source.write_bytes(b"! r\xe9seau du bureau\n" + NODE_A.encode() + b"# fin \xff\n")
    status, err, target = run_file(source, tmp_path)
    assert (status, err) == (0, "")
    assert tomllib.loads(target.read_text())["vrrp_instance"]["VI_1"]["priority"] == 100


def test_non_utf8_byte_in_a_written_value_is_refused_with_its_line(tmp_path: Path) -> None:
    source = tmp_path / "keepalived.conf"
    source.write_bytes(NODE_A.encode().replace(b"router_id NodeA", b"router_id Node\xe9"))
    status, err, target = run_file(source, tmp_path)
    assert status == 1
    assert err == f"{source}:2: Node\\xe9: not UTF-8 (hafm's TOML is UTF-8: write this value in UTF-8)\n"
    assert not target.exists()


def test_file_name_that_is_not_utf8_is_escaped_in_the_header(tmp_path: Path) -> None:
    source = Path(os.fsdecode(os.path.join(os.fsencode(tmp_path), b"node\xff.conf")))
    source.write_text(NODE_A)
    status, err, target = run_file(source, tmp_path)
    assert (status, err) == (0, "")
    assert target.read_text().startswith(f"# Converted from {tmp_path}/node\\xff.conf by `hafm convert`.\n")


@pytest.mark.timeout(10)
def test_include_of_a_device_is_refused_with_its_line() -> None:
    assert one_error("include /dev/zero\n" + NODE_A) == "keepalived.conf:1: include /dev/zero: not a regular file"


@pytest.mark.timeout(10)
def test_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.conf"
    os.mkfifo(fifo)
    assert one_error("include pipe.conf\n" + NODE_A, base_dir=tmp_path) == (
        f"keepalived.conf:1: include {fifo}: not a regular file"
    )
    status, err, _ = run_file(fifo, tmp_path)
    assert (status, err) == (1, f"{fifo}: not a regular file\n")


def test_executable_include_is_skipped_like_keepalived(tmp_path: Path) -> None:
    (tmp_path / "extra.conf").write_text("vrrp_instance VI_9 {\n interface eth0\n virtual_router_id 9\n}\n")
    (tmp_path / "extra.conf").chmod(0o755)
    result = convert_text("include extra.conf\n" + NODE_A, base_dir=tmp_path)
    assert list(tomllib.loads(result.toml)["vrrp_instance"]) == ["VI_1"]
    assert result.warnings == [
        f"keepalived.conf:1: include {tmp_path / 'extra.conf'}: not converted "
        "(is executable (keepalived skips executable files))"
    ]


def test_brace_globs_in_include_like_glob_brace(tmp_path: Path) -> None:
    for name, vrid in (("b.conf", 2), ("a.conf", 1), ("c.conf", 3)):
        (tmp_path / name).write_text(
            f"vrrp_instance VI_{vrid} {{\n interface eth0\n virtual_router_id {vrid}\n}}\n", encoding="utf-8"
        )
    result = convert_text("include {b,a}.conf\n", base_dir=tmp_path)
    assert list(tomllib.loads(result.toml)["vrrp_instance"]) == ["VI_2", "VI_1"]
    assert result.warnings == []


def test_brace_expansion_follows_glibc() -> None:
    assert brace_expand("x{a,b{c,d}}y") == ["xay", "xbcy", "xbdy"]
    assert brace_expand("{a,}.conf") == ["a.conf", ".conf"]
    assert brace_expand("no{brace") == ["no{brace"]
    # glibc has no {1..3} ranges (bash does)
    assert brace_expand("{1..3}") == ["1..3"]


def test_blocks_nested_1000_deep_are_one_line() -> None:
    text = "vrrp_instance VI_1 {\n" + "a {\n" * 1000 + "}\n" * 1001
    assert one_error(text) == f"keepalived.conf:{MAX_BLOCK_DEPTH + 1}: blocks nested deeper than {MAX_BLOCK_DEPTH}"


def test_numbers_of_absurd_length_are_one_short_line() -> None:
    assert one_error(NODE_A.replace("priority 100", "priority " + "1" * 5000)) == (
        "keepalived.conf:8: line longer than keepalived's limit of 1022 bytes"
    )
    assert one_error(NODE_A.replace("priority 100", "priority " + "9" * 100)) == (
        "keepalived.conf:8: priority: bad value '99999999999999999999'... (100 characters) (expected an integer)"
    )


@pytest.mark.timeout(10)
def test_exponent_is_not_a_keepalived_number() -> None:
    assert one_error(NODE_A.replace("advert_int 1", "advert_int 1e999999999")) == (
        "keepalived.conf:9: advert_int: bad value '1e999999999' (expected a number)"
    )


# --- parameters ----------------------------------------------------------------------------------

VIP = " virtual_ipaddress {\n  192.0.2.1/24\n }\n"


def test_parameters_are_expanded_like_keepalived() -> None:
    text = (
        "$IF=eth1\n"
        "$VRID= 42  # blanks after = and the comment are not part of the value\n"
        "# $IF=eth9 in a comment defines nothing\n"
        "vrrp_instance VI_1 {\n interface $IF\n virtual_router_id ${VRID}\n priority $PRIO\n" + VIP + "}\n"
    )
    with pytest.raises(ConfigError) as info:
        convert_text(text)
    # An undefined parameter stays as written, as in keepalived (where priority $PRIO is an error too).
    assert info.value.messages == ["keepalived.conf:7: priority: bad value '$PRIO' (expected an integer)"]
    result = instance(text.replace(" priority $PRIO\n", ""))
    assert (result["interface"], result["virtual_router_id"]) == ("eth1", 42)


def test_reference_must_end_at_a_blank_comma_or_parenthesis() -> None:
    text = "$X=1\nvrrp_instance VI_1 {\n interface eth$X.5\n virtual_router_id 1$X\n" + VIP + "}\n"
    # "$X.5" is not a reference (keepalived leaves it), "1$X" is one.
    result = instance(text)
    assert (result["interface"], result["virtual_router_id"]) == ("eth$X.5", 11)


def test_multiline_definition_and_seq_generate_instances() -> None:
    text = (
        "$INSTANCE=vrrp_instance VI_${i} { \\\n"
        "  interface eth0 \\\n"
        "  virtual_router_id ${i} \\\n"
        "  virtual_ipaddress { \\\n"
        "    192.0.2.${i}/24 \\\n"
        "  } \\\n"
        "}\n"
        "\n"
        "~SEQ(i, 1, 2, 5) $INSTANCE\n"
    )
    document = tomllib.loads(convert_text(text).toml)
    assert {name: vi["virtual_ipaddress"] for name, vi in document["vrrp_instance"].items()} == {
        "VI_1": ["192.0.2.1/24"],
        "VI_3": ["192.0.2.3/24"],
        "VI_5": ["192.0.2.5/24"],
    }


def test_multiline_definition_only_expands_at_the_end_of_a_line() -> None:
    text = "$M=a \\\nb\n" + NODE_A + 'vrrp_script s {\n script "/bin/echo $M x"\n}\n'
    assert tomllib.loads(convert_text(text).toml)["check"]["s"]["script"] == "/bin/echo $M x"


def test_builtins_pwd_hash_and_bang(tmp_path: Path) -> None:
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "vi.conf").write_text(NODE_A)
    source = tmp_path / "keepalived.conf"
    source.write_text('include ${_PWD}/conf.d/*.conf\nvrrp_script s {\n script "/bin/echo ${_HASH}${_BANG}"\n}\n')
    result = convert_text(source.read_text(), filename=str(source), base_dir=tmp_path)
    document = tomllib.loads(result.toml)
    assert document["check"]["s"]["script"] == "/bin/echo #!"
    assert result.notes == [
        f"{source}:1: ${{_PWD}}: note: expanded to {os.path.realpath(tmp_path)}, the directory of this file, "
        "which is keepalived's working directory there"
    ]
    assert list(document["vrrp_instance"]) == ["VI_1"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("router_id ${_INSTANCE}", "${_INSTANCE}: not converted: it is keepalived's -i config id"),
        ("router_id n${_RANDOM 1 9}", "${_RANDOM 1 9}: not converted: it is a new random number"),
        ("router_id ${_ENV HOSTNAME}", "${_ENV HOSTNAME}: not converted: it is read from keepalived's own"),
        ("~LST({a,b},{1,2}) x", "~LST: not converted"),
        ("~SEQ(i) x", "invalid ~SEQ"),
    ],
)
def test_what_depends_on_the_running_keepalived_is_refused_with_its_line(line: str, message: str) -> None:
    assert one_error(NODE_A.replace("router_id NodeA", line)).startswith(f"keepalived.conf:2: {message}")


def test_definition_that_names_itself_is_one_line() -> None:
    message = one_error("$A=x $A\n" + NODE_A.replace("router_id NodeA", "router_id $A"))
    assert message.startswith("keepalived.conf:3: parameter expansion does not end")
    message = one_error("$A=$A\n" + NODE_A.replace("router_id NodeA", "router_id $A"))
    assert message.startswith("keepalived.conf:3: parameter expansion does not end")
    assert MAX_SUBSTITUTIONS >= 100


def test_conditional_lines_are_still_reported() -> None:
    result = convert_text("@node1 $X=1\n" + NODE_A)
    assert result.warnings == [
        "keepalived.conf:1: @node1: not converted (conditional configuration depends on the machine keepalived "
        "runs on; give its id with hafm convert --config-id)"
    ]


# --- the config id (keepalived -i) ----------------------------------------------------------------


def test_config_id_selects_conditional_lines_and_instance(tmp_path: Path) -> None:
    text = (DATA / "shared_pair.conf").read_text()
    node1 = tomllib.loads(convert_text(text, config_id="node1").toml)
    assert node1["global"]["router_id"] == "node1"
    assert list(node1["vrrp_instance"]) == ["VI_1"]
    assert (node1["vrrp_instance"]["VI_1"]["state"], node1["vrrp_instance"]["VI_1"]["priority"]) == ("MASTER", 150)
    result = convert_text(text, config_id="node2")
    node2 = tomllib.loads(result.toml)
    assert (result.warnings, node2["global"]["router_id"], list(node2["vrrp_instance"])) == (
        [],
        "node2",
        ["VI_1", "VI_2"],
    )
    assert (node2["vrrp_instance"]["VI_1"]["state"], node2["vrrp_instance"]["VI_1"]["priority"]) == ("BACKUP", 100)
    # through the command line
    target = tmp_path / "hafm.toml"
    assert cli.main(["convert", "--config-id", "node1", str(DATA / "shared_pair.conf"), "-o", str(target)]) == 0
    assert tomllib.loads(target.read_text()) == node1


def test_without_a_config_id_conditionals_are_reported_or_refused() -> None:
    text = (DATA / "shared_pair.conf").read_text()
    assert one_error(text) == (
        "keepalived.conf:4: ${_INSTANCE}: not converted: it is keepalived's -i config id, by default the host "
        "name of the machine it runs on (give it with hafm convert --config-id)"
    )
    without_instance = text.replace("${_INSTANCE}", "r1")
    assert one_error(without_instance) == (
        "keepalived.conf:19: @node2: conditional blocks need the config id (hafm convert --config-id)"
    )
    result = convert_text(without_instance.split("@node2 vrrp_instance")[0])
    assert result.warnings[0] == (
        "keepalived.conf:8: @node1: not converted (conditional configuration depends on the machine keepalived "
        "runs on; give its id with hafm convert --config-id)"
    )
    assert len(result.warnings) == 4
