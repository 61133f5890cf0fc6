"""A small etcd v3 client over etcd's JSON gateway, with httpx: leases, one transaction, ranges, watch.

Only what the witness needs (docs/witness.md says why this and not aetcd): ``/v3/lease/grant``,
``/v3/lease/keepalive``, ``/v3/lease/revoke``, ``/v3/kv/txn``, ``/v3/kv/range``, ``/v3/kv/put``,
streaming ``/v3/watch`` and ``/v3/auth/authenticate``.  Keys and values are base64 on the wire,
64-bit integers are JSON strings.  Several endpoints: a request that cannot reach one (connection
refused, timeout) tries the next, and the one that answered is tried first next time; when none
answers, :class:`EtcdUnreachable`.  httpx is imported here only, so a daemon without a witness never
loads it.
"""

from __future__ import annotations

import base64
import json
import ssl
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hafm.trust import tls_file_reason

if TYPE_CHECKING:
    import httpx

__all__ = ["EtcdClient", "EtcdError", "EtcdUnreachable", "KeyValue", "WatchEvent", "WatchInterrupted", "prefix_end"]


class EtcdError(Exception):
    """etcd answered, with an error (bad request, auth refused, lease not found...)."""


class EtcdUnreachable(EtcdError):
    """No endpoint answered."""


class WatchInterrupted(EtcdError):
    """A watch stream broke (its member died or was cut off); the next request tries another endpoint."""


@dataclass(frozen=True, kw_only=True)
class KeyValue:
    key: str
    value: str
    lease: int
    mod_revision: int


@dataclass(frozen=True, kw_only=True)
class WatchEvent:
    deleted: bool
    kv: KeyValue


# A member that answers these cannot serve now (no leader, shutting down, overloaded): try the next one.
UNAVAILABLE = frozenset({408, 500, 502, 503, 504})


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _unb64(text: str) -> str:
    return base64.b64decode(text).decode(errors="replace")


def prefix_end(prefix: str) -> str:
    """The range end that selects every key starting with ``prefix`` (etcd's ``--prefix``)."""
    raw = bytearray(prefix.encode())
    raw[-1] += 1  # prefixes here end in '/', never 0xff
    return raw.decode()


def _kv(raw: dict[str, Any]) -> KeyValue:
    return KeyValue(
        key=_unb64(raw.get("key", "")),
        value=_unb64(raw.get("value", "")),
        lease=int(raw.get("lease", 0)),
        mod_revision=int(raw.get("mod_revision", 0)),
    )


def _tls_context(ca_file: str | None, cert_file: str | None, key_file: str | None) -> ssl.SSLContext | bool:
    """The TLS set-up for etcd: the system's CAs (True) unless a CA or client certificate is given.

    Each file passes the trust rule where it is loaded, not only when the config was checked: a CA
    another user could replace lets them impersonate etcd, which decides who may hold the VIP; the
    key, which lets its reader act as this node, may not be readable by others either.
    Raises ValueError (a refused file) or OSError/ssl.SSLError (unreadable, not PEM).
    """
    if ca_file is None and cert_file is None:
        return True
    for toml_key, path in (("ca", ca_file), ("cert", cert_file), ("key", key_file)):
        if path is not None and (reason := tls_file_reason(toml_key, path)):
            raise ValueError(f"witness.{toml_key}: refused: {reason}")
    context = ssl.create_default_context(cafile=ca_file)
    if cert_file is not None:
        context.load_cert_chain(cert_file, key_file)
    return context


class EtcdClient:
    """Requests to an etcd cluster through its JSON gateway (one shared :class:`httpx.AsyncClient`)."""

    def __init__(
        self,
        endpoints: Sequence[str],
        *,
        timeout: float,
        ca_file: str | None = None,
        cert_file: str | None = None,
        key_file: str | None = None,
        user: str | None = None,
        password: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        import httpx  # only daemons with a witness pay for it

        self._httpx = httpx
        self.endpoints = list(endpoints)
        self.timeout = timeout
        self._current = 0
        self._credentials = (user, password) if user is not None and password is not None else None
        self._token: str | None = None
        verify = _tls_context(ca_file, cert_file, key_file)
        self._client = httpx.AsyncClient(verify=verify, timeout=httpx.Timeout(timeout), transport=transport)

    async def aclose(self) -> None:
        await self._client.aclose()

    # -- plumbing --------------------------------------------------------------------------------

    def _order(self) -> list[int]:
        count = len(self.endpoints)
        return [(self._current + i) % count for i in range(count)]

    def _headers(self) -> dict[str, str]:
        return {"Authorization": self._token} if self._token else {}

    async def _authenticate(self, endpoint: str) -> None:
        assert self._credentials is not None
        user, password = self._credentials
        response = await self._client.post(
            f"{endpoint}/v3/auth/authenticate", json={"name": user, "password": password}
        )
        body = self._body(response)
        token = body.get("token")
        if not isinstance(token, str):
            raise EtcdError(f"{endpoint}: authentication refused")
        self._token = token

    def _body(self, response: httpx.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            raise EtcdError(f"{response.url}: HTTP {response.status_code}, not JSON") from None
        if response.status_code != 200 or not isinstance(body, dict) or "error" in body:
            message = body.get("message") or body.get("error") if isinstance(body, dict) else body
            raise EtcdError(f"{response.url.path}: HTTP {response.status_code}: {message}")
        return body

    async def call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST ``body`` to ``path`` on the first endpoint that answers."""
        problems = []
        for index in self._order():
            endpoint = self.endpoints[index]
            # A pooled keep-alive connection the server (or a cancelled watch) closed fails on first use:
            # that is one more try on the same endpoint, not a dead member.
            for attempt in range(2):
                try:
                    response = await self._post(endpoint, path, body)
                except (self._httpx.ReadError, self._httpx.WriteError, self._httpx.RemoteProtocolError) as exc:
                    if attempt == 0:
                        continue
                    problems.append(f"{endpoint}: {type(exc).__name__}: {exc}")
                except (self._httpx.TransportError, ssl.SSLError, OSError) as exc:
                    problems.append(f"{endpoint}: {type(exc).__name__}: {exc or 'timed out'}")
                else:
                    if response.status_code in UNAVAILABLE:
                        problems.append(f"{endpoint}: HTTP {response.status_code}: {response.text[:200]}")
                        break
                    self._current = index
                    return self._body(response)
                break
        raise EtcdUnreachable("; ".join(problems))

    async def _post(self, endpoint: str, path: str, body: dict[str, Any]) -> httpx.Response:
        if self._credentials is not None and self._token is None:
            await self._authenticate(endpoint)
        response = await self._client.post(f"{endpoint}{path}", json=body, headers=self._headers())
        if response.status_code == 401 and self._credentials is not None:
            self._token = None  # expired token: once more with a fresh one
            await self._authenticate(endpoint)
            response = await self._client.post(f"{endpoint}{path}", json=body, headers=self._headers())
        return response

    # -- leases ----------------------------------------------------------------------------------

    async def grant(self, ttl: int) -> tuple[int, int]:
        """A new lease: (id, the TTL etcd granted, which may be above ``ttl``)."""
        body = await self.call("/v3/lease/grant", {"TTL": str(ttl)})
        return int(body["ID"]), int(body["TTL"])

    async def keepalive(self, lease: int) -> int:
        """Renew ``lease``; its remaining TTL, 0 if etcd no longer knows it."""
        body = await self.call("/v3/lease/keepalive", {"ID": str(lease)})
        return int(body.get("result", {}).get("TTL", 0))

    async def revoke(self, lease: int) -> None:
        """Drop ``lease`` and every key bound to it (already gone is fine)."""
        try:
            await self.call("/v3/lease/revoke", {"ID": str(lease)})
        except EtcdUnreachable:
            raise
        except EtcdError as exc:
            if "not found" not in str(exc):
                raise

    # -- keys ------------------------------------------------------------------------------------

    async def create(self, key: str, value: str, lease: int) -> tuple[bool, KeyValue | None, int]:
        """Create ``key`` = ``value`` bound to ``lease`` if it does not exist.

        Returns (created, the key as it stands when it was not created, the store revision).
        """
        body = await self.call(
            "/v3/kv/txn",
            {
                "compare": [{"target": "CREATE", "key": _b64(key), "result": "EQUAL", "create_revision": "0"}],
                "success": [{"request_put": {"key": _b64(key), "value": _b64(value), "lease": str(lease)}}],
                "failure": [{"request_range": {"key": _b64(key)}}],
            },
        )
        revision = int(body.get("header", {}).get("revision", 0))
        if body.get("succeeded"):
            return True, None, revision
        responses = body.get("responses") or [{}]
        kvs = responses[0].get("response_range", {}).get("kvs") or []
        return False, (_kv(kvs[0]) if kvs else None), revision

    async def put(self, key: str, value: str, lease: int) -> None:
        await self.call("/v3/kv/put", {"key": _b64(key), "value": _b64(value), "lease": str(lease)})

    async def range_prefix(self, prefix: str) -> list[KeyValue]:
        body = await self.call("/v3/kv/range", {"key": _b64(prefix), "range_end": _b64(prefix_end(prefix))})
        return [_kv(raw) for raw in body.get("kvs") or []]

    async def watch(self, prefix: str, start_revision: int, idle: float) -> AsyncIterator[WatchEvent]:
        """Changes to keys under ``prefix`` from ``start_revision``; ends quietly after ``idle`` seconds
        without news (the caller checks the state again and watches anew: a silent dead stream must not
        hide a release forever)."""
        request = {
            "create_request": {
                "key": _b64(prefix),
                "range_end": _b64(prefix_end(prefix)),
                "start_revision": str(start_revision),
            }
        }
        httpx = self._httpx
        timeout = httpx.Timeout(self.timeout, read=idle)
        endpoint = self.endpoints[self._current]
        try:
            async with self._client.stream(
                "POST", f"{endpoint}/v3/watch", json=request, headers=self._headers(), timeout=timeout
            ) as response:
                if response.status_code != 200:
                    raise EtcdError(f"{endpoint}/v3/watch: HTTP {response.status_code}")
                async for line in response.aiter_lines():
                    if not line.strip():
                        continue
                    result = json.loads(line).get("result", {})
                    if result.get("canceled"):
                        raise EtcdError(f"watch canceled: {result.get('cancel_reason', '')}")
                    for raw in result.get("events") or []:
                        yield WatchEvent(deleted=raw.get("type") == "DELETE", kv=_kv(raw.get("kv", {})))
        except httpx.ReadTimeout:
            return
        except (httpx.TransportError, OSError) as exc:
            # Only requests decide reachability (they fail over); a broken stream moves on to the next member.
            self._current = (self._current + 1) % len(self.endpoints)
            raise WatchInterrupted(f"{endpoint}: watch: {type(exc).__name__}: {exc}") from None
