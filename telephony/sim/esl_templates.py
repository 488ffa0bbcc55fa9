"""Event templates of the ESL simulator: real FreeSWITCH 1.10.12 events with the per-call values cut out.

Each template is the ordered header list of one event taken from the
recorded sessions (``telephony/sim/data/esl/templates.json``, written by
``python -m telephony.sim.esl_extract``).  Values that change from call to
call are placeholders: ``{uuid}``, ``{dest}``, ``{T:answered:us}``,
``{D:billsec}``...  Rendering a template with the values of the recorded
call gives back the recorded frame byte for byte (the conformance tests
check that), so a rendered event has the header names, order, repeats and
URL-encoding of the real switch.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

# FreeSWITCH's switch_url_encode escapes these bytes (and any byte < 0x20 or >= 0x7f);
# "/", ",", "(", ")" and friends stay as they are, as the captures show.
_URL_UNSAFE = set('\r\n "#%&+:;<=>?@[\\]^`{|}')

ORIGVARS_MARKER = "@origvars"  # header name standing for the originate's {var=value} block
_PLACEHOLDER = re.compile(r"\{([A-Za-z0-9_:]+)\}")

Headers = list[tuple[str, str]]


def url_encode(value: str) -> str:
    out: list[str] = []
    for ch in value:
        if ch in _URL_UNSAFE or ord(ch) < 0x20 or ord(ch) >= 0x7F:
            out.extend(f"%{b:02X}" for b in ch.encode())
        else:
            out.append(ch)
    return "".join(out)


@dataclass(frozen=True, slots=True)
class Template:
    name: str
    event_name: str
    headers: tuple[tuple[str, str], ...]
    body: str | None  # BACKGROUND_JOB result placeholder; None for events without a body


def load_templates() -> dict[str, Template]:
    raw = resources.files("telephony.sim").joinpath("data/esl/templates.json").read_text()
    data: dict[str, Any] = json.loads(raw)
    out: dict[str, Template] = {}
    for name, spec in data["templates"].items():
        headers = tuple((str(k), str(v)) for k, v in spec["headers"])
        out[name] = Template(name, str(spec["event_name"]), headers, spec.get("body"))
    return out


# ---------------------------------------------------------------------------
# Time values.  A placeholder ``{T:<point>:<format>}`` is a point of the call's
# life in PBX seconds since the epoch; ``{D:<name>}`` a CDR duration.


def local_stamp(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


def gmt_stamp(epoch: float) -> str:
    return time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(epoch))


def time_value(us: int, fmt: str) -> str:
    """A time point (integer microseconds since the epoch, 0 = never) in one of FreeSWITCH's formats."""
    if not us:
        return "0"
    if fmt == "us":
        return str(us)
    if fmt == "s":
        return str(us // 1_000_000)
    if fmt == "local":
        return url_encode(local_stamp(us // 1_000_000))
    if fmt == "gmt":
        return url_encode(gmt_stamp(us // 1_000_000))
    raise KeyError(f"unknown time format {fmt!r}")


def durations(points: Mapping[str, int]) -> dict[str, str]:
    """The CDR variables of CHANNEL_HANGUP_COMPLETE, computed as switch_channel.c does.

    Seconds are differences of whole epoch seconds, milliseconds of truncated
    milliseconds: a 3.99 s wait that crosses a second boundary says 4.
    """
    start = points.get("created", 0)
    end = points.get("hangup", 0) or start
    answer = points.get("answered", 0)
    progress = points.get("progress", 0)

    def span(a: int, b: int) -> tuple[int, int, int]:
        if not a or not b:
            return 0, 0, 0
        return a // 1_000_000 - b // 1_000_000, a // 1000 - b // 1000, a - b

    spans = {
        "duration": (span(end, start), "duration", "mduration", "uduration"),
        "bill": (span(end, answer), "billsec", "billmsec", "billusec"),
        "progress": (span(progress, start), "progresssec", "progressmsec", "progressusec"),
        "answer": (span(answer, start), "answersec", "answermsec", "answerusec"),
        "wait": ((0, 0, 0), "waitsec", "waitmsec", "waitusec"),
        "progress_media": ((0, 0, 0), "progress_mediasec", "progress_mediamsec", "progress_mediausec"),
        "flow_bill": (
            span(end, start) if answer else (0, 0, 0),
            "flow_billsec",
            "flow_billmsec",
            "flow_billusec",
        ),
    }
    out: dict[str, str] = {}
    for (sec, msec, usec), n_sec, n_msec, n_usec in spans.values():
        out[n_sec] = str(sec)
        out[n_msec] = str(msec)
        out[n_usec] = str(usec)
    return out


def time_resolver(points: Mapping[str, int]) -> Callable[[str], str]:
    """Answers ``T:<point>:<format>`` and ``D:<name>`` placeholders from the call's time points."""
    cdr: dict[str, str] = {}

    def resolve(key: str) -> str:
        kind, _, rest = key.partition(":")
        if kind == "T":
            point, _, fmt = rest.partition(":")
            return time_value(points.get(point, 0), fmt)
        if kind == "D":
            if not cdr:
                cdr.update(durations(points))
            return cdr[rest]
        raise KeyError(f"no value for template placeholder {{{key}}}")

    return resolve


# ---------------------------------------------------------------------------


def render(template: Template, values: Mapping[str, str], resolve: Callable[[str], str]) -> Headers:
    """The template's headers with every placeholder filled.

    ``values`` holds plain placeholders (``uuid``, ``dest``...); ``resolve``
    answers the computed ones (``T:...``, ``D:...``) and the originate block.
    """

    def fill(match: re.Match[str]) -> str:
        key = match.group(1)
        if key in values:
            return values[key]
        return resolve(key)

    out: Headers = []
    for name, value in template.headers:
        if name == ORIGVARS_MARKER:
            block = values.get(ORIGVARS_MARKER, "")
            for line in block.split("\n") if block else []:
                k, _, v = line.partition("\t")
                out.append((k, v))
            continue
        out.append((name, _PLACEHOLDER.sub(fill, value) if "{" in value else value))
    return out


def serialize_event(headers: Sequence[tuple[str, str]], body: str | None = None) -> bytes:
    """A ``text/event-plain`` frame as mod_event_socket writes it."""
    lines = [f"{k}: {v}\n" for k, v in headers]
    if body is not None:
        encoded_body = body.encode()
        lines.append(f"Content-Length: {len(encoded_body)}\n\n")
        text = "".join(lines).encode() + encoded_body
    else:
        text = "".join(lines).encode() + b"\n"
    return b"Content-Length: %d\nContent-Type: text/event-plain\n\n" % len(text) + text


def command_reply(reply_text: str, extra: Sequence[tuple[str, str]] = ()) -> bytes:
    lines = ["Content-Type: command/reply\n", f"Reply-Text: {reply_text}\n"]
    lines.extend(f"{k}: {v}\n" for k, v in extra)
    return ("".join(lines) + "\n").encode()


def api_response(body: str) -> bytes:
    data = body.encode()
    return b"Content-Type: api/response\nContent-Length: %d\n\n" % len(data) + data


AUTH_REQUEST = b"Content-Type: auth/request\n\n"
_GOODBYE = b"Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"
DISCONNECT_NOTICE = b"Content-Type: text/disconnect-notice\nContent-Length: %d\n\n" % len(_GOODBYE) + _GOODBYE
_SHUTTING_DOWN = b"The system is being shut down.\n"
# What every session gets when the switch shuts down (fsctl shutdown [restart]): no goodbye text.
SHUTDOWN_NOTICE = (
    b"Content-Type: text/disconnect-notice\nContent-Length: %d\n\n" % len(_SHUTTING_DOWN) + _SHUTTING_DOWN
)
