"""The FreeSWITCH call tracker against every recorded session and its expected outcomes."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from telephony.base import AmdDetected, AmdResult, Answered, Connected, Failed, HungUp, Outcome, Ringing
from telephony.freeswitch.protocol import EslEvent, EslParser
from telephony.freeswitch.tracker import FreeSwitchCallTracker
from tests.captures import freeswitch_capture_paths, freeswitch_expected, load, load_freeswitch
from tests.telephony.freeswitch.replay import originate_of, replay

EXPECTED = freeswitch_expected()


@pytest.mark.parametrize("path", freeswitch_capture_paths(), ids=lambda p: p.stem)
def test_every_capture_yields_exactly_the_expected_outcomes(path: Path) -> None:
    capture = load(path)
    tracker = FreeSwitchCallTracker()
    replay(capture, tracker)
    expected = EXPECTED[capture.scenario]
    got = {uuid: tracker.outcome_label(uuid) for uuid in expected}
    assert got == expected
    assert tracker.live_ids() == []


@pytest.mark.parametrize("path", freeswitch_capture_paths(), ids=lambda p: p.stem)
def test_each_attempt_gets_one_terminal_event_and_answered_before_hangup(path: Path) -> None:
    tracker = FreeSwitchCallTracker()
    events = replay(load(path), tracker, chunk=7)
    by_attempt: dict[str, list[type]] = {}
    for e in events:
        by_attempt.setdefault(e.attempt_id, []).append(type(e))
    for attempt, kinds in by_attempt.items():
        terminal = [k for k in kinds if k in (Failed, HungUp)]
        assert len(terminal) == 1, attempt
        assert kinds[-1] in (Failed, HungUp), attempt
        assert kinds.count(Answered) <= 1 and kinds.count(Ringing) <= 1
        if HungUp in kinds:
            assert Answered in kinds


def test_busy_failure_carries_the_q850_cause_and_job_body() -> None:
    tracker = FreeSwitchCallTracker()
    events = replay(load_freeswitch("busy"), tracker)
    failed = [e for e in events if isinstance(e, Failed)]
    assert failed == [
        Failed("fs-busy", failed[0].at, outcome=Outcome.BUSY, cause=17, detail="-ERR USER_BUSY")
    ]


def test_beep_is_reported_once_although_avmd_sends_it_twice() -> None:
    tracker = FreeSwitchCallTracker()
    events = replay(load_freeswitch("answering_machine_beep"), tracker)
    amd = [e for e in events if isinstance(e, AmdDetected)]
    assert len(amd) == 1
    assert amd[0].result is AmdResult.MACHINE
    assert amd[0].detail == "beep 1000 Hz"


def test_avmd_stop_false_beep_status_is_ignored() -> None:
    tracker = FreeSwitchCallTracker()
    events = replay(load_freeswitch("avmd_stopped_by_api"), tracker)
    assert not [e for e in events if isinstance(e, AmdDetected)]
    assert tracker.outcome_label("fs-avmd-api") == "answered"


def test_ringing_kill_without_our_uuid_kill_is_not_cancelled() -> None:
    capture = load_freeswitch("dialer_cancels_ringing")
    # same traffic, but the kill was not ours (someone on the fs_cli): a failure, not "cancelled"
    stripped = type(capture)(
        capture.scenario,
        capture.path,
        [(t, s) for t, s in capture.sent if not s.startswith("api uuid_kill")],
        capture.received,
        capture.raw,
    )
    tracker = FreeSwitchCallTracker()
    replay(stripped, tracker)
    assert tracker.outcome_label("fs-cancel") == "failed"


def test_customer_moved_into_the_agent_conference_is_connected() -> None:
    tracker = FreeSwitchCallTracker()
    events = replay(load_freeswitch("agent_and_customer_connected"), tracker)
    connected = [e for e in events if isinstance(e, Connected)]
    assert [(e.attempt_id, e.agent_id) for e in connected] == [
        ("fs-agent-1001", "1001"),
        ("fs-connect", "1001"),
    ]


def _events_and_registrations(name: str) -> tuple[list[EslEvent], list[tuple[str, str]], list[str]]:
    capture = load_freeswitch(name)
    parser = EslParser()
    events = [f.event for _, r in capture.received for f in parser.feed(r.encode()) if f.is_event]
    regs = [o for _, s in capture.sent if (o := originate_of(s)) is not None]
    kills = [s.split()[2] for _, s in capture.sent if s.startswith("api uuid_kill")]
    return events, regs, kills


@pytest.mark.parametrize("seed", range(5))
def test_burst_outcomes_survive_duplicates_and_shuffled_job_order(seed: int) -> None:
    events, regs, _ = _events_and_registrations("burst_of_twenty")
    rng = random.Random(seed)
    # duplicate a random third of the events, and move every BACKGROUND_JOB to a random place after
    # its channel's CHANNEL_CREATE (FreeSWITCH creates the channel before the originate can return)
    noisy: list[EslEvent] = []
    for e in events:
        noisy.append(e)
        if rng.random() < 0.33:
            noisy.append(e)
    jobs = [e for e in noisy if e.name == "BACKGROUND_JOB"]
    others = [e for e in noisy if e.name != "BACKGROUND_JOB"]
    job_to_uuid = {job: uuid for uuid, job in regs}
    for job in jobs:
        uuid = job_to_uuid[job["Job-UUID"]]
        created = [i for i, e in enumerate(others) if e.name == "CHANNEL_CREATE" and e.unique_id == uuid]
        others.insert(rng.randint(created[0] + 1 if created else 0, len(others)), job)
    tracker = FreeSwitchCallTracker()
    for uuid, job in regs:
        tracker.register_originate(uuid, job, 0.0)
    emitted = []
    for i, e in enumerate(others):
        emitted.extend(tracker.feed(e, float(i)))
    expected = EXPECTED["burst_of_twenty"]
    assert {u: tracker.outcome_label(u) for u in expected} == expected
    terminal = [e.attempt_id for e in emitted if isinstance(e, Failed | HungUp)]
    assert sorted(terminal) == sorted(expected)


def test_detector_variable_gives_person_or_machine() -> None:
    events, regs, _ = _events_and_registrations("answered_person")
    tracker = FreeSwitchCallTracker(amd_variable="dialer_amd_result")
    tracker.register_originate(*regs[0], 0.0)
    out = []
    for e in events:
        if e.name == "CHANNEL_PARK":
            # what a classifier in the dialplan would leave on the channel
            e = EslEvent(
                "Event-Name: CHANNEL_PARK\nUnique-ID: fs-person\nvariable_dialer_amd_result: HUMAN\n\n"
            )
        out.extend(tracker.feed(e, 1.0))
    amd = [e for e in out if isinstance(e, AmdDetected)]
    assert [a.result for a in amd] == [AmdResult.PERSON]
    assert tracker.outcome_label("fs-person") == "answered:person"


def test_events_of_calls_we_did_not_place_are_ignored() -> None:
    events, _, _ = _events_and_registrations("busy")
    tracker = FreeSwitchCallTracker()
    assert [x for e in events for x in tracker.feed(e, 0.0)] == []
    assert tracker.ignored_events > 0


def test_finished_outcomes_are_bounded() -> None:
    tracker = FreeSwitchCallTracker(max_finished=10)
    for i in range(50):
        tracker.register_originate(f"a{i}", f"a{i}-job", 0.0)
        tracker.feed(
            EslEvent(f"Event-Name: BACKGROUND_JOB\nJob-UUID: a{i}-job\n\n-ERR INVALID_PROFILE\n"),
            0.0,
        )
    assert tracker.live_ids() == []
    assert tracker.outcome_label("a49") == "failed"
    assert tracker.outcome_label("a0") is None


def test_lost_attempts_become_failed_lost_or_hung_up() -> None:
    tracker = FreeSwitchCallTracker()
    tracker.register_originate("ringing", "ringing-job", 0.0)
    tracker.register_originate("talking", "talking-job", 0.0)
    tracker.feed(EslEvent("Event-Name: CHANNEL_ANSWER\nUnique-ID: talking\n\n"), 1.0)
    lost = tracker.mark_lost("ringing", 2.0) + tracker.mark_lost("talking", 2.0)
    assert isinstance(lost[0], Failed) and lost[0].outcome is Outcome.LOST
    assert isinstance(lost[1], HungUp) and lost[1].lost
    assert tracker.outcome_label("ringing") == "lost"
    assert tracker.mark_lost("ringing", 3.0) == []


def test_job_lost_with_the_link_falls_back_to_the_channel_hangup_cause() -> None:
    events, regs, _ = _events_and_registrations("busy")
    tracker = FreeSwitchCallTracker()
    tracker.register_originate(*regs[0], 0.0)
    for e in events:
        if e.name != "BACKGROUND_JOB":  # the job went out while we were disconnected
            tracker.feed(e, 1.0)
    assert tracker.outcome_label("fs-busy") is None  # still waiting for the job
    out = tracker.mark_lost("fs-busy", 2.0)
    assert [(type(e), getattr(e, "outcome", None), getattr(e, "cause", None)) for e in out] == [
        (Failed, Outcome.BUSY, 17)
    ]
    assert tracker.outcome_label("fs-busy") == "busy"


def test_restart_cuts_the_ringing_call_as_lost_and_ends_answered_ones_with_hung_up() -> None:
    tracker = FreeSwitchCallTracker()
    events = replay(load_freeswitch("restart_with_calls"), tracker)
    failed = [e for e in events if isinstance(e, Failed)]
    assert [(e.attempt_id, e.outcome, e.cause, e.detail) for e in failed] == [
        ("fs-rs-ring", Outcome.LOST, 16, "-ERR SYSTEM_SHUTDOWN")
    ]
    hung_up = sorted((e.attempt_id, e.cause, e.cause_text, e.lost) for e in events if isinstance(e, HungUp))
    assert hung_up == [
        ("agent-1001-rs", 16, "SYSTEM_SHUTDOWN", True),
        ("fs-rs-conf", 16, "SYSTEM_SHUTDOWN", True),
        ("fs-rs-parked", 16, "SYSTEM_SHUTDOWN", True),
    ]


def test_a_ringing_call_whose_job_was_lost_in_the_shutdown_is_lost_too() -> None:
    events, regs, _ = _events_and_registrations("restart_with_calls")
    tracker = FreeSwitchCallTracker()
    for uuid, job in regs:
        tracker.register_originate(uuid, job, 0.0)
    for e in events:
        if e.name != "BACKGROUND_JOB" or e["Job-UUID"] != "fs-rs-ring-job":
            tracker.feed(e, 1.0)
    out = tracker.mark_lost("fs-rs-ring", 2.0)
    assert [(type(e), getattr(e, "outcome", None)) for e in out] == [(Failed, Outcome.LOST)]
