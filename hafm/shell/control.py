"""The control socket: ``hafm status``, ``hafm reload`` and ``hafm maintenance`` talk to the daemon here.

A Unix stream socket (mode 0600, its directory created 0755) speaking one JSON
object per line each way: ``{"command": "status", ...}`` in, ``{"ok": true,
...}`` or ``{"ok": false, "error": "..."}`` out.  Only root or the user hafm
runs as may talk to it (``SO_PEERCRED``); a request that is not one JSON
object of at most :data:`MAX_REQUEST` bytes within :data:`REQUEST_TIMEOUT`
seconds gets an error and the connection is closed.  Nothing a client sends can
raise into the daemon.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import stat
import struct
import tempfile
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from hafm.errors import AlreadyRunning, DaemonError, HafmError
from hafm.trust import foreign_owner, shared_directory_reason, untrusted_reason, writable_by_others

log = logging.getLogger("hafm")

MAX_REQUEST = 64 * 1024
REQUEST_TIMEOUT = 2.0
MAX_CLIENTS = 16

Handler = Callable[[Mapping[str, Any]], Awaitable[dict[str, Any]]]


class ControlServer:
    def __init__(self, path: str, handlers: Mapping[str, Handler]) -> None:
        self.path = Path(path)
        self.handlers = dict(handlers)
        self._server: asyncio.Server | None = None
        self._clients = asyncio.Semaphore(MAX_CLIENTS)

    async def start(self) -> None:
        directory = self.path.parent
        try:
            directory.mkdir(mode=0o755, parents=True, exist_ok=True)
        except OSError as exc:
            raise DaemonError(f"control socket {self.path}: cannot create {directory}: {exc.strerror}") from None
        problem = untrusted_reason(str(directory)) or shared_directory_reason(str(directory))
        if problem:
            raise DaemonError(f"control socket {self.path}: refused: {problem}")
        self._remove_stale()
        try:
            self._server = await asyncio.start_unix_server(self._client, path=str(self.path), limit=MAX_REQUEST)
        except OSError as exc:
            raise DaemonError(f"control socket {self.path}: {exc.strerror or exc}") from None
        os.chmod(self.path, 0o600)

    def _remove_stale(self) -> None:
        try:
            mode = self.path.lstat().st_mode
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(mode):
            raise DaemonError(f"control socket {self.path}: exists and is not a socket")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(str(self.path))
        except OSError:
            self.path.unlink()  # left by a hafm that was killed
            return
        finally:
            probe.close()
        raise AlreadyRunning(f"control socket {self.path}: another hafm is listening there")

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            reply = await self._serve(reader, writer)
            try:
                data = json.dumps(reply).encode()
            except (TypeError, ValueError, RecursionError) as exc:
                data = json.dumps({"ok": False, "error": f"internal error: the answer is not JSON ({exc})"}).encode()
            writer.write(data + b"\n")
            await asyncio.wait_for(writer.drain(), REQUEST_TIMEOUT)
        except Exception as exc:  # a client never harms the daemon
            log.debug("control client: %s: %s", type(exc).__name__, exc)
        finally:
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> dict[str, Any]:
        sock = writer.get_extra_info("socket")
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        _pid, uid, _gid = struct.unpack("3i", creds)
        if uid not in (0, os.getuid()):
            log.warning("control socket: refused a client with uid %d", uid)
            return {"ok": False, "error": "permission denied: only root or hafm's user may use the control socket"}
        try:
            line = await asyncio.wait_for(reader.readline(), REQUEST_TIMEOUT)
        except (ValueError, asyncio.LimitOverrunError):
            return {"ok": False, "error": f"request longer than {MAX_REQUEST} bytes"}
        except TimeoutError:
            return {"ok": False, "error": f"no complete request within {REQUEST_TIMEOUT:g} s"}
        try:
            request = json.loads(line)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return {"ok": False, "error": "the request is not JSON"}
        if not isinstance(request, dict) or not isinstance(request.get("command"), str):
            return {"ok": False, "error": 'the request must be a JSON object with a "command"'}
        handler = self.handlers.get(request["command"])
        if handler is None:
            known = ", ".join(sorted(self.handlers))
            return {"ok": False, "error": f"unknown command {request['command']!r} (known: {known})"}
        try:
            # Only running commands are limited: a client that is slow to send holds no slot.
            async with self._clients:
                return await handler(request)
        except HafmError as exc:
            return {"ok": False, "error": str(exc)}
        except Exception as exc:
            log.error("control command %s failed: %s: %s", request["command"], type(exc).__name__, exc)
            return {"ok": False, "error": f"internal error: {type(exc).__name__}: {exc}"}


def read_trusted_file(path: Path, limit: int = MAX_REQUEST) -> str:
    """The text of ``path`` if it is a regular file of root's (or ours) that nobody else may write.

    Opened without following a symlink; OSError (FileNotFoundError when absent) otherwise.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(f"{path} is not a regular file")
        if foreign_owner(info) or writable_by_others(info):
            raise OSError(f"{path} is not root's or is writable by others: not trusted")
        return file.read(limit).decode(errors="replace")


def write_file_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` (mode 0600) through a fresh temporary file: no link is followed."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as file:
            file.write(text)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def request(path: str, payload: Mapping[str, Any], *, timeout: float = 30.0) -> dict[str, Any]:
    """Send one request to the daemon listening on ``path``; a HafmError (one line) when none answers."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        try:
            sock.connect(path)
        except FileNotFoundError:
            raise HafmError(f"no hafm daemon is listening on {path} (is hafm running?)") from None
        except ConnectionRefusedError:
            raise HafmError(f"no hafm daemon is listening on {path} (a stale socket: is hafm running?)") from None
        except PermissionError:
            raise HafmError(f"{path}: permission denied (run as root)") from None
        except OSError as exc:
            raise HafmError(f"cannot connect to {path}: {exc.strerror or exc}") from None
        sock.sendall(json.dumps(dict(payload)).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(1 << 16)
            if not chunk:
                break
            data += chunk
    except TimeoutError:
        raise HafmError(f"hafm on {path} did not answer within {timeout:g} s") from None
    finally:
        sock.close()
    try:
        reply = json.loads(data)
    except ValueError:
        raise HafmError(f"hafm on {path} sent an unreadable answer") from None
    if not isinstance(reply, dict):
        raise HafmError(f"hafm on {path} sent an unreadable answer")
    return reply
