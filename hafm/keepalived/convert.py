"""``hafm convert``: translate keepalived.conf into hafm's TOML configuration.

hafm keeps keepalived's key names, so most keywords map one to one.  The
rule of this module is that nothing is dropped silently: every keyword that
has no hafm equivalent becomes a warning ``FILE:LINE: keyword: not converted
(why)``.  A *note* is different: it explains a keyword whose behaviour hafm
already has (``enable_script_security``) and does not change the exit code.

The keyword tables below (``*_HANDLED`` and ``*_UNSUPPORTED``) are also the
source of docs/migrating-from-keepalived.md; tests/test_convert.py fails when
the document misses one.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
import shutil
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TextIO

import tomli_w

from hafm.config.loader import CheckValidator, load_config

# Key order and notify keys of the TOML hafm reads: the converter writes what the loader expects.
from hafm.config.model import INSTANCE_KEYS, NOTIFY_KEYS
from hafm.errors import ConfigError, HafmError
from hafm.keepalived.parser import Node, ParseError, UnreadableFile, parse_text, read_config_file
from hafm.processes import ENV_PATH

__all__ = ["DROPIN_HINT", "ConversionResult", "check_output", "convert_text", "run"]

Table = dict[str, Any]

# Where hafm looks for drop-ins, relative to the main file (hafm.config.model: include, plugin_dirs).
DROPIN_HINT = "Drop-ins (*.toml, *.py plugins) go in STEM.d/ beside this file (/etc/hafm.d/ for /etc/hafm.toml)."
# What `user` means for a hafm script check (hafm drops to the user's uid, primary gid and groups).
USER_MEANING = (
    "the check runs as that user with its primary group and supplementary groups, like keepalived's script_user"
)
# keepalived's source, quoted where the converter follows a rule keepalived applies silently or in its log.
KEEPALIVED_VRRP_C = "keepalived/vrrp/vrrp.c (vrrp_complete_instance)"

_LVS = "LVS/IPVS load balancing is not part of hafm"
_NO_VMAC = "hafm has no VMAC/ipvlan support; VIPs are added to the real interface"
_NO_USER = "hafm runs notify commands as its own user"
_PROCESS = "keepalived process option with no hafm equivalent"
_EMAIL = "hafm sends no e-mail; use a notify command"
_SNMP = "hafm has no SNMP/D-Bus agent; use the control socket or metrics"
_TUNING = "kernel/socket tuning that hafm does not expose"
_FIREWALL = "hafm does not manage firewall rules"
_GROUP_TRACK = "sync groups cannot track; add it to each member instance"
_TRACK_PROCESS = "hafm has no process tracker; use a script check such as `pidof NAME`"
_BFD = "hafm has no BFD support"
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")
_DEV_TCP = re.compile(r"</dev/tcp/(?P<host>[^/\s]+)/(?P<port>[0-9]{1,5})")
_USER_GROUP = "hafm runs the check with the user's primary group and supplementary groups"

TOP_LEVEL_UNSUPPORTED: dict[str, str] = {
    "virtual_server": _LVS,
    "virtual_server_group": _LVS,
    "SSL": _LVS,
    "static_ipaddress": "hafm manages only virtual addresses; configure static ones with the OS",
    "static_routes": "hafm does not manage routes; configure static ones with the OS",
    "static_rules": "hafm does not manage routing rules; configure static ones with the OS",
    "track_group": "static track groups are not supported",
    "vrrp_track_process": _TRACK_PROCESS,
    "garp_group": "per-interface gratuitous ARP pacing is not supported",
    "linkbeat_interfaces": "hafm always uses netlink for link state",
    "linkbeat_use_polling": "hafm always uses netlink for link state",
    "interface_up_down_delays": "interface debounce delays are not supported",
    "bfd_instance": _BFD,
    "net_namespace": "run hafm inside the namespace instead (ip netns exec NAME hafm ...)",
    "net_namespace_ipvs": _LVS,
    "namespace_with_ipsets": _FIREWALL,
    "instance": _PROCESS,
    "use_pid_dir": _PROCESS,
    "child_wait_time": _PROCESS,
}

# global_defs keywords that are VRRP-related get a specific reason; any other
# global_defs keyword gets _GLOBAL_OTHER.
GLOBAL_HANDLED = (
    "router_id",
    "vrrp_version",
    "script_user",
    "enable_script_security",
    "notify_fifo",
    "vrrp_notify_fifo",
    "vrrp_garp_master_delay",
    "vrrp_garp_master_repeat",
    "vrrp_garp_master_refresh",
    "v3_checksum_as_v2",
    "vrrp_check_unicast_src",
)
_GLOBAL_OTHER = "not a VRRP setting hafm has"
GLOBAL_UNSUPPORTED: dict[str, str] = {
    "vrrp_mcast_group4": "hafm always uses the RFC multicast group 224.0.0.18",
    "vrrp_mcast_group6": "hafm always uses the RFC multicast group ff02::12",
    "vrrp_garp_master_refresh_repeat": "hafm sends one gratuitous ARP/NA per refresh",
    "vrrp_garp_lower_prio_delay": "not supported",
    "vrrp_garp_lower_prio_repeat": "not supported",
    "vrrp_garp_interval": "gratuitous ARP pacing is not supported",
    "vrrp_gna_interval": "unsolicited NA pacing is not supported",
    "vrrp_min_garp": "set garp_master_repeat = 1 and garp_master_delay = 0 instead",
    "vrrp_garp_extra_if": "hafm sends gratuitous ARP only on the interfaces of its VIPs",
    "vrrp_down_timer_adverts": "hafm uses the RFC master down interval (3 adverts + skew)",
    "vrrp_lower_prio_no_advert": "not supported",
    "vrrp_higher_prio_send_advert": "not supported",
    "vrrp_skip_check_adv_addr": "hafm always checks the advertised addresses",
    "vrrp_strict": "hafm has no strict mode switch",
    "vrrp_iptables": _FIREWALL,
    "vrrp_ipsets": _FIREWALL,
    "nftables": _FIREWALL,
    "nftables_priority": _FIREWALL,
    "nftables_ifindex": _FIREWALL,
    "nftables_counters": _FIREWALL,
    "vrrp_priority": _PROCESS,
    "vrrp_no_swap": _PROCESS,
    "vrrp_rt_priority": _PROCESS,
    "vrrp_cpu_affinity": _PROCESS,
    "vrrp_rlimit_rttime": _PROCESS,
    "vrrp_notify_priority_changes": "hafm does not send priority changes to the notify FIFO",
    "vrrp_notify_fifo_script": "start the FIFO reader yourself",
    "notify_fifo_script": "start the FIFO reader yourself",
    "fifo_write_vrrp_states_on_reload": "not supported",
    "vrrp_netlink_cmd_rcv_bufs": _TUNING,
    "vrrp_netlink_monitor_rcv_bufs": _TUNING,
    "vrrp_rx_bufs_policy": _TUNING,
    "vrrp_rx_bufs_multiplier": _TUNING,
    "vrrp_startup_delay": "delay starting hafm with the service manager instead",
    "log_unknown_vrids": "hafm counts unknown VRIDs as a drop reason",
    "vrrp_owner_ignore_adverts": "not supported",
    "vmac_prefix": _NO_VMAC,
    "vmac_addr_prefix": _NO_VMAC,
    "enable_snmp_vrrp": _SNMP,
    "enable_snmp_rfc": _SNMP,
    "enable_snmp_rfcv2": _SNMP,
    "enable_snmp_rfcv3": _SNMP,
    "enable_traps": _SNMP,
    "enable_dbus": _SNMP,
    "notification_email": _EMAIL,
    "notification_email_from": _EMAIL,
    "smtp_server": _EMAIL,
    "smtp_connect_timeout": _EMAIL,
    "smtp_alert": _EMAIL,
    "smtp_alert_vrrp": _EMAIL,
    "dynamic_interfaces": "hafm requires the configured interfaces to exist",
    "default_interface": "static addresses are not managed by hafm",
    "max_auto_priority": _PROCESS,
}

INSTANCE_HANDLED = (
    "state",
    "interface",
    "virtual_router_id",
    "priority",
    "advert_int",
    "version",
    "nopreempt",
    "preempt",
    "preempt_delay",
    "authentication",
    "virtual_ipaddress",
    "virtual_ipaddress_excluded",
    "unicast_src_ip",
    "mcast_src_ip",
    "unicast_peer",
    "track_interface",
    "track_script",
    "track_file",
    *NOTIFY_KEYS,
    "garp_master_delay",
    "garp_master_repeat",
    "garp_master_refresh",
    "v3_checksum_as_v2",
    "old_unicast_checksum",
    "check_unicast_src",
    "accept",
)
INSTANCE_UNSUPPORTED: dict[str, str] = {
    "use_vmac": _NO_VMAC,
    "use_vmac_addr": _NO_VMAC,
    "vmac_xmit_base": _NO_VMAC,
    "use_ipvlan": _NO_VMAC,
    "native_ipv6": "ignored: the address family comes from the virtual addresses",
    "dont_track_primary": "hafm always tracks the instance interface",
    "track_process": _TRACK_PROCESS,
    "track_bfd": _BFD,
    "track_src_ip": "not supported",
    "mcast_dst_ip": "hafm always uses the RFC multicast group",
    "unicast_ttl": "hafm always sends with TTL/hop limit 255 (RFC 5798)",
    "unicast_fault_no_peer": "hafm never falls back to multicast when unicast_peer is set",
    "vrf": "VRF binding is not supported",
    "virtual_routes": "hafm does not manage routes",
    "virtual_rules": "hafm does not manage routing rules",
    "no_virtual_ipaddress": "not supported",
    "no_accept": "hafm does not install firewall rules, so VIPs always accept traffic",
    "promote_secondaries": "set net.ipv4.conf.IFACE.promote_secondaries with sysctl",
    "skip_check_adv_addr": "hafm always checks the advertised addresses",
    "strict_mode": "hafm has no strict mode switch",
    "debug": "use hafm's log_level",
    "notify_deleted": "hafm has no DELETED state",
    "notify_master_rx_lower_pri": "not supported",
    "notify_priority_changes": "hafm does not send priority changes to the notify FIFO",
    "smtp_alert": _EMAIL,
    "kernel_rx_buf_size": _TUNING,
    "linkbeat_use_polling": "hafm always uses netlink for link state",
    "lvs_sync_daemon_interface": _LVS,
    "garp_master_refresh_repeat": "hafm sends one gratuitous ARP/NA per refresh",
    "garp_lower_prio_delay": "not supported",
    "garp_lower_prio_repeat": "not supported",
    "garp_extra_if": "hafm sends gratuitous ARP only on the interfaces of its VIPs",
    "vmac_garp_intvl": _NO_VMAC,
    "down_timer_adverts": "hafm uses the RFC master down interval (3 adverts + skew)",
    "lower_prio_no_advert": "not supported",
    "higher_prio_send_advert": "not supported",
    "owner_ignore_adverts": "not supported",
    "timer_expired_backup": "not supported",
    "thread_timer_expired": "not supported",
    "auth_hmac": "hafm supports only PASS authentication",
}

SCRIPT_HANDLED = ("script", "interval", "timeout", "weight", "rise", "fall", "user", "init_fail")
SCRIPT_UNSUPPORTED: dict[str, str] = {}

# vrrp_track_file / track_file NAME { ... } becomes a `file` check.
FILE_BLOCKS = ("vrrp_track_file", "track_file")
FILE_HANDLED = ("file", "weight")
FILE_UNSUPPORTED: dict[str, str] = {
    "init_file": "hafm does not create the tracked file; create it before starting hafm",
}

SYNC_GROUP_HANDLED = ("group", *NOTIFY_KEYS)
SYNC_GROUP_UNSUPPORTED: dict[str, str] = {
    "track_interface": _GROUP_TRACK,
    "track_script": _GROUP_TRACK,
    "track_file": _GROUP_TRACK,
    "track_process": _TRACK_PROCESS,
    "track_bfd": _BFD,
    "smtp_alert": _EMAIL,
    "global_tracking": "deprecated in keepalived; track on the member instances",
    "sync_group_tracking_weight": "not supported",
    "notify_priority_changes": "hafm does not send priority changes to the notify FIFO",
    "notify_deleted": "hafm has no DELETED state",
}


# Options that may follow a virtual address, and how many values each takes.
_VIP_OPTIONS = {
    "dev": 1,
    "label": 1,
    "brd": 1,
    "broadcast": 1,
    "scope": 1,
    "peer": 1,
    "preferred_lft": 1,
    "track_group": 1,
    "home": 0,
    "-nodad": 0,
    "mngtmpaddr": 0,
    "noprefixroute": 0,
    "autojoin": 0,
    "no_track": 0,
    "use_vmac": 0,
}


@dataclass(frozen=True, kw_only=True)
class ConversionResult:
    """The TOML text, the keywords that were not converted, and informational notes."""

    toml: str
    warnings: list[str]
    notes: list[str] = field(default_factory=list)


# keepalived reads numbers with strtoul/strtod into 32-bit fields: plain decimals only, and
# no value it accepts is longer than this (refused before any conversion, so 5000 digits cost nothing).
MAX_NUMBER_LENGTH = 24
_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+")
_INTEGER = re.compile(r"[+-]?[0-9]+")


def _number(text: str) -> int | float:
    """``"1"`` -> 1, ``"0.1"`` -> 0.1; keeps integers integers so TOML stays readable."""
    if len(text) > MAX_NUMBER_LENGTH or not _DECIMAL.fullmatch(text):
        raise InvalidOperation(text)
    value = Decimal(text)
    return int(value) if value == value.to_integral_value() else float(value)


def _shown(value: str) -> str:
    """``value`` quoted for a message, shortened when it is long."""
    if len(value) <= 40:
        return repr(value)
    return f"{value[:20]!r}... ({len(value)} characters)"


class _Converter:
    def __init__(self) -> None:
        self.warnings: list[tuple[str, int, str]] = []
        self.notes: list[tuple[str, int, str]] = []
        self.global_table: Table = {}
        self.instances: dict[str, Table] = {}
        self.instance_nodes: dict[str, Node] = {}
        self.sync_groups: dict[str, Table] = {}
        self.checks: dict[str, Table] = {}
        self.check_nodes: dict[str, Node] = {}
        self.check_kinds: dict[str, str] = {}  # check name -> the keepalived block it came from
        # global_defs values that are per-instance or per-check defaults in hafm
        self.default_version: int | None = None
        self.script_user: str | None = None
        self.instance_defaults: Table = {}
        # sync groups are checked once every instance is known
        self.pending_groups: list[tuple[str, Node, list[tuple[str, Node]]]] = []

    # -- messages -------------------------------------------------------
    def warn(self, node: Node, keyword: str, why: str) -> None:
        self.warnings.append((node.filename, node.line, f"{node.where}: {keyword}: not converted ({why})"))

    def note(self, node: Node, keyword: str, text: str) -> None:
        self.notes.append((node.filename, node.line, f"{node.where}: {keyword}: note: {text}"))

    @staticmethod
    def error(node: Node, message: str) -> ParseError:
        return ParseError(node.filename, node.line, message)

    # -- value readers ----------------------------------------------------
    def one_arg(self, node: Node) -> str:
        if node.children is not None:
            raise self.error(node, f"{node.keyword}: does not take a {{ }} block")
        if len(node.args) != 1:
            raise self.error(node, f"{node.keyword}: expects one value, got {len(node.args)}")
        return node.args[0]

    def no_arg(self, node: Node) -> None:
        if node.children is not None or node.args:
            raise self.error(node, f"{node.keyword}: takes no value")

    def integer(self, node: Node, low: int, high: int, text: str | None = None) -> int:
        value = self.one_arg(node) if text is None else text
        if len(value) > MAX_NUMBER_LENGTH or not _INTEGER.fullmatch(value):
            raise self.error(node, f"{node.keyword}: bad value {_shown(value)} (expected an integer)")
        number = int(value, 10)
        if not low <= number <= high:
            raise self.error(node, f"{node.keyword}: {number} is out of range {low}..{high}")
        return number

    def decimal(self, node: Node, low: float, high: float) -> int | float:
        value = self.one_arg(node)
        try:
            number = _number(value)
        except InvalidOperation:
            raise self.error(node, f"{node.keyword}: bad value {_shown(value)} (expected a number)") from None
        if not low <= number <= high:
            raise self.error(node, f"{node.keyword}: {value} is out of range {low:g}..{high:g}")
        return number

    def address(self, node: Node, text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
        try:
            return ipaddress.ip_address(text)
        except ValueError:
            raise self.error(node, f"{node.keyword}: bad value {text!r} (expected an IP address)") from None

    def block(self, node: Node) -> list[Node]:
        if node.children is None:
            raise self.error(node, f"{node.keyword}: expects a {{ ... }} block")
        return node.children

    def named_block(self, node: Node) -> tuple[str, list[Node]]:
        if len(node.args) != 1:
            raise self.error(node, f"{node.keyword}: expects one name before '{{'")
        return node.args[0], self.block(node)

    # -- top level --------------------------------------------------------
    def convert(self, nodes: list[Node]) -> Table:
        # global_defs provides defaults and vrrp_script defines names that
        # instances refer to, so both are read first wherever they appear.
        for node in nodes:
            if node.keyword == "global_defs":
                if node.args:
                    raise self.error(node, "global_defs: takes no name")
                self.global_defs(self.block(node))
        for node in nodes:
            if node.keyword == "vrrp_script":
                self.vrrp_script(node)
            elif node.keyword in FILE_BLOCKS:
                self.track_file_block(node)
        for node in nodes:
            if node.keyword in ("global_defs", "vrrp_script", *FILE_BLOCKS):
                continue
            if node.keyword == "vrrp_instance":
                self.vrrp_instance(node)
            elif node.keyword == "vrrp_sync_group":
                self.vrrp_sync_group(node)
            elif node.keyword in TOP_LEVEL_UNSUPPORTED:
                name = " ".join([node.keyword, *node.args])
                self.warn(node, name, TOP_LEVEL_UNSUPPORTED[node.keyword])
            else:
                kind = "block" if node.children is not None else "keyword"
                raise self.error(node, f"{node.keyword}: unknown {kind} at top level")
        self.check_sync_groups()
        document: Table = {}
        if self.global_table:
            document["global"] = self.global_table
        if self.instances:
            document["vrrp_instance"] = self.instances
        if self.sync_groups:
            document["vrrp_sync_group"] = self.sync_groups
        if self.checks:
            document["check"] = self.checks
        return document

    # -- global_defs --------------------------------------------------------
    def global_defs(self, children: list[Node]) -> None:
        for node in children:
            keyword = node.keyword
            if keyword == "router_id":
                self.global_table["router_id"] = self.one_arg(node)
            elif keyword == "vrrp_version":
                self.default_version = self.integer(node, 2, 3)
                self.global_table["vrrp_version"] = self.default_version
            elif keyword == "script_user":
                if node.children is not None or not 1 <= len(node.args) <= 2:
                    raise self.error(node, "script_user: expects USER [GROUP]")
                self.script_user = node.args[0]
                if len(node.args) == 2:
                    self.warn(node, "script_user group", _USER_GROUP)
                self.note(node, keyword, f"applied as `user` of every script check without one: {USER_MEANING}")
            elif keyword == "enable_script_security":
                self.no_arg(node)
                self.note(node, keyword, "hafm always refuses scripts that non-root users can modify")
            elif keyword in ("notify_fifo", "vrrp_notify_fifo"):
                if node.children is not None or not node.args:
                    raise self.error(node, f"{keyword}: expects FIFO [USER [GROUP]]")
                if "notify_fifo" in self.global_table:
                    self.warn(node, keyword, "hafm writes to one notify FIFO; the first one is kept")
                    continue
                self.global_table["notify_fifo"] = node.args[0]
                if len(node.args) > 1:
                    self.warn(node, f"{keyword} user", "hafm creates the FIFO as its own user")
            elif keyword == "vrrp_garp_master_delay":
                self.instance_defaults["garp_master_delay"] = self.integer(node, 0, 86400)
            elif keyword == "vrrp_garp_master_repeat":
                self.instance_defaults["garp_master_repeat"] = self.integer(node, 1, 255)
            elif keyword == "vrrp_garp_master_refresh":
                self.instance_defaults["garp_master_refresh"] = self.integer(node, 0, 86400)
            elif keyword == "v3_checksum_as_v2":
                self.no_arg(node)
                self.instance_defaults["v3_checksum_as_v2"] = True
            elif keyword == "vrrp_check_unicast_src":
                self.no_arg(node)
                self.note(node, keyword, "hafm always drops unicast adverts from unknown peers")
            else:
                self.warn(node, keyword, GLOBAL_UNSUPPORTED.get(keyword, _GLOBAL_OTHER))

    # -- vrrp_script ----------------------------------------------------------
    def claim_check_name(self, node: Node, name: str) -> bool:
        """Record a check name; keepalived has separate namespaces, hafm's [check] tables have one."""
        first = self.check_nodes.get(name)
        if first is None:
            self.check_nodes[name] = node
            self.check_kinds[name] = node.keyword
            return True
        if first.keyword == node.keyword or {first.keyword, node.keyword} <= set(FILE_BLOCKS):
            raise self.error(node, f"{node.keyword} {name}: defined twice (first at {first.where})")
        self.warn(node, f"{node.keyword} {name}", f"hafm checks share one namespace with {first.keyword} {name}")
        return False

    def track_file_block(self, node: Node) -> None:
        name, children = self.named_block(node)
        if not self.claim_check_name(node, name):
            return
        check: Table = {"type": "file"}
        for child in children:
            keyword = child.keyword
            if keyword == "file":
                check["path"] = self.one_arg(child)
            elif keyword == "weight":
                if child.children is not None or not 1 <= len(child.args) <= 2:
                    raise self.error(child, "weight: expects N [reverse]")
                check["weight"] = self.integer(child, -254, 254, child.args[0])
                if len(child.args) == 2:
                    self.warn(child, f"weight {child.args[1]}", "reversed weights are not supported")
            else:
                self.warn(child, keyword, FILE_UNSUPPORTED.get(keyword, f"unknown {node.keyword} keyword"))
        if "path" not in check:
            self.warn(node, f"{node.keyword} {name}", "it has no `file`, so keepalived ignores it too")
            return
        # keepalived's default track_file weight is 1, hafm's check weight is 0.
        check.setdefault("weight", 1)
        self.checks[name] = check

    def vrrp_script(self, node: Node) -> None:
        name, children = self.named_block(node)
        if not self.claim_check_name(node, name):
            return
        check: Table = {"type": "script"}
        init_fail = False
        for child in children:
            keyword = child.keyword
            if keyword == "script":
                if child.children is not None or not child.args:
                    raise self.error(child, "script: expects a command")
                # One (usually quoted) word is already a command line; several
                # unquoted words are re-quoted so shlex splits them the same way.
                check["script"] = child.args[0] if len(child.args) == 1 else shlex.join(child.args)
            elif keyword in ("interval", "timeout"):
                check[keyword] = self.decimal(child, 0.001, 2**31)
            elif keyword in ("rise", "fall"):
                check[keyword] = self.integer(child, 1, 2**31)
            elif keyword == "weight":
                if child.children is not None or not 1 <= len(child.args) <= 2:
                    raise self.error(child, "weight: expects N [reverse]")
                check["weight"] = self.integer(child, -253, 253, child.args[0])
                if len(child.args) == 2:
                    self.warn(child, f"weight {child.args[1]}", "reversed weights are not supported")
            elif keyword == "user":
                if child.children is not None or not 1 <= len(child.args) <= 2:
                    raise self.error(child, "user: expects USER [GROUP]")
                check["user"] = child.args[0]
                if len(child.args) == 2:
                    self.warn(child, "user group", _USER_GROUP)
            elif keyword == "init_fail":
                self.no_arg(child)
                init_fail = True
            else:
                self.warn(child, keyword, SCRIPT_UNSUPPORTED.get(keyword, "unknown vrrp_script keyword"))
        if "script" not in check:
            self.warn(node, f"vrrp_script {name}", "it has no `script`, so keepalived ignores it too")
            return
        script_node = next(child for child in children if child.keyword == "script")
        # keepalived's test is on the first word: "<" then "/" (core/notify.c system_call_script).
        if check["script"].lstrip(" \t").startswith("</"):
            target = self.shell_redirection(script_node, check.pop("script"))
            if target is None:
                return
            check.update(target)
            check.pop("user", None)  # a tcp check connects from hafm itself
        else:
            check["script"] = self.absolute_program(script_node, check["script"])
            if "user" not in check and self.script_user is not None:
                check["user"] = self.script_user
        if "timeout" not in check:
            # keepalived's default timeout is the interval, hafm's is 1 second.
            check["timeout"] = check.get("interval", 1)
        # keepalived starts a script in INIT, which counts as failed until the first result
        # (vrrp_scheduler.c vrrp_init_script: result = rise - 1, "one success is enough";
        # init_fail: result = 0, a full rise).  hafm's "down" is that state; it needs `rise`
        # successes to leave it, so only rise = 1 (or init_fail) matches exactly.
        check["init_state"] = "down"
        rise = check.get("rise", 1)
        if rise > 1 and not init_fail:
            self.note(
                node,
                f"vrrp_script {name}",
                f"keepalived brings a new script up at its first success; hafm's check starts down "
                f"and needs rise ({rise}) successes",
            )
        order = ("type", "script", "host", "port", "interval", "timeout", "fall", "rise", "weight", "user")
        self.checks[name] = {key: check[key] for key in (*order, "init_state") if key in check}

    def absolute_program(self, node: Node, command: str) -> str:
        """``command`` with its program's full path when keepalived would search PATH for it.

        keepalived runs a program named without a ``/`` from its PATH (core/notify.c
        find_path); hafm's configuration names programs by full path, so the converter
        writes the path it finds with hafm's PATH on this machine (and says so).
        """
        try:
            argv = shlex.split(command)
        except ValueError:
            return command  # the check validator reports it
        if not argv or "/" in argv[0]:
            return command
        found = shutil.which(argv[0], path=ENV_PATH)
        if found is None:
            return command
        self.note(node, node.keyword, f"keepalived searches its PATH for {argv[0]}; written as {found}, found here")
        return shlex.join([found, *argv[1:]])

    def shell_redirection(self, node: Node, command: str) -> Table | None:
        """A ``</PATH`` script, which keepalived runs through /bin/sh (core/notify.c system_call_script).

        ``</dev/tcp/HOST/PORT`` (keepalived's localcheck sample) is bash's TCP connect: it
        becomes a ``tcp`` check.  Anything else is reported: hafm never runs a shell.
        """
        match = _DEV_TCP.fullmatch(command.strip(" \t"))
        if match is None or not 1 <= int(match["port"]) <= 65535:
            self.warn(
                node,
                f"script {command}",
                "keepalived runs `</FILE` through /bin/sh to test that FILE opens; hafm runs no shell "
                "(use a script such as `test -r FILE`)",
            )
            return None
        host, port = match["host"], int(match["port"])
        self.note(
            node,
            "script",
            f"keepalived runs {command.strip()} through /bin/sh, which connects to {host} port {port} "
            f"when /bin/sh is bash (with dash it always fails); converted to a tcp check of {host}:{port}",
        )
        return {"type": "tcp", "host": host, "port": port}

    # -- vrrp_sync_group -------------------------------------------------------
    def vrrp_sync_group(self, node: Node) -> None:
        name, children = self.named_block(node)
        if name in self.sync_groups:
            raise self.error(node, f"vrrp_sync_group {name}: defined twice")
        group: Table = {}
        members: list[tuple[str, Node]] = []
        for child in children:
            keyword = child.keyword
            if keyword == "group":
                for member in self.block(child):
                    if member.args or member.children is not None:
                        raise self.error(member, f"group: expects one instance name per line, got {member.keyword!r}")
                    members.append((member.keyword, member))
            elif keyword in NOTIFY_KEYS:
                self.notify(child, group)
            else:
                self.warn(child, keyword, SYNC_GROUP_UNSUPPORTED.get(keyword, "unknown vrrp_sync_group keyword"))
        self.pending_groups.append((name, node, members))
        ordered: Table = {"group": []}
        ordered.update(group)
        self.sync_groups[name] = ordered

    def check_sync_groups(self) -> None:
        # Instances may be defined after the group that names them.
        for name, node, members in self.pending_groups:
            names: list[str] = []
            for member, where in members:
                if member not in self.instances:
                    self.warn(where, member, f"vrrp_sync_group {name} names no vrrp_instance {member}")
                else:
                    names.append(member)
            if not names:
                self.warn(node, f"vrrp_sync_group {name}", "it has no known member instances")
                del self.sync_groups[name]
                continue
            self.sync_groups[name]["group"] = names

    # -- notify ---------------------------------------------------------------
    def notify(self, node: Node, target: Table) -> None:
        if node.children is not None or not node.args:
            raise self.error(node, f"{node.keyword}: expects a command")
        target[node.keyword] = self.absolute_program(node, node.args[0])
        if len(node.args) > 1:
            # keepalived reads the words after the command as USER [GROUP].
            self.warn(node, f"{node.keyword} user {' '.join(node.args[1:])}", _NO_USER)

    # -- vrrp_instance ---------------------------------------------------------
    def vrrp_instance(self, node: Node) -> None:
        name, children = self.named_block(node)
        if name in self.instance_nodes:
            first = self.instance_nodes[name]
            raise self.error(node, f"vrrp_instance {name}: defined twice (first at {first.where})")
        self.instance_nodes[name] = node
        table: Table = dict(self.instance_defaults)
        version: int | None = None
        version_node: Node | None = None
        advert_node: Node | None = None
        mcast_src: Node | None = None
        family: int | None = None
        seen: dict[str, Node] = {}  # the last line of each keyword, for notes about it
        for child in children:
            keyword = child.keyword
            seen[keyword] = child
            if keyword == "state":
                value = self.one_arg(child).upper()
                if value not in ("MASTER", "BACKUP"):
                    raise self.error(child, f"state: bad value {child.args[0]!r} (expected MASTER or BACKUP)")
                table["state"] = value
            elif keyword == "interface":
                table["interface"] = self.one_arg(child)
            elif keyword == "virtual_router_id":
                table["virtual_router_id"] = self.integer(child, 1, 255)
            elif keyword == "priority":
                table["priority"] = self.integer(child, 1, 255)
            elif keyword == "advert_int":
                table["advert_int"] = self.decimal(child, 0.01, 255)
                advert_node = child
            elif keyword == "version":
                version = self.integer(child, 2, 3)
                version_node = child
            elif keyword == "nopreempt":
                self.no_arg(child)
                table["nopreempt"] = True
            elif keyword == "preempt":
                self.no_arg(child)
                table["nopreempt"] = False
            elif keyword == "preempt_delay":
                table["preempt_delay"] = self.decimal(child, 0, 1000)
            elif keyword == "authentication":
                auth = self.authentication(child)
                if auth is not None:
                    table["authentication"] = auth
            elif keyword in ("virtual_ipaddress", "virtual_ipaddress_excluded"):
                vips: list[Any] = []
                listed = {str(v["address"] if isinstance(v, dict) else v).split("/")[0] for v in table.get(keyword, [])}
                for entry in self.block(child):
                    vip, vip_family = self.vip(entry)
                    if keyword == "virtual_ipaddress":
                        if family is None:
                            family = vip_family
                        elif vip_family != family:
                            self.warn(
                                entry,
                                entry.keyword,
                                "all virtual_ipaddress entries must be one address family; "
                                "put it in virtual_ipaddress_excluded",
                            )
                            continue
                    address = (vip["address"] if isinstance(vip, dict) else vip).split("/")[0]
                    if address in listed:
                        # keepalived keeps one copy ("VIP ... is duplicated - removing"); hafm refuses duplicates.
                        self.note(entry, entry.keyword, "listed twice; written once, as keepalived keeps one")
                        continue
                    listed.add(address)
                    vips.append(vip)
                table.setdefault(keyword, []).extend(vips)
            elif keyword == "unicast_src_ip":
                table["unicast_src_ip"] = str(self.address(child, self.one_arg(child)))
            elif keyword == "mcast_src_ip":
                self.address(child, self.one_arg(child))
                mcast_src = child
            elif keyword == "unicast_peer":
                peers = table.setdefault("unicast_peer", [])
                for entry in self.block(child):
                    peers.append(str(self.address(entry, entry.keyword)))
                    if entry.args:
                        self.warn(entry, f"{entry.keyword} {' '.join(entry.args)}", "TTL limits are not supported")
            elif keyword == "track_interface":
                tracked = table.setdefault("track_interface", [])
                for entry in self.block(child):
                    if entry.args:
                        self.warn(
                            entry,
                            f"track_interface {entry.keyword} {' '.join(entry.args)}",
                            "weighted interface tracking is not supported; the interface is not tracked",
                        )
                    else:
                        tracked.append(entry.keyword)
            elif keyword in ("track_script", "track_file"):
                tracked = table.setdefault("track_check", [])
                for entry in self.block(child):
                    item = self.tracked_check(entry, keyword)
                    if item is not None:
                        tracked.append(item)
            elif keyword in NOTIFY_KEYS:
                self.notify(child, table)
            elif keyword == "garp_master_delay":
                table["garp_master_delay"] = self.integer(child, 0, 86400)
            elif keyword == "garp_master_repeat":
                table["garp_master_repeat"] = self.integer(child, 1, 255)
            elif keyword == "garp_master_refresh":
                table["garp_master_refresh"] = self.integer(child, 0, 86400)
            elif keyword in ("v3_checksum_as_v2", "old_unicast_checksum"):
                if child.args == ["never"] and keyword == "old_unicast_checksum":
                    self.warn(child, "old_unicast_checksum never", "hafm does not auto-detect old checksums")
                    continue
                self.no_arg(child)
                table["v3_checksum_as_v2"] = True
            elif keyword == "check_unicast_src":
                self.no_arg(child)
                self.note(child, keyword, "hafm always drops unicast adverts from unknown peers")
            elif keyword == "accept":
                self.no_arg(child)
                self.note(child, keyword, "hafm never filters traffic to VIPs, which is accept mode")
            else:
                self.warn(child, keyword, INSTANCE_UNSUPPORTED.get(keyword, "unknown vrrp_instance keyword"))

        for required in ("interface", "virtual_router_id"):
            if required not in table:
                raise self.error(node, f"vrrp_instance {name}: missing {required}")
        if mcast_src is not None:
            if "unicast_peer" in table and "unicast_src_ip" not in table:
                # keepalived stores both keywords in the same field.
                table["unicast_src_ip"] = mcast_src.args[0]
            else:
                self.warn(mcast_src, "mcast_src_ip", "hafm sends multicast from the interface's primary address")

        # Version: instance keyword, else global vrrp_version, else 2; IPv6
        # needs 3 (keepalived forces it the same way).
        effective = version if version is not None else (self.default_version or 2)
        if family == 6 and effective == 2:
            if version_node is not None:
                self.note(version_node, "version 2", "IPv6 needs VRRPv3; converted as version 3 like keepalived")
            effective = 3
        table["version"] = effective
        if advert_node is not None:
            table["advert_int"] = self.advert_int(advert_node, table["advert_int"], effective)
        self.complete_instance(table, seen)
        if not table.get("virtual_ipaddress"):
            # keepalived only warns ("No VIP specified; at least one is sensible"); hafm asks for it explicitly.
            table["allow_no_vip"] = True
            self.note(node, f"vrrp_instance {name}", "no virtual_ipaddress: written as allow_no_vip = true")
        # An all-unsupported list (say, only weighted track_interface lines) is left out, not written as [].
        self.instances[name] = {key: table[key] for key in INSTANCE_KEYS if table.get(key, None) not in (None, [])}

    def complete_instance(self, table: Table, seen: dict[str, Node]) -> None:
        """The corrections keepalived makes once an instance is read (vrrp.c vrrp_complete_instance).

        keepalived logs each one and carries on; the converted file says what keepalived does.
        """
        if table.get("state") == "MASTER" and "priority" not in table:
            table["priority"] = 255
            self.note(
                seen["state"],
                "state MASTER",
                f"no priority: keepalived makes a MASTER without priority the address owner "
                f"({KEEPALIVED_VRRP_C}); written as priority = 255",
            )

        def drop(key: str, said: str) -> None:
            del table[key]
            self.note(seen[key], key, f'keepalived ignores it ("{said}", {KEEPALIVED_VRRP_C}); not written')

        # In keepalived's order: each correction sees the ones before it.
        if "authentication" in table and table["version"] == 3:
            drop("authentication", "VRRP version 3 does not support authentication. Ignoring.")
        if table.get("nopreempt") and table.get("priority") == 255:
            drop("nopreempt", "nopreempt is incompatible with priority 255. resetting nopreempt")
        if table.get("state") == "MASTER":
            if table.get("nopreempt"):
                drop("nopreempt", "Warning - nopreempt will not work with initial state MASTER - clearing")
            if table.get("preempt_delay"):
                drop("preempt_delay", "Warning - preempt delay will not work with initial state MASTER - clearing")
        if table.get("preempt_delay") and table.get("nopreempt"):
            drop("preempt_delay", "preempt_delay is incompatible with nopreempt mode - resetting")
        if not table.get("virtual_ipaddress"):
            # keepalived only warns ("No VIP specified; at least one is sensible"); hafm asks for it explicitly.
            table["allow_no_vip"] = True
            self.note(
                seen.get("state") or next(iter(seen.values())),
                "virtual_ipaddress",
                "none: written as allow_no_vip = true",
            )

    def advert_int(self, node: Node, advert: float, version: int) -> int | float:
        """Adjust advert_int to what the packet can carry, exactly as keepalived does."""
        exact = Decimal(str(advert))
        if version == 2:
            if isinstance(advert, int):
                return advert
            # keepalived rounds half up, with a minimum of one second.
            rounded = max(1, int(exact + Decimal("0.5")))
            self.note(node, "advert_int", f"VRRPv2 carries whole seconds; {advert} rounded to {rounded}")
            return rounded
        # VRRPv3 carries centiseconds in 12 bits; keepalived truncates to that.
        centis = min(max(int(exact * 100), 1), 4095)
        if centis != exact * 100:
            adjusted = _number(str(Decimal(centis) / 100))
            self.note(node, "advert_int", f"VRRPv3 carries 0.01..40.95 seconds; {advert} becomes {adjusted}")
            return adjusted
        return advert

    def authentication(self, node: Node) -> Table | None:
        values: dict[str, str] = {}
        nodes: dict[str, Node] = {}
        for child in self.block(node):
            if child.keyword in ("auth_type", "auth_pass"):
                values[child.keyword] = self.one_arg(child)
                nodes[child.keyword] = child
            else:
                self.warn(child, child.keyword, "unknown authentication keyword")
        auth_type = values.get("auth_type", "").upper()
        if auth_type == "AH":
            self.warn(nodes["auth_type"], "auth_type AH", "hafm supports only PASS (IPsec AH is obsolete)")
            return None
        if auth_type != "PASS":
            raise self.error(node, "authentication: auth_type must be PASS or AH")
        if "auth_pass" not in values:
            said = "Authentication specified but no password given. Ignoring"
            self.note(node, "authentication", f'keepalived ignores it ("{said}", {KEEPALIVED_VRRP_C}); not written')
            return None
        password = values["auth_pass"]
        if len(password) > 8:
            self.note(nodes["auth_pass"], "auth_pass", "only the first 8 characters are used, as in keepalived")
            password = password[:8]
        return {"auth_type": "PASS", "auth_pass": password}

    def vip(self, entry: Node) -> tuple[str | Table, int]:
        """One line of virtual_ipaddress: ``ADDR[/PFX] [dev X] [label Y] ...``."""
        if entry.children is not None:
            raise self.error(entry, f"{entry.keyword}: an address does not take a {{ }} block")
        text = entry.keyword
        try:
            interface = ipaddress.ip_interface(text)
        except ValueError:
            raise self.error(entry, f"virtual_ipaddress: bad value {text!r} (expected ADDRESS[/PREFIX])") from None
        # keepalived uses a host prefix when none is given; say so explicitly.
        address = f"{interface.ip}/{interface.network.prefixlen}"
        table: Table = {}
        args = list(entry.args)
        i = 0
        while i < len(args):
            option = args[i]
            count = _VIP_OPTIONS.get(option)
            if count is None:
                self.warn(entry, f"{text} {option}", "unknown virtual address option")
                i += 1
                continue
            if count and i + 1 >= len(args):
                raise self.error(entry, f"{text}: {option} needs a value")
            value = args[i + 1] if count else ""
            i += 1 + count
            if option == "label" and interface.version == 6:
                self.warn(entry, f"{text} label {value}", "address labels are IPv4-only")
            elif option in ("dev", "label"):
                table[option] = value
            elif option in ("brd", "broadcast"):
                self.vip_broadcast(entry, interface, option, value)
            elif option == "scope" and value == "global":
                continue
            elif option == "use_vmac":
                self.warn(entry, f"{text} use_vmac", _NO_VMAC)
            else:
                shown = f"{text} {option} {value}".rstrip()
                self.warn(entry, shown, f"hafm adds VIPs without the `{option}` option")
        if not table:
            return address, interface.version
        return {"address": address, **table}, interface.version

    def vip_broadcast(
        self, entry: Node, interface: ipaddress.IPv4Interface | ipaddress.IPv6Interface, option: str, value: str
    ) -> None:
        trivial = value == "+" or (interface.version == 4 and value == str(interface.network.broadcast_address))
        if trivial:
            self.note(entry, f"{entry.keyword} {option} {value}", "the standard broadcast address is not needed")
        else:
            self.warn(entry, f"{entry.keyword} {option} {value}", "hafm does not set broadcast addresses")

    def tracked_check(self, entry: Node, keyword: str) -> str | Table | None:
        """One line of track_script/track_file: ``NAME [weight N [reverse]]``."""
        name = entry.keyword
        block = "vrrp_script" if keyword == "track_script" else "track_file"
        if entry.children is not None:
            raise self.error(entry, f"{keyword} {name}: does not take a {{ }} block")
        kind = self.check_kinds.get(name, "")
        if kind.removeprefix("vrrp_") != block.removeprefix("vrrp_"):
            self.warn(entry, f"{keyword} {name}", f"no {block} of that name")
            return None
        if name not in self.checks:
            self.warn(entry, f"{keyword} {name}", f"its {block} was not converted")
            return None
        if not entry.args:
            return name
        if entry.args[0] != "weight" or len(entry.args) not in (2, 3):
            raise self.error(entry, f"{keyword} {name}: expects NAME [weight N [reverse]]")
        limit = 253 if keyword == "track_script" else 254
        weight = self.integer(entry, -limit, limit, entry.args[1])
        if len(entry.args) == 3 and entry.args[2] not in ("noreverse", "no_reverse"):
            self.warn(entry, f"{keyword} {name} {entry.args[2]}", "reversed weights are not supported")
        return {"name": name, "weight": weight}


def convert_text(
    text: str, *, filename: str = "keepalived.conf", base_dir: Path | None = None, config_id: str | None = None
) -> ConversionResult:
    """Translate keepalived.conf text into hafm TOML.

    ``base_dir`` is where relative ``include`` patterns are resolved (default:
    the current directory).  ``config_id`` is keepalived's ``-i`` id of the
    machine the configuration is for (``@ID`` lines, ``${_INSTANCE}``); without
    it those are reported or refused.  Raises :class:`~hafm.errors.ConfigError` with
    one-line ``FILE:LINE: ...`` messages when the input cannot be read as
    keepalived configuration, and ``FILE: nothing for hafm in this file`` when
    it has no VRRP instance (an LVS-only file).
    """
    parsed = parse_text(text, filename=filename, base_dir=base_dir, config_id=config_id)
    converter = _Converter()
    document = converter.convert(parsed.nodes)
    if "vrrp_instance" not in document:
        raise ConfigError([f"{filename}: nothing for hafm in this file (no vrrp_instance to convert)"])
    problem = _undecodable(document, parsed.nodes, filename)
    if problem is not None:
        raise ConfigError([problem])
    files: dict[str, int] = {}
    for node in _walk(parsed.nodes):
        files.setdefault(node.filename, len(files))
    warnings = parsed.warnings + converter.warnings

    def key(item: tuple[str, int, str]) -> tuple[int, int]:
        return files.get(item[0], len(files)), item[1]

    header = f"# Converted from {_printable(filename)} by `hafm convert`.\n# {DROPIN_HINT}\n"
    if warnings:
        header += "# Some keywords were not converted: see the warnings printed by hafm convert.\n"
    return ConversionResult(
        toml=header + "\n" + tomli_w.dumps(document),
        warnings=[message for *_, message in sorted(warnings, key=key)],
        notes=[message for *_, message in sorted(parsed.notes + converter.notes, key=key)],
    )


def _walk(nodes: list[Node]) -> Iterator[Node]:
    """Every statement in file order (iteratively: nesting depth is the input's choice)."""
    stack = list(reversed(nodes))
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(node.children or []))


def _strings(value: Any) -> Iterator[str]:
    """Every string in the document, table names included."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            stack += [*item.keys(), *item.values()]
        elif isinstance(item, list):
            stack += item


def _printable(text: str) -> str:
    """``text`` with the bytes that are not UTF-8 written as ``\\xNN`` (file names can hold them too)."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _undecodable(document: Table, nodes: list[Node], filename: str) -> str | None:
    """A one-line error for a value that is not UTF-8 and would be written to the TOML.

    The file is read with surrogate escapes so that such bytes in comments (which
    keepalived ignores) do no harm; TOML is UTF-8, so a value containing one is refused.
    """
    bad = next((text for text in _strings(document) if _ESCAPED_BYTE.search(text)), None)
    if bad is None:
        return None
    where = filename
    for node in _walk(nodes):
        words = [node.keyword, *node.args]
        if any(_ESCAPED_BYTE.search(word) and (word in bad or bad in word) for word in words):
            where = node.where
            break
    return f"{where}: {_printable(bad)}: not UTF-8 (hafm's TOML is UTF-8: write this value in UTF-8)"


def _validators(check_validators: Mapping[str, CheckValidator] | None) -> dict[str, CheckValidator]:
    """The check validators of hafm's built-in check types, or the ones given.

    The users named by a script check's ``user`` belong to the machine that will run
    hafm, which need not be the one converting: the existence of the user is not checked.
    """
    if check_validators is None:
        from hafm.plugin_manager import check_types, make_plugin_manager

        types = check_types(make_plugin_manager(load_entry_points=False))
        check_validators = {name: check_type.validate for name, check_type in types.items()}

    def without_user(validate: CheckValidator) -> CheckValidator:
        return lambda options: validate({key: value for key, value in options.items() if key != "user"})

    return {name: without_user(validate) for name, validate in check_validators.items()}


def check_output(toml: str, *, check_validators: Mapping[str, CheckValidator] | None = None) -> list[str]:
    """What hafm's own loader says about the converted TOML: [] when it loads."""
    try:
        with tempfile.TemporaryDirectory(prefix="hafm-convert-") as directory:
            # A directory of its own, so that no conf.d/ beside the real output is read.
            target = Path(directory) / "hafm.toml"
            target.write_text(toml, encoding="utf-8")
            try:
                load_config(target, check_validators=_validators(check_validators))
            except ConfigError as exc:
                messages = [message.removeprefix(f"{target}: ") for message in exc.messages]
            except HafmError as exc:
                messages = [str(exc)]
            else:
                return []
    except OSError as exc:
        return [f"cannot check the converted configuration: {exc.strerror or exc}"]
    return [f"converted, but hafm's check-config refuses it: {message}" for message in messages]


def run(
    path: Path,
    output: Path | None,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
    check_validators: Mapping[str, CheckValidator] | None = None,
    config_id: str | None = None,
) -> int:
    """Convert the file at ``path``; write TOML to ``output`` (or ``out``, default stdout).

    The TOML is checked with hafm's own loader and check validators (the built-in
    ones unless ``check_validators`` is given) before anything is written.
    Warnings and notes go to ``err`` (default stderr).  Returns 0 when
    everything was converted, 2 when some keywords were not (each one
    listed), 1 when the file could not be read, converted or checked.
    """
    # Looked up at call time so that redirected streams (tests, the CLI) are honoured.
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    try:
        text = read_config_file(path)
        result = convert_text(text, filename=str(path), base_dir=path.parent, config_id=config_id)
    except UnreadableFile as exc:
        print(f"{path}: {exc.why}", file=err)
        return 1
    except ConfigError as exc:
        for message in exc.messages:
            print(message, file=err)
        return 1
    problems = check_output(result.toml, check_validators=check_validators)
    if problems:
        for problem in problems:
            print(f"{path}: {problem}", file=err)
        return 1
    if output is None:
        out.write(result.toml)
    else:
        try:
            output.write_text(result.toml, encoding="utf-8")
        except OSError as exc:
            print(f"{output}: cannot write: {exc.strerror or exc}", file=err)
            return 1
    for message in [*result.notes, *result.warnings]:
        print(message, file=err)
    return 2 if result.warnings else 0
