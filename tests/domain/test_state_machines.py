"""The call and agent state machines: allowed paths, repeats, late events and refusals."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dialer.domain.agent import Agent, AgentInput, AgentState, InvalidAgentTransition
from dialer.domain.call import (
    LATE,
    TERMINAL,
    TRANSITIONS,
    Call,
    CallInput,
    CallState,
    InvalidCallTransition,
    result_of,
)
from dialer.domain.campaign import CallResult

Ev, S = CallInput, CallState


def run(*events: CallInput) -> Call:
    call = Call("att-1")
    for e in events:
        call.apply(e)
    return call


def test_connected_call_path_ends_connected():
    call = run(
        Ev.ORIGINATE, Ev.RINGING, Ev.ANSWERED, Ev.WAIT_FOR_AGENT, Ev.SENT_TO_AGENT, Ev.CONNECTED, Ev.HUNG_UP
    )
    assert call.state is S.ENDED
    assert result_of(call) is CallResult.CONNECTED
    assert call.person_answered


def test_a_person_who_hangs_up_waiting_for_an_agent_was_abandoned_and_one_during_detection_dropped():
    assert result_of(run(Ev.ORIGINATE, Ev.ANSWERED, Ev.WAIT_FOR_AGENT, Ev.HUNG_UP)) is CallResult.ABANDONED
    assert result_of(run(Ev.ORIGINATE, Ev.ANSWERED, Ev.HUNG_UP)) is CallResult.DROPPED


def test_machine_is_not_a_person_answer():
    call = run(Ev.ORIGINATE, Ev.RINGING, Ev.ANSWERED, Ev.MACHINE, Ev.HUNG_UP)
    assert result_of(call) is CallResult.MACHINE
    assert not call.person_answered


@pytest.mark.parametrize(
    "failure", [Ev.BUSY, Ev.NO_ANSWER, Ev.CONGESTION, Ev.INVALID_NUMBER, Ev.FAILED, Ev.CANCELLED]
)
def test_failure_exits_from_ringing_are_terminal(failure):
    call = run(Ev.ORIGINATE, Ev.RINGING, failure)
    assert call.finished and result_of(call).value == failure.value


def test_duplicate_events_are_no_ops():
    call = run(
        Ev.ORIGINATE,
        Ev.RINGING,
        Ev.RINGING,
        Ev.ANSWERED,
        Ev.ANSWERED,
        Ev.WAIT_FOR_AGENT,
        Ev.SENT_TO_AGENT,
        Ev.CONNECTED,
        Ev.CONNECTED,
        Ev.HUNG_UP,
        Ev.HUNG_UP,
    )
    assert call.state is S.ENDED
    assert call.history == [S.NEW, S.DIALING, S.RINGING, S.ANSWERED, S.WAITING, S.CONNECTING, S.CONNECTED]


def test_a_connect_counts_only_when_the_pbx_confirms_it():
    call = run(Ev.ORIGINATE, Ev.ANSWERED, Ev.WAIT_FOR_AGENT, Ev.SENT_TO_AGENT)
    assert call.state is S.CONNECTING
    call.apply(Ev.CONNECT_FAILED)  # the bridge refused the customer: decide again
    assert call.state is S.WAITING
    call.apply(Ev.ABANDONED)
    call.apply(Ev.HUNG_UP)
    assert result_of(call) is CallResult.ABANDONED
    with pytest.raises(InvalidCallTransition):
        run(Ev.ORIGINATE, Ev.ANSWERED, Ev.WAIT_FOR_AGENT, Ev.CONNECTED)  # never connected unless sent


def test_answered_call_cut_by_the_pbx_before_an_agent_is_lost_and_a_connected_one_stays_connected():
    assert result_of(run(Ev.ORIGINATE, Ev.ANSWERED, Ev.LOST)) is CallResult.LOST
    assert (
        result_of(run(Ev.ORIGINATE, Ev.ANSWERED, Ev.WAIT_FOR_AGENT, Ev.SENT_TO_AGENT, Ev.LOST))
        is CallResult.LOST
    )
    connected = run(Ev.ORIGINATE, Ev.ANSWERED, Ev.WAIT_FOR_AGENT, Ev.SENT_TO_AGENT, Ev.CONNECTED, Ev.LOST)
    assert result_of(connected) is CallResult.CONNECTED


def test_beep_after_the_connect_makes_the_call_a_machine():
    call = run(
        Ev.ORIGINATE, Ev.ANSWERED, Ev.WAIT_FOR_AGENT, Ev.SENT_TO_AGENT, Ev.CONNECTED, Ev.MACHINE, Ev.HUNG_UP
    )
    assert result_of(call) is CallResult.MACHINE and not call.person_answered


def test_agent_whose_phone_leg_drops_leaves_dialing_at_once_or_after_the_wrap_up():
    idle = Agent("1001")
    idle.apply(AgentInput.LOGIN, 0.0)
    idle.apply(AgentInput.READY, 1.0)
    idle.apply(AgentInput.LEG_LOST, 2.0)
    assert idle.state is AgentState.LOGGED_OUT
    busy = Agent("1002")
    for n, step in enumerate([AgentInput.LOGIN, AgentInput.READY, AgentInput.RESERVE, AgentInput.CONNECT]):
        busy.apply(step, float(n))
    busy.apply(AgentInput.LEG_LOST, 5.0)
    assert busy.state is AgentState.ON_CALL
    busy.apply(AgentInput.CALL_ENDED, 6.0)
    busy.apply(AgentInput.DISPOSE, 7.0)
    assert busy.state is AgentState.LOGGED_OUT


def test_seat_fault_pauses_the_reserved_agent():
    agent = Agent("1001")
    for n, step in enumerate([AgentInput.LOGIN, AgentInput.READY, AgentInput.RESERVE, AgentInput.SEAT_FAULT]):
        agent.apply(step, float(n))
    assert agent.state is AgentState.PAUSED


def test_ringing_after_answer_is_late_not_an_error():
    call = run(Ev.ORIGINATE, Ev.ANSWERED)
    assert call.apply(Ev.RINGING) is False
    assert call.state is S.ANSWERED


def test_event_not_in_the_table_raises_a_named_error():
    call = run(Ev.ORIGINATE, Ev.RINGING, Ev.BUSY)
    with pytest.raises(InvalidCallTransition, match="'answered' is not allowed in state 'busy'"):
        call.apply(Ev.ANSWERED)
    with pytest.raises(InvalidCallTransition):
        Call("x").apply(Ev.CONNECTED)


def test_terminal_states_have_no_way_out():
    for (src, _), _dst in TRANSITIONS.items():
        assert src not in TERMINAL


@given(st.lists(st.sampled_from(list(CallInput)), max_size=12))
def test_any_event_sequence_either_applies_or_raises_never_corrupts(events):
    call = Call("p")
    for e in events:
        before = call.state
        try:
            changed = call.apply(e)
        except InvalidCallTransition:
            assert call.state is before
            continue
        if changed:
            assert TRANSITIONS[(before, e)] is call.state
        else:
            assert call.state is before
            assert (before, e) in LATE or TRANSITIONS.get((call.history[-1], e)) is before


def test_agent_full_cycle_and_pause_during_wrap_up():
    a = Agent("1001")
    for inp in (
        AgentInput.LOGIN,
        AgentInput.READY,
        AgentInput.RESERVE,
        AgentInput.CONNECT,
        AgentInput.CALL_ENDED,
    ):
        a.apply(inp, 1.0)
    assert a.state is AgentState.WRAP_UP
    a.apply(AgentInput.PAUSE, 2.0)
    assert a.state is AgentState.WRAP_UP
    a.apply(AgentInput.DISPOSE, 3.0)
    assert a.state is AgentState.PAUSED and a.since == 3.0


def test_agent_reservation_released_returns_to_ready():
    a = Agent("1")
    for inp in (AgentInput.LOGIN, AgentInput.READY, AgentInput.RESERVE, AgentInput.RELEASE):
        a.apply(inp, 0.0)
    assert a.state is AgentState.READY


def test_agent_cannot_log_out_on_a_call_and_double_click_is_harmless():
    a = Agent("1")
    for inp in (AgentInput.LOGIN, AgentInput.READY, AgentInput.RESERVE, AgentInput.CONNECT):
        a.apply(inp, 0.0)
    with pytest.raises(InvalidAgentTransition):
        a.apply(AgentInput.LOGOUT, 0.0)
    a.apply(AgentInput.CALL_ENDED, 1.0)
    a.apply(AgentInput.DISPOSE, 2.0)
    assert a.apply(AgentInput.DISPOSE, 2.1) is False
    assert a.state is AgentState.READY
