"""A tiny HTTP server standing in for a real web server behind a VIP.

``python -m hafm.lab.testpage --port 80 [--address X] [--hang]`` serves
``GET /test/test.html`` with the body ``this is the test page <br> from server X``
so a client can tell which real server answered through the virtual address.
With ``--hang`` it accepts connections and reads the request but never answers,
which is what a wedged application looks like to a health check.

The lab (:mod:`hafm.lab.network`) runs it inside a network namespace; it only needs the
standard library so it starts fast.
"""

from __future__ import annotations

import argparse
import json
import socket
import socketserver
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TEST_PATH = "/test/test.html"


def page_body(address: str) -> str:
    """The exact body served for :data:`TEST_PATH` by the server at ``address``."""
    return f"this is the test page <br> from server {address}"


def first_global_ipv4() -> str | None:
    """First global IPv4 address of the current network namespace, or None."""
    try:
        out = subprocess.run(
            ["ip", "-j", "-4", "addr", "show", "scope", "global"],
            capture_output=True,
            text=True,
            check=True,
            timeout=5,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for link in json.loads(out or "[]"):
        for info in link.get("addr_info", []):
            if "local" in info:
                return str(info["local"])
    return None


class _DualStackServer(ThreadingHTTPServer):
    """Listens on ``::`` for IPv4 and IPv6 alike (a VIP may be of either family)."""

    address_family = socket.AF_INET6
    daemon_threads = True

    def server_bind(self) -> None:
        # IPV6_V6ONLY=0 so IPv4 clients reach the same socket via mapped addresses.
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        # HTTPServer.server_bind calls getfqdn(), which can stall for seconds on DNS
        # inside a namespace with no resolver; the name is never used here.
        socketserver.TCPServer.server_bind(self)
        self.server_name = "hafm-testpage"
        self.server_port = self.server_address[1]


class _V4Server(_DualStackServer):
    """Fallback when IPv6 is disabled in the namespace."""

    address_family = socket.AF_INET

    def server_bind(self) -> None:
        socketserver.TCPServer.server_bind(self)
        self.server_name = "hafm-testpage"
        self.server_port = self.server_address[1]


def make_handler(address: str, hang: bool) -> type[BaseHTTPRequestHandler]:
    """Build the request handler class answering for ``address``."""
    body = page_body(address).encode()
    never = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        server_version = "hafm-testpage"
        sys_version = ""

        def do_GET(self) -> None:  # noqa: N802 - http.server naming
            if hang:
                # Connection stays open with the request read and no reply: a health
                # check must time out rather than get a refusal.
                never.wait()
                return
            if self.path.split("?", 1)[0] != TEST_PATH:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            """Quiet: the lab runs many of these and nobody reads their access logs."""

    return Handler


def make_server(port: int, address: str, hang: bool = False) -> ThreadingHTTPServer:
    """Create (bind and listen) the test page server on all addresses, port ``port``."""
    handler = make_handler(address, hang)
    try:
        return _DualStackServer(("::", port), handler)
    except OSError as exc:
        if exc.errno not in (97, 99):  # EAFNOSUPPORT / EADDRNOTAVAIL: no IPv6 here
            raise
        return _V4Server(("0.0.0.0", port), handler)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m hafm.lab.testpage``."""
    parser = argparse.ArgumentParser(prog="python -m hafm.lab.testpage", description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--port", type=int, default=80)
    parser.add_argument("--address", help="address named in the page (default: first global IPv4)")
    parser.add_argument("--hang", action="store_true", help="accept and read requests but never answer")
    args = parser.parse_args(argv)
    address = args.address or first_global_ipv4() or "unknown"
    try:
        server = make_server(args.port, address, hang=args.hang)
    except OSError as exc:
        parser.exit(1, f"hafm.lab.testpage: cannot listen on port {args.port}: {exc.strerror}\n")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
