"""hafm.shell.etcd against a scripted etcd (httpx.MockTransport): the JSON gateway's encoding, failover, auth."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import certifi
import httpx
import pytest

from hafm.shell.etcd import EtcdClient, EtcdUnreachable, prefix_end

Handler = Callable[[httpx.Request], httpx.Response]


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def client(handler: Handler, endpoints: tuple[str, ...] = ("http://e1:2379",), **kwargs: object) -> EtcdClient:
    return EtcdClient(endpoints, timeout=0.5, transport=httpx.MockTransport(handler), **kwargs)  # type: ignore[arg-type]


def run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]


def test_prefix_end_selects_the_prefix() -> None:
    assert prefix_end("/hafm/default/4/51/candidates/") == "/hafm/default/4/51/candidates0"


def test_create_if_absent_sends_one_transaction_and_reads_the_holder() -> None:
    seen: list[dict[str, object]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append(body)
        assert request.url.path == "/v3/kv/txn"
        kv = {"key": b64("/k"), "value": b64("node-b"), "lease": "7", "mod_revision": "3"}
        return httpx.Response(200, json={"header": {"revision": "9"}, "responses": [{"response_range": {"kvs": [kv]}}]})

    async def go() -> tuple[bool, object, int]:
        etcd = client(handler)
        try:
            return await etcd.create("/k", "node-a", 5)
        finally:
            await etcd.aclose()

    created, current, revision = run(go())  # type: ignore[misc]
    assert created is False and revision == 9
    assert current.value == "node-b" and current.lease == 7  # type: ignore[attr-defined]
    (txn,) = seen
    assert txn["compare"] == [{"target": "CREATE", "key": b64("/k"), "result": "EQUAL", "create_revision": "0"}]
    assert txn["success"] == [{"request_put": {"key": b64("/k"), "value": b64("node-a"), "lease": "5"}}]


def test_a_dead_or_leaderless_member_fails_over_to_the_next_and_is_remembered() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.host)
        if request.url.host == "e1":
            raise httpx.ConnectError("refused")
        if request.url.host == "e2":
            return httpx.Response(503, json={"error": "etcdserver: no leader"})
        return httpx.Response(200, json={"ID": "42", "TTL": "3"})

    async def go() -> tuple[tuple[int, int], tuple[int, int]]:
        etcd = client(handler, ("http://e1:2379", "http://e2:2379", "http://e3:2379"))
        try:
            return await etcd.grant(3), await etcd.grant(3)
        finally:
            await etcd.aclose()

    assert run(go()) == ((42, 3), (42, 3))
    assert calls == ["e1", "e2", "e3", "e3"], "the member that answered is asked first next time"


def test_no_member_answering_is_unreachable_with_every_reason() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("timed out")

    async def go() -> None:
        etcd = client(handler, ("http://e1:2379", "http://e2:2379"))
        try:
            await etcd.keepalive(1)
        finally:
            await etcd.aclose()

    with pytest.raises(EtcdUnreachable, match=r"http://e1:2379: ConnectTimeout.*http://e2:2379: ConnectTimeout"):
        run(go())


def test_a_stale_pooled_connection_is_retried_once_on_the_same_member() -> None:
    failures = iter([httpx.ReadError("closed")])

    def handler(request: httpx.Request) -> httpx.Response:
        failure = next(failures, None)
        if failure is not None:
            raise failure
        return httpx.Response(200, json={"header": {}})

    async def go() -> None:
        etcd = client(handler)
        try:
            await etcd.revoke(5)
        finally:
            await etcd.aclose()

    run(go())


def test_user_and_password_get_a_token_sent_with_every_request() -> None:
    headers: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v3/auth/authenticate":
            assert json.loads(request.content) == {"name": "hafm", "password": "s3cret"}
            return httpx.Response(200, json={"token": "tok"})
        headers.append(request.headers.get("authorization"))
        return httpx.Response(200, json={"result": {"TTL": "3"}})

    async def go() -> int:
        etcd = client(handler, user="hafm", password="s3cret")
        try:
            return await etcd.keepalive(9)
        finally:
            await etcd.aclose()

    assert run(go()) == 3
    assert headers == ["tok"]


def test_keepalive_of_an_unknown_lease_is_zero() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"result": {"ID": "9"}})

    async def go() -> int:
        etcd = client(handler)
        try:
            return await etcd.keepalive(9)
        finally:
            await etcd.aclose()

    assert run(go()) == 0


def test_the_daemon_and_the_witness_shell_do_not_import_httpx() -> None:
    """Only a daemon with a witness pays for httpx: EtcdClient imports it when one is built."""
    code = "import sys, hafm.shell.daemon, hafm.shell.witness; print('httpx' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "False"


def test_tls_files_pass_the_trust_rule_where_they_are_loaded(tmp_path: Path) -> None:
    """Checked again when the client is built: a CA made writable after ``hafm check`` is still refused."""
    ca = tmp_path / "ca.pem"
    ca.write_bytes(Path(certifi.where()).read_bytes())  # a real PEM bundle wherever httpx is installed
    ca.chmod(0o644)
    EtcdClient(["https://e1:2379"], timeout=0.5, ca_file=str(ca))  # trusted and PEM: loads
    ca.chmod(0o666)
    with pytest.raises(ValueError, match=rf"^witness\.ca: refused: .*{ca}.* writable"):
        EtcdClient(["https://e1:2379"], timeout=0.5, ca_file=str(ca))


def test_a_client_key_others_can_read_is_refused_where_it_is_loaded(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    for path in (cert, key):
        path.write_text("PEM\n")
    key.chmod(0o604)
    with pytest.raises(ValueError, match=rf"^witness\.key: refused: {key} is readable by group/others"):
        EtcdClient(["https://e1:2379"], timeout=0.5, cert_file=str(cert), key_file=str(key))
