"""hafm/shell/leftovers.py on a fake netlink: only a VIP tagged by hafm is removed, whoever asks."""

from __future__ import annotations

import asyncio
import ipaddress
from pathlib import Path
from typing import Any

import pytest

from hafm.config.model import Config
from hafm.errors import DaemonError
from hafm.shell.leftovers import clear_leftover_vips
from hafm.shell.netlink import HAFM_ADDR_PROTO, InterfaceInfo
from tests.helpers import instance_config

HOST = ipaddress.ip_interface("198.51.100.1/24")
VIP = ipaddress.ip_interface("198.51.100.100/24")
OPERATOR = 0  # IFA_PROTO of an address added by hand (ip addr add)


class FakeNetlink:
    def __init__(self) -> None:
        self.removed: list[tuple[str, int]] = []

    async def remove_leftover(self, vip: Any, index: int) -> None:
        self.removed.append((str(vip.address), index))


def eth0(*vip_proto: int) -> dict[str, InterfaceInfo]:
    addresses = ((HOST, OPERATOR), *((VIP, proto) for proto in vip_proto))
    return {"eth0": InterfaceInfo(name="eth0", index=7, mac="02:00:00:00:00:01", up=True, addresses=addresses)}


def clear(infos: dict[str, InterfaceInfo], *, strict: bool, priority: int = 100) -> tuple[list[str], FakeNetlink]:
    config = Config(path=Path("/etc/hafm.toml"), instances={"VI_1": instance_config(priority=priority)})
    netlink = FakeNetlink()
    lines = asyncio.run(clear_leftover_vips(config, netlink, infos, strict=strict))  # type: ignore[arg-type]
    return lines, netlink


@pytest.mark.parametrize("strict", [True, False])
def test_a_vip_tagged_by_hafm_is_removed(strict: bool) -> None:
    lines, netlink = clear(eth0(HAFM_ADDR_PROTO), strict=strict)
    assert lines == ["VI_1: removed 198.51.100.100/24 left on eth0 by an earlier hafm"]
    assert netlink.removed == [("198.51.100.100/24", 7)]


def test_cleanup_leaves_an_address_the_operator_configured() -> None:
    lines, netlink = clear(eth0(OPERATOR), strict=False)
    assert (lines, netlink.removed) == ([], [])


def test_start_up_refuses_an_untagged_vip_unless_it_is_the_address_owner() -> None:
    with pytest.raises(DaemonError, match=r"^VI_1: 198.51.100.100 is already configured on eth0 and was not added"):
        clear(eth0(OPERATOR), strict=True)
    assert clear(eth0(OPERATOR), strict=True, priority=255)[0] == []  # the owner's own address


def test_nothing_to_do_on_a_missing_interface_or_without_the_vip() -> None:
    assert clear({}, strict=False)[0] == []
    assert clear(eth0(), strict=True)[0] == []
