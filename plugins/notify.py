"""The notify runner: keepalived's notify scripts and notify FIFO, as an ordinary plugin.

Each hook only queues work on :class:`hafm_plugins.notify_runner.NotifyRunner` and
returns, so a slow or hanging script never delays VRRP.  The daemon calls the
hooks synchronously, in the order the transitions happened, so the scripts run
in that order too.  The plugin is a class: each plugin manager registers its
own instance, so no state is shared between daemons or tests.
"""

from __future__ import annotations

from typing import Any

from hafm.config.model import Config
from hafm.hooks import hookimpl

from .notify_runner import NotifyRunner, check_notify_fifo, check_notify_scripts


class NotifyPlugin:
    def __init__(self) -> None:
        self.runner: NotifyRunner | None = None

    @hookimpl
    def hafm_validate_config(self, config: Config) -> list[str]:
        return check_notify_scripts(config) + check_notify_fifo(config)

    @hookimpl(tryfirst=True)
    def hafm_startup(self, config: Config) -> None:
        if self.runner is None or self.runner.closing:
            self.runner = NotifyRunner(config)
        else:
            self.runner.reconfigure(config)  # a reload: queued scripts keep running in order

    @hookimpl(tryfirst=True)
    def hafm_state_changed(self, instance: str, old_state: str, new_state: str, reason: str, priority: int) -> None:
        if self.runner is not None:
            self.runner.instance_changed(instance, old_state, new_state, reason, priority)

    @hookimpl(tryfirst=True)
    def hafm_sync_group_state_changed(self, group: str, old_state: str, new_state: str, reason: str) -> None:
        if self.runner is not None:
            self.runner.group_changed(group, old_state, new_state, reason)

    @hookimpl
    def hafm_status(self) -> dict[str, Any] | None:
        if self.runner is None:
            return None
        return {"notify": self.runner.stats.section()}

    @hookimpl
    async def hafm_shutdown(self) -> None:
        closing = self.runner
        if closing is not None:
            # Still registered while closing: the STOP transitions called just before arrive now.
            await closing.aclose()
            if self.runner is closing:
                self.runner = None
