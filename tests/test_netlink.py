"""hafm/shell/netlink.py without a kernel: the link monitor survives errors, and only our VIPs are removed."""

from __future__ import annotations

import asyncio
import errno
import ipaddress
from collections.abc import AsyncIterator
from typing import Any

import pytest

from hafm.config.model import Vip
from hafm.shell import netlink

VIP = Vip(address=ipaddress.ip_interface("198.51.100.100/24"))


class FlakyIPRoute:
    """The first socket fails like ENOBUFS after one message; later ones deliver a message each call."""

    opened = 0

    def __init__(self) -> None:
        FlakyIPRoute.opened += 1
        self.number = FlakyIPRoute.opened

    async def bind(self, groups: int) -> None:
        return None

    async def get(self) -> AsyncIterator[dict[str, Any]]:
        yield {"IFLA_IFNAME": "eth0", "index": 2, "flags": netlink.IFF_UP | netlink.IFF_LOWER_UP}
        if self.number == 1:
            raise OSError(errno.ENOBUFS, "No buffer space available")
        await asyncio.sleep(0.01)

    def close(self) -> None:
        return None


def test_the_link_monitor_restarts_after_an_error_and_resyncs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(netlink, "AsyncIPRoute", FlakyIPRoute)
    monkeypatch.setattr(netlink, "RESTART_DELAY", 0.01)
    seen: list[tuple[str, int, bool]] = []
    resyncs: list[int] = []

    async def scenario() -> None:
        stop = asyncio.Event()

        async def resync() -> None:
            resyncs.append(1)

        task = asyncio.create_task(netlink.watch_links(lambda *link: seen.append(link), stop, resync))
        while len(seen) < 3:
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(task, 2)

    asyncio.run(scenario())
    assert FlakyIPRoute.opened >= 2, "the monitor was not reopened"
    assert resyncs, "link state was not resynchronised after the restart"
    assert seen[0] == ("eth0", 2, True)


class RecordingIPRoute:
    def __init__(self, existing: bool) -> None:
        self.existing = existing
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def addr(self, command: str, **kwargs: Any) -> None:
        from pyroute2.netlink.exceptions import NetlinkError

        self.calls.append((command, kwargs))
        if command == "add" and self.existing:
            raise NetlinkError(errno.EEXIST, "File exists")


@pytest.mark.parametrize("existing", [False, True], ids=["added-by-hafm", "the-owner's-own-address"])
def test_only_an_address_hafm_added_is_removed(existing: bool) -> None:
    """The address owner's real address (already configured) must survive STOP and FAULT."""
    link = netlink.Netlink()
    fake = RecordingIPRoute(existing)
    link._ipr = fake  # type: ignore[assignment]

    async def scenario() -> None:
        await link.add_vip(VIP, 2)
        await link.remove_vip(VIP, 2)

    asyncio.run(scenario())
    removed = [call for call in fake.calls if call[0] == "del"]
    assert bool(removed) is not existing
