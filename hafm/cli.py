"""Command line: ``hafm [--config F]`` runs the daemon; subcommands do the rest."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import Any

from hafm import __version__
from hafm.config.loader import CheckValidator
from hafm.config.model import Config
from hafm.errors import ConfigError, HafmError
from hafm.logs import LOG_FORMATS, setup_logging
from hafm.plugin_manager import HafmPluginManager, check_types, make_plugin_manager, plugin_problems

DEFAULT_CONFIG = Path("/etc/hafm.toml")
LOG_LEVELS = ("debug", "info", "warning", "error")

log = logging.getLogger("hafm")


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-c", "--config", type=Path, default=argparse.SUPPRESS, help=f"configuration file (default {DEFAULT_CONFIG})"
    )
    common.add_argument(
        "--log-level", choices=LOG_LEVELS, default=argparse.SUPPRESS, help="log level (default: [global] log_level)"
    )
    common.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default=argparse.SUPPRESS,
        help="log lines as text or one JSON object per line (default: [global] log_format)",
    )
    parser = argparse.ArgumentParser(
        prog="hafm",
        parents=[common],
        description="Health-checking VRRP failover manager. Without a command, runs the daemon in the foreground "
        "and logs to stderr.",
    )
    parser.add_argument("--version", action="version", version=f"hafm {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("run", parents=[common], help="run the daemon (the default)")
    check = sub.add_parser(
        "check-config",
        parents=[common],
        help="validate the configuration; print it with the file each value came from",
    )
    check.add_argument("path", nargs="?", type=Path, help="configuration file (same as --config)")
    sub.add_parser("plugins", parents=[common], help="list loaded plugins, where each came from and its hooks")
    convert = sub.add_parser("convert", help="translate a keepalived.conf into hafm TOML")
    convert.add_argument("keepalived_conf", type=Path, help="keepalived.conf to read")
    convert.add_argument("-o", "--output", type=Path, help="write the TOML here (default: stdout)")
    convert.add_argument(
        "--config-id", help="keepalived's -i id (by default its host name) for @ID lines and ${_INSTANCE}"
    )
    demo = sub.add_parser("demo", help="play the two-server failover scenario in network namespaces (needs root)")
    demo.add_argument("--keep", action="store_true", help="leave the lab up afterwards, with instructions")
    demo.add_argument(
        "--event", choices=("term", "kill", "linkdown"), default="term", help="how the master fails (default term)"
    )
    demo.add_argument("--version-vrrp", type=int, choices=(2, 3), default=2, dest="vrrp_version", help="VRRP version")
    sub.add_parser(
        "cleanup",
        parents=[common],
        help="remove the VIPs a killed hafm left behind (systemd's ExecStopPost=; refused while hafm runs)",
    )
    control = argparse.ArgumentParser(add_help=False, parents=[common])
    control.add_argument("--socket", help="control socket (default: [global] control_socket of the configuration)")
    status = sub.add_parser("status", parents=[control], help="the running daemon's instances, checks and counters")
    status.add_argument("instance", nargs="?", help="only this instance")
    status.add_argument("--json", action="store_true", help="the status document (docs/status.md) as JSON")
    sub.add_parser("reload", parents=[control], help="reload the configuration (like SIGHUP) and print the result")
    maintenance = sub.add_parser(
        "maintenance",
        parents=[control],
        help="drain (on) or restore (off) this node: a Master hands over at once and stays Backup",
    )
    maintenance.add_argument("switch", choices=("on", "off"))
    maintenance.add_argument("instance", nargs="?", help="only this instance (default: all)")
    maintenance.add_argument("--reason", default="", help="shown in status and logs")
    watch = sub.add_parser(
        "watch",
        help="show every VRRP speaker on a segment and what breaks clusters (read-only; needs root)",
        description="Listen on IFACE and show every VRRP speaker (v2 and v3, IPv4 and IPv6) with the problems "
        "that break clusters. With --config, the VRIDs of that hafm config are checked against it.",
    )
    watch.add_argument("interface", metavar="IFACE", help="interface to listen on (e.g. eth0, or a bridge)")
    watch.add_argument(
        "-c",
        "--config",
        type=Path,
        default=argparse.SUPPRESS,
        help="hafm config whose VRIDs are ours (read only if given)",
    )
    watch.add_argument("--vrid", type=int, metavar="N", help="show only VRID N (1..255)")
    watch.add_argument("--seconds", type=float, metavar="S", help="listen S seconds, print once and exit")
    watch.add_argument("--json", action="store_true", help="print a JSON document instead of the table")
    watch.add_argument(
        "--expect",
        action="append",
        default=[],
        metavar="VRID=ADDR,...",
        help="routers allowed on VRID; any other source is an unknown router (repeatable)",
    )
    demo.add_argument(
        "--tomcat", action="store_true", help="real Tomcat servers (Debian's tomcat10) instead of the stand-in"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args: Any = build_parser().parse_args(argv)
    config_path: Path = args.path if getattr(args, "path", None) else getattr(args, "config", DEFAULT_CONFIG)
    command = args.command or "run"
    try:
        if command == "convert":
            from hafm.keepalived.convert import run as convert

            return convert(args.keepalived_conf, args.output, config_id=args.config_id)
        if command == "demo":
            from hafm.lab.demo import run_demo

            return run_demo(keep=args.keep, event=args.event, vrrp_version=args.vrrp_version, tomcat=args.tomcat)
        if command == "check-config":
            from hafm.config.check import run as check_config

            pm = _plugins(config_path)
            return check_config(
                config_path, check_validators=_validators(pm), extra_checks=lambda config: plugin_problems(pm, config)
            )
        if command == "plugins":
            return _list_plugins(config_path)
        if command == "cleanup":
            return _cleanup(config_path)
        if command in ("status", "reload", "maintenance"):
            return _control(command, args, config_path)
        if command == "watch":
            from hafm.watch.capture import run as watch

            return watch(
                args.interface,
                vrid=args.vrid,
                seconds=args.seconds,
                as_json=args.json,
                expect=args.expect,
                config_path=getattr(args, "config", None),
            )
        return _run_daemon(config_path, getattr(args, "log_level", None), getattr(args, "log_format", None))
    except HafmError as exc:
        print(f"hafm: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _control(command: str, args: Any, config_path: Path) -> int:
    """Talk to the running daemon through its control socket."""
    from hafm.shell.control import request
    from hafm.status import render_table

    path = args.socket or _control_socket(config_path)
    if command == "status":
        reply = request(path, {"command": "status", "instance": args.instance})
    elif command == "reload":
        reply = request(path, {"command": "reload"}, timeout=60)
    else:
        payload = {
            "command": "maintenance",
            "on": args.switch == "on",
            "instance": args.instance,
            "reason": args.reason,
        }
        reply = request(path, payload)
    if not reply.get("ok"):
        for message in reply.get("errors") or []:
            print(message, file=sys.stderr)
        print(f"hafm {command}: {reply.get('error', 'failed')}", file=sys.stderr)
        return 1
    if command == "status":
        if args.json:
            print(json.dumps(reply["status"], indent=2))
        else:
            sys.stdout.write(render_table(reply["status"]))
    elif command == "reload":
        print(f"reloaded: {reply.get('summary', '')}")
    else:
        for name, reason in reply.get("maintenance", {}).items():
            print(f"{name}: maintenance {'on (' + reason + ')' if reason is not None else 'off'}")
    return 0


def _cleanup(config_path: Path) -> int:
    """Remove the VIPs a stopped hafm left tagged on their interfaces; print one line for each."""
    from hafm.config.loader import load_config
    from hafm.shell.leftovers import cleanup

    try:
        # Without the plugins' check validators: a check that no longer validates must not keep
        # a dead Master's VIPs on the wire.
        config = load_config(config_path)
    except ConfigError as exc:
        for message in exc.messages:
            print(message, file=sys.stderr)
        return 1
    cleared = asyncio.run(cleanup(config))
    for line in cleared.removed:
        print(line)
    for line in cleared.failed:
        print(line, file=sys.stderr)
    return 1 if cleared.failed else 0


def _control_socket(config_path: Path) -> str:
    """The configuration's control socket, or the default when it cannot be read."""
    from hafm.config.loader import load_config
    from hafm.config.model import GlobalConfig

    try:
        return load_config(config_path).global_.control_socket
    except (ConfigError, OSError):
        return GlobalConfig().control_socket


def _plugin_dirs(config_path: Path) -> list[Path]:
    """plugin_dirs from [global] (relative to the config file), or the default when the config is broken."""
    from hafm.config.loader import default_dropin_dir, load_config

    try:
        dirs = load_config(config_path).global_.plugin_dirs
    except ConfigError:
        dirs = (str(default_dropin_dir(config_path)),)
    return [config_path.parent / d for d in dirs]


def _plugins(config_path: Path) -> HafmPluginManager:
    return make_plugin_manager(_plugin_dirs(config_path))


def _validators(pm: HafmPluginManager) -> dict[str, CheckValidator]:
    return {name: check_type.validate for name, check_type in check_types(pm).items()}


def _load(config_path: Path) -> tuple[Config, HafmPluginManager]:
    pm = _plugins(config_path)
    return _load_with(pm, config_path), pm


def _load_with(pm: HafmPluginManager, config_path: Path) -> Config:
    """Load and validate ``config_path`` with the plugins of ``pm`` (also what a reload does)."""
    from hafm.config.loader import load_config

    config = load_config(config_path, check_validators=_validators(pm))
    problems = plugin_problems(pm, config)
    if problems:
        raise ConfigError(problems)
    return config


def _list_plugins(config_path: Path) -> int:
    from hafm.plugin_manager import describe_plugins

    pm = _plugins(config_path)
    for info in describe_plugins(pm):
        print(f"{info.name}  [{info.origin}]")
        for hook in info.hooks:
            print(f"    {hook}")
    return 0


def _run_daemon(config_path: Path, log_level: str | None, log_format: str | None = None) -> int:
    from hafm.shell.httpx_lean import keep_cli_out

    keep_cli_out()  # before the config's http checks are validated (they import httpx)
    try:
        config, pm = _load(config_path)
    except ConfigError as exc:
        for message in exc.messages:
            print(message, file=sys.stderr)
        return 1
    setup_logging(log_level or config.global_.log_level, log_format or config.global_.log_format)
    from hafm.shell.daemon import Daemon

    # Plugins are loaded once: a reload re-reads the TOML files, not the *.py drop-ins.
    daemon = Daemon(config, pm, reload=lambda: _load_with(pm, config_path))
    return asyncio.run(daemon.run())
