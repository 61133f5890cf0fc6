"""The ``http`` check: an HTTP(S) request whose status (and optionally body) must match.

Every probe uses a fresh connection: a hung application server must not look
alive through a kept-alive socket opened while it was still healthy.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Any

import httpx

from hafm.config.model import CheckConfig
from hafm.hooks import CheckType, Probe, ProbeResult, check_keys, hookimpl

REQUIRED = ("url",)
OPTIONAL = ("method", "expect_status", "expect_body", "expect_regex", "headers", "verify_tls", "source_address")
METHODS = ("GET", "HEAD", "POST", "PUT", "OPTIONS")
# Bodies are matched against at most this many characters (a check is not a download).
MAX_BODY = 65536


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
        try:
            re.compile(options["expect_regex"])
        except (re.error, TypeError) as exc:
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


def create(check: CheckConfig) -> Probe:
    options = check.options
    url: str = options["url"]
    method = str(options.get("method", "GET")).upper()
    accepted = parse_status(options.get("expect_status", 200))
    expect_body: str | None = options.get("expect_body")
    expect_regex = re.compile(options["expect_regex"]) if "expect_regex" in options else None
    # "Connection: close" as well as a per-probe client: belt and braces against reuse.
    headers = {"Connection": "close", **options.get("headers", {})}
    verify: bool = options.get("verify_tls", True)
    source: str | None = options.get("source_address")

    async def probe() -> ProbeResult:
        transport = httpx.AsyncHTTPTransport(verify=verify, local_address=source, retries=0)
        async with httpx.AsyncClient(transport=transport, timeout=check.timeout, follow_redirects=False) as client:
            try:
                response = await client.request(method, url, headers=headers)
            except httpx.HTTPError as exc:
                return ProbeResult(ok=False, detail=f"{type(exc).__name__}: {exc or 'no detail'}")
        if not any(response.status_code in codes for codes in accepted):
            return ProbeResult(ok=False, detail=f"HTTP {response.status_code}")
        body = response.text[:MAX_BODY]
        if expect_body is not None and expect_body not in body:
            return ProbeResult(ok=False, detail=f"HTTP {response.status_code}, body lacks {expect_body!r}")
        if expect_regex is not None and not expect_regex.search(body):
            return ProbeResult(
                ok=False, detail=f"HTTP {response.status_code}, body does not match {expect_regex.pattern!r}"
            )
        return ProbeResult(ok=True, detail=f"HTTP {response.status_code}")

    return probe


@hookimpl
def hafm_register_check_types() -> list[CheckType]:
    return [CheckType(name="http", validate=validate, create=create)]
