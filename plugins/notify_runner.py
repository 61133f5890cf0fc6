"""Run keepalived-style notify scripts, in order, without ever holding up VRRP.

Every instance (and sync group) gets one queue and one worker task: its
scripts run one at a time in transition order, while different instances
never wait for each other.  The hook that feeds a queue only appends to it,
so a hanging script cannot delay an advertisement or a takeover.

For each transition into MASTER, BACKUP, FAULT or STOP the matching
``notify_<state>`` command runs first, then the generic ``notify`` with
``INSTANCE|GROUP NAME STATE PRIORITY`` appended, as keepalived does
(``vrrp_notify.c``: the specific script, then the generic one, then the FIFO).
Commands are split with :func:`hafm.processes.split_command` and never run through a shell.
Right before each run the command is checked again with :func:`hafm.processes.command_problem`
(the trust rule): a script that became untrusted since start-up is refused, with one log line.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import errno
import logging
import os
import stat
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from hafm.config.model import NOTIFY_FIELDS, Config, GlobalConfig, Notify
from hafm.processes import (
    ENV_PATH,
    Refusals,
    command_problem,
    find_program,
    is_regular_executable,
    kill_process_group,
    split_command,
)
from hafm.trust import directories_reason, foreign_owner, writable_by_others

__all__ = [
    "ENV_PATH",
    "NOTIFY_STATES",
    "NOTIFY_TIMEOUT",
    "PARALLEL_LIMIT",
    "QUEUE_LIMIT",
    "SHUTDOWN_GRACE",
    "Command",
    "NotifyFifo",
    "NotifyQueue",
    "NotifyRunner",
    "Transition",
    "check_notify_fifo",
    "check_notify_scripts",
    "commands_for",
    "environment",
    "fifo_line",
]

log = logging.getLogger("hafm.notify")

# A script that runs longer than this is killed with its whole process group.
NOTIFY_TIMEOUT = GlobalConfig().notify_timeout
# Pending transitions per instance before the oldest are coalesced away.
QUEUE_LIMIT = 64
# With notify_wait = false: at most this many scripts of one instance (or group) run side by side;
# more transitions queue behind the least busy of them.
PARALLEL_LIMIT = 4
# At shutdown, how long the STOP scripts may run in total (keepalived waits 1 s for notify_stop too).
SHUTDOWN_GRACE = 1.0
# Transitions into INIT notify nobody, as in keepalived.
NOTIFY_STATES = ("MASTER", "BACKUP", "FAULT", "STOP")
# Keep a runaway script from flooding the log.
MAX_LOGGED_LINES = 100
MAX_LINE = 1000
# After a script exits, how long to wait for the rest of its output.  A child it
# left in the background (a daemon it started) may hold the pipe open for ever.
OUTPUT_DRAIN = 0.2


@dataclass(frozen=True, kw_only=True)
class Transition:
    """One state change of an instance or a sync group, as the scripts see it.

    ``priority`` is None for a group (keepalived passes ``0`` in argv and the
    FIFO for groups; hafm does the same but sets no ``HAFM_PRIORITY``).
    """

    kind: Literal["INSTANCE", "GROUP"]
    name: str
    old_state: str
    new_state: str
    reason: str
    priority: int | None
    vips: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Command:
    """One process to start: ``key`` names it in logs (``VI_1.notify_master``)."""

    key: str
    argv: tuple[str, ...]
    env: Mapping[str, str]


def _key_prefix(kind: str, name: str) -> str:
    return name if kind == "INSTANCE" else f"vrrp_sync_group.{name}"


def environment(transition: Transition) -> dict[str, str]:
    """The whole environment of a notify script: a fixed PATH plus ``HAFM_*`` variables."""
    env = {"PATH": ENV_PATH}
    env["HAFM_GROUP" if transition.kind == "GROUP" else "HAFM_INSTANCE"] = transition.name
    env["HAFM_STATE"] = transition.new_state
    env["HAFM_PREV_STATE"] = transition.old_state
    if transition.priority is not None:
        env["HAFM_PRIORITY"] = str(transition.priority)
    env["HAFM_VIPS"] = " ".join(transition.vips)
    env["HAFM_REASON"] = transition.reason
    return env


def commands_for(notify: Notify, transition: Transition) -> list[Command]:
    """The commands a transition runs, in order: ``notify_<state>``, then the generic ``notify``.

    Empty for a transition into INIT or when nothing is configured.
    """
    state = transition.new_state
    if state not in NOTIFY_STATES:
        return []
    env = environment(transition)
    prefix = _key_prefix(transition.kind, transition.name)
    commands: list[Command] = []
    specific = getattr(notify, state.lower())
    if specific:
        commands.append(Command(key=f"{prefix}.notify_{state.lower()}", argv=split_command(specific), env=env))
    if notify.any:
        priority = transition.priority if transition.priority is not None else 0
        extra = (transition.kind, transition.name, state, str(priority))
        commands.append(Command(key=f"{prefix}.notify", argv=(*split_command(notify.any), *extra), env=env))
    return commands


def fifo_line(transition: Transition) -> str:
    """keepalived's FIFO line: ``INSTANCE "VI_1" MASTER 100`` (a group's priority is 0)."""
    priority = transition.priority if transition.priority is not None else 0
    return f'{transition.kind} "{transition.name}" {transition.new_state} {priority}\n'


# -- start-up security check ---------------------------------------------------


def _configured(config: Config) -> Iterator[tuple[str, str]]:
    """(key, command) for every notify command in ``config``."""
    for name, instance in config.instances.items():
        for key, attr in NOTIFY_FIELDS.items():
            command = getattr(instance.notify, attr)
            if command:
                yield f"{name}.{key}", command
    for name, group in config.sync_groups.items():
        for key, attr in NOTIFY_FIELDS.items():
            command = getattr(group.notify, attr)
            if command:
                yield f"vrrp_sync_group.{name}.{key}", command


def _script_problem(command: str) -> str | None:
    try:
        argv = split_command(command)
    except ValueError as exc:
        return str(exc)
    program = find_program(argv[0])
    if program is None:
        return f"{argv[0]} is not found in {ENV_PATH} (give an absolute path)"
    if not os.path.isabs(program):
        return f"{program} is a relative path (give an absolute path)"
    if not os.path.lexists(program):
        # Name the program, not its first missing directory; a missing program in a directory
        # others control is worse than missing: say that.
        return directories_reason(program) or f"{program} does not exist"
    return command_problem(argv, missing_ok=False) or is_regular_executable(program)


def check_notify_scripts(config: Config) -> list[str]:
    """One line per notify command that hafm (as root) must refuse to run.

    The program (``argv[0]``; a bare name is looked up in hafm's fixed ``PATH``)
    must exist and be an executable regular file, and the trust rule
    (:mod:`hafm.trust`) must hold for it, for every argument naming an existing
    regular file and for an interpreter's script (:func:`hafm.processes.command_problem`).
    Lines read
    ``/etc/hafm.toml: vrrp_instance.VI_1.notify_master: /etc/hafm/notify.sh is writable by group/others
    (chmod go-w /etc/hafm/notify.sh)``.
    """
    problems: list[str] = []
    for key, command in _configured(config):
        try:
            problem = _script_problem(command)
        except OSError as exc:
            problem = f"cannot check {command}: {exc.strerror or exc}"
        if problem:
            # Name the file and the full table path, like every other configuration error.
            table_key = key if key.startswith("vrrp_sync_group.") else f"vrrp_instance.{key}"
            problems.append(f"{config.provenance.get(table_key, config.path)}: {table_key}: {problem}")
    return problems


def check_notify_fifo(config: Config) -> list[str]:
    """One line when ``[global] notify_fifo`` is a path root must not write to (checked again at each open):
    its directory fails the trust rule, or what is there is not a FIFO owned by root that others cannot write."""
    path = config.global_.notify_fifo
    if not path:
        return []
    problem = directories_reason(os.path.dirname(path) or ".")
    if problem is None:
        try:
            st = os.lstat(path)
            problem = "it is a symlink" if stat.S_ISLNK(st.st_mode) else _fifo_problem(path, st)
        except FileNotFoundError:
            return []  # created at the first transition
        except OSError as exc:
            problem = f"cannot check it: {exc.strerror or exc}"
    if problem is None:
        return []
    return [f"{config.provenance.get('global.notify_fifo', config.path)}: global.notify_fifo: refused: {problem}"]


# -- the FIFO ------------------------------------------------------------------


class NotifyFifo:
    """keepalived's ``notify_fifo``: one line per transition, never blocking.

    The FIFO is created (mode 0600) when missing and opened non-blocking for
    each write burst; with no reader the line is dropped (logged once until a
    reader comes back), and a full pipe drops the line rather than waiting.

    Root writes into it, so it is refused (one log line) unless its directory
    passes the trust rule (:mod:`hafm.trust`; a sticky directory is fine) and the
    opened descriptor is a FIFO owned by root (or hafm's user) that others
    cannot write.  It is opened with ``O_NOFOLLOW`` and checked with ``fstat``,
    so a symlink or a file swapped in after a check is never written to.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None
        self._complained = False

    def _open(self) -> int | None:
        if self._fd is not None:
            return self._fd
        problem = directories_reason(os.path.dirname(self.path) or ".")
        if problem:
            self._complain(f"notify_fifo {self.path} refused: {problem}; notify lines are dropped")
            return None
        try:
            os.mkfifo(self.path, 0o600)
        except FileExistsError:
            pass
        except OSError as exc:
            self._complain(f"cannot create notify FIFO {self.path}: {exc.strerror}")
            return None
        try:
            # O_NONBLOCK: opening for writing with no reader fails (ENXIO) instead of waiting.
            fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            if exc.errno == errno.ENXIO:
                self._complain(f"notify FIFO {self.path} has no reader; dropping notify lines until one appears")
            elif exc.errno == errno.ELOOP:
                self._complain(f"notify_fifo {self.path} refused: it is a symlink; notify lines are dropped")
            else:
                self._complain(f"cannot open notify FIFO {self.path}: {exc.strerror}")
            return None
        problem = _fifo_problem(self.path, os.fstat(fd))
        if problem:
            os.close(fd)
            self._complain(f"notify_fifo {self.path} refused: {problem}; notify lines are dropped")
            return None
        self._fd = fd
        return fd

    def _complain(self, message: str) -> None:
        if not self._complained:
            self._complained = True
            log.warning("%s", message)

    def write(self, line: str) -> bool:
        """Write one line (atomic: shorter than PIPE_BUF); True if it was written."""
        fd = self._open()
        if fd is None:
            return False
        try:
            os.write(fd, line.encode())
        except BlockingIOError:
            self._complain(f"notify FIFO {self.path} is full (reader too slow); dropping notify lines")
            return False
        except OSError as exc:  # EPIPE: the reader went away; reopen next time
            self.close()
            self._complain(f"notify FIFO {self.path}: {exc.strerror}; dropping notify lines until a reader appears")
            return False
        if self._complained:
            log.info("notify FIFO %s is being read again", self.path)
            self._complained = False
        return True

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None


def _fifo_problem(path: str, st: os.stat_result) -> str | None:
    if not stat.S_ISFIFO(st.st_mode):
        return "it exists and is not a FIFO"
    if foreign_owner(st):
        return f"it is owned by uid {st.st_uid}, not root"
    if writable_by_others(st):
        return f"others can write into it, so a reader cannot trust its lines (chmod go-w {path})"
    return None


# -- running one command -------------------------------------------------------

_refusals = Refusals(log)


class _OutputLogger(asyncio.SubprocessProtocol):
    """Logs a script's stdout/stderr line by line and reports its exit."""

    def __init__(self, command: Command) -> None:
        self.command = command
        self.name = os.path.basename(command.argv[0])
        loop = asyncio.get_running_loop()
        self.exited: asyncio.Future[None] = loop.create_future()
        self.output_closed: asyncio.Future[None] = loop.create_future()
        self._open_pipes = {1, 2}
        self._partial: dict[int, bytes] = {1: b"", 2: b""}
        self._lines = 0

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        *lines, self._partial[fd] = (self._partial[fd] + data).split(b"\n")
        for line in lines:
            self._log(fd, line)
        if len(self._partial[fd]) > MAX_LINE:
            self._log(fd, self._partial[fd])
            self._partial[fd] = b""

    def flush(self) -> None:
        for fd, rest in self._partial.items():
            if rest:
                self._log(fd, rest)
            self._partial[fd] = b""

    def _log(self, fd: int, raw: bytes) -> None:
        self._lines += 1
        if self._lines > MAX_LOGGED_LINES:
            if self._lines == MAX_LOGGED_LINES + 1:
                log.info("%s %s: more output not logged", self.command.key, self.name)
            return
        text = raw[:MAX_LINE].decode("utf-8", "replace").rstrip()
        stream = "" if fd == 1 else " (stderr)"
        log.info("%s %s%s: %s", self.command.key, self.name, stream, text)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        self._open_pipes.discard(fd)
        if not self._open_pipes and not self.output_closed.done():
            self.output_closed.set_result(None)

    def process_exited(self) -> None:
        if not self.exited.done():
            self.exited.set_result(None)


async def run_command(command: Command, timeout: float = NOTIFY_TIMEOUT) -> int | None:
    """Run one notify command to completion; its exit status, or None if it was refused, could not start
    or was killed.

    Right before starting it, the command passes the trust rule again
    (:func:`hafm.processes.command_problem`); a refusal is one log line (repeats
    of the same refusal are rate-limited).  The script gets stdin from /dev/null, ``command.env`` as its whole
    environment and a new session.  Past ``timeout`` (or when cancelled) its
    whole process group is killed.  A child it leaves running after a normal
    exit (a daemon it started) is left alone.
    """
    if any("\0" in word for word in (*command.argv, *command.env.keys(), *command.env.values())):
        # From a value filled in at run time (a name, the reason): one line, not a task's traceback.
        log.error("%s: cannot run %s: an argument or environment value contains a NUL byte", *_what(command))
        return None
    try:
        problem = command_problem(command.argv)
    except OSError as exc:
        problem = f"cannot check it: {exc.strerror or exc}"
    if problem is not None:
        _refusals.refused(command.key, problem)
        return None
    _refusals.allowed(command.key)
    loop = asyncio.get_running_loop()
    started = time.monotonic()
    try:
        transport, protocol = await loop.subprocess_exec(
            lambda: _OutputLogger(command),
            *command.argv,
            stdin=asyncio.subprocess.DEVNULL,
            env=dict(command.env),
            start_new_session=True,  # its own process group, killed as a whole
        )
    except (OSError, ValueError) as exc:
        log.error("%s: cannot run %s: %s", *_what(command), getattr(exc, "strerror", None) or exc)
        return None
    pid = transport.get_pid()
    try:
        try:
            await asyncio.wait_for(asyncio.shield(protocol.exited), timeout)
        except TimeoutError:
            kill_process_group(pid)
            await protocol.exited
            log.error(
                "%s: %s still running after %g s: killed its process group", command.key, command.argv[0], timeout
            )
            return None
        # Let the last lines arrive, but never wait on a pipe a background child keeps open.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(protocol.output_closed), OUTPUT_DRAIN)
    except asyncio.CancelledError:
        kill_process_group(pid)
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(protocol.exited)
        log.warning("%s: %s killed (hafm is shutting down)", command.key, command.argv[0])
        raise
    finally:
        protocol.flush()
        transport.close()
    code = transport.get_returncode()
    elapsed = time.monotonic() - started
    if code == 0:
        log.debug("%s: %s exited 0 after %.2f s", command.key, command.argv[0], elapsed)
    elif code is not None and code < 0:
        log.warning("%s: %s killed by signal %d after %.2f s", command.key, command.argv[0], -code, elapsed)
    else:
        log.warning("%s: %s exited %s after %.2f s", command.key, command.argv[0], code, elapsed)
    return code


def _what(command: Command) -> tuple[str, str]:
    return command.key, repr(command.argv[0]) if "\0" in command.argv[0] else command.argv[0]


# -- ordered queues ------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class _Entry:
    transition: Transition
    commands: tuple[Command, ...]


# Upper bounds (seconds) of the script duration histogram; scripts run up to notify_timeout (30 s by default).
DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


@dataclass(kw_only=True)
class NotifyStats:
    """Scripts run and failed (non-zero exit, killed at the timeout, or not started) and how long they
    took, for ``hafm status`` and the metrics endpoint (cumulative histogram counts, Prometheus-style)."""

    runs: int = 0
    failures: int = 0
    seconds_total: float = 0.0
    buckets: list[int] = field(default_factory=lambda: [0] * len(DURATION_BUCKETS))

    def record(self, seconds: float, ok: bool) -> None:
        self.runs += 1
        self.failures += not ok
        self.seconds_total += seconds
        for index, bound in enumerate(DURATION_BUCKETS):
            if seconds <= bound:
                self.buckets[index] += 1

    def section(self) -> dict[str, Any]:
        """The ``notify`` section of the status document."""
        return {
            "runs": self.runs,
            "failures": self.failures,
            "duration_seconds": {
                "sum": round(self.seconds_total, 6),
                "count": self.runs,
                "buckets": [[bound, count] for bound, count in zip(DURATION_BUCKETS, self.buckets, strict=True)],
            },
        }


class NotifyQueue:
    """The pending transitions of one instance or group, run by one worker, one at a time."""

    def __init__(
        self,
        name: str,
        *,
        limit: int = QUEUE_LIMIT,
        timeout: float = NOTIFY_TIMEOUT,
        stats: NotifyStats | None = None,
    ) -> None:
        self.name = name
        self.stats = stats if stats is not None else NotifyStats()
        self.limit = max(limit, 2)
        self.timeout = timeout
        self.pending: collections.deque[_Entry] = collections.deque()
        self.running: _Entry | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._worker: asyncio.Task[None] | None = None
        self._current: asyncio.Task[None] | None = None

    def put(self, entry: _Entry) -> None:
        """Append ``entry``; when the queue is full, drop the oldest pending entries (order is kept)."""
        if len(self.pending) >= self.limit:
            # Keep the newest half: the latest state is what matters; one log line per burst.
            keep = self.limit // 2 - 1
            dropped = len(self.pending) - keep
            for _ in range(dropped):
                self.pending.popleft()
            log.warning("%s: notify queue full, coalesced %d pending transitions", self.name, dropped)
        self.pending.append(entry)
        self._idle.clear()
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._work(), name=f"notify {self.name}")

    @property
    def idle(self) -> bool:
        """Nothing pending or running (the worker task has ended or is ending)."""
        return not self.pending and self.running is None

    async def _work(self) -> None:
        # The worker ends when the queue is empty (put starts a new one): an idle queue holds no task.
        while self.pending:
            self.running = self.pending.popleft()
            self._current = asyncio.create_task(self._run(self.running))
            try:
                await asyncio.wait({self._current})
                if not self._current.cancelled() and (exc := self._current.exception()) is not None:
                    log.error("%s: notify failed: %s: %s", self.name, type(exc).__name__, exc)
            except asyncio.CancelledError:
                self._current.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._current
                raise
            finally:
                self.running = None
                self._current = None
        self._idle.set()

    async def _run(self, entry: _Entry) -> None:
        for command in entry.commands:
            started = time.monotonic()
            code = await run_command(command, self.timeout)
            self.stats.record(time.monotonic() - started, ok=code == 0)

    def abort_running(self) -> _Entry | None:
        """Kill the script now running (its process group); the worker goes on with the next entry."""
        if self._current is not None and not self._current.done():
            self._current.cancel()
            return self.running
        return None

    async def wait_idle(self) -> None:
        """Until nothing is pending or running."""
        await self._idle.wait()

    async def close(self) -> None:
        """Stop the worker, killing a running script."""
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
        self._idle.set()


class NotifyRunner:
    """All notify queues of one daemon, plus the FIFO.

    :meth:`instance_changed` and :meth:`group_changed` return at once; the
    scripts run later on per-instance worker tasks.
    """

    def __init__(self, config: Config, *, queue_limit: int = QUEUE_LIMIT) -> None:
        self.timeout = config.global_.notify_timeout
        self.queue_limit = queue_limit
        self.stats = NotifyStats()
        self.queues: dict[tuple[str, str, int], NotifyQueue] = {}
        self.fifo: NotifyFifo | None = None
        self.closing = False
        self.config = config
        self.reconfigure(config)

    def reconfigure(self, config: Config) -> None:
        """Use ``config`` for transitions from now on (a reload); queued ones keep their commands."""
        self.config = config
        self.timeout = config.global_.notify_timeout
        for queue in self.queues.values():
            queue.timeout = self.timeout
        path = config.global_.notify_fifo
        if self.fifo is not None and self.fifo.path != path:
            self.fifo.close()
            self.fifo = None
        if path and self.fifo is None:
            self.fifo = NotifyFifo(path)

    def instance_changed(self, instance: str, old_state: str, new_state: str, reason: str, priority: int) -> None:
        """Queue the scripts of ``instance`` for this transition and write the FIFO line."""
        config = self.config.instances.get(instance)
        vips = tuple(str(v.address.ip) for v in config.virtual_ipaddress) if config else ()
        transition = Transition(
            kind="INSTANCE",
            name=instance,
            old_state=old_state,
            new_state=new_state,
            reason=reason,
            priority=priority,
            vips=vips,
        )
        self._submit(transition, config.notify if config else Notify())

    def group_changed(self, group: str, old_state: str, new_state: str, reason: str) -> None:
        """Queue the scripts of sync group ``group`` for this transition and write the FIFO line."""
        config = self.config.sync_groups.get(group)
        vips: list[str] = []
        for member in config.group if config else ():
            instance = self.config.instances.get(member)
            if instance is not None:
                vips += [str(v.address.ip) for v in instance.virtual_ipaddress]
        transition = Transition(
            kind="GROUP",
            name=group,
            old_state=old_state,
            new_state=new_state,
            reason=reason,
            priority=None,
            vips=tuple(vips),
        )
        self._submit(transition, config.notify if config else Notify())

    def _submit(self, transition: Transition, notify: Notify) -> None:
        if transition.new_state not in NOTIFY_STATES or self.closing:
            return
        if self.fifo is not None:
            self.fifo.write(fifo_line(transition))
        commands = commands_for(notify, transition)
        if not commands:
            return
        self._queue_for(transition).put(_Entry(transition=transition, commands=tuple(commands)))

    def _queue_for(self, transition: Transition) -> NotifyQueue:
        """The instance's one queue; with ``notify_wait = false`` an idle one of at most
        :data:`PARALLEL_LIMIT`, so a transition's scripts start at once, as keepalived does.
        When all are busy, the least loaded one (its coalescing bounds it); idle extra queues are freed."""
        kind, name = transition.kind, transition.name
        serial = 0
        if not self.config.global_.notify_wait:
            mine = {key[2]: queue for key, queue in self.queues.items() if key[:2] == (kind, name)}
            idle = sorted(number for number, queue in mine.items() if queue.idle)
            for number in idle[1:]:
                del self.queues[(kind, name, number)]
            if idle:
                serial = idle[0]
            elif len(mine) < PARALLEL_LIMIT:
                serial = min(set(range(PARALLEL_LIMIT)) - set(mine))
            else:
                serial = min(mine, key=lambda number: (len(mine[number].pending), number))
        queue = self.queues.get((kind, name, serial))
        if queue is None:
            label = _key_prefix(kind, name)
            queue = self.queues[(kind, name, serial)] = NotifyQueue(
                label, limit=self.queue_limit, timeout=self.timeout, stats=self.stats
            )
        return queue

    async def aclose(self, grace: float = SHUTDOWN_GRACE) -> None:
        """Shutdown: run the STOP scripts (within ``grace`` seconds in total), kill everything else.

        A script still running for an earlier transition is killed at once and
        pending non-STOP transitions are skipped: the instance has stopped, so
        their work is moot (keepalived also signals its scripts when it exits).
        """
        # Let hook calls already scheduled (the STOP transitions) reach their queues first.
        await asyncio.sleep(0)
        self.closing = True
        for queue in self.queues.values():
            skipped = [e for e in queue.pending if e.transition.new_state != "STOP"]
            if skipped:
                queue.pending = collections.deque(e for e in queue.pending if e.transition.new_state == "STOP")
                log.info("%s: shutting down: skipped %d pending notify transitions", queue.name, len(skipped))
            running = queue.running
            if running is not None and running.transition.new_state != "STOP":
                queue.abort_running()
        waiting = [asyncio.ensure_future(q.wait_idle()) for q in self.queues.values()]
        if waiting:
            _, late = await asyncio.wait(waiting, timeout=grace)
            for future in late:
                future.cancel()
        for queue in self.queues.values():
            if queue.running is not None or queue.pending:
                log.error("%s: notify scripts still running %g s after shutdown: killed", queue.name, grace)
        await asyncio.gather(*(queue.close() for queue in self.queues.values()))
        if self.fifo is not None:
            self.fifo.close()
