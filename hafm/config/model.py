"""The validated configuration, as plain frozen dataclasses.

The loader (:mod:`hafm.config.loader`) turns TOML into these; everything else in
hafm reads only these types, never raw dicts.  Times are float seconds.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from hafm.vrrp.codec import IPAddress  # noqa: E402  (the protocol core owns the type; re-exported here)

IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface


@dataclass(frozen=True, kw_only=True)
class Vip:
    """One virtual address: ``address/prefix`` on ``dev`` (default: the instance interface)."""

    address: IPInterface
    dev: str | None = None
    label: str | None = None


@dataclass(frozen=True, kw_only=True)
class Authentication:
    """VRRPv2 simple text password (RFC 3768 auth type 1); only "PASS" is supported."""

    auth_type: Literal["PASS"] = "PASS"
    auth_pass: str


@dataclass(frozen=True, kw_only=True)
class TrackCheck:
    """A check tracked by an instance; ``weight`` None means the check's own weight."""

    name: str
    weight: int | None = None


@dataclass(frozen=True, kw_only=True)
class Notify:
    """Notify commands (shlex-split, never run through a shell)."""

    master: str | None = None
    backup: str | None = None
    fault: str | None = None
    stop: str | None = None
    any: str | None = None  # keepalived's `notify`: called as CMD INSTANCE|GROUP NAME STATE PRIORITY


@dataclass(frozen=True, kw_only=True)
class InstanceConfig:
    name: str
    state: Literal["MASTER", "BACKUP"] = "BACKUP"
    interface: str
    virtual_router_id: int
    priority: int = 100
    advert_int: float = 1.0
    version: Literal[2, 3] = 2
    family: Literal[4, 6] = 4
    nopreempt: bool = False
    preempt_delay: float = 0.0
    authentication: Authentication | None = None
    virtual_ipaddress: tuple[Vip, ...] = ()
    virtual_ipaddress_excluded: tuple[Vip, ...] = ()
    unicast_src_ip: IPAddress | None = None
    unicast_peer: tuple[IPAddress, ...] = ()
    track_interface: tuple[str, ...] = ()
    track_check: tuple[TrackCheck, ...] = ()
    notify: Notify = field(default_factory=Notify)
    garp_master_delay: float = 5.0
    garp_master_repeat: int = 5
    garp_master_refresh: float = 0.0
    v3_checksum_as_v2: bool = False
    resign_below: int | None = None


@dataclass(frozen=True, kw_only=True)
class CheckConfig:
    """A ``[check.NAME]`` table: the common keys, plus ``options`` for the type's own keys."""

    name: str
    type: str
    interval: float = 1.0
    fast_interval: float | None = None  # HAProxy's fastinter: between a first failure and `fall`
    timeout: float = 1.0
    fall: int = 1
    rise: int = 1
    weight: int = 0
    init_state: Literal["up", "down"] = "down"
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class SyncGroupConfig:
    name: str
    group: tuple[str, ...]
    notify: Notify = field(default_factory=Notify)


@dataclass(frozen=True, kw_only=True)
class GlobalConfig:
    router_id: str | None = None
    vrrp_version: Literal[2, 3] = 2
    include: tuple[str, ...] = ("conf.d/*.toml",)
    plugin_dirs: tuple[str, ...] = ("conf.d",)
    control_socket: str = "/run/hafm/hafm.sock"
    log_level: str = "info"
    notify_fifo: str | None = None
    notify_wait: bool = True  # a notify script waits for the previous one of the same instance
    notify_timeout: float = 30.0  # seconds before a notify script's process group is killed


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
    provenance: dict[str, Path] = field(default_factory=dict)
