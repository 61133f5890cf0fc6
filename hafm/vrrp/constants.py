"""Protocol constants and the timing formulas of RFC 3768 / RFC 5798, defined once."""

from __future__ import annotations

OWNER_PRIORITY = 255
"""The IP address owner's priority: always Master, never changed by tracking (RFC 5798 §5.2.4)."""

MIN_PRIORITY = 1
MAX_PRIORITY = 254
"""Bounds of a non-owner's (effective) priority; 0 only ever appears in a resigning Master's advert."""


def skew_time(priority: int, *, version: int, master_adver_interval: float) -> float:
    """Skew_Time: v2 (RFC 3768) ``(256 - Priority) / 256`` seconds; v3 (RFC 5798 §6.1) scaled by the interval."""
    if version == 2:
        return (256 - priority) / 256
    return (256 - priority) * master_adver_interval / 256


def master_down_interval(priority: int, *, version: int, master_adver_interval: float) -> float:
    """Master_Down_Interval: ``3 * Advertisement_Interval + Skew_Time``."""
    return 3 * master_adver_interval + skew_time(priority, version=version, master_adver_interval=master_adver_interval)
