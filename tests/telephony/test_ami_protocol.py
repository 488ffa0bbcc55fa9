"""The sans-IO AMI codec against every recorded Asterisk session."""

from __future__ import annotations

import pytest

from telephony.asterisk.protocol import AmiParser, encode, parse_block
from tests.captures import asterisk_capture_paths, asterisk_stream, load


@pytest.mark.parametrize("path", asterisk_capture_paths(), ids=lambda p: p.stem)
@pytest.mark.parametrize("chunk", [1, 7, 4096])
def test_stream_parses_to_the_recorded_messages_whatever_the_chunking(path, chunk):
    capture = load(path)
    stream = asterisk_stream(capture)
    parser = AmiParser()
    messages = []
    for i in range(0, len(stream), chunk):
        messages.extend(parser.feed(stream[i : i + chunk]))
    expected = [parse_block(raw) for _, raw in capture.received if not raw.startswith("Asterisk")]
    assert parser.banner == "Asterisk Call Manager/11.0.0"
    assert messages == expected
    assert parser.error_count == 0


def test_repeated_headers_keep_every_value_in_order():
    msg = parse_block("Action: Originate\r\nVariable: A=1\r\nVariable: B=2\r\nVariable: C=3")
    assert msg["Variable"] == "A=1"
    assert msg.getall("Variable") == ["A=1", "B=2", "C=3"]
    assert msg.getall("Action") == ["Originate"]
    assert msg.getall("Missing") == []


def test_malformed_block_is_counted_and_the_stream_survives():
    parser = AmiParser(expect_banner=False)
    out = parser.feed(b"Event: A\r\n\r\nthis is not ami\r\n\r\nEvent: B\r\nX: y\r\n\r\n")
    assert [m.event for m in out] == ["A", "B"]
    assert parser.error_count == 1
    assert "not ami" in parser.errors[0]


def test_empty_value_and_value_with_colons():
    msg = parse_block("AccountCode: \r\nAppData: DialerAMD,Attempt: x,Status: HUMAN")
    assert msg["AccountCode"] == ""
    assert msg["AppData"] == "DialerAMD,Attempt: x,Status: HUMAN"


def test_encode_repeats_keys_and_refuses_header_injection():
    data = encode([("Action", "Originate"), ("Variable", "A=1"), ("Variable", "B=2")])
    assert data == b"Action: Originate\r\nVariable: A=1\r\nVariable: B=2\r\n\r\n"
    with pytest.raises(ValueError, match="line break"):
        encode({"Action": "Ping\r\nAction: Logoff"})
