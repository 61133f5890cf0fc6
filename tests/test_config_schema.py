"""Config keys are declared once, as model fields: the loader, check-config's printout, the notify runner and
``hafm convert`` all read the same tables."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from hafm.config import model, schema
from hafm.config.loader import format_effective, load_config
from hafm.keepalived import convert
from hafm_plugins import notify_runner


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Inner:
    first: str | None = dataclasses.field(default=None, metadata=schema.key(schema.string, toml="x_first"))


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Outer:
    name: str
    needed: int = dataclasses.field(metadata=schema.key(schema.integer(1, 9)))
    shown: int = dataclasses.field(default=4, metadata=schema.derived("computed"))
    inner: _Inner = dataclasses.field(default_factory=_Inner, metadata=schema.flattened(_Inner))
    optional: bool = dataclasses.field(default=False, metadata=schema.key(schema.boolean))


def test_field_metadata_is_the_schema() -> None:
    keys = schema.toml_keys(_Outer)
    assert list(keys) == ["needed", "x_first", "optional"]
    assert keys["needed"].required and not keys["optional"].required
    assert (keys["x_first"].parent, keys["x_first"].attribute) == ("inner", "first")
    built = schema.build(_Outer, {"needed": 3, "x_first": "a"}, name="n")
    assert built == _Outer(name="n", needed=3, inner=_Inner(first="a"))
    assert [(entry.name, entry.value_in(built)) for entry in schema.shown_fields(_Outer)] == [
        ("needed", 3),
        ("shown", 4),
        ("x_first", "a"),
        ("optional", False),
    ]


@pytest.mark.parametrize(
    ("table", "record"),
    [
        (model.INSTANCE_KEYS, model.InstanceConfig),
        (model.GLOBAL_KEYS, model.GlobalConfig),
        (model.CHECK_COMMON_KEYS, model.CheckConfig),
        (model.SYNC_GROUP_KEYS, model.SyncGroupConfig),
    ],
)
def test_every_model_field_is_a_key_or_declared_otherwise(table: dict[str, schema.Key], record: type) -> None:
    """A field added to the model without metadata would be invisible to the loader: only the name (the
    table's name), options (the check type's keys) and derived fields may lack a key."""
    filled = {spec.parent or spec.attribute for spec in table.values()}
    derived = {entry.name for entry in schema.shown_fields(record) if entry.key is None}
    assert {f.name for f in dataclasses.fields(record)} - filled - derived <= {"name", "options"}


def test_the_notify_runner_and_convert_use_the_model_tables() -> None:
    assert notify_runner.NOTIFY_FIELDS is model.NOTIFY_FIELDS
    assert convert.NOTIFY_KEYS is model.NOTIFY_KEYS
    assert convert.INSTANCE_KEYS is model.INSTANCE_KEYS
    assert list(model.NOTIFY_FIELDS) == ["notify_master", "notify_backup", "notify_fault", "notify_stop", "notify"]


def test_effective_config_prints_keys_in_model_order(tmp_path: Path) -> None:
    main = tmp_path / "hafm.toml"
    main.write_text(
        '[vrrp_instance.VI_1]\nresign_below = 50\nnotify = "/bin/true"\nvirtual_router_id = 1\n'
        'interface = "eth0"\nvirtual_ipaddress = ["203.0.113.1/24"]\n'
    )
    lines = format_effective(load_config(main)).split("[vrrp_instance.VI_1]\n", 1)[1].splitlines()
    printed = [line.split(" = ", 1)[0] for line in lines if " = " in line]
    expected = [entry.name for entry in schema.shown_fields(model.InstanceConfig)]
    assert printed == [name for name in expected if name in printed]
    assert printed.index("notify") < printed.index("garp_master_delay") < printed.index("resign_below")
