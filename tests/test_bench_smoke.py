"""bench/*.py: they import, --help works, and their pure helpers compute right.

No lab is built here, except by the one ``netns`` test that runs ``bench/scale.py --quick``
(the benchmarks themselves need root and minutes: docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from scapy.layers.inet import IP
from scapy.layers.inet6 import ICMPv6ND_NA, ICMPv6NDOptDstLLAddr, IPv6
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw

BENCH = Path(__file__).resolve().parent.parent / "bench"


def _load(name: str) -> ModuleType:
    # The scripts import each other as siblings (they run as `python bench/failover.py`).
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def fo() -> ModuleType:
    return _load("failover")


@pytest.fixture(scope="module")
def mem() -> ModuleType:
    return _load("memory")


@pytest.fixture(scope="module")
def scale() -> ModuleType:
    return _load("scale")


@pytest.fixture(scope="module")
def plots() -> ModuleType:
    return _load("plots")


def test_help_runs_without_root_or_lab() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH / "failover.py"), "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "--rounds" in result.stdout and "--rows" in result.stdout


def test_not_root_is_one_line_and_exit_1(
    fo: ModuleType, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert fo.main(["--rounds", "1"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs root" in err


def test_missing_keepalived_is_one_line_and_exit_1(
    fo: ModuleType, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(fo.shutil, "which", lambda name: None if name == "keepalived" else "/bin/true")
    assert fo.main([]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "keepalived is not installed" in err


def test_rows_are_the_issues_five(fo: ModuleType) -> None:
    assert [row.title for row in fo.ROWS] == [
        "v2 adv 1 SIGTERM",
        "v2 adv 1 link down",
        "v3 adv 0.1 SIGTERM",
        "v3 adv 0.1 link down",
        "v3 IPv6 adv 1 link down",
    ]
    ipv6 = fo.ROWS[4]
    assert ipv6.url == "http://[2001:db8::100]/test/test.html"
    assert ipv6.vip == "2001:db8::100/64"
    assert fo.ROWS[0].url == "http://198.51.100.100/test/test.html"


def test_rfc_bounds(fo: ModuleType) -> None:
    # Skew_Time of B (priority 90): 166/256 s in v2, 166/256 × interval in v3.
    assert fo.skew_time(90, 2, 1.0) == pytest.approx(0.6484375)
    assert fo.skew_time(90, 2, 0.1) == pytest.approx(0.6484375), "v2 skew ignores the interval"
    assert fo.skew_time(90, 3, 0.1) == pytest.approx(0.06484375)
    assert fo.master_down_interval(90, 3, 0.1) == pytest.approx(0.36484375)
    bounds = [fo.rfc_bound(row) for row in fo.ROWS]
    assert bounds == pytest.approx([0.6484375, 3.6484375, 0.06484375, 0.36484375, 3.6484375])
    # Link down: the last advert may have come up to one interval before the cut.
    assert fo.expected_window(fo.ROWS[3]) == pytest.approx((0.26484375, 0.36484375))
    assert fo.expected_window(fo.ROWS[0]) == pytest.approx((0.6484375, 0.6484375))


def test_parse_rows(fo: ModuleType) -> None:
    assert fo.parse_rows(["1-5"]) == (1, 2, 3, 4, 5)
    assert fo.parse_rows(["4", "1,2"]) == (1, 2, 4)
    assert fo.parse_rows(["2-3,5"]) == (2, 3, 5)
    for bad, message in (
        ("0", "outside 1-5"),
        ("6", "outside 1-5"),
        ("x", "not a row"),
        ("3-1", "outside"),
        ("", "no row"),
    ):
        with pytest.raises(ValueError, match=message):
            fo.parse_rows([bad])


def test_summary_ratio_and_target(fo: ModuleType) -> None:
    stats = fo.summarize([0.70, None, 0.66, 0.68])
    assert (stats.median, stats.low, stats.high, stats.count) == pytest.approx((0.68, 0.66, 0.70, 3))
    assert fo.summarize([None, None]) is None
    keepalived = fo.summarize([0.672])
    assert fo.ratio(stats, keepalived) == pytest.approx(0.68 / 0.672)
    assert fo.ratio(None, keepalived) is None

    row = fo.ROWS[0]  # bound 0.648
    good = fo.summarize([0.660, 0.661, 0.662])
    assert fo.target_misses(row, good, keepalived, 3) == []
    slow = fo.summarize([0.690, 0.700, 0.710])
    misses = fo.target_misses(row, slow, keepalived, 3)
    assert any("over the bound" in m for m in misses) and any("ratio 1.04" in m for m in misses)
    assert fo.target_misses(row, None, keepalived, 3) == ["hafm never failed over"]
    assert "1/3 rounds" in fo.target_misses(row, fo.summarize([0.66]), keepalived, 3)[0]
    # 1.004 prints as 1.00, which meets "ratio <= 1.00".
    assert fo.target_misses(row, fo.summarize([0.6647]), fo.summarize([0.662]), 1) == []


def test_format_table_aligns(fo: ModuleType) -> None:
    text = fo.format_table(["row", "value"], [["1 short", "1.0"], ["22 longer title", "10.25"]])
    lines = text.splitlines()
    assert lines[0] == "row" + " " * 14 + "value"
    assert lines[1] == "---------------  -----"
    assert lines[2] == "1 short            1.0"
    assert lines[3] == "22 longer title  10.25"


def test_configs_are_equivalent(fo: ModuleType) -> None:
    row = fo.ROWS[0]
    (hafm_a, hafm_b), (ka_a, ka_b) = fo.daemon_configs(row, "hafm"), fo.daemon_configs(row, "keepalived")
    for text in (hafm_a, ka_a):
        assert "MASTER" in text and "100" in text and "1111" in text
    for text in (hafm_b, ka_b):
        assert "BACKUP" in text and "90" in text
    assert "garp_master_delay = 0" in hafm_a and "vrrp_garp_master_delay 0" in ka_a
    v3_hafm, v3_ka = fo.daemon_configs(fo.ROWS[2], "hafm")[0], fo.daemon_configs(fo.ROWS[2], "keepalived")[0]
    assert "advert_int = 0.1" in v3_hafm and "version = 3" in v3_hafm
    assert "advert_int 0.1" in v3_ka and "version 3" in v3_ka
    assert "1111" not in v3_hafm and "1111" not in v3_ka, "v3 has no authentication"


MAC_B = "02:00:00:00:00:02"


def test_classify_frame(fo: ModuleType) -> None:
    vips = frozenset({"198.51.100.100", "2001:db8::100"})
    advert_v4 = (
        Ether(src=MAC_B, dst="01:00:5e:00:00:12")
        / IP(src="198.51.100.2", dst="224.0.0.18", proto=112)
        / Raw(bytes([0x21, 51, 90, 1, 0, 1, 0, 0]))
    )
    assert fo.classify_frame(bytes(advert_v4), vips) == ("advert", MAC_B, 90)
    resign = Ether(src=MAC_B) / IPv6(src="fe80::2", dst="ff02::12", nh=112) / Raw(bytes([0x31, 51, 0, 1, 0, 10, 0, 0]))
    assert fo.classify_frame(bytes(resign), vips) == ("advert", MAC_B, 0)
    garp = Ether(src=MAC_B, dst="ff:ff:ff:ff:ff:ff") / ARP(
        op=1, hwsrc=MAC_B, psrc="198.51.100.100", pdst="198.51.100.100"
    )
    assert fo.classify_frame(bytes(garp), vips) == ("announce", MAC_B, None)
    na = (
        Ether(src=MAC_B, dst="33:33:00:00:00:01")
        / IPv6(src="2001:db8::100", dst="ff02::1", hlim=255)
        / ICMPv6ND_NA(R=1, S=0, O=1, tgt="2001:db8::100")
        / ICMPv6NDOptDstLLAddr(lladdr=MAC_B)
    )
    assert fo.classify_frame(bytes(na), vips) == ("announce", MAC_B, None)
    other_arp = Ether(src=MAC_B) / ARP(op=1, psrc="198.51.100.2", pdst="198.51.100.50")
    other_na = Ether(src=MAC_B) / IPv6(src="2001:db8::2", dst="ff02::1") / ICMPv6ND_NA(tgt="2001:db8::2")
    tcp = Ether(src=MAC_B) / IP(src="198.51.100.2", dst="198.51.100.50", proto=6) / Raw(b"\0" * 20)
    for frame in (other_arp, other_na, tcp):
        assert fo.classify_frame(bytes(frame), vips) is None
    assert fo.classify_frame(b"\x00" * 10, vips) is None


def test_parse_vm_rss_and_process_tree(mem: ModuleType) -> None:
    status = "Name:\tkeepalived\nVmPeak:\t  20000 kB\nVmRSS:\t   6144 kB\nThreads:\t1\n"
    assert mem.parse_vm_rss(status) == 6144
    assert mem.parse_vm_rss("Name:\tkthreadd\n") == 0
    with pytest.raises(ValueError, match="unit"):
        mem.parse_vm_rss("VmRSS:\t 6 MB\n")
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        tree = mem.process_tree(os.getpid())
        assert tree[0] == os.getpid() and child.pid in tree
        rss, count = mem.tree_rss_kib(os.getpid())
        assert count == len(mem.process_tree(os.getpid())) and rss > 1000
    finally:
        child.kill()
        child.wait()
    assert mem.process_tree(child.pid) == []


def test_memory_table_format(mem: ModuleType) -> None:
    samples = {
        "hafm": [mem.MemorySample(daemon="hafm", rss_kib=61440, processes=1, startup_to_backup=0.6)],
        "keepalived": [
            mem.MemorySample(daemon="keepalived", rss_kib=12288, processes=2, startup_to_backup=s) for s in (0.05, 0.07)
        ],
    }
    lines = mem.format_memory_table(samples).splitlines()
    assert "60.0 [60.0-60.0]" in lines[1] and "0.600" in lines[1]
    assert lines[2].split()[:2] == ["keepalived", "2"] and "0.060 [0.050-0.070]" in lines[2]


# -- bench/scale.py -------------------------------------------------------------------------------


@pytest.mark.parametrize("script", ["scale.py", "plots.py"])
def test_scale_and_plots_help(script: str) -> None:
    result = subprocess.run([sys.executable, str(BENCH / script), "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "--json" in result.stdout or "--scale" in result.stdout


def test_scale_cases_are_the_issues(scale: ModuleType) -> None:
    titles = [case.title for case in scale.cases(quick=False)]
    assert titles[:4] == [f"{n} inst v2 adv 1" for n in (1, 50, 100, 200)]
    assert titles[4:8] == [f"{n} inst v3 adv 0.1" for n in (1, 50, 100, 200)]
    assert titles[8] == "1 inst + 50 HTTP checks at 1 s"
    assert max(case.instances for case in scale.cases(quick=True)) == 2
    assert scale.vip(200) == "203.0.113.200/32"
    with pytest.raises(ValueError, match="at most 254"):
        scale.vip(255)


def test_scale_hafm_config_is_valid(scale: ModuleType, tmp_path: Path) -> None:
    from hafm.config.loader import load_config
    from hafm.plugin_manager import check_types, make_plugin_manager

    validators = {name: kind.validate for name, kind in check_types(make_plugin_manager()).items()}
    header = "[global]\ninclude = []\nplugin_dirs = []\n\n"
    for case in (scale.Case(instances=200, version=3, advert_int=0.1), scale.cases(quick=False)[-1]):
        path = tmp_path / "hafm.toml"
        path.write_text(header + scale.hafm_config(case, priority=100, state="MASTER", address="198.51.100.1"))
        config = load_config(path, check_validators=validators)
        assert len(config.instances) == case.instances
        assert len(config.checks) == case.checks
        if case.checks:
            assert len(config.instances["VI_1"].track_check) == case.checks


@pytest.mark.skipif(shutil.which("keepalived") is None, reason="keepalived is not installed")
def test_scale_keepalived_config_passes_keepalived_config_test(scale: ModuleType, tmp_path: Path) -> None:
    case = scale.cases(quick=True)[-1]  # two curl checks
    text = scale.keepalived_config(case, priority=100, state="MASTER", address="198.51.100.1")
    assert text.count("global_defs") == 1 and text.count("vrrp_script") == 2 and "track_script" in text
    path = tmp_path / "keepalived.conf"
    path.write_text(text)
    result = subprocess.run(
        ["keepalived", "--config-test", "-f", str(path)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_parse_cpu_ticks_counts_from_the_last_parenthesis(scale: ModuleType) -> None:
    # pid (comm) state ppid ... utime(14) stime(15) cutime(16) cstime(17) ...
    fields = ["S", "1", "1", "1", "0", "-1", "0", "0", "0", "0", "0", "100", "20", "7", "3", "20", "0"]
    assert scale.parse_cpu_ticks("42 (evil) name) " + " ".join(fields)) == 130
    assert scale.cpu_percent(scale.CLK_TCK * 2, 4.0) == pytest.approx(50.0)


def test_tree_cpu_ticks_includes_reaped_children(scale: ModuleType) -> None:
    before = scale.tree_cpu_ticks(os.getpid())
    burn = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass\n"
    subprocess.run([sys.executable, "-c", burn], check=True)  # reaped: lands in our cutime
    assert scale.tree_cpu_ticks(os.getpid()) - before >= 0.2 * scale.CLK_TCK


def test_vip_sample_and_worst(scale: ModuleType) -> None:
    expected = ["203.0.113.1", "203.0.113.2", "203.0.113.3"]
    sample = scale.vip_sample(expected, {"203.0.113.1", "203.0.113.2", "198.51.100.1"}, {"203.0.113.2"})
    assert sample == scale.VipSample(on_master=2, on_backup=1, missing=1, duplicated=1)
    result = scale.Result(
        daemon="hafm", case="3 inst v2 adv 1", instances=3, settled=None, cpu_master=1.0, cpu_backup=0.5,
        rss_master_mib=30.0, rss_backup_mib=30.0,
        vips=[scale.VipSample(on_master=3, on_backup=0, missing=0, duplicated=0), sample],
    )  # fmt: skip
    assert result.worst == sample
    lost = scale.Result(
        daemon="hafm", case="1 inst v2 adv 1", instances=1, settled=1.0, cpu_master=0.0, cpu_backup=0.0,
        rss_master_mib=30.0, rss_backup_mib=30.0,
    )  # fmt: skip
    assert lost.worst is None and scale.vip_cell(lost) == "no sample (ip timed out)"
    assert scale.vip_cell(result) == "2/3 a, 1 b (1 missing, 1 dup), never settled"
    table = scale.scale_table({"hafm": [result]}).splitlines()
    assert table[2].split()[:6] == ["3", "inst", "v2", "adv", "1", "hafm"]


def test_plot_series(plots: ModuleType, tmp_path: Path) -> None:
    def result(case: str, instances: int, cpu: float) -> dict[str, object]:
        return {"case": case, "instances": instances, "cpu_master": cpu, "cpu_backup": cpu / 2}

    scale_json = {
        "scale": {
            "hafm": [result("50 inst v3 adv 0.1", 50, 4.0), result("1 inst v3 adv 0.1", 1, 1.0)],
            "keepalived": [result("1 inst + 50 HTTP checks at 1 s", 1, 50.0)],
        }
    }
    assert plots.cpu_series(scale_json) == {
        "v3 adv 0.1": {"hafm master": [(1, 1.0), (50, 4.0)], "hafm backup": [(1, 0.5), (50, 2.0)]}
    }
    failover_json = {"rows": {"1 v2 adv 1 SIGTERM": {"rfc_bound": 0.648, "hafm": [0.66, None], "keepalived": [0.67]}}}
    assert plots.outage_points(failover_json) == [
        ("1 v2 adv 1 SIGTERM", "keepalived", [0.67], 0.648),
        ("1 v2 adv 1 SIGTERM", "hafm", [0.66], 0.648),
    ]
    pytest.importorskip("matplotlib")
    plots.plot_cpu(scale_json, tmp_path / "cpu.svg")
    plots.plot_failover(failover_json, tmp_path / "failover.svg")
    assert (tmp_path / "cpu.svg").read_text().lstrip().startswith("<?xml")
    assert "<svg" in (tmp_path / "failover.svg").read_text()


@pytest.mark.netns
@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("keepalived") is None, reason="needs root and keepalived")
def test_scale_quick_runs(tmp_path: Path) -> None:
    """The CI smoke run: one small case of each daemon and one start-up round, figures saved."""
    out = tmp_path / "scale.json"
    result = subprocess.run(
        [sys.executable, str(BENCH / "scale.py"), "--quick", "--only", "1 inst v2 adv 1", "--json", str(out),
         "--workdir", str(tmp_path / "work")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "1 inst v2 adv 1" in result.stdout and "start-up to BACKUP" in result.stdout
    saved = json.loads(out.read_text())
    assert set(saved["scale"]) == {"keepalived", "hafm"}
    assert all(r["vips"] for found in saved["scale"].values() for r in found)


# -- bench/appdown.py -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def appdown() -> ModuleType:
    return _load("appdown")


def test_appdown_variants_configs_are_valid(appdown: ModuleType, tmp_path: Path) -> None:
    from hafm.config.loader import load_config
    from hafm.plugin_manager import check_types, make_plugin_manager

    validators = {name: kind.validate for name, kind in check_types(make_plugin_manager()).items()}
    header = "[global]\ninclude = []\nplugin_dirs = []\n\n"
    for variant in appdown.VARIANTS:
        text = appdown.config(variant, priority=100, state="MASTER")
        path = tmp_path / f"{variant.name.replace(' ', '-')}.conf"
        if variant.daemon is appdown.KeepalivedNode:
            path.write_text(text)
            if shutil.which("keepalived") is not None:
                check = subprocess.run(["keepalived", "--config-test", "-f", str(path)], capture_output=True, text=True)
                assert check.returncode == 0, check.stderr
            continue
        path.write_text(header + text)
        config = load_config(path, check_validators=validators)
        check = config.checks["app"]
        assert (check.interval, check.fall, check.weight) == (1.0, 2, -20)
        assert check.fast_interval == variant.fast_interval
        assert config.instances["VI_1"].resign_below == variant.resign_below
        backup = tmp_path / "backup.toml"
        backup.write_text(header + appdown.config(variant, priority=90, state="BACKUP"))
        assert load_config(backup, check_validators=validators).instances["VI_1"].resign_below is None


def test_appdown_help() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH / "appdown.py"), "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and "--rounds" in result.stdout


def test_before_tree_is_the_hafm_that_runs_even_from_a_checkout(scale: ModuleType, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "hafm").mkdir(parents=True)
    (tree / "hafm" / "__init__.py").write_text("")
    (tree / "hafm" / "__main__.py").write_text("print('the other tree')\n")
    scale.variants(tree)
    node = object.__new__(scale.TreeHafmNode)  # argv() needs no lab host
    node.config_path, node.log_level = tmp_path / "x.toml", "info"
    repo = BENCH.parent  # its own hafm/ would win if the working directory came first on sys.path
    result = subprocess.run(node.argv(), cwd=repo, capture_output=True, text=True, timeout=60)
    assert result.stdout == "the other tree\n", result.stderr


@pytest.mark.parametrize(("script", "option"), [("loss", "--scenarios"), ("partition", "--cycles")])
def test_fault_benches_help_and_not_root(
    script: str, option: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH / f"{script}.py"), "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert option in result.stdout
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert _load(script).main([]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"bench/{script}.py: needs root" in err


def test_loss_scenarios_parse_and_refuse_nonsense() -> None:
    loss = _load("loss")
    assert loss.parse_scenario("30:2:1") == loss.Scenario(30, 2, 1.0)
    assert loss.parse_scenario("10:3:0.1").title == "10 % loss, VRRPv3 advert_int 0.1"
    for bad in ("30:2", "x:2:1", "100:2:1", "30:4:1", "30:2:0.5", "30:3:0"):
        with pytest.raises(argparse.ArgumentTypeError, match=bad):
            loss.parse_scenario(bad)


def test_a_slow_ip_loses_a_sample_not_the_run(scale: ModuleType) -> None:
    class SlowHost:
        def addresses(self) -> list[str]:
            raise subprocess.TimeoutExpired(["ip", "addr"], 10)

    class Host:
        def addresses(self) -> list[str]:
            return ["203.0.113.1/32", "198.51.100.1/24"]

    assert scale.holding(SlowHost()) is None
    assert scale.vip_sample_of(["203.0.113.1"], Host(), SlowHost()) is None
    assert scale.vip_sample_of(["203.0.113.1"], Host(), Host()) == scale.VipSample(
        on_master=1, on_backup=1, missing=0, duplicated=1
    )
