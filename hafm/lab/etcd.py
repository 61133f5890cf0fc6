"""etcd members in their own lab hosts, for the witness tests and ``bench/witness.py``.

Debian's ``etcd-server`` (3.4) runs inside the lab only: each member in its own namespace, listening on
its lab address, with its data directory in the lab's work dir; the lab kills it on teardown.  The
host's own etcd service is never used.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from hafm.lab.network import Host, Lab, LabError, wait_until

__all__ = ["ETCD_FIRST_ADDRESS", "EtcdCluster", "EtcdMember", "start_etcd", "witness_toml"]

ETCD = "etcd"
CLIENT_PORT = 2379
PEER_PORT = 2380
ETCD_FIRST_ADDRESS = 60  # members are 198.51.100.60, .61, ...
_NFT_CUT_TABLE = "hafm_lab_cut"


@dataclass
class EtcdMember:
    name: str
    host: Host
    data_dir: Path
    log_path: Path
    argv: list[str]
    proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return str(self.host.ipv4.ip)

    @property
    def endpoint(self) -> str:
        return f"http://{self.address}:{CLIENT_PORT}"

    def start(self) -> None:
        log = open(self.log_path, "a")  # noqa: SIM115 - handed to the child
        self.proc = self.host.popen(*self.argv, stdout=log, stderr=log)

    def healthy(self) -> bool:
        body = self.host.http_get(f"{self.endpoint}/health", timeout=0.5)
        return body is not None and '"health":"true"' in body

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(5)

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@dataclass
class EtcdCluster:
    members: list[EtcdMember] = field(default_factory=list)

    @property
    def endpoints(self) -> list[str]:
        return [m.endpoint for m in self.members]

    def kill_all(self) -> None:
        for member in self.members:
            member.kill()

    def healthy(self) -> bool:
        return any(m.healthy() for m in self.members if m.proc is not None and m.proc.poll() is None)


def etcd_available() -> str | None:
    """Why etcd tests cannot run here, or None."""
    return None if shutil.which(ETCD) else "etcd is not installed (Debian package etcd-server)"


def start_etcd(lab: Lab, workdir: Path, count: int = 1, timeout: float = 30.0) -> EtcdCluster:
    """``count`` etcd members in hosts ``etcd1``.. at 198.51.100.60.., started together; returns once healthy."""
    workdir.mkdir(parents=True, exist_ok=True)
    hosts = [lab.add_host(f"etcd{i + 1}", f"198.51.100.{ETCD_FIRST_ADDRESS + i}/24") for i in range(count)]
    initial = ",".join(f"{h.name}=http://{h.ipv4.ip}:{PEER_PORT}" for h in hosts)
    cluster = EtcdCluster()
    for host in hosts:
        ip = host.ipv4.ip
        data_dir = workdir / f"{host.name}.data"
        argv = [
            ETCD,
            "--name", host.name,
            "--data-dir", str(data_dir),
            "--listen-client-urls", f"http://{ip}:{CLIENT_PORT}",
            "--advertise-client-urls", f"http://{ip}:{CLIENT_PORT}",
            "--listen-peer-urls", f"http://{ip}:{PEER_PORT}",
            "--initial-advertise-peer-urls", f"http://{ip}:{PEER_PORT}",
            "--initial-cluster", initial,
            "--initial-cluster-state", "new",
            "--initial-cluster-token", lab.prefix,
            "--logger", "zap",
            "--log-level", "warn",
        ]  # fmt: skip
        member = EtcdMember(
            name=host.name, host=host, data_dir=data_dir, log_path=workdir / f"{host.name}.log", argv=argv
        )
        member.start()
        cluster.members.append(member)
    if not wait_until(lambda: all(m.healthy() for m in cluster.members), timeout=timeout, interval=0.2):
        logs = "; ".join(f"{m.name}: {m.log[-500:]}" for m in cluster.members)
        raise LabError(f"etcd did not become healthy in {timeout:g} s: {logs}")
    return cluster


def witness_toml(cluster: EtcdCluster, ttl: int = 3) -> str:
    """The ``[witness]`` table for ``cluster``."""
    endpoints = ", ".join(f'"{e}"' for e in cluster.endpoints)
    return f'[witness]\ntype = "etcd"\nendpoints = [{endpoints}]\nttl = {ttl}\n\n'


def cut(lab: Lab, one: Host, other: Host, on: bool = True) -> None:
    """Drop every IPv4 packet between ``one`` and ``other`` in the bridge (both ways); ``on=False`` heals."""
    a, b = one.ipv4.ip, other.ipv4.ip
    rules = [f"ip saddr {a} ip daddr {b} counter drop", f"ip saddr {b} ip daddr {a} counter drop"]
    lab._nft_table(_NFT_CUT_TABLE, rules if on else None)
