"""Replaying a recorded ESL session through the tracker, as the adapter would."""

from __future__ import annotations

import re

from telephony.base import CallEvent
from telephony.freeswitch.protocol import EslParser
from telephony.freeswitch.tracker import FreeSwitchCallTracker
from tests.captures import Capture

_ORIGINATE = re.compile(r"^bgapi originate \{([^}]*)\}.*\nJob-UUID: (\S+)\n", re.S)
_KILL = re.compile(r"^api uuid_kill (\S+)")


def originate_of(sent: str) -> tuple[str, str] | None:
    """(origination_uuid, Job-UUID) of a ``bgapi originate`` as written, else None."""
    m = _ORIGINATE.match(sent)
    if m is None:
        return None
    variables = dict(kv.split("=", 1) for kv in m.group(1).split(","))
    return variables["origination_uuid"], m.group(2)


def replay(capture: Capture, tracker: FreeSwitchCallTracker, chunk: int = 4096) -> list[CallEvent]:
    """Feed sent commands and received bytes in time order (sent first on ties)."""
    timeline: list[tuple[float, int, str]] = [(t, 0, s) for t, s in capture.sent]
    timeline += [(t, 1, r) for t, r in capture.received]
    timeline.sort(key=lambda x: (x[0], x[1]))
    parser = EslParser()
    events: list[CallEvent] = []
    for at, side, text in timeline:
        if side == 0:
            originate = originate_of(text)
            if originate is not None:
                tracker.register_originate(originate[0], originate[1], at)
            kill = _KILL.match(text)
            if kill is not None:
                tracker.note_kill_requested(kill.group(1))
            continue
        data = text.encode()
        for i in range(0, len(data), chunk):
            for frame in parser.feed(data[i : i + chunk]):
                events.extend(tracker.feed(frame, at))
    assert parser.error_count == 0
    return events
