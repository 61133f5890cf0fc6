"""Tests for hafm.config.loader: every key, every one-line error, drop-ins, provenance, the check-validator hook."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from hafm.config import model as config_model
from hafm.config.loader import default_dropin_dir, format_effective, load_config
from hafm.config.model import (
    Authentication,
    CheckConfig,
    Config,
    GlobalConfig,
    InstanceConfig,
    Notify,
    SyncGroupConfig,
    TrackCheck,
    Vip,
)
from hafm.errors import ConfigError

# The smallest valid instance; bad cases add or override keys after it (VI_1_BARE when they set the VIPs).
VI_1_BARE = """
[vrrp_instance.VI_1]
interface = "eth0"
virtual_router_id = 51
"""
VI_1 = VI_1_BARE + 'virtual_ipaddress = ["203.0.113.1/24"]\n'

WITNESS = """
[witness]
type = "etcd"
endpoints = ["http://198.51.100.60:2379"]
"""

TOMCAT = """
[check.tomcat]
type = "http"
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def errors_of(path: Path, **kwargs: Any) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path, **kwargs)
    assert str(info.value) == "\n".join(info.value.messages)
    return info.value.messages


# (id, file content, the exact single error; {f} is the file)
BAD_CONFIGS: list[tuple[str, str, str]] = [
    ("priority-range", VI_1 + "priority = 300\n", "{f}: vrrp_instance.VI_1.priority: 300 is out of range 1..255"),
    ("priority-zero", VI_1 + "priority = 0\n", "{f}: vrrp_instance.VI_1.priority: 0 is out of range 1..255"),
    (
        "priority-type",
        VI_1 + 'priority = "high"\n',
        "{f}: vrrp_instance.VI_1.priority: expected an integer, got string 'high'",
    ),
    (
        "priority-float",
        VI_1 + "priority = 100.5\n",
        "{f}: vrrp_instance.VI_1.priority: expected an integer, got float 100.5",
    ),
    (
        "unknown-key-suggestion",
        VI_1 + "priorty = 100\n",
        "{f}: vrrp_instance.VI_1.priorty: unknown key 'priorty'; did you mean 'priority'?",
    ),
    (
        "state-case",
        VI_1 + 'state = "master"\n',
        "{f}: vrrp_instance.VI_1.state: 'master' is not one of: MASTER, BACKUP",
    ),
    (
        "missing-interface",
        '[vrrp_instance.VI_1]\nvirtual_router_id = 51\nvirtual_ipaddress = ["203.0.113.1/24"]\n',
        "{f}: vrrp_instance.VI_1.interface: required key is missing",
    ),
    (
        "missing-vrid",
        '[vrrp_instance.VI_1]\ninterface = "eth0"\nvirtual_ipaddress = ["203.0.113.1/24"]\n',
        "{f}: vrrp_instance.VI_1.virtual_router_id: required key is missing",
    ),
    (
        "vrid-range",
        VI_1.replace("= 51", "= 256"),
        "{f}: vrrp_instance.VI_1.virtual_router_id: 256 is out of range 1..255",
    ),
    (
        "interface-name",
        VI_1.replace('"eth0"', '"averyverylongifname"'),
        "{f}: vrrp_instance.VI_1.interface: 'averyverylongifname' is not a valid interface name "
        "(1..15 characters, no '/', ':' or spaces)",
    ),
    (
        "advert-int-v2-fraction",
        VI_1 + "advert_int = 1.5\n",
        "{f}: vrrp_instance.VI_1.advert_int: 1.5 is not valid for VRRPv2: whole seconds 1..255",
    ),
    (
        "advert-int-v2-large",
        VI_1 + "advert_int = 256\n",
        "{f}: vrrp_instance.VI_1.advert_int: 256 is not valid for VRRPv2: whole seconds 1..255",
    ),
    (
        "advert-int-zero",
        VI_1 + "advert_int = 0\n",
        "{f}: vrrp_instance.VI_1.advert_int: 0 is out of range: must be greater than 0",
    ),
    (
        "advert-int-v3-large",
        VI_1 + "version = 3\nadvert_int = 41\n",
        "{f}: vrrp_instance.VI_1.advert_int: 41 is out of range 0.01..40.95 for VRRPv3",
    ),
    (
        "advert-int-v3-centiseconds",
        VI_1 + "version = 3\nadvert_int = 0.015\n",
        "{f}: vrrp_instance.VI_1.advert_int: 0.015 is not a multiple of 0.01 (VRRPv3 counts centiseconds)",
    ),
    (
        "advert-int-v3-from-global",
        "[global]\nvrrp_version = 3\n" + VI_1 + "advert_int = 50\n",
        "{f}: vrrp_instance.VI_1.advert_int: 50 is out of range 0.01..40.95 for VRRPv3",
    ),
    (
        "notify-timeout-zero",
        "[global]\nnotify_timeout = 0\n" + VI_1,
        "{f}: global.notify_timeout: 0 is out of range: must be greater than 0",
    ),
    ("version", VI_1 + "version = 4\n", "{f}: vrrp_instance.VI_1.version: 4 is not one of: 2, 3"),
    (
        "auth-ah",
        VI_1 + 'authentication = { auth_type = "AH", auth_pass = "1111" }\n',
        "{f}: vrrp_instance.VI_1.authentication.auth_type: "
        "'AH' is not supported (RFC 3768 removed AH; use PASS or none)",
    ),
    (
        "auth-pass-long",
        VI_1 + 'authentication = { auth_type = "PASS", auth_pass = "123456789" }\n',
        "{f}: vrrp_instance.VI_1.authentication.auth_pass: "
        "9 bytes is longer than the 8 bytes VRRPv2 carries (RFC 3768 §5.3.10)",
    ),
    (
        "auth-pass-missing",
        VI_1 + 'authentication = { auth_type = "PASS" }\n',
        "{f}: vrrp_instance.VI_1.authentication.auth_pass: required key is missing",
    ),
    (
        "auth-with-v3",
        VI_1 + 'version = 3\nauthentication = { auth_type = "PASS", auth_pass = "1111" }\n',
        "{f}: vrrp_instance.VI_1.authentication: not allowed with version 3 (RFC 5798 removed authentication)",
    ),
    (
        "vip-invalid",
        VI_1_BARE + 'virtual_ipaddress = ["203.0.113.1/24", "300.1.1.1/24"]\n',
        "{f}: vrrp_instance.VI_1.virtual_ipaddress[1]: '300.1.1.1/24' is not a valid IP address with optional /prefix",
    ),
    (
        "vip-table-unknown-key",
        VI_1_BARE + 'virtual_ipaddress = [{ address = "203.0.113.1/24", device = "eth1" }]\n',
        "{f}: vrrp_instance.VI_1.virtual_ipaddress[0].device: unknown key 'device'; did you mean 'dev'?",
    ),
    (
        "vip-label-prefix",
        VI_1_BARE + 'virtual_ipaddress = [{ address = "203.0.113.1/24", label = "vip0" }]\n',
        "{f}: vrrp_instance.VI_1.virtual_ipaddress[0].label: 'vip0' must be 'eth0' or start with 'eth0:'",
    ),
    (
        "ipv6-needs-v3",
        VI_1_BARE + 'virtual_ipaddress = ["2001:db8::1/64"]\n',
        "{f}: vrrp_instance.VI_1.virtual_ipaddress: IPv6 needs version = 3 (VRRPv2 is IPv4-only)",
    ),
    (
        "mixed-vip-families",
        VI_1_BARE + 'version = 3\nvirtual_ipaddress = ["203.0.113.1/24", "2001:db8::1/64"]\n',
        "{f}: vrrp_instance.VI_1.virtual_ipaddress: mixes IPv4 and IPv6 addresses; use one instance per family",
    ),
    (
        "unicast-peer-family",
        VI_1_BARE + 'virtual_ipaddress = ["203.0.113.1/24"]\nunicast_peer = ["203.0.113.2", "2001:db8::2"]\n',
        "{f}: vrrp_instance.VI_1.unicast_peer[1]: 2001:db8::2 is IPv6 but the instance is IPv4 "
        "(from virtual_ipaddress); use one instance per family",
    ),
    (
        "unicast-src-family",
        VI_1_BARE + 'version = 3\nvirtual_ipaddress = ["2001:db8::1/64"]\nunicast_src_ip = "203.0.113.4"\n',
        "{f}: vrrp_instance.VI_1.unicast_src_ip: 203.0.113.4 is IPv4 but the instance is IPv6 "
        "(from virtual_ipaddress); use one instance per family",
    ),
    (
        "unicast-src-invalid",
        VI_1 + 'unicast_src_ip = "203.0.113.4/24"\n',
        "{f}: vrrp_instance.VI_1.unicast_src_ip: '203.0.113.4/24' is not a valid IPv4 or IPv6 address",
    ),
    (
        "duplicate-vrid",
        VI_1 + '[vrrp_instance.VI_2]\ninterface = "eth0"\nvirtual_router_id = 51\nallow_no_vip = true\n',
        "{f}: vrrp_instance.VI_2.virtual_router_id: 51 is already used on eth0 (IPv4) by vrrp_instance.VI_1",
    ),
    (
        "track-check-undefined",
        TOMCAT + VI_1 + 'track_check = ["tomcatt"]\n',
        "{f}: vrrp_instance.VI_1.track_check[0]: check 'tomcatt' is not defined; did you mean 'tomcat'? "
        "(defined: tomcat)",
    ),
    (
        "track-check-weight",
        TOMCAT + VI_1 + 'track_check = [{ name = "tomcat", weight = 300 }]\n',
        "{f}: vrrp_instance.VI_1.track_check[0].weight: 300 is out of range -253..253",
    ),
    (
        "track-check-twice",
        TOMCAT + VI_1 + 'track_check = ["tomcat", { name = "tomcat", weight = -5 }]\n',
        "{f}: vrrp_instance.VI_1.track_check[1]: check 'tomcat' is tracked twice",
    ),
    (
        "resign-below-priority",
        VI_1 + "priority = 90\nresign_below = 90\n",
        "{f}: vrrp_instance.VI_1.resign_below: 90 must be below the priority 90",
    ),
    (
        "resign-below-range",
        VI_1 + "resign_below = 255\n",
        "{f}: vrrp_instance.VI_1.resign_below: 255 is out of range 1..254",
    ),
    (
        "resign-below-default-priority",
        VI_1 + "resign_below = 150\n",
        "{f}: vrrp_instance.VI_1.resign_below: 150 must be below the priority 100",
    ),
    (
        "nopreempt-type",
        VI_1 + 'nopreempt = "yes"\n',
        "{f}: vrrp_instance.VI_1.nopreempt: expected a boolean (true or false), got string 'yes'",
    ),
    (
        "preempt-delay-range",
        VI_1 + "preempt_delay = 2000\n",
        "{f}: vrrp_instance.VI_1.preempt_delay: 2000 is out of range 0..1000",
    ),
    (
        "notify-quoting",
        VI_1 + 'notify_master = "/bin/echo \'unbalanced"\n',
        '{f}: vrrp_instance.VI_1.notify_master: cannot split "/bin/echo \'unbalanced" into words: No closing quotation',
    ),
    (
        "track-interface-type",
        VI_1 + 'track_interface = "eth1"\n',
        "{f}: vrrp_instance.VI_1.track_interface: expected an array, got string 'eth1'",
    ),
    (
        "no-instances",
        '[global]\nrouter_id = "A"\n',
        "{f}: vrrp_instance: no [vrrp_instance.NAME] defined; at least one is required",
    ),
    (
        "instance-not-table",
        "[vrrp_instance]\nVI_1 = 5\n",
        "{f}: vrrp_instance.VI_1: expected a table, got integer 5",
    ),
    (
        "section-not-tables",
        'check = "tomcat"\n' + VI_1,
        "{f}: check: expected tables like [check.NAME], got string 'tomcat'",
    ),
    (
        "unknown-table",
        VI_1 + "[vrrp_instanc.VI_2]\n",
        "{f}: vrrp_instanc: unknown table 'vrrp_instanc'; did you mean 'vrrp_instance'?",
    ),
    (
        "sync-group-unknown-instance",
        VI_1 + '[vrrp_sync_group.G1]\ngroup = ["VI_2"]\n',
        "{f}: vrrp_sync_group.G1.group[0]: instance 'VI_2' is not defined; did you mean 'VI_1'? (defined: VI_1)",
    ),
    (
        "sync-group-twice",
        VI_1 + '[vrrp_sync_group.G1]\ngroup = ["VI_1"]\n[vrrp_sync_group.G2]\ngroup = ["VI_1"]\n',
        "{f}: vrrp_sync_group.G2.group[0]: instance 'VI_1' is already in vrrp_sync_group.G1; "
        "an instance can be in one group only",
    ),
    (
        "sync-group-missing-group",
        VI_1 + '[vrrp_sync_group.G1]\nnotify = "/bin/true"\n',
        "{f}: vrrp_sync_group.G1.group: required key is missing",
    ),
    (
        "sync-group-empty",
        VI_1 + "[vrrp_sync_group.G1]\ngroup = []\n",
        "{f}: vrrp_sync_group.G1.group: must name at least one instance",
    ),
    (
        "global-log-level",
        '[global]\nlog_level = "verbose"\n' + VI_1,
        "{f}: global.log_level: 'verbose' is not one of: debug, info, warning, error",
    ),
    (
        "global-unknown-key",
        '[global]\nrouterid = "A"\n' + VI_1,
        "{f}: global.routerid: unknown key 'routerid'; did you mean 'router_id'?",
    ),
    (
        "global-relative-socket",
        '[global]\ncontrol_socket = "hafm.sock"\n' + VI_1,
        "{f}: global.control_socket: 'hafm.sock' must be an absolute path",
    ),
    (
        "global-log-format",
        '[global]\nlog_format = "xml"\n' + VI_1,
        "{f}: global.log_format: 'xml' is not one of: text, json",
    ),
    (
        "global-metrics-listen-no-port",
        '[global]\nmetrics_listen = "127.0.0.1"\n' + VI_1,
        '{f}: global.metrics_listen: \'127.0.0.1\' is not HOST:PORT (e.g. "127.0.0.1:9650" or "[::1]:9650")',
    ),
    (
        "global-metrics-listen-hostname",
        '[global]\nmetrics_listen = "metrics.example:9650"\n' + VI_1,
        "{f}: global.metrics_listen: 'metrics.example' in 'metrics.example:9650' is not an IP address or localhost",
    ),
    (
        "global-metrics-listen-port",
        '[global]\nmetrics_listen = "127.0.0.1:0"\n' + VI_1,
        "{f}: global.metrics_listen: port '0' in '127.0.0.1:0' is not a number 1..65535",
    ),
    (
        "global-metrics-listen-v6-brackets",
        '[global]\nmetrics_listen = "::1:9650"\n' + VI_1,
        "{f}: global.metrics_listen: '::1:9650': write an IPv6 address in brackets, as [ADDRESS]:PORT",
    ),
    (
        "global-metrics-listen-type",
        "[global]\nmetrics_listen = 9650\n" + VI_1,
        "{f}: global.metrics_listen: expected a string, got integer 9650",
    ),
    (
        "global-include-type",
        '[global]\ninclude = "conf.d/*.toml"\n' + VI_1,
        "{f}: global.include: expected an array, got string 'conf.d/*.toml'",
    ),
    (
        "check-interval",
        VI_1 + '[check.c]\ntype = "script"\ninterval = 0\n',
        "{f}: check.c.interval: 0 is out of range 0.01..86400",
    ),
    (
        "check-timeout-type",
        VI_1 + '[check.c]\ntype = "script"\ntimeout = "1s"\n',
        "{f}: check.c.timeout: expected a number, got string '1s'",
    ),
    (
        "check-fall",
        VI_1 + '[check.c]\ntype = "script"\nfall = 0\n',
        "{f}: check.c.fall: 0 is out of range: must be at least 1",
    ),
    (
        "check-rise",
        VI_1 + '[check.c]\ntype = "script"\nrise = -1\n',
        "{f}: check.c.rise: -1 is out of range: must be at least 1",
    ),
    (
        "check-weight",
        VI_1 + '[check.c]\ntype = "script"\nweight = -254\n',
        "{f}: check.c.weight: -254 is out of range -253..253",
    ),
    (
        "check-init-state",
        VI_1 + '[check.c]\ntype = "script"\ninit_state = "UP"\n',
        "{f}: check.c.init_state: 'UP' is not one of: up, down",
    ),
    ("check-missing-type", VI_1 + "[check.c]\ninterval = 2\n", "{f}: check.c.type: required key is missing"),
    # --- what check-config accepted and a running instance then broke on (issue 10 §2) ---
    (
        "vips-more-than-255",
        VI_1_BARE + "virtual_ipaddress = [" + ", ".join(f'"198.51.100.{i}/32"' for i in range(256)) + "]\n",
        "{f}: vrrp_instance.VI_1.virtual_ipaddress: 256 addresses; one advertisement carries at most 255 "
        "(its address count is 8 bits)",
    ),
    (
        "vips-more-than-fit-the-mtu",
        VI_1_BARE + "version = 3\nvirtual_ipaddress = [" + ", ".join(f'"2001:db8::{i:x}"' for i in range(91)) + "]\n",
        "{f}: vrrp_instance.VI_1.virtual_ipaddress: 91 IPv6 addresses do not fit one VRRPv3 advertisement in a "
        "1500-byte MTU (at most 90); split them across instances",
    ),
    (
        "auth-pass-nul",
        VI_1 + 'authentication = { auth_type = "PASS", auth_pass = "a\\u0000b" }\n',
        "{f}: vrrp_instance.VI_1.authentication.auth_pass: 'a\\x00b' contains a NUL character",
    ),
    (
        "vip-multicast",
        VI_1_BARE + 'virtual_ipaddress = ["224.0.0.18/32"]\n',
        "{f}: vrrp_instance.VI_1.virtual_ipaddress[0]: 224.0.0.18/32 is a multicast address; "
        "a virtual address must be a unicast host address",
    ),
    (
        "vip-ipv6-multicast",
        VI_1_BARE + 'version = 3\nvirtual_ipaddress = ["ff02::12"]\n',
        "{f}: vrrp_instance.VI_1.virtual_ipaddress[0]: ff02::12 is a multicast address; "
        "a virtual address must be a unicast host address",
    ),
    (
        "vip-default-route",
        VI_1_BARE + 'virtual_ipaddress = ["0.0.0.0/0"]\n',
        "{f}: vrrp_instance.VI_1.virtual_ipaddress[0]: 0.0.0.0/0 is the unspecified address; "
        "a virtual address must be a unicast host address",
    ),
    (
        "vip-unspecified-v6",
        VI_1_BARE + 'version = 3\nvirtual_ipaddress = ["::/128"]\n',
        "{f}: vrrp_instance.VI_1.virtual_ipaddress[0]: ::/128 is the unspecified address; "
        "a virtual address must be a unicast host address",
    ),
    (
        "vip-loopback",
        VI_1_BARE + 'virtual_ipaddress = ["127.0.0.2/8"]\n',
        "{f}: vrrp_instance.VI_1.virtual_ipaddress[0]: 127.0.0.2/8 is a loopback address; "
        "a virtual address must be a unicast host address",
    ),
    (
        "vip-limited-broadcast",
        VI_1_BARE + 'virtual_ipaddress = ["255.255.255.255"]\n',
        "{f}: vrrp_instance.VI_1.virtual_ipaddress[0]: 255.255.255.255 is the broadcast address; "
        "a virtual address must be a unicast host address",
    ),
    (
        "vip-subnet-broadcast",
        VI_1_BARE + 'virtual_ipaddress = ["203.0.113.255/24"]\n',
        "{f}: vrrp_instance.VI_1.virtual_ipaddress[0]: 203.0.113.255/24: 203.0.113.255 is the broadcast address "
        "of 203.0.113.0/24",
    ),
    (
        "vip-prefix-zero",
        VI_1_BARE + 'virtual_ipaddress = ["203.0.113.1/0"]\n',
        "{f}: vrrp_instance.VI_1.virtual_ipaddress[0]: 203.0.113.1/0: a /0 prefix would claim every address",
    ),
    (
        "vip-in-two-instances",
        VI_1 + '[vrrp_instance.VI_2]\ninterface = "eth1"\nvirtual_router_id = 52\n'
        'virtual_ipaddress = ["198.51.100.1/24", "203.0.113.1/32"]\n',
        "{f}: vrrp_instance.VI_2.virtual_ipaddress[1]: 203.0.113.1 is already a VIP of vrrp_instance.VI_1",
    ),
    (
        "vip-twice-in-one-instance",
        VI_1 + 'virtual_ipaddress_excluded = ["203.0.113.1/32"]\n',
        "{f}: vrrp_instance.VI_1.virtual_ipaddress_excluded[0]: 203.0.113.1 is listed twice",
    ),
    (
        "no-vip",
        VI_1_BARE,
        "{f}: vrrp_instance.VI_1.virtual_ipaddress: no virtual address: an advert carries at least one "
        "(RFC 5798 §5.2.5); set allow_no_vip = true to run an instance without one",
    ),
    (
        "no-vip-empty-array",
        VI_1_BARE + "virtual_ipaddress = []\n",
        "{f}: vrrp_instance.VI_1.virtual_ipaddress: no virtual address: an advert carries at least one "
        "(RFC 5798 §5.2.5); set allow_no_vip = true to run an instance without one",
    ),
    (
        "unicast-peer-is-own-source",
        VI_1 + 'unicast_src_ip = "203.0.113.4"\nunicast_peer = ["203.0.113.5", "203.0.113.4"]\n',
        "{f}: vrrp_instance.VI_1.unicast_peer[1]: 203.0.113.4 is this node's own unicast_src_ip",
    ),
    (
        "unicast-peer-twice",
        VI_1 + 'unicast_peer = ["203.0.113.5", "203.0.113.5"]\n',
        "{f}: vrrp_instance.VI_1.unicast_peer[1]: 203.0.113.5 is listed twice",
    ),
    (
        "unicast-peer-multicast",
        VI_1 + 'unicast_peer = ["224.0.0.18"]\n',
        "{f}: vrrp_instance.VI_1.unicast_peer[0]: 224.0.0.18 is a multicast address; "
        "unicast adverts need a unicast address",
    ),
    (
        "unicast-peer-unspecified",
        VI_1 + 'unicast_peer = ["0.0.0.0"]\n',
        "{f}: vrrp_instance.VI_1.unicast_peer[0]: 0.0.0.0 is the unspecified address; "
        "unicast adverts need a unicast address",
    ),
    (
        "check-interval-inf",
        VI_1 + '[check.c]\ntype = "script"\ninterval = inf\n',
        "{f}: check.c.interval: expected a finite number, got float inf",
    ),
    (
        "check-timeout-nan",
        VI_1 + '[check.c]\ntype = "script"\ntimeout = nan\n',
        "{f}: check.c.timeout: expected a finite number, got float nan",
    ),
    (
        "check-interval-below-floor",
        VI_1 + '[check.c]\ntype = "script"\ninterval = 0.001\n',
        "{f}: check.c.interval: 0.001 is out of range 0.01..86400",
    ),
    (
        "advert-int-huge-integer",
        VI_1 + "advert_int = " + "9" * 400 + "\n",
        "{f}: vrrp_instance.VI_1.advert_int: a 400-digit integer is too large",
    ),
    (
        "garp-master-refresh-tiny",
        VI_1 + "garp_master_refresh = 1e-6\n",
        "{f}: vrrp_instance.VI_1.garp_master_refresh: 1e-06 is out of range: 0 (off) or 1..86400",
    ),
    (
        "instance-name-empty",
        VI_1 + '[vrrp_instance.""]\ninterface = "eth0"\n',
        '{f}: vrrp_instance."": the name must not be empty',
    ),
    (
        "instance-name-newline",
        VI_1 + '[vrrp_instance."VI_2\\nFAKE"]\ninterface = "eth0"\n',
        "{f}: vrrp_instance.\"VI_2\\nFAKE\": the name 'VI_2\\nFAKE' contains a control character",
    ),
    (
        "check-name-nul",
        VI_1 + '[check."c\\u0000"]\ntype = "script"\n',
        "{f}: check.\"c\\u0000\": the name 'c\\x00' contains a control character",
    ),
    (
        "key-with-newline",
        VI_1 + '"a\\nb" = 1\n',
        "{f}: vrrp_instance.VI_1.\"a\\nb\": unknown key 'a\\nb'; allowed: state, interface, virtual_router_id, "
        "priority, advert_int, version, nopreempt, preempt_delay, authentication, virtual_ipaddress, "
        "virtual_ipaddress_excluded, allow_no_vip, unicast_src_ip, unicast_peer, track_interface, track_check, "
        "notify_master, notify_backup, notify_fault, notify_stop, notify, garp_master_delay, garp_master_repeat, "
        "garp_master_refresh, v3_checksum_as_v2, resign_below, witness, mode",
    ),
    (
        "notify-relative-path",
        VI_1 + 'notify_master = "scripts/notify.sh master"\n',
        "{f}: vrrp_instance.VI_1.notify_master: scripts/notify.sh is a relative path; give the absolute path "
        "(it would depend on the daemon's working directory)",
    ),
    (
        "interface-control-character",
        VI_1.replace('"eth0"', '"eth\\t0"'),
        "{f}: vrrp_instance.VI_1.interface: 'eth\\t0' is not a valid interface name "
        "(1..15 characters, no '/', ':' or spaces)",
    ),
    (
        "toml-syntax",
        '[vrrp_instance.VI_1]\ninterface = "eth0\n',
        "{f}:2:18: TOML syntax error: Illegal character '\\n'",
    ),
    (
        "toml-syntax-end",
        '[vrrp_instance.VI_1]\ninterface = "eth0',
        "{f}:2:18: TOML syntax error: Unterminated string (at end of file)",
    ),
    (
        "witness-instance-without-table",
        VI_1 + "witness = true\n",
        "{f}: vrrp_instance.VI_1.witness: needs a [witness] table (the etcd cluster) in the main file",
    ),
    (
        "lease-mode-without-table",
        VI_1 + 'mode = "lease"\n',
        "{f}: vrrp_instance.VI_1.mode: needs a [witness] table (the etcd cluster) in the main file",
    ),
    ("mode-unknown", VI_1 + 'mode = "raft"\n', "{f}: vrrp_instance.VI_1.mode: 'raft' is not one of: vrrp, lease"),
    (
        "witness-owner",
        WITNESS + VI_1 + "witness = true\npriority = 255\n",
        "{f}: vrrp_instance.VI_1.witness: the address owner (priority 255) cannot wait for a witness",
    ),
    (
        "witness-endpoint-url",
        WITNESS.replace("http://198.51.100.60:2379", "198.51.100.60:2379") + VI_1,
        "{f}: witness.endpoints[0]: '198.51.100.60:2379' is not an endpoint like http://HOST:PORT or https://HOST:PORT",
    ),
    (
        "witness-no-endpoints",
        '[witness]\ntype = "etcd"\nendpoints = []\n' + VI_1,
        "{f}: witness.endpoints: must list at least one etcd endpoint",
    ),
    ("witness-type", WITNESS.replace('"etcd"', '"consul"') + VI_1, "{f}: witness.type: 'consul' is not one of: etcd"),
    ("witness-ttl-zero", WITNESS + "ttl = 0\n" + VI_1, "{f}: witness.ttl: 0 is out of range 1..3600"),
    ("witness-prefix", WITNESS + 'prefix = "hafm"\n' + VI_1, "{f}: witness.prefix: 'hafm' must start and end with '/'"),
    (
        "witness-cluster-slash",
        WITNESS + 'cluster = "a/b"\n' + VI_1,
        "{f}: witness.cluster: 'a/b' must be a non-empty word without '/' or spaces",
    ),
    ("witness-user-alone", WITNESS + 'user = "hafm"\n' + VI_1, "{f}: witness.user: needs password as well"),
    ("witness-cert-alone", WITNESS + 'cert = "/etc/passwd"\n' + VI_1, "{f}: witness.cert: needs key as well"),
    ("witness-ca-relative", WITNESS + 'ca = "ca.pem"\n' + VI_1, "{f}: witness.ca: 'ca.pem' must be an absolute path"),
    ("witness-unknown-key", WITNESS + "tll = 3\n" + VI_1, "{f}: witness.tll: unknown key 'tll'; did you mean 'ttl'?"),
]


def test_there_are_at_least_thirty_bad_configs() -> None:
    assert len({case[0] for case in BAD_CONFIGS}) == len(BAD_CONFIGS) >= 30


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in BAD_CONFIGS], ids=[c[0] for c in BAD_CONFIGS])
def test_bad_config_gives_exactly_one_line(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path / "hafm.toml", text)
    assert errors_of(path) == [expected.format(f=path)]


def test_missing_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    assert errors_of(path) == [f"{path}: cannot read configuration file: No such file or directory"]


def test_invalid_utf8_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "hafm.toml"
    path.write_bytes(b'[global]\nrouter_id = "\xff"\n')
    assert errors_of(path) == [f"{path}: not valid UTF-8 at byte 22"]


def test_unknown_key_without_close_match_lists_allowed_keys(tmp_path: Path) -> None:
    path = write(tmp_path / "hafm.toml", "[global]\nzzz = 1\n" + VI_1)
    (message,) = errors_of(path)
    assert message.startswith(f"{path}: global.zzz: unknown key 'zzz'; allowed: router_id, vrrp_version, include")


def test_every_error_in_every_file_is_reported(tmp_path: Path) -> None:
    main = write(
        tmp_path / "hafm.toml",
        """
[global]
log_level = "loud"

[vrrp_instance.VI_1]
interface = "eth0"
virtual_router_id = 51
priority = 300
advert_int = 0.5
state = "PRIMARY"
track_check = ["nope"]
virtual_ipaddress = ["203.0.113.1/24", "bogus"]
""",
    )
    dropin_a = write(tmp_path / "hafm.d/a.toml", '[check.x]\ntype = "http"\nfall = 0\nrise = 0\n')
    dropin_b = write(tmp_path / "hafm.d/b.toml", "[check.y\n")
    messages = errors_of(main)
    assert messages == [
        f"{main}: global.log_level: 'loud' is not one of: debug, info, warning, error",
        f"{dropin_b}:1:9: TOML syntax error: Expected ']' at the end of a table declaration",
        f"{dropin_a}: check.x.fall: 0 is out of range: must be at least 1",
        f"{dropin_a}: check.x.rise: 0 is out of range: must be at least 1",
        f"{main}: vrrp_instance.VI_1.priority: 300 is out of range 1..255",
        f"{main}: vrrp_instance.VI_1.state: 'PRIMARY' is not one of: MASTER, BACKUP",
        f"{main}: vrrp_instance.VI_1.virtual_ipaddress[1]: 'bogus' is not a valid IP address with optional /prefix",
        f"{main}: vrrp_instance.VI_1.advert_int: 0.5 is not valid for VRRPv2: whole seconds 1..255",
        f"{main}: vrrp_instance.VI_1.track_check[0]: check 'nope' is not defined (defined: x)",
    ]


# --- good configurations ------------------------------------------------------------------------

FULL = """
[global]
router_id = "NodeA"
vrrp_version = 3
include = ["drop/*.toml"]
plugin_dirs = ["plugins.d"]
control_socket = "/run/test/hafm.sock"
log_level = "debug"
notify_fifo = "/run/test/notify.fifo"
notify_wait = false
notify_timeout = 2.5

[vrrp_instance.VI_1]
state = "MASTER"
interface = "eth0"
virtual_router_id = 51
priority = 100
advert_int = 1
version = 2
nopreempt = true
preempt_delay = 30
authentication = { auth_type = "PASS", auth_pass = "1111" }
virtual_ipaddress = [
    "203.0.113.100/24",
    { address = "198.51.100.100/24", dev = "eth1", label = "eth1:vip" },
    "203.0.113.7",
]
virtual_ipaddress_excluded = ["2001:db8::7/64", { address = "198.51.100.9", dev = "eth2" }]
unicast_src_ip = "203.0.113.4"
unicast_peer = ["203.0.113.5", "203.0.113.6"]
track_interface = ["eth1", "eth2"]
track_check = ["tomcat", { name = "disk", weight = -30 }]
notify_master = "/etc/hafm/notify.sh master"
notify_backup = "/etc/hafm/notify.sh backup"
notify_fault = "/etc/hafm/notify.sh fault"
notify_stop = "/etc/hafm/notify.sh stop"
notify = "/etc/hafm/notify.sh"
garp_master_delay = 10
garp_master_repeat = 3
garp_master_refresh = 60
v3_checksum_as_v2 = true
resign_below = 90

[vrrp_instance.VI_2]
interface = "eth0"
virtual_router_id = 52
advert_int = 0.25
virtual_ipaddress = ["2001:db8::100/64"]

[vrrp_sync_group.G1]
group = ["VI_1", "VI_2"]
notify_master = "/etc/hafm/group.sh master"
notify_backup = "/etc/hafm/group.sh backup"
notify_fault = "/etc/hafm/group.sh fault"
notify_stop = "/etc/hafm/group.sh stop"
notify = "/etc/hafm/group.sh"

[check.tomcat]
type = "http"
url = "http://127.0.0.1:8080/test/test.html"
expect_status = 200
interval = 2
timeout = 1.5
fall = 3
rise = 2
weight = -20
init_state = "up"

[check.disk]
type = "script"
script = "/usr/local/bin/disk-ok"
"""


@pytest.fixture
def full(tmp_path: Path) -> Config:
    return load_config(write(tmp_path / "hafm.toml", FULL))


def test_global_keys(full: Config, tmp_path: Path) -> None:
    assert full.path == tmp_path / "hafm.toml"
    assert full.global_ == GlobalConfig(
        router_id="NodeA",
        vrrp_version=3,
        include=(str(tmp_path / "drop/*.toml"),),
        plugin_dirs=(str(tmp_path / "plugins.d"),),
        control_socket="/run/test/hafm.sock",
        log_level="debug",
        notify_fifo="/run/test/notify.fifo",
        notify_wait=False,
        notify_timeout=2.5,
    )


def test_every_instance_key(full: Config) -> None:
    assert full.instances["VI_1"] == InstanceConfig(
        name="VI_1",
        state="MASTER",
        interface="eth0",
        virtual_router_id=51,
        priority=100,
        advert_int=1.0,
        version=2,
        family=4,
        nopreempt=True,
        preempt_delay=30.0,
        authentication=Authentication(auth_type="PASS", auth_pass="1111"),
        virtual_ipaddress=(
            Vip(address=ipaddress.ip_interface("203.0.113.100/24")),
            Vip(address=ipaddress.ip_interface("198.51.100.100/24"), dev="eth1", label="eth1:vip"),
            Vip(address=ipaddress.ip_interface("203.0.113.7/32")),
        ),
        virtual_ipaddress_excluded=(
            Vip(address=ipaddress.ip_interface("2001:db8::7/64")),
            Vip(address=ipaddress.ip_interface("198.51.100.9/32"), dev="eth2"),
        ),
        unicast_src_ip=ipaddress.ip_address("203.0.113.4"),
        unicast_peer=(ipaddress.ip_address("203.0.113.5"), ipaddress.ip_address("203.0.113.6")),
        track_interface=("eth1", "eth2"),
        track_check=(TrackCheck(name="tomcat"), TrackCheck(name="disk", weight=-30)),
        notify=Notify(
            master="/etc/hafm/notify.sh master",
            backup="/etc/hafm/notify.sh backup",
            fault="/etc/hafm/notify.sh fault",
            stop="/etc/hafm/notify.sh stop",
            any="/etc/hafm/notify.sh",
        ),
        garp_master_delay=10.0,
        garp_master_repeat=3,
        garp_master_refresh=60.0,
        v3_checksum_as_v2=True,
        resign_below=90,
    )


def test_instance_defaults_are_keepalived_defaults_and_version_comes_from_global(full: Config) -> None:
    # VI_2 sets only the required keys, a v3 interval and an IPv6 VIP; version 3 is inherited from [global].
    assert full.instances["VI_2"] == InstanceConfig(
        name="VI_2",
        interface="eth0",
        virtual_router_id=52,
        advert_int=0.25,
        version=3,
        family=6,
        virtual_ipaddress=(Vip(address=ipaddress.ip_interface("2001:db8::100/64")),),
    )
    vi2 = full.instances["VI_2"]
    assert (vi2.state, vi2.priority, vi2.garp_master_delay, vi2.garp_master_repeat) == ("BACKUP", 100, 5.0, 5)
    assert vi2.garp_master_refresh == 0.0


def test_sync_group_keys(full: Config) -> None:
    assert full.sync_groups == {
        "G1": SyncGroupConfig(
            name="G1",
            group=("VI_1", "VI_2"),
            notify=Notify(
                master="/etc/hafm/group.sh master",
                backup="/etc/hafm/group.sh backup",
                fault="/etc/hafm/group.sh fault",
                stop="/etc/hafm/group.sh stop",
                any="/etc/hafm/group.sh",
            ),
        )
    }


def test_check_keys_and_options(full: Config) -> None:
    assert full.checks["tomcat"] == CheckConfig(
        name="tomcat",
        type="http",
        interval=2.0,
        timeout=1.5,
        fall=3,
        rise=2,
        weight=-20,
        init_state="up",
        options={"url": "http://127.0.0.1:8080/test/test.html", "expect_status": 200},
    )
    # keepalived's defaults: interval 1, fall 1, rise 1, weight 0.
    assert full.checks["disk"] == CheckConfig(name="disk", type="script", options={"script": "/usr/local/bin/disk-ok"})
    disk = full.checks["disk"]
    assert (disk.interval, disk.fall, disk.rise, disk.weight, disk.init_state) == (1.0, 1, 1, 0, "down")


def test_minimal_config_uses_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path / "hafm.toml", VI_1))
    assert config.global_ == GlobalConfig(
        include=(str(tmp_path / "hafm.d/*.toml"),), plugin_dirs=(str(tmp_path / "hafm.d"),)
    )
    vip = Vip(address=ipaddress.ip_interface("203.0.113.1/24"))
    assert config.instances == {
        "VI_1": InstanceConfig(name="VI_1", interface="eth0", virtual_router_id=51, virtual_ipaddress=(vip,))
    }
    assert config.checks == {} and config.sync_groups == {}


def test_same_vrid_on_other_interface_or_family_is_fine(tmp_path: Path) -> None:
    text = (
        VI_1
        + '[vrrp_instance.VI_2]\ninterface = "eth1"\nvirtual_router_id = 51\nallow_no_vip = true\n'
        + '[vrrp_instance.VI_3]\ninterface = "eth0"\nvirtual_router_id = 51\nversion = 3\n'
        + 'virtual_ipaddress = ["2001:db8::1/64"]\n'
    )
    config = load_config(write(tmp_path / "hafm.toml", text))
    assert [i.family for i in config.instances.values()] == [4, 4, 6]


def test_unicast_only_ipv6_instance_takes_family_from_peers(tmp_path: Path) -> None:
    text = VI_1_BARE + 'version = 3\nallow_no_vip = true\nunicast_peer = ["2001:db8::2"]\n'
    assert load_config(write(tmp_path / "hafm.toml", text)).instances["VI_1"].family == 6


# --- drop-ins -------------------------------------------------------------------------------------


def test_dropins_are_merged_in_lexical_order(tmp_path: Path) -> None:
    main = write(tmp_path / "hafm.toml", VI_1 + 'track_check = ["a", "b"]\n')
    write(tmp_path / "hafm.d/20-b.toml", '[check.b]\ntype = "http"\n')
    write(
        tmp_path / "hafm.d/10-a.toml",
        '[check.a]\ntype = "script"\n[vrrp_instance.VI_9]\ninterface = "eth9"\nvirtual_router_id = 9\n'
        'virtual_ipaddress = ["198.51.100.9/24"]\n',
    )
    write(tmp_path / "hafm.d/notes.txt", "not toml at all [")
    config = load_config(main)
    assert list(config.checks) == ["a", "b"]
    assert list(config.instances) == ["VI_1", "VI_9"]
    assert config.provenance["check.a.type"] == tmp_path / "hafm.d/10-a.toml"
    assert config.provenance["check.b.type"] == tmp_path / "hafm.d/20-b.toml"
    assert config.provenance["vrrp_instance.VI_9.interface"] == tmp_path / "hafm.d/10-a.toml"
    assert config.provenance["vrrp_instance.VI_1.interface"] == main


def test_default_dropin_directory_is_the_main_files_stem_dot_d() -> None:
    assert default_dropin_dir(Path("/etc/hafm.toml")) == Path("/etc/hafm.d")
    assert default_dropin_dir(Path("/srv/lab/node-a.toml")) == Path("/srv/lab/node-a.d")


def test_conf_d_beside_the_main_file_is_not_read_by_default(tmp_path: Path) -> None:
    """/etc/conf.d belongs to OpenRC: with /etc/hafm.toml, hafm must not read it."""
    main = write(tmp_path / "hafm.toml", VI_1)
    write(tmp_path / "conf.d/net.toml", "[check.openrc]\n")
    config = load_config(main)
    assert config.checks == {}
    assert config.global_.include == (str(tmp_path / "hafm.d/*.toml"),)
    assert config.global_.plugin_dirs == (str(tmp_path / "hafm.d"),)


def test_explicit_include_and_plugin_dirs_override_the_default(tmp_path: Path) -> None:
    main = write(tmp_path / "hafm.toml", '[global]\ninclude = ["conf.d/*.toml"]\nplugin_dirs = []\n' + VI_1)
    write(tmp_path / "conf.d/c.toml", '[check.c]\ntype = "http"\n')
    write(tmp_path / "hafm.d/d.toml", '[check.d]\ntype = "http"\n')
    config = load_config(main)
    assert list(config.checks) == ["c"]
    assert config.global_.plugin_dirs == ()
    assert f"# drop-ins: {tmp_path}/conf.d/*.toml\n" in format_effective(config)


def test_missing_include_directory_is_fine(tmp_path: Path) -> None:
    main = write(tmp_path / "hafm.toml", '[global]\ninclude = ["nowhere/*.toml", "none.toml"]\n' + VI_1)
    assert list(load_config(main).instances) == ["VI_1"]


def test_include_patterns_are_relative_to_the_main_file(tmp_path: Path) -> None:
    main = write(tmp_path / "etc/hafm.toml", '[global]\ninclude = ["../shared/*.toml"]\n' + VI_1)
    write(tmp_path / "shared/c.toml", '[check.c]\ntype = "http"\n')
    config = load_config(main)
    assert config.provenance["check.c.type"] == tmp_path / "shared/c.toml"
    assert config.global_.include == (str(tmp_path / "shared/*.toml"),)


def test_same_table_in_main_and_dropin_names_both_files(tmp_path: Path) -> None:
    main = write(tmp_path / "hafm.toml", VI_1)
    dropin = write(tmp_path / "hafm.d/vi.toml", "[vrrp_instance.VI_1]\npriority = 50\n")
    assert errors_of(main) == [
        f"{dropin}: vrrp_instance.VI_1: already defined in {main}; a table may be defined in one file only"
    ]


def test_same_check_in_two_dropins_names_both_files(tmp_path: Path) -> None:
    main = write(tmp_path / "hafm.toml", VI_1)
    first = write(tmp_path / "hafm.d/a.toml", TOMCAT)
    second = write(tmp_path / "hafm.d/b.toml", TOMCAT + 'url = "http://x/"\n')
    assert errors_of(main) == [
        f"{second}: check.tomcat: already defined in {first}; a table may be defined in one file only"
    ]


def test_global_only_in_main_file(tmp_path: Path) -> None:
    main = write(tmp_path / "hafm.toml", VI_1)
    dropin = write(tmp_path / "hafm.d/g.toml", '[global]\nlog_level = "debug"\n')
    assert errors_of(main) == [f"{dropin}: global: [global] is only allowed in the main file {main}"]


def test_dropin_errors_name_the_dropin(tmp_path: Path) -> None:
    main = write(tmp_path / "hafm.toml", VI_1 + 'track_check = ["web"]\n')
    dropin = write(tmp_path / "hafm.d/web.toml", '[check.web]\ntype = "http"\nrise = 0\n')
    assert errors_of(main) == [f"{dropin}: check.web.rise: 0 is out of range: must be at least 1"]


def test_main_file_is_not_included_twice(tmp_path: Path) -> None:
    main = write(tmp_path / "hafm.toml", '[global]\ninclude = ["*.toml"]\n' + VI_1)
    assert list(load_config(main).instances) == ["VI_1"]


def test_relative_main_path_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "hafm.toml", VI_1)
    monkeypatch.chdir(tmp_path)
    config = load_config(Path("hafm.toml"))
    assert config.path == tmp_path / "hafm.toml"
    assert config.provenance["vrrp_instance.VI_1.interface"] == tmp_path / "hafm.toml"


# --- provenance and the effective configuration -----------------------------------------------------


def test_provenance_and_format_effective(tmp_path: Path) -> None:
    main = write(tmp_path / "hafm.toml", '[global]\nrouter_id = "A"\nvrrp_version = 3\n' + VI_1 + "priority = 100\n")
    dropin = write(
        tmp_path / "hafm.d/tomcat.toml",
        TOMCAT + 'url = "http://127.0.0.1:8080/"\nweight = -20\n'
        '[vrrp_instance.VI_2]\ninterface = "eth1"\nvirtual_router_id = 2\n'
        'virtual_ipaddress = [{ address = "198.51.100.1/24", label = "eth1:a" }]\n',
    )
    config = load_config(main)
    assert config.provenance["vrrp_instance.VI_1.priority"] == main
    assert config.provenance["check.tomcat.url"] == dropin
    # An inherited version points at the file that set global.vrrp_version.
    assert config.provenance["vrrp_instance.VI_2.version"] == main
    assert "vrrp_instance.VI_1.garp_master_delay" not in config.provenance
    lines = format_effective(config).splitlines()
    for line in [
        "[global]",
        f'router_id = "A"  # {main}',
        f'include = ["{tmp_path}/hafm.d/*.toml"]  # default',
        f"# drop-ins: {tmp_path}/hafm.d/*.toml (default: hafm.d/ beside the main file)",
        f"# plugins (*.py) from: {tmp_path}/hafm.d (default: hafm.d/ beside the main file)",
        'log_level = "info"  # default',
        "[vrrp_instance.VI_1]",
        f"priority = 100  # {main}",
        f"version = 3  # {main}",
        "family = 4  # derived from the addresses",
        "garp_master_delay = 5  # default",
        "[check.tomcat]",
        f'url = "http://127.0.0.1:8080/"  # {dropin}',
        f"weight = -20  # {dropin}",
        "interval = 1  # default",
        f'virtual_ipaddress = [{{ address = "198.51.100.1/24", label = "eth1:a" }}]  # {dropin}',
    ]:
        assert line in lines
    assert not any(line.startswith("notify_fifo") for line in lines)  # unset optional values are left out
    assert lines.index("[check.tomcat]") < lines.index("[vrrp_instance.VI_1]")


def test_format_effective_output_is_valid_toml_that_loads_to_the_same_config(full: Config, tmp_path: Path) -> None:
    text = format_effective(full)
    lines = [
        line
        for line in text.splitlines()
        if not line.startswith(("family", "include", "plugin_dirs"))  # derived / already resolved
    ]
    again = load_config(write(tmp_path / "again/hafm.toml", "\n".join(lines)))
    assert again.instances == full.instances
    assert again.checks == full.checks
    assert again.sync_groups == full.sync_groups


# --- the check-validator hook -------------------------------------------------------------------------


def http_validator(options: Mapping[str, Any]) -> list[tuple[str, str]]:
    problems = []
    if "url" not in options:
        problems.append(("url", "required key is missing"))
    for key in options:
        if key not in ("url", "expect_status"):
            problems.append((key, f"unknown key {key!r}"))
    return problems


def test_check_validator_gets_only_type_specific_keys(tmp_path: Path) -> None:
    seen: list[dict[str, Any]] = []

    def validator(options: Mapping[str, Any]) -> list[tuple[str, str]]:
        seen.append(dict(options))
        return []

    main = write(tmp_path / "hafm.toml", VI_1 + TOMCAT + 'url = "http://x/"\ninterval = 3\nweight = -2\n')
    config = load_config(main, check_validators={"http": validator})
    assert seen == [{"url": "http://x/"}]
    assert config.checks["tomcat"].interval == 3.0


def test_check_validator_messages_are_formatted_with_file_and_key(tmp_path: Path) -> None:
    main = write(tmp_path / "hafm.toml", VI_1)
    dropin = write(tmp_path / "hafm.d/t.toml", TOMCAT + "expect_status = 200\nexpect_bdy = 'x'\n")
    assert errors_of(main, check_validators={"http": http_validator}) == [
        f"{dropin}: check.tomcat.url: required key is missing",
        f"{dropin}: check.tomcat.expect_bdy: unknown key 'expect_bdy'",
    ]


def test_unknown_check_type_lists_known_types(tmp_path: Path) -> None:
    main = write(tmp_path / "hafm.toml", VI_1 + '[check.c]\ntype = "htp"\n')
    validators = {"http": http_validator, "script": http_validator}
    assert errors_of(main, check_validators=validators) == [
        f"{main}: check.c.type: unknown check type 'htp'; did you mean 'http'? (known: http, script)"
    ]


def test_crashing_validator_is_one_line(tmp_path: Path) -> None:
    def broken(options: Mapping[str, Any]) -> list[tuple[str, str]]:
        raise KeyError("url")

    main = write(tmp_path / "hafm.toml", VI_1 + TOMCAT)
    assert errors_of(main, check_validators={"http": broken}) == [
        f"{main}: check.tomcat: the 'http' check validator failed: KeyError: 'url'"
    ]


def test_validator_returning_garbage_is_one_line(tmp_path: Path) -> None:
    def garbage(options: Mapping[str, Any]) -> list[tuple[str, str]]:
        return ["url"]  # type: ignore[list-item]

    main = write(tmp_path / "hafm.toml", VI_1 + TOMCAT)
    assert errors_of(main, check_validators={"http": garbage}) == [
        f"{main}: check.tomcat: the 'http' check validator failed: ValueError: too many values to unpack (expected 2)"
    ]


def test_without_validators_any_check_type_is_accepted(tmp_path: Path) -> None:
    main = write(tmp_path / "hafm.toml", VI_1 + '[check.c]\ntype = "made-up"\nanything = [1, 2]\n')
    assert load_config(main).checks["c"].options == {"anything": [1, 2]}


# --- documentation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("section", "keys"),
    [
        ("## `[global]`", config_model.GLOBAL_KEYS),
        ("## `[vrrp_instance.NAME]`", config_model.INSTANCE_KEYS),
        ("## `[vrrp_sync_group.NAME]`", config_model.SYNC_GROUP_KEYS),
        ("## `[check.NAME]`", config_model.CHECK_COMMON_KEYS),
        ("## `[witness]`", config_model.WITNESS_KEYS),
    ],
)
def test_every_key_is_documented(section: str, keys: Mapping[str, Any]) -> None:
    docs = (Path(__file__).resolve().parent.parent / "docs" / "configuration.md").read_text()
    body = docs.split(section, 1)[1].split("\n## ", 1)[0]
    rows = [line for line in body.splitlines() if line.startswith("| `")]
    documented = {key for row in rows for key in re.findall(r"`([a-z_0-9]+)`", row.split("|")[1])}
    assert set(keys) <= documented


def test_witness_table_and_instance_keys(tmp_path: Path) -> None:
    text = WITNESS + 'ttl = 2\ncluster = "lab"\nuser = "hafm"\npassword = "s3cret"\n' + VI_1 + 'mode = "lease"\n'
    config = load_config(write(tmp_path / "hafm.toml", text))
    assert config.witness == config_model.WitnessConfig(
        type="etcd", endpoints=("http://198.51.100.60:2379",), ttl=2, cluster="lab", user="hafm", password="s3cret"
    )
    instance = config.instances["VI_1"]
    assert (instance.witness, instance.mode, instance.uses_witness) == (False, "lease", True)
    assert "[witness]" in format_effective(config)


def test_witness_table_only_in_the_main_file(tmp_path: Path) -> None:
    main = write(tmp_path / "hafm.toml", VI_1)
    dropin = write(tmp_path / "hafm.d" / "w.toml", WITNESS)
    assert errors_of(main) == [f"{dropin}: witness: [witness] is only allowed in the main file {main}"]
