"""Sans-IO VRRP advertisement codec: bytes in, :class:`Advertisement` out, and back.

Wire formats: VRRPv2 (RFC 3768 §5.1) and VRRPv3 (RFC 5798 §5.1).  The codec
never touches a socket or a clock: the caller passes the IP source,
destination and TTL/hop limit it got from the socket alongside the payload.

:func:`decode` applies the per-packet checks of RFC 3768/5798 §7.1 and, for
any input bytes whatsoever, raises only :class:`~hafm.errors.MalformedAdvert`.
The per-instance checks (VRID known, authentication, advert interval equal to
ours) belong to the state machine, which knows the instance configuration.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from typing import Literal

from hafm.errors import DropReason, MalformedAdvert

__all__ = ["Advertisement", "IPAddress", "IPPROTO_VRRP", "checksum", "decode", "encode", "parse_ipv4_packet"]

IPAddress = IPv4Address | IPv6Address

IPPROTO_VRRP = 112
ADVERTISEMENT_TYPE = 1
AUTH_DATA_LEN = 8  # v2 carries 8 bytes of authentication data after the addresses
REQUIRED_TTL = 255  # RFC 3768/5798 §7.1: anything else may have crossed a router

# version<<4|type, vrid, priority, address count, then 16 bits whose meaning
# depends on the version (v2: auth type + interval in s; v3: 4 reserved bits +
# 12-bit interval in cs), then the checksum.
_HEADER = struct.Struct("!BBBBHH")
_IPV4_HEADER = struct.Struct("!BBHHHBBH4s4s")
_MAX_V3_ADVERT_INT = 0x0FFF


@dataclass(frozen=True, kw_only=True)
class Advertisement:
    """One VRRP ADVERTISEMENT as carried on the wire (fields are raw wire values)."""

    version: Literal[2, 3]
    vrid: int  # 1..255
    priority: int  # 0 = master is leaving, 255 = address owner
    advert_int: int  # v2: whole seconds (8 bits); v3: centiseconds (12 bits)
    addresses: tuple[IPv4Address | IPv6Address, ...]
    auth_type: int = 0  # v2 only: 0 none, 1 simple text password
    auth_data: bytes = b""  # v2 only; padded with NULs to 8 bytes on the wire

    def __post_init__(self) -> None:
        # A list would make two equal adverts compare unequal; accept it, store a tuple.
        object.__setattr__(self, "addresses", tuple(self.addresses))
        if self.version not in (2, 3):
            raise ValueError(f"version must be 2 or 3, not {self.version!r}")
        _check_range("vrid", self.vrid, 1, 255)
        _check_range("priority", self.priority, 0, 255)
        _check_range("advert_int", self.advert_int, 1, 255 if self.version == 2 else _MAX_V3_ADVERT_INT)
        if len(self.addresses) > 255:
            raise ValueError(f"at most 255 addresses fit in one advertisement, not {len(self.addresses)}")
        if len({address.version for address in self.addresses}) > 1:
            raise ValueError("addresses mix IPv4 and IPv6")
        if self.version == 2:
            if any(address.version != 4 for address in self.addresses):
                raise ValueError("VRRPv2 carries IPv4 addresses only")
            _check_range("auth_type", self.auth_type, 0, 255)
            if len(self.auth_data) > AUTH_DATA_LEN:
                raise ValueError(f"auth_data is longer than {AUTH_DATA_LEN} bytes")
            if self.auth_data.endswith(b"\0"):
                # decode strips the NUL padding, so such a value could never round-trip.
                raise ValueError("auth_data must not end with a NUL byte")
        elif self.auth_type != 0 or self.auth_data:
            raise ValueError("VRRPv3 has no authentication; auth_type/auth_data must be left empty")

    @property
    def interval(self) -> float:
        """The advertisement interval in seconds."""
        return float(self.advert_int) if self.version == 2 else self.advert_int / 100


def _check_range(name: str, value: int, low: int, high: int) -> None:
    if not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer in {low}..{high}, not {value!r}")


def checksum(data: bytes) -> int:
    """Return the RFC 1071 internet checksum of ``data`` (odd length padded with a zero byte).

    Over data that already contains a correct checksum the result is 0.
    """
    if len(data) % 2:
        data += b"\0"
    total = sum(word for (word,) in struct.iter_unpack("!H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _pseudo_header(source: IPAddress, destination: IPAddress, length: int) -> bytes:
    """The IPv4 (RFC 768 style) or IPv6 (RFC 8200 §8.1) pseudo-header for protocol 112."""
    if source.version == 4:
        return source.packed + destination.packed + struct.pack("!BBH", 0, IPPROTO_VRRP, length)
    return source.packed + destination.packed + struct.pack("!I3xB", length, IPPROTO_VRRP)


def _checksummed_bytes(
    message: bytes, version: int, source: IPAddress, destination: IPAddress, checksum_as_v2: bool
) -> bytes:
    # v2 and keepalived's `v3_checksum_as_v2` (IPv4 only) sum the message alone;
    # RFC 5798 §5.2.8 adds the pseudo-header for v3.
    if version == 2 or (checksum_as_v2 and source.version == 4):
        return message
    return _pseudo_header(source, destination, len(message)) + message


def _check_families(source: IPAddress, destination: IPAddress) -> None:
    if source.version != destination.version:
        raise ValueError(f"source {source} and destination {destination} are of different families")


def encode(advert: Advertisement, *, source: IPAddress, destination: IPAddress, checksum_as_v2: bool = False) -> bytes:
    """Return the VRRP message (without IP header) for ``advert`` sent from ``source`` to ``destination``.

    ``checksum_as_v2`` is keepalived's ``v3_checksum_as_v2``: for VRRPv3 over IPv4,
    leave the pseudo-header out of the checksum.  Raises ``ValueError`` when the
    addresses do not fit the IP family (v2 over IPv6, IPv6 addresses over IPv4, ...).
    """
    _check_families(source, destination)
    if advert.version == 2 and source.version != 4:
        raise ValueError("VRRPv2 runs over IPv4 only")
    if any(address.version != source.version for address in advert.addresses):
        raise ValueError(f"advertised addresses must be IPv{source.version} like the source {source}")
    if advert.version == 2:
        # v2 splits these 16 bits into auth type (high byte) and interval in seconds (low byte).
        word = advert.auth_type << 8 | advert.advert_int
        trailer = advert.auth_data.ljust(AUTH_DATA_LEN, b"\0")
    else:
        word = advert.advert_int  # the 4 reserved bits stay zero
        trailer = b""
    header = _HEADER.pack(
        advert.version << 4 | ADVERTISEMENT_TYPE, advert.vrid, advert.priority, len(advert.addresses), word, 0
    )
    message = header + b"".join(address.packed for address in advert.addresses) + trailer
    value = checksum(_checksummed_bytes(message, advert.version, source, destination, checksum_as_v2))
    return message[:6] + value.to_bytes(2, "big") + message[8:]


def decode(
    data: bytes, *, source: IPAddress, destination: IPAddress, ttl: int, checksum_as_v2: bool = False
) -> Advertisement:
    """Parse and validate a VRRP message received from ``source`` on ``destination``.

    ``ttl`` is the IPv4 TTL or IPv6 hop limit of the packet.  Raises
    :class:`MalformedAdvert` (and nothing else, whatever ``data`` holds) when
    the packet fails a check of RFC 3768/5798 §7.1; ``ValueError`` only if
    ``source`` and ``destination`` are of different families (a caller bug).
    """
    _check_families(source, destination)
    if ttl != REQUIRED_TTL:
        raise MalformedAdvert(DropReason.BAD_TTL, f"TTL/hop limit {ttl}, expected {REQUIRED_TTL}")
    if len(data) < _HEADER.size:
        raise MalformedAdvert(DropReason.TOO_SHORT, f"{len(data)} bytes, header needs {_HEADER.size}")
    version_type, vrid, priority, count, word, _ = _HEADER.unpack_from(data)
    version, kind = version_type >> 4, version_type & 0x0F
    if version not in (2, 3):
        raise MalformedAdvert(DropReason.BAD_VERSION, f"version {version}")
    if kind != ADVERTISEMENT_TYPE:
        raise MalformedAdvert(DropReason.BAD_TYPE, f"type {kind}")
    if version == 2 and source.version != 4:
        raise MalformedAdvert(DropReason.BAD_ADDRESS_FAMILY, "VRRPv2 over IPv6")

    address_size = 4 if source.version == 4 else 16
    trailer_size = AUTH_DATA_LEN if version == 2 else 0
    expected = _HEADER.size + count * address_size + trailer_size
    if len(data) != expected:
        raise MalformedAdvert(
            DropReason.BAD_LENGTH,
            f"{count} IPv{source.version} addresses need {expected} bytes, got {len(data)}",
        )
    if checksum(_checksummed_bytes(data, version, source, destination, checksum_as_v2)) != 0:
        convention = "as v2" if checksum_as_v2 and version == 3 and source.version == 4 else "RFC"
        raise MalformedAdvert(DropReason.BAD_CHECKSUM, f"checksum {data[6:8].hex()} wrong ({convention} rule)")

    if version == 2:
        auth_type, advert_int = word >> 8, word & 0xFF
    else:
        auth_type, advert_int = 0, word & _MAX_V3_ADVERT_INT  # reserved bits: ignored on receipt
    if advert_int == 0:
        raise MalformedAdvert(DropReason.BAD_ADVERT_INT, "advertisement interval 0")
    if vrid == 0:
        # VRID 0 is outside 1..255, so no instance can ever own it.
        raise MalformedAdvert(DropReason.UNKNOWN_VRID, "VRID 0 is reserved")

    family = IPv4Address if address_size == 4 else IPv6Address
    end = _HEADER.size + count * address_size
    addresses = tuple(family(data[offset : offset + address_size]) for offset in range(_HEADER.size, end, address_size))
    return Advertisement(
        version=version,
        vrid=vrid,
        priority=priority,
        advert_int=advert_int,
        addresses=addresses,
        auth_type=auth_type,
        auth_data=data[end:].rstrip(b"\0") if version == 2 else b"",
    )


def parse_ipv4_packet(packet: bytes) -> tuple[IPv4Address, IPv4Address, int, int, bytes]:
    """Split a packet from a raw IPv4 socket into ``(source, destination, ttl, protocol, payload)``.

    Honours the header length (IP options) and the total length (drops link-layer
    padding).  Raises :class:`MalformedAdvert` when the header is not a sane IPv4 header.
    """
    if len(packet) < _IPV4_HEADER.size:
        raise MalformedAdvert(DropReason.TOO_SHORT, f"{len(packet)} bytes, IPv4 header needs {_IPV4_HEADER.size}")
    fields = _IPV4_HEADER.unpack_from(packet)
    version_ihl, _, total_length, _, _, ttl, protocol, _, source, destination = fields
    if version_ihl >> 4 != 4:
        raise MalformedAdvert(DropReason.BAD_ADDRESS_FAMILY, f"IP version {version_ihl >> 4} on an IPv4 socket")
    header_length = (version_ihl & 0x0F) * 4
    if header_length < _IPV4_HEADER.size or total_length < header_length:
        raise MalformedAdvert(DropReason.BAD_LENGTH, f"IPv4 header length {header_length}, total length {total_length}")
    if total_length > len(packet):
        raise MalformedAdvert(DropReason.TOO_SHORT, f"IPv4 total length {total_length}, got {len(packet)} bytes")
    return (
        IPv4Address(source),
        IPv4Address(destination),
        ttl,
        protocol,
        bytes(packet[header_length:total_length]),
    )
