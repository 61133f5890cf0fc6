"""The I/O shell of ``hafm watch``: capture IP protocol 112 with scapy, feed a SegmentView, print it.

scapy is imported here and only here, so it is loaded when ``hafm watch`` runs
and never on the daemon's path (it costs ~45 MiB and ~0.3 s to import).
"""

from __future__ import annotations

import json
import os
import select
import sys
import time
from collections.abc import Callable
from ipaddress import IPv6Address
from pathlib import Path
from typing import Any, TextIO

from scapy.config import conf
from scapy.layers.inet import IP
from scapy.layers.inet6 import IPv6
from scapy.packet import Packet

from hafm.errors import HafmError, MalformedAdvert
from hafm.vrrp.codec import IPPROTO_VRRP, parse_ipv4_packet
from hafm.watch.analysis import Expected, Heard, SegmentView, combine, expectations_from_config, parse_expect
from hafm.watch.report import render_json, render_table

__all__ = ["BPF_FILTER", "heard_from_packet", "run", "watch"]

# "ip6 proto" matches the fixed header's next header only: VRRP is never sent behind extension headers.
BPF_FILTER = f"ip proto {IPPROTO_VRRP} or ip6 proto {IPPROTO_VRRP}"
_IPV6_HEADER = 40
_CLEAR = "\x1b[H\x1b[2J"


def heard_from_packet(packet: Packet, at: float) -> Heard | None:
    """The VRRP message in a captured frame, exactly as on the wire (None if it carries none).

    scapy finds the IP layer under any link layer (Ethernet, VLAN, cooked capture);
    the message is cut from that layer's original bytes, not rebuilt from fields, so
    a truncated or padded packet reaches the codec as it was sent.
    """
    if IP in packet and packet[IP].proto == IPPROTO_VRRP:
        try:
            source, destination, ttl, _, payload = parse_ipv4_packet(packet[IP].original)
        except MalformedAdvert:
            return None
        return Heard(at=at, source=source, destination=destination, ttl=ttl, payload=payload)
    if IPv6 in packet and packet[IPv6].nh == IPPROTO_VRRP:
        layer = packet[IPv6]
        payload = bytes(layer.original[_IPV6_HEADER : _IPV6_HEADER + layer.plen])
        return Heard(
            at=at, source=IPv6Address(layer.src), destination=IPv6Address(layer.dst), ttl=layer.hlim, payload=payload
        )
    return None


def watch(
    interface: str,
    view: SegmentView,
    *,
    seconds: float | None,
    as_json: bool,
    refresh: float = 1.0,
    out: TextIO = sys.stdout,
) -> int:
    """Capture on ``interface`` for ``seconds`` (forever if None), printing the view; the exit status.

    With ``seconds``, prints once at the end; without, every ``refresh`` seconds
    (the screen is cleared first when ``out`` is a terminal; JSON goes one
    document per line) until Ctrl-C, then once more.
    """
    try:
        sock = conf.L2listen(iface=interface, filter=BPF_FILTER)
    except (OSError, ValueError) as exc:
        raise HafmError(f"watch: cannot capture on {interface!r}: {str(exc).rstrip(' !')}") from None
    started = time.monotonic()

    shown = 0

    def show(clear: bool) -> None:
        nonlocal shown
        now, elapsed = time.time(), time.monotonic() - started
        if as_json:
            out.write(json.dumps(render_json(view, now=now, interface=interface, elapsed=elapsed)) + "\n")
        else:
            # A blank line between tables written to a file or a pipe.
            lead = _CLEAR if clear else "\n" if shown else ""
            out.write(lead + render_table(view, now=now, interface=interface, elapsed=elapsed))
        out.flush()
        shown += 1

    live = seconds is None and not as_json and out.isatty()
    try:
        try:
            with sock:
                _loop(sock, view, started + seconds if seconds is not None else None, refresh, lambda: show(live))
        except KeyboardInterrupt:
            pass
        show(live)
    except BrokenPipeError:
        # The reader went away (`hafm watch eth0 --json | head -1`): that ends watch, quietly;
        # stdout now points nowhere so that Python's flush at exit cannot complain either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())
    return 0


def _loop(sock: Any, view: SegmentView, deadline: float | None, refresh: float, tick: Callable[[], None]) -> None:
    """Feed every captured packet to ``view`` until ``deadline``; call ``tick`` every ``refresh`` s meanwhile."""
    next_tick = time.monotonic() + refresh
    while True:
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            return
        wake = deadline if deadline is not None else next_tick
        if deadline is None and now >= next_tick:
            tick()
            next_tick = now + refresh
            continue
        readable, _, _ = select.select([sock], [], [], max(0.0, min(wake, next_tick) - now))
        if not readable:
            continue
        packet = sock.recv()
        if packet is None:
            continue
        heard = heard_from_packet(packet, float(packet.time))
        if heard is not None:
            view.observe(heard)


def run(
    interface: str,
    *,
    vrid: int | None,
    seconds: float | None,
    as_json: bool,
    expect: list[str],
    config_path: Path | None,
) -> int:
    """``hafm watch``: build the view from the command line's expectations, then :func:`watch`."""
    if vrid is not None and not 1 <= vrid <= 255:
        raise HafmError(f"watch: --vrid {vrid} is outside 1..255")
    if seconds is not None and not seconds > 0:
        raise HafmError(f"watch: --seconds {seconds:g} must be more than 0")
    try:
        expects = [parse_expect(text) for text in expect]
    except ValueError as exc:
        raise HafmError(f"watch: --expect {exc}") from None
    configured: list[Expected] = []
    if config_path is not None:
        from hafm.config.loader import load_config

        # Check types are not validated: watch needs the instances, not the plugins that run checks.
        configured = expectations_from_config(load_config(config_path))
    view = SegmentView(vrid=vrid, expected=combine(expects, configured))
    return watch(interface, view, seconds=seconds, as_json=as_json)
