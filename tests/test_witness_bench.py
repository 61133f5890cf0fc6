"""bench/witness.py: it imports, --help works, bad arguments and a missing etcd are one line, the table is right.

No lab is built here: the benchmark itself needs root, etcd and minutes (docs/witness.md).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench" / "witness.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_witness", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_witness"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_help_runs_without_root_or_lab() -> None:
    result = subprocess.run([sys.executable, str(BENCH), "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "--rounds" in result.stdout and "--modes" in result.stdout


def test_bad_mode_is_one_line_and_exit_2(bench: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(["--modes", "raft"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "raft" in err


def test_missing_etcd_is_one_line_and_exit_1(
    bench: ModuleType, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(bench, "netns_unavailable_reason", lambda: None)
    monkeypatch.setattr(bench, "etcd_available", lambda: "etcd is not installed (Debian package etcd-server)")
    assert bench.main(["--rounds", "1"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "etcd is not installed" in err


def test_table_and_design_bounds(bench: ModuleType) -> None:
    rows = [bench.Result("witness", "sigkill", (3.7, 3.6, 3.9)), bench.Result("lease", "sigterm", (0.01,))]
    text = bench.table(rows)
    assert "| witness | SIGKILL | 3.700 s | 3.600–3.900 s | max(Master_Down_Interval, ttl) (3.648 s) |" in text
    assert "| lease | SIGTERM | 0.010 s |" in text
    assert bench.expected("vrrp", "sigterm") == "Skew_Time (0.648 s)"
    assert bench.expected("lease", "sigkill") == "ttl (2 s) + watch"
