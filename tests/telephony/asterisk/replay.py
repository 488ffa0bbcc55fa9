"""Replaying a recorded AMI session through the call tracker (shared by tests and the benchmark)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from telephony.asterisk.protocol import AmiMessage, parse_block, split_capture_block
from telephony.asterisk.tracker import CallTracker, agent_of_bridge
from telephony.base import CallEvent
from tests.captures import Capture


@dataclass
class Step:
    """One entry of a capture in time order: an action we sent or a message we received."""

    at: float
    sent: AmiMessage | None = None
    received: AmiMessage | None = None


@dataclass
class Replay:
    tracker: CallTracker
    events: list[CallEvent] = field(default_factory=list)
    originates: list[str] = field(default_factory=list)


def timeline(capture: Capture) -> list[Step]:
    """Sent actions and received messages merged by time; on a tie what we sent comes first."""
    steps: list[tuple[float, int, int, Step]] = []
    for n, (at, raw) in enumerate(capture.sent):
        if raw.startswith("Action:"):
            steps.append((at, 0, n, Step(at, sent=parse_block(raw.strip("\r\n")))))
    for n, (at, raw) in enumerate(capture.received):
        msg = split_capture_block(raw)
        if msg is not None:
            steps.append((at, 1, n, Step(at, received=msg)))
    steps.sort(key=lambda s: s[:3])
    return [s[3] for s in steps]


def apply_sent(tracker: CallTracker, action: AmiMessage, at: float, channels: dict[str, str]) -> str | None:
    """Tell the tracker what the dialer did; returns the attempt id of an Originate."""
    name = action.get("Action")
    if name == "Originate":
        attempt = action["ActionID"]
        channel_id = action.get("ChannelId")
        agent = agent_of_bridge(action.get("Data", "").split(",")[0])
        if action.get("Application") == "ConfBridge" and agent is not None:
            tracker.register_agent_leg(attempt, agent, at, channel_id)  # as AsteriskPbx.login_agent does
        else:
            tracker.register_originate(attempt, attempt, channel_id, at)
        if channel_id is not None:
            channels[channel_id] = attempt
        return attempt
    if name == "Hangup":
        attempt_of_channel = channels.get(action.get("Channel", ""))
        if attempt_of_channel is not None:
            tracker.note_hangup_requested(attempt_of_channel)
    return None


def replay(steps: Iterable[Step], tracker: CallTracker | None = None) -> Replay:
    result = Replay(tracker or CallTracker())
    channels: dict[str, str] = {}
    for step in steps:
        if step.sent is not None:
            attempt = apply_sent(result.tracker, step.sent, step.at, channels)
            if attempt is not None:
                result.originates.append(attempt)
        elif step.received is not None:
            result.events.extend(result.tracker.feed(step.received, step.at))
    return result
