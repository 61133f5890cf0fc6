"""The notify runner: keepalived's notify scripts and notify FIFO, as an ordinary plugin.

Each hook only queues work on :class:`hafm_plugins.notify_runner.NotifyRunner` and
returns, so a slow or hanging script never delays VRRP.  Its hookimpls are
``tryfirst``: the daemon schedules every hook call as its own task, and being
called first (synchronously, as each task starts) keeps the transitions in
the order the daemon produced them even when another plugin's hookimpl
awaits something.
"""

from __future__ import annotations

from hafm.config.model import Config
from hafm.hooks import hookimpl

from .notify_runner import NotifyRunner, check_notify_fifo, check_notify_scripts

_runner: NotifyRunner | None = None


def runner() -> NotifyRunner | None:
    """The running daemon's notify runner (None before ``hafm_startup``)."""
    return _runner


@hookimpl
def hafm_validate_config(config: Config) -> list[str]:
    return check_notify_scripts(config) + check_notify_fifo(config)


@hookimpl(tryfirst=True)
def hafm_startup(config: Config) -> None:
    global _runner
    if _runner is None or _runner.closing:
        _runner = NotifyRunner(config)
    else:
        _runner.reconfigure(config)  # a reload: queued scripts keep running in order


@hookimpl(tryfirst=True)
def hafm_state_changed(instance: str, old_state: str, new_state: str, reason: str, priority: int) -> None:
    if _runner is not None:
        _runner.instance_changed(instance, old_state, new_state, reason, priority)


@hookimpl(tryfirst=True)
def hafm_sync_group_state_changed(group: str, old_state: str, new_state: str, reason: str) -> None:
    if _runner is not None:
        _runner.group_changed(group, old_state, new_state, reason)


@hookimpl
async def hafm_shutdown() -> None:
    global _runner
    closing = _runner
    if closing is not None:
        # Still registered while closing: the STOP transitions scheduled just before arrive now.
        await closing.aclose()
        if _runner is closing:
            _runner = None
