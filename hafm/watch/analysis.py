"""What is wrong on a VRRP segment: a pure view of every speaker heard, and the findings that break clusters.

:class:`SegmentView` takes :class:`Heard` packets (time, IP source, destination,
TTL and the VRRP message bytes) and keeps one :class:`Row` per (VRID, IP family,
source).  It never reads a clock or a socket: the capture shell in
:mod:`hafm.watch.capture` feeds it, tests feed it packets built with scapy and a
fake clock.  Messages are parsed by the daemon's own codec, so watch and the
daemon agree on what a valid advert is.

Virtual routers are grouped by (VRID, family): RFC 5798 §7 keeps the IPv4 and
IPv6 VRID spaces apart, so VRID 51 over IPv4 and VRID 51 over IPv6 are two
different routers and never conflict.
"""

from __future__ import annotations

import enum
import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from ipaddress import ip_address
from typing import Literal

from hafm.config.model import Config
from hafm.errors import DropReason, MalformedAdvert
from hafm.vrrp.codec import REQUIRED_TTL, Advertisement, IPAddress, decode
from hafm.vrrp.constants import MIN_PRIORITY, master_down_interval

__all__ = [
    "CONFLICT_EVENTS",
    "Checksum",
    "Expected",
    "Finding",
    "FindingKind",
    "Heard",
    "Row",
    "SegmentView",
    "combine",
    "expectations_from_config",
    "parse_expect",
]

# Two sources count as Masters at the same time when their adverts interleave
# (A, B, A) less than a Master_Down_Interval apart (the longest any Backup
# tolerates silence), and did so this many times.  A preemption can interleave
# once or twice (the old Master sends before it hears the new one); two Masters
# do it on every advert.
CONFLICT_EVENTS = 3

Family = Literal[4, 6]


class Checksum(enum.Enum):
    """Which checksum rule the sender's adverts validate with."""

    V2 = "v2"  # VRRPv2: the message alone, the only rule
    RFC = "rfc"  # VRRPv3 with the pseudo-header (RFC 5798 §5.2.8)
    AS_V2 = "as_v2"  # VRRPv3 over IPv4 without it: keepalived's v3_checksum_as_v2
    EITHER = "either"  # both rules validate (the pseudo-header sums to zero): compatible with both


class FindingKind(enum.Enum):
    """What kind of problem a :class:`Finding` reports."""

    TWO_MASTERS = "two_masters"  # two sources with priority > 0 advertise at the same time
    ADDRESS_MISMATCH = "address_mismatch"  # the same virtual router with different address lists
    INTERVAL_MISMATCH = "interval_mismatch"  # ... with different advert intervals
    VERSION_MISMATCH = "version_mismatch"  # v2 and v3 on one VRID
    CHECKSUM_MISMATCH = "checksum_mismatch"  # v3 IPv4 with and without the pseudo-header on one VRID
    BAD_TTL = "bad_ttl"  # TTL / hop limit not 255: every RFC-conforming peer drops these adverts
    UNKNOWN_ROUTER = "unknown_router"  # a source not in --expect / the configured unicast peers
    CONFIG_MISMATCH = "config_mismatch"  # one of our VRIDs advertised unlike our configuration says
    MALFORMED = "malformed"  # a packet no peer will accept (bad checksum in both rules, bad length, ...)


@dataclass(frozen=True, kw_only=True)
class Heard:
    """One IP packet of protocol 112 as captured: ``payload`` is the VRRP message, IP header stripped."""

    at: float  # seconds, on the caller's clock
    source: IPAddress
    destination: IPAddress
    ttl: int  # IPv4 TTL or IPv6 hop limit
    payload: bytes


@dataclass(frozen=True, kw_only=True)
class Row:
    """The latest advert of one source for one virtual router, and how often it was heard."""

    vrid: int
    family: Family
    source: IPAddress
    destination: IPAddress  # 224.0.0.18 / ff02::12, or a unicast peer
    version: Literal[2, 3]
    priority: int
    interval: float  # seconds
    auth_type: int | None  # v2 only: 0 none, 1 simple text, 2 IP AH; None for v3
    addresses: tuple[IPAddress, ...]
    checksum: Checksum
    ttl: int
    first_seen: float
    last_seen: float
    count: int
    bad_ttl: int | None = None  # the last TTL other than 255 this source sent with, if any


@dataclass(frozen=True, kw_only=True)
class Finding:
    """One thing that breaks (or will break) a cluster, as a one-line ``message`` naming VRID and sources."""

    kind: FindingKind
    vrid: int
    family: Family
    sources: tuple[IPAddress, ...]
    message: str


@dataclass(frozen=True, kw_only=True)
class Expected:
    """What one of *our* virtual routers should look like, from ``--expect`` or the local hafm config.

    Empty ``routers`` means any source is fine; ``None`` fields are not checked.
    """

    vrid: int
    family: Family | None = None  # None: both families (an --expect without a config)
    routers: frozenset[IPAddress] = frozenset()
    origin: str = "--expect"  # where the expectation came from, for the message
    version: Literal[2, 3] | None = None
    interval: float | None = None
    addresses: frozenset[IPAddress] | None = None
    checksum: Checksum | None = None


def parse_expect(text: str) -> Expected:
    """Parse one ``--expect VRID=ADDR[,ADDR...]``; raises ``ValueError`` with a one-line reason."""
    vrid_text, sep, routers_text = text.partition("=")
    if not sep or not routers_text.strip():
        raise ValueError(f"{text!r} is not VRID=ADDR[,ADDR...]")
    try:
        vrid = int(vrid_text)
    except ValueError:
        raise ValueError(f"{text!r}: VRID {vrid_text!r} is not an integer") from None
    if not 1 <= vrid <= 255:
        raise ValueError(f"{text!r}: VRID {vrid} is outside 1..255")
    routers = set()
    for part in routers_text.split(","):
        try:
            routers.add(ip_address(part.strip()))
        except ValueError:
            raise ValueError(f"{text!r}: {part.strip()!r} is not an IP address") from None
    return Expected(vrid=vrid, routers=frozenset(routers))


def combine(expects: Iterable[Expected], configured: Iterable[Expected]) -> list[Expected]:
    """Configured instances, with the routers an ``--expect`` names for their VRID; then the other ``--expect``."""
    routers: dict[int, frozenset[IPAddress]] = {}
    for expect in expects:
        routers[expect.vrid] = routers.get(expect.vrid, frozenset()) | expect.routers
    combined = [replace(c, routers=routers.get(c.vrid, c.routers)) for c in configured]
    covered = {c.vrid for c in combined}
    return combined + [
        Expected(vrid=vrid, routers=named) for vrid, named in sorted(routers.items()) if vrid not in covered
    ]


def expectations_from_config(config: Config) -> list[Expected]:
    """One :class:`Expected` per configured instance: its VRID, version, interval, VIPs and unicast peers."""
    expected = []
    for instance in config.instances.values():
        routers = set(instance.unicast_peer)
        if routers and instance.unicast_src_ip is not None:
            routers.add(instance.unicast_src_ip)
        if instance.version == 2:
            checksum = Checksum.V2
        else:
            as_v2 = instance.v3_checksum_as_v2 and instance.family == 4
            checksum = Checksum.AS_V2 if as_v2 else Checksum.RFC
        expected.append(
            Expected(
                vrid=instance.virtual_router_id,
                family=instance.family,
                routers=frozenset(routers),
                origin=f"{instance.name} in {config.path}",
                version=instance.version,
                interval=instance.advert_int,
                addresses=frozenset(vip.address.ip for vip in instance.virtual_ipaddress) or None,
                checksum=checksum,
            )
        )
    return expected


@dataclass
class SegmentView:
    """Every VRRP speaker heard on a segment, and what is wrong with them.

    ``vrid`` limits the view to one VRID; ``expected`` describes our own virtual routers.
    """

    vrid: int | None = None
    expected: Iterable[Expected] = ()
    _rows: dict[tuple[int, int, IPAddress], Row] = field(default_factory=dict, init=False)
    # (vrid, family, lower source, higher source) -> interleaved adverts (see CONFLICT_EVENTS)
    _conflicts: dict[tuple[int, int, IPAddress, IPAddress], int] = field(default_factory=dict, init=False)
    # (source, vrid, reason) -> (count, last detail); vrid None when the packet is too short to say.
    _malformed: dict[tuple[IPAddress, int | None, DropReason], tuple[int, str]] = field(
        default_factory=dict, init=False
    )

    def __post_init__(self) -> None:
        self.expected = tuple(self.expected)

    def observe(self, heard: Heard) -> Row | None:
        """Account for one captured packet; the updated row, or None if it was filtered out or malformed."""
        vrid = heard.payload[1] if len(heard.payload) >= 2 else None
        if self.vrid is not None and vrid != self.vrid:
            return None
        try:
            advert, checksum = _decode(heard)
        except MalformedAdvert as exc:
            bad = (heard.source, vrid, exc.reason)
            count, _ = self._malformed.get(bad, (0, ""))
            self._malformed[bad] = (count + 1, exc.detail)
            return None
        family: Family = 4 if heard.source.version == 4 else 6
        key = (advert.vrid, family, heard.source)
        previous = self._rows.get(key)
        if advert.priority > 0 and previous is not None:
            self._note_interleaving(previous, heard.at, advert.interval)
        row = Row(
            vrid=advert.vrid,
            family=family,
            source=heard.source,
            destination=heard.destination,
            version=advert.version,
            priority=advert.priority,
            interval=advert.interval,
            auth_type=advert.auth_type if advert.version == 2 else None,
            addresses=advert.addresses,
            checksum=checksum,
            ttl=heard.ttl,
            first_seen=previous.first_seen if previous else heard.at,
            last_seen=heard.at,
            count=previous.count + 1 if previous else 1,
            bad_ttl=heard.ttl if heard.ttl != REQUIRED_TTL else (previous.bad_ttl if previous else None),
        )
        self._rows[key] = row
        return row

    def _note_interleaving(self, previous: Row, now: float, interval: float) -> None:
        """Count another source of the same router heard since this source's previous advert."""
        for other in self._rows.values():
            if (other.vrid, other.family) != (previous.vrid, previous.family) or other.source == previous.source:
                continue
            window = master_down_interval(
                MIN_PRIORITY, version=other.version, master_adver_interval=max(interval, other.interval)
            )
            if other.priority > 0 and previous.last_seen < other.last_seen <= now and now - other.last_seen <= window:
                first, second = sorted((previous.source, other.source), key=_address_order)
                pair = (previous.vrid, previous.family, first, second)
                self._conflicts[pair] = self._conflicts.get(pair, 0) + 1

    def rows(self) -> list[Row]:
        """Every speaker heard, by VRID, family, source."""
        return sorted(self._rows.values(), key=lambda row: (row.vrid, row.family, _address_order(row.source)))

    def findings(self) -> list[Finding]:
        """Everything seen so far that breaks a cluster, grouped by VRID and family."""
        found: list[Finding] = []
        groups = itertools.groupby(self.rows(), key=lambda row: (row.vrid, row.family))
        for (vrid, family), group in groups:
            rows = list(group)
            found += self._two_masters(vrid, family)
            found += _mismatches(rows)
            found += _bad_ttls(rows)
            found += _against_expectations(rows, [e for e in self.expected if _covers(e, vrid, family)])
        found += self._malformed_findings()
        return found

    def _two_masters(self, vrid: int, family: Family) -> list[Finding]:
        found = []
        for (c_vrid, c_family, a, b), events in self._conflicts.items():
            if (c_vrid, c_family) == (vrid, family) and events >= CONFLICT_EVENTS:
                rows = [self._rows[(vrid, family, a)], self._rows[(vrid, family, b)]]
                prios = " and ".join(f"{row.source} (priority {row.priority})" for row in rows)
                text = f"two Masters: {prios} advertise at the same time ({events} interleaved adverts)"
                found.append(_finding(FindingKind.TWO_MASTERS, vrid, family, (a, b), text))
        return found

    def _malformed_findings(self) -> list[Finding]:
        found = []
        for (source, vrid, reason), (count, detail) in sorted(
            self._malformed.items(), key=lambda item: (item[0][1] or 0, _address_order(item[0][0]), item[0][2].value)
        ):
            family: Family = 4 if source.version == 4 else 6
            text = f"{count} advert(s) from {source} no peer accepts: {reason.value} ({detail})"
            found.append(_finding(FindingKind.MALFORMED, vrid or 0, family, (source,), text))
        return found


def _decode(heard: Heard) -> tuple[Advertisement, Checksum]:
    """Decode with whichever checksum rule validates; TTL is judged apart (a row still shows a bad-TTL sender)."""

    def attempt(as_v2: bool) -> Advertisement:
        return decode(
            heard.payload,
            source=heard.source,
            destination=heard.destination,
            ttl=REQUIRED_TTL,
            checksum_as_v2=as_v2,
        )

    try:
        advert = attempt(False)
    except MalformedAdvert as exc:
        if exc.reason is not DropReason.BAD_CHECKSUM or heard.source.version != 4 or heard.payload[0] >> 4 != 3:
            raise
        try:
            return attempt(True), Checksum.AS_V2
        except MalformedAdvert:
            raise MalformedAdvert(DropReason.BAD_CHECKSUM, "neither with nor without the pseudo-header") from None
    if advert.version == 2:
        return advert, Checksum.V2
    if heard.source.version == 4:
        try:
            attempt(True)
        except MalformedAdvert:
            return advert, Checksum.RFC
        return advert, Checksum.EITHER
    return advert, Checksum.RFC


def _address_order(address: IPAddress) -> tuple[int, int]:
    return (address.version, int(address))


def _covers(expected: Expected, vrid: int, family: Family) -> bool:
    return expected.vrid == vrid and expected.family in (None, family)


def _names(addresses: Iterable[IPAddress]) -> str:
    return ", ".join(str(a) for a in sorted(addresses, key=_address_order)) or "none"


def _split(rows: list[Row], value: Mapping[IPAddress, object]) -> str:
    """``VALUE from SRC, SRC; VALUE from SRC``: the evidence of a mismatch, the odd one out easy to spot."""
    by_value: dict[object, list[IPAddress]] = {}
    for row in rows:
        by_value.setdefault(value[row.source], []).append(row.source)
    return "; ".join(f"{shown} from {_names(sources)}" for shown, sources in by_value.items())


def _mismatch(kind: FindingKind, rows: list[Row], what: str, value: Mapping[IPAddress, object]) -> list[Finding]:
    if len(set(value.values())) < 2:
        return []
    sources = tuple(row.source for row in rows)
    return [_finding(kind, rows[0].vrid, rows[0].family, sources, f"different {what}: {_split(rows, value)}")]


def _mismatches(rows: list[Row]) -> list[Finding]:
    """Properties every router of one VRID must share (RFC 3768/5798 §7.1 and keepalived's checks)."""
    found = _mismatch(
        FindingKind.ADDRESS_MISMATCH,
        rows,
        "address lists",
        {row.source: _AddressSet(row.addresses) for row in rows},
    )
    found += _mismatch(
        FindingKind.INTERVAL_MISMATCH, rows, "advert intervals", {row.source: _Seconds(row.interval) for row in rows}
    )
    found += _mismatch(
        FindingKind.VERSION_MISMATCH, rows, "VRRP versions", {row.source: f"v{row.version}" for row in rows}
    )
    # Only v3 over IPv4 has two rules; an EITHER sender is understood by both sides.
    variants = [row for row in rows if row.checksum in (Checksum.RFC, Checksum.AS_V2)]
    found += _mismatch(
        FindingKind.CHECKSUM_MISMATCH,
        variants,
        "VRRPv3 checksum rules (v3_checksum_as_v2)",
        {row.source: _CHECKSUM_TEXT[row.checksum] for row in variants},
    )
    return found


_CHECKSUM_TEXT = {
    Checksum.RFC: "with pseudo-header (RFC 5798)",
    Checksum.AS_V2: "without pseudo-header (v3_checksum_as_v2)",
}


class _AddressSet(frozenset[IPAddress]):
    """Addresses compared as a set (order on the wire does not matter to peers), shown sorted."""

    def __str__(self) -> str:
        return _names(self)


class _Seconds(float):
    def __str__(self) -> str:
        return f"{float(self):g} s"


def _bad_ttls(rows: list[Row]) -> list[Finding]:
    return [
        _about(
            row,
            FindingKind.BAD_TTL,
            f"sends with TTL/hop limit {row.bad_ttl}, not {REQUIRED_TTL}: peers drop its adverts",
        )
        for row in rows
        if row.bad_ttl is not None
    ]


def _against_expectations(rows: list[Row], expected: list[Expected]) -> list[Finding]:
    found: list[Finding] = []
    for expectation in expected:
        expected_routers = f"expected {_names(expectation.routers)}, from {expectation.origin}"
        found += [
            _finding(
                FindingKind.UNKNOWN_ROUTER,
                row.vrid,
                row.family,
                (row.source,),
                f"unknown router {row.source} ({expected_routers})",
            )
            for row in rows
            if expectation.routers
            and row.source.version in {router.version for router in expectation.routers}
            and row.source not in expectation.routers
        ]
        for row in rows:
            found += _config_mismatch(row, expectation)
    return found


def _config_mismatch(row: Row, expectation: Expected) -> list[Finding]:
    differences = []
    if expectation.version is not None and row.version != expectation.version:
        differences.append(f"version v{row.version}, configured v{expectation.version}")
    if expectation.interval is not None and row.interval != expectation.interval:
        differences.append(f"interval {row.interval:g} s, configured {expectation.interval:g} s")
    if expectation.addresses is not None and set(row.addresses) != expectation.addresses:
        differences.append(f"addresses {_names(row.addresses)}, configured {_names(expectation.addresses)}")
    if (
        expectation.checksum is not None
        and row.version == expectation.version
        and Checksum.EITHER not in (row.checksum, expectation.checksum)
        and row.checksum != expectation.checksum
    ):
        differences.append(f"checksum {row.checksum.value}, configured {expectation.checksum.value}")
    if not differences:
        return []
    return [_about(row, FindingKind.CONFIG_MISMATCH, f"differs from {expectation.origin}: " + "; ".join(differences))]


def _finding(kind: FindingKind, vrid: int, family: Family, sources: Iterable[IPAddress], text: str) -> Finding:
    """A finding whose message starts with the virtual router it is about (VRID 0: too short to say)."""
    return Finding(
        kind=kind,
        vrid=vrid,
        family=family,
        sources=tuple(sources),
        message=f"VRID {vrid or '?'} IPv{family}: {text}",
    )


def _about(row: Row, kind: FindingKind, text: str) -> Finding:
    """A finding about one source: ``text`` follows its address."""
    return _finding(kind, row.vrid, row.family, (row.source,), f"{row.source} {text}")
