"""The ESL codec against every recorded FreeSWITCH session, in any chunking."""

from __future__ import annotations

from urllib.parse import unquote

import pytest

from telephony.freeswitch.protocol import (
    CT_API_RESPONSE,
    CT_COMMAND_REPLY,
    CT_DISCONNECT,
    CT_EVENT_PLAIN,
    EslCommandError,
    EslEvent,
    EslParser,
    encode_api,
    encode_auth,
    encode_bgapi,
    encode_event_subscription,
    encode_exit,
    encode_sendmsg_execute,
)
from tests.captures import Capture, freeswitch_capture_paths, load, load_freeswitch


def _stream(capture: Capture) -> bytes:
    return "".join(raw for _, raw in capture.received).encode()


def _reference_frame(raw: str) -> tuple[dict[str, str], bytes]:
    """Independent split of one recorded entry: outer headers, body."""
    head, _, rest = raw.partition("\n\n")
    headers: dict[str, str] = {}
    for line in head.split("\n"):
        k, _, v = line.partition(": ")
        headers.setdefault(k, v)
    return headers, rest.encode()


def _feed_in_chunks(data: bytes, size: int) -> tuple[list, EslParser]:
    parser = EslParser()
    frames = []
    for i in range(0, len(data), size):
        frames.extend(parser.feed(data[i : i + size]))
    return frames, parser


ALL = freeswitch_capture_paths()


@pytest.mark.parametrize("chunk", [1, 7, 64 * 1024])
def test_every_capture_rejoined_gives_exactly_the_recorded_frames(chunk: int) -> None:
    received = [raw for p in ALL for _, raw in load(p).received]
    data = "".join(received).encode()
    frames, parser = _feed_in_chunks(data, chunk)
    assert parser.error_count == 0
    assert parser.buffered == 0
    assert len(frames) == len(received)
    for frame, raw in zip(frames, received, strict=True):
        headers, body = _reference_frame(raw)
        assert frame.headers == headers
        assert frame.body == body


def test_event_headers_are_url_decoded_and_first_duplicate_wins() -> None:
    capture = load_freeswitch("busy")
    frames, _ = _feed_in_chunks(_stream(capture), 4096)
    events = [f.event for f in frames if f.is_event]
    complete = next(e for e in events if e.name == "CHANNEL_HANGUP_COMPLETE")
    assert complete["Hangup-Cause"] == "USER_BUSY"
    assert complete.get("Channel-Name") == "sofia/dialer/2003@127.0.0.1:5073"
    assert complete.headers["Channel-Name"] == "sofia/dialer/2003@127.0.0.1:5073"
    assert complete.get("variable_hangup_cause_q850") == "17"
    assert complete.get("No-Such-Header") is None
    assert "Unique-ID" in complete
    # the lazy lookup and the full decoding agree on every header
    for name, value in complete.headers.items():
        assert complete.get(name) == value


def test_full_decoding_matches_an_independent_decoder_on_every_event() -> None:
    for path in ALL:
        for _, raw in load(path).received:
            headers, body = _reference_frame(raw)
            if headers.get("Content-Type") != CT_EVENT_PLAIN:
                continue
            block = body.decode().partition("\n\n")[0]
            expected: dict[str, str] = {}
            for line in block.split("\n"):
                k, _, v = line.partition(": ")
                expected.setdefault(k, unquote(v))
            event = EslEvent(body.decode())
            assert event.headers == expected, path.stem


def test_event_subclass_is_decoded() -> None:
    frames, _ = _feed_in_chunks(_stream(load_freeswitch("answering_machine_beep")), 999)
    subclasses = {f.event.subclass for f in frames if f.is_event and f.event.name == "CUSTOM"}
    assert "avmd::beep" in subclasses
    assert "avmd::start" in subclasses


def test_background_job_body_is_split_by_its_own_content_length() -> None:
    frames, _ = _feed_in_chunks(_stream(load_freeswitch("busy")), 64)
    jobs = [f.event for f in frames if f.is_event and f.event.name == "BACKGROUND_JOB"]
    assert len(jobs) == 1
    assert jobs[0]["Job-UUID"] == "fs-busy-job"
    assert jobs[0].body == "-ERR USER_BUSY\n"
    assert jobs[0].get("Job-Command-Arg", "").startswith("{origination_uuid=fs-busy,")


def test_replies_responses_and_disconnect_notice() -> None:
    frames, _ = _feed_in_chunks(_stream(load_freeswitch("avmd_stopped_by_api")), 1)
    types = [f.content_type for f in frames]
    assert types[0] == "auth/request"
    assert types[-1] == CT_DISCONNECT
    replies = [f for f in frames if f.content_type == CT_COMMAND_REPLY]
    assert replies[0].reply_text == "+OK accepted" and replies[0].ok
    assert replies[2].headers["Job-UUID"] == "fs-avmd-api-job"
    api = [f for f in frames if f.content_type == CT_API_RESPONSE]
    assert api[0].reply_text.startswith("+OK\n [fs-avmd-api]")


def test_malformed_frame_is_counted_and_the_stream_survives() -> None:
    good = _stream(load_freeswitch("busy"))
    garbage = b"this is not a header line\nnor this\n\n"
    bad_length = b"Content-Type: api/response\nContent-Length: twelve\n\n"
    no_type = b"Reply-Text: +OK\n\n"
    parser = EslParser()
    frames = parser.feed(garbage + bad_length + no_type + good[:5000])
    frames += parser.feed(good[5000:])
    assert parser.error_count == 3
    assert len(parser.errors) == 3
    assert len(frames) == len(load_freeswitch("busy").received)


def test_runaway_header_block_is_dropped_and_counted() -> None:
    parser = EslParser()
    assert parser.feed(b"x" * 70_000) == []
    assert parser.error_count == 1
    frames = parser.feed(b"\n\nContent-Type: command/reply\nReply-Text: +OK\n\n")
    assert [f.reply_text for f in frames] == ["+OK"]


def test_oversized_content_length_is_refused() -> None:
    parser = EslParser()
    frames = parser.feed(b"Content-Type: api/response\nContent-Length: 999999999\n\n")
    assert frames == []
    assert parser.error_count == 1


def test_encoders_write_what_freeswitch_was_sent() -> None:
    sent = [s for _, s in load_freeswitch("answering_machine").sent]
    assert encode_auth("ClueCon").decode() == sent[0]
    events = sent[1].removeprefix("event plain ").split()
    assert encode_event_subscription(events).decode() == sent[1]
    cmd, job = sent[2].removeprefix("bgapi ").rstrip("\n").split("\nJob-UUID: ")
    assert encode_bgapi(cmd, job).decode() == sent[2]
    assert encode_sendmsg_execute("fs-machine", "avmd_stop").decode() == sent[3]
    assert encode_exit().decode() == sent[-1]
    assert encode_api("uuid_kill fs-cancel") == b"api uuid_kill fs-cancel\n\n"


@pytest.mark.parametrize(
    "call",
    [
        lambda: encode_auth("pw\napi shutdown"),
        lambda: encode_api("uuid_kill x\n\napi fsctl shutdown"),
        lambda: encode_bgapi("originate x", "job\nEvent-Name: x"),
        lambda: encode_bgapi("originate x\r", "job"),
        lambda: encode_sendmsg_execute("u u", "playback"),
        lambda: encode_sendmsg_execute("u", "playback", "file\nexecute-app-name: system"),
        lambda: encode_event_subscription(["CHANNEL_ANSWER\nexit"]),
        lambda: encode_event_subscription([]),
    ],
)
def test_newlines_and_bad_words_in_arguments_are_refused(call) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(EslCommandError):
        call()


def test_header_lookalikes_in_a_job_body_are_not_headers() -> None:
    body = "Event-Name: BACKGROUND_JOB\nJob-UUID: j1\nContent-Length: 30\n\nUnique-ID: x\nHangup-Cause: y\n\n"
    event = EslEvent(body)
    assert event.get("Event-Name") == "BACKGROUND_JOB"  # the first line
    assert event.get("Unique-ID") is None
    assert event.get("Hangup-Cause") is None
    assert event.body == "Unique-ID: x\nHangup-Cause: y\n\n"
    assert "Unique-ID" not in event.headers
