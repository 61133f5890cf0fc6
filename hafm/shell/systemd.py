"""systemd's service notification protocol (sd_notify(3)): readiness, status, reload, stop and watchdog.

The protocol is one ``KEY=VALUE`` datagram per message to the ``AF_UNIX`` socket named by
``$NOTIFY_SOCKET`` (an abstract socket when it starts with ``@``).  It is written here with
:mod:`socket` rather than taken from a package:

* ``sdnotify`` (last release 0.3.2, 2017) has no watchdog timing, no ``WATCHDOG_PID`` check and no
  ``MONOTONIC_USEC`` for ``Type=notify-reload``, and hides every send error; hafm would write those
  parts itself anyway.
* ``systemd-python`` (``systemd.daemon.notify``) is a C extension that needs libsystemd's headers to
  build: a heavy dependency for one ``sendto``.

Everything here is a no-op when ``$NOTIFY_SOCKET`` is unset (not started by systemd).  With
``NotifyAccess=main`` in the unit, only hafm's own process is listened to, so notify and check scripts
that inherit the variable cannot speak for hafm.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Mapping

__all__ = ["Systemd"]

log = logging.getLogger("hafm.systemd")

# systemd truncates nothing, but a status line longer than this is not a summary any more.
MAX_STATUS = 200


class Systemd:
    """Tell systemd how hafm is doing; ``environ`` defaults to the process environment."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self.notify_socket = env.get("NOTIFY_SOCKET", "")
        self.address = _socket_address(self.notify_socket)
        self.watchdog_interval = _watchdog_interval(env)
        self._sock: socket.socket | None = None
        self._warned = False

    @property
    def enabled(self) -> bool:
        """True when started by systemd with a notification socket."""
        return self.address is not None

    def ready(self, status: str) -> None:
        """Start-up (or a reload) is complete: sockets are open and instances run."""
        self._send("READY=1", f"STATUS={_one_line(status)}")

    def status(self, text: str) -> None:
        """A one-line summary shown by ``systemctl status`` (e.g. ``VI_1 MASTER, VI_2 BACKUP``)."""
        self._send(f"STATUS={_one_line(text)}")

    def reloading(self) -> None:
        """A reload started; :meth:`ready` says it is done.  ``MONOTONIC_USEC`` is what systemd ≥ 253
        requires with ``Type=notify-reload`` to tell this reload from an earlier one."""
        self._send("RELOADING=1", f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}")

    def stopping(self) -> None:
        """Shutdown started: a Master is handing over and removing its VIPs."""
        self._send("STOPPING=1")

    async def watchdog(self) -> None:
        """Send ``WATCHDOG=1`` every half ``WatchdogSec`` until cancelled (returns at once without a watchdog).

        It runs on the event loop that sends adverts, so a loop stuck for longer than ``WatchdogSec``
        stops the pings and systemd restarts hafm: the failure the watchdog is for.
        """
        if self.watchdog_interval is None or not self.enabled:
            return
        while True:
            self._send("WATCHDOG=1")
            await asyncio.sleep(self.watchdog_interval)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _send(self, *fields: str) -> None:
        if self.address is None:
            return
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.setblocking(False)
            self._sock.sendto("\n".join(fields).encode(), self.address)
        except OSError as exc:
            # systemd gone or its queue full: hafm's job (the VIP) matters more than the message.
            if not self._warned:
                self._warned = True
                log.warning("cannot notify systemd at %s: %s", self.notify_socket, exc)
            return
        self._warned = False


def _socket_address(value: str) -> str | None:
    """The ``sendto`` address for ``$NOTIFY_SOCKET``: a path, or ``\\0name`` for ``@name``; None when unusable."""
    if value.startswith("@") and len(value) > 1:
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    if value:
        # systemd ≥ 254 may pass vsock:CID:PORT (VMs); hafm runs on the host it protects.
        log.warning("NOTIFY_SOCKET=%r is neither a path nor an abstract socket: not notifying systemd", value)
    return None


def _watchdog_interval(env: Mapping[str, str]) -> float | None:
    """Half of ``$WATCHDOG_USEC`` in seconds, when the watchdog is for this process (sd_watchdog_enabled(3))."""
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and pid != str(os.getpid()):
        return None
    return int(usec) / 2 / 1_000_000


def _one_line(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= MAX_STATUS else flat[: MAX_STATUS - 1] + "…"
