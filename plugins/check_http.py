"""The ``http`` check: an HTTP(S) request whose status (and optionally body) must match.

Every probe uses a fresh TCP connection: a hung application server must not look
alive through a kept-alive socket opened while it was still healthy.  What is
costly and safe to share is shared: one ``httpx.AsyncClient`` per check (its pool
keeps no idle connection) and one TLS context per process, built only for
``https://`` URLs (loading the CA bundle costs ~10 ms and ~1 MiB).

httpx is imported when an http check is validated or created, not when hafm
starts, so a configuration without one does not pay for it.

A probe reads at most :data:`MAX_BODY` bytes of the body, and only when
``expect_body``/``expect_regex`` need it; ``expect_regex`` searches that capped
text with the ``regex`` package rather than ``re``: CPython's ``re`` holds the GIL
for a whole search and cannot be stopped, so a pattern whose matching time
explodes on a body the application sends (``(a|aa)+$``) would stall the daemon.
``regex`` searches on a thread of its own with the GIL released and gives up
just before the probe's ``timeout`` (a failed probe), so the loop keeps
sending adverts.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import logging
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from hafm.config.model import CheckConfig
from hafm.hooks import CheckType, Probe, ProbeResult, check_keys, hookimpl

if TYPE_CHECKING:
    import ssl

    import httpx
    import regex

# An expect_regex search gives up at this share of the probe's timeout (it started when the request did).
REGEX_SHARE = 0.9

REQUIRED = ("url",)
OPTIONAL = ("method", "expect_status", "expect_body", "expect_regex", "headers", "verify_tls", "source_address")
METHODS = ("GET", "HEAD", "POST", "PUT", "OPTIONS")
# A probe reads at most this many bytes of body (a check is not a download).
MAX_BODY = 65536
# httpx logs every request at INFO and httpcore every step at DEBUG: one line per probe.
# hafm logs a check when its state changes (hafm.shell.checks), so theirs are muted.
QUIET_LOGGERS = ("httpx", "httpcore")


def parse_status(spec: Any) -> tuple[range, ...]:
    """``200``, ``[200, 204]`` or ``"200-299"`` → the accepted status codes, as ranges (never expanded:
    ``"100-400000000"`` is refused by its bounds, not by building 400 million ints).

    Raises ValueError with a message fit for a config error.
    """
    if isinstance(spec, bool):
        raise ValueError(f"{spec!r} is not a status code")
    if isinstance(spec, int):
        ranges = [range(spec, spec + 1)]
    elif isinstance(spec, str):
        low, sep, high = spec.partition("-")
        try:
            first, last = int(low), int(high if sep else low)
        except ValueError:
            raise ValueError(f'{spec!r} is not a status code or a range like "200-299"') from None
        if first > last:
            raise ValueError(f"{spec!r} is an empty range")
        ranges = [range(first, last + 1)]
    elif isinstance(spec, list) and spec:
        ranges = [r for item in spec for r in parse_status(item)]
    else:
        raise ValueError(f'{spec!r} is not a status code, a list of codes or a range like "200-299"')
    for r in ranges:
        for code in (r.start, r.stop - 1):
            if not 100 <= code <= 599:
                raise ValueError(f"{code} is not an HTTP status code (100..599)")
    return tuple(ranges)


def validate(options: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Check the ``http`` keys; see docs/plugins.md for their meaning."""
    problems = check_keys(options, required=REQUIRED, optional=OPTIONAL)
    url = options.get("url")
    if url is not None:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            problems.append(("url", f"{url!r} is not an http:// or https:// URL"))
        else:
            import httpx

            try:
                httpx.URL(url)
            except httpx.InvalidURL as exc:
                problems.append(("url", f"{url!r} is not a valid URL: {exc}"))
    method = options.get("method")
    if method is not None and (not isinstance(method, str) or method.upper() not in METHODS):
        problems.append(("method", f"{method!r} is not one of {', '.join(METHODS)}"))
    if "expect_status" in options:
        try:
            parse_status(options["expect_status"])
        except ValueError as exc:
            problems.append(("expect_status", str(exc)))
    if "expect_body" in options and not isinstance(options["expect_body"], str):
        problems.append(("expect_body", "must be a string"))
    if "expect_regex" in options:
        import regex

        try:
            regex.compile(options["expect_regex"])
        except (regex.error, TypeError) as exc:
            problems.append(("expect_regex", f"not a valid regular expression: {exc}"))
    headers = options.get("headers")
    if headers is not None and (
        not isinstance(headers, Mapping)
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items())
    ):
        problems.append(("headers", "must be a table of strings"))
    if "verify_tls" in options and not isinstance(options["verify_tls"], bool):
        problems.append(("verify_tls", "must be true or false"))
    source = options.get("source_address")
    if source is not None and not _is_ip_address(source):
        problems.append(("source_address", f"{source!r} is not an IP address"))
    return problems


def _is_ip_address(value: Any) -> bool:
    try:
        return isinstance(value, str) and bool(ipaddress.ip_address(value))
    except ValueError:
        return False


@functools.cache
def tls_context(verify: bool) -> ssl.SSLContext:
    """The process's TLS context for ``verify_tls`` = ``verify``; built on first use, then shared."""
    import httpx

    return httpx.create_ssl_context(verify=verify)


@functools.cache
def _unused_tls_context() -> ssl.SSLContext:
    # httpx builds a verifying context (CA bundle and all) unless handed one, even for
    # http:// URLs that never use it; this one loads nothing and is never used.
    import ssl

    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


def make_client(check: CheckConfig) -> httpx.AsyncClient:
    """The check's client: a fresh TCP connection per request, TLS context shared."""
    import httpx

    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    options = check.options
    https = str(options["url"]).startswith("https://")
    transport = httpx.AsyncHTTPTransport(
        verify=tls_context(options.get("verify_tls", True)) if https else _unused_tls_context(),
        local_address=options.get("source_address"),
        retries=0,
        # No idle connection is kept, so each probe connects anew.
        limits=httpx.Limits(max_keepalive_connections=0),
    )
    return httpx.AsyncClient(transport=transport, timeout=check.timeout, follow_redirects=False)


async def read_capped(response: httpx.Response, limit: int = MAX_BODY) -> str:
    """At most ``limit`` bytes of ``response``'s body, decoded; the rest is never read."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
    return b"".join(chunks)[:limit].decode(response.encoding or "utf-8", errors="replace")


def create(check: CheckConfig) -> Probe:
    import httpx

    options = check.options
    url: str = options["url"]
    method = str(options.get("method", "GET")).upper()
    accepted = parse_status(options.get("expect_status", 200))
    expect_body: str | None = options.get("expect_body")
    expect_regex = _compile(options["expect_regex"]) if "expect_regex" in options else None
    # The server closes too, so no socket lingers in TIME_WAIT on our side only.
    headers = {"Connection": "close", **options.get("headers", {})}
    client = make_client(check)

    async def probe() -> ProbeResult:
        started = time.monotonic()
        try:
            async with client.stream(method, url, headers=headers) as response:
                status = response.status_code
                if not any(status in codes for codes in accepted):
                    return ProbeResult(ok=False, detail=f"HTTP {status}")
                if expect_body is None and expect_regex is None:
                    return ProbeResult(ok=True, detail=f"HTTP {status}")
                body = await read_capped(response)
        except httpx.HTTPError as exc:
            return ProbeResult(ok=False, detail=f"{type(exc).__name__}: {exc or 'no detail'}")
        if expect_body is not None and expect_body not in body:
            return ProbeResult(ok=False, detail=f"HTTP {status}, body lacks {expect_body!r}")
        if expect_regex is not None:
            try:
                # A tenth of the timeout before the runner's own, so the result says what took the time.
                found = await _search(expect_regex, body, deadline=started + REGEX_SHARE * check.timeout)
            except TimeoutError:
                detail = (
                    f"HTTP {status}, expect_regex {expect_regex.pattern!r} took too long (timeout {check.timeout:g} s)"
                )
                return ProbeResult(ok=False, detail=detail)
            if found is None:
                return ProbeResult(ok=False, detail=f"HTTP {status}, body does not match {expect_regex.pattern!r}")
        return ProbeResult(ok=True, detail=f"HTTP {status}")

    return probe


async def _search(pattern: regex.Pattern[str], text: str, *, deadline: float) -> regex.Match[str] | None:
    """``pattern.search(text)`` on a thread of its own, GIL released; TimeoutError at ``deadline`` (monotonic).

    A thread per search, not a shared pool: one check's runaway pattern cannot queue another check's
    search behind it.  A daemon thread, so a search still running never holds up exit; its time
    budget is taken when it starts, so it ends with the probe even when cancelled.
    """
    loop = asyncio.get_running_loop()
    outcome: asyncio.Future[regex.Match[str] | None] = loop.create_future()

    def settle(found: regex.Match[str] | None, error: BaseException | None) -> None:
        if outcome.done():  # the probe was cancelled meanwhile
            return
        if error is not None:
            outcome.set_exception(error)
        else:
            outcome.set_result(found)

    def work() -> None:
        found: regex.Match[str] | None = None
        error: BaseException | None = None
        try:
            found = pattern.search(text, concurrent=True, timeout=max(0.0, deadline - time.monotonic()))
        except BaseException as exc:  # handed to the probe, whatever it is
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is waiting
            loop.call_soon_threadsafe(settle, found, error)

    threading.Thread(target=work, name="hafm-regex", daemon=True).start()
    return await outcome


def _compile(pattern: str) -> regex.Pattern[str]:
    import regex  # only configurations with an expect_regex pay for it

    return regex.compile(pattern)


@hookimpl
def hafm_register_check_types() -> list[CheckType]:
    return [CheckType(name="http", validate=validate, create=create)]
