"""The client-side ESL parser (telephony.freeswitch.protocol) reads the simulator's byte stream."""

from __future__ import annotations

import asyncio

from telephony.freeswitch.protocol import EslFrame, EslParser
from telephony.sim.freeswitch import FreeSwitchSimulator
from tests.captures import load_freeswitch
from tests.telephony.sim_esl.replay import CapturePeers


async def _raw_session(scenario: str, chunk: int) -> tuple[bytes, list[EslFrame]]:
    """Send a recorded session's auth, subscription and originates, let the calls end by
    themselves, exit, and feed the simulator's bytes to the parser in ``chunk``-byte pieces,
    as a socket may cut them."""
    capture = load_freeswitch(scenario)
    sim = FreeSwitchSimulator(CapturePeers(), time_scale=20.0)
    await sim.start()
    parser = EslParser()
    frames: list[EslFrame] = []
    stream = bytearray()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", sim.port)
        for _, text in capture.sent:
            if text.startswith(("auth ", "event ", "bgapi ")):
                writer.write(text.encode())
        await writer.drain()
        async with asyncio.timeout(10):
            while not any(f.is_event and f.event.name == "CHANNEL_HANGUP_COMPLETE" for f in frames):
                data = await reader.read(65536)
                assert data, "simulator closed the connection"
                stream += data
                for i in range(0, len(data), chunk):
                    frames.extend(parser.feed(data[i : i + chunk]))
        writer.write(b"exit\n\n")
        async with asyncio.timeout(10):
            while data := await reader.read(65536):
                stream += data
                frames.extend(parser.feed(data))
        writer.close()
    finally:
        await sim.stop()
    assert parser.error_count == 0, parser.errors
    assert parser.buffered == 0
    return bytes(stream), frames


async def test_parser_reads_every_frame_of_a_refused_call() -> None:
    _, frames = await _raw_session("busy", chunk=7)
    kinds = [f.content_type for f in frames]
    assert kinds[0] == "auth/request"
    assert kinds[-1] == "text/disconnect-notice"
    events = [f.event for f in frames if f.is_event]
    assert [e.name for e in events] == [
        "CHANNEL_CREATE",
        "CHANNEL_HANGUP",
        "CHANNEL_HANGUP_COMPLETE",
        "BACKGROUND_JOB",
    ]
    job = events[-1]
    assert job.get("Job-UUID") == "fs-busy-job"
    assert job.body.strip() == "-ERR USER_BUSY"
    assert events[2].get("Hangup-Cause") == "USER_BUSY"
    assert events[2].get("variable_sip_term_status") == "486"


async def test_parser_reads_avmd_copies_and_decoded_subclasses() -> None:
    _, frames = await _raw_session("answering_machine_beep", chunk=4096)
    events = [f.event for f in frames if f.is_event]
    beeps = [e for e in events if e.subclass == "avmd::beep"]
    assert len(beeps) == 2
    assert beeps[0].get("Event-Sequence") == beeps[1].get("Event-Sequence")
    assert beeps[1].unique_id == "fs-machine-beep"
    assert beeps[0].get("Frequency") == "1000.000000"
