"""hafm/shell/leftovers.py on a fake netlink: only a VIP tagged by hafm is removed, whoever asks."""

from __future__ import annotations

import asyncio
import ipaddress
from pathlib import Path
from typing import Any

import pytest

from hafm.config.model import Config, GlobalConfig
from hafm.errors import DaemonError, NetlinkProblem
from hafm.shell.leftovers import cleanup, clear_leftover_vips
from hafm.shell.netlink import HAFM_ADDR_PROTO, InterfaceInfo
from tests.helpers import instance_config

HOST = ipaddress.ip_interface("198.51.100.1/24")
VIP = ipaddress.ip_interface("198.51.100.100/24")
OPERATOR = 0  # IFA_PROTO of an address added by hand (ip addr add)


class FakeNetlink:
    def __init__(self, fail: bool = False) -> None:
        self.removed: list[tuple[str, int]] = []
        self.fail = fail

    async def remove_leftover(self, vip: Any, index: int) -> bool:
        if self.fail:
            raise NetlinkProblem(f"cannot remove {vip.address}: Operation not permitted")
        self.removed.append((str(vip.address), index))
        return True


def eth0(*vip_proto: int, vip: Any = VIP) -> dict[str, InterfaceInfo]:
    addresses = ((HOST, OPERATOR), *((vip, proto) for proto in vip_proto))
    return {"eth0": InterfaceInfo(name="eth0", index=7, mac="02:00:00:00:00:01", up=True, addresses=addresses)}


def clear(
    infos: dict[str, InterfaceInfo], *, strict: bool, priority: int = 100, netlink: FakeNetlink | None = None
) -> tuple[list[str], FakeNetlink]:
    config = Config(path=Path("/etc/hafm.toml"), instances={"VI_1": instance_config(priority=priority)})
    netlink = netlink or FakeNetlink()
    cleared = asyncio.run(clear_leftover_vips(config, netlink, infos, strict=strict))  # type: ignore[arg-type]
    return cleared.removed + cleared.failed, netlink


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


def test_the_prefix_on_the_interface_is_the_one_removed() -> None:
    """The configured prefix changed since the VIP was added: the kernel deletes only an exact match."""
    lines, netlink = clear(eth0(HAFM_ADDR_PROTO, vip=ipaddress.ip_interface("198.51.100.100/25")), strict=False)
    assert netlink.removed == [("198.51.100.100/25", 7)]
    assert lines == ["VI_1: removed 198.51.100.100/25 left on eth0 by an earlier hafm"]


def test_cleanup_removes_a_tagged_vip_no_instance_has_any_more_but_start_up_leaves_it() -> None:
    gone = ipaddress.ip_interface("198.51.100.101/24")  # dropped from the config after it was added
    infos = eth0(HAFM_ADDR_PROTO, vip=gone)
    lines, netlink = clear(infos, strict=False)
    assert lines == ["removed 198.51.100.101/24 left on eth0 by an earlier hafm (no instance has it now)"]
    assert clear(infos, strict=True)[1].removed == []


def test_cleanup_reports_a_failure_and_start_up_stops_on_it() -> None:
    lines, _ = clear(eth0(HAFM_ADDR_PROTO), strict=False, netlink=FakeNetlink(fail=True))
    assert lines == ["VI_1: eth0: cannot remove 198.51.100.100/24: Operation not permitted"]
    with pytest.raises(DaemonError, match="^VI_1: eth0: cannot remove 198.51.100.100/24: Operation not permitted$"):
        clear(eth0(HAFM_ADDR_PROTO), strict=True, netlink=FakeNetlink(fail=True))


def test_cleanup_says_refused_only_when_a_hafm_runs(tmp_path: Path) -> None:
    """A control socket hafm may not use is its own error, not "hafm is running"."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    config = Config(
        path=Path("/etc/hafm.toml"),
        global_=GlobalConfig(control_socket=str(shared / "hafm.sock")),
        instances={"VI_1": instance_config()},
    )
    with pytest.raises(DaemonError) as info:
        asyncio.run(cleanup(config))
    assert str(info.value).startswith(f"control socket {shared}/hafm.sock: refused: "), info.value
