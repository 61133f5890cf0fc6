"""Load hafm's TOML configuration (main file + ``include`` drop-ins) into :mod:`hafm.config.model`.

Rules, in the order they apply:

* The main file is read first; its ``[global] include`` globs (relative to the main file, default
  ``conf.d/*.toml``) name drop-ins, read pattern by pattern, each pattern's matches in lexical order.
* A table (``[vrrp_instance.NAME]``, ``[vrrp_sync_group.NAME]``, ``[check.NAME]``) lives in exactly one
  file: a second definition is an error naming both files.  ``[global]`` is only allowed in the main
  file.  So every key has exactly one source, recorded in :attr:`Config.provenance`.
* Every problem in every file is collected; :func:`load_config` raises one :class:`ConfigError` whose
  messages are single lines ``FILE: TABLE.NAME.KEY: message``.
"""

from __future__ import annotations

import glob
import ipaddress
import json
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hafm.config import schema
from hafm.config.model import (
    CheckConfig,
    Config,
    GlobalConfig,
    InstanceConfig,
    Notify,
    SyncGroupConfig,
    Vip,
)
from hafm.errors import ConfigError

__all__ = ["CheckValidator", "format_effective", "load_config"]

CheckValidator = Callable[[Mapping[str, Any]], list[tuple[str, str]]]
"""Validates a check type's own keys (a ``[check.NAME]`` table minus the common keys).

Returns ``[(key, message)]``; an empty list means the options are fine.  The loader prints each as
``FILE: check.NAME.KEY: MESSAGE``.
"""

# Sections whose sub-tables are named objects, in the order they are validated and printed.
NAMED_SECTIONS = ("check", "vrrp_instance", "vrrp_sync_group")

NOTIFY_FIELDS = {
    "notify_master": "master",
    "notify_backup": "backup",
    "notify_fault": "fault",
    "notify_stop": "stop",
    "notify": "any",
}

_TOML_POSITION = re.compile(r"^(?P<message>.*) \(at line (?P<line>\d+), column (?P<column>\d+)\)$")
_TOML_AT_END = re.compile(r"^(?P<message>.*) \(at end of document\)$")


def load_config(path: Path, *, check_validators: Mapping[str, CheckValidator] | None = None) -> Config:
    """Read ``path`` and its drop-ins and return the validated configuration.

    ``check_validators`` maps a check ``type`` to the validator of its own keys (plugins provide
    them).  When given, an unknown check type is an error; when None, any type is accepted.

    Raises :class:`hafm.errors.ConfigError` listing every problem found, one line each.
    """
    return _Loader(path, check_validators).load()


@dataclass
class _Table:
    """One named table as read, with the file it came from."""

    file: Path
    raw: Any


@dataclass
class _Loader:
    main: Path
    check_validators: Mapping[str, CheckValidator] | None
    errors: list[str] = field(default_factory=list)
    provenance: dict[str, Path] = field(default_factory=dict)
    global_table: _Table | None = None
    tables: dict[str, dict[str, _Table]] = field(default_factory=lambda: {s: {} for s in NAMED_SECTIONS})

    def __post_init__(self) -> None:
        self.main = Path(os.path.abspath(self.main))

    # --- reporting ----------------------------------------------------------------------------

    def error(self, file: Path, where: str, message: str) -> None:
        self.errors.append(f"{file}: {where}: {message}" if where else f"{file}: {message}")

    def convert_table(
        self, file: Path, where: str, raw: Any, keys: dict[str, schema.Key], *, extra_ok: bool = False
    ) -> tuple[dict[str, Any], dict[str, Any], bool]:
        """Convert every key of one table; returns (values, unschema'd extra keys, no-errors)."""
        if not isinstance(raw, dict):
            self.error(file, where, f"expected a table, got {schema.describe(raw)}")
            return {}, {}, False
        values: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        ok = True
        for key, value in raw.items():
            self.provenance[f"{where}.{key}"] = file
            if key not in keys:
                if extra_ok:
                    extra[key] = value
                else:
                    self.error(file, f"{where}.{key}", schema.unknown_key_message(key, keys))
                    ok = False
                continue
            try:
                values[key] = keys[key].convert(value)
            except schema.Invalid as exc:
                ok = False
                for sub, message in exc.problems:
                    self.error(file, f"{where}.{key}{sub}", message)
        for key, spec in keys.items():
            if spec.required and key not in raw:
                self.error(file, f"{where}.{key}", "required key is missing")
                ok = False
        return values, extra, ok

    # --- reading ------------------------------------------------------------------------------

    def read(self, file: Path) -> dict[str, Any] | None:
        try:
            text = file.read_bytes().decode()
        except OSError as exc:
            self.error(file, "", f"cannot read configuration file: {exc.strerror or exc}")
            return None
        except UnicodeDecodeError as exc:
            self.error(file, "", f"not valid UTF-8 at byte {exc.start}")
            return None
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            self.errors.append(_syntax_error(file, text, str(exc)))
            return None

    def collect(self, file: Path, document: dict[str, Any], *, is_main: bool) -> None:
        """Register the top-level tables of one file, enforcing the one-file-per-table rule."""
        for section, value in document.items():
            if section == "global":
                if is_main:
                    self.global_table = _Table(file=file, raw=value)
                else:
                    self.error(file, "global", f"[global] is only allowed in the main file {self.main}")
                continue
            if section not in NAMED_SECTIONS:
                hint = schema.suggest(section, schema.TOP_LEVEL_TABLES)
                allowed = "" if hint else f"; allowed: {', '.join(schema.TOP_LEVEL_TABLES)}"
                self.error(file, section, f"unknown table {section!r}{hint}{allowed}")
                continue
            if not isinstance(value, dict):
                self.error(file, section, f"expected tables like [{section}.NAME], got {schema.describe(value)}")
                continue
            for name, table in value.items():
                earlier = self.tables[section].get(name)
                if earlier is not None:
                    self.error(
                        file,
                        f"{section}.{name}",
                        f"already defined in {earlier.file}; a table may be defined in one file only",
                    )
                    continue
                self.tables[section][name] = _Table(file=file, raw=table)

    def include_files(self, patterns: tuple[str, ...]) -> list[Path]:
        seen = {self.main}
        files: list[Path] = []
        for pattern in patterns:
            for match in sorted(glob.glob(os.path.join(self.main.parent, pattern))):
                file = Path(os.path.normpath(match))
                if file not in seen and file.is_file():
                    seen.add(file)
                    files.append(file)
        return files

    # --- the whole load -----------------------------------------------------------------------

    def load(self) -> Config:
        document = self.read(self.main)
        if document is None:
            raise ConfigError(self.errors)
        self.collect(self.main, document, is_main=True)
        global_values: dict[str, Any] = {}
        if self.global_table is not None:
            global_values, _, _ = self.convert_table(self.main, "global", self.global_table.raw, schema.GLOBAL_KEYS)
        base = os.path.abspath(self.main.parent)
        include = tuple(global_values.get("include", GlobalConfig().include))
        for file in self.include_files(include):
            included = self.read(file)
            if included is not None:
                self.collect(file, included, is_main=False)

        global_ = GlobalConfig(
            **{
                **global_values,
                "include": tuple(os.path.normpath(os.path.join(base, p)) for p in include),
                "plugin_dirs": tuple(
                    os.path.normpath(os.path.join(base, p))
                    for p in global_values.get("plugin_dirs", GlobalConfig().plugin_dirs)
                ),
            }
        )
        checks = self.load_checks()
        instances = self.load_instances(global_)
        sync_groups = self.load_sync_groups()
        if self.errors:
            raise ConfigError(self.errors)
        return Config(
            path=self.main,
            global_=global_,
            instances=instances,
            checks=checks,
            sync_groups=sync_groups,
            provenance=dict(self.provenance),
        )

    def load_checks(self) -> dict[str, CheckConfig]:
        checks: dict[str, CheckConfig] = {}
        for name, table in self.tables["check"].items():
            where = f"check.{name}"
            values, options, ok = self.convert_table(
                table.file, where, table.raw, schema.CHECK_COMMON_KEYS, extra_ok=True
            )
            check_type = values.get("type")
            if check_type is not None and self.check_validators is not None:
                ok = self.validate_check_options(table.file, where, check_type, options) and ok
            if ok:
                checks[name] = CheckConfig(name=name, options=options, **values)
        return checks

    def validate_check_options(self, file: Path, where: str, check_type: str, options: dict[str, Any]) -> bool:
        assert self.check_validators is not None
        validator = self.check_validators.get(check_type)
        if validator is None:
            known = sorted(self.check_validators)
            hint = schema.suggest(check_type, known)
            self.error(
                file,
                f"{where}.type",
                f"unknown check type {check_type!r}{hint} (known: {', '.join(known) or 'none'})",
            )
            return False
        try:
            problems = [(str(key), str(message)) for key, message in validator(options)]
        except Exception as exc:  # a plugin's bug must still end as one line, not a traceback
            self.error(file, where, f"the {check_type!r} check validator failed: {type(exc).__name__}: {exc}")
            return False
        for key, message in problems:
            self.error(file, f"{where}.{key}" if key else where, message)
        return not problems

    def load_instances(self, global_: GlobalConfig) -> dict[str, InstanceConfig]:
        instances: dict[str, InstanceConfig] = {}
        vrid_owner: dict[tuple[str, int, int], str] = {}
        if not self.tables["vrrp_instance"]:
            self.error(self.main, "vrrp_instance", "no [vrrp_instance.NAME] defined; at least one is required")
        for name, table in self.tables["vrrp_instance"].items():
            where = f"vrrp_instance.{name}"
            file = table.file
            values, _, ok = self.convert_table(file, where, table.raw, schema.INSTANCE_KEYS)
            if "version" not in values and isinstance(table.raw, dict) and "version" not in table.raw:
                values["version"] = global_.vrrp_version
                if "global.vrrp_version" in self.provenance:
                    self.provenance[f"{where}.version"] = self.provenance["global.vrrp_version"]
            ok = self.check_instance(file, where, values) and ok
            family = values.get("family", 4)
            if "interface" in values and "virtual_router_id" in values:
                slot = (values["interface"], family, values["virtual_router_id"])
                if slot in vrid_owner:
                    self.error(
                        file,
                        f"{where}.virtual_router_id",
                        f"{slot[2]} is already used on {slot[0]} (IPv{family}) by vrrp_instance.{vrid_owner[slot]}",
                    )
                    ok = False
                else:
                    vrid_owner[slot] = name
            if ok:
                notify = Notify(**{NOTIFY_FIELDS[k]: values.pop(k) for k in list(values) if k in NOTIFY_FIELDS})
                instances[name] = InstanceConfig(name=name, notify=notify, **values)
        return instances

    def check_instance(self, file: Path, where: str, values: dict[str, Any]) -> bool:
        """Checks that need several keys of one instance; sets ``values['family']``."""
        errors_before = len(self.errors)
        version = values.get("version")  # None when the version itself was wrong: skip what depends on it
        if "advert_int" in values and version is not None:
            message = schema.advert_int_problem(values["advert_int"], version)
            if message:
                self.error(file, f"{where}.advert_int", message)
        if version == 3 and "authentication" in values:
            self.error(
                file,
                f"{where}.authentication",
                "not allowed with version 3 (RFC 5798 removed authentication)",
            )
        self.check_family(file, where, values)
        if values.get("family") == 6 and version == 2:
            source = "virtual_ipaddress" if values.get("virtual_ipaddress") else "unicast_peer"
            self.error(file, f"{where}.{source}", "IPv6 needs version = 3 (VRRPv2 is IPv4-only)")
        priority = values.get("priority", 100)
        if "resign_below" in values and values["resign_below"] >= priority:
            self.error(
                file,
                f"{where}.resign_below",
                f"{values['resign_below']} must be below the priority {priority}",
            )
        interface = values.get("interface")
        for key in ("virtual_ipaddress", "virtual_ipaddress_excluded"):
            for index, vip in enumerate(values.get(key, ())):
                message = schema.label_problem(vip, interface)
                if message:
                    self.error(file, f"{where}.{key}[{index}].label", message)
        seen: set[str] = set()
        for index, track in enumerate(values.get("track_check", ())):
            if track.name in seen:
                self.error(file, f"{where}.track_check[{index}]", f"check {track.name!r} is tracked twice")
            seen.add(track.name)
            if track.name not in self.tables["check"]:
                defined = list(self.tables["check"])
                hint = schema.suggest(track.name, defined)
                self.error(
                    file,
                    f"{where}.track_check[{index}]",
                    f"check {track.name!r} is not defined{hint} (defined: {', '.join(defined) or 'none'})",
                )
        return len(self.errors) == errors_before

    def check_family(self, file: Path, where: str, values: dict[str, Any]) -> None:
        """Derive the instance's family from its VIPs (else its unicast addresses) and reject mixes."""
        vips: tuple[Vip, ...] = values.get("virtual_ipaddress", ())
        families = {vip.address.version for vip in vips}
        if len(families) > 1:
            self.error(
                file,
                f"{where}.virtual_ipaddress",
                "mixes IPv4 and IPv6 addresses; use one instance per family",
            )
            return
        unicast: list[tuple[str, ipaddress.IPv4Address | ipaddress.IPv6Address]] = []
        if "unicast_src_ip" in values:
            unicast.append(("unicast_src_ip", values["unicast_src_ip"]))
        unicast += [(f"unicast_peer[{i}]", peer) for i, peer in enumerate(values.get("unicast_peer", ()))]
        if families:
            family, source = families.pop(), "virtual_ipaddress"
        elif unicast:
            family, source = unicast[0][1].version, unicast[0][0]
        else:
            family, source = 4, "the default"
        values["family"] = family
        for key, address in unicast:
            if address.version != family:
                self.error(
                    file,
                    f"{where}.{key}",
                    f"{address} is IPv{address.version} but the instance is IPv{family} (from {source}); "
                    "use one instance per family",
                )

    def load_sync_groups(self) -> dict[str, SyncGroupConfig]:
        groups: dict[str, SyncGroupConfig] = {}
        member_of: dict[str, str] = {}
        for name, table in self.tables["vrrp_sync_group"].items():
            where = f"vrrp_sync_group.{name}"
            values, _, ok = self.convert_table(table.file, where, table.raw, schema.SYNC_GROUP_KEYS)
            known = list(self.tables["vrrp_instance"])
            for index, member in enumerate(values.get("group", ())):
                if member not in self.tables["vrrp_instance"]:
                    hint = schema.suggest(member, known)
                    self.error(
                        table.file,
                        f"{where}.group[{index}]",
                        f"instance {member!r} is not defined{hint} (defined: {', '.join(known) or 'none'})",
                    )
                    ok = False
                elif member in member_of:
                    self.error(
                        table.file,
                        f"{where}.group[{index}]",
                        f"instance {member!r} is already in vrrp_sync_group.{member_of[member]}; "
                        "an instance can be in one group only",
                    )
                    ok = False
                else:
                    member_of[member] = name
            if "group" in values and not values["group"]:
                self.error(table.file, f"{where}.group", "must name at least one instance")
                ok = False
            if ok:
                notify = Notify(**{NOTIFY_FIELDS[k]: v for k, v in values.items() if k in NOTIFY_FIELDS})
                groups[name] = SyncGroupConfig(name=name, group=values["group"], notify=notify)
        return groups


def _syntax_error(file: Path, text: str, message: str) -> str:
    """Turn tomllib's "msg (at line L, column C)" into "FILE:L:C: TOML syntax error: msg"."""
    match = _TOML_POSITION.match(message)
    if match:
        return f"{file}:{match['line']}:{match['column']}: TOML syntax error: {match['message']}"
    match = _TOML_AT_END.match(message)
    if match:
        lines = text.split("\n")
        position = f"{len(lines)}:{len(lines[-1]) + 1}"
        return f"{file}:{position}: TOML syntax error: {match['message']} (at end of file)"
    return f"{file}: TOML syntax error: {message}"


# --- effective configuration ----------------------------------------------------------------------


def format_effective(config: Config) -> str:
    """Render ``config`` as TOML-like text, every value annotated with the file it came from.

    Values nobody set are shown with ``# default``; ``family`` (derived from the addresses) with
    ``# derived``.  Unset optional values (None) are left out.
    """
    files = sorted({str(p) for p in config.provenance.values()} | {str(config.path)})
    lines = [f"# hafm effective configuration of {config.path}", f"# files read: {', '.join(files)}", ""]

    def emit(table: str, key: str, value: Any, note: str | None = None) -> None:
        if value is None:
            return
        source = config.provenance.get(f"{table}.{key}")
        comment = note or (str(source) if source is not None else "default")
        lines.append(f"{key} = {_toml_value(value)}  # {comment}")

    g = config.global_
    lines.append("[global]")
    for key in schema.GLOBAL_KEYS:
        emit("global", key, getattr(g, key))

    for name, check in config.checks.items():
        table = f"check.{_toml_key(name)}"
        lines += ["", f"[{table}]"]
        for key in ("type", "interval", "fast_interval", "timeout", "fall", "rise", "weight", "init_state"):
            emit(table, key, getattr(check, key))
        for key, value in check.options.items():
            emit(table, key, value)

    for name, inst in config.instances.items():
        table = f"vrrp_instance.{_toml_key(name)}"
        lines += ["", f"[{table}]"]
        for key in (
            "state", "interface", "virtual_router_id", "priority", "advert_int", "version", "family",
            "nopreempt", "preempt_delay", "authentication", "virtual_ipaddress", "virtual_ipaddress_excluded",
            "unicast_src_ip", "unicast_peer", "track_interface", "track_check",
        ):  # fmt: skip
            emit(table, key, getattr(inst, key), "derived from the addresses" if key == "family" else None)
        for key, attr in NOTIFY_FIELDS.items():
            emit(table, key, getattr(inst.notify, attr))
        for key in (
            "garp_master_delay",
            "garp_master_repeat",
            "garp_master_refresh",
            "v3_checksum_as_v2",
            "resign_below",
        ):
            emit(table, key, getattr(inst, key))

    for name, group in config.sync_groups.items():
        table = f"vrrp_sync_group.{_toml_key(name)}"
        lines += ["", f"[{table}]"]
        emit(table, "group", group.group)
        for key, attr in NOTIFY_FIELDS.items():
            emit(table, key, getattr(group.notify, attr))
    return "\n".join(lines) + "\n"


def _toml_key(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else json.dumps(name)


def _toml_value(value: Any) -> str:
    """Format one value as TOML; dataclass values as the inline tables the config file uses."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return schema.fmt_number(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items() if v is not None) + " }"
    if isinstance(value, Vip):
        if value.dev is None and value.label is None:
            return _toml_value(str(value.address))
        return _toml_value({"address": str(value.address), "dev": value.dev, "label": value.label})
    if hasattr(value, "__dataclass_fields__"):  # Authentication, TrackCheck
        fields = {k: getattr(value, k) for k in value.__dataclass_fields__}
        if set(fields) == {"name", "weight"} and fields["weight"] is None:
            return _toml_value(fields["name"])
        return _toml_value({k: v for k, v in fields.items() if v is not None})
    return _toml_value(str(value))  # addresses
