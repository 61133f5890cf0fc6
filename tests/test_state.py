from pathlib import Path

import pytest

from hafm.errors import LocalProtocolError
from hafm.vrrp.state import TRANSITIONS, State, Trigger, mermaid_diagram, next_state

DOCS = Path(__file__).parent.parent / "docs" / "state-machine.md"


def test_every_state_has_a_row() -> None:
    assert set(TRANSITIONS) == set(State)


def test_stop_is_terminal() -> None:
    assert TRANSITIONS[State.STOP] == {}
    with pytest.raises(LocalProtocolError, match="no transition from STOP"):
        next_state(State.STOP, Trigger.STARTUP)


@pytest.mark.parametrize("state", [s for s in State if s is not State.STOP])
def test_shutdown_stops_every_running_state(state: State) -> None:
    assert next_state(state, Trigger.SHUTDOWN) is State.STOP


@pytest.mark.parametrize(
    ("state", "trigger"),
    [(state, trigger) for state in State for trigger in Trigger if trigger not in TRANSITIONS[state]],
)
def test_unlisted_trigger_is_a_local_protocol_error(state: State, trigger: Trigger) -> None:
    with pytest.raises(LocalProtocolError):
        next_state(state, trigger)


def test_rfc_core_edges() -> None:
    assert next_state(State.INITIALIZE, Trigger.STARTUP) is State.BACKUP
    assert next_state(State.INITIALIZE, Trigger.STARTUP_AS_OWNER) is State.MASTER
    assert next_state(State.BACKUP, Trigger.MASTER_DOWN) is State.MASTER
    assert next_state(State.MASTER, Trigger.PREEMPTED) is State.BACKUP
    assert next_state(State.FAULT, Trigger.RECOVERED) is State.BACKUP


def test_docs_diagram_is_generated_from_the_table() -> None:
    text = DOCS.read_text()
    assert mermaid_diagram() in text, "regenerate with: python -m hafm.vrrp.state"
