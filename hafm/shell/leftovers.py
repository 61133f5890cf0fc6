"""VIPs an earlier hafm left on their interfaces: removed at start-up, and by ``hafm cleanup``.

Every VIP hafm adds carries ``IFA_PROTO = HAFM_ADDR_PROTO``.  Only an address with that tag is
removed, so an address the operator configured (the address owner's own) is never touched.  A
SIGKILLed or crashed Master leaves its VIPs behind; while it stays down, the Backup that took
over holds the same addresses, and clients can be sent either way.  ``hafm cleanup``, run by
systemd's ``ExecStopPost=``, closes that window without waiting for a restart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from hafm.config.model import Config, IPAddress, IPInterface, Vip
from hafm.errors import AlreadyRunning, DaemonError, NetlinkProblem
from hafm.shell.control import ControlServer
from hafm.shell.netlink import HAFM_ADDR_PROTO, InterfaceInfo, Netlink
from hafm.vrrp.constants import OWNER_PRIORITY

__all__ = ["Cleared", "cleanup", "clear_leftover_vips"]


@dataclass
class Cleared:
    """What a clearing did: one line per address removed, one per address that could not be."""

    removed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


async def clear_leftover_vips(
    config: Config, netlink: Netlink, infos: Mapping[str, InterfaceInfo], *, strict: bool
) -> Cleared:
    """Remove the VIPs of ``config`` found tagged on their interfaces.

    ``strict`` (start-up): a VIP already configured untagged, on a node that is not its address
    owner, and an address that cannot be removed, are a DaemonError.  Otherwise (``hafm cleanup``)
    untagged addresses are left alone and a failure is reported and the rest still cleared; every
    tagged address on an interface of ``config`` goes, also one whose VIP has left the
    configuration since.  An interface missing from ``infos`` holds nothing.
    """
    cleared = Cleared()
    owners: dict[tuple[str, IPAddress], str] = {}  # (interface, address) -> instance name
    for instance in config.instances.values():
        for vip in instance.all_vips:
            device = vip.dev or instance.interface
            owners.setdefault((device, vip.address.ip), instance.name)
    for device in dict.fromkeys(device for device, _ in owners):
        info = infos.get(device)
        if info is None:
            continue
        for address, proto in info.addresses:
            name = owners.get((device, address.ip))
            if proto == HAFM_ADDR_PROTO and (name is not None or not strict):
                await _remove(cleared, netlink, info, address, name, strict=strict)
            elif name is not None and strict and config.instances[name].priority < OWNER_PRIORITY:
                raise DaemonError(
                    f"{name}: {address.ip} is already configured on {device} and was not "
                    "added by hafm (remove it, or give this node priority 255 as its address owner)"
                )
    return cleared


async def _remove(
    cleared: Cleared, netlink: Netlink, info: InterfaceInfo, address: IPInterface, name: str | None, *, strict: bool
) -> None:
    who = f"{name}: " if name is not None else ""
    try:
        # The prefix found on the interface, not the configured one: the kernel matches both.
        gone = await netlink.remove_leftover(Vip(address=address), info.index)
    except NetlinkProblem as exc:
        if strict:
            raise DaemonError(f"{who}{info.name}: {exc}") from None
        cleared.failed.append(f"{who}{info.name}: {exc}")
        return
    if gone:
        unused = "" if name is not None else " (no instance has it now)"
        cleared.removed.append(f"{who}removed {address} left on {info.name} by an earlier hafm{unused}")


async def cleanup(config: Config) -> Cleared:
    """``hafm cleanup``: remove the VIPs a stopped hafm left behind.

    It holds the control socket meanwhile, as the daemon does: it refuses while a hafm runs
    (that hafm's VIPs are in use), and no hafm can start and add VIPs under it.
    """
    control = ControlServer(config.global_.control_socket, {})
    try:
        await control.start()
    except AlreadyRunning as exc:
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
