"""Interfaces, addresses and link events through pyroute2's asyncio netlink API.

The only module that changes addresses on the host.  VIPs are tagged with
``IFA_PROTO = HAFM_ADDR_PROTO`` so that, after a crash, a restarted hafm can
tell a VIP it left behind from an address the operator configured.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from hafm.config.model import IPAddress, IPInterface, Vip
from hafm.errors import NetlinkProblem
from hafm.shell.pyroute2_lean import RTMGRP_LINK, AsyncIPRoute, NetlinkError

log = logging.getLogger(__name__)

HAFM_ADDR_PROTO = 0x68  # 'h': our tag in IFA_PROTO (kernel >= 5.18; ignored by older kernels)
IFF_UP = 0x1
IFF_LOWER_UP = 0x10000
IFA_F_NODAD = 0x02
IFA_F_SECONDARY = 0x01
RT_SCOPE_LINK = 253


@dataclass(frozen=True, kw_only=True)
class InterfaceInfo:
    name: str
    index: int
    mac: str
    up: bool  # administratively up and carrier present
    addresses: tuple[tuple[IPInterface, int], ...]  # (address/prefix, IFA_PROTO or 0)

    def primary(self, family: int) -> IPAddress | None:
        """The first non-VIP global address of that family (IPv4), or the link-local one (IPv6)."""
        for address, proto in self.addresses:
            if address.version != family or proto == HAFM_ADDR_PROTO:
                continue
            if family == 6 and not address.ip.is_link_local:
                continue
            return address.ip
        return None


def _link_up(msg: dict) -> bool:
    flags = msg.get("flags", 0)
    return bool(flags & IFF_UP) and bool(flags & IFF_LOWER_UP)


class Netlink:
    """One rtnetlink connection for queries and address changes."""

    def __init__(self) -> None:
        self._ipr: AsyncIPRoute | None = None
        # (ifindex, address) of every VIP this process added: only those are ever removed, so
        # the address owner's real address (already there, untagged) survives STOP and FAULT.
        self._added: set[tuple[int, IPAddress]] = set()

    async def open(self) -> None:
        self._ipr = AsyncIPRoute()
        await self._ipr.setup_endpoint()

    def close(self) -> None:
        if self._ipr is not None:
            self._ipr.close()
            self._ipr = None

    @property
    def ipr(self) -> AsyncIPRoute:
        assert self._ipr is not None, "Netlink.open() first"
        return self._ipr

    async def interface(self, name: str) -> InterfaceInfo:
        """Everything hafm needs to know about ``name``; NetlinkProblem when it does not exist."""
        indexes = await self.ipr.link_lookup(ifname=name)
        if not indexes:
            raise NetlinkProblem(f"interface {name} does not exist")
        index = indexes[0]
        links = await self.ipr.link("get", index=index)
        link = links[0]
        addresses: list[tuple[IPInterface, int]] = []
        async for msg in await self.ipr.addr("dump", index=index):
            addr = msg.get("IFA_ADDRESS") if msg["family"] == socket.AF_INET6 else msg.get("IFA_LOCAL")
            if addr is None:
                addr = msg.get("IFA_ADDRESS")
            if addr is None:
                continue
            interface = ipaddress.ip_interface(f"{addr}/{msg['prefixlen']}")
            addresses.append((interface, msg.get("IFA_PROTO") or 0))
        # Primary (non-secondary) addresses first, the kernel's own order otherwise.
        return InterfaceInfo(
            name=name,
            index=index,
            mac=link.get("IFLA_ADDRESS", "00:00:00:00:00:00"),
            up=_link_up(link),
            addresses=tuple(addresses),
        )

    async def add_vip(self, vip: Vip, index: int) -> None:
        kwargs: dict[str, object] = {
            "index": index,
            "address": str(vip.address.ip),
            "prefixlen": vip.address.network.prefixlen,
            "IFA_PROTO": HAFM_ADDR_PROTO,
        }
        if vip.address.version == 6:
            kwargs["flags"] = IFA_F_NODAD
        elif vip.label:
            kwargs["label"] = vip.label
        try:
            await self.ipr.addr("add", **kwargs)
        except NetlinkError as exc:
            if exc.code != errno.EEXIST:
                raise NetlinkProblem(f"cannot add {vip.address}: {exc.args[-1]}") from None
            return  # already configured by someone else: not ours to remove later
        self._added.add((index, vip.address.ip))

    async def remove_vip(self, vip: Vip, index: int) -> None:
        """Remove a VIP this process added; an address it found already configured stays."""
        if (index, vip.address.ip) not in self._added:
            return
        self._added.discard((index, vip.address.ip))
        await self.remove_leftover(vip, index)

    async def remove_leftover(self, vip: Vip, index: int) -> bool:
        """Remove ``vip`` whoever added it (a VIP tagged by a killed predecessor); False when it was not there."""
        try:
            await self.ipr.addr(
                "del", index=index, address=str(vip.address.ip), prefixlen=vip.address.network.prefixlen
            )
        except NetlinkError as exc:
            if exc.code not in (errno.EADDRNOTAVAIL, errno.ENOENT, errno.ENODEV):
                raise NetlinkProblem(f"cannot remove {vip.address}: {exc.args[-1]}") from None
            return False
        return True


LinkCallback = Callable[[str, int, bool], None]
RESTART_DELAY = 0.5  # seconds between a failed link monitor and its restart


async def watch_links(callback: LinkCallback, stop: asyncio.Event, resync: Callable[[], Awaitable[None]]) -> None:
    """Call ``callback(ifname, ifindex, up)`` for every link message until ``stop`` is set (no polling).

    A netlink error (ENOBUFS when the kernel dropped messages, a closed socket) or an exception
    in ``callback`` does not end the monitor: it logs one line, reopens the socket and calls
    ``resync()`` so that link changes missed meanwhile are not lost.
    """
    while not stop.is_set():
        ipr = AsyncIPRoute()
        try:
            await ipr.bind(groups=RTMGRP_LINK)
            while not stop.is_set():
                async for msg in ipr.get():
                    name = msg.get("IFLA_IFNAME")
                    if name:
                        callback(name, msg.get("index", 0), _link_up(msg))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if stop.is_set():
                return
            log.warning("link monitor failed (%s: %s); restarting it", type(exc).__name__, exc)
        finally:
            ipr.close()
        await asyncio.sleep(RESTART_DELAY)
        try:
            await resync()
        except Exception as exc:
            log.warning("link state resynchronisation failed: %s", exc)
