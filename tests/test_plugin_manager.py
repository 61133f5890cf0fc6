"""Loading plugins: built-ins, a real entry point, conf.d drop-ins, and every way loading can fail."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import textwrap
from pathlib import Path

import pytest

from hafm.config.loader import load_config
from hafm.config.model import CheckConfig
from hafm.errors import ConfigError
from hafm.hooks import Probe, ProbeResult
from hafm.plugin_manager import (
    DEFAULT_PLUGINS,
    PluginError,
    call_safely,
    check_types,
    describe_plugins,
    make_plugin_manager,
    plugin_problems,
)

REPO = Path(__file__).resolve().parent.parent
DROPIN = REPO / "tests" / "data" / "plugins" / "dropin_check.py"
EXAMPLE_PLUGIN = REPO / "contrib" / "example_plugin"
BUILTIN_TYPES = {"file", "http", "ping", "script", "tcp"}


def run_once(probe: Probe) -> ProbeResult:
    async def call() -> ProbeResult:
        return await probe()

    return asyncio.run(call())


def write_plugin(directory: Path, name: str, source: str, mode: int = 0o644) -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(source))
    path.chmod(mode)
    return path


def test_builtins_are_ordinary_plugins() -> None:
    pm = make_plugin_manager(load_entry_points=False)
    infos = {info.name: info for info in describe_plugins(pm)}
    assert set(infos) == {name.partition(":")[0] for name in DEFAULT_PLUGINS}
    assert {info.origin for info in infos.values()} == {"builtin"}
    assert infos["hafm_plugins.check_http"].hooks == ["hafm_register_check_types"]
    types = check_types(pm)
    assert set(types) == BUILTIN_TYPES
    assert types["http"].plugin == "hafm_plugins.check_http"


def test_dropin_adds_a_check_type(tmp_path: Path) -> None:
    path = tmp_path / "disk_free.py"
    shutil.copy(DROPIN, path)
    path.chmod(0o644)
    pm = make_plugin_manager([tmp_path, tmp_path / "missing-dir-is-fine"], load_entry_points=False)
    info = next(i for i in describe_plugins(pm) if i.name == str(path))
    assert info.origin == f"file {path}"
    assert info.hooks == ["hafm_register_check_types"]
    disk_free = check_types(pm)["disk_free"]
    assert disk_free.validate({"path": "/", "min_free_mb": 1}) == []
    assert disk_free.validate({"path": "/", "min_free": 1}) == [
        ("min_free_mb", "required key is missing"),
        ("min_free", "unknown key (did you mean min_free_mb?)"),
    ]
    probe = disk_free.create(CheckConfig(name="d", type="disk_free", options={"path": "/", "min_free_mb": 0}))
    result = run_once(probe)
    assert result.ok and result.detail.endswith("MiB free on /")
    impossible = disk_free.create(CheckConfig(name="d", type="disk_free", options={"path": "/", "min_free_mb": 2**40}))
    assert not run_once(impossible).ok


def test_dropins_load_in_sorted_order(tmp_path: Path) -> None:
    for name in ("b.py", "a.py", "c.py"):
        write_plugin(tmp_path, name, "")
    write_plugin(tmp_path, "not-python.txt", "this is ignored")
    pm = make_plugin_manager([tmp_path], load_entry_points=False)
    dropins = [name for name, _ in pm.list_name_plugin() if name.startswith(str(tmp_path))]
    assert dropins == [str(tmp_path / n) for n in ("a.py", "b.py", "c.py")]


@pytest.mark.parametrize("mode", [0o664, 0o646, 0o666])
def test_group_or_world_writable_dropin_is_refused(tmp_path: Path, mode: int) -> None:
    path = write_plugin(tmp_path, "evil.py", "raise SystemExit('must never run')\n", mode)
    with pytest.raises(PluginError) as info:
        make_plugin_manager([tmp_path], load_entry_points=False)
    assert str(info.value) == f"plugin drop-in refused: {path} is writable by group/others (chmod go-w {path})"


def test_dropin_in_a_group_writable_directory_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    write_plugin(shared, "swappable.py", "raise SystemExit('must never run')\n")
    shared.chmod(0o775)
    with pytest.raises(PluginError) as info:
        make_plugin_manager([shared], load_entry_points=False)
    assert str(info.value) == f"plugin directory refused: {shared} is writable by group/others (chmod go-w {shared})"


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to chown")
def test_dropin_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    path = write_plugin(tmp_path, "foreign.py", "raise SystemExit('must never run')\n")
    os.chown(path, 65534, 65534)
    with pytest.raises(PluginError, match=r"refused: .*foreign\.py is owned by .*uid 65534.*not root \(chown root "):
        make_plugin_manager([tmp_path], load_entry_points=False)


def test_misspelled_hook_names_the_file_and_suggests(tmp_path: Path) -> None:
    path = write_plugin(
        tmp_path,
        "typo.py",
        """\
        from hafm.hooks import hookimpl


        @hookimpl
        def hafm_chek_changed(check_name, up, detail):
            pass
        """,
    )
    with pytest.raises(PluginError) as info:
        make_plugin_manager([tmp_path], load_entry_points=False)
    assert str(info.value) == (
        f"{path}:4: hook 'hafm_chek_changed' matches no hook specification (did you mean hafm_check_changed?)"
    )


def test_hookimpl_with_unknown_argument_names_the_file(tmp_path: Path) -> None:
    path = write_plugin(
        tmp_path,
        "badargs.py",
        """\
        from hafm.hooks import hookimpl

        @hookimpl
        def hafm_check_changed(check_name, state):
            pass
        """,
    )
    with pytest.raises(PluginError) as info:
        make_plugin_manager([tmp_path], load_entry_points=False)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert "state" in message and "\n" not in message


def test_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = write_plugin(tmp_path, "broken.py", "import os\n\ndef f(:\n    pass\n")
    with pytest.raises(PluginError) as info:
        make_plugin_manager([tmp_path], load_entry_points=False)
    assert str(info.value).startswith(f"{path}:3: syntax error: ")
    assert "\n" not in str(info.value)


def test_import_error_names_file_and_line(tmp_path: Path) -> None:
    path = write_plugin(tmp_path, "needs_dep.py", "import os\nimport hafm_no_such_module_xyz\n")
    with pytest.raises(PluginError) as info:
        make_plugin_manager([tmp_path], load_entry_points=False)
    assert str(info.value) == (
        f"{path}:2: import failed: ModuleNotFoundError: No module named 'hafm_no_such_module_xyz'"
    )


def test_duplicate_check_type_names_both_plugins(tmp_path: Path) -> None:
    path = write_plugin(
        tmp_path,
        "myhttp.py",
        """\
        from hafm.hooks import CheckType, hookimpl

        @hookimpl
        def hafm_register_check_types():
            return [CheckType(name="http", validate=lambda o: [], create=lambda c: None)]
        """,
    )
    pm = make_plugin_manager([tmp_path], load_entry_points=False)
    with pytest.raises(PluginError) as info:
        check_types(pm)
    assert str(info.value) == f"check type 'http' is registered by both builtin and file {path}"


# -- a real entry point -----------------------------------------------------------------------


@pytest.fixture
def installed_example_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Make contrib/example_plugin an installed distribution: a dist-info with entry_points.txt on sys.path.

    This is what ``pip install`` leaves behind, so importlib.metadata and pluggy
    find a real entry point; nothing is mocked.
    """
    site = tmp_path / "site"
    dist_info = site / "hafm_example_plugin-0.1.0.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: hafm-example-plugin\nVersion: 0.1.0\n")
    (dist_info / "entry_points.txt").write_text("[hafm]\nprocess_check = hafm_example_plugin\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.syspath_prepend(str(EXAMPLE_PLUGIN))
    return site


def test_entry_point_plugin_is_loaded(installed_example_plugin: Path) -> None:
    pm = make_plugin_manager()
    info = next(i for i in describe_plugins(pm) if i.name == "process_check")
    assert info.origin == "entrypoint hafm-example-plugin"
    process = check_types(pm)["process"]
    assert process.plugin == "process_check"
    assert process.validate({"process": "x", "min_count": 0}) == [("min_count", "0 is not a positive integer")]
    my_name = Path("/proc/self/comm").read_text().strip()
    running = process.create(CheckConfig(name="p", type="process", options={"process": my_name}))
    assert run_once(running).ok
    absent = process.create(CheckConfig(name="p", type="process", options={"process": "hafm-no-such-proc"}))
    result = run_once(absent)
    assert (result.ok, result.detail) == (False, "0 hafm-no-such-proc process(es) running")


def test_broken_entry_point_is_one_line_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dist_info = tmp_path / "hafm_broken-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: hafm-broken\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text("[hafm]\nbroken = hafm_broken_missing_module\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginError) as info:
        make_plugin_manager()
    assert str(info.value) == (
        "entry point broken = hafm_broken_missing_module (hafm-broken): "
        "import failed: ModuleNotFoundError: No module named 'hafm_broken_missing_module'"
    )


def test_entry_points_can_be_skipped(installed_example_plugin: Path) -> None:
    pm = make_plugin_manager(load_entry_points=False)
    assert "process" not in check_types(pm)


def test_example_plugin_declares_the_entry_point() -> None:
    import tomllib

    project = tomllib.loads((EXAMPLE_PLUGIN / "pyproject.toml").read_text())["project"]
    assert project["entry-points"]["hafm"] == {"process_check": "hafm_example_plugin"}


# -- validators feed the config loader --------------------------------------------------------


def test_check_validators_in_the_config_loader(tmp_path: Path) -> None:
    config = tmp_path / "hafm.toml"
    config.write_text(
        textwrap.dedent(
            """\
            [vrrp_instance.VI_1]
            interface = "veth0"
            virtual_router_id = 51
            virtual_ipaddress = ["198.51.100.10/24"]
            track_check = ["web", "other"]

            [check.web]
            type = "http"
            url = "http://127.0.0.1:8080/"
            methd = "GET"

            [check.other]
            type = "htp"

            [check.port]
            type = "tcp"
            host = "127.0.0.1"
            """
        )
    )
    validators = {name: t.validate for name, t in check_types(make_plugin_manager(load_entry_points=False)).items()}
    with pytest.raises(ConfigError) as info:
        load_config(config, check_validators=validators)
    messages = info.value.messages
    assert f"{config}: check.web.methd: unknown key (did you mean method?)" in messages
    assert f"{config}: check.port.port: required key is missing" in messages
    assert any(m.startswith(f"{config}: check.other.type: unknown check type 'htp'") for m in messages)


# -- calling notification hooks ---------------------------------------------------------------


def test_call_safely_isolates_a_raising_plugin(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    write_plugin(
        tmp_path,
        "a_value.py",
        """\
        from hafm.hooks import hookimpl

        @hookimpl
        def hafm_check_changed(check_name, up):
            return f"value {check_name} {up}"
        """,
    )
    write_plugin(
        tmp_path,
        "b_raises.py",
        """\
        from hafm.hooks import hookimpl

        @hookimpl
        def hafm_check_changed(detail):
            raise ValueError("plugin bug: " + detail)
        """,
    )
    write_plugin(
        tmp_path,
        "c_async.py",
        """\
        import asyncio
        from hafm.hooks import hookimpl

        @hookimpl
        def hafm_check_changed(check_name):
            async def later():
                await asyncio.sleep(0)
                return "awaited " + check_name
            return later()
        """,
    )
    write_plugin(
        tmp_path,
        "d_callable.py",
        """\
        from hafm.hooks import hookimpl

        @hookimpl
        def hafm_check_changed(check_name):
            return lambda: "called " + check_name
        """,
    )
    pm = make_plugin_manager([tmp_path], load_entry_points=False)
    with caplog.at_level(logging.ERROR, logger="hafm.plugin_manager"):
        results = asyncio.run(call_safely(pm, "hafm_check_changed", check_name="web", up=False, detail="HTTP 500"))
    assert sorted(results) == ["awaited web", "called web", "value web False"]
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "b_raises.py" in errors[0] and "ValueError: plugin bug: HTTP 500" in errors[0]


def test_hook_wrappers_run_through_pluggy_dispatch(tmp_path: Path) -> None:
    """A third-party ``wrapper=True`` hookimpl sees every call and the other plugins' results."""
    write_plugin(
        tmp_path,
        "a_value.py",
        """\
        from hafm.hooks import hookimpl

        @hookimpl
        def hafm_check_changed(check_name):
            return "value " + check_name
        """,
    )
    write_plugin(
        tmp_path,
        "b_wrapper.py",
        """\
        from hafm.hooks import hookimpl

        SEEN = []

        @hookimpl(wrapper=True)
        def hafm_check_changed(check_name):
            results = yield
            SEEN.append((check_name, list(results)))
            return results + ["wrapped"]
        """,
    )
    pm = make_plugin_manager([tmp_path], load_entry_points=False)
    results = asyncio.run(call_safely(pm, "hafm_check_changed", check_name="web", up=False, detail="x"))
    assert results == ["value web", "wrapped"]
    wrapper = next(plugin for name, plugin in pm.list_name_plugin() if name.endswith("b_wrapper.py"))
    assert wrapper.SEEN == [("web", ["value web"])]


@pytest.mark.parametrize("raised", ["SystemExit(3)", "KeyboardInterrupt()", "GeneratorExit()"])
def test_base_exceptions_from_a_plugin_are_contained(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, raised: str
) -> None:
    """A plugin calling sys.exit() in a hook must not end the daemon with its VIPs in place."""
    write_plugin(
        tmp_path,
        "exits.py",
        f"""\
        from hafm.hooks import hookimpl

        @hookimpl
        def hafm_state_changed(instance):
            raise {raised}

        @hookimpl
        async def hafm_split_brain(instance):
            raise {raised}
        """,
    )
    pm = make_plugin_manager([tmp_path], load_entry_points=False)
    with caplog.at_level(logging.ERROR, logger="hafm.plugin_manager"):
        state = asyncio.run(
            call_safely(
                pm, "hafm_state_changed", instance="VI_1", old_state="BACKUP", new_state="MASTER", reason="", priority=1
            )
        )
        split = asyncio.run(call_safely(pm, "hafm_split_brain", instance="VI_1", peer="198.51.100.2", peer_priority=1))
    assert state == [] and split == []
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2 and all("exits.py" in e for e in errors)


def test_validate_config_collects_messages_and_contains_a_raising_plugin(tmp_path: Path) -> None:
    write_plugin(
        tmp_path,
        "validators.py",
        """\
        from hafm.hooks import hookimpl

        @hookimpl
        def hafm_validate_config(config):
            raise RuntimeError("validator bug")
        """,
    )
    config = tmp_path / "hafm.toml"
    config.write_text(
        '[vrrp_instance.VI_1]\ninterface = "veth0"\nvirtual_router_id = 51\nvirtual_ipaddress = ["198.51.100.10/24"]\n'
    )
    pm = make_plugin_manager([tmp_path], load_entry_points=False)
    problems = plugin_problems(pm, load_config(config))
    assert len(problems) == 1
    assert "validators.py" in problems[0] and "RuntimeError: validator bug" in problems[0]


def test_each_plugin_manager_has_its_own_notify_plugin() -> None:
    """No module-global state: two managers (two daemons, two tests) never share a notify runner."""
    first = make_plugin_manager(load_entry_points=False).get_plugin("hafm_plugins.notify")
    second = make_plugin_manager(load_entry_points=False).get_plugin("hafm_plugins.notify")
    assert first is not second and first.runner is None and second.runner is None


def test_a_hook_that_blocks_the_loop_is_named_with_its_duration(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CPU-bound or sleeping hook is the plugin's bug, but hafm says which plugin held the loop."""
    import hafm.plugin_manager as plugin_manager

    monkeypatch.setattr(plugin_manager, "SLOW_HOOK", 0.05)
    write_plugin(
        tmp_path,
        "blocking.py",
        """\
        import time
        from hafm.hooks import hookimpl

        @hookimpl
        def hafm_state_changed(instance):
            time.sleep(0.1)

        @hookimpl
        async def hafm_split_brain(instance):
            time.sleep(0.1)  # blocking inside a coroutine holds the loop just the same
        """,
    )
    pm = make_plugin_manager([tmp_path], load_entry_points=False)
    with caplog.at_level(logging.WARNING, logger="hafm.plugin_manager"):
        asyncio.run(
            call_safely(
                pm, "hafm_state_changed", instance="VI_1", old_state="BACKUP", new_state="MASTER", reason="", priority=1
            )
        )
        asyncio.run(call_safely(pm, "hafm_split_brain", instance="VI_1", peer="198.51.100.2", peer_priority=1))
    held = [r.getMessage() for r in caplog.records if "held the event loop" in r.getMessage()]
    assert len(held) == 2
    assert "blocking.py" in held[0] and "in hafm_state_changed" in held[0]
    assert "in hafm_split_brain" in held[1]
