"""Build the pluggy plugin manager: built-ins, entry points, drop-ins from the STEM.d directory.

Load order (later plugins are called first by pluggy, like pytest):

1. built-in plugins, the modules in :data:`DEFAULT_PLUGINS`, registered by
   name exactly as a third-party module would be;
2. installed distributions that declare an entry point in the ``hafm`` group
   (what ``pm.load_setuptools_entrypoints("hafm")`` does, with better errors);
3. ``*.py`` files from each plugin directory (``STEM.d/`` beside the main file by default), sorted
   by name.  hafm runs as root, so a drop-in that another user could have
   written is refused instead of executed.

Finally every hookimpl must match a hookspec: a misspelled hook name is an
error naming the file, never a silently ignored function.
"""

from __future__ import annotations

import asyncio
import difflib
import functools
import importlib
import importlib.metadata
import importlib.util
import inspect
import logging
import os
import stat
import sys
import time
import traceback
import types
from collections.abc import Awaitable, Callable, Coroutine, Generator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from hafm import hookspecs
from hafm.config.model import Config
from hafm.errors import PluginError
from hafm.hookspecs import PROJECT_NAME, CheckType, hookimpl
from hafm.trust import shared_directory_reason, untrusted_reason

__all__ = [
    "DEFAULT_PLUGINS",
    "HafmPluginManager",
    "PluginError",
    "PluginInfo",
    "await_me_maybe",
    "call_safely",
    "check_types",
    "describe_plugins",
    "hookimpl",
    "make_plugin_manager",
]

log = logging.getLogger(__name__)

# Built-in features are ordinary plugins (pytest's default_plugins).
DEFAULT_PLUGINS: tuple[str, ...] = (
    "hafm_plugins.check_http",
    "hafm_plugins.check_tcp",
    "hafm_plugins.check_script",
    "hafm_plugins.check_file",
    "hafm_plugins.check_ping",
    "hafm_plugins.notify:NotifyPlugin",
)

ENTRY_POINT_GROUP = PROJECT_NAME
# A hook call (or one step of an async hook) that holds the event loop this long is reported.
SLOW_HOOK = 0.1


@dataclass(frozen=True, kw_only=True)
class PluginInfo:
    """One registered plugin, as ``hafm plugins`` lists it."""

    name: str
    origin: str  # "builtin", "entrypoint <dist>" or "file <path>"
    hooks: list[str]


class HafmPluginManager(pluggy.PluginManager):
    """A pluggy manager that remembers where each plugin came from and contains their exceptions.

    Hooks are called through pluggy's own dispatch (``pm.hook.NAME(...)``), so
    ordering, ``tryfirst``/``trylast`` and hook wrappers work as pluggy
    documents.  What one plugin's exception means is decided here, per hook,
    when the plugin is registered (:func:`_contained`): the other plugins are
    still called and the daemon never sees it.
    """

    def __init__(self) -> None:
        super().__init__(PROJECT_NAME)
        self.origins: dict[str, str] = {}

    def origin_of(self, plugin_name: str) -> str:
        """``builtin``, ``entrypoint <dist>`` or ``file <path>`` for a registered plugin name."""
        return self.origins.get(plugin_name, plugin_name)

    def register(self, plugin: object, name: str | None = None) -> str | None:
        registered = super().register(plugin, name)
        if registered is None:
            return None
        for caller in self.get_hookcallers(plugin) or []:
            for impl in caller.get_hookimpls():
                if impl.plugin is plugin and not (impl.wrapper or impl.hookwrapper):
                    # HookImpl.function is Final only in pluggy's type hints; pluggy calls whatever it holds.
                    setattr(impl, "function", _contained(impl.function, self, registered, caller.name))  # noqa: B010
        return registered


def make_plugin_manager(plugin_dirs: Sequence[Path] = (), *, load_entry_points: bool = True) -> HafmPluginManager:
    """Return a plugin manager with every hafm plugin loaded and validated.

    Raises :class:`PluginError` (one line naming the file) for a drop-in that
    is unsafe, does not import, or implements a hook that does not exist.
    A missing plugin directory is not an error (drop-ins are optional).
    """
    pm = HafmPluginManager()
    pm.add_hookspecs(hookspecs)
    for name in DEFAULT_PLUGINS:
        _register(pm, _builtin(name), name.partition(":")[0], "builtin")
    if load_entry_points:
        _load_entry_points(pm)
    for directory in plugin_dirs:
        if not directory.is_dir():
            continue
        shared = shared_directory_reason(str(directory))
        if shared:
            raise PluginError(f"plugin directory refused: {shared}")
        for path in sorted(directory.glob("*.py")):
            _load_dropin(pm, path)
    _check_pending(pm)
    return pm


def _builtin(name: str) -> object:
    """``module`` registers the module; ``module:Class`` a fresh instance, so each manager has its own state."""
    module_name, _, class_name = name.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, class_name)() if class_name else module


def _load_entry_points(pm: HafmPluginManager) -> None:
    """Like ``pm.load_setuptools_entrypoints("hafm")``, but a broken entry point is a one-line error
    naming it and its distribution (pluggy's own loader lets the bare ImportError through)."""
    for dist in importlib.metadata.distributions():
        for ep in dist.entry_points:
            if ep.group != ENTRY_POINT_GROUP or pm.get_plugin(ep.name) or pm.is_blocked(ep.name):
                continue  # also skips a distribution seen twice on sys.path
            origin = f"entrypoint {dist.metadata['name']}"
            try:
                plugin = ep.load()
            except Exception as exc:
                raise PluginError(
                    f"entry point {ep.name} = {ep.value} ({dist.metadata['name']}): "
                    f"import failed: {type(exc).__name__}: {exc}"
                ) from None
            _register(pm, plugin, ep.name, origin)


def _register(pm: HafmPluginManager, plugin: object, name: str, origin: str) -> None:
    try:
        pm.register(plugin, name=name)
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"{origin.removeprefix('file ')}: {_one_line(exc)}") from None
    except ValueError as exc:  # pluggy: name or plugin already registered
        raise PluginError(f"{origin.removeprefix('file ')}: {exc}") from None
    pm.origins[name] = origin


def _one_line(exc: pluggy.PluginValidationError) -> str:
    """pluggy's multi-line validation message, as one line (the hook definition and the problem)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    definition = next((ln for ln in lines if ln.startswith("hookimpl definition:")), None)
    problem = next((ln for ln in lines if ln.startswith("Argument(s)")), None)
    if definition and problem:
        return f"{definition.removeprefix('hookimpl definition: ')}: {problem.rstrip(')')}"
    return " ".join(lines)


def _refuse_unsafe(path: Path) -> None:
    """Refuse a drop-in that someone other than root or us could have written or swapped."""
    problem = untrusted_reason(str(path))
    if problem:
        raise PluginError(f"plugin drop-in refused: {problem}")


def _load_dropin(pm: HafmPluginManager, path: Path) -> None:
    # A dangling symlink or a FIFO named *.py must be one line, not a traceback or a hang in exec_module.
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise PluginError(f"{path}: plugin drop-in refused: not a regular file")
        _refuse_unsafe(path)
    except OSError as exc:
        raise PluginError(f"{path}: cannot read plugin drop-in: {exc.strerror or exc}") from None
    module = _import_file(path)
    _register(pm, module, str(path), f"file {path}")


def _import_file(path: Path) -> ModuleType:
    # A private module name: drop-ins are not importable by other code, and two
    # directories may hold files with the same stem.
    module_name = f"hafm_dropin_{abs(hash(str(path.resolve()))):x}_{path.stem}"
    # Compiled from the source that passed the trust rule, never from __pycache__: a .pyc that
    # another user planted beside a trusted drop-in must not run as root (and none is written).
    try:
        source = path.read_bytes()
    except OSError as exc:
        raise PluginError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    module = ModuleType(module_name)
    module.__file__ = str(path)
    sys.modules[module_name] = module
    try:
        exec(compile(source, str(path), "exec", dont_inherit=True), module.__dict__)  # noqa: S102 - trusted drop-in
    except SyntaxError as exc:
        del sys.modules[module_name]
        raise PluginError(f"{path}:{exc.lineno}: syntax error: {exc.msg}") from None
    except (Exception, SystemExit) as exc:  # sys.exit() in a drop-in must not end hafm silently
        del sys.modules[module_name]
        line = _line_in(path, exc)
        raise PluginError(f"{path}:{line}: import failed: {type(exc).__name__}: {exc}") from None
    return module


def _line_in(path: Path, exc: BaseException) -> int | str:
    """The deepest traceback line inside ``path`` (where the drop-in went wrong)."""
    line: int | str = "?"
    target = str(path.resolve())
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename and str(Path(frame.filename).resolve()) == target and frame.lineno is not None:
            line = frame.lineno
    return line


def _check_pending(pm: HafmPluginManager) -> None:
    """Turn a hookimpl without a hookspec into an error that says where and suggests a name."""
    spec_names = sorted(name for name in dir(hookspecs) if name.startswith(f"{PROJECT_NAME}_"))
    for hook_name in sorted(vars(pm.hook)):
        caller = getattr(pm.hook, hook_name)
        if not isinstance(caller, pluggy.HookCaller) or caller.has_spec():
            continue
        for impl in caller.get_hookimpls():
            if impl.optionalhook:
                continue
            where = pm.origin_of(impl.plugin_name).removeprefix("file ")
            line = getattr(getattr(inspect.unwrap(impl.function), "__code__", None), "co_firstlineno", None)
            if line is not None and where.endswith(".py"):
                where = f"{where}:{line}"
            close = difflib.get_close_matches(hook_name, spec_names, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise PluginError(f"{where}: hook {hook_name!r} matches no hook specification{hint}")
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:  # pragma: no cover - the loop above catches these
        raise PluginError(str(exc)) from None


def describe_plugins(pm: pluggy.PluginManager) -> list[PluginInfo]:
    """Every registered plugin with its origin and implemented hooks, sorted by name."""
    origins = pm.origins if isinstance(pm, HafmPluginManager) else {}
    infos: list[PluginInfo] = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:  # blocked
            continue
        callers = pm.get_hookcallers(plugin) or []
        infos.append(PluginInfo(name=name, origin=origins.get(name, "unknown"), hooks=sorted(c.name for c in callers)))
    return sorted(infos, key=lambda info: info.name)


def check_types(pm: pluggy.PluginManager) -> dict[str, CheckType]:
    """Collect ``hafm_register_check_types`` from every plugin into ``{type name: CheckType}``.

    Each result has ``plugin`` set to the registering plugin's name.  Two
    plugins registering the same name raise :class:`PluginError` naming both.
    """
    origin = pm.origin_of if isinstance(pm, HafmPluginManager) else (lambda name: name)
    found: dict[str, CheckType] = {}
    # pluggy calls the last registered first; registration order (built-ins, entry points,
    # drop-ins) decides which plugin a duplicate name is blamed on.
    for registered in reversed(pm.hook.hafm_register_check_types()):
        for check_type in registered:
            if not isinstance(check_type, CheckType):
                raise PluginError(f"hafm_register_check_types returned {check_type!r}, not a CheckType")
            previous = found.get(check_type.name)
            if previous is not None:
                raise PluginError(
                    f"check type {check_type.name!r} is registered by both {origin(previous.plugin)} "
                    f"and {origin(check_type.plugin)}"
                )
            found[check_type.name] = check_type
    return found


def _contained(function: Callable[..., Any], pm: HafmPluginManager, plugin: str, hook: str) -> Callable[..., Any]:
    """``function`` as pluggy will call it: a plugin's exception is turned into what it means for ``hook``.

    * ``hafm_register_check_types``: a start-up error naming the plugin (a broken check type must not
      start); each returned :class:`CheckType` is stamped with the plugin's name.
    * ``hafm_validate_config``: one more error message refusing the configuration.
    * every notification hook: one log line naming the plugin; the other plugins are still called.

    ``SystemExit``, ``KeyboardInterrupt`` and other ``BaseException``s are contained too (a plugin
    must not end the daemon with its VIPs in place); only asyncio cancellation passes through.
    An awaitable result is wrapped the same way, so an exception raised while awaiting it is contained.
    """

    def describe(exc: BaseException) -> str:
        return f"plugin {plugin} ({pm.origin_of(plugin)}) raised in {hook}: {type(exc).__name__}: {exc}"

    def contain(exc: BaseException) -> Any:
        if hook == "hafm_register_check_types":
            raise PluginError(f"{pm.origin_of(plugin)}: {hook} raised {type(exc).__name__}: {exc}") from None
        if hook == "hafm_validate_config":
            return [describe(exc)]
        # One line per failing call: each call is one change, so this cannot spam.
        log.error("%s", describe(exc))
        log.debug("traceback of plugin %s", plugin, exc_info=exc)
        return None

    def held(started: float) -> None:
        # A hook runs on the loop that sends adverts: say who held it, and for how long.
        took = time.perf_counter() - started
        if took >= SLOW_HOOK:
            log.warning(
                "plugin %s (%s) held the event loop for %.2f s in %s: adverts were late "
                "(hooks must not block; use asyncio.to_thread for slow work)",
                plugin,
                pm.origin_of(plugin),
                took,
                hook,
            )

    async def awaited(awaitable: Awaitable[Any]) -> Any:
        try:
            if inspect.iscoroutine(awaitable):
                return await _timed_steps(awaitable, held)
            return await awaitable
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # noqa: BLE001 - see the docstring
            return contain(exc)

    @functools.wraps(function)
    def call(*args: Any) -> Any:
        started = time.perf_counter()
        try:
            result = function(*args)
        except PluginError:
            raise
        except BaseException as exc:  # noqa: BLE001 - see the docstring
            return contain(exc)
        finally:
            held(started)
        if inspect.isawaitable(result):
            return awaited(result)
        if hook == "hafm_register_check_types":
            if result is None:
                return []
            if not isinstance(result, list | tuple):
                raise PluginError(
                    f"{pm.origin_of(plugin)}: {hook} returned {type(result).__name__}, not a list of CheckType"
                )
            return [replace(t, plugin=plugin) if isinstance(t, CheckType) else t for t in result]
        return result

    return call


@types.coroutine
def _timed_steps(coroutine: Coroutine[Any, Any, Any], held: Callable[[float], None]) -> Generator[Any, Any, Any]:
    """Drive ``coroutine`` step by step, timing each step: a step is what holds the event loop."""
    to_send: Any = None
    to_throw: BaseException | None = None
    while True:
        started = time.perf_counter()
        try:
            yielded = coroutine.throw(to_throw) if to_throw is not None else coroutine.send(to_send)
        except StopIteration as done:
            held(started)
            return done.value
        held(started)
        try:
            to_send, to_throw = (yield yielded), None
        except BaseException as exc:  # noqa: BLE001 - handed to the coroutine (cancellation included)
            to_send, to_throw = None, exc


def plugin_problems(pm: pluggy.PluginManager, config: Config) -> list[str]:
    """Every plugin's ``hafm_validate_config`` messages for ``config`` (a raising plugin is one more message)."""
    return [message for found in pm.hook.hafm_validate_config(config=config) for message in found or []]


async def await_me_maybe(value: Any) -> Any:
    """Resolve a hook result that may be a value, a callable or an awaitable (datasette's helper)."""
    if callable(value):
        value = value()
    if inspect.isawaitable(value):
        value = await value
    return value


async def call_safely(pm: pluggy.PluginManager, hook_name: str, **kwargs: Any) -> list[Any]:
    """Call notification hook ``hook_name`` through pluggy and resolve the results in call order.

    A raising plugin is logged and skipped (see :class:`HafmPluginManager`).  Returns the non-None
    results, each resolved with :func:`await_me_maybe`.
    """
    results = getattr(pm.hook, hook_name)(**kwargs)
    resolved = [await await_me_maybe(value) for value in results]
    return [value for value in resolved if value is not None]
