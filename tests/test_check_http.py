"""The http check's costs are bounded: one client and one TLS context, a capped body, quiet httpx.

Behaviour against real servers (status, body, timeouts) is in test_checks.py; these tests use
a small keep-alive server on loopback that counts TCP connections and can send an endless body.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from hafm.config.model import CheckConfig
from hafm.hooks import ProbeResult
from hafm.shell.checks import run_probe
from hafm_plugins import check_http


@dataclass
class Server:
    """Answers every request on a connection with 200 and keeps the connection open (HTTP/1.1
    keep-alive, whatever the client asks), so only the client can make a probe use a new one."""

    endless: bool = False  # an endless chunked body instead of a short one
    connections: int = 0
    listener: socket.socket = field(default_factory=lambda: socket.create_server(("127.0.0.1", 0)))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}/"

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self.answer, args=(conn,), daemon=True).start()

    def answer(self, conn: socket.socket) -> None:
        with conn:
            try:
                while conn.recv(65536):
                    if not self.endless:
                        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\nhello tomcat")
                        continue
                    conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                    chunk = b"x" * 16384
                    while True:
                        conn.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            except OSError:
                return


@pytest.fixture
def server() -> Iterator[Server]:
    yield from _serve(Server())


@pytest.fixture
def endless_server() -> Iterator[Server]:
    yield from _serve(Server(endless=True))


def _serve(server: Server) -> Iterator[Server]:
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    yield server
    server.listener.close()


def make_probe(url: str, timeout: float = 2.0, **options: Any) -> Any:
    check = CheckConfig(name="t", type="http", timeout=timeout, options={"url": url, **options})
    assert check_http.validate(check.options) == []
    return check_http.create(check)


def run(probe: Any, times: int, timeout: float = 3.0) -> list[ProbeResult]:
    async def probes() -> list[ProbeResult]:
        return [await run_probe(probe, timeout=timeout) for _ in range(times)]

    return asyncio.run(probes())


def test_two_probes_use_two_tcp_connections_even_if_the_server_keeps_alive(server: Server) -> None:
    # The operator's header beats hafm's "Connection: close": only the pool's no-keep-alive
    # limit is left to force a new connection.
    probe = make_probe(server.url, headers={"Connection": "keep-alive"})
    assert [r.ok for r in run(probe, 2)] == [True, True]
    assert server.connections == 2


def test_one_tls_context_per_process_and_none_for_plain_http(monkeypatch: pytest.MonkeyPatch) -> None:
    loaded: list[object] = []
    original = ssl.SSLContext.load_verify_locations

    def counting(self: ssl.SSLContext, *args: Any, **kwargs: Any) -> None:
        loaded.append(self)
        original(self, *args, **kwargs)

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counting)
    check_http.tls_context.cache_clear()
    for number in range(3):
        make_probe(f"http://127.0.0.1:{8000 + number}/")
    assert loaded == [], "an http:// check must not load the CA bundle"
    for number in range(3):
        make_probe(f"https://127.0.0.1:{8000 + number}/")
    assert len(loaded) == 1, "three https:// checks share one verifying context"
    assert check_http.tls_context(True) is check_http.tls_context(True)


def test_an_endless_body_is_read_up_to_the_cap_only(endless_server: Server) -> None:
    probe = make_probe(endless_server.url, expect_body="xxx")
    (result,) = run(probe, 1)
    # Without the cap the probe would read until its timeout and fail.
    assert result == ProbeResult(ok=True, detail="HTTP 200")
    missing = make_probe(endless_server.url, expect_regex="y")
    assert run(missing, 1)[0].detail == "HTTP 200, body does not match 'y'"


def test_a_runaway_expect_regex_gives_up_at_the_timeout_and_leaves_the_loop_running(endless_server: Server) -> None:
    """64 KiB of x against ``(x|xx)+y`` backtracks for longer than anyone waits: with ``re`` the loop (and
    every advert) would stop for good.  The probe fails at the check's timeout; the loop ticks meanwhile."""
    probe = make_probe(endless_server.url, timeout=1.0, expect_regex=r"(x|xx)+y")
    ticks = 0

    async def probe_while_ticking() -> ProbeResult:
        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.create_task(tick())
        try:
            return await run_probe(probe, timeout=1.0)  # as the daemon runs it: under the check's timeout
        finally:
            ticker.cancel()

    result = asyncio.run(probe_while_ticking())
    assert result == ProbeResult(ok=False, detail="HTTP 200, expect_regex '(x|xx)+y' took too long (timeout 1 s)")
    assert ticks >= 10, ticks  # the search ran off the loop, with the GIL released


def test_runaway_patterns_do_not_hold_up_another_checks_search(endless_server: Server) -> None:
    """Each search has its own thread: three runaway checks with a long timeout cannot queue a
    healthy check's search until its own, shorter timeout passes (a false failure)."""
    runaway = [make_probe(endless_server.url, timeout=1.5, expect_regex=r"(x|xx)+y") for _ in range(3)]
    healthy = make_probe(endless_server.url, timeout=0.5, expect_regex=r"x{100}")

    async def together() -> list[ProbeResult]:
        slow = [asyncio.ensure_future(run_probe(probe, timeout=5.0)) for probe in runaway]
        await asyncio.sleep(0.1)  # the runaway searches have started
        quick = await run_probe(healthy, timeout=0.5)
        return [quick, *await asyncio.gather(*slow)]

    quick, *slow = asyncio.run(together())
    assert quick == ProbeResult(ok=True, detail="HTTP 200")
    assert all("took too long (timeout 1.5 s)" in result.detail for result in slow)


def test_a_cancelled_probe_leaves_no_search_running_past_its_timeout(endless_server: Server) -> None:
    probe = make_probe(endless_server.url, timeout=0.5, expect_regex=r"(x|xx)+y")
    started = time.monotonic()
    assert run(probe, 1, timeout=0.2)[0].detail == "timeout after 0.2 s"  # cancelled mid-search
    searching = [t for t in threading.enumerate() if t.name == "hafm-regex"]
    assert searching, "the search runs on after its probe was cancelled (until the check's timeout)"
    for thread in searching:
        thread.join(timeout=2.0)
    assert not any(thread.is_alive() for thread in searching)
    assert time.monotonic() - started < 0.5 + 1.0  # it ended at the check's timeout, not at its own pace


def test_read_capped_stops_at_the_limit(endless_server: Server) -> None:
    import httpx

    async def read() -> str:
        async with httpx.AsyncClient() as client, client.stream("GET", endless_server.url) as response:
            return await check_http.read_capped(response, limit=1000)

    assert asyncio.run(read()) == "x" * 1000


def test_no_body_is_read_when_none_is_expected(endless_server: Server) -> None:
    # Reading the endless body would end in a timeout.
    assert run(make_probe(endless_server.url), 1) == [ProbeResult(ok=True, detail="HTTP 200")]


def test_probes_are_not_logged_by_httpx_at_info(server: Server, caplog: pytest.LogCaptureFixture) -> None:
    probe = make_probe(server.url)
    with caplog.at_level(logging.INFO):
        run(probe, 2)
    assert [r.getMessage() for r in caplog.records if r.name.startswith(("httpx", "httpcore"))] == []


def test_httpx_is_imported_only_when_an_http_check_is_made() -> None:
    code = (
        "import sys\n"
        "from hafm.plugin_manager import make_plugin_manager, check_types\n"
        "import hafm.cli, hafm.shell.daemon\n"
        "check_types(make_plugin_manager(load_entry_points=False))\n"
        "print('httpx' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_expect_regex_reads_posix_classes_like_keepalived_pcre() -> None:
    """docs/plugins.md: the regex package's syntax; a keepalived user's ``[[:digit:]]`` is a class."""
    found = check_http._compile(r"version [[:digit:]]+").search("tomcat version 10 ready")
    assert found is not None and found.group() == "version 10"
