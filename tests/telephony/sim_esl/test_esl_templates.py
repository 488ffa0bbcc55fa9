"""Every event template renders back to the recorded frame it was cut from, byte for byte."""

from __future__ import annotations

import json
from typing import Any

import pytest

from telephony.sim.esl_extract import OUTPUT, SOURCES, extract, select, source_values
from telephony.sim.esl_templates import (
    load_templates,
    render,
    serialize_event,
    time_resolver,
    url_encode,
)
from tests.conftest import FREESWITCH_CAPTURES

TEMPLATES = load_templates()
_CAPTURES: dict[str, dict[str, Any]] = {}


def _capture(scenario: str) -> dict[str, Any]:
    if scenario not in _CAPTURES:
        _CAPTURES[scenario] = json.loads((FREESWITCH_CAPTURES / f"{scenario}.json").read_text())
    return _CAPTURES[scenario]


@pytest.mark.parametrize("source", SOURCES, ids=[s[0] for s in SOURCES])
def test_template_renders_its_recorded_frame_byte_for_byte(
    source: tuple[str, str, str, str, str, int],
) -> None:
    name, scenario, uuid, event_name, detail, occurrence = source
    capture = _capture(scenario)
    event = select(capture, uuid, event_name, detail, occurrence)
    values, points = source_values(capture, uuid, event)
    template = TEMPLATES[name]
    headers = render(template, values, time_resolver(points))
    body = values["job_body"] if template.body is not None else None
    assert serialize_event(headers, body).decode() == event.raw


@pytest.mark.parametrize(
    ("scenario", "uuid"),
    [("congestion", "fs-cong"), ("invalid_number", "fs-invalid")],
)
def test_refusal_templates_render_the_other_refusals(scenario: str, uuid: str) -> None:
    """The busy call's templates give the 503 and 404 calls too: only values differ."""
    capture = _capture(scenario)
    for step, event_name in (
        ("create", "CHANNEL_CREATE"),
        ("hangup", "CHANNEL_HANGUP"),
        ("hangup_complete", "CHANNEL_HANGUP_COMPLETE"),
    ):
        event = select(capture, uuid, event_name, "", 0)
        values, points = source_values(capture, uuid, event)
        headers = render(TEMPLATES[f"refuse.{step}"], values, time_resolver(points))
        assert serialize_event(headers).decode() == event.raw


def test_cancelled_ringing_call_renders_from_the_no_answer_templates() -> None:
    capture = _capture("dialer_cancels_ringing")
    for step, event_name in (("hangup", "CHANNEL_HANGUP"), ("hangup_complete", "CHANNEL_HANGUP_COMPLETE")):
        event = select(capture, "fs-cancel", event_name, "", 0)
        values, points = source_values(capture, "fs-cancel", event)
        headers = render(TEMPLATES[f"ring.{step}"], values, time_resolver(points))
        assert serialize_event(headers).decode() == event.raw


def test_shipped_templates_are_the_ones_extracted_from_the_captures() -> None:
    """telephony/sim/data/esl/templates.json is up to date with the extractor."""
    assert json.loads(OUTPUT.read_text()) == json.loads(json.dumps(extract(FREESWITCH_CAPTURES)))


def test_url_encoding_keeps_what_freeswitch_keeps() -> None:
    assert url_encode("{a=b,c=d}sofia/dialer/2003@127.0.0.1:5073 &park()") == (
        "%7Ba%3Db,c%3Dd%7Dsofia/dialer/2003%40127.0.0.1%3A5073%20%26park()"
    )
    assert url_encode('"Dialer" <0100>') == "%22Dialer%22%20%3C0100%3E"
    assert url_encode("é") == "%C3%A9"
