"""Log lines: one per event with campaign, attempt id and PBX uniqueid; numbers masked; JSON or text;
no timestamp of our own under systemd's journal, which gets the syslog priority instead."""

from __future__ import annotations

import io
import json
import logging
from types import SimpleNamespace

import pytest

from dialer.runtime.logs import (
    CampaignOf,
    configure,
    event_fields,
    mask_numbers,
    set_campaign_lookup,
    under_journal,
)
from dialer.settings import SettingsError, parse

ATTEMPT = "3f2a9c1e-5b7d-4e2f-9a1c-0d8e7f6a5b4c"


@pytest.fixture
def root_restored():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def emit(fmt: str, env: dict[str, str], *args: object, **extra: object) -> str:
    out = io.StringIO()
    configure(fmt, "INFO", env=env, stream=out)  # type: ignore[arg-type]
    logging.getLogger("dialer.runtime.engine").info(*args, extra=extra or None)  # type: ignore[arg-type]
    return out.getvalue()


def test_json_line_carries_campaign_attempt_and_uniqueid_with_the_number_masked(root_restored) -> None:
    text = emit("json", {}, "attempt %s campaign %s: dialing %s", ATTEMPT, "spring", "+33612345678")
    (line,) = text.splitlines()
    event = json.loads(line)
    assert event["message"] == f"attempt {ATTEMPT} campaign spring: dialing +33******678"
    assert event["campaign"] == "spring" and event["attempt"] == ATTEMPT
    assert event["uniqueid"] == ATTEMPT  # the customer's channel is named after the attempt
    assert event["level"] == "INFO" and "time" in event


def test_under_the_journal_no_timestamp_and_text_lines_carry_the_syslog_priority(root_restored) -> None:
    env = {"JOURNAL_STREAM": "8:12345"}
    assert under_journal(env) and under_journal({"INVOCATION_ID": "abc"}) and not under_journal({})
    text = emit("text", env, "campaign %s: PBX gone", "spring", uniqueid="1733.42", pbx="paris")
    assert text.startswith("<6>INFO dialer.runtime.engine: campaign spring: PBX gone")
    assert "uniqueid=1733.42" in text and "pbx=paris" in text and "campaign=" not in text
    (event,) = [json.loads(line) for line in emit("json", env, "x").splitlines()]
    assert "time" not in event
    outside = emit("text", {}, "ready")
    assert outside[:4].isdigit() and "INFO dialer.runtime.engine: ready" in outside


def test_a_traceback_stays_on_the_line_of_its_event_and_is_masked(root_restored) -> None:
    out = io.StringIO()
    configure("text", "INFO", env={}, stream=out)
    try:
        raise ValueError("no route to 0612345678")
    except ValueError:
        logging.getLogger("dialer").exception("attempt %s failed", ATTEMPT)
    (line,) = out.getvalue().splitlines()
    assert "ValueError: no route to *******678" in line and "0612345678" not in line


def test_masking_leaves_addresses_ids_and_dates_alone() -> None:
    assert mask_numbers("call +33 6 12 34 56 78 now") == "call +33 * ** ** *6 78 now"
    assert mask_numbers("from 0612345678.") == "from *******678."
    for kept in ("AMI at 192.168.100.200:5038", ATTEMPT, "on 2026-12-05", "port 5038", "took 120.5 s"):
        assert mask_numbers(kept) == kept


def test_fields_not_found_are_left_out() -> None:
    record = logging.LogRecord("x", logging.INFO, "", 0, "a campaign whose message is missing", (), None)
    assert event_fields(record, record.getMessage()) == {}


def test_logging_format_setting_is_checked() -> None:
    assert parse({"logging": {"format": "json"}}, env={}).log_format == "json"
    assert parse({}, env={}).log_format == "text"
    with pytest.raises(SettingsError, match=r"logging\.format: 'xml' is not one of text, json"):
        parse({"logging": {"format": "xml"}}, env={})


def test_a_line_naming_only_the_attempt_carries_its_campaign_even_after_the_call_ended(
    root_restored,
) -> None:
    call = SimpleNamespace(plan=SimpleNamespace(name="spring"))
    engine = SimpleNamespace(calls={ATTEMPT: call})
    set_campaign_lookup(CampaignOf(engine, keep=2))  # type: ignore[arg-type]
    try:
        dialing = json.loads(emit("json", {}, "attempt %s: dialing", ATTEMPT))
        engine.calls.clear()  # the call ended: the engine let it go
        ended = json.loads(emit("json", {}, "attempt %s: busy (cause 17)", ATTEMPT))
        assert dialing["campaign"] == ended["campaign"] == "spring"
        text = emit("text", {}, "attempt %s: busy (cause 17)", ATTEMPT)
        assert f"[campaign=spring uniqueid={ATTEMPT}]" in text
        other = "0b0e1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d"
        assert "campaign" not in json.loads(emit("json", {}, "attempt %s: busy", other))
    finally:
        set_campaign_lookup(None)
