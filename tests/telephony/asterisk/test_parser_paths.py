"""The AMI parser's fast path gives the same messages as the general rule, however bytes arrive."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from telephony.asterisk.protocol import AmiParser, parse_block
from tests.captures import asterisk_stream, load_asterisk

ODD_LINES = "Action: Odd\r\nKey:value\r\nEmpty:\r\nDouble:: x\r\nA:b: c\r\nSpaced:  two\r\nAction: again"


def test_unusual_header_shapes_follow_the_first_colon_rule() -> None:
    msg = parse_block(ODD_LINES)
    assert dict(msg) == {
        "Action": "Odd",
        "Key": "value",
        "Empty": "",
        "Double": ": x",
        "A": "b: c",
        "Spaced": " two",
    }
    assert msg.getall("Action") == ["Odd", "again"]


STREAM = asterisk_stream(load_asterisk("burst_of_twenty"))
EXTRA = b"\r\n" + ODD_LINES.encode() + b"\r\n\r\nno colon here\r\n\r\n\r\n\r\nEvent: Last\r\n\r\n"


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=len(STREAM) + len(EXTRA)), max_size=30))
def test_any_chunking_gives_the_same_messages_and_errors(cuts: list[int]) -> None:
    data = STREAM + EXTRA
    whole = AmiParser()
    expected = whole.feed(data)
    parser = AmiParser()
    got = []
    last = 0
    for cut in sorted(set(cuts)):
        got.extend(parser.feed(data[last:cut]))
        last = cut
    got.extend(parser.feed(data[last:]))
    assert got == expected
    assert (parser.error_count, parser.banner) == (whole.error_count, whole.banner) == (1, whole.banner)
    assert expected[-1] == {"Event": "Last"}
    assert expected[-2]["Double"] == ": x"
