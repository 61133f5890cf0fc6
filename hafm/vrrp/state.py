"""The VRRP instance state machine, as data.

Everything that decides *which* state an instance moves to lives in this
module (the h11 ``_state.py`` rule).  :mod:`hafm.vrrp.instance` classifies each
event into a :class:`Trigger` (that is where the RFC's guards - priority
comparisons, timers - are evaluated) and looks the new state up here.  A
trigger that is not listed for the current state is a bug in hafm and raises
:class:`~hafm.errors.LocalProtocolError`.

States follow RFC 5798 §6.4 (Initialize, Backup, Master) plus hafm's Fault
and Stop, as in keepalived.  Read it next to RFC 5798 / RFC 9568 §6:

- Initialize --Startup-->                Backup  (§6.4.1, priority < 255)
- Initialize --Startup, priority 255-->  Master  (§6.4.1, address owner)
- Backup --Master_Down_Timer fires-->    Master  (§6.4.2)
- Backup --takes over-->                 Master  (hafm: lease mode, the etcd lease holder)
- Master --higher priority advert-->     Backup  (§6.4.3; equal priority and
  higher primary address also counts)
- any running state --Shutdown-->        Stop    (§6.4.2/§6.4.3 "Shutdown")
- Backup/Master --fault-->               Fault   (hafm: link down or a weight-0
  check is down; no adverts, no VIPs)
- Fault --recovered-->                   Backup  (or Master for the address owner)
"""

from __future__ import annotations

import enum

from hafm.errors import LocalProtocolError


class State(enum.Enum):
    INITIALIZE = "INIT"  # configured, waiting for Startup
    BACKUP = "BACKUP"  # monitoring the Master, Master_Down_Timer armed
    MASTER = "MASTER"  # owns the VIPs, sends adverts every Advertisement_Interval
    FAULT = "FAULT"  # an interface or a weight-0 check is down: silent, no VIPs
    STOP = "STOP"  # shut down; terminal


class Trigger(enum.Enum):
    STARTUP = "startup"
    STARTUP_AS_OWNER = "startup as address owner (priority 255)"
    STARTUP_IN_FAULT = "startup while faulty"
    MASTER_DOWN = "master down timer expired"
    TAKE_OVER = "holds the witness lease (lease mode)"
    PREEMPTED = "advert from a better master"
    RESIGNED = "resigned (resign_below or maintenance)"
    SYNC_BACKUP = "a sync group member went BACKUP"
    FAULT = "fault"
    RECOVERED = "fault cleared"
    RECOVERED_AS_OWNER = "fault cleared, address owner"
    SHUTDOWN = "shutdown"


TRANSITIONS: dict[State, dict[Trigger, State]] = {
    State.INITIALIZE: {
        Trigger.STARTUP: State.BACKUP,
        Trigger.STARTUP_AS_OWNER: State.MASTER,
        Trigger.STARTUP_IN_FAULT: State.FAULT,
        Trigger.SHUTDOWN: State.STOP,
    },
    State.BACKUP: {
        Trigger.MASTER_DOWN: State.MASTER,
        Trigger.TAKE_OVER: State.MASTER,
        Trigger.FAULT: State.FAULT,
        Trigger.SHUTDOWN: State.STOP,
    },
    State.MASTER: {
        Trigger.PREEMPTED: State.BACKUP,
        Trigger.RESIGNED: State.BACKUP,
        Trigger.SYNC_BACKUP: State.BACKUP,
        Trigger.FAULT: State.FAULT,
        Trigger.SHUTDOWN: State.STOP,
    },
    State.FAULT: {
        Trigger.RECOVERED: State.BACKUP,
        Trigger.RECOVERED_AS_OWNER: State.MASTER,
        Trigger.SHUTDOWN: State.STOP,
    },
    State.STOP: {},
}


def next_state(state: State, trigger: Trigger) -> State:
    """The state ``trigger`` leads to from ``state``; a missing entry is hafm's own bug."""
    try:
        return TRANSITIONS[state][trigger]
    except KeyError:
        raise LocalProtocolError(f"no transition from {state.value} on {trigger.name}") from None


def mermaid_diagram() -> str:
    """The transition table as a Mermaid state diagram (docs/state-machine.md embeds it)."""
    lines = ["stateDiagram-v2", "    [*] --> INIT"]
    for state, edges in TRANSITIONS.items():
        for trigger, target in edges.items():
            lines.append(f"    {state.value} --> {target.value}: {trigger.value}")
    lines.append("    STOP --> [*]")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(mermaid_diagram(), end="")
