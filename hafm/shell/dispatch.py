"""Calls the plugin hooks the coordinator asks for, in order, without blocking the adverts.

Each call goes through pluggy's dispatch (``pm.hook.NAME(...)``), so hook
ordering and wrappers work as pluggy documents; a plugin's exception is
contained where the plugin was registered (:mod:`hafm.plugin_manager`).  The
synchronous part of every hookimpl runs at once, in the order the calls were
made (the notify runner only queues work there).  Awaitable results are
awaited by one worker, one call after another, so an async plugin also sees
the transitions in order; a slow one delays only the other async results.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Mapping
from typing import Any

import pluggy

from hafm.plugin_manager import await_me_maybe

log = logging.getLogger("hafm")

# Awaitable hook results waiting for the worker; past this, the oldest are dropped with a log line.
MAX_PENDING = 1024


class HookDispatcher:
    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.pm = pm
        self._pending: asyncio.Queue[tuple[str, list[Awaitable[Any]]]] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self.dropped = 0

    def call(self, name: str, kwargs: Mapping[str, Any]) -> None:
        """Call hook ``name`` now; its awaitable results are awaited later, in call order."""
        try:
            results = getattr(self.pm.hook, name)(**kwargs)
        except Exception as exc:  # a hook wrapper that raised: the plugins were called, say so once
            log.error("hook %s failed: %s: %s", name, type(exc).__name__, exc)
            return
        awaitables = [r for r in results if asyncio.iscoroutine(r) or isinstance(r, Awaitable) or callable(r)]
        if not awaitables:
            return
        if self._pending.qsize() >= MAX_PENDING:
            _, stale = self._pending.get_nowait()
            for awaitable in stale:
                _close(awaitable)
            self._pending.task_done()  # dropped counts as done, or join() would wait for it forever
            self.dropped += 1
            log.warning("plugin hooks are %d calls behind; dropped the oldest (%s)", MAX_PENDING, name)
        self._pending.put_nowait((name, awaitables))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._work(), name="hafm-hooks")

    async def call_and_wait(self, name: str, kwargs: Mapping[str, Any], timeout: float | None = None) -> None:
        """Call hook ``name`` and wait until every result, and every earlier one, is resolved."""
        self.call(name, kwargs)
        await self.drain(timeout)

    async def drain(self, timeout: float | None = None) -> None:
        """Wait (bounded by ``timeout``) until every queued result is resolved."""
        try:
            await asyncio.wait_for(self._pending.join(), timeout)
        except TimeoutError:
            log.warning("plugin hooks still running after %.1f s; not waiting for them", timeout or 0)

    async def _work(self) -> None:
        while not self._pending.empty():
            name, awaitables = await self._pending.get()
            try:
                for awaitable in awaitables:
                    try:
                        await await_me_maybe(awaitable)
                    except Exception as exc:  # contained by the plugin manager; this is a last resort
                        log.error("hook %s result failed: %s: %s", name, type(exc).__name__, exc)
            finally:
                self._pending.task_done()


def _close(awaitable: Awaitable[Any]) -> None:
    close = getattr(awaitable, "close", None)
    if close is not None:
        close()  # a coroutine never awaited: close it so Python does not warn
