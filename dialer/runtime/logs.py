"""The daemon's log lines: one line per event, text or JSON (``[logging] format``), numbers masked.

Each line carries what an operator searches by: the campaign, the attempt id
and the PBX's id of the call.  The customer's channel is named after the
attempt on both PBXs (Asterisk's ``ChannelId``, FreeSWITCH's
``origination_uuid``), so the PBX uniqueid of a call is its attempt id; a line
that names another one (``uniqueid=...``, or ``extra={"uniqueid": ...}``) keeps it.
Fields come from the record's ``extra`` or, for the many existing lines that
say "attempt X ... campaign Y", from the message itself.

Every phone number in a message or a traceback is masked (``+33******678``)
before the line is written, whoever logged it.

Under systemd (``JOURNAL_STREAM`` or ``INVOCATION_ID`` set) the journal stamps
each line itself: no timestamp of our own, and text lines start with the
syslog priority (``<3>``) so that ``journalctl -p err`` finds the errors.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal, TextIO

from telephony.base import mask_number

if TYPE_CHECKING:
    from dialer.runtime.engine import Engine

LogFormat = Literal["text", "json"]
FORMATS: tuple[LogFormat, ...] = ("text", "json")

# A phone number: 8 to 15 digits, maybe with a "+" and spaces or dashes between them, not part of a
# longer word (an attempt's UUID, a host name) nor of an address (127.0.0.1) or a path; a full stop
# after it ends a sentence.
_NUMBER = re.compile(r"(?<![\w.:/\-+])\+?\d(?:[ \-]?\d){7,14}(?![\w/\-]|[.:]\d)")
# In a message: "attempt <uuid>", "campaign <name>:" (or "campaign <name> refused", ...), "uniqueid=<id>".
_ATTEMPT = re.compile(r"\battempt[ =]([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\b")
_CAMPAIGN = re.compile(r"\bcampaign[ =]([\w.-]+)(?=[:,]| (?:refused|resumed|now|started|stopped|paused)\b)")
_UNIQUEID = re.compile(r"\buniqueid[ =]([\w.-]+)", re.IGNORECASE)
# Python's level -> syslog priority (journald reads a leading "<N>").
_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}


_DATE = re.compile(r"\d{4}-\d\d-\d\d$")


def _masked(match: re.Match[str]) -> str:
    found = match.group(0)
    return found if _DATE.match(found) else mask_number(found)


def mask_numbers(text: str) -> str:
    return _NUMBER.sub(_masked, text)


class CampaignOf:
    """The campaign of an attempt, for the lines that name only the attempt ("attempt X: busy").

    Read from the engine's live calls; remembered (a bounded number) for the lines logged as a
    call ends, when the engine may have let it go already.
    """

    def __init__(self, engine: Engine, keep: int = 20_000) -> None:
        self.engine = engine
        self.keep = keep
        self._seen: OrderedDict[str, str] = OrderedDict()

    def __call__(self, attempt_id: str) -> str | None:
        active = self.engine.calls.get(attempt_id)
        if active is None:
            return self._seen.get(attempt_id)
        name = active.plan.name
        if attempt_id not in self._seen:
            self._seen[attempt_id] = name
            if len(self._seen) > self.keep:
                self._seen.popitem(last=False)
        return name


_campaign_of: Callable[[str], str | None] | None = None


def set_campaign_lookup(lookup: Callable[[str], str | None] | None) -> None:
    """Let every line naming an attempt carry its campaign too (``dialer run`` gives its engine's)."""
    global _campaign_of
    _campaign_of = lookup


def under_journal(env: Mapping[str, str] | None = None) -> bool:
    """Whether systemd's journal takes our output (it stamps the time itself)."""
    env = os.environ if env is None else env
    return bool(env.get("JOURNAL_STREAM") or env.get("INVOCATION_ID"))


def event_fields(record: logging.LogRecord, message: str) -> dict[str, str]:
    """Campaign, attempt id and PBX uniqueid of the event, from ``extra`` or the message; the PBX's
    name from ``extra`` only."""
    fields: dict[str, str] = {}
    for key, pattern in (("campaign", _CAMPAIGN), ("attempt", _ATTEMPT), ("uniqueid", _UNIQUEID)):
        given = getattr(record, key, None)
        if given is not None:
            fields[key] = str(given)
            continue
        found = pattern.search(message)
        if found:
            fields[key] = found.group(1)
    pbx = getattr(record, "pbx", None)
    if pbx is not None:
        fields["pbx"] = str(pbx)
    if "attempt" in fields and "campaign" not in fields and _campaign_of is not None:
        campaign = _campaign_of(fields["attempt"])
        if campaign is not None:
            fields["campaign"] = campaign
    if "attempt" in fields and "uniqueid" not in fields:
        fields["uniqueid"] = fields["attempt"]  # the customer's channel is named after the attempt
    return fields


class _Base(logging.Formatter):
    def __init__(self, timestamps: bool) -> None:
        super().__init__()
        self.timestamps = timestamps

    def _message(self, record: logging.LogRecord) -> tuple[str, str]:
        message = mask_numbers(record.getMessage())
        trace = ""
        if record.exc_info:
            trace = mask_numbers(self.formatException(record.exc_info))
        elif record.exc_text:
            trace = mask_numbers(record.exc_text)
        return message, trace

    def _time(self, record: logging.LogRecord) -> str:
        return self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}"


class TextFormatter(_Base):
    """``LEVEL logger: message [campaign=... attempt=... uniqueid=...]`` on one line."""

    def __init__(self, timestamps: bool, priority_prefix: bool = False) -> None:
        super().__init__(timestamps)
        self.priority_prefix = priority_prefix

    def format(self, record: logging.LogRecord) -> str:
        message, trace = self._message(record)
        fields = event_fields(record, message)
        shown = " ".join(f"{k}={v}" for k, v in fields.items() if f"{k} {v}" not in message)
        line = f"{record.levelname} {record.name}: {message}" + (f" [{shown}]" if shown else "")
        if trace:  # still one line: the journal and grep keep a traceback with its event
            line += " | " + trace.replace("\n", " | ")
        if self.timestamps:
            line = f"{self._time(record)} {line}"
        if self.priority_prefix:
            line = f"<{_PRIORITY.get(record.levelno, 6)}>{line}"
        return line


class JsonFormatter(_Base):
    """One JSON object per line: level, logger, message, the event's fields, the traceback if any."""

    def format(self, record: logging.LogRecord) -> str:
        message, trace = self._message(record)
        out: dict[str, Any] = {}
        if self.timestamps:
            out["time"] = self._time(record)
        out.update(level=record.levelname, logger=record.name, message=message)
        out.update(event_fields(record, message))
        if trace:
            out["exception"] = trace
        return json.dumps(out, ensure_ascii=False)


def formatter(fmt: LogFormat, env: Mapping[str, str] | None = None) -> logging.Formatter:
    journal = under_journal(env)
    if fmt == "json":
        return JsonFormatter(timestamps=not journal)
    return TextFormatter(timestamps=not journal, priority_prefix=journal)


def configure(
    fmt: LogFormat, level: str, env: Mapping[str, str] | None = None, stream: TextIO | None = None
) -> logging.Handler | None:
    """Make the root logger write ``fmt`` lines at ``level`` to ``stream`` (stderr); called again on
    reload.  When something else already collects the logs (a handler of another kind on the root
    logger: a test runner, a program embedding the daemon) and no stream is named, it keeps them:
    only the level is set."""
    root = logging.getLogger()
    root.setLevel(level)
    ours = [h for h in root.handlers if type(h) is logging.StreamHandler]
    if stream is None and len(ours) < len(root.handlers):
        return None
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(formatter(fmt, env))
    for old in ours:
        root.removeHandler(old)
    root.addHandler(handler)
    return handler
