"""VIPs an earlier hafm left on their interfaces: removed at start-up, and by ``hafm cleanup``.

Every VIP hafm adds carries ``IFA_PROTO = HAFM_ADDR_PROTO``.  Only an address with that tag is
removed, so an address the operator configured (the address owner's own) is never touched.  A
SIGKILLed or crashed Master leaves its VIPs behind; while it stays down, the Backup that took
over holds the same addresses, and clients can be sent either way.  ``hafm cleanup``, run by
systemd's ``ExecStopPost=``, closes that window without waiting for a restart.
"""

from __future__ import annotations

from collections.abc import Mapping

from hafm.config.model import Config
from hafm.errors import DaemonError, NetlinkProblem
from hafm.shell.control import ControlServer
from hafm.shell.netlink import HAFM_ADDR_PROTO, InterfaceInfo, Netlink
from hafm.vrrp.constants import OWNER_PRIORITY

__all__ = ["cleanup", "clear_leftover_vips"]


async def clear_leftover_vips(
    config: Config, netlink: Netlink, infos: Mapping[str, InterfaceInfo], *, strict: bool
) -> list[str]:
    """Remove the VIPs of ``config`` found tagged on their interfaces; one line per VIP removed.

    ``strict`` (start-up): a VIP already configured untagged, on a node that is not its address
    owner, is a DaemonError.  An interface missing from ``infos`` holds nothing.
    """
    removed: list[str] = []
    for instance in config.instances.values():
        for vip in instance.all_vips:
            info = infos.get(vip.dev or instance.interface)
            if info is None:
                continue
            for address, proto in info.addresses:
                if address.ip != vip.address.ip:
                    continue
                if proto == HAFM_ADDR_PROTO:
                    try:
                        await netlink.remove_leftover(vip, info.index)
                    except NetlinkProblem as exc:
                        raise DaemonError(f"{instance.name}: {exc}") from None
                    removed.append(f"{instance.name}: removed {address} left on {info.name} by an earlier hafm")
                elif strict and instance.priority < OWNER_PRIORITY:
                    raise DaemonError(
                        f"{instance.name}: {vip.address.ip} is already configured on {info.name} and was not "
                        "added by hafm (remove it, or give this node priority 255 as its address owner)"
                    )
    return removed


async def cleanup(config: Config) -> list[str]:
    """``hafm cleanup``: remove the VIPs a stopped hafm left behind; one line per VIP removed.

    It holds the control socket meanwhile, as the daemon does: it refuses while a hafm runs
    (that hafm's VIPs are in use), and no hafm can start and add VIPs under it.
    """
    control = ControlServer(config.global_.control_socket, {})
    try:
        await control.start()
    except DaemonError as exc:
        raise DaemonError(f"cleanup refused (it only runs while hafm is stopped): {exc}") from None
    netlink = Netlink()
    try:
        try:
            await netlink.open()
        except OSError as exc:
            raise DaemonError(f"cannot open netlink: {exc.strerror}") from None
        names = {vip.dev or c.interface for c in config.instances.values() for vip in c.all_vips}
        infos: dict[str, InterfaceInfo] = {}
        for name in sorted(names):
            try:
                infos[name] = await netlink.interface(name)
            except NetlinkProblem:
                continue  # an interface that is gone took its addresses with it
        return await clear_leftover_vips(config, netlink, infos, strict=False)
    finally:
        netlink.close()
        await control.close()
