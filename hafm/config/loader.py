"""Load hafm's TOML configuration (main file + ``include`` drop-ins) into :mod:`hafm.config.model`.

Rules, in the order they apply:

* The main file is read first; its ``[global] include`` globs (relative to the main file, default
  ``STEM.d/*.toml`` beside it: ``/etc/hafm.d/*.toml`` for ``/etc/hafm.toml``, see :func:`default_dropin_dir`)
  name drop-ins, read pattern by pattern, each pattern's matches in lexical order.
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
import stat
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hafm.config import schema
from hafm.config.model import (
    CHECK_COMMON_KEYS,
    GLOBAL_KEYS,
    INSTANCE_KEYS,
    SYNC_GROUP_KEYS,
    WITNESS_KEYS,
    CheckConfig,
    Config,
    GlobalConfig,
    InstanceConfig,
    SyncGroupConfig,
    Vip,
    WitnessConfig,
)
from hafm.errors import ConfigError
from hafm.trust import tls_file_reason, untrusted_reason
from hafm.vrrp.constants import OWNER_PRIORITY

__all__ = ["CheckValidator", "default_dropin_dir", "format_effective", "load_config"]

CheckValidator = Callable[[Mapping[str, Any]], list[tuple[str, str]]]
"""Validates a check type's own keys (a ``[check.NAME]`` table minus the common keys).

Returns ``[(key, message)]``; an empty list means the options are fine.  The loader prints each as
``FILE: check.NAME.KEY: MESSAGE``.
"""

# Sections whose sub-tables are named objects, in the order they are validated and printed.
NAMED_SECTIONS = ("check", "vrrp_instance", "vrrp_sync_group")
# Single tables that only the main file may hold (their ``_Loader.<name>_table``).
MAIN_FILE_TABLES = ("global", "witness")

_TOML_POSITION = re.compile(r"^(?P<message>.*) \(at line (?P<line>\d+), column (?P<column>\d+)\)$")
_TOML_AT_END = re.compile(r"^(?P<message>.*) \(at end of document\)$")


def default_dropin_dir(main: Path) -> Path:
    """Where drop-ins (``*.toml``) and plugins (``*.py``) live unless ``[global] include``/``plugin_dirs`` say
    otherwise: ``STEM.d`` beside the main file, so ``/etc/hafm.toml`` reads ``/etc/hafm.d/``.

    One rule without special cases, the Unix habit (``sudoers.d``, ``logrotate.d``), never another package's
    directory (``/etc/conf.d`` belongs to OpenRC), and two configurations side by side get two directories.
    """
    main = Path(os.path.abspath(main))
    return main.parent / f"{main.stem}.d"


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
    witness_table: _Table | None = None
    tables: dict[str, dict[str, _Table]] = field(default_factory=lambda: {s: {} for s in NAMED_SECTIONS})

    def __post_init__(self) -> None:
        self.main = Path(os.path.abspath(self.main))

    # --- reporting ----------------------------------------------------------------------------

    def error(self, file: Path, where: str, message: str) -> None:
        self.errors.append(one_line(f"{file}: {where}: {message}" if where else f"{file}: {message}"))

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
            self.provenance[f"{where}.{_toml_key(key)}"] = file
            if key not in keys:
                if extra_ok:
                    extra[key] = value
                else:
                    self.error(file, f"{where}.{_toml_key(key)}", schema.unknown_key_message(key, keys))
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
            text = _read_regular_file(file).decode()
        except _Unreadable as exc:
            self.error(file, "", str(exc))
            return None
        except OSError as exc:
            self.error(file, "", f"cannot read configuration file: {exc.strerror or exc}")
            return None
        except UnicodeDecodeError as exc:
            self.error(file, "", f"not valid UTF-8 at byte {exc.start}")
            return None
        try:
            document = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            self.errors.append(one_line(_syntax_error(file, text, str(exc))))
            return None
        except ValueError as exc:  # tomllib lets int()'s digit limit through
            self.error(file, "", f"TOML syntax error: {exc}")
            return None
        except RecursionError:
            self.error(file, "", f"TOML syntax error: arrays or tables nested too deeply (at most {MAX_DEPTH})")
            return None
        if _depth(document) > MAX_DEPTH:
            self.error(file, "", f"TOML syntax error: arrays or tables nested too deeply (at most {MAX_DEPTH})")
            return None
        return document

    def collect(self, file: Path, document: dict[str, Any], *, is_main: bool) -> None:
        """Register the top-level tables of one file, enforcing the one-file-per-table rule."""
        for section, value in document.items():
            if section in MAIN_FILE_TABLES:
                if is_main:
                    setattr(self, f"{section}_table", _Table(file=file, raw=value))
                else:
                    self.error(file, section, f"[{section}] is only allowed in the main file {self.main}")
                continue
            if section not in NAMED_SECTIONS:
                hint = schema.suggest(section, schema.TOP_LEVEL_TABLES)
                allowed = "" if hint else f"; allowed: {', '.join(schema.TOP_LEVEL_TABLES)}"
                self.error(file, _toml_key(section), f"unknown table {section!r}{hint}{allowed}")
                continue
            if not isinstance(value, dict):
                self.error(file, section, f"expected tables like [{section}.NAME], got {schema.describe(value)}")
                continue
            for name, table in value.items():
                earlier = self.tables[section].get(name)
                problem = _name_problem(name)
                if problem:
                    self.error(file, f"{section}.{_toml_key(name)}", problem)
                    continue
                if earlier is not None:
                    self.error(
                        file,
                        f"{section}.{_toml_key(name)}",
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
                # Anything but a directory is read, so a FIFO or a dangling symlink is an error, not a gap.
                if file not in seen and not file.is_dir():
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
            global_values, _, _ = self.convert_table(self.main, "global", self.global_table.raw, GLOBAL_KEYS)
        base = os.path.abspath(self.main.parent)
        dropins = default_dropin_dir(self.main)
        include = tuple(global_values.get("include", (str(dropins / "*.toml"),)))
        for file in self.include_files(include):
            included = self.read(file)
            if included is not None:
                self.collect(file, included, is_main=False)

        global_ = schema.build(
            GlobalConfig,
            {
                **global_values,
                "include": tuple(os.path.normpath(os.path.join(base, p)) for p in include),
                "plugin_dirs": tuple(
                    os.path.normpath(os.path.join(base, p)) for p in global_values.get("plugin_dirs", (str(dropins),))
                ),
            },
        )
        checks = self.load_checks()
        witness = self.load_witness()
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
            witness=witness,
            provenance=dict(self.provenance),
        )

    def load_checks(self) -> dict[str, CheckConfig]:
        checks: dict[str, CheckConfig] = {}
        for name, table in self.tables["check"].items():
            where = f"check.{_toml_key(name)}"
            values, options, ok = self.convert_table(table.file, where, table.raw, CHECK_COMMON_KEYS, extra_ok=True)
            check_type = values.get("type")
            if check_type is not None and self.check_validators is not None:
                ok = self.validate_check_options(table.file, where, check_type, options) and ok
            if ok:
                checks[name] = schema.build(CheckConfig, values, name=name, options=options)
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

    def load_witness(self) -> WitnessConfig | None:
        table = self.witness_table
        if table is None:
            return None
        values, _, ok = self.convert_table(table.file, "witness", table.raw, WITNESS_KEYS)
        if "endpoints" in values and not values["endpoints"]:
            self.error(table.file, "witness.endpoints", "must list at least one etcd endpoint")
            ok = False
        for one, other in (("user", "password"), ("password", "user"), ("cert", "key"), ("key", "cert")):
            if one in values and other not in values:
                self.error(table.file, f"witness.{one}", f"needs {other} as well")
                ok = False
        # The CA decides whom hafm believes is etcd, and etcd decides who may hold the VIP.
        for tls_key in ("ca", "cert", "key"):
            if tls_key in values and (reason := tls_file_reason(tls_key, values[tls_key])):
                self.error(table.file, f"witness.{tls_key}", f"refused: {reason}")
                ok = False
        return schema.build(WitnessConfig, values) if ok else None

    def load_instances(self, global_: GlobalConfig) -> dict[str, InstanceConfig]:
        instances: dict[str, InstanceConfig] = {}
        vrid_owner: dict[tuple[str, int, int], str] = {}
        vip_owner: dict[ipaddress.IPv4Address | ipaddress.IPv6Address, str] = {}
        if not self.tables["vrrp_instance"]:
            self.error(self.main, "vrrp_instance", "no [vrrp_instance.NAME] defined; at least one is required")
        for name, table in self.tables["vrrp_instance"].items():
            where = f"vrrp_instance.{_toml_key(name)}"
            file = table.file
            values, _, ok = self.convert_table(file, where, table.raw, INSTANCE_KEYS)
            if "version" not in values and isinstance(table.raw, dict) and "version" not in table.raw:
                values["version"] = global_.vrrp_version
                if "global.vrrp_version" in self.provenance:
                    self.provenance[f"{where}.version"] = self.provenance["global.vrrp_version"]
            ok = self.check_instance(file, where, values, table.raw) and ok
            ok = self.check_vips_unique(file, where, values, vip_owner) and ok
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
                family = values.pop("family")
                instances[name] = schema.build(InstanceConfig, values, name=name, family=family)
        return instances

    def check_instance(self, file: Path, where: str, values: dict[str, Any], raw: Any) -> bool:
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
        vips = values.get("virtual_ipaddress", ())
        unset = isinstance(raw, dict) and "virtual_ipaddress" not in raw  # a bad value is reported already
        if (unset or "virtual_ipaddress" in values) and not vips and not values.get("allow_no_vip", False):
            self.error(
                file,
                f"{where}.virtual_ipaddress",
                "no virtual address: an advert carries at least one (RFC 5798 §5.2.5); "
                "set allow_no_vip = true to run an instance without one",
            )
        if version is not None and values.get("family") is not None and (version, values["family"]) != (2, 6):
            message = schema.vip_count_problem(len(vips), version, values["family"])
            if message:
                self.error(file, f"{where}.virtual_ipaddress", message)
        own = values.get("unicast_src_ip")
        peers: list[Any] = []
        for index, peer in enumerate(values.get("unicast_peer", ())):
            if peer == own:
                self.error(file, f"{where}.unicast_peer[{index}]", f"{peer} is this node's own unicast_src_ip")
            elif peer in peers:
                self.error(file, f"{where}.unicast_peer[{index}]", f"{peer} is listed twice")
            peers.append(peer)
        priority = values.get("priority", 100)
        if "resign_below" in values and values["resign_below"] >= priority:
            self.error(
                file,
                f"{where}.resign_below",
                f"{values['resign_below']} must be below the priority {priority}",
            )
        for key, wants in (("witness", values.get("witness")), ("mode", values.get("mode") == "lease")):
            if not wants:
                continue
            if self.witness_table is None:
                self.error(file, f"{where}.{key}", "needs a [witness] table (the etcd cluster) in the main file")
            elif priority == OWNER_PRIORITY:
                self.error(file, f"{where}.{key}", "the address owner (priority 255) cannot wait for a witness")
            break
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

    def check_vips_unique(
        self,
        file: Path,
        where: str,
        values: dict[str, Any],
        owner: dict[ipaddress.IPv4Address | ipaddress.IPv6Address, str],
    ) -> bool:
        """A VIP belongs to one instance: two would add and remove the same address behind each other's back."""
        ok = True
        for key in ("virtual_ipaddress", "virtual_ipaddress_excluded"):
            for index, vip in enumerate(values.get(key, ())):
                address = vip.address.ip
                if address in owner:
                    other = owner[address]
                    self.error(
                        file,
                        f"{where}.{key}[{index}]",
                        f"{address} is listed twice" if other == where else f"{address} is already a VIP of {other}",
                    )
                    ok = False
                owner.setdefault(address, where)
        return ok

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
            where = f"vrrp_sync_group.{_toml_key(name)}"
            values, _, ok = self.convert_table(table.file, where, table.raw, SYNC_GROUP_KEYS)
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
                groups[name] = schema.build(SyncGroupConfig, values, name=name)
        return groups


# Far beyond any real configuration; a bound keeps a wrong path (a log, an image) from being read whole.
MAX_CONFIG_BYTES = 4 * 1024 * 1024
# hafm's own tables nest 3 deep; check types' options a little more.  Deeper is a broken or hostile file.
MAX_DEPTH = 32


class _Unreadable(Exception):
    """A configuration path that must not be read (the message says why)."""


def _read_regular_file(file: Path) -> bytes:
    """The bytes of a regular file that passes the trust rule (:func:`hafm.trust.untrusted_reason`, the rule of
    ``*.py`` drop-ins and notify scripts), at most :data:`MAX_CONFIG_BYTES`.

    Anything else is refused before it is opened: opening a FIFO blocks, reading /dev/zero never ends,
    and opening some devices has effects.  The descriptor is opened non-blocking and checked again, in case
    the path was swapped between the two looks.
    """
    kind = _file_kind(os.stat(file).st_mode)
    if kind:
        raise _Unreadable(f"cannot read configuration file: it is {kind}, not a regular file")
    # hafm runs as root and runs the commands a config names: the file must be one only root could write.
    reason = untrusted_reason(str(file))
    if reason:
        raise _Unreadable(f"configuration file refused: {reason}")
    fd = os.open(file, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    with open(fd, "rb") as stream:
        kind = _file_kind(os.fstat(fd).st_mode)
        if kind:
            raise _Unreadable(f"cannot read configuration file: it is {kind}, not a regular file")
        data = stream.read(MAX_CONFIG_BYTES + 1)
    if len(data) > MAX_CONFIG_BYTES:
        raise _Unreadable(f"cannot read configuration file: larger than {MAX_CONFIG_BYTES // 1024 // 1024} MiB")
    return data


def _file_kind(mode: int) -> str | None:
    """What a non-regular file is, for the error message; None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    kinds = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"))
    return next((name for test, name in kinds if test(mode)), "a special file")


def _depth(value: Any) -> int:
    """How deeply arrays and tables nest in ``value`` (without recursion: the input may be hostile)."""
    deepest = 0
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            break
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack.extend((child, depth + 1) for child in children)
    return deepest


# Every control character (and Unicode's line separators) is shown escaped: an error is one line, always.
_ESCAPES = {code: f"\\x{code:02x}" for code in (*range(0x20), *range(0x7F, 0xA0))} | {
    0x2028: "\\u2028",
    0x2029: "\\u2029",
}


def one_line(message: str) -> str:
    """``message`` with every character that could break or hide a line escaped."""
    return message.translate(_ESCAPES)


def _name_problem(name: str) -> str | None:
    """A table name is printed in logs, notify arguments and the FIFO: it must be a visible one-line word."""
    if not name:
        return "the name must not be empty"
    if any(not c.isprintable() for c in name):
        return f"the name {name!r} contains a control character"
    return None


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
    default = f" (default: {default_dropin_dir(config.path).name}/ beside the main file)"
    lines = [
        f"# hafm effective configuration of {config.path}",
        f"# files read: {', '.join(files)}",
        f"# drop-ins: {', '.join(config.global_.include) or 'none'}"
        + ("" if "global.include" in config.provenance else default),
        f"# plugins (*.py) from: {', '.join(config.global_.plugin_dirs) or 'none'}"
        + ("" if "global.plugin_dirs" in config.provenance else default),
        "",
    ]

    def emit(table: str, key: str, value: Any, note: str | None = None) -> None:
        if value is None:
            return
        source = config.provenance.get(f"{table}.{key}")
        comment = note or (str(source) if source is not None else "default")
        lines.append(f"{key} = {_toml_value(value)}  # {comment}")

    def emit_all(table: str, record: Any) -> None:
        for entry in schema.shown_fields(type(record)):
            emit(table, entry.name, entry.value_in(record), entry.note or None)

    lines.append("[global]")
    emit_all("global", config.global_)
    for name, check in config.checks.items():
        table = f"check.{_toml_key(name)}"
        lines += ["", f"[{table}]"]
        emit_all(table, check)
        for key, value in check.options.items():
            emit(table, key, value)
    if config.witness is not None:
        lines += ["", "[witness]"]
        emit_all("witness", config.witness)
    for section, records in (("vrrp_instance", config.instances), ("vrrp_sync_group", config.sync_groups)):
        for name, record in records.items():
            table = f"{section}.{_toml_key(name)}"
            lines += ["", f"[{table}]"]
            emit_all(table, record)
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
