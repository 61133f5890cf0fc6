"""Debian's ``tomcat10`` inside lab hosts: the seed's two real Tomcat servers, not a stand-in.

Each host gets its own ``CATALINA_BASE`` (conf, logs, temp, work, webapps) in the lab's work
directory, all sharing the package's ``CATALINA_HOME`` (/usr/share/tomcat10). The ``test``
web application serves ``/test/test.html`` with the same body as :mod:`hafm.lab.testpage`
("this is the test page <br> from server X"), so :class:`hafm.lab.nodes.ClientPoller` tells the
servers apart exactly as it does with the stand-in.

The package's own system service is never used: it would listen on the host's port 8080.
Tomcat here runs only as a child of the lab, inside a namespace, and dies with it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from hafm.lab.network import Host, Lab, LabError, wait_until
from hafm.lab.nodes import VIP4, DaemonNode, HafmNode, check_toml, instance_toml
from hafm.lab.testpage import TEST_PATH, page_body

__all__ = [
    "CATALINA_HOME",
    "TOMCAT_PORT",
    "TomcatPair",
    "TomcatServer",
    "start_tomcat_pair",
    "start_tomcats",
    "tomcat_check_toml",
    "tomcat_unavailable_reason",
]

CATALINA_HOME = Path("/usr/share/tomcat10")
# Tomcat's default HTTP port, the one conf.d/tomcat.toml checks.
TOMCAT_PORT = 8080
_PACKAGE_CONF = Path("/etc/tomcat10")

# No shutdown port (SIGTERM stops Tomcat), one HTTP connector, no auto-deploy scanning. Debian's
# server.xml also has SecurityListener, which refuses to start as root: the lab runs as root,
# inside a namespace of its own.
_SERVER_XML = """\
<?xml version="1.0" encoding="UTF-8"?>
<Server port="-1" shutdown="SHUTDOWN">
  <Service name="Catalina">
    <Connector port="{port}" protocol="HTTP/1.1" connectionTimeout="5000" />
    <Engine name="Catalina" defaultHost="localhost">
      <Host name="localhost" appBase="webapps" unpackWARs="false" autoDeploy="false" />
    </Engine>
  </Service>
</Server>
"""
# Scanning every jar on the class path for TLDs and fragments is most of a cold start.
_CONTEXT_XML = """\
<?xml version="1.0" encoding="UTF-8"?>
<Context>
  <JarScanner scanClassPath="false" scanManifest="false" />
</Context>
"""
_LOGGING = """\
handlers = java.util.logging.ConsoleHandler
.level = INFO
java.util.logging.ConsoleHandler.level = INFO
"""
# Two JVMs share a small, busy machine with the daemons under test: small heap, quick JIT.
_JVM_OPTS = "-Djava.awt.headless=true -Xms32m -Xmx96m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xss512k"


def tomcat_unavailable_reason() -> str | None:
    """Why real Tomcat can't run here (package not installed, no java), or None if it can."""
    if not (CATALINA_HOME / "bin" / "catalina.sh").is_file():
        return f"tomcat10 is not installed ({CATALINA_HOME}/bin/catalina.sh missing): apt-get install tomcat10"
    if not (_PACKAGE_CONF / "web.xml").is_file():
        return f"tomcat10 is incomplete: {_PACKAGE_CONF}/web.xml is missing"
    if shutil.which("java") is None:
        return "tomcat10 needs java, and no 'java' is on PATH"
    return None


def tomcat_check_toml(
    port: int = TOMCAT_PORT, interval: float = 0.5, fall: int = 2, rise: int = 2, timeout: float = 0.4
) -> str:
    """conf.d/tomcat.toml's ``[check.tomcat]`` with a shorter period, for a test or the demo."""
    return check_toml(
        "tomcat",
        type="http",
        url=f"http://127.0.0.1:{port}{TEST_PATH}",
        expect_status=200,
        expect_body="this is the test page",
        interval=interval,
        timeout=timeout,
        fall=fall,
        rise=rise,
        weight=-20,
    )


@dataclass
class TomcatServer:
    """One Tomcat in ``host``'s namespace with its own ``CATALINA_BASE`` under ``workdir``."""

    host: Host
    workdir: Path
    port: int = TOMCAT_PORT
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)
    _launched_at: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        self.base = self.workdir / f"tomcat-{self.host.name}"
        self.log_path = self.workdir / f"tomcat-{self.host.name}.log"
        self.url = f"http://127.0.0.1:{self.port}{TEST_PATH}"
        self._make_base()

    def _make_base(self) -> None:
        for sub in ("conf", "logs", "temp", "work", "webapps/test"):
            (self.base / sub).mkdir(parents=True, exist_ok=True)
        conf = self.base / "conf"
        (conf / "server.xml").write_text(_SERVER_XML.format(port=self.port))
        (conf / "context.xml").write_text(_CONTEXT_XML)
        (conf / "logging.properties").write_text(_LOGGING)
        # The package's web.xml declares the default servlet (static files) and the MIME types.
        shutil.copyfile(_PACKAGE_CONF / "web.xml", conf / "web.xml")
        (self.base / "webapps" / "test" / "test.html").write_text(page_body(str(self.host.ipv4.ip)) + "\n")

    def launch(self) -> None:
        """Start Tomcat without waiting for it; see :meth:`wait_serving`."""
        if self.running:
            raise LabError(f"{self.host.netns}: Tomcat already runs")
        env = {
            **os.environ,
            "CATALINA_HOME": str(CATALINA_HOME),
            "CATALINA_BASE": str(self.base),
            "CATALINA_TMPDIR": str(self.base / "temp"),
            "CATALINA_OPTS": _JVM_OPTS,
        }
        env.pop("JAVA_OPTS", None)
        with open(self.log_path, "ab") as log:
            # catalina.sh "run" execs java in the foreground: the process we signal is the JVM.
            self.proc = self.host.popen(
                str(CATALINA_HOME / "bin" / "catalina.sh"), "run", stdout=log, stderr=log, env=env
            )
        self._launched_at = time.monotonic()

    def wait_serving(self, timeout: float = 60.0) -> float:
        """Wait until Tomcat serves the test page; seconds since :meth:`launch`.

        Raises :class:`LabError` with the end of Tomcat's log if it exits or stays silent (and stops it).
        """
        body = page_body(str(self.host.ipv4.ip))

        def serving() -> bool:
            if self.proc is None or self.proc.poll() is not None:
                code = self.proc.returncode if self.proc is not None else "never started"
                raise LabError(f"{self.host.netns}: Tomcat exited ({code}):\n{self.log_tail()}")
            return body in (self.host.http_get(self.url, timeout=0.5) or "")

        if not wait_until(serving, timeout=timeout, interval=0.1):
            self.stop()
            raise LabError(
                f"{self.host.netns}: Tomcat did not serve {self.url} within {timeout:g} s:\n{self.log_tail()}"
            )
        return time.monotonic() - self._launched_at

    def start(self, timeout: float = 60.0) -> float:
        """Start Tomcat and wait until it serves the test page; seconds it took."""
        self.launch()
        return self.wait_serving(timeout)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """Stop Tomcat (SIGTERM runs its shutdown hook; SIGKILL after ``timeout``)."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)

    def log_tail(self, lines: int = 20) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def start_tomcats(hosts: list[Host], workdir: Path, timeout: float = 60.0) -> dict[str, TomcatServer]:
    """A Tomcat on each of ``hosts``, launched together (the JVM start-ups overlap), all serving on return."""
    servers = {host.name: TomcatServer(host=host, workdir=workdir) for host in hosts}
    for server in servers.values():
        server.launch()
    for server in servers.values():
        server.wait_serving(timeout)
    return servers


@dataclass
class TomcatPair:
    """The seed's deployment: Tomcat and hafm on A (priority 100, MASTER) and B (90), each hafm
    tracking its own Tomcat with conf.d/tomcat.toml's check, and a client host."""

    nodes: dict[str, DaemonNode]
    tomcats: dict[str, TomcatServer]
    client: Host

    @property
    def page_url(self) -> str:
        """The test page through the VIP."""
        return f"http://{VIP4}:{TOMCAT_PORT}{TEST_PATH}"


def start_tomcat_pair(lab: Lab, workdir: Path, *, advert_int: float = 1, check_interval: float = 0.5) -> TomcatPair:
    """Build :class:`TomcatPair` in ``lab``: both Tomcats serving, then both daemons started."""
    hosts = [
        lab.add_host("a", "198.51.100.1/24", "2001:db8::1/64"),
        lab.add_host("b", "198.51.100.2/24", "2001:db8::2/64"),
    ]
    tomcats = start_tomcats(hosts, workdir)
    track = 'track_check = ["tomcat"]\n'
    check = tomcat_check_toml(interval=check_interval)
    configs = {
        "a": instance_toml(priority=100, state="MASTER", advert_int=advert_int, extra=track) + check,
        "b": instance_toml(priority=90, advert_int=advert_int, extra=track) + check,
    }
    nodes: dict[str, DaemonNode] = {
        host.name: HafmNode(host=host, config=configs[host.name], workdir=workdir / "daemons") for host in hosts
    }
    for node in nodes.values():
        node.start()
    return TomcatPair(nodes=nodes, tomcats=tomcats, client=lab.add_host("client", "198.51.100.50/24"))
