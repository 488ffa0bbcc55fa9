"""Replaying a recorded ESL session against the simulator, and the frame signatures compared.

A recorded command is written when the simulator has produced the frame the
command followed in the recording (same kind of frame, same call, same
occurrence), plus the recorded delay scaled by the time scale.  Anchoring on
frames instead of clock times keeps the replay faithful when the machine is
slow: the dialer's ``uuid_kill`` comes after the beep it reacted to, as it
did in the recording.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import unquote

from telephony.sim.freeswitch import FreeSwitchSimulator
from telephony.sim.model import CalleeKind, CalleePlan, ScriptedCallee
from tests.captures import Capture


@dataclass(frozen=True)
class Frame:
    """One whole ESL frame: outer headers, and for events the decoded inner headers and body."""

    at: float
    raw: str
    outer: dict[str, str]
    inner: list[tuple[str, str]]
    body: str

    @property
    def content_type(self) -> str:
        return self.outer.get("Content-Type", "")

    def get(self, name: str) -> str:
        for k, v in self.inner:
            if k == name:
                return unquote(v)
        return ""

    @property
    def is_event(self) -> bool:
        return self.content_type == "text/event-plain"

    @property
    def key(self) -> tuple[str, ...]:
        """What kind of frame this is, for anchoring a command on it."""
        if self.is_event:
            return (
                self.content_type,
                self.get("Event-Name"),
                self.get("Event-Subclass"),
                self.get("Action"),
                self.get("Unique-ID"),
                self.get("Job-UUID"),
            )
        return (self.content_type, self.outer.get("Reply-Text", ""), self.body)


def _block(text: str) -> list[tuple[str, str]]:
    out = []
    for line in text.split("\n"):
        if line:
            k, _, v = line.partition(": ")
            out.append((k, v))
    return out


def parse_frame(at: float, raw: str) -> Frame:
    head, _, rest = raw.partition("\n\n")
    outer = dict(_block(head))
    inner: list[tuple[str, str]] = []
    body = rest
    if outer.get("Content-Type") == "text/event-plain":
        inner_head, _, body = rest.partition("\n\n")
        inner = _block(inner_head)
    return Frame(at, raw, outer, inner, body)


def split_stream(data: bytes) -> tuple[list[str], bytes]:
    """Whole frames off the front of ``data`` (LF framing, Content-Length bodies) and the rest."""
    frames: list[str] = []
    while True:
        end = data.find(b"\n\n")
        if end < 0:
            return frames, data
        head = data[:end].decode()
        length = 0
        for line in head.split("\n"):
            if line.startswith("Content-Length:"):
                length = int(line.split(":", 1)[1])
        total = end + 2 + length
        if len(data) < total:
            return frames, data
        frames.append(data[:total].decode())
        data = data[total:]


def recorded_frames(capture: Capture) -> list[Frame]:
    return [parse_frame(t, raw) for t, raw in capture.received]


def _anchors(capture: Capture, frames: list[Frame]) -> list[tuple[tuple[str, ...], int, float] | None]:
    """For each sent command: the frame it followed (key, occurrence) and the delay after it."""
    anchors: list[tuple[tuple[str, ...], int, float] | None] = []
    for sent_at, _ in capture.sent:
        best = None
        for i, f in enumerate(frames):
            if f.at < sent_at or (f.at == sent_at and (f.is_event or f.content_type == "auth/request")):
                best = i
        if best is None:
            anchors.append(None)
            continue
        key = frames[best].key
        occurrence = sum(1 for f in frames[: best + 1] if f.key == key) - 1
        anchors.append((key, occurrence, sent_at - frames[best].at))
    return anchors


# Something that happened outside the recorded session (an operator's fsctl on another connection):
# run ``action`` ``delay`` recorded seconds after the frame of ``key`` (its first occurrence) arrived.
Trigger = tuple[tuple[str, ...], float, Callable[[], None]]


async def replay(
    capture: Capture, sim: FreeSwitchSimulator, *, limit_s: float = 30.0, triggers: Sequence[Trigger] = ()
) -> list[Frame]:
    """Write the capture's commands to the simulator as recorded; return every frame received."""
    recorded = recorded_frames(capture)
    anchors = _anchors(capture, recorded)
    reader, writer = await asyncio.open_connection("127.0.0.1", sim.port)
    loop = asyncio.get_running_loop()
    start = loop.time()
    received: list[Frame] = []
    pending = list(triggers)
    arrived = asyncio.Event()

    async def read() -> None:
        buffer = b""
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                return
            frames, buffer = split_stream(buffer + chunk)
            for raw in frames:
                frame = parse_frame((loop.time() - start) * sim.time_scale, raw)
                received.append(frame)
                for trigger in [t for t in pending if t[0] == frame.key]:
                    pending.remove(trigger)
                    loop.call_later(trigger[1] / sim.time_scale, trigger[2])
            arrived.set()

    reading = loop.create_task(read())
    try:
        async with asyncio.timeout(limit_s):
            for (_, text), anchor in zip(capture.sent, anchors, strict=True):
                if anchor is not None:
                    key, occurrence, delay = anchor
                    while sum(1 for f in received if f.key == key) <= occurrence:
                        arrived.clear()
                        await arrived.wait()
                    await asyncio.sleep(delay / sim.time_scale)
                writer.write(text.encode())
                await writer.drain()
            await reading
    finally:
        reading.cancel()
        writer.close()
    return received


# -- what is compared -------------------------------------------------------------------

COMPARED_HEADERS = (
    "Event-Name",
    "Event-Subclass",
    "Action",
    "Unique-ID",
    "Job-UUID",
    "Hangup-Cause",
    "variable_hangup_cause_q850",
    "Answer-State",
    "Channel-State",
    "Call-Direction",
    "variable_sip_term_status",
    "Beep-Status",
    "Conference-Size",
)


def signature(frame: Frame, member_ids: dict[str, int]) -> tuple[str, ...]:
    """The values a replay must reproduce.  Member-ID is a counter since the switch started,
    so it is compared by order of first appearance."""
    if not frame.is_event:
        return (
            frame.content_type,
            frame.outer.get("Reply-Text", ""),
            frame.outer.get("Job-UUID", ""),
            frame.body,
        )
    values = [frame.content_type, *(frame.get(h) for h in COMPARED_HEADERS), frame.body]
    member = frame.get("Member-ID")
    if member:
        values.append(f"member#{member_ids.setdefault(member, len(member_ids))}")
    return tuple(values)


# The recorded calls dial the lab's SIP peers by port (sipp ignores the user part): 2001 is
# the person on 5071, 2003 the busy peer on 5073...  This model gives each of those numbers the
# plan the shared ScriptedCallee gives the same kind of callee in its own numbering.
AGENT_BYE_S = 6.0  # lab/freeswitch/sip/agent_bye.xml: answers, BYE 6 s later
_CAPTURE_NUMBERS = {
    "2001": "2000",  # person (5071)
    "2002": "7000",  # machine, no beep (5072)
    "2003": "3000",  # busy (5073)
    "2004": "4000",  # no answer (5074)
    "2005": "5000",  # congestion (5075)
    "2006": "6000",  # invalid (5076)
    "2010": "9000",  # machine with beep (5095)
    "1001": "1000",  # agent softphone (5081)
    "2020": "1000",  # "stay" (5180): the agent scenario used as a customer that stays until BYE
}


class CapturePeers:
    """CalleeModel for the recorded sessions' numbers, with ScriptedCallee's timings."""

    def __init__(self) -> None:
        self.scripted = ScriptedCallee()

    def plan(self, number: str) -> CalleePlan:
        return self.scripted.plan(_CAPTURE_NUMBERS.get(number, number))

    def plan_dial(self, number: str, port: str) -> CalleePlan:
        """The later captures' peers at port + 100 share user parts: 5182 is agent_bye."""
        if port == "5182":
            return CalleePlan(CalleeKind.AGENT, self.scripted.refusal_s, AGENT_BYE_S)
        return self.plan(number)
