"""How hafm's TOML configuration is checked: one converter per value, and the field metadata that ties keys to them.

Keys are declared once, as the fields of the dataclasses in :mod:`hafm.config.model`: a field carrying
:func:`key` metadata is a TOML key (its converter, its default from the dataclass, required when the field
has no default).  :func:`toml_keys` reads those fields, so validation (:mod:`hafm.config.loader`), the
effective-config printout of ``check-config`` and ``hafm convert``'s key order all follow the model.

Every converter takes the raw TOML value and returns the typed value, or raises :class:`Invalid`
with messages meant to follow ``FILE: TABLE.KEY`` on one line (see :mod:`hafm.config.loader`).  Checks that
need more than one key (the VRRP version and advert_int, families, cross-references) live in
:mod:`hafm.config.loader`; this module only knows single values.
"""

from __future__ import annotations

import dataclasses
import datetime
import difflib
import ipaddress
import math
import shlex
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from hafm.processes import relative_program_problem
from hafm.vrrp.codec import Advertisement, IPAddress, encode

if TYPE_CHECKING:
    from hafm.config.model import Vip

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
    """One allowed key of a table: how to convert its value and whether it must be present.

    ``attribute`` is the model field the value fills; ``parent`` is set for keys of a record flattened
    into the table (``notify_master`` fills ``notify.master``).
    """

    convert: Converter
    required: bool = False
    attribute: str = ""
    parent: str = ""
    parent_type: type | None = None

    def value_in(self, record: Any) -> Any:
        """This key's value in a model object (``record.notify.master`` for ``notify_master``)."""
        return getattr(getattr(record, self.parent) if self.parent else record, self.attribute)


# --- the field metadata that declares keys ------------------------------------------------------------

_META = "hafm.config"


@dataclass(frozen=True, kw_only=True)
class _Declared:
    convert: Converter | None = None
    toml: str | None = None  # the TOML name when it differs from the field name
    required: bool | None = None  # None: required exactly when the field has no default
    flatten: type | None = None  # a record whose keys sit directly in this table
    derived: str = ""  # not a key: computed by the loader, shown with this note


def key(convert: Converter, *, toml: str | None = None, required: bool | None = None) -> dict[str, Any]:
    """Field metadata: this field is the TOML key ``toml`` (default: the field's name), read with ``convert``."""
    return {_META: _Declared(convert=convert, toml=toml, required=required)}


def flattened(record: type) -> dict[str, Any]:
    """Field metadata: the keys of dataclass ``record`` appear directly in this table (the notify keys)."""
    return {_META: _Declared(flatten=record)}


def derived(note: str) -> dict[str, Any]:
    """Field metadata: not a key; the loader computes it and ``check-config`` shows it with ``note``."""
    return {_META: _Declared(derived=note)}


@dataclass(frozen=True, kw_only=True)
class Shown:
    """One line of the effective configuration: a key (``key`` set) or a derived field."""

    name: str
    key: Key | None
    note: str = ""

    def value_in(self, record: Any) -> Any:
        return self.key.value_in(record) if self.key is not None else getattr(record, self.name)


def shown_fields(model: type) -> tuple[Shown, ...]:
    """The keys and derived fields of dataclass ``model``, in declaration order."""
    shown: list[Shown] = []
    for f in dataclasses.fields(model):
        declared = f.metadata.get(_META)
        if declared is None:
            continue
        if declared.derived:
            shown.append(Shown(name=f.name, key=None, note=declared.derived))
        elif declared.flatten is not None:
            for inner in shown_fields(declared.flatten):
                if inner.key is not None:
                    nested = dataclasses.replace(inner.key, parent=f.name, parent_type=declared.flatten)
                    shown.append(Shown(name=inner.name, key=nested))
        else:
            assert declared.convert is not None
            has_default = f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
            required = not has_default if declared.required is None else declared.required
            spec = Key(convert=declared.convert, required=required, attribute=f.name)
            shown.append(Shown(name=declared.toml or f.name, key=spec))
    return tuple(shown)


def toml_keys(model: type) -> dict[str, Key]:
    """``{TOML key: Key}`` of dataclass ``model``, in declaration order: the table's schema."""
    return {entry.name: entry.key for entry in shown_fields(model) if entry.key is not None}


T = TypeVar("T")


def build(model: type[T], values: Mapping[str, Any], **extra: Any) -> T:
    """Construct ``model`` from converted values keyed by TOML name, plus ``extra`` fields (``name``...)."""
    keys = toml_keys(model)
    direct: dict[str, Any] = dict(extra)
    nested: dict[str, dict[str, Any]] = {}
    for name, value in values.items():
        spec = keys[name]
        if spec.parent:
            nested.setdefault(spec.parent, {})[spec.attribute] = value
        else:
            direct[spec.attribute] = value
    for spec in keys.values():
        if spec.parent and spec.parent_type is not None and spec.parent not in direct:
            direct[spec.parent] = spec.parent_type(**nested.get(spec.parent, {}))
    return model(**direct)


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
        try:
            seconds = float(value)
        except OverflowError:  # a TOML integer may have thousands of digits
            raise Invalid(f"a {len(str(value))}-digit integer is too large") from None
        if not math.isfinite(seconds):
            raise Invalid(f"expected a finite number, got {describe(value)}")
        shown = fmt_number(value)
        if above and not value > lo:
            raise Invalid(f"{shown} is out of range: must be greater than {fmt_number(lo)}")
        if not above and value < lo or hi is not None and value > hi:
            upper = fmt_number(hi) if hi is not None else ""
            raise Invalid(f"{shown} is out of range {fmt_number(lo)}..{upper}")
        return seconds

    return convert


def off_or_number(lo: float, hi: float) -> Converter:
    """0 (off), or a number of seconds in ``lo..hi``: a period so short it would flood the wire is refused."""
    in_range = number(lo, hi)

    def convert(value: Any) -> float:
        seconds = number(0, hi)(value)
        if seconds == 0:
            return seconds
        try:
            return in_range(value)
        except Invalid:
            raise Invalid(
                f"{fmt_number(value)} is out of range: 0 (off) or {fmt_number(lo)}..{fmt_number(hi)}"
            ) from None

    return convert


def boolean(value: Any) -> bool:
    """A TOML boolean (``true``/``false``), not 0/1 or "yes"."""
    if not isinstance(value, bool):
        raise Invalid(f"expected a boolean (true or false), got {describe(value)}")
    return value


def string(value: Any) -> str:
    """A non-empty string without NUL (no path, argv word or netlink name can hold one)."""
    if not isinstance(value, str):
        raise Invalid(f"expected a string, got {describe(value)}")
    if not value:
        raise Invalid("must not be empty")
    if "\0" in value:
        raise Invalid(f"{value!r} contains a NUL character")
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


def http_url(value: Any) -> str:
    """An http(s) URL without a path: an etcd client endpoint such as ``http://198.51.100.60:2379``."""
    text = string(value)
    scheme, _, rest = text.partition("://")
    if scheme not in ("http", "https") or not rest or "/" in rest.rstrip("/") or any(c.isspace() for c in rest):
        raise Invalid(f"{text!r} is not an endpoint like http://HOST:PORT or https://HOST:PORT")
    return text.rstrip("/")


def key_prefix(value: Any) -> str:
    """An etcd key prefix: absolute and ending in ``/``, so one cluster's keys never run into another's."""
    text = string(value)
    if not (text.startswith("/") and text.endswith("/")):
        raise Invalid(f"{text!r} must start and end with '/'")
    return text


def key_segment(value: Any) -> str:
    """One segment of an etcd key: a visible word without '/'."""
    text = string(value)
    if not text or "/" in text or any(not c.isprintable() or c.isspace() for c in text):
        raise Invalid(f"{text!r} must be a non-empty word without '/' or spaces")
    return text


def interface_name(value: Any) -> str:
    """A Linux interface name, as the kernel's dev_valid_name() accepts it."""
    text = string(value)
    if len(text) > MAX_IFNAME or text in (".", "..") or any(c in "/:" or not c.isprintable() for c in text):
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
    problem = relative_program_problem(words[0])
    if problem:
        raise Invalid(problem)
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


def split_host_port(text: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[IPV6]:PORT`` to ``(host, port)``: HOST is an IP address or ``localhost``, PORT 1..65535.

    A name other than localhost is refused: resolving it at start-up would make the listening address
    depend on DNS, and a scrape endpoint bound to the wrong interface is a leak, not an outage.
    """
    host, colon, port_text = text.rpartition(":")
    if not colon or not host:
        raise Invalid(f'{text!r} is not HOST:PORT (e.g. "127.0.0.1:9650" or "[::1]:9650")')
    bracketed = host.startswith("[") and host.endswith("]")
    if bracketed:
        host = host[1:-1]
    if host != "localhost":
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            raise Invalid(f"{host!r} in {text!r} is not an IP address or localhost") from None
        if (address.version == 6) != bracketed:
            form = "in brackets, as [ADDRESS]:PORT" if address.version == 6 else "without brackets"
            raise Invalid(f"{text!r}: write an IPv{address.version} address {form}")
    elif bracketed:
        raise Invalid(f"{text!r}: only an IPv6 address goes in brackets")
    if not (port_text.isascii() and port_text.isdigit()) or not 1 <= int(port_text) <= 65535:
        raise Invalid(f"port {port_text!r} in {text!r} is not a number 1..65535")
    return host, int(port_text)


def listen_address(value: Any) -> str:
    """A TCP listening address ``HOST:PORT`` (see :func:`split_host_port`); kept as written."""
    text = string(value)
    split_host_port(text)
    return text


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
        address = ipaddress.ip_interface(text)
    except ValueError:
        raise Invalid(f"{text!r} is not a valid IP address with optional /prefix") from None
    problem = _not_a_host(address.ip)
    if problem:
        raise Invalid(f"{text} {problem}; a virtual address must be a unicast host address")
    if address.network.prefixlen == 0:
        raise Invalid(f"{text}: a /0 prefix would claim every address")
    network = address.network
    if address.version == 4 and network.prefixlen <= 30 and address.ip == network.broadcast_address:
        raise Invalid(f"{text}: {address.ip} is the broadcast address of {network}")
    return address


def _not_a_host(address: IPAddress, *, loopback_ok: bool = False) -> str | None:
    """Why ``address`` cannot be a VIP (or, with ``loopback_ok``, a unicast peer), or None."""
    if address.is_unspecified:
        return "is the unspecified address"
    if address.is_multicast:
        return "is a multicast address"
    if address.is_loopback and not loopback_ok:
        return "is a loopback address"
    if address == ipaddress.IPv4Address("255.255.255.255"):
        return "is the broadcast address"
    return None


def unicast_address(value: Any) -> IPAddress:
    """A unicast peer or source: a single address that can send or receive a unicast advert."""
    address = ip_address(value)
    problem = _not_a_host(address, loopback_ok=True)
    if problem:
        raise Invalid(f"{address} {problem}; unicast adverts need a unicast address")
    return address


def record(model: type, what: str, *, shorthand: str | None = None) -> Converter:
    """A small inline table read into dataclass ``model`` by its field metadata (a VIP, a track_check entry,
    authentication); with ``shorthand``, a plain string is that one key (``"192.0.2.1/24"`` is the address)."""

    def convert(value: Any) -> Any:
        keys = toml_keys(model)
        if shorthand is not None and isinstance(value, str):
            return build(model, {shorthand: keys[shorthand].convert(value)})
        return build(model, inline_table(value, keys, what))

    return convert


def weight(value: Any) -> int:
    """A track weight -253..253 (keepalived's range)."""
    return integer(-MAX_WEIGHT, MAX_WEIGHT)(value)


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


# The advert must fit one IP packet on an Ethernet MTU (hafm never fragments it).
ADVERT_MTU = 1500
_IP_HEADER = {4: 20, 6: 40}
_SAMPLE: dict[int, IPAddress] = {4: ipaddress.IPv4Address("192.0.2.1"), 6: ipaddress.IPv6Address("2001:db8::1")}


def max_vips(version: int, family: int) -> int:
    """How many addresses one advert of ``version`` over IPv``family`` carries: at most 255 (an 8-bit count)
    and no more than fit ``ADVERT_MTU`` bytes with the IP header.  Sizes come from the codec itself."""
    sample = _SAMPLE[family]

    def size(count: int) -> int:
        addresses = (sample,) * count
        advert = Advertisement(version=2 if version == 2 else 3, vrid=1, priority=1, advert_int=1, addresses=addresses)
        return len(encode(advert, source=sample, destination=sample))

    fixed, per_address = size(0), size(1) - size(0)
    return min(255, (ADVERT_MTU - _IP_HEADER[family] - fixed) // per_address)


def vip_count_problem(count: int, version: int, family: int) -> str | None:
    """Too many VIPs for one advert: today's instance would crash at its first takeover."""
    limit = max_vips(version, family)
    if count <= limit:
        return None
    if limit == 255:
        return f"{count} addresses; one advertisement carries at most 255 (its address count is 8 bits)"
    return (
        f"{count} IPv{family} addresses do not fit one VRRPv{version} advertisement in a {ADVERT_MTU}-byte MTU "
        f"(at most {limit}); split them across instances"
    )


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


# --- tables -------------------------------------------------------------------------------------

TOP_LEVEL_TABLES = ("global", "vrrp_instance", "vrrp_sync_group", "check", "witness")
