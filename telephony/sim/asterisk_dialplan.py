"""The dialplans and callee scripts the Asterisk simulator runs, with the timings of the captures.

Two dialplans for the dialer's side of a call:

* ``lab``: the contexts of ``lab-extensions.conf`` that produced the recorded
  captures in ``../shared/asterisk-transcripts`` (conformance tests use it);
* ``production``: the contexts we ship for real Asterisk (``dialer-answered``
  runs AMD only when the channel variable ``DIALER_AMD`` is ``1``, then hands
  the call to our FastAGI server).

The called party of a Local channel runs a script here too (``sim-customers``
in the lab: 2XXX person, 3XXX busy ...), built from the ``CalleePlan`` the
callee model returns.  Durations (prompt lengths, AMD decision times, the
500 ms Answer() settle) are the ones measured in the captures.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

from telephony.sim.model import CalleeKind, CalleePlan

DialplanName = Literal["production", "lab"]
Shape = Literal["local", "sip"]


@dataclass(frozen=True, slots=True)
class Step:
    app: str
    data: str = ""


# Prompt lengths as Asterisk played them in the captures (seconds).
PROMPT_SECONDS = {"hello": 0.784, "silence/3": 2.997, "vm-intro": 5.652, "beep": 0.25}
DEFAULT_PROMPT_SECONDS = 2.0

# AMD(): seconds from answer to a decision, and the AMDCAUSE it reports, by
# callee kind and shape (a Local callee's greeting reaches AMD a little later).
_AMD_HUMAN = {"local": (1.967, "HUMAN-803-800"), "sip": (1.441, "HUMAN-800-800")}
_AMD_MACHINE = {"local": (2.222, "LONGGREETING-1500-1500"), "sip": (1.701, "LONGGREETING-1500-1500")}


def amd_verdict(kind: CalleeKind, shape: Shape) -> tuple[float, str, str]:
    """(seconds, AMDSTATUS, AMDCAUSE) AMD() reaches for a callee of this kind."""
    if kind in (CalleeKind.MACHINE, CalleeKind.MACHINE_BEEP):
        seconds, cause = _AMD_MACHINE[shape]
        return seconds, "MACHINE", cause
    seconds, cause = _AMD_HUMAN[shape]
    return seconds, "HUMAN", cause


def lab_contexts(agi_url: str) -> dict[str, dict[str, list[Step]]]:
    """The dialer-side contexts of lab-extensions.conf (AGI pointed at ``agi_url``)."""
    return {
        "dialer-answered": {
            "s": [
                Step("NoOp", "answered ${ATTEMPT}"),
                Step("AMD"),
                Step("NoOp", "AMD ${AMDSTATUS} ${AMDCAUSE}"),
                Step("UserEvent", "DialerAMD,Attempt: ${ATTEMPT},Status: ${AMDSTATUS},Cause: ${AMDCAUSE}"),
                Step("Wait", "30"),
                Step("Hangup"),
            ]
        },
        "dialer-agi": {"s": [Step("NoOp", "agi ${ATTEMPT}"), Step("AGI", agi_url), Step("Hangup")]},
        "dialer-connect": {"_1XXX": [Step("ConfBridge", "agent_${EXTEN}"), Step("Hangup")]},
        "dialer-abandon": {"s": [Step("Playback", "hello"), Step("Hangup")]},
        "dialer-answered-noamd": {
            "s": [Step("NoOp", "answered ${ATTEMPT}"), Step("Wait", "30"), Step("Hangup")]
        },
        "from-lab": {"_X.": [Step("Hangup")]},
        **lab_recording_contexts(),
    }


def lab_recording_contexts() -> dict[str, dict[str, list[Step]]]:
    """The lab's ``[dialer-connect-recorded]`` (sip_call_recording): record, then the agent's bridge.

    Only in the lab's copy of our config; the lab PBX of the 22.10 captures has it too.
    """
    return {
        "dialer-connect-recorded": {
            "_X.": [Step("MixMonitor", "${DIALER_ATTEMPT}.wav"), Step("ConfBridge", "agent_${EXTEN}")]
        }
    }


def production_contexts() -> dict[str, dict[str, list[Step]]]:
    """The contexts we ship (config/asterisk/extensions_dialer.conf); AGI goes to ${DIALER_FASTAGI}."""
    return {
        "dialer-answered": {
            "s": [
                Step("NoOp", "answered ${DIALER_ATTEMPT}"),
                Step("GotoIf", '$["${DIALER_AMD}" = "1"]?3:5'),
                Step("AMD"),
                Step(
                    "UserEvent",
                    "DialerAMD,Attempt: ${DIALER_ATTEMPT},Status: ${AMDSTATUS},Cause: ${AMDCAUSE}",
                ),
                Step("AGI", "agi://${DIALER_FASTAGI}/answered"),
                Step("Hangup"),
            ]
        },
        "dialer-connect": {"_X.": [Step("ConfBridge", "agent_${EXTEN}"), Step("Hangup")]},
        "dialer-abandon": {"s": [Step("Playback", "${DIALER_MESSAGE}"), Step("Hangup")]},
        "dialer-agent": {
            "_9X.": [
                Step("Answer"),
                Step("ConfBridge", "agent_${EXTEN:1},dialer_agent_bridge,dialer_agent"),
                Step("Hangup"),
            ]
        },
        "from-trunk": {"_X.": [Step("Hangup")]},
    }


def pattern_matches(pattern: str, exten: str) -> bool:
    """Asterisk extension matching: literal, or ``_`` patterns with X Z N . ! and [...]."""
    if not pattern.startswith("_"):
        return pattern == exten
    regex = []
    i = 1
    while i < len(pattern):
        c = pattern[i]
        if c == "X":
            regex.append("[0-9]")
        elif c == "Z":
            regex.append("[1-9]")
        elif c == "N":
            regex.append("[2-9]")
        elif c == ".":
            regex.append(".+")
        elif c == "!":
            regex.append(".*")
        elif c == "[":
            end = pattern.find("]", i)
            if end < 0:
                return False
            regex.append("[" + re.escape(pattern[i + 1 : end]).replace("\\-", "-") + "]")
            i = end
        else:
            regex.append(re.escape(c))
        i += 1
    return re.fullmatch("".join(regex), exten) is not None


def find_steps(contexts: dict[str, dict[str, list[Step]]], context: str, exten: str) -> list[Step] | None:
    extens = contexts.get(context)
    if extens is None:
        return None
    if exten in extens:
        return extens[exten]
    for pattern, steps in extens.items():
        if pattern_matches(pattern, exten):
            return steps
    return None


_VAR = re.compile(r"\$\{([A-Za-z0-9_]+)(?::(-?\d+)(?::(-?\d+))?)?\}")


def substitute(data: str, variables: dict[str, str], exten: str) -> str:
    """Expand ``${NAME}`` and ``${NAME:offset[:length]}`` as Asterisk does (unset: empty)."""

    def one(m: re.Match[str]) -> str:
        name = m.group(1)
        value = exten if name == "EXTEN" else variables.get(name, "")
        if m.group(2) is not None:
            value = value[int(m.group(2)) :]
            if m.group(3) is not None:
                length = int(m.group(3))
                value = value[:length]
        return value

    return _EXPR.sub(_evaluate, _VAR.sub(one, data))


# $["a" = "b"] / $["a" != "b"]: Asterisk evaluates the expression before the
# application sees its data (Newexten's AppData says 1 or 0).
_EXPR = re.compile(r'\$\["(?P<lhs>[^"]*)"\s*(?P<op>!?=)\s*"(?P<rhs>[^"]*)"\]')


def _evaluate(m: re.Match[str]) -> str:
    equal = m.group("lhs") == m.group("rhs")
    return "1" if equal == (m.group("op") == "=") else "0"


_GOTOIF = re.compile(r"^(?P<cond>[^?]*)\?(?P<yes>\d*)(?::(?P<no>\d*))?$")


def gotoif_target(data: str) -> int | None:
    """Priority GotoIf jumps to for a substituted ``1?p1:p2``; None: fall through."""
    m = _GOTOIF.match(_EXPR.sub(_evaluate, data.strip()))
    if m is None:
        return None
    cond = m.group("cond").strip()
    truth = cond not in ("", "0")
    chosen = m.group("yes") if truth else m.group("no")
    return int(chosen) if chosen else None


def _fmt_seconds(seconds: float) -> str:
    return str(max(1, round(seconds)))


def callee_script(kind: CalleeKind, plan: CalleePlan, dialplan: DialplanName, hold: str | None) -> list[Step]:
    """What the called party's Local channel (``;2``) runs.

    The lab scripts are those of ``[sim-customers]`` and ``[sim-agent-phone]``;
    in production the same script is preceded by Ringing()/Wait() for the
    plan's ring time (the lab callees answer at once), and the plan's talk time
    is enforced by the simulator on top of the script.
    """
    ring: list[Step] = []
    if dialplan == "production" and math.isfinite(plan.ring_s) and plan.ring_s >= 0.05:
        ring = [Step("Ringing"), Step("Wait", f"{plan.ring_s:.3f}".rstrip("0").rstrip("."))]
    if kind is CalleeKind.BUSY:
        return [*ring, Step("Busy", "5")]
    if kind is CalleeKind.CONGESTION:
        return [*ring, Step("Congestion", "5")]
    if kind is CalleeKind.INVALID:
        return [*ring, Step("Hangup", "1")]
    if kind is CalleeKind.NO_ANSWER:
        return [Step("Ringing"), Step("Wait", "120")]
    if kind is CalleeKind.PERSON:
        if hold is None:
            hold_s = "30"
            if dialplan == "production" and plan.talk_s is not None:
                hold_s = _fmt_seconds(
                    plan.talk_s - 0.5 - PROMPT_SECONDS["hello"] - PROMPT_SECONDS["silence/3"]
                )
        else:
            hold_s = hold
        return [
            *ring,
            Step("Answer"),
            Step("Playback", "hello"),
            Step("Playback", "silence/3"),
            Step("Wait", hold_s),
            Step("Hangup"),
        ]
    if kind in (CalleeKind.MACHINE, CalleeKind.MACHINE_BEEP):
        greeting = [Step("Playback", "vm-intro"), Step("Playback", "vm-intro")]
        if kind is CalleeKind.MACHINE_BEEP:
            greeting.append(Step("Playback", "beep"))
        return [*ring, Step("Answer"), *greeting, Step("Wait", "20"), Step("Hangup")]
    if kind is CalleeKind.SHORT:
        return [*ring, Step("Answer"), Step("Wait", "1"), Step("Hangup")]
    # An agent softphone: answers and stays until hung up.
    return [*ring, Step("Answer"), Step("Wait", "3600")]


# Endpoints of lab-pjsip.conf: on the lab PBX the endpoint, not the number, plays the part.
LAB_ENDPOINT_KIND = {
    "person": CalleeKind.PERSON,
    "machine": CalleeKind.MACHINE,
    "busy": CalleeKind.BUSY,
    "noanswer": CalleeKind.NO_ANSWER,
    "congestion": CalleeKind.CONGESTION,
    "invalid": CalleeKind.INVALID,
    "agent": CalleeKind.AGENT,
    "supervisor": CalleeKind.AGENT,  # lab/sip/supervisor.xml: answers, stays on the line
}
# Lab endpoints that answer with 200 OK at once, no 180 first (the supervisor's phone).
LAB_ENDPOINTS_WITHOUT_RINGING = {"supervisor"}

# Lab agent phones that send BYE by themselves, by contact (lab/sip/agent_bye.xml:
# BYE 6 s after answering), dialled as PJSIP/agent/sip:<id>@<contact>.
LAB_CONTACT_HANGS_UP_AFTER_S = {"127.0.0.1:5082": 6.0}

# A lab number for each kind, to ask the callee model for that kind's timings.
LAB_NUMBER_OF_KIND = {
    CalleeKind.AGENT: "1000",
    CalleeKind.PERSON: "2000",
    CalleeKind.BUSY: "3000",
    CalleeKind.NO_ANSWER: "4000",
    CalleeKind.CONGESTION: "5000",
    CalleeKind.INVALID: "6000",
    CalleeKind.MACHINE: "7000",
    CalleeKind.SHORT: "8000",
    CalleeKind.MACHINE_BEEP: "9000",
}

# Local contexts whose callee is an agent softphone whatever the number.
AGENT_CONTEXTS = {"sim-agent-phone", "sim-agents"}
