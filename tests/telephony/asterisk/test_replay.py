"""The call tracker against every recorded Asterisk session: outcomes, duplicates, order."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from telephony.asterisk.protocol import parse_block
from telephony.asterisk.tracker import CallTracker
from telephony.base import AgentLegEnded, AmdDetected, Answered, CallEvent, Failed, HungUp, Outcome, Ringing
from tests.captures import asterisk_capture_paths, asterisk_expected, load, load_asterisk
from tests.telephony.asterisk.replay import Step, replay, timeline

EXPECTED = asterisk_expected()
PATHS = asterisk_capture_paths()


def _final(event: CallEvent) -> bool:
    return isinstance(event, Failed | HungUp | AgentLegEnded)


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_every_originate_of_every_capture_gets_the_recorded_outcome(path: Path) -> None:
    capture = load(path)
    result = replay(timeline(capture))
    expected = EXPECTED[capture.scenario]
    assert sorted(result.originates) == sorted(expected)
    got = {attempt: result.tracker.outcome_label(attempt) for attempt in result.originates}
    assert got == expected


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_each_attempt_ends_exactly_once_and_answers_at_most_once(path: Path) -> None:
    result = replay(timeline(load(path)))
    finals = Counter(e.attempt_id for e in result.events if _final(e))
    assert all(n == 1 for n in finals.values())
    # a call still up when the capture stopped (the long machine greetings of the burst) has no end yet
    assert set(result.originates) - set(finals) == set(result.tracker.in_flight())
    per_attempt: dict[str, list[type]] = defaultdict(list)
    for event in result.events:
        per_attempt[event.attempt_id].append(type(event))
    for kinds in per_attempt.values():
        assert len(kinds) == len(set(kinds)), kinds
        if HungUp in kinds:
            assert kinds.index(Answered) < kinds.index(HungUp)
        if Failed in kinds:
            assert Answered not in kinds


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_finished_calls_are_forgotten(path: Path) -> None:
    result = replay(timeline(load(path)))
    assert len(result.tracker) == len(result.tracker.in_flight())


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_duplicate_delivery_of_every_message_gives_the_same_events(path: Path) -> None:
    steps = timeline(load(path))
    once = replay(steps)
    doubled: list[Step] = []
    for step in steps:
        doubled.append(step)
        if step.received is not None:
            doubled.append(step)
    twice = replay(doubled)
    assert twice.events == once.events


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_whole_session_delivered_twice_changes_nothing(path: Path) -> None:
    steps = timeline(load(path))
    once = replay(steps)
    again = replay(steps + [s for s in steps if s.received is not None])
    assert again.events == once.events


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_originate_response_arriving_after_everything_else_keeps_the_outcome(path: Path) -> None:
    capture = load(path)
    steps = timeline(capture)
    responses = [s for s in steps if s.received is not None and s.received.event == "OriginateResponse"]
    rest = [s for s in steps if s not in responses]
    result = replay(rest + responses)
    got = {attempt: result.tracker.outcome_label(attempt) for attempt in result.originates}
    assert got == EXPECTED[capture.scenario]


def test_hangup_before_originate_response_on_a_sip_busy_call() -> None:
    steps = timeline(load_asterisk("sip_busy"))
    kinds = [s.received.event if s.received else None for s in steps]
    assert kinds.index("OriginateResponse") < kinds.index("Hangup")
    i, j = kinds.index("OriginateResponse"), kinds.index("Hangup")
    steps[i], steps[j] = steps[j], steps[i]
    result = replay(steps)
    assert [e for e in result.events if isinstance(e, Failed)] == [
        Failed("sip-busy", steps[j].at, Outcome.BUSY, 17, "User busy")
    ]


def test_answered_call_hung_up_before_its_originate_response_reports_answer_then_hangup() -> None:
    steps = timeline(load_asterisk("sip_answered_person"))
    no_newstate = [s for s in steps if not (s.received is not None and s.received.event == "Newstate")]
    responses = [s for s in no_newstate if s.received is not None and s.received.event == "OriginateResponse"]
    rest = [s for s in no_newstate if s not in responses]
    result = replay(rest + responses)
    kinds = [type(e) for e in result.events]
    assert kinds == [Answered, AmdDetected, HungUp]
    assert result.tracker.outcome_label("sip-person") == "answered:person"


# ---------------------------------------------------------------------------
# Shuffled interleaving of many calls


def _call_sequences(steps: list[Step]) -> list[list[Step]]:
    """Split a session into one ordered step list per attempt (plus one for the rest)."""
    attempts: set[str] = set()
    uid_to_attempt: dict[str, str] = {}
    for step in steps:
        if step.sent is not None and step.sent.action == "Originate":
            attempt = step.sent["ActionID"]
            attempts.add(attempt)
            for key in ("ChannelId", "OtherChannelId"):
                if key in step.sent:
                    uid_to_attempt[step.sent[key]] = attempt
    for step in steps:
        msg = step.received
        if msg is None:
            continue
        if msg.event == "VarSet" and msg.get("Variable") in ("ATTEMPT", "DIALER_ATTEMPT"):
            uid_to_attempt[msg["Uniqueid"]] = msg["Value"]
        if msg.event == "OriginateResponse" and msg.get("Uniqueid", "<unknown>") != "<unknown>":
            uid_to_attempt[msg["Uniqueid"]] = msg["ActionID"]

    def key(step: Step) -> str:
        if step.sent is not None:
            if step.sent.action == "Originate":
                return step.sent["ActionID"]
            return uid_to_attempt.get(step.sent.get("Channel", ""), "")
        msg = step.received
        assert msg is not None
        if msg.get("ActionID") in attempts:
            return msg["ActionID"]
        for field in ("Attempt", "Uniqueid", "Linkedid", "DestUniqueid", "DestLinkedid"):
            value = msg.get(field)
            if value in attempts:
                return value
            if value in uid_to_attempt:
                return uid_to_attempt[value]
        return ""

    groups: dict[str, list[Step]] = defaultdict(list)
    for step in steps:
        groups[key(step)].append(step)
    return list(groups.values())


def _interleave(sequences: list[list[Step]], rnd: random.Random) -> list[Step]:
    queues = [list(reversed(seq)) for seq in sequences if seq]
    out: list[Step] = []
    while queues:
        i = rnd.randrange(len(queues))
        out.append(queues[i].pop())
        if not queues[i]:
            queues.pop(i)
    return out


_MANY_CALLS = [
    "burst_of_twenty",
    "sip_busy",
    "sip_invalid_number",
    "sip_dialer_cancels_ringing",
    "dialer_hangs_up_ringing_call",
    "originate_bad_channel",
    "sip_answering_machine",
]
_MANY_STEPS = [timeline(load_asterisk(name)) for name in _MANY_CALLS]
_MANY_EXPECTED = {a: o for name in _MANY_CALLS for a, o in EXPECTED[name].items()}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.randoms(use_true_random=False))
def test_shuffled_order_across_calls_keeps_every_outcome(rnd: random.Random) -> None:
    sequences = [seq for steps in _MANY_STEPS for seq in _call_sequences(steps)]
    result = replay(_interleave(sequences, rnd))
    got = {attempt: result.tracker.outcome_label(attempt) for attempt in result.originates}
    assert got == _MANY_EXPECTED
    finals = Counter(e.attempt_id for e in result.events if _final(e))
    assert all(n == 1 for n in finals.values())
    assert set(result.originates) - set(finals) == set(result.tracker.in_flight())


# ---------------------------------------------------------------------------
# Rules not in the captures


def test_shutdown_ends_answered_calls_as_hung_up_and_others_as_lost() -> None:
    tracker = CallTracker()
    tracker.register_originate("a1", "a1", "a1", 0.0)
    tracker.register_originate("a2", "a2", "a2", 0.0)
    tracker.feed(parse_block("Event: Newchannel\r\nUniqueid: a1"), 1.0)
    assert tracker.feed(parse_block("Event: Newstate\r\nUniqueid: a1\r\nChannelState: 5"), 1.0) == [
        Ringing("a1", 1.0)
    ]
    assert tracker.feed(parse_block("Event: Newstate\r\nUniqueid: a2\r\nChannelState: 6"), 2.0) == [
        Answered("a2", 2.0, "a2")
    ]
    events = tracker.feed(parse_block("Event: Shutdown\r\nShutdown: Cleanly\r\nRestart: True"), 3.0)
    assert sorted(events, key=lambda e: e.attempt_id) == [
        Failed("a1", 3.0, Outcome.LOST, None, "Asterisk shut down to restart"),
        HungUp("a2", 3.0, 0, "Asterisk shut down to restart", lost=True),
    ]
    assert tracker.outcome_label("a1") == "lost"
    assert tracker.outcome_label("a2") == "answered"
    assert len(tracker) == 0


def test_amd_not_sure_reports_unknown_and_labels_plain_answered() -> None:
    tracker = CallTracker()
    tracker.register_originate("a", "a", "a", 0.0)
    tracker.feed(parse_block("Event: OriginateResponse\r\nActionID: a\r\nReason: 4\r\nUniqueid: a"), 1.0)
    events = tracker.feed(
        parse_block(
            "Event: UserEvent\r\nUserEvent: DialerAMD\r\nAttempt: a\r\nStatus: NOTSURE\r\nCause: TOOLONG-5000"
        ),
        2.0,
    )
    assert [type(e) for e in events] == [AmdDetected]
    assert tracker.outcome_label("a") == "answered"


def test_cancelled_only_when_we_asked_for_the_hangup() -> None:
    for requested, label in ((True, "cancelled"), (False, "failed")):
        tracker = CallTracker()
        tracker.register_originate("a", "a", "a", 0.0)
        tracker.feed(parse_block("Event: Newchannel\r\nUniqueid: a"), 0.1)
        if requested:
            tracker.note_hangup_requested("a")
        tracker.feed(parse_block("Event: OriginateResponse\r\nActionID: a\r\nReason: 0\r\nUniqueid: a"), 1.0)
        hangup = "Event: Hangup\r\nUniqueid: a\r\nCause: 16\r\nCause-txt: Normal Clearing"
        tracker.feed(parse_block(hangup), 1.0)
        assert tracker.outcome_label("a") == label


def test_reconcile_reports_gone_calls_as_lost_and_up_calls_as_answered() -> None:
    tracker = CallTracker()
    for a in ("gone", "up", "ringing", "late"):
        tracker.register_originate(a, a, a, 0.0)
    events = tracker.reconcile(["gone", "up", "ringing"], {"up": "6", "ringing": "5"}, 5.0, "AMI link lost")
    assert events == [Failed("gone", 5.0, Outcome.LOST, None, "AMI link lost"), Answered("up", 5.0, "up")]
    assert sorted(tracker.in_flight()) == ["late", "ringing", "up"]


def test_expire_decides_a_hung_up_call_whose_response_never_came() -> None:
    tracker = CallTracker(grace_s=10.0)
    tracker.register_originate("a", "a", "a", 0.0)
    tracker.feed(parse_block("Event: Hangup\r\nUniqueid: a\r\nCause: 17\r\nCause-txt: User busy"), 1.0)
    assert tracker.expire(5.0) == []
    assert tracker.expire(12.0) == [Failed("a", 12.0, Outcome.BUSY, 17, "User busy")]
    assert len(tracker) == 0
    assert tracker.outcome_label("a") == "busy"


def test_registering_an_attempt_twice_is_refused() -> None:
    tracker = CallTracker()
    tracker.register_originate("a", "a", None, 0.0)
    with pytest.raises(ValueError, match="dialed once"):
        tracker.register_originate("a", "a", None, 1.0)


def test_events_of_unknown_calls_are_ignored() -> None:
    tracker = CallTracker()
    assert tracker.feed(parse_block("Event: OriginateResponse\r\nActionID: x\r\nReason: 4"), 0.0) == []
    assert tracker.feed(parse_block("Event: Hangup\r\nUniqueid: y\r\nCause: 16"), 0.0) == []
    assert tracker.ignored == 1
