"""The key schema of hafm's TOML configuration: which keys each table has and how to check one value.

Every converter takes the raw TOML value and returns the typed value, or raises :class:`Invalid`
with messages meant to follow ``FILE: TABLE.KEY`` on one line (see :mod:`hafm.config.loader`).  Checks that
need more than one key (the VRRP version and advert_int, families, cross-references) live in
:mod:`hafm.config.loader`; this module only knows single values.
"""

from __future__ import annotations

import datetime
import difflib
import ipaddress
import shlex
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from hafm.config.model import Authentication, IPAddress, TrackCheck, Vip

Converter = Callable[[Any], Any]

# Linux IFNAMSIZ is 16 including the NUL terminator.
MAX_IFNAME = 15
# RFC 3768 §5.3.10: the authentication data field is 8 octets.
MAX_AUTH_PASS = 8
# keepalived's track weight range: priority is 1..254 for a non-owner, so a weight beyond ±253 is meaningless.
MAX_WEIGHT = 253


class Invalid(Exception):  # noqa: N818 - it is a validation outcome, caught right at the call site
    """A value failed validation.

    ``problems`` is a list of ``(subpath, message)``; ``subpath`` is appended to the key path
    (``"[1].address"``, ``".auth_pass"``) or empty when the message is about the key itself.
    """

    def __init__(self, message: str = "", *, subpath: str = "", problems: list[tuple[str, str]] | None = None):
        self.problems = problems if problems is not None else [(subpath, message)]
        super().__init__("; ".join(m for _, m in self.problems))


@dataclass(frozen=True, kw_only=True)
class Key:
    """One allowed key of a table: how to convert its value and whether it must be present."""

    convert: Converter
    required: bool = False


def describe(value: Any) -> str:
    """Name a raw TOML value by its TOML type, for 'expected X, got Y' messages."""
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int):
        return f"integer {value}"
    if isinstance(value, float):
        return f"float {value!r}"
    if isinstance(value, str):
        return f"string {value!r}"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "table"
    if isinstance(value, datetime.date | datetime.time):
        return f"datetime {value.isoformat()}"
    return type(value).__name__  # pragma: no cover - tomllib produces nothing else


def suggest(word: str, known: Iterable[str]) -> str:
    """Return "; did you mean 'x'?" for a likely typo of one of ``known``, else an empty string."""
    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def fmt_number(value: float) -> str:
    """Show a number the way the user would have typed it (1 rather than 1.0)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value)


# --- scalar converters ------------------------------------------------------------------------


def integer(lo: int, hi: int | None = None) -> Converter:
    """An integer in ``lo..hi`` inclusive (no upper bound if ``hi`` is None); rejects bools, floats."""

    def convert(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise Invalid(f"expected an integer, got {describe(value)}")
        if hi is None and value < lo:
            raise Invalid(f"{value} is out of range: must be at least {lo}")
        if hi is not None and not lo <= value <= hi:
            raise Invalid(f"{value} is out of range {lo}..{hi}")
        return value

    return convert


def number(lo: float, hi: float | None = None, *, above: bool = False) -> Converter:
    """A number of seconds as float; ``above`` makes ``lo`` exclusive; ``hi`` None means no upper bound."""

    def convert(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise Invalid(f"expected a number, got {describe(value)}")
        shown = fmt_number(value)
        if above and not value > lo:
            raise Invalid(f"{shown} is out of range: must be greater than {fmt_number(lo)}")
        if not above and value < lo or hi is not None and value > hi:
            upper = fmt_number(hi) if hi is not None else ""
            raise Invalid(f"{shown} is out of range {fmt_number(lo)}..{upper}")
        return float(value)

    return convert


def boolean(value: Any) -> bool:
    """A TOML boolean (``true``/``false``), not 0/1 or "yes"."""
    if not isinstance(value, bool):
        raise Invalid(f"expected a boolean (true or false), got {describe(value)}")
    return value


def string(value: Any) -> str:
    """A non-empty string."""
    if not isinstance(value, str):
        raise Invalid(f"expected a string, got {describe(value)}")
    if not value:
        raise Invalid("must not be empty")
    return value


def choice(*allowed: str) -> Converter:
    """One of a fixed set of strings, case-sensitive like keepalived."""

    def convert(value: Any) -> str:
        text = string(value)
        if text not in allowed:
            raise Invalid(f"{text!r} is not one of: {', '.join(allowed)}")
        return text

    return convert


def version(value: Any) -> int:
    """A VRRP version: 2 (RFC 3768) or 3 (RFC 5798)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(f"expected an integer, got {describe(value)}")
    if value not in (2, 3):
        raise Invalid(f"{value} is not one of: 2, 3")
    return value


def absolute_path(value: Any) -> str:
    """A filesystem path the daemon creates; relative paths would depend on its working directory."""
    text = string(value)
    if not text.startswith("/"):
        raise Invalid(f"{text!r} must be an absolute path")
    return text


def interface_name(value: Any) -> str:
    """A Linux interface name, as the kernel's dev_valid_name() accepts it."""
    text = string(value)
    if len(text) > MAX_IFNAME or text in (".", "..") or any(c in "/:" or c.isspace() for c in text):
        raise Invalid(f"{text!r} is not a valid interface name (1..{MAX_IFNAME} characters, no '/', ':' or spaces)")
    return text


def command(value: Any) -> str:
    """A notify command line; it is shlex-split (never run through a shell), so the quoting must balance."""
    text = string(value)
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise Invalid(f"cannot split {text!r} into words: {exc}") from None
    if not words:
        raise Invalid("must not be empty")
    return text


def ip_address(value: Any) -> IPAddress:
    """A single IPv4 or IPv6 address without prefix."""
    text = string(value)
    try:
        if "%" in text:
            raise ValueError
        return ipaddress.ip_address(text)
    except ValueError:
        raise Invalid(f"{text!r} is not a valid IPv4 or IPv6 address") from None


# --- compound converters ----------------------------------------------------------------------


def array(item: Converter) -> Converter:
    """A TOML array whose every element passes ``item``; reports every bad element as ``KEY[i]``."""

    def convert(value: Any) -> tuple[Any, ...]:
        if not isinstance(value, list):
            raise Invalid(f"expected an array, got {describe(value)}")
        out: list[Any] = []
        problems: list[tuple[str, str]] = []
        for index, element in enumerate(value):
            try:
                out.append(item(element))
            except Invalid as exc:
                problems.extend((f"[{index}]{sub}", message) for sub, message in exc.problems)
        if problems:
            raise Invalid(problems=problems)
        return tuple(out)

    return convert


def inline_table(value: Any, keys: dict[str, Key], what: str) -> dict[str, Any]:
    """Check a small inline table (a VIP, a track_check entry, authentication) against ``keys``."""
    if not isinstance(value, dict):
        raise Invalid(f"expected {what}, got {describe(value)}")
    out: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []
    for name, raw in value.items():
        if name not in keys:
            problems.append((f".{name}", unknown_key_message(name, keys)))
            continue
        try:
            out[name] = keys[name].convert(raw)
        except Invalid as exc:
            problems.extend((f".{name}{sub}", message) for sub, message in exc.problems)
    for name, key in keys.items():
        if key.required and name not in value:
            problems.append((f".{name}", "required key is missing"))
    if problems:
        raise Invalid(problems=problems)
    return out


def unknown_key_message(name: str, known: Iterable[str]) -> str:
    """The message for a key no schema knows: a did-you-mean hint, or else the list of allowed keys."""
    known = list(known)
    hint = suggest(name, known)
    return f"unknown key {name!r}{hint}" if hint else f"unknown key {name!r}; allowed: {', '.join(known)}"


def vip_address(value: Any) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
    """``ADDRESS[/PREFIX]``; without a prefix it is a host route (/32 or /128), like keepalived."""
    text = string(value)
    try:
        if "%" in text:
            raise ValueError
        return ipaddress.ip_interface(text)
    except ValueError:
        raise Invalid(f"{text!r} is not a valid IP address with optional /prefix") from None


VIP_KEYS = {
    "address": Key(convert=vip_address, required=True),
    "dev": Key(convert=interface_name),
    "label": Key(convert=string),
}


def vip(value: Any) -> Vip:
    """A VIP: ``"192.0.2.1/24"`` or ``{ address = "...", dev = "eth1", label = "eth1:vip" }``."""
    if isinstance(value, str):
        return Vip(address=vip_address(value))
    fields = inline_table(value, VIP_KEYS, "an address string or a table { address, dev, label }")
    return Vip(**fields)


def weight(value: Any) -> int:
    """A track weight -253..253 (keepalived's range)."""
    return integer(-MAX_WEIGHT, MAX_WEIGHT)(value)


TRACK_CHECK_KEYS = {"name": Key(convert=string, required=True), "weight": Key(convert=weight)}


def track_check(value: Any) -> TrackCheck:
    """``"name"`` or ``{ name = "...", weight = -30 }``."""
    if isinstance(value, str):
        return TrackCheck(name=string(value))
    return TrackCheck(**inline_table(value, TRACK_CHECK_KEYS, "a check name or a table { name, weight }"))


def auth_type(value: Any) -> str:
    """Only "PASS": RFC 3768 removed the IPsec AH type that RFC 2338 had."""
    text = string(value)
    if text == "AH":
        raise Invalid("'AH' is not supported (RFC 3768 removed AH; use PASS or none)")
    if text != "PASS":
        raise Invalid(f"{text!r} is not one of: PASS")
    return text


def auth_pass(value: Any) -> str:
    """The simple-text password: 1..8 bytes of UTF-8, because the advert field is 8 octets."""
    text = string(value)
    size = len(text.encode())
    if size > MAX_AUTH_PASS:
        raise Invalid(f"{size} bytes is longer than the {MAX_AUTH_PASS} bytes VRRPv2 carries (RFC 3768 §5.3.10)")
    return text


AUTH_KEYS = {
    "auth_type": Key(convert=auth_type, required=True),
    "auth_pass": Key(convert=auth_pass, required=True),
}


def authentication(value: Any) -> Authentication:
    """``{ auth_type = "PASS", auth_pass = "..." }``."""
    return Authentication(**inline_table(value, AUTH_KEYS, "a table { auth_type, auth_pass }"))


# --- checks that need the rest of the instance (called by hafm.config.loader) ----------------------


def advert_int_problem(advert_int: float, version: int) -> str | None:
    """RFC 3768 carries whole seconds in 8 bits; RFC 5798 carries centiseconds in 12 bits."""
    shown = fmt_number(advert_int)
    if version == 2:
        if not advert_int.is_integer() or not 1 <= advert_int <= 255:
            return f"{shown} is not valid for VRRPv2: whole seconds 1..255"
        return None
    if not 0.01 <= advert_int <= 40.95:
        return f"{shown} is out of range 0.01..40.95 for VRRPv3"
    if abs(advert_int * 100 - round(advert_int * 100)) > 1e-6:
        return f"{shown} is not a multiple of 0.01 (VRRPv3 counts centiseconds)"
    return None


def label_problem(vip: Vip, interface: str | None) -> str | None:
    """iproute2's rule: a label is the device name or starts with "DEV:"; IPv6 has no labels."""
    if vip.label is None:
        return None
    if vip.address.version == 6:
        return "labels are IPv4-only"
    dev = vip.dev or interface
    if len(vip.label) > MAX_IFNAME:
        return f"{vip.label!r} is longer than {MAX_IFNAME} characters"
    if dev is not None and vip.label != dev and not vip.label.startswith(f"{dev}:"):
        return f"{vip.label!r} must be {dev!r} or start with '{dev}:'"
    return None


# --- table schemas ----------------------------------------------------------------------------

NOTIFY_KEYS = {
    name: Key(convert=command) for name in ("notify_master", "notify_backup", "notify_fault", "notify_stop", "notify")
}

GLOBAL_KEYS: dict[str, Key] = {
    "router_id": Key(convert=string),
    "vrrp_version": Key(convert=version),
    "include": Key(convert=array(string)),
    "plugin_dirs": Key(convert=array(string)),
    "control_socket": Key(convert=absolute_path),
    "log_level": Key(convert=choice("debug", "info", "warning", "error")),
    "notify_fifo": Key(convert=absolute_path),
    "notify_wait": Key(convert=boolean),
    "notify_timeout": Key(convert=number(0, 3600, above=True)),
}

INSTANCE_KEYS: dict[str, Key] = {
    "state": Key(convert=choice("MASTER", "BACKUP")),
    "interface": Key(convert=interface_name, required=True),
    "virtual_router_id": Key(convert=integer(1, 255), required=True),
    "priority": Key(convert=integer(1, 255)),
    # The range depends on the version; hafm.config.loader checks it once the version is known.
    "advert_int": Key(convert=number(0, above=True)),
    "version": Key(convert=version),
    "nopreempt": Key(convert=boolean),
    "preempt_delay": Key(convert=number(0, 1000)),
    "authentication": Key(convert=authentication),
    "virtual_ipaddress": Key(convert=array(vip)),
    "virtual_ipaddress_excluded": Key(convert=array(vip)),
    "unicast_src_ip": Key(convert=ip_address),
    "unicast_peer": Key(convert=array(ip_address)),
    "track_interface": Key(convert=array(interface_name)),
    "track_check": Key(convert=array(track_check)),
    **NOTIFY_KEYS,
    "garp_master_delay": Key(convert=number(0, 1000)),
    "garp_master_repeat": Key(convert=integer(0, 255)),
    "garp_master_refresh": Key(convert=number(0, 86400)),
    "v3_checksum_as_v2": Key(convert=boolean),
    "resign_below": Key(convert=integer(1, 254)),
}

SYNC_GROUP_KEYS: dict[str, Key] = {
    "group": Key(convert=array(string), required=True),
    **NOTIFY_KEYS,
}

# Only the keys every check type shares; the rest of a [check.NAME] table belongs to the check type.
CHECK_COMMON_KEYS: dict[str, Key] = {
    "type": Key(convert=string, required=True),
    "interval": Key(convert=number(0, above=True)),
    "timeout": Key(convert=number(0, above=True)),
    "fall": Key(convert=integer(1)),
    "rise": Key(convert=integer(1)),
    "weight": Key(convert=weight),
    "init_state": Key(convert=choice("up", "down")),
}
CHECK_COMMON_KEYS["fast_interval"] = CHECK_COMMON_KEYS["interval"]  # the same rule, whatever it becomes

TOP_LEVEL_TABLES = ("global", "vrrp_instance", "vrrp_sync_group", "check")
