"""Cut the ESL simulator's event templates out of the recorded FreeSWITCH sessions.

    python -m telephony.sim.esl_extract ../shared/freeswitch-transcripts

writes ``telephony/sim/data/esl/templates.json``.  Every template is one real
event of one recorded call; the values that belong to that call (uuid,
dialled number, SIP tags, times, CDR durations...) become placeholders, by
header name first and then by the call's own tokens.  ``source_values``
gives back the values of the recorded call, so a test can render a template
and compare it with the capture byte for byte.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from telephony.sim.esl_templates import ORIGVARS_MARKER, url_encode

OUTPUT = Path(__file__).parent / "data" / "esl" / "templates.json"

# (template name, capture, origination uuid or "" for conference-level events, event, detail, occurrence)
# detail: Event-Subclass for CUSTOM avmd events, Action for conference::maintenance.
SOURCES: list[tuple[str, str, str, str, str, int]] = [
    ("bgjob", "busy", "fs-busy", "BACKGROUND_JOB", "", 0),
    ("refuse.create", "busy", "fs-busy", "CHANNEL_CREATE", "", 0),
    ("refuse.hangup", "busy", "fs-busy", "CHANNEL_HANGUP", "", 0),
    ("refuse.hangup_complete", "busy", "fs-busy", "CHANNEL_HANGUP_COMPLETE", "", 0),
    ("ring.create", "no_answer", "fs-noans", "CHANNEL_CREATE", "", 0),
    ("ring.progress", "no_answer", "fs-noans", "CHANNEL_PROGRESS", "", 0),
    ("ring.hangup", "no_answer", "fs-noans", "CHANNEL_HANGUP", "", 0),
    ("ring.hangup_complete", "no_answer", "fs-noans", "CHANNEL_HANGUP_COMPLETE", "", 0),
    ("park.create", "answered_person", "fs-person", "CHANNEL_CREATE", "", 0),
    ("park.progress", "answered_person", "fs-person", "CHANNEL_PROGRESS", "", 0),
    ("park.answer", "answered_person", "fs-person", "CHANNEL_ANSWER", "", 0),
    ("park.park", "answered_person", "fs-person", "CHANNEL_PARK", "", 0),
    ("park.hangup", "answered_person", "fs-person", "CHANNEL_HANGUP", "", 0),
    ("park.exec_park", "answered_person", "fs-person", "CHANNEL_EXECUTE_COMPLETE", "", 0),
    ("park.hangup_complete", "answered_person", "fs-person", "CHANNEL_HANGUP_COMPLETE", "", 0),
    ("amd.create", "burst_of_twenty", "fs-burst-5", "CHANNEL_CREATE", "", 0),
    ("amd.progress", "burst_of_twenty", "fs-burst-5", "CHANNEL_PROGRESS", "", 0),
    ("amd.answer", "burst_of_twenty", "fs-burst-5", "CHANNEL_ANSWER", "", 0),
    ("amd.avmd_start_bare", "burst_of_twenty", "fs-burst-5", "CUSTOM", "avmd::start", 0),
    ("amd.exec_avmd_start", "burst_of_twenty", "fs-burst-5", "CHANNEL_EXECUTE_COMPLETE", "", 0),
    ("amd.park", "burst_of_twenty", "fs-burst-5", "CHANNEL_PARK", "", 0),
    ("amd.avmd_start_copy", "burst_of_twenty", "fs-burst-5", "CUSTOM", "avmd::start", 1),
    ("amd.hangup", "burst_of_twenty", "fs-burst-5", "CHANNEL_HANGUP", "", 0),
    ("amd.exec_park", "burst_of_twenty", "fs-burst-5", "CHANNEL_EXECUTE_COMPLETE", "", 1),
    ("amd.hangup_complete", "burst_of_twenty", "fs-burst-5", "CHANNEL_HANGUP_COMPLETE", "", 0),
    ("beep.avmd_beep_bare", "burst_of_twenty", "fs-burst-9", "CUSTOM", "avmd::beep", 0),
    ("beep.avmd_beep_copy", "burst_of_twenty", "fs-burst-9", "CUSTOM", "avmd::beep", 1),
    ("beep.hangup", "burst_of_twenty", "fs-burst-9", "CHANNEL_HANGUP", "", 0),
    ("beep.exec_park", "burst_of_twenty", "fs-burst-9", "CHANNEL_EXECUTE_COMPLETE", "", 1),
    ("beep.hangup_complete", "burst_of_twenty", "fs-burst-9", "CHANNEL_HANGUP_COMPLETE", "", 0),
    ("stop.avmd_stop_bare", "answering_machine", "fs-machine", "CUSTOM", "avmd::stop", 0),
    ("stop.exec_avmd_stop", "answering_machine", "fs-machine", "CHANNEL_EXECUTE_COMPLETE", "", 1),
    ("stop.avmd_stop_copy", "answering_machine", "fs-machine", "CUSTOM", "avmd::stop", 1),
    ("stop.hangup", "answering_machine", "fs-machine", "CHANNEL_HANGUP", "", 0),
    ("stop.exec_park", "answering_machine", "fs-machine", "CHANNEL_EXECUTE_COMPLETE", "", 2),
    ("stop.hangup_complete", "answering_machine", "fs-machine", "CHANNEL_HANGUP_COMPLETE", "", 0),
    ("apistop.avmd_stop_bare", "avmd_stopped_by_api", "fs-avmd-api", "CUSTOM", "avmd::stop", 0),
    ("apistop.avmd_stop_copy", "avmd_stopped_by_api", "fs-avmd-api", "CUSTOM", "avmd::stop", 1),
    ("agent.create", "agent_and_customer_connected", "fs-agent-1001", "CHANNEL_CREATE", "", 0),
    ("agent.progress", "agent_and_customer_connected", "fs-agent-1001", "CHANNEL_PROGRESS", "", 0),
    ("agent.answer", "agent_and_customer_connected", "fs-agent-1001", "CHANNEL_ANSWER", "", 0),
    ("agent.add_member", "agent_and_customer_connected", "fs-agent-1001", "CUSTOM", "add-member", 0),
    ("agent.floor_change", "agent_and_customer_connected", "fs-agent-1001", "CUSTOM", "floor-change", 0),
    ("agent.hangup", "agent_and_customer_connected", "fs-agent-1001", "CHANNEL_HANGUP", "", 0),
    ("agent.del_member", "agent_and_customer_connected", "fs-agent-1001", "CUSTOM", "del-member", 0),
    (
        "agent.exec_conference",
        "agent_and_customer_connected",
        "fs-agent-1001",
        "CHANNEL_EXECUTE_COMPLETE",
        "",
        0,
    ),
    (
        "agent.hangup_complete",
        "agent_and_customer_connected",
        "fs-agent-1001",
        "CHANNEL_HANGUP_COMPLETE",
        "",
        0,
    ),
    ("conf.create", "agent_and_customer_connected", "", "CUSTOM", "conference-create", 0),
    ("conf.floor_none", "agent_and_customer_connected", "", "CUSTOM", "floor-change", 0),
    ("conf.destroy", "agent_and_customer_connected", "", "CUSTOM", "conference-destroy", 0),
    ("cust.create", "agent_and_customer_connected", "fs-connect", "CHANNEL_CREATE", "", 0),
    ("cust.progress", "agent_and_customer_connected", "fs-connect", "CHANNEL_PROGRESS", "", 0),
    ("cust.answer", "agent_and_customer_connected", "fs-connect", "CHANNEL_ANSWER", "", 0),
    ("cust.park", "agent_and_customer_connected", "fs-connect", "CHANNEL_PARK", "", 0),
    ("cust.exec_park", "agent_and_customer_connected", "fs-connect", "CHANNEL_EXECUTE_COMPLETE", "", 0),
    ("cust.add_member", "agent_and_customer_connected", "fs-connect", "CUSTOM", "add-member", 0),
    ("cust.start_talking", "agent_and_customer_connected", "fs-connect", "CUSTOM", "start-talking", 0),
    ("cust.floor_change", "agent_and_customer_connected", "fs-connect", "CUSTOM", "floor-change", 0),
    ("cust.stop_talking", "agent_and_customer_connected", "fs-connect", "CUSTOM", "stop-talking", 0),
    ("cust.hangup", "agent_and_customer_connected", "fs-connect", "CHANNEL_HANGUP", "", 0),
    ("cust.del_member", "agent_and_customer_connected", "fs-connect", "CUSTOM", "del-member", 0),
    ("cust.exec_conference", "agent_and_customer_connected", "fs-connect", "CHANNEL_EXECUTE_COMPLETE", "", 1),
    ("cust.hangup_complete", "agent_and_customer_connected", "fs-connect", "CHANNEL_HANGUP_COMPLETE", "", 0),
    # the shipped dialplan (config/freeswitch/dialplan/dialer.xml): agent_<id> answers before
    # the conference, and a kick ends the customer's conference
    ("agent.exec_answer", "transfer_gone_channel", "agent-1001-gone", "CHANNEL_EXECUTE_COMPLETE", "", 0),
    ("shipped_agent.add_member", "transfer_gone_channel", "agent-1001-gone", "CUSTOM", "add-member", 0),
    ("cust.exec_answer", "beep_after_connect", "fs-beep-conn", "CHANNEL_EXECUTE_COMPLETE", "", 2),
    ("cust.kick_member", "beep_after_connect", "fs-beep-conn", "CUSTOM", "kick-member", 0),
    ("kicked.del_member", "beep_after_connect", "fs-beep-conn", "CUSTOM", "del-member", 0),
    ("kicked.exec_conference", "beep_after_connect", "fs-beep-conn", "CHANNEL_EXECUTE_COMPLETE", "", 3),
    ("kicked.hangup", "beep_after_connect", "fs-beep-conn", "CHANNEL_HANGUP", "", 0),
    ("kicked.hangup_complete", "beep_after_connect", "fs-beep-conn", "CHANNEL_HANGUP_COMPLETE", "", 0),
]

# Header name -> placeholder, whatever the value.  Time points: created, progress,
# answered, hangup, profile (when the current caller profile was made), event, avmd.
_BY_NAME: dict[str, str] = {
    "Core-UUID": "{core_uuid}",
    "Event-Sequence": "{seq}",
    "Event-Date-Local": "{T:event:local}",
    "Event-Date-GMT": "{T:event:gmt}",
    "Event-Date-Timestamp": "{T:event:us}",
    "Caller-Profile-Created-Time": "{T:profile:us}",
    "Caller-Channel-Created-Time": "{T:created:us}",
    "Caller-Channel-Answered-Time": "{T:answered:us}",
    "Caller-Channel-Progress-Time": "{T:progress:us}",
    "Caller-Channel-Hangup-Time": "{T:hangup:us}",
    "Start-time": "{T:avmd:us}",
    "Total-time": "{avmd_total_time}",
    "Detection-time": "{avmd_detect_us}",
    "variable_avmd_total_time": "%5B{avmd_detect_ms}%5D",
    "Job-UUID": "{job}",
    "Job-Command-Arg": "{job_arg}",
    "variable_session_id": "{session_id}",
    "Hangup-Cause": "{cause}",
    "variable_hangup_cause": "{cause}",
    "variable_hangup_cause_q850": "{q850}",
    "variable_sip_term_cause": "{q850}",
    "variable_sip_term_status": "{sip_status}",
    "variable_sip_invite_failure_status": "{sip_status}",
    "variable_sip_invite_failure_phrase": "{sip_phrase}",
    "variable_proto_specific_hangup_cause": "sip%3A{sip_status}",
    "Application-UUID": "{app_uuid}",
    "Member-ID": "{member_id}",
    "variable_conference_member_id": "{member_id}",
    "Conference-Size": "{conf_size}",
    "Conference-Unique-ID": "{conf_uuid}",
    "variable_conference_uuid": "{conf_uuid}",
    "variable_app_session_uuid": "{conf_uuid}",
    "Old-ID": "{old_id}",
    "New-ID": "{new_id}",
    "variable_sip_call_id": "{sip_call_id}",
    "variable_sip_from_tag": "{sip_from_tag}",
    "variable_sip_to_tag": "{sip_to_tag}",
    "variable_sip_cseq": "{sip_cseq}",
    "variable_rtp_use_ssrc": "{rtp_ssrc}",
    "variable_local_media_port": "{local_media_port}",
    "variable_remote_media_port": "{remote_media_port}",
}
# CDR variables: variable_<stem>_{stamp,epoch,uepoch} -> point
_CDR_POINTS = {
    "start": "created",
    "profile_start": "profile",
    "answer": "answered",
    "progress": "progress",
    "end": "hangup",
}
_CDR_FORMATS = {"stamp": "local", "epoch": "s", "uepoch": "us"}
_DURATION_NAMES = {
    f"variable_{n}"
    for stem in ("bill", "progress", "answer", "wait", "progress_media", "flow_bill")
    for n in (f"{stem}sec", f"{stem}msec", f"{stem}usec")
} | {"variable_duration", "variable_mduration", "variable_uduration"}
_TRANSFER_HEADERS = {"Caller-Transfer-Source", "variable_transfer_history", "variable_transfer_source"}


def _parse_block(text: str) -> list[tuple[str, str]]:
    out = []
    for line in text.split("\n"):
        if line:
            k, _, v = line.partition(": ")
            out.append((k, v))
    return out


@dataclass
class RecordedEvent:
    at: float
    headers: list[tuple[str, str]]
    body: str | None
    raw: str

    def get(self, name: str) -> str:
        for k, v in self.headers:
            if k == name:
                return v
        return ""


def recorded_events(capture: dict[str, Any]) -> Iterator[RecordedEvent]:
    for at, raw in capture["received"]:
        outer, _, rest = raw.partition("\n\n")
        if "Content-Type: text/event-plain" not in outer:
            continue
        inner, _, body = rest.partition("\n\n")
        headers = _parse_block(inner)
        has_body = any(k == "Content-Length" for k, _ in headers)
        if has_body:
            headers = [(k, v) for k, v in headers if k != "Content-Length"]
        yield RecordedEvent(float(at), headers, body if has_body else None, raw)


@dataclass
class Originate:
    uuid: str
    job: str
    variables: list[tuple[str, str]]
    profile: str
    user: str
    host: str
    port: str
    app: str
    arg: str

    @property
    def dest(self) -> str:
        return f"{self.user}@{self.host}:{self.port}" if self.port else f"{self.user}@{self.host}"


_ORIGINATE = re.compile(r"^bgapi originate (\{(?P<vars>[^}]*)\})?(?P<dial>\S+) (?P<app>.+)$")


def parse_originate(command: str) -> Originate:
    first, *rest = command.split("\n")
    m = _ORIGINATE.match(first)
    if not m:
        raise ValueError(f"not an originate: {first!r}")
    variables = [tuple(p.split("=", 1)) for p in (m.group("vars") or "").split(",") if p]
    pairs = [(k, v) for k, v in variables]
    job = next(line.split(": ", 1)[1] for line in rest if line.lower().startswith("job-uuid:"))
    _, profile, target = m.group("dial").split("/", 2)
    user, _, hostport = target.partition("@")
    host, _, port = hostport.partition(":")
    uuid = dict(pairs).get("origination_uuid", "")
    return Originate(
        uuid, job, pairs, profile, user, host, port, m.group("app"), first[len("bgapi originate ") :]
    )


@dataclass
class SourceCall:
    """What one recorded call's values were: the inverse of rendering."""

    originate: Originate | None
    tokens: list[tuple[re.Pattern[str], str]] = field(default_factory=list)
    values: dict[str, str] = field(default_factory=dict)


def _bounded(literal: str) -> re.Pattern[str]:
    # a %XX escape before the token is a boundary too ("%22Dialer%22", "%3Aagent_1001")
    return re.compile(r"(?:(?<=%[0-9A-F]{2})|(?<![0-9A-Za-z]))" + re.escape(literal) + r"(?![0-9A-Za-z])")


def _numeric(literal: str) -> re.Pattern[str]:
    # "audio%2020414%20RTP": the media port right after an escaped space
    return re.compile(r"(?:(?<=%[0-9A-F]{2})|(?<![0-9]))" + re.escape(literal) + r"(?![0-9])")


def source_call(capture: dict[str, Any], uuid: str) -> SourceCall:
    originate = None
    for _, text in capture["sent"]:
        if text.startswith("bgapi originate") and f"origination_uuid={uuid}," in text + ",":
            originate = parse_originate(text)
    call = SourceCall(originate)
    events = [e for e in recorded_events(capture) if uuid and e.get("Unique-ID") == uuid]
    conf = [e for e in recorded_events(capture) if e.get("Conference-Name")]

    def first(name: str) -> str:
        for e in events:
            v = e.get(name)
            if v:
                return v
        return ""

    tokens: list[tuple[re.Pattern[str], str]] = []
    if conf:
        tokens.append((_bounded(conf[0].get("Conference-Name")), "{conf_name}"))
    if originate and not originate.app.startswith("&"):
        # originated into a dialplan extension ("amd XML dialer"): Caller-Destination-Number, bl_xfer
        tokens.append((_bounded(originate.app.split()[0]), "{extension}"))
    if originate:
        tokens.append((re.compile(re.escape(url_encode(originate.dest))), "{dest}"))
        tokens.append((re.compile(re.escape(originate.dest)), "{dest_raw}"))
        if originate.port:
            hostport = url_encode(f"{originate.host}:{originate.port}")
            tokens.append((re.compile(re.escape(hostport)), "{hostport}"))
        tokens.append((_bounded(originate.job), "{job}"))
        tokens.append((_bounded(originate.uuid), "{uuid}"))
    via = first("variable_sip_full_via")
    m = re.search(r"branch%3D(\w+)", via)
    if m:
        tokens.append((re.compile(re.escape(m.group(1))), "{sip_branch}"))
    sdp = first("variable_rtp_local_sdp_str")
    m = re.search(r"FreeSWITCH%20(\d+)%20(\d+)", sdp)
    if m:
        tokens.append(
            (
                re.compile(re.escape(f"FreeSWITCH%20{m.group(1)}%20{m.group(2)}")),
                "FreeSWITCH%20{sdp_id}%20{sdp_version}",
            )
        )
    xfer = first("Caller-Transfer-Source")
    m = re.match(r"(\d{10})%3A([0-9a-f-]{36})%3A", xfer)
    if m:
        tokens.append((re.compile(re.escape(m.group(0))), "{T:profile:s}%3A{xfer_uuid}%3A"))
    for header, placeholder in (
        ("variable_sip_call_id", "{sip_call_id}"),
        ("variable_sip_from_tag", "{sip_from_tag}"),
        ("variable_sip_to_tag", "{sip_to_tag}"),
        ("variable_local_media_port", "{local_media_port}"),
        ("variable_remote_media_port", "{remote_media_port}"),
    ):
        v = first(header)
        if v:
            tokens.append((_numeric(v) if v.isdigit() else re.compile(re.escape(v)), placeholder))
    if originate:
        tokens.append((_numeric(originate.user), "{number}"))
        if originate.port:
            tokens.append((_numeric(originate.port), "{port}"))
        odict = dict(originate.variables)
        if "origination_caller_id_number" in odict:
            tokens.append((_numeric(odict["origination_caller_id_number"]), "{cid_number}"))
        if "origination_caller_id_name" in odict:
            tokens.append((_bounded(url_encode(odict["origination_caller_id_name"])), "{cid_name}"))
    call.tokens = tokens
    return call


def templatize(event: RecordedEvent, call: SourceCall) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for name, value in event.headers:
        out.append((name, _templatize_value(name, value, call)))
    if call.originate:
        out = _splice_origvars(out, call.originate)
    return out


def _templatize_value(name: str, value: str, call: SourceCall) -> str:
    # A head count of 0 is a value like any other (the last member leaving); other zeros and
    # empties stay literal (a time point of 0 means "never").
    if name in _BY_NAME and (value not in ("0", "") or name == "Conference-Size"):
        return _BY_NAME[name]
    if name in _DURATION_NAMES:
        return "{D:" + name[len("variable_") :] + "}"
    m = re.fullmatch(r"variable_(\w+?)_(stamp|epoch|uepoch)", name)
    if m and m.group(1) in _CDR_POINTS and value != "0":
        return "{T:" + _CDR_POINTS[m.group(1)] + ":" + _CDR_FORMATS[m.group(2)] + "}"
    for pattern, placeholder in call.tokens:
        value = pattern.sub(placeholder, value)
    return value


def _splice_origvars(headers: list[tuple[str, str]], originate: Originate) -> list[tuple[str, str]]:
    names = [f"variable_{k}" for k, _ in originate.variables]
    keys = [k for k, _ in headers]
    for i in range(len(keys) - len(names) + 1):
        if keys[i : i + len(names)] == names:
            return [*headers[:i], (ORIGVARS_MARKER, ""), *headers[i + len(names) :]]
    return headers


def select(
    capture: dict[str, Any], uuid: str, event_name: str, detail: str, occurrence: int
) -> RecordedEvent:
    found = []
    for e in recorded_events(capture):
        if e.get("Event-Name") != event_name:
            continue
        if event_name == "BACKGROUND_JOB":
            if e.get("Job-UUID") != f"{uuid}-job":
                continue
        elif e.get("Unique-ID") != uuid:  # "" selects the conference-level events
            continue
        if detail and unquote(e.get("Event-Subclass")) != detail and e.get("Action") != detail:
            continue
        found.append(e)
    if len(found) <= occurrence:
        raise LookupError(f"no {event_name} {detail} #{occurrence} for {uuid!r}")
    return found[occurrence]


def extract(captures: Path) -> dict[str, Any]:
    loaded: dict[str, dict[str, Any]] = {}
    templates: dict[str, Any] = {}
    for name, scenario, uuid, event_name, detail, occurrence in SOURCES:
        capture = loaded.setdefault(scenario, json.loads((captures / f"{scenario}.json").read_text()))
        event = select(capture, uuid, event_name, detail, occurrence)
        call = source_call(capture, uuid)
        spec: dict[str, Any] = {
            "event_name": event_name,
            "source": [scenario, uuid, event_name, detail, occurrence],
            "headers": [list(h) for h in templatize(event, call)],
        }
        if event.body is not None:
            spec["body"] = "{job_body}"
        templates[name] = spec
    return {
        "about": "FreeSWITCH 1.10.12 events from the recorded sessions; see telephony/sim/esl_extract.py",
        "templates": templates,
    }


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m telephony.sim.esl_extract <freeswitch-transcripts dir>", file=sys.stderr)
        return 2
    data = extract(Path(args[0]))
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {len(data['templates'])} templates to {OUTPUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


def source_values(
    capture: dict[str, Any], uuid: str, event: RecordedEvent
) -> tuple[dict[str, str], dict[str, int]]:
    """The placeholder values and time points of a recorded event: rendering its template with
    them must give the recorded frame back."""
    call = source_call(capture, uuid)
    events = [e for e in recorded_events(capture) if uuid and e.get("Unique-ID") == uuid]

    def first(name: str) -> str:
        for e in events:
            v = e.get(name)
            if v and v != "0":
                return v
        return ""

    values: dict[str, str] = {
        "core_uuid": event.get("Core-UUID"),
        "seq": event.get("Event-Sequence"),
        "session_id": first("variable_session_id"),
        "sip_call_id": first("variable_sip_call_id"),
        "sip_from_tag": first("variable_sip_from_tag"),
        "sip_to_tag": first("variable_sip_to_tag"),
        "sip_cseq": first("variable_sip_cseq"),
        "rtp_ssrc": first("variable_rtp_use_ssrc"),
        "local_media_port": first("variable_local_media_port"),
        "remote_media_port": first("variable_remote_media_port"),
        "cause": event.get("Hangup-Cause"),
        "q850": event.get("variable_hangup_cause_q850") or event.get("variable_sip_term_cause"),
        "sip_status": event.get("variable_sip_term_status")
        or event.get("variable_sip_invite_failure_status"),
        "sip_phrase": event.get("variable_sip_invite_failure_phrase"),
        "app_uuid": event.get("Application-UUID"),
        "member_id": event.get("Member-ID") or event.get("variable_conference_member_id"),
        "conf_size": event.get("Conference-Size"),
        "conf_uuid": event.get("Conference-Unique-ID") or first("variable_conference_uuid"),
        "conf_name": event.get("Conference-Name") or first("variable_conference_name"),
        "old_id": event.get("Old-ID"),
        "new_id": event.get("New-ID"),
        "avmd_total_time": event.get("Total-time"),
        "avmd_detect_us": event.get("Detection-time"),
        "avmd_detect_ms": unquote(event.get("variable_avmd_total_time")).strip("[]"),
        "job_arg": event.get("Job-Command-Arg"),
        "job_body": event.body or "",
    }
    via = first("variable_sip_full_via")
    m = re.search(r"branch%3D(\w+)", via)
    values["sip_branch"] = m.group(1) if m else ""
    m = re.search(r"FreeSWITCH%20(\d+)%20(\d+)", first("variable_rtp_local_sdp_str"))
    values["sdp_id"], values["sdp_version"] = (m.group(1), m.group(2)) if m else ("", "")
    m = re.match(r"(\d{10})%3A([0-9a-f-]{36})%3A", first("Caller-Transfer-Source"))
    values["xfer_uuid"] = m.group(2) if m else ""
    if call.originate:
        o = call.originate
        values.update(
            uuid=o.uuid,
            job=o.job,
            number=o.user,
            port=o.port,
            dest=url_encode(o.dest),
            dest_raw=o.dest,
            hostport=url_encode(f"{o.host}:{o.port}"),
        )
        odict = dict(o.variables)
        values["cid_number"] = odict.get("origination_caller_id_number", "")
        values["cid_name"] = url_encode(odict.get("origination_caller_id_name", ""))
        values[ORIGVARS_MARKER] = "\n".join(f"variable_{k}\t{url_encode(v)}" for k, v in o.variables)
        values["extension"] = o.app.split()[0]

    def point(name: str) -> int:
        v = event.get(name) or first(name)
        return int(v) if v else 0

    points = {
        "event": int(event.get("Event-Date-Timestamp")),
        "created": point("Caller-Channel-Created-Time"),
        "progress": point("Caller-Channel-Progress-Time"),
        "answered": point("Caller-Channel-Answered-Time"),
        "hangup": point("Caller-Channel-Hangup-Time"),
        "profile": int(event.get("Caller-Profile-Created-Time") or 0) or point("Caller-Profile-Created-Time"),
        "avmd": point("Start-time"),
    }
    m = re.match(r"(\d{10})%3A", first("Caller-Transfer-Source"))
    if m and not event.get("Caller-Profile-Created-Time"):
        points["profile"] = int(m.group(1)) * 1_000_000
    return values, points
