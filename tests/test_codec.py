"""Tests for hafm.vrrp.codec: hand-checked vectors, every drop reason, fuzzing, and scapy cross-checks."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Address, ip_address

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP
from scapy.layers.inet6 import IPv6
from scapy.layers.vrrp import VRRP, VRRPv3
from scapy.packet import Packet, Raw

from hafm.config.model import IPAddress
from hafm.errors import DropReason, MalformedAdvert
from hafm.vrrp.codec import Advertisement, checksum, decode, encode, parse_ipv4_packet

SRC4 = IPv4Address("198.51.100.1")
MCAST4 = IPv4Address("224.0.0.18")
VIP4 = IPv4Address("198.51.100.10")
SRC6 = IPv6Address("2001:db8::1")
MCAST6 = IPv6Address("ff02::12")
VIP6 = IPv6Address("2001:db8::10")

# ---------------------------------------------------------------------------
# Hand-checked vectors.  Each checksum was summed on paper (16-bit words,
# end-around carry, then complemented) and is shown in the comment.
# ---------------------------------------------------------------------------

V2_PASS = Advertisement(
    version=2, vrid=51, priority=100, advert_int=1, addresses=(VIP4,), auth_type=1, auth_data=b"1111"
)
# 2133 6401 0101 [chk] c633 640a 3131 3131 0000 0000
# sum = 0x212d4 -> 0x12d6 -> ~ = 0xed29
V2_PASS_WIRE = bytes.fromhex("2133 6401 0101 ed29 c633 640a 3131 3131 0000 0000")

V3_V4 = Advertisement(version=3, vrid=51, priority=100, advert_int=100, addresses=(VIP4,))
# RFC 5798 §5.2.8: pseudo-header c633 6401 | e000 0012 | 0070 | 000c sums to 0x20ac2,
# the message 3133 6401 0064 c633 640a to 0x1bfd5; total 0x3ca97 -> 0xca9a -> ~ = 0x3565
V3_V4_WIRE = bytes.fromhex("3133 6401 0064 3565 c633 640a")
# keepalived v3_checksum_as_v2: the message alone, 0x1bfd5 -> 0xbfd6 -> ~ = 0x4029
V3_V4_AS_V2_WIRE = bytes.fromhex("3133 6401 0064 4029 c633 640a")

V3_V6 = Advertisement(version=3, vrid=51, priority=100, advert_int=100, addresses=(VIP6,))
# pseudo-header 2001+0db8+0001 | ff02+0012 | length 0018 | next header 0070 = 0x12d56;
# message 3133+6401+0064 + 2001+0db8+0010 = 0xc361; total 0x1f0b7 -> 0xf0b8 -> ~ = 0x0f47
V3_V6_WIRE = bytes.fromhex("3133 6401 0064 0f47 2001 0db8 0000 0000 0000 0000 0000 0010")


def test_checksum_rfc1071_example() -> None:
    # RFC 1071 §3 sums 0001 f203 f4f5 f6f7 to 0xddf2; the checksum is its complement.
    assert checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0x220D


def test_checksum_odd_length_pads_with_zero() -> None:
    assert checksum(b"\x01\x02\x03") == checksum(b"\x01\x02\x03\x00") == ~0x0402 & 0xFFFF


def test_checksum_over_checksummed_data_is_zero() -> None:
    assert checksum(V2_PASS_WIRE) == 0


@pytest.mark.parametrize(
    ("advert", "source", "destination", "as_v2", "wire"),
    [
        (V2_PASS, SRC4, MCAST4, False, V2_PASS_WIRE),
        (V2_PASS, SRC4, MCAST4, True, V2_PASS_WIRE),  # the flag only concerns v3
        (V3_V4, SRC4, MCAST4, False, V3_V4_WIRE),
        (V3_V4, SRC4, MCAST4, True, V3_V4_AS_V2_WIRE),
        (V3_V6, SRC6, MCAST6, False, V3_V6_WIRE),
        (V3_V6, SRC6, MCAST6, True, V3_V6_WIRE),  # keepalived's flag is IPv4 only
    ],
    ids=["v2-pass", "v2-pass-flag", "v3-ipv4", "v3-ipv4-as-v2", "v3-ipv6", "v3-ipv6-flag-ignored"],
)
def test_vectors_both_ways(
    advert: Advertisement, source: IPAddress, destination: IPAddress, as_v2: bool, wire: bytes
) -> None:
    assert encode(advert, source=source, destination=destination, checksum_as_v2=as_v2) == wire
    assert decode(wire, source=source, destination=destination, ttl=255, checksum_as_v2=as_v2) == advert


def test_interval_in_seconds() -> None:
    assert V2_PASS.interval == 1.0
    assert V3_V4.interval == 1.0
    assert Advertisement(version=3, vrid=1, priority=1, advert_int=25, addresses=()).interval == 0.25


def test_decode_strips_only_trailing_nul_padding_of_auth_data() -> None:
    advert = Advertisement(version=2, vrid=1, priority=1, advert_int=1, addresses=(), auth_type=1, auth_data=b"a\0b")
    wire = encode(advert, source=SRC4, destination=MCAST4)
    assert wire[-8:] == b"a\0b\0\0\0\0\0"
    assert decode(wire, source=SRC4, destination=MCAST4, ttl=255).auth_data == b"a\0b"


def test_v3_reserved_bits_are_ignored_on_receipt() -> None:
    wire = bytes(IP(src=str(SRC4), dst=str(MCAST4), ttl=255) / VRRPv3(vrid=51, res=0xF, adv=100, addrlist=[str(VIP4)]))
    assert decode(wire[20:], source=SRC4, destination=MCAST4, ttl=255) == V3_V4


def test_addresses_given_as_list_are_stored_as_tuple() -> None:
    advert = Advertisement(version=3, vrid=51, priority=100, advert_int=100, addresses=[VIP4])  # type: ignore[arg-type]
    assert advert == V3_V4


# ---------------------------------------------------------------------------
# Local misuse is a ValueError, never a MalformedAdvert.
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"version": 4},
        {"vrid": 0},
        {"vrid": 256},
        {"priority": -1},
        {"priority": 256},
        {"advert_int": 0},
        {"advert_int": 256},  # v2 interval is 8 bits
        {"version": 3, "advert_int": 4096, "auth_data": b"", "auth_type": 0},
        {"version": 3, "auth_type": 1, "auth_data": b""},
        {"version": 3, "auth_type": 0, "auth_data": b"x"},
        {"auth_type": 256},
        {"auth_data": b"123456789"},
        {"auth_data": b"1111\0"},
        {"addresses": (VIP6,)},  # v2 is IPv4 only
        {"version": 3, "auth_type": 0, "auth_data": b"", "addresses": (VIP4, VIP6)},
        {"addresses": (VIP4,) * 256},
    ],
)
def test_invalid_advertisement_raises_value_error(fields: dict[str, object]) -> None:
    base: dict[str, object] = {
        "version": 2,
        "vrid": 51,
        "priority": 100,
        "advert_int": 1,
        "addresses": (VIP4,),
        "auth_type": 1,
        "auth_data": b"1111",
    }
    with pytest.raises(ValueError):
        Advertisement(**(base | fields))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("advert", "source", "destination"),
    [
        (V2_PASS, SRC6, MCAST6),  # v2 over IPv6
        (V3_V6, SRC4, MCAST4),  # IPv6 addresses over IPv4
        (V3_V4, SRC6, MCAST6),  # IPv4 addresses over IPv6
        (V3_V4, SRC4, MCAST6),  # mixed families
    ],
)
def test_encode_rejects_family_mismatch(advert: Advertisement, source: IPAddress, destination: IPAddress) -> None:
    with pytest.raises(ValueError):
        encode(advert, source=source, destination=destination)


# ---------------------------------------------------------------------------
# Every drop reason decode can produce.  Bad packets are built with scapy, so
# their checksum is right and only the one intended field is wrong.
# ---------------------------------------------------------------------------


def _v2(**fields: object) -> bytes:
    layer = VRRP(vrid=51, priority=100, adv=1, addrlist=[str(VIP4)], authtype=1, auth1=0x31313131)
    for name, value in fields.items():
        setattr(layer, name, value)
    return bytes(IP(src=str(SRC4), dst=str(MCAST4), ttl=255) / layer)[20:]


def _v3_over_ipv4(**fields: object) -> bytes:
    layer = VRRPv3(vrid=51, priority=100, adv=100, addrlist=[str(VIP4)])
    for name, value in fields.items():
        setattr(layer, name, value)
    return bytes(IP(src=str(SRC4), dst=str(MCAST4), ttl=255) / layer)[20:]


def _reason(data: bytes, *, v6: bool = False, ttl: int = 255, as_v2: bool = False) -> DropReason:
    source, destination = (SRC6, MCAST6) if v6 else (SRC4, MCAST4)
    with pytest.raises(MalformedAdvert) as caught:
        decode(data, source=source, destination=destination, ttl=ttl, checksum_as_v2=as_v2)
    assert str(caught.value)  # the daemon logs it: never empty
    return caught.value.reason


@pytest.mark.parametrize("ttl", [0, 1, 64, 254, 256])
def test_ttl_other_than_255_is_dropped(ttl: int) -> None:
    assert _reason(V2_PASS_WIRE, ttl=ttl) is DropReason.BAD_TTL
    assert _reason(V3_V6_WIRE, v6=True, ttl=ttl) is DropReason.BAD_TTL


@pytest.mark.parametrize("length", [0, 1, 7])
def test_shorter_than_header_is_too_short(length: int) -> None:
    assert _reason(V2_PASS_WIRE[:length]) is DropReason.TOO_SHORT


@pytest.mark.parametrize("version", [0, 1, 4, 15])
def test_unknown_version(version: int) -> None:
    assert _reason(_v2(version=version)) is DropReason.BAD_VERSION


@pytest.mark.parametrize("kind", [0, 2, 15])
def test_unknown_type(kind: int) -> None:
    assert _reason(_v2(type=kind)) is DropReason.BAD_TYPE
    assert _reason(_v3_over_ipv4(type=kind)) is DropReason.BAD_TYPE


def test_v2_over_ipv6_is_bad_address_family() -> None:
    assert _reason(V2_PASS_WIRE, v6=True) is DropReason.BAD_ADDRESS_FAMILY


@pytest.mark.parametrize(
    ("data", "v6"),
    [
        (_v2(ipcount=2), False),  # claims more addresses than present
        (_v2(ipcount=0), False),  # claims fewer: the rest looks like trailing bytes
        (V2_PASS_WIRE + b"\0", False),  # trailing byte after the auth data
        (V2_PASS_WIRE[:-8], False),  # v2 without its 8 bytes of auth data
        (_v3_over_ipv4(ipcount=2), False),
        (V3_V4_WIRE + b"\0\0\0\0", False),
        (V3_V4_WIRE, True),  # an IPv4-sized address list received over IPv6
        (V3_V6_WIRE[:-1], True),
    ],
)
def test_address_count_inconsistent_with_length(data: bytes, v6: bool) -> None:
    assert _reason(data, v6=v6) is DropReason.BAD_LENGTH


def test_corrupted_byte_fails_checksum() -> None:
    corrupted = bytearray(V2_PASS_WIRE)
    corrupted[-1] ^= 0x01
    assert _reason(bytes(corrupted)) is DropReason.BAD_CHECKSUM


def test_v3_checksum_convention_must_match() -> None:
    assert _reason(V3_V4_WIRE, as_v2=True) is DropReason.BAD_CHECKSUM
    assert _reason(V3_V4_AS_V2_WIRE, as_v2=False) is DropReason.BAD_CHECKSUM


def test_v3_checksum_covers_the_pseudo_header() -> None:
    with pytest.raises(MalformedAdvert) as caught:
        decode(V3_V6_WIRE, source=IPv6Address("2001:db8::2"), destination=MCAST6, ttl=255)
    assert caught.value.reason is DropReason.BAD_CHECKSUM
    # ... while v2 does not care who sent it.
    assert decode(V2_PASS_WIRE, source=IPv4Address("203.0.113.9"), destination=MCAST4, ttl=255) == V2_PASS


def test_zero_advert_interval() -> None:
    assert _reason(_v2(adv=0)) is DropReason.BAD_ADVERT_INT
    assert _reason(_v3_over_ipv4(adv=0)) is DropReason.BAD_ADVERT_INT


def test_vrid_zero_can_never_match_an_instance() -> None:
    assert _reason(_v2(vrid=0)) is DropReason.UNKNOWN_VRID


def test_decode_leaves_vrid_and_auth_checks_to_the_instance() -> None:
    advert = decode(_v2(vrid=200, authtype=2, auth1=0x41424344), source=SRC4, destination=MCAST4, ttl=255)
    assert (advert.vrid, advert.auth_type, advert.auth_data) == (200, 2, b"ABCD")


# ---------------------------------------------------------------------------
# Property tests.
# ---------------------------------------------------------------------------

_NETS4 = [IPv4Network("198.51.100.0/24"), IPv4Network("203.0.113.0/24")]
ipv4s = st.builds(lambda net, host: net[host], st.sampled_from(_NETS4), st.integers(0, 255))
ipv6s = st.integers(0, 2**96 - 1).map(lambda low: IPv6Address(int(IPv6Address("2001:db8::")) + low))


@st.composite
def sent_adverts(draw: st.DrawFn) -> tuple[Advertisement, IPAddress, IPAddress]:
    """A valid advert with a matching source and a multicast or unicast destination."""
    family = draw(st.sampled_from(["v2", "v3-ipv4", "v3-ipv6"]))
    vrid, priority = draw(st.integers(1, 255)), draw(st.integers(0, 255))
    addresses_of_family: st.SearchStrategy[IPAddress] = ipv6s if family == "v3-ipv6" else ipv4s
    addresses = tuple(draw(st.lists(addresses_of_family, max_size=20)))
    source = draw(addresses_of_family)
    multicast: IPAddress = MCAST6 if family == "v3-ipv6" else MCAST4
    destination = draw(st.one_of(st.just(multicast), addresses_of_family))
    if family == "v2":
        advert = Advertisement(
            version=2,
            vrid=vrid,
            priority=priority,
            advert_int=draw(st.integers(1, 255)),
            addresses=addresses,
            auth_type=draw(st.integers(0, 255)),
            auth_data=draw(st.binary(max_size=8)).rstrip(b"\0"),
        )
    else:
        advert_int = draw(st.integers(1, 4095))
        advert = Advertisement(version=3, vrid=vrid, priority=priority, advert_int=advert_int, addresses=addresses)
    return advert, source, destination


@given(sent=sent_adverts(), as_v2=st.booleans())
def test_decode_inverts_encode(sent: tuple[Advertisement, IPAddress, IPAddress], as_v2: bool) -> None:
    advert, source, destination = sent
    wire = encode(advert, source=source, destination=destination, checksum_as_v2=as_v2)
    assert decode(wire, source=source, destination=destination, ttl=255, checksum_as_v2=as_v2) == advert


def _decode_or_drop(data: bytes, source: IPAddress, destination: IPAddress, ttl: int, as_v2: bool) -> None:
    """Any outcome but an exception other than MalformedAdvert is acceptable."""
    try:
        decode(data, source=source, destination=destination, ttl=ttl, checksum_as_v2=as_v2)
    except MalformedAdvert as error:
        assert isinstance(error.reason, DropReason)


@given(
    data=st.binary(max_size=120),
    v6=st.booleans(),
    ttl=st.sampled_from([255, 255, 255, 64]),
    as_v2=st.booleans(),
    fix_checksum=st.booleans(),
)
def test_random_bytes_only_ever_raise_malformed_advert(
    data: bytes, v6: bool, ttl: int, as_v2: bool, fix_checksum: bool
) -> None:
    source, destination = (SRC6, MCAST6) if v6 else (SRC4, MCAST4)
    if fix_checksum:
        data = _with_valid_checksum(data, source, destination, as_v2)
    _decode_or_drop(data, source, destination, ttl, as_v2)


@given(
    sent=sent_adverts(),
    mutations=st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), min_size=1, max_size=4),
    cut=st.integers(0, 8),
    as_v2=st.booleans(),
    fix_checksum=st.booleans(),
)
def test_mutated_packets_only_ever_raise_malformed_advert(
    sent: tuple[Advertisement, IPAddress, IPAddress],
    mutations: list[tuple[int, int]],
    cut: int,
    as_v2: bool,
    fix_checksum: bool,
) -> None:
    advert, source, destination = sent
    data = bytearray(encode(advert, source=source, destination=destination, checksum_as_v2=as_v2))
    for position, value in mutations:
        data[position % len(data)] = value
    mutated = bytes(data[: len(data) - cut])
    if fix_checksum:
        # Get past the checksum so the checks behind it are exercised too.
        mutated = _with_valid_checksum(mutated, source, destination, as_v2)
    _decode_or_drop(mutated, source, destination, 255, as_v2)


def _with_valid_checksum(data: bytes, source: IPAddress, destination: IPAddress, as_v2: bool) -> bytes:
    """Rewrite the checksum field the way a sender of ``data``'s version would have."""
    if len(data) < 8:
        return data
    zeroed = data[:6] + b"\0\0" + data[8:]
    covered = zeroed
    if data[0] >> 4 != 2 and not (as_v2 and source.version == 4):
        if source.version == 4:
            pseudo = source.packed + destination.packed + bytes([0, 112]) + len(data).to_bytes(2, "big")
        else:
            pseudo = source.packed + destination.packed + len(data).to_bytes(4, "big") + bytes([0, 0, 0, 112])
        covered = pseudo + zeroed
    return data[:6] + checksum(covered).to_bytes(2, "big") + data[8:]


# ---------------------------------------------------------------------------
# Cross-checks with scapy, byte for byte, in both directions.
#
# scapy's VRRPv3 over IPv4 computes its checksum with in4_chksum(112, ip, p),
# i.e. WITH the IPv4 pseudo-header as RFC 5798 §5.2.8 says — the same as
# keepalived's default (v3_checksum_as_v2 off), hence checksum_as_v2=False
# below.  VRRPv2 (scapy's VRRP) sums the message alone.  The 8-byte v2 auth
# data is scapy's auth1/auth2 pair of 32-bit integers.
# ---------------------------------------------------------------------------


def _scapy_packet(advert: Advertisement, source: IPAddress, destination: IPAddress) -> Packet:
    addresses = [str(address) for address in advert.addresses]
    if advert.version == 2:
        auth = advert.auth_data.ljust(8, b"\0")
        vrrp: Packet = VRRP(
            vrid=advert.vrid,
            priority=advert.priority,
            adv=advert.advert_int,
            addrlist=addresses,
            authtype=advert.auth_type,
            auth1=int.from_bytes(auth[:4], "big"),
            auth2=int.from_bytes(auth[4:], "big"),
        )
    else:
        vrrp = VRRPv3(vrid=advert.vrid, priority=advert.priority, adv=advert.advert_int, addrlist=addresses)
    if source.version == 4:
        return IP(src=str(source), dst=str(destination), ttl=255, proto=112) / vrrp
    return IPv6(src=str(source), dst=str(destination), hlim=255) / vrrp


def _ip_header_length(source: IPAddress) -> int:
    return 20 if source.version == 4 else 40


_scapy_settings = settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow])


@_scapy_settings
@given(sent=sent_adverts())
def test_encode_matches_scapy_byte_for_byte(sent: tuple[Advertisement, IPAddress, IPAddress]) -> None:
    advert, source, destination = sent
    built = bytes(_scapy_packet(advert, source, destination))
    assert encode(advert, source=source, destination=destination) == built[_ip_header_length(source) :]


@_scapy_settings
@given(sent=sent_adverts())
def test_decode_reads_scapy_built_packets(sent: tuple[Advertisement, IPAddress, IPAddress]) -> None:
    advert, source, destination = sent
    built = bytes(_scapy_packet(advert, source, destination))
    if source.version == 4:
        src, dst, ttl, protocol, payload = parse_ipv4_packet(built)
        assert (src, dst, ttl, protocol) == (source, destination, 255, 112)
    else:
        payload = built[40:]
    assert decode(payload, source=source, destination=destination, ttl=255) == advert


@_scapy_settings
@given(sent=sent_adverts())
def test_scapy_dissects_our_bytes(sent: tuple[Advertisement, IPAddress, IPAddress]) -> None:
    advert, source, destination = sent
    # scapy only recognises a VRRPv3-over-IPv4 payload of 9 bytes or more
    # (VRRP.dispatch_hook), so a v3 advert with no address comes back as Raw.
    assume(advert.version == 2 or source.version == 6 or advert.addresses)
    ours = encode(advert, source=source, destination=destination)
    packet: Packet
    if source.version == 4:
        packet = IP(bytes(IP(src=str(source), dst=str(destination), ttl=255, proto=112) / Raw(ours)))
    else:
        packet = IPv6(bytes(IPv6(src=str(source), dst=str(destination), hlim=255, nh=112) / Raw(ours)))
    layer_class = VRRP if advert.version == 2 else VRRPv3
    layer = packet[layer_class]
    assert (layer.version, layer.type) == (advert.version, 1)
    assert (layer.vrid, layer.priority) == (advert.vrid, advert.priority)
    assert (layer.ipcount, layer.adv) == (len(advert.addresses), advert.advert_int)
    assert [ip_address(address) for address in layer.addrlist] == list(advert.addresses)
    if advert.version == 2:
        auth = layer.auth1.to_bytes(4, "big") + layer.auth2.to_bytes(4, "big")
        assert (layer.authtype, auth.rstrip(b"\0")) == (advert.auth_type, advert.auth_data)
    else:
        assert layer.res == 0
    assert layer.chksum == int.from_bytes(ours[6:8], "big")
    # Let scapy recompute the checksum from scratch: it must agree with ours.
    del layer.chksum
    rebuilt = bytes(packet)[_ip_header_length(source) :]
    assert rebuilt == ours


# ---------------------------------------------------------------------------
# parse_ipv4_packet
# ---------------------------------------------------------------------------


def test_parse_ipv4_packet_with_options_and_padding() -> None:
    # A router-alert option makes IHL 6; Ethernet pads short frames, so bytes
    # beyond the IP total length must not reach the VRRP decoder.
    built = bytes(
        IP(src=str(SRC4), dst=str(MCAST4), ttl=255, options=b"\x94\x04\x00\x00")
        / VRRPv3(vrid=51, adv=100, addrlist=[str(VIP4)])
    )
    assert built[0] == 0x46
    source, destination, ttl, protocol, payload = parse_ipv4_packet(built + b"\0" * 6)
    assert (source, destination, ttl, protocol) == (SRC4, MCAST4, 255, 112)
    assert payload == V3_V4_WIRE


def test_parse_ipv4_packet_reports_the_real_ttl() -> None:
    built = bytes(IP(src=str(SRC4), dst=str(MCAST4), ttl=64, proto=112) / Raw(V2_PASS_WIRE))
    source, destination, ttl, protocol, payload = parse_ipv4_packet(built)
    assert (ttl, payload) == (64, V2_PASS_WIRE)
    with pytest.raises(MalformedAdvert) as caught:
        decode(payload, source=source, destination=destination, ttl=ttl)
    assert caught.value.reason is DropReason.BAD_TTL


@pytest.mark.parametrize(
    ("packet", "reason"),
    [
        (b"", DropReason.TOO_SHORT),
        (bytes(IP(src=str(SRC4), dst=str(MCAST4)))[:19], DropReason.TOO_SHORT),
        (bytes(IP(src=str(SRC4), dst=str(MCAST4), ihl=4)), DropReason.BAD_LENGTH),
        (bytes(IP(src=str(SRC4), dst=str(MCAST4), ihl=15, len=60)), DropReason.TOO_SHORT),  # options cut off
        (bytes(IP(src=str(SRC4), dst=str(MCAST4), len=19)), DropReason.BAD_LENGTH),
        (bytes(IP(src=str(SRC4), dst=str(MCAST4), len=200) / Raw(V2_PASS_WIRE)), DropReason.TOO_SHORT),
        (bytes(IPv6(src=str(SRC6), dst=str(MCAST6))), DropReason.BAD_ADDRESS_FAMILY),
    ],
    ids=["empty", "19-bytes", "ihl-4", "ihl-beyond-data", "total-below-header", "truncated", "ipv6"],
)
def test_parse_ipv4_packet_rejects_garbage(packet: bytes, reason: DropReason) -> None:
    with pytest.raises(MalformedAdvert) as caught:
        parse_ipv4_packet(packet)
    assert caught.value.reason is reason


@given(st.binary(max_size=80))
def test_parse_ipv4_packet_never_raises_anything_else(packet: bytes) -> None:
    try:
        source, destination, ttl, protocol, payload = parse_ipv4_packet(packet)
    except MalformedAdvert:
        return
    assert len(payload) <= len(packet) - 20 and 0 <= ttl <= 255 and 0 <= protocol <= 255
