"""The main config and its TOML drop-ins pass the trust rule of ``*.py`` drop-ins (issue 10 §1): root must not
take its configuration, which names the commands it runs, from a file another user can change."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hafm.config.loader import load_config
from hafm.errors import ConfigError
from hafm.trust import untrusted_reason

GOOD = '[vrrp_instance.VI_1]\ninterface = "eth0"\nvirtual_router_id = 1\nvirtual_ipaddress = ["203.0.113.1/24"]\n'
NOBODY = 65534

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")


def errors_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return info.value.messages


def refused(path: Path, *words: str) -> str:
    """The expected line: the file, then the trust rule's own reason (whose wording hafm.trust owns)."""
    reason = untrusted_reason(str(path))
    assert reason is not None and all(word in reason for word in words)
    return f"{path}: configuration file refused: {reason}"


@pytest.fixture
def main(tmp_path: Path) -> Path:
    path = tmp_path / "etc/hafm.toml"
    path.parent.mkdir()
    path.write_text('[global]\ninclude = ["drop/*.toml"]\n' + GOOD)
    (path.parent / "drop").mkdir()
    return path


@needs_root
def test_main_file_owned_by_another_user_is_refused(main: Path) -> None:
    os.chown(main, NOBODY, -1)
    assert errors_of(main) == [refused(main, str(NOBODY))]


@needs_root
def test_dropin_owned_by_another_user_is_refused_and_named(main: Path) -> None:
    dropin = main.parent / "drop/check.toml"
    dropin.write_text('[check.c]\ntype = "script"\n')
    os.chown(dropin, NOBODY, -1)
    assert errors_of(main) == [refused(dropin, str(NOBODY))]


def test_dropin_in_a_directory_others_can_write_is_refused(main: Path) -> None:
    drop = main.parent / "drop"
    dropin = drop / "check.toml"
    dropin.write_text('[check.c]\ntype = "script"\n')
    drop.chmod(0o777)
    assert errors_of(main) == [refused(dropin, str(drop), "writable")]


def test_group_writable_main_file_is_refused(main: Path) -> None:
    main.chmod(0o664)
    assert errors_of(main) == [refused(main, "writable")]


def test_trusted_files_load(main: Path) -> None:
    (main.parent / "drop/check.toml").write_text('[check.c]\ntype = "script"\n')
    assert list(load_config(main).checks) == ["c"]


WITNESS_TLS = '[witness]\ntype = "etcd"\nendpoints = ["https://198.51.100.60:2379"]\n'


@pytest.mark.parametrize("tls_key", ["ca", "cert", "key"])
def test_witness_tls_file_others_can_write_is_refused(main: Path, tls_key: str) -> None:
    """A CA (or client key pair) another user can replace lets them pose as etcd, which picks the Master."""
    files = {name: main.parent / f"{name}.pem" for name in ("ca", "cert", "key")}
    for path in files.values():
        path.write_text("PEM\n")
        path.chmod(0o600)
    files[tls_key].chmod(0o666)
    tls = "".join(f'{name} = "{path}"\n' for name, path in files.items())
    main.write_text(WITNESS_TLS + tls + GOOD)
    reason = untrusted_reason(str(files[tls_key]))
    assert reason is not None and "writable" in reason
    assert errors_of(main) == [f"{main}: witness.{tls_key}: refused: {reason}"]


def test_witness_ca_that_does_not_exist_is_named(main: Path) -> None:
    missing = main.parent / "missing-ca.pem"
    main.write_text(WITNESS_TLS + f'ca = "{missing}"\n' + GOOD)
    assert errors_of(main) == [f"{main}: witness.ca: refused: {untrusted_reason(str(missing))}"]


def test_witness_key_others_can_read_is_refused(main: Path) -> None:
    """Whoever reads the client key can act as this node towards etcd, and so take the witness's say."""
    cert, key = main.parent / "cert.pem", main.parent / "key.pem"
    cert.write_text("PEM\n")
    key.write_text("PEM\n")
    cert.chmod(0o644)  # a certificate is public
    key.chmod(0o640)
    main.write_text(WITNESS_TLS + f'cert = "{cert}"\nkey = "{key}"\n' + GOOD)
    assert errors_of(main) == [f"{main}: witness.key: refused: {key} is readable by group/others (chmod go-rwx {key})"]
