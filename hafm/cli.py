"""Command line: ``hafm [--config F]`` runs the daemon; subcommands do the rest."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path
from typing import Any

from hafm import __version__
from hafm.config.loader import CheckValidator
from hafm.config.model import Config, GlobalConfig
from hafm.errors import ConfigError, HafmError
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
    demo = sub.add_parser("demo", help="play the two-server failover scenario in network namespaces (needs root)")
    demo.add_argument("--keep", action="store_true", help="leave the lab up afterwards, with instructions")
    demo.add_argument(
        "--event", choices=("term", "kill", "linkdown"), default="term", help="how the master fails (default term)"
    )
    demo.add_argument("--version-vrrp", type=int, choices=(2, 3), default=2, dest="vrrp_version", help="VRRP version")
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

            return convert(args.keepalived_conf, args.output)
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
        return _run_daemon(config_path, getattr(args, "log_level", None))
    except HafmError as exc:
        print(f"hafm: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _plugin_dirs(config_path: Path) -> list[Path]:
    """plugin_dirs from [global] (relative to the config file), or the default when the config is broken."""
    from hafm.config.loader import load_config

    try:
        dirs = load_config(config_path).global_.plugin_dirs
    except ConfigError:
        dirs = GlobalConfig().plugin_dirs
    return [config_path.parent / d for d in dirs]


def _plugins(config_path: Path) -> HafmPluginManager:
    return make_plugin_manager(_plugin_dirs(config_path))


def _validators(pm: HafmPluginManager) -> dict[str, CheckValidator]:
    return {name: check_type.validate for name, check_type in check_types(pm).items()}


def _load(config_path: Path) -> tuple[Config, HafmPluginManager]:
    from hafm.config.loader import load_config

    pm = _plugins(config_path)
    config = load_config(config_path, check_validators=_validators(pm))
    problems = plugin_problems(pm, config)
    if problems:
        raise ConfigError(problems)
    return config, pm


def _list_plugins(config_path: Path) -> int:
    from hafm.plugin_manager import describe_plugins

    pm = _plugins(config_path)
    for info in describe_plugins(pm):
        print(f"{info.name}  [{info.origin}]")
        for hook in info.hooks:
            print(f"    {hook}")
    return 0


def setup_logging(level: str) -> None:
    # Under systemd, journald adds its own timestamps.
    fmt = "%(levelname)s %(message)s" if os.environ.get("JOURNAL_STREAM") else "%(asctime)s %(levelname)s %(message)s"
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(fmt))
    # pyroute2 logs every netlink message at debug level: far too much for ours.
    handler.addFilter(lambda record: record.levelno >= logging.WARNING or not record.name.startswith("pyroute2"))
    logging.basicConfig(level=level.upper(), handlers=[handler])


def _run_daemon(config_path: Path, log_level: str | None) -> int:
    try:
        config, pm = _load(config_path)
    except ConfigError as exc:
        for message in exc.messages:
            print(message, file=sys.stderr)
        return 1
    setup_logging(log_level or config.global_.log_level)
    from hafm.shell.daemon import Daemon

    daemon = Daemon(config, pm)
    return asyncio.run(daemon.run())
