"""``hafm watch``: a read-only view of every VRRP speaker on a segment, and what breaks clusters.

:mod:`hafm.watch.analysis` is pure (packets and times in, rows and findings out),
:mod:`hafm.watch.report` renders it, and :mod:`hafm.watch.capture` is the thin
scapy shell.  Importing this package does not import scapy.
"""

from hafm.watch.analysis import Checksum, Expected, Finding, FindingKind, Heard, Row, SegmentView

__all__ = ["Checksum", "Expected", "Finding", "FindingKind", "Heard", "Row", "SegmentView"]
