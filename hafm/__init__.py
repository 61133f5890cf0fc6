"""hafm: a health-checking VRRP failover manager."""

__version__ = "0.1.0"
