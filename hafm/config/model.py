"""The validated configuration, as plain frozen dataclasses: the one place where config keys are declared.

The loader (:mod:`hafm.config.loader`) turns TOML into these; everything else in
hafm reads only these types, never raw dicts.  Times are float seconds.

A field with :func:`~hafm.config.schema.key` metadata is a TOML key: its converter says what values are
allowed, the dataclass default is the key's default, and a field without a default is a required key.  The
``*_KEYS`` tables at the end are derived from these fields; the loader validates with them, ``check-config``
prints in their order and ``hafm convert`` writes keys in their order.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from hafm.config import schema
from hafm.config.schema import derived, flattened, key, record, toml_keys
from hafm.logs import LOG_FORMATS
from hafm.vrrp.codec import IPAddress  # noqa: E402  (the protocol core owns the type; re-exported here)

IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface

# A probe more often than every 10 ms is a busy loop, not a health check; a day is the longest useful period.
MIN_CHECK_TIME = 0.01
MAX_CHECK_TIME = 86400.0


@dataclass(frozen=True, kw_only=True)
class Vip:
    """One virtual address: ``address/prefix`` on ``dev`` (default: the instance interface)."""

    address: IPInterface = field(metadata=key(schema.vip_address))
    dev: str | None = field(default=None, metadata=key(schema.interface_name))
    label: str | None = field(default=None, metadata=key(schema.string))


@dataclass(frozen=True, kw_only=True)
class Authentication:
    """VRRPv2 simple text password (RFC 3768 auth type 1); only "PASS" is supported."""

    auth_type: Literal["PASS"] = field(default="PASS", metadata=key(schema.auth_type, required=True))
    auth_pass: str = field(metadata=key(schema.auth_pass))


@dataclass(frozen=True, kw_only=True)
class TrackCheck:
    """A check tracked by an instance; ``weight`` None means the check's own weight."""

    name: str = field(metadata=key(schema.string))
    weight: int | None = field(default=None, metadata=key(schema.weight))


@dataclass(frozen=True, kw_only=True)
class Notify:
    """Notify commands (shlex-split, never run through a shell), in keepalived's order: specific first."""

    master: str | None = field(default=None, metadata=key(schema.command, toml="notify_master"))
    backup: str | None = field(default=None, metadata=key(schema.command, toml="notify_backup"))
    fault: str | None = field(default=None, metadata=key(schema.command, toml="notify_fault"))
    stop: str | None = field(default=None, metadata=key(schema.command, toml="notify_stop"))
    # keepalived's `notify`: called as CMD INSTANCE|GROUP NAME STATE PRIORITY
    any: str | None = field(default=None, metadata=key(schema.command, toml="notify"))


_vip = record(Vip, "an address string or a table { address, dev, label }", shorthand="address")
_track_check = record(TrackCheck, "a check name or a table { name, weight }", shorthand="name")
_authentication = record(Authentication, "a table { auth_type, auth_pass }")


@dataclass(frozen=True, kw_only=True)
class InstanceConfig:
    name: str
    state: Literal["MASTER", "BACKUP"] = field(default="BACKUP", metadata=key(schema.choice("MASTER", "BACKUP")))
    interface: str = field(metadata=key(schema.interface_name))
    virtual_router_id: int = field(metadata=key(schema.integer(1, 255)))
    priority: int = field(default=100, metadata=key(schema.integer(1, 255)))
    # The range depends on the version; hafm.config.loader checks it once the version is known.
    advert_int: float = field(default=1.0, metadata=key(schema.number(0, above=True)))
    version: Literal[2, 3] = field(default=2, metadata=key(schema.version))
    family: Literal[4, 6] = field(default=4, metadata=derived("derived from the addresses"))
    nopreempt: bool = field(default=False, metadata=key(schema.boolean))
    preempt_delay: float = field(default=0.0, metadata=key(schema.number(0, 1000)))
    authentication: Authentication | None = field(default=None, metadata=key(_authentication))
    virtual_ipaddress: tuple[Vip, ...] = field(default=(), metadata=key(schema.array(_vip)))
    virtual_ipaddress_excluded: tuple[Vip, ...] = field(default=(), metadata=key(schema.array(_vip)))
    # RFC 5798 §5.2.5: an advert carries at least one address; an instance without one must say so.
    allow_no_vip: bool = field(default=False, metadata=key(schema.boolean))
    unicast_src_ip: IPAddress | None = field(default=None, metadata=key(schema.unicast_address))
    unicast_peer: tuple[IPAddress, ...] = field(default=(), metadata=key(schema.array(schema.unicast_address)))
    track_interface: tuple[str, ...] = field(default=(), metadata=key(schema.array(schema.interface_name)))
    track_check: tuple[TrackCheck, ...] = field(default=(), metadata=key(schema.array(_track_check)))
    notify: Notify = field(default_factory=Notify, metadata=flattened(Notify))
    garp_master_delay: float = field(default=5.0, metadata=key(schema.number(0, 1000)))
    garp_master_repeat: int = field(default=5, metadata=key(schema.integer(0, 255)))
    # 0 is off; below a second it would be a gratuitous-ARP flood, not a refresh (keepalived counts seconds).
    garp_master_refresh: float = field(default=0.0, metadata=key(schema.off_or_number(1, 86400)))
    v3_checksum_as_v2: bool = field(default=False, metadata=key(schema.boolean))
    resign_below: int | None = field(default=None, metadata=key(schema.integer(1, 254)))
    # docs/witness.md: Master only while holding the [witness] key; "lease" sends no VRRP at all.
    witness: bool = field(default=False, metadata=key(schema.boolean))
    mode: Literal["vrrp", "lease"] = field(default="vrrp", metadata=key(schema.choice("vrrp", "lease")))

    @property
    def uses_witness(self) -> bool:
        """Whether the [witness] key decides if this instance may be Master (lease mode always does)."""
        return self.witness or self.mode == "lease"

    @property
    def all_vips(self) -> tuple[Vip, ...]:
        """Every address the instance places: ``virtual_ipaddress`` then ``virtual_ipaddress_excluded``."""
        return self.virtual_ipaddress + self.virtual_ipaddress_excluded


@dataclass(frozen=True, kw_only=True)
class CheckConfig:
    """A ``[check.NAME]`` table: the common keys, plus ``options`` for the type's own keys."""

    name: str
    type: str = field(metadata=key(schema.string))
    interval: float = field(default=1.0, metadata=key(schema.number(MIN_CHECK_TIME, MAX_CHECK_TIME)))
    # HAProxy's fastinter: the interval between a first failure and `fall` (None: `interval`).
    fast_interval: float | None = field(default=None, metadata=key(schema.number(MIN_CHECK_TIME, MAX_CHECK_TIME)))
    timeout: float = field(default=1.0, metadata=key(schema.number(MIN_CHECK_TIME, MAX_CHECK_TIME)))
    fall: int = field(default=1, metadata=key(schema.integer(1)))
    rise: int = field(default=1, metadata=key(schema.integer(1)))
    weight: int = field(default=0, metadata=key(schema.weight))
    init_state: Literal["up", "down"] = field(default="down", metadata=key(schema.choice("up", "down")))
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class SyncGroupConfig:
    name: str
    group: tuple[str, ...] = field(metadata=key(schema.array(schema.string)))
    notify: Notify = field(default_factory=Notify, metadata=flattened(Notify))


@dataclass(frozen=True, kw_only=True)
class GlobalConfig:
    router_id: str | None = field(default=None, metadata=key(schema.string))
    vrrp_version: Literal[2, 3] = field(default=2, metadata=key(schema.version))
    # Unset, both are the main file's STEM.d directory (/etc/hafm.d for /etc/hafm.toml): the loader fills them in
    # (hafm.config.loader.default_dropin_dir), so a loaded config always holds the absolute paths used.
    include: tuple[str, ...] = field(default=(), metadata=key(schema.array(schema.string)))
    plugin_dirs: tuple[str, ...] = field(default=(), metadata=key(schema.array(schema.string)))
    control_socket: str = field(default="/run/hafm/hafm.sock", metadata=key(schema.absolute_path))
    log_level: str = field(default="info", metadata=key(schema.choice("debug", "info", "warning", "error")))
    # "json": one JSON object per line, for log shippers (hafm.logs)
    log_format: str = field(default="text", metadata=key(schema.choice(*LOG_FORMATS)))
    # Unset: no metrics endpoint.  HOST:PORT of the Prometheus /metrics endpoint (hafm.shell.metrics).
    metrics_listen: str | None = field(default=None, metadata=key(schema.listen_address))
    notify_fifo: str | None = field(default=None, metadata=key(schema.absolute_path))
    # a notify script waits for the previous one of the same instance
    notify_wait: bool = field(default=True, metadata=key(schema.boolean))
    # seconds before a notify script's process group is killed
    notify_timeout: float = field(default=30.0, metadata=key(schema.number(0, 3600, above=True)))


@dataclass(frozen=True, kw_only=True)
class WitnessConfig:
    """The ``[witness]`` table: the etcd cluster whose leases veto a Master (docs/witness.md)."""

    type: Literal["etcd"] = field(metadata=key(schema.choice("etcd")))
    endpoints: tuple[str, ...] = field(metadata=key(schema.array(schema.http_url)))
    # etcd leases count whole seconds; etcd itself raises a TTL below its minimum (about 2 s by default).
    ttl: int = field(default=3, metadata=key(schema.integer(1, 3600)))
    prefix: str = field(default="/hafm/", metadata=key(schema.key_prefix))
    cluster: str = field(default="default", metadata=key(schema.key_segment))
    ca_file: str | None = field(default=None, metadata=key(schema.absolute_path, toml="ca"))
    cert_file: str | None = field(default=None, metadata=key(schema.absolute_path, toml="cert"))
    key_file: str | None = field(default=None, metadata=key(schema.absolute_path, toml="key"))
    user: str | None = field(default=None, metadata=key(schema.string))
    password: str | None = field(default=None, metadata=key(schema.string))


@dataclass(frozen=True, kw_only=True)
class Config:
    """The whole effective configuration.

    ``provenance`` maps a dotted key path (``vrrp_instance.VI_1.priority``) to
    the file it came from; ``path`` is the main file.
    """

    path: Path
    global_: GlobalConfig = field(default_factory=GlobalConfig)
    instances: dict[str, InstanceConfig] = field(default_factory=dict)
    checks: dict[str, CheckConfig] = field(default_factory=dict)
    sync_groups: dict[str, SyncGroupConfig] = field(default_factory=dict)
    witness: WitnessConfig | None = None
    provenance: dict[str, Path] = field(default_factory=dict)


# The schema of each table, derived from the fields above (in their order).
GLOBAL_KEYS = toml_keys(GlobalConfig)
INSTANCE_KEYS = toml_keys(InstanceConfig)
SYNC_GROUP_KEYS = toml_keys(SyncGroupConfig)
# Only the keys every check type shares; the rest of a [check.NAME] table belongs to the check type.
CHECK_COMMON_KEYS = toml_keys(CheckConfig)
WITNESS_KEYS = toml_keys(WitnessConfig)
NOTIFY_KEYS = toml_keys(Notify)
NOTIFY_FIELDS = {name: spec.attribute for name, spec in NOTIFY_KEYS.items()}
"""``{config key: Notify attribute}``, in keepalived's order (``notify_master`` → ``master``)."""
