"""The ESL simulator against the recorded FreeSWITCH 1.10.12 sessions, frame for frame.

Each single-call scenario of ``../shared/freeswitch-transcripts`` is replayed:
the recorded commands are written to a fresh simulator as recorded (each one
after the frame it followed, plus the recorded delay, at time scale 10), and
the frames the simulator sends back are compared with the recorded ones:

- command replies and API responses (``Content-Type``, ``Reply-Text``,
  ``Job-UUID``, body): the same list in the same order;
- events: the same list in the same order, on Content-Type, Event-Name,
  Event-Subclass, Action, Unique-ID, Job-UUID, Hangup-Cause,
  variable_hangup_cause_q850, Answer-State, Channel-State, Call-Direction,
  variable_sip_term_status, Beep-Status, Conference-Size, the job body, and
  Member-ID by order of first appearance (it counts members since start-up);
- and every header name of each recorded event is in the simulator's event
  at the same place in the sequence, and no other (set comparison).

Orders that depend on timing in the real switch are accepted either way,
and only those:

- BACKGROUND_JOB against the channel's events: the README counts the job
  before CHANNEL_HANGUP_COMPLETE 6 times in 18 and once before
  CHANNEL_HANGUP.  The jobs are compared apart, and each must come after
  its channel's CHANNEL_CREATE, and for an answered call after CHANNEL_ANSWER
  and before CHANNEL_HANGUP;
- command replies against events: a reply is written when the command is
  read, the events when the call moves, so the two lists are compared apart.

In ``burst_of_twenty`` the twenty calls interleave freely, so each call's own
events are compared; there one 503 reached FreeSWITCH while its channel was
still in CS_ROUTING (the switch was busy placing the other nineteen), so a
refused call's CHANNEL_HANGUP may say CS_ROUTING where the simulator, which
is never busy, says CS_CONSUME_MEDIA.  Finally the outcome of every originate, derived from
the simulator's frames alone by the README's rules, must be the one in
``expected.json``.
"""

from __future__ import annotations

import asyncio
import functools

import pytest

from telephony.sim.freeswitch import FreeSwitchSimulator
from tests.captures import Capture, freeswitch_expected, load_freeswitch
from tests.telephony.sim_esl.replay import CapturePeers, Frame, recorded_frames, replay, signature

TIME_SCALE = 10.0

SINGLE_CALL = [
    "answered_person",
    "answering_machine",
    "answering_machine_beep",
    "avmd_stopped_by_api",
    "busy",
    "no_answer",
    "congestion",
    "invalid_number",
    "bad_endpoint",
    "dialer_cancels_ringing",
    "agent_and_customer_connected",
]


# Recorded later with the project's config/freeswitch/ dialplan ("shipped": agent_<id> answers
# before the conference, dialer_answered runs avmd when dialer_amd=true); the others ran on
# the lab dialplan.
SHIPPED_DIALPLAN = [
    "restart_with_calls",
    "restart_with_calls_after",
    "beep_after_connect",
    "agent_leg_hangs_up",
    "transfer_gone_channel",
]
# restart_with_calls: an operator's second connection ran `fsctl shutdown restart` 2.306 s
# after the ringing call's CHANNEL_PROGRESS (the first CHANNEL_HANGUP came at 2.476 s).
RESTART_ANCHOR = ("text/event-plain", "CHANNEL_PROGRESS", "", "", "fs-rs-ring", "")
RESTART_AFTER_S = 2.306


@functools.cache
def replayed(scenario: str) -> tuple[Capture, list[Frame]]:
    """Replay a scenario once per test session (each replay takes a second or two)."""
    capture = load_freeswitch(scenario)
    dialplan = "shipped" if scenario in SHIPPED_DIALPLAN else "lab"

    async def run() -> list[Frame]:
        sim = FreeSwitchSimulator(CapturePeers(), time_scale=TIME_SCALE, dialplan=dialplan)
        await sim.start()
        triggers = []
        if scenario == "restart_with_calls":
            triggers.append((RESTART_ANCHOR, RESTART_AFTER_S, lambda: sim.request_shutdown(restart=True)))
        try:
            return await replay(capture, sim, triggers=triggers)
        finally:
            await sim.stop()

    return capture, asyncio.run(run())


def _events(frames: list[Frame], *, jobs: bool) -> list[Frame]:
    return [f for f in frames if f.is_event and (f.get("Event-Name") == "BACKGROUND_JOB") == jobs]


def _replies(frames: list[Frame]) -> list[Frame]:
    return [f for f in frames if not f.is_event]


def _signatures(frames: list[Frame]) -> list[tuple[str, ...]]:
    member_ids: dict[str, int] = {}
    return [signature(f, member_ids) for f in frames]


def _names(frame: Frame) -> set[str]:
    return {k for k, _ in frame.inner}


def _check_jobs(recorded: list[Frame], simulated: list[Frame]) -> None:
    rec_jobs = {f.get("Job-UUID"): f for f in _events(recorded, jobs=True)}
    sim_jobs = {f.get("Job-UUID"): f for f in _events(simulated, jobs=True)}
    assert sorted(sim_jobs) == sorted(rec_jobs)
    for job, rec in rec_jobs.items():
        sim = sim_jobs[job]
        assert sim.body == rec.body, job
        assert _names(sim) == _names(rec), job
        assert sim.get("Job-Command-Arg") == rec.get("Job-Command-Arg"), job
        uuid = job.removesuffix("-job")
        position = simulated.index(sim)
        mine = [(i, f.get("Event-Name")) for i, f in enumerate(simulated) if f.get("Unique-ID") == uuid]
        created = [i for i, name in mine if name == "CHANNEL_CREATE"]
        answered = [i for i, name in mine if name == "CHANNEL_ANSWER"]
        hangup = [i for i, name in mine if name == "CHANNEL_HANGUP"]
        if created:
            assert created[0] < position, f"{job} before its CHANNEL_CREATE"
        if answered:
            assert answered[0] < position, f"{job} +OK before CHANNEL_ANSWER"
            if hangup:
                assert position < hangup[0], f"{job} +OK after CHANNEL_HANGUP"


def _routing_as_consume_media(sig: tuple[str, ...]) -> tuple[str, ...]:
    return tuple("CS_CONSUME_MEDIA" if v == "CS_ROUTING" else v for v in sig)


def _check_events(recorded: list[Frame], simulated: list[Frame], *, busy_switch: bool = False) -> None:
    rec = _events(recorded, jobs=False)
    sim = _events(simulated, jobs=False)
    expected = _signatures(rec)
    if busy_switch:
        expected = [_routing_as_consume_media(sig) for sig in expected]
    assert _signatures(sim) == expected
    for r, s in zip(rec, sim, strict=True):
        missing = _names(r) - _names(s)
        extra = _names(s) - _names(r)
        assert not missing and not extra, (r.get("Event-Name"), r.get("Action"), missing, extra)
    _check_jobs(recorded, simulated)


@pytest.mark.parametrize("scenario", SINGLE_CALL)
def test_replies_match_the_recording(scenario: str) -> None:
    capture, simulated = replayed(scenario)
    assert _signatures(_replies(simulated)) == _signatures(_replies(recorded_frames(capture)))


@pytest.mark.parametrize("scenario", SINGLE_CALL)
def test_events_match_the_recording(scenario: str) -> None:
    capture, simulated = replayed(scenario)
    _check_events(recorded_frames(capture), simulated)


def _per_call(frames: list[Frame], uuid: str) -> list[Frame]:
    return [
        f for f in frames if f.is_event and (f.get("Unique-ID") == uuid or f.get("Job-UUID") == f"{uuid}-job")
    ]


def test_burst_of_twenty_each_call_matches_the_recording() -> None:
    capture, simulated = replayed("burst_of_twenty")
    recorded = recorded_frames(capture)
    assert _signatures(_replies(simulated)) == _signatures(_replies(recorded))
    for uuid in freeswitch_expected()["burst_of_twenty"]:
        _check_events(_per_call(recorded, uuid), _per_call(simulated, uuid), busy_switch=True)


@pytest.mark.parametrize("scenario", SHIPPED_DIALPLAN)
def test_later_captures_replies_match_the_recording(scenario: str) -> None:
    capture, simulated = replayed(scenario)
    assert _signatures(_replies(simulated)) == _signatures(_replies(recorded_frames(capture)))


@pytest.mark.parametrize("scenario", [s for s in SHIPPED_DIALPLAN if s != "restart_with_calls_after"])
def test_later_captures_each_call_matches_the_recording(scenario: str) -> None:
    """Event for event per call: conference-level events (no Unique-ID) fall between two calls'
    events as the far end's SIP timing puts them (the agent's floor-change came before the next
    call's CHANNEL_CREATE in one session, 0.5 s after it in another), and at a shutdown all
    channels hang up within a millisecond in the switch's session-table order."""
    capture, simulated = replayed(scenario)
    recorded = recorded_frames(capture)
    for uuid in freeswitch_expected()[scenario]:
        _check_events(_per_call(recorded, uuid), _per_call(simulated, uuid))


def test_restart_ends_the_session_with_the_shutdown_notice() -> None:
    capture, simulated = replayed("restart_with_calls")
    assert simulated[-1].content_type == "text/disconnect-notice"
    assert simulated[-1].body == "The system is being shut down.\n" == recorded_frames(capture)[-1].body
    conference = [f.get("Action") for f in simulated if f.get("Event-Subclass") == "conference::maintenance"]
    assert conference[-1] == "conference-destroy"


def _outcome(frames: list[Frame], uuid: str, sent: list[str]) -> str:
    """The README's derivation, from the frames alone."""
    job = next(f for f in frames if f.get("Job-UUID") == f"{uuid}-job" and f.is_event)
    mine = [f for f in frames if f.is_event and f.get("Unique-ID") == uuid]
    names = {f.get("Event-Name") for f in mine}
    body = job.body.strip()
    if body == f"+OK {uuid}" and "CHANNEL_ANSWER" in names:
        beeps = [f for f in mine if f.get("Event-Subclass") == "avmd::beep"]
        return "answered:machine" if beeps else "answered"
    cause = body.removeprefix("-ERR ").strip()
    if "CHANNEL_CREATE" not in names:
        return "failed"
    complete = next(f for f in mine if f.get("Event-Name") == "CHANNEL_HANGUP_COMPLETE")
    assert complete.get("Hangup-Cause") == cause
    assert "CHANNEL_ANSWER" not in names
    if cause == "NORMAL_CLEARING":
        assert any(s.startswith(f"api uuid_kill {uuid}") for s in sent)
        return "cancelled"
    return {
        "USER_BUSY": "busy",
        "NO_ANSWER": "no_answer",
        "NORMAL_TEMPORARY_FAILURE": "congestion",
        "UNALLOCATED_NUMBER": "invalid_number",
        "SYSTEM_SHUTDOWN": "lost",
    }[cause]


@pytest.mark.parametrize("scenario", [*SINGLE_CALL, "burst_of_twenty", *SHIPPED_DIALPLAN])
def test_outcomes_derived_from_the_simulator_match_expected(scenario: str) -> None:
    capture, simulated = replayed(scenario)
    sent = [text for _, text in capture.sent]
    expected = freeswitch_expected()[scenario]
    assert {uuid: _outcome(simulated, uuid, sent) for uuid in expected} == expected


@pytest.mark.parametrize("scenario", ["answering_machine", "answering_machine_beep", "avmd_stopped_by_api"])
def test_every_avmd_event_comes_twice_with_one_sequence_number(scenario: str) -> None:
    _, simulated = replayed(scenario)
    avmd = [f for f in simulated if f.get("Event-Subclass").startswith("avmd::")]
    by_seq: dict[str, list[Frame]] = {}
    for f in avmd:
        by_seq.setdefault(f.get("Event-Sequence"), []).append(f)
    assert by_seq
    for copies in by_seq.values():
        bare, full = copies
        assert "Channel-State" not in _names(bare)
        assert full.get("Channel-State") == "CS_EXECUTE"
        assert [k for k, _ in full.inner].count("Unique-ID") == 2


@pytest.mark.parametrize("scenario", SINGLE_CALL)
def test_event_sequence_increases_except_avmd_copies(scenario: str) -> None:
    """Event-Sequence grows through the stream; the channel copy of an avmd event, fired later
    by the parked session, repeats the number of its bare copy."""
    _, simulated = replayed(scenario)
    last = 0
    avmd_seen: set[str] = set()
    for f in simulated:
        if not f.is_event:
            continue
        seq = f.get("Event-Sequence")
        if f.get("Event-Subclass").startswith("avmd::"):
            if seq in avmd_seen:
                continue
            avmd_seen.add(seq)
        assert int(seq) > last, f.get("Event-Name")
        last = int(seq)


def test_channel_events_are_full_size_frames() -> None:
    """CHANNEL_* events carry every channel variable: 3 to 10 KB, as recorded."""
    _, simulated = replayed("agent_and_customer_connected")
    sizes = [len(f.raw) for f in simulated if f.get("Event-Name").startswith("CHANNEL_")]
    assert sizes
    assert all(3000 <= size <= 11000 for size in sizes), sizes
