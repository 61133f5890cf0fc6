"""Every hook hafm calls, in one place (the pytest / datasette way).

A plugin is any module or object with functions decorated by
:data:`hafm.hooks.hookimpl` whose names match a hook below.  Built-in check
types (``hafm_plugins.check_http`` …) register through these same hooks.

Rules every hook follows:

* Arguments are plain types (``str``, ``int``, ``bool``, :class:`DropReason`,
  the frozen :class:`~hafm.config.model.Config`) so the public API stays stable
  when hafm's internals change.  A hookimpl may accept any subset of them.
* Notification hooks (everything except ``hafm_register_check_types``) may
  return ``None``, a value, a callable or an awaitable; hafm resolves it with
  :func:`hafm.plugin_manager.await_me_maybe`.  An exception raised by a plugin
  in a notification hook is logged (one line naming the plugin) and never
  reaches the daemon.
* Hooks are called through pluggy's dispatch, so ``tryfirst``/``trylast``
  and hook wrappers (``wrapper=True``) work as pluggy documents.  The
  synchronous part of every hookimpl runs at once, in the order the events
  happened; awaitable results are awaited one call after another by one
  worker, so an async plugin sees the transitions in order too.
* An exception (``SystemExit`` included) is contained per plugin: the other
  plugins are still called.
* Hooks run on the event loop that sends advertisements: a plugin must not
  block.  Return a coroutine and use ``asyncio.to_thread`` for slow work.  A
  call (or one step of a coroutine) that holds the loop for 0.1 s or more is
  logged with the plugin's name and how long it held it.

Every hook name here must have a section in ``docs/plugins.md``
(``tests/test_hookspecs_docs.py`` enforces it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pluggy

from hafm.config.model import CheckConfig, Config
from hafm.errors import DropReason

PROJECT_NAME = "hafm"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@dataclass(frozen=True, kw_only=True)
class ProbeResult:
    """The outcome of one probe run.

    ``detail`` is one human line for logs and ``hafm status`` ("HTTP 500",
    "exit 1: no pid file").  ``delta`` is only set by value-reporting checks
    such as ``file``: the integer read, which the priority arithmetic turns
    into a priority adjustment (see :func:`hafm.vrrp.tracking.effective_priority`).
    """

    ok: bool
    detail: str = ""
    delta: int | None = None


# A probe runs one health check.  hafm enforces the check's ``timeout`` around
# it (a probe need not), and counts an exception as a failed run.
Probe = Callable[[], Awaitable[ProbeResult]]

# Type-specific keys of a ``[check.NAME]`` table -> [(key, message), ...].
Validator = Callable[[Mapping[str, Any]], list[tuple[str, str]]]


@dataclass(frozen=True, kw_only=True)
class CheckType:
    """A kind of health check, e.g. ``http``, selected by ``type = "http"``.

    ``validate`` receives only the type's own keys (the common keys ``type``,
    ``interval``, ``fast_interval``, ``timeout``, ``fall``, ``rise``, ``weight``, ``init_state``
    are removed by the config loader) and returns one ``(key, message)`` per
    problem; an empty list means valid.  ``create`` is only called with
    options that passed ``validate`` and returns the probe for that check.
    ``plugin`` is filled in by :func:`hafm.plugin_manager.check_types` with
    the name of the plugin that registered the type (used in error details).
    """

    name: str
    validate: Validator
    create: Callable[[CheckConfig], Probe]
    plugin: str = ""


@hookspec
def hafm_register_check_types() -> list[CheckType]:  # type: ignore[empty-body]
    """Return the check types this plugin provides.

    Called once, right after all plugins are loaded and before the
    configuration is validated, so the config loader can check each
    ``[check.NAME]`` table with the type's ``validate``.

    Return a list of :class:`CheckType` (or ``None``/an empty list).  All
    results are collected (not firstresult).  Two plugins registering the
    same type name is an error naming both plugins.
    """


@hookspec
def hafm_validate_config(config: Config) -> list[str]:  # type: ignore[empty-body]
    """Check a loaded configuration for problems only this plugin can see.

    Called by ``hafm check-config``, at start-up and before a reload is
    applied, after the config loader has accepted ``config``.  Return a list
    of one-line error messages, each naming the file, table and key (e.g.
    ``hafm.toml: vrrp_instance.VI_1.notify_master: /etc/x.sh is writable by
    group/others``); ``None`` or an empty list means no problem.  All results
    are collected; any message refuses the configuration.
    """


@hookspec
def hafm_startup(config: Config) -> None:
    """The daemon has loaded ``config`` and is about to start its instances.

    ``config`` is the validated, frozen configuration.  Fires once per start
    and again after each successful reload.  The return value is ignored
    (an awaitable is awaited before instances start).
    """


@hookspec
def hafm_status() -> dict[str, Any]:  # type: ignore[empty-body]
    """``hafm status`` (and the metrics endpoint) asks for the plugin's own section.

    Return a dict of top-level sections to add to the status document, e.g.
    ``{"notify": {"runs": 12, "failures": 1}}`` (JSON types only), or
    ``None``.  Called on the event loop, so it must return at once.  A
    section named like a core one (``instances``, ``checks``…) is ignored.
    """


@hookspec
def hafm_shutdown(config: Config) -> None:
    """The daemon is stopping (SIGTERM/SIGINT) after its instances have
    left MASTER and sent their priority-0 advertisements.

    ``config`` is the configuration that was running.  The return value is
    ignored; an awaitable is awaited, bounded by a short grace period.
    """


@hookspec
def hafm_check_changed(check_name: str, up: bool, detail: str) -> None:
    """A tracked check changed state after its ``fall``/``rise`` counters.

    ``check_name`` is the ``[check.NAME]`` table name, ``up`` the new state,
    ``detail`` the last probe's detail ("HTTP 500", "timeout after 1.0 s").
    For a ``file`` check it also fires while ``up`` when the value read
    changes.  Not fired for runs that do not change the state.  The return
    value is ignored.
    """


@hookspec
def hafm_priority_changed(instance: str, old: int, new: int, explanation: str) -> None:
    """The effective priority of a VRRP instance changed.

    ``instance`` is the ``[vrrp_instance.NAME]`` name, ``old``/``new`` the
    effective priorities (1..255), ``explanation`` how ``new`` was computed,
    e.g. ``"base 100, tomcat down -20 → 80"``.  Fires before the next
    advertisement carries ``new``.  The return value is ignored.
    """


@hookspec
def hafm_state_changed(instance: str, old_state: str, new_state: str, reason: str, priority: int) -> None:
    """A VRRP instance moved between ``INIT``, ``BACKUP``, ``MASTER``,
    ``FAULT`` and ``STOP``.

    ``old_state``/``new_state`` are those upper-case names, ``reason`` is one
    line ("master down timer expired", "higher priority 120 from
    203.0.113.2"), ``priority`` is the instance's effective priority at the
    transition.  The built-in notify runner implements this hook to run
    keepalived-style notify scripts.  The return value is ignored.
    """


@hookspec
def hafm_sync_group_state_changed(group: str, old_state: str, new_state: str, reason: str) -> None:
    """A ``[vrrp_sync_group.NAME]`` changed state as a whole.

    ``group`` is the sync group name, ``old_state``/``new_state`` are
    ``INIT``, ``BACKUP``, ``MASTER``, ``FAULT`` or ``STOP`` (the state all
    its instances were brought to), ``reason`` is one line naming the member
    and event that moved the group.  Fires after the members'
    ``hafm_state_changed``.  A group has no priority: the built-in notify
    runner calls the group's ``notify`` as ``CMD GROUP NAME STATE 0``, as
    keepalived does.  The return value is ignored.
    """


@hookspec
def hafm_packet_dropped(instance: str | None, reason: DropReason, peer: str) -> None:
    """An incoming advertisement was discarded.

    ``instance`` is the instance it was addressed to, or ``None`` when no
    instance matched (e.g. ``DropReason.UNKNOWN_VRID``); ``reason`` the typed
    :class:`~hafm.errors.DropReason`; ``peer`` the source address as text.
    The daemon counts every drop but calls this hook (and logs) only the first
    time an (instance, reason, peer) combination is seen, so a noisy peer
    cannot flood plugins.  It remembers up to 4096 combinations, then starts
    afresh, so a flood of forged sources costs bounded memory and may report
    a combination again.  The return value is ignored.
    """


@hookspec
def hafm_split_brain(instance: str, peer: str, peer_priority: int) -> None:
    """While MASTER, ``instance`` received an advertisement from another
    router that also claims MASTER for the same VRID.

    ``peer`` is the other router's address as text, ``peer_priority`` the
    priority it advertised.  Fires once per episode (again only after the
    condition cleared).  The return value is ignored.
    """
