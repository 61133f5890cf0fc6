"""Gratuitous ARP (IPv4) and unsolicited Neighbor Advertisements (IPv6) for VIPs.

Frames are built with scapy and sent as cached bytes through one send-only
AF_PACKET socket per interface.  scapy costs ~45 MiB and ~0.3 s to import, so
the daemon never imports it: at start-up :meth:`Announcer.prepare` runs
``python -m hafm.shell.announce MAC ADDRESS...`` once, which builds the frames and
prints them as hex.  Becoming Master then costs only the ``send()`` calls.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sys

from hafm.config.model import Vip

log = logging.getLogger(__name__)

BROADCAST_MAC = "ff:ff:ff:ff:ff:ff"
ALL_NODES_MAC = "33:33:00:00:00:01"
ALL_NODES = "ff02::1"


def gratuitous_arp(address: str, mac: str) -> bytes:
    """An ARP request for ``address`` from ``address`` (RFC 5798 §6.4.2 / RFC 5227 announcement)."""
    from scapy.layers.l2 import ARP, Ether

    frame = Ether(src=mac, dst=BROADCAST_MAC) / ARP(
        op=1, hwsrc=mac, psrc=address, hwdst="00:00:00:00:00:00", pdst=address
    )
    return bytes(frame)


def unsolicited_na(address: str, mac: str) -> bytes:
    """An unsolicited Neighbor Advertisement: R=1, S=0, O=1, target = the VIP (RFC 5798 §6.4.2)."""
    from scapy.layers.inet6 import ICMPv6ND_NA, ICMPv6NDOptDstLLAddr, IPv6
    from scapy.layers.l2 import Ether

    frame = (
        Ether(src=mac, dst=ALL_NODES_MAC)
        / IPv6(src=address, dst=ALL_NODES, hlim=255)
        / ICMPv6ND_NA(R=1, S=0, O=1, tgt=address)
        / ICMPv6NDOptDstLLAddr(lladdr=mac)
    )
    return bytes(frame)


def build_frame(address: str, mac: str) -> bytes:
    return unsolicited_na(address, mac) if ":" in address else gratuitous_arp(address, mac)


async def build_frames(mac: str, addresses: list[str]) -> dict[str, bytes]:
    """Build the frames in a child process, so that scapy never lives in the daemon."""
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hafm.shell.announce", mac, *addresses,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await child.communicate()
    if child.returncode != 0:
        raise RuntimeError(err.decode(errors="replace").strip().splitlines()[-1:] or "frame builder failed")
    frames = {}
    for line in out.decode().splitlines():
        address, frame = line.split()
        frames[address] = bytes.fromhex(frame)
    return frames


class Announcer:
    """Sends the announcement frames for VIPs on one interface."""

    def __init__(self, interface: str, mac: str) -> None:
        self.interface = interface
        self.mac = mac
        self.frames: dict[str, bytes] = {}
        self._sock: socket.socket | None = None

    async def prepare(self, vips: tuple[Vip, ...]) -> None:
        """Build the frames and open the socket now, so becoming Master costs only the send.

        Protocol 0: a send-only packet socket.  ETH_P_ALL would also receive a copy of
        every frame on the interface, and its bind() waits for an RCU grace period (~15 ms).
        """
        missing = [str(v.address.ip) for v in vips if str(v.address.ip) not in self.frames]
        if missing:
            try:
                self.frames.update(await build_frames(self.mac, missing))
            except (OSError, RuntimeError, ValueError) as exc:
                log.warning("%s: frame builder child failed (%s); building the frames here", self.interface, exc)
                self.frames.update({address: build_frame(address, self.mac) for address in missing})
        if self._sock is None:
            self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
            self._sock.bind((self.interface, 0))

    def send(self, vips: tuple[Vip, ...], repeat: int) -> None:
        assert self._sock is not None, "Announcer.prepare() first"
        for _ in range(max(repeat, 1)):
            for vip in vips:
                address = str(vip.address.ip)
                frame = self.frames.get(address) or self.frames.setdefault(address, build_frame(address, self.mac))
                try:
                    self._sock.send(frame)
                except OSError as exc:
                    log.debug("%s: gratuitous announcement for %s failed: %s", self.interface, address, exc)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def main(argv: list[str]) -> int:
    """``python -m hafm.shell.announce MAC ADDRESS...``: one ``ADDRESS HEX`` line per frame."""
    mac, *addresses = argv
    for address in addresses:
        print(address, build_frame(address, mac).hex())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
