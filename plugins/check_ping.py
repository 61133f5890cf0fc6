"""The ``ping`` check: one ICMP/ICMPv6 echo request; up when the matching reply arrives.

No external ``ping`` binary and no hand-written ICMP: icmplib sends the echo.
The probe first uses an unprivileged ICMP datagram socket (allowed when the
group is inside ``net.ipv4.ping_group_range``; the kernel then owns the echo
identifier and filters replies) and falls back to a raw socket, which needs
root or CAP_NET_RAW.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hafm.config.model import CheckConfig
from hafm.hooks import CheckType, Probe, ProbeResult, check_keys, hookimpl


def validate(options: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``host`` (address or name) is required."""
    problems = check_keys(options, required=("host",))
    host = options.get("host")
    if host is not None and (not isinstance(host, str) or not host):
        problems.append(("host", "must be an IP address or host name"))
    return problems


async def ping_once(host: str, timeout: float) -> ProbeResult:
    """Send one echo request to ``host``; up when the reply arrives within ``timeout`` seconds."""
    import icmplib  # imported when a ping check runs, not at every start

    try:
        try:
            reply = await icmplib.async_ping(host, count=1, timeout=timeout, privileged=False)
        except icmplib.SocketPermissionError:
            reply = await icmplib.async_ping(host, count=1, timeout=timeout, privileged=True)
    except icmplib.NameLookupError:
        return ProbeResult(ok=False, detail=f"cannot resolve {host}")
    except icmplib.ICMPLibError as exc:
        return ProbeResult(ok=False, detail=f"ping {host}: {exc}")
    except OSError as exc:
        return ProbeResult(ok=False, detail=f"ping {host}: {exc.strerror or exc}")
    if not reply.is_alive:
        return ProbeResult(ok=False, detail=f"no reply from {reply.address} within {timeout:g} s")
    return ProbeResult(ok=True, detail=f"reply from {reply.address} in {reply.avg_rtt:.1f} ms")


def create(check: CheckConfig) -> Probe:
    host: str = check.options["host"]

    async def probe() -> ProbeResult:
        return await ping_once(host, check.timeout)

    return probe


@hookimpl
def hafm_register_check_types() -> list[CheckType]:
    return [CheckType(name="ping", validate=validate, create=create)]
