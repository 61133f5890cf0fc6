"""Errors split by who broke the rules (the h11 way).

A packet from the wire that breaks the protocol is not an exception in the
daemon: the codec raises :class:`MalformedAdvert` carrying a typed
:class:`DropReason`, the daemon counts it and logs it once.
"""

from __future__ import annotations

import enum


class DropReason(enum.Enum):
    """Why an incoming advertisement was discarded (RFC 3768/5798 §7.1)."""

    TOO_SHORT = "too_short"  # fewer bytes than the fixed header
    BAD_VERSION = "bad_version"  # version nibble is not 2 or 3
    BAD_TYPE = "bad_type"  # type nibble is not 1 (ADVERTISEMENT)
    BAD_TTL = "bad_ttl"  # IPv4 TTL / IPv6 hop limit is not 255
    BAD_CHECKSUM = "bad_checksum"
    BAD_LENGTH = "bad_length"  # address count does not match the length
    BAD_ADDRESS_FAMILY = "bad_address_family"  # e.g. v2 over IPv6
    BAD_ADVERT_INT = "bad_advert_int"  # zero, or v2 interval differs from ours
    UNKNOWN_VRID = "unknown_vrid"  # no instance for this VRID on this interface
    VERSION_MISMATCH = "version_mismatch"  # v2 packet for a v3 instance or vice versa
    AUTH_TYPE_MISMATCH = "auth_type_mismatch"
    AUTH_FAILURE = "auth_failure"  # wrong simple-text password
    UNKNOWN_PEER = "unknown_peer"  # unicast mode and the source is not a configured peer
    OWN_ADVERT = "own_advert"  # our own multicast looped back


class HafmError(Exception):
    """Base class for every error hafm raises on purpose."""


class DaemonError(HafmError):
    """A start-up problem of the daemon: one line, exit code 1."""


class AlreadyRunning(DaemonError):
    """Another hafm answers on the control socket (the single-instance lock)."""


class NetlinkProblem(HafmError):
    """An interface or address problem worth one log line (or a start-up error)."""


class PluginError(HafmError):
    """A plugin could not be loaded or is inconsistent; the message is one line naming the file."""


class LocalProtocolError(HafmError):
    """We asked the core to do something the protocol does not allow (a bug in hafm)."""


class MalformedAdvert(HafmError):  # noqa: N818 - reads better at the raise site
    """An advertisement from the wire failed validation.

    ``reason`` is what the daemon counts; ``detail`` is for the log line.
    """

    def __init__(self, reason: DropReason, detail: str = "") -> None:
        super().__init__(f"{reason.value}: {detail}" if detail else reason.value)
        self.reason = reason
        self.detail = detail


class ConfigError(HafmError):
    """One or more configuration errors; each line is one complete message.

    Each message names the file, the table path and the key, e.g.
    ``/etc/hafm.toml: vrrp_instance.VI_1.priority: 300 is out of range 1..255``.
    """

    def __init__(self, messages: list[str]) -> None:
        super().__init__("\n".join(messages))
        self.messages = messages
