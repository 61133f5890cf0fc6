"""The built-in check types, probed against real servers, processes and files on loopback."""

from __future__ import annotations

import asyncio
import grp
import logging
import os
import pwd
import resource
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from hafm.config.model import CheckConfig
from hafm.hooks import CheckType, ProbeResult
from hafm.plugin_manager import check_types, make_plugin_manager
from hafm.shell.checks import CheckRunner, run_probe
from hafm_plugins import check_file

TYPES = check_types(make_plugin_manager(load_entry_points=False))


def probe_once(check_type: str, options: Mapping[str, Any], timeout: float = 2.0) -> ProbeResult:
    """Validate ``options``, build the probe and run it once under ``timeout`` like the runner does."""
    kind: CheckType = TYPES[check_type]
    assert kind.validate(options) == []
    check = CheckConfig(name="t", type=check_type, timeout=timeout, options=dict(options))
    return asyncio.run(run_probe(kind.create(check), timeout=timeout, plugin=kind.plugin))


# -- http -------------------------------------------------------------------------------------


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive capable: proves the probe does not reuse connections
    connections: list[str] = []
    seen_headers: list[dict[str, str]] = []

    def setup(self) -> None:
        super().setup()
        Handler.connections.append(self.client_address[0])

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        Handler.seen_headers.append(dict(self.headers))
        status, body = {
            "/ok": (200, b"hello tomcat world"),
            "/created": (201, b"made"),
            "/error": (500, b"oops"),
        }.get(self.path, (404, b"nope"))
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[str]:
    Handler.connections = []
    Handler.seen_headers = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def hung_server() -> Iterator[str]:
    """Accepts connections (the kernel completes the handshake) and never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    listener.close()


def test_http_ok_and_body(http_server: str) -> None:
    result = probe_once("http", {"url": f"{http_server}/ok", "expect_body": "tomcat"})
    assert result == ProbeResult(ok=True, detail="HTTP 200")


def test_http_500_is_down(http_server: str) -> None:
    assert probe_once("http", {"url": f"{http_server}/error"}) == ProbeResult(ok=False, detail="HTTP 500")


def test_http_wrong_body_is_down(http_server: str) -> None:
    result = probe_once("http", {"url": f"{http_server}/ok", "expect_body": "this is the test page"})
    assert result == ProbeResult(ok=False, detail="HTTP 200, body lacks 'this is the test page'")
    regex = probe_once("http", {"url": f"{http_server}/ok", "expect_regex": r"hello \w+ world"})
    assert regex.ok
    assert not probe_once("http", {"url": f"{http_server}/ok", "expect_regex": r"^tomcat"}).ok


@pytest.mark.parametrize(
    ("path", "expect_status", "ok"),
    [
        ("/created", 200, False),
        ("/created", 201, True),
        ("/created", [200, 201], True),
        ("/created", "200-299", True),
        ("/error", "200-299", False),
        ("/error", "500", True),
        ("/missing", "200-399", False),
    ],
)
def test_http_expect_status(http_server: str, path: str, expect_status: Any, ok: bool) -> None:
    assert probe_once("http", {"url": f"{http_server}{path}", "expect_status": expect_status}).ok is ok


def test_http_hung_server_times_out(hung_server: str) -> None:
    started = time.monotonic()
    result = probe_once("http", {"url": f"{hung_server}/"}, timeout=0.5)
    assert result.ok is False
    assert "timeout" in result.detail.lower()
    assert time.monotonic() - started < 2


def test_http_every_probe_opens_a_new_connection(http_server: str) -> None:
    check = CheckConfig(name="t", type="http", options={"url": f"{http_server}/ok"})
    probe = TYPES["http"].create(check)

    async def three() -> list[ProbeResult]:
        return [await probe() for _ in range(3)]

    assert all(r.ok for r in asyncio.run(three()))
    # A kept-alive socket would show up as fewer connections than requests.
    assert len(Handler.connections) == 3
    assert all(h.get("Connection") == "close" for h in Handler.seen_headers)


def test_http_headers_and_source_address(http_server: str) -> None:
    options = {"url": f"{http_server}/ok", "headers": {"Host": "tomcat.test"}, "source_address": "127.0.0.2"}
    assert probe_once("http", options).ok
    assert Handler.seen_headers[-1]["Host"] == "tomcat.test"
    assert Handler.connections[-1] == "127.0.0.2"


@pytest.mark.parametrize(
    ("options", "problems"),
    [
        ({}, [("url", "required key is missing")]),
        (
            {"url": "http://x/", "methd": "GET"},
            [("methd", "unknown key (did you mean method?)")],
        ),
        ({"url": "ftp://x/"}, [("url", "'ftp://x/' is not an http:// or https:// URL")]),
        ({"url": "http://x/", "method": "FETCH"}, [("method", "'FETCH' is not one of GET, HEAD, POST, PUT, OPTIONS")]),
        (
            {"url": "http://x/", "expect_status": "2xx"},
            [("expect_status", "'2xx' is not a status code or a range like \"200-299\"")],
        ),
        ({"url": "http://x/", "expect_status": 700}, [("expect_status", "700 is not an HTTP status code (100..599)")]),
        (
            {"url": "http://x/", "expect_regex": "("},
            [("expect_regex", "not a valid regular expression: missing ) at position 1")],
        ),
        ({"url": "http://x/", "headers": {"X": 1}}, [("headers", "must be a table of strings")]),
        ({"url": "http://x/", "verify_tls": "no"}, [("verify_tls", "must be true or false")]),
    ],
)
def test_http_validation(options: dict[str, Any], problems: list[tuple[str, str]]) -> None:
    assert TYPES["http"].validate(options) == problems


# -- tcp --------------------------------------------------------------------------------------


def test_tcp_open_and_closed_port() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        assert probe_once("tcp", {"host": "127.0.0.1", "port": port}) == ProbeResult(
            ok=True, detail=f"connected to 127.0.0.1:{port}"
        )
    # The listener is closed now: nothing listens on that port.
    result = probe_once("tcp", {"host": "127.0.0.1", "port": port})
    assert result == ProbeResult(ok=False, detail=f"connect to 127.0.0.1:{port} failed: Connection refused")


def test_tcp_validation() -> None:
    assert TYPES["tcp"].validate({"host": "127.0.0.1"}) == [("port", "required key is missing")]
    assert TYPES["tcp"].validate({"host": "h", "port": 70000}) == [("port", "70000 is not a port number 1..65535")]
    assert TYPES["tcp"].validate({"hots": "h", "port": 80}) == [
        ("host", "required key is missing"),
        ("hots", "unknown key (did you mean host?)"),
    ]


# -- script -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("true", ProbeResult(ok=True, detail="exit 0")),
        (
            "sh -c 'echo starting; echo tomcat is down >&2; exit 3'",
            ProbeResult(ok=False, detail="exit 3: tomcat is down"),
        ),
        (["sh", "-c", "test \"$1\" = 'two words'", "sh", "two words"], ProbeResult(ok=True, detail="exit 0")),
        # no shell: the metacharacters reach echo as plain arguments
        ("echo a; false", ProbeResult(ok=True, detail="exit 0: a; false")),
        (
            "/nonexistent/check",
            ProbeResult(ok=False, detail="cannot run /nonexistent/check: No such file or directory"),
        ),
        ("sh -c 'kill -TERM $$'", ProbeResult(ok=False, detail="killed by signal 15")),
    ],
)
def test_script_exit_status(script: str | list[str], expected: ProbeResult) -> None:
    assert probe_once("script", {"script": script}) == expected


def test_script_minimal_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HAFM_SECRET", "leak")
    result = probe_once("script", {"script": ["sh", "-c", 'echo "$PATH:${HAFM_SECRET:-clean}"']})
    assert result.detail == "exit 0: /usr/sbin:/usr/bin:/sbin:/bin:clean"


@pytest.mark.skipif(os.getuid() != 0, reason="running as another user needs root")
def test_script_runs_as_user_with_its_groups_not_roots() -> None:
    nobody = pwd.getpwnam("nobody")
    group = grp.getgrgid(nobody.pw_gid).gr_name
    groups = ",".join(f"{gid}({grp.getgrgid(gid).gr_name})" for gid in os.getgrouplist("nobody", nobody.pw_gid))
    assert probe_once("script", {"script": "id", "user": "nobody"}).detail == (
        f"exit 0: uid={nobody.pw_uid}(nobody) gid={nobody.pw_gid}({group}) groups={groups}"
    )


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie is dead, it only waits for its parent to reap it


def test_script_timeout_kills_the_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    script = ["sh", "-c", f"sleep 60 & echo $! > {pidfile}; wait"]
    started = time.monotonic()
    result = probe_once("script", {"script": script}, timeout=0.5)
    assert result == ProbeResult(ok=False, detail="timeout after 0.5 s")
    assert time.monotonic() - started < 3
    child = int(pidfile.read_text())
    deadline = time.monotonic() + 2
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not _alive(child), "the script's background child survived the timeout"


def test_script_validation() -> None:
    validate = TYPES["script"].validate
    assert validate({}) == [("script", "required key is missing")]
    assert validate({"script": ""}) == [("script", "is empty")]
    assert validate({"script": "echo 'unterminated"}) == [
        ("script", 'cannot split "echo \'unterminated" into words: No closing quotation')
    ]
    assert validate({"script": "/bin/true \0"}) == [("script", "contains a NUL byte")]
    assert validate({"script": ["ok", 3]}) == [("script", "must be a string or a list of strings")]
    assert validate({"script": "true", "user": "hafm-no-such-user"}) == [("user", "no such user 'hafm-no-such-user'")]
    assert validate({"script": "true", "usr": "root"}) == [("usr", "unknown key (did you mean user?)")]
    assert validate({"script": "/usr/local/sbin/not-there-yet"}) == [], "left to fail its probes"


def test_script_another_user_could_have_written_is_refused(tmp_path: Path) -> None:
    script = tmp_path / "chk.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o777)
    assert TYPES["script"].validate({"script": f"{script} --quiet"}) == [
        ("script", f"refused: {script} is writable by group/others (chmod go-w {script})")
    ]
    script.chmod(0o755)
    assert TYPES["script"].validate({"script": [str(script), "--quiet"]}) == []


def probe_many(check_type: str, options: Mapping[str, Any], runs: int, before_run: Any = None) -> list[ProbeResult]:
    """Build one probe and run it ``runs`` times, calling ``before_run(number)`` before each."""
    kind: CheckType = TYPES[check_type]
    probe = kind.create(CheckConfig(name="t", type=check_type, timeout=2, options=dict(options)))

    async def scenario() -> list[ProbeResult]:
        results = []
        for number in range(runs):
            if before_run is not None:
                before_run(number)
            results.append(await run_probe(probe, timeout=2, plugin=kind.plugin))
        return results

    return asyncio.run(scenario())


def test_script_missing_program_needs_trusted_directories_at_load(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    assert TYPES["script"].validate({"script": f"{shared}/chk.sh -q"}) == [
        ("script", f"refused: {shared}/chk.sh: directory {shared} is writable by group/others (chmod go-w {shared})")
    ]
    shared.chmod(0o1777)  # sticky, like /tmp: whoever creates the file owns it, and that is checked before each run
    assert TYPES["script"].validate({"script": f"{shared}/chk.sh -q"}) == []


def test_script_is_checked_before_every_run_when_it_appears_and_when_it_changes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    program = tmp_path / "chk.sh"
    options = {"script": str(program)}
    assert TYPES["script"].validate(options) == [], "not there yet: left to fail its probes"

    def change(number: int) -> None:
        if number == 1:  # appears, writable by others
            program.write_text("#!/bin/sh\necho ran\n")
            program.chmod(0o777)
        elif number == 3:
            program.chmod(0o755)

    refused = f"refused: {program} is writable by group/others (chmod go-w {program})"
    with caplog.at_level(logging.INFO, logger="hafm.check.script"):
        results = probe_many("script", options, 4, change)
    assert results == [
        ProbeResult(ok=False, detail=f"cannot run {program}: No such file or directory"),
        ProbeResult(ok=False, detail=refused),
        ProbeResult(ok=False, detail=refused),
        ProbeResult(ok=True, detail="exit 0: ran"),
    ]
    assert caplog.messages == [
        f"check.t: refused to run: {refused.removeprefix('refused: ')}",
        "check.t: trusted again, running it",
    ]


@pytest.mark.parametrize(
    "script", ["sh {bad}", "/usr/bin/env python3 {bad}", "{ok} {bad}", ["sh", "-c", "{bad} --now"]]
)
def test_script_interpreted_files_and_file_arguments_must_be_trusted(tmp_path: Path, script: str | list[str]) -> None:
    ok = tmp_path / "ok.sh"
    ok.write_text("#!/bin/sh\n")
    ok.chmod(0o755)
    bad = tmp_path / "bad.sh"
    bad.write_text("exit 0\n")
    bad.chmod(0o666)
    words = [script] if isinstance(script, str) else script
    filled = [word.format(ok=ok, bad=bad) for word in words]
    options = {"script": filled[0] if isinstance(script, str) else filled}
    assert TYPES["script"].validate(options) == [
        ("script", f"refused: {bad} is writable by group/others (chmod go-w {bad})")
    ]


def test_script_output_is_never_held_whole() -> None:
    # 150 MB of output: memory must not grow with it (it took RSS from 22 to 309 MB before).
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = probe_once(
        "script", {"script": ["sh", "-c", "head -c 150000000 /dev/zero; echo; echo last line"]}, timeout=30
    )
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert result == ProbeResult(ok=True, detail="exit 0: last line")
    assert grown_kib < 32 * 1024, f"RSS grew by {grown_kib} KiB"


# -- file -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("0\n", ProbeResult(ok=True, detail="value 0", delta=0)),
        ("  15 \n", ProbeResult(ok=True, detail="value 15", delta=15)),
        ("-300\n", ProbeResult(ok=True, detail="value -300", delta=-300)),
        ("banana\n", None),
        ("", None),
    ],
)
def test_file_values(tmp_path: Path, content: str, expected: ProbeResult | None) -> None:
    path = tmp_path / "track"
    path.write_text(content)
    result = probe_once("file", {"path": str(path)})
    if expected is None:
        assert result.ok is False and result.delta is None
        assert "is not an integer" in result.detail
    else:
        assert result == expected


def test_file_missing_is_down(tmp_path: Path) -> None:
    path = tmp_path / "absent"
    assert probe_once("file", {"path": str(path)}) == ProbeResult(
        ok=False, detail=f"cannot read {path}: No such file or directory"
    )


def test_file_fifo_does_not_block(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    result = probe_once("file", {"path": str(fifo)}, timeout=1)
    assert result.ok is False and "timeout" not in result.detail


def test_hung_file_reads_do_not_starve_dns_lookups_of_other_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    gate = threading.Event()
    real_read = check_file.read_value

    def hung_read(path: str) -> ProbeResult:  # a dead NFS mount
        gate.wait()
        return real_read(path)

    monkeypatch.setattr(check_file, "read_value", hung_read)

    async def scenario() -> None:
        probes = [
            TYPES["file"].create(CheckConfig(name=f"f{n}", type="file", timeout=0.05, options={"path": f"/nfs/{n}"}))
            for n in range(8)
        ]
        results = await asyncio.gather(*(run_probe(probe, timeout=0.05) for probe in probes))
        assert {result.detail for result in results} == {"timeout after 0.05 s"}
        # Its previous read still hangs: fail at once rather than take another thread.
        assert await run_probe(probes[0], timeout=5) == ProbeResult(
            ok=False, detail="the previous read of /nfs/0 is still hung"
        )
        loop = asyncio.get_running_loop()
        assert await asyncio.wait_for(loop.getaddrinfo("localhost", 80), 5)

    try:
        asyncio.run(scenario())
    finally:
        gate.set()


def test_file_validation() -> None:
    assert TYPES["file"].validate({"path": "relative/file"}) == [("path", "'relative/file' is not an absolute path")]
    assert TYPES["file"].validate({"file": "/x"}) == [
        ("path", "required key is missing"),
        ("file", "unknown key (known keys: path)"),
    ]


# -- ping -------------------------------------------------------------------------------------


@pytest.mark.skipif(os.getuid() != 0, reason="raw ICMP socket needs root (or a ping_group_range)")
@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_ping_loopback(host: str) -> None:
    result = probe_once("ping", {"host": host})
    assert result.ok, result.detail
    assert result.detail.startswith(f"reply from {host} in ")


UNPRIVILEGED_PING = """
import asyncio, sys
from hafm_plugins import check_ping
result = asyncio.run(check_ping.ping_once(sys.argv[1], 2))
print(result.ok, result.detail)
# an address with no route in this empty namespace: down, with a reason, never an exception
result = asyncio.run(check_ping.ping_once("203.0.113.254", 0.3))
print(result.ok, result.detail)
"""


@pytest.mark.netns
@pytest.mark.skipif(os.getuid() != 0 or not shutil.which("unshare"), reason="needs root and unshare")
def test_ping_unprivileged_datagram_socket_in_a_netns() -> None:
    """In a fresh network namespace (its own loopback and ping_group_range) use the SOCK_DGRAM path."""
    command = (
        "ip link set lo up && sysctl -qw net.ipv4.ping_group_range='0 2147483647' && "
        f'exec {sys.executable} -c "$0" 127.0.0.1'
    )
    done = subprocess.run(
        ["unshare", "--net", "sh", "-c", command, UNPRIVILEGED_PING],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    reachable, unreachable = done.stdout.splitlines()
    assert reachable.startswith("True reply from 127.0.0.1 in ")
    assert unreachable.startswith("False ping 203.0.113.254") or unreachable.startswith("False no reply")


def test_ping_validation() -> None:
    assert TYPES["ping"].validate({}) == [("host", "required key is missing")]
    assert TYPES["ping"].validate({"host": ""}) == [("host", "must be an IP address or host name")]


def test_script_check_refuses_a_relative_program_path() -> None:
    problems = TYPES["script"].validate({"script": "bin/check.sh --quick"})
    assert problems and problems[0][0] == "script" and "relative path" in problems[0][1]


def _run_checks_briefly(check: CheckConfig, probe_factory: Any, probes: int = 5) -> list[tuple[str, bool, str]]:
    """Run one check through CheckRunner until its probe has run ``probes`` times; the on_change calls."""
    changes: list[tuple[str, bool, str]] = []
    calls = 0

    async def main() -> None:
        done = asyncio.Event()

        def create(_check: CheckConfig) -> Any:
            async def probe() -> ProbeResult:
                nonlocal calls
                calls += 1
                if calls >= probes:
                    done.set()
                return await probe_factory(calls)

            return probe

        types = {check.type: CheckType(name=check.type, validate=lambda o: [], create=create, plugin="boom.py")}
        runner = CheckRunner({check.name: check}, types, lambda *change: changes.append(change))
        runner.start()
        await asyncio.wait_for(done.wait(), 5)
        await runner.stop()

    asyncio.run(main())
    return changes


def test_a_check_down_from_the_start_says_why_once(caplog: pytest.LogCaptureFixture) -> None:
    async def raises(call: int) -> ProbeResult:
        raise RuntimeError("boom")

    check = CheckConfig(name="boom", type="boom", interval=0.001, timeout=1)
    with caplog.at_level("WARNING", logger="hafm.shell.checks"):
        assert _run_checks_briefly(check, raises) == [], "nothing changed: it started down and stayed down"
    assert [r.getMessage() for r in caplog.records] == [
        "check boom: down from the start (plugin boom.py raised RuntimeError: boom)"
    ]


def test_the_start_warning_is_only_for_a_failed_first_probe_of_a_down_check(caplog: pytest.LogCaptureFixture) -> None:
    async def fails_once(call: int) -> ProbeResult:
        return ProbeResult(ok=call > 1, detail=f"call {call}")

    with caplog.at_level("WARNING", logger="hafm.shell.checks"):
        # Starts up, one failure under fall 2: still up, no warning.
        _run_checks_briefly(CheckConfig(name="c", type="t", interval=0.001, fall=2, init_state="up"), fails_once)
        # Starts down and succeeds on the second probe: the change is the news, not a warning.
        changes = _run_checks_briefly(CheckConfig(name="d", type="t", interval=0.001), fails_once)
    assert changes == [("d", True, "call 2")]
    assert [r.getMessage() for r in caplog.records] == ["check d: down from the start (call 1)"]
