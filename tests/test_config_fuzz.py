"""Property: whatever a configuration file holds, loading it ends in a Config or a ConfigError whose messages
are each one line naming the file.  Configs are a valid one from the schema plus random mutations: wrong types,
out-of-range and non-finite numbers, weird strings, deleted required keys, unknown keys, odd table names."""

from __future__ import annotations

import copy
import datetime
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hafm.config.loader import CheckValidator, format_effective, load_config
from hafm.config.model import CHECK_COMMON_KEYS, GLOBAL_KEYS, INSTANCE_KEYS, SYNC_GROUP_KEYS
from hafm.config.schema import Key
from hafm.errors import ConfigError
from hafm.plugin_manager import check_types, make_plugin_manager

MAIN: dict[str, Any] = {
    "global": {"router_id": "A", "include": ["d/*.toml"], "log_level": "info"},
    "vrrp_instance": {
        "VI_1": {
            "interface": "eth0",
            "virtual_router_id": 51,
            "priority": 100,
            "authentication": {"auth_type": "PASS", "auth_pass": "1111"},
            "virtual_ipaddress": ["203.0.113.1/24", {"address": "198.51.100.1/24", "dev": "eth1"}],
            "unicast_src_ip": "203.0.113.4",
            "unicast_peer": ["203.0.113.5"],
            "track_check": ["web", {"name": "web2", "weight": -10}],
            "notify_master": "/bin/true master",
            "garp_master_refresh": 60,
        }
    },
    "vrrp_sync_group": {"G1": {"group": ["VI_1", "VI_2"], "notify": "/bin/true"}},
}
DROPIN: dict[str, Any] = {
    "check": {
        "web": {"type": "http", "url": "http://127.0.0.1:8080/", "expect_status": "200-299", "interval": 2},
        "web2": {"type": "tcp", "host": "127.0.0.1", "port": 8080},
    },
    "vrrp_instance": {
        "VI_2": {"interface": "eth1", "virtual_router_id": 52, "version": 3, "virtual_ipaddress": ["2001:db8::1"]}
    },
}
HTTP_KEYS = ("url", "method", "expect_status", "expect_body", "expect_regex", "headers", "verify_tls", "source_address")

# (which document, path to the table, the keys its schema knows)
TABLES: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = [
    ("main", ("global",), tuple(GLOBAL_KEYS)),
    ("main", ("vrrp_instance", "VI_1"), tuple(INSTANCE_KEYS)),
    ("main", ("vrrp_sync_group", "G1"), tuple(SYNC_GROUP_KEYS)),
    ("dropin", ("check", "web"), (*CHECK_COMMON_KEYS, *HTTP_KEYS)),
    ("dropin", ("check", "web2"), (*CHECK_COMMON_KEYS, "host", "port")),
    ("dropin", ("vrrp_instance", "VI_2"), tuple(INSTANCE_KEYS)),
]
REQUIRED = {name for keys in (GLOBAL_KEYS, INSTANCE_KEYS, SYNC_GROUP_KEYS, CHECK_COMMON_KEYS) for name in keys}

WEIRD_STRINGS = [
    "", " ", "eth0", "a\nb", "\x00", "\u2028", "\x1b[31m", "203.0.113.1/24", "0.0.0.0/0", "224.0.0.18", "ff02::1",
    "127.0.0.1", "255.255.255.255", "::", "/bin/true", "relative/x.sh", "'unbalanced", "100-400000000", "http://x/",
    "MASTER", "PASS", "AH", "VI_1", "web", "*", "../*", "{a,b}", "%eth0", "2001:db8::1%eth0",
]  # fmt: skip
scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, 1, -1, 255, 256, 4096, 10**400]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e-6, 0.001, 0.01, 0.015, 40.95, 1e308]),
    st.text(max_size=12),
    st.sampled_from(WEIRD_STRINGS),
    st.dates(),
    st.times(),
    st.datetimes(timezones=st.just(datetime.UTC) | st.none()),
)
values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)
key_names = st.one_of(st.sampled_from(sorted(REQUIRED)), st.text(max_size=10))


@st.composite
def mutated(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    documents = {"main": copy.deepcopy(MAIN), "dropin": copy.deepcopy(DROPIN)}
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        document_name, path, keys = draw(st.sampled_from(TABLES))
        parent = documents[document_name]
        for step in path[:-1]:
            parent = parent.setdefault(step, {}) if isinstance(parent, dict) else {}
        if not isinstance(parent, dict):
            continue
        table = parent.get(path[-1])
        operation = draw(st.sampled_from(["set", "set", "set", "delete", "unknown", "rename", "replace", "top"]))
        if operation == "replace" or not isinstance(table, dict):
            parent[path[-1]] = draw(values)
        elif operation == "set":
            table[draw(st.sampled_from(keys))] = draw(values)
        elif operation == "delete" and table:
            del table[draw(st.sampled_from(sorted(table)))]
        elif operation == "unknown":
            table[draw(key_names)] = draw(values)
        elif operation == "rename":
            parent[draw(st.text(max_size=6))] = parent.pop(path[-1])
        elif operation == "top":
            documents[document_name][draw(key_names)] = draw(values)
    return documents["main"], documents["dropin"]


@pytest.fixture(scope="module")
def validators() -> dict[str, CheckValidator]:
    return {name: t.validate for name, t in check_types(make_plugin_manager(load_entry_points=False)).items()}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def test_the_unmutated_config_loads(workdir: Path, validators: dict[str, CheckValidator]) -> None:
    main = write_pair(workdir, MAIN, DROPIN)
    config = load_config(main, check_validators=validators)
    assert list(config.instances) == ["VI_1", "VI_2"] and list(config.checks) == ["web", "web2"]


def write_pair(workdir: Path, main: dict[str, Any], dropin: dict[str, Any]) -> Path:
    (workdir / "d").mkdir(exist_ok=True)
    (workdir / "d/checks.toml").write_text(tomli_w.dumps(dropin))
    (workdir / "hafm.toml").write_text(tomli_w.dumps(main))
    return workdir / "hafm.toml"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pair=mutated())
def test_every_outcome_is_a_config_or_one_line_errors_naming_the_file(
    workdir: Path, validators: dict[str, CheckValidator], pair: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    main = write_pair(workdir, *pair)
    files = (str(main), str(workdir / "d/checks.toml"))
    try:
        config = load_config(main, check_validators=validators)
    except ConfigError as exc:
        assert exc.messages
        for message in exc.messages:
            assert message.splitlines() == [message], message
            assert message.startswith(files), message
    else:
        assert format_effective(config).startswith("# hafm effective configuration")


def test_key_tables_are_what_the_fuzzer_mutates() -> None:
    """The fuzzer reads the model's tables: a key added to the model is fuzzed without editing this file."""
    assert all(isinstance(spec, Key) for spec in INSTANCE_KEYS.values())
    assert "allow_no_vip" in INSTANCE_KEYS
