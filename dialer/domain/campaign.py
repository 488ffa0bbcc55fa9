"""Campaign settings, their validation, and what happens to a lead after an attempt.

Pure: no I/O, no imports from the rest of the dialer.  The store keeps a
campaign's settings as the JSON produced by :meth:`CampaignSettings.to_dict` and
rebuilds them with :meth:`CampaignSettings.from_dict`, which validates again, so
a bad value can never reach the dialing loop.
"""

from __future__ import annotations

import enum
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, time, timedelta
from typing import Any

import phonenumbers

# Below 15 s of ringing many people cannot reach the phone: the call is cut while
# it still rings, which the regulators count as a nuisance call.
MIN_RING_TIMEOUT_S = 15.0


class SettingsError(ValueError):
    """A campaign setting is wrong; the message names the setting and what to do."""


class CampaignStatus(enum.StrEnum):
    DRAFT = "draft"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"


# Every allowed status change.  A campaign that is stopped can be started again
# (a new day of the same list); a draft cannot be paused before it ran.
CAMPAIGN_TRANSITIONS: Mapping[CampaignStatus, frozenset[CampaignStatus]] = {
    CampaignStatus.DRAFT: frozenset({CampaignStatus.RUNNING, CampaignStatus.STOPPED}),
    CampaignStatus.RUNNING: frozenset({CampaignStatus.PAUSED, CampaignStatus.STOPPED}),
    CampaignStatus.PAUSED: frozenset({CampaignStatus.RUNNING, CampaignStatus.STOPPED}),
    CampaignStatus.STOPPED: frozenset({CampaignStatus.RUNNING}),
}


class StatusChangeError(ValueError):
    """A campaign status change the table does not allow."""


def check_transition(current: CampaignStatus, target: CampaignStatus) -> None:
    """Raise :class:`StatusChangeError` unless ``current -> target`` is allowed."""
    if target not in CAMPAIGN_TRANSITIONS[current]:
        allowed = ", ".join(sorted(CAMPAIGN_TRANSITIONS[current])) or "nothing"
        raise StatusChangeError(
            f"a {current.value} campaign cannot become {target.value}; from {current.value} it can become: "
            f"{allowed}"
        )


class PacingMode(enum.StrEnum):
    PROGRESSIVE = "progressive"
    RATIO = "ratio"
    PREDICTIVE = "predictive"


class AmdPolicy(enum.StrEnum):
    OFF = "off"  # no detection: every answer goes to an agent
    HANGUP = "hangup"  # machines are hung up on
    LEAVE_MESSAGE = "leave_message"  # machines get the campaign's message


class LeadOrdering(enum.StrEnum):
    """Order of fresh leads and retries once due callbacks are served."""

    PRIORITY = "priority"  # highest priority first, then oldest import
    OLDEST_FIRST = "oldest_first"  # import order
    NEWEST_FIRST = "newest_first"  # latest import first
    FEWEST_ATTEMPTS = "fewest_attempts"  # spread attempts: least-tried leads first
    RETRIES_FIRST = "retries_first"  # due retries before untouched leads


class LeadStatus(enum.StrEnum):
    """Where a lead is in its life.  Only the three 'dialable' ones can be claimed."""

    NEW = "new"  # never dialed
    RETRY = "retry"  # waits for next_attempt_at
    CALLBACK = "callback"  # a callback is booked for next_attempt_at
    IN_FLIGHT = "in_flight"  # an attempt is open
    WRAP_UP = "wrap_up"  # the call reached an agent; waits for a disposition
    DONE = "done"  # qualified, nothing more to do
    INVALID = "invalid"  # the number does not work
    DO_NOT_CALL = "do_not_call"  # the person refused calls
    EXHAUSTED = "exhausted"  # the retry rules allow no more attempts
    BLOCKED = "blocked"  # the compliance gate took it out of the list


DIALABLE_STATUSES: frozenset[LeadStatus] = frozenset({LeadStatus.NEW, LeadStatus.RETRY, LeadStatus.CALLBACK})


class CallResult(enum.StrEnum):
    """The attempt results the retry rules speak about.

    Wider than the PBX outcome: an answered call is a machine, an abandoned
    person, a person who reached an agent, or a person who hung up first.
    """

    BUSY = "busy"
    NO_ANSWER = "no_answer"
    CONGESTION = "congestion"
    FAILED = "failed"
    CANCELLED = "cancelled"
    LOST = "lost"
    INVALID_NUMBER = "invalid_number"
    MACHINE = "machine"
    ABANDONED = "abandoned"
    DROPPED = "dropped"  # a person answered and hung up before reaching an agent
    CONNECTED = "connected"  # a person reached an agent


# The results an answered call can have: the PBX outcome of their attempts is "answered".
ANSWERED_RESULTS: frozenset[CallResult] = frozenset(
    {CallResult.CONNECTED, CallResult.ABANDONED, CallResult.MACHINE, CallResult.DROPPED}
)


# Results that count as a person answering: the abandonment rate's denominator.
PERSON_RESULTS: frozenset[CallResult] = frozenset(
    {CallResult.CONNECTED, CallResult.ABANDONED, CallResult.DROPPED}
)


def attempt_result(outcome: str) -> CallResult:
    """The result of a closed attempt, as the call state machine named it (``result_of``).

    The runtime writes the one result of the call; this only refuses a word
    outside the vocabulary (counted as failed, never guessed from flags).
    """
    try:
        return CallResult(outcome)
    except ValueError:
        return CallResult.FAILED


@dataclass(frozen=True, slots=True)
class RetryRule:
    """After a result: wait ``delay_s`` before the next attempt; at most ``max_attempts``
    attempts that ended with this result (0: never retry)."""

    delay_s: int
    max_attempts: int

    def validate(self, result: str) -> None:
        if self.delay_s < 0:
            raise SettingsError(f"retry rule '{result}': delay must be >= 0 seconds, got {self.delay_s}")
        if self.max_attempts < 0:
            raise SettingsError(f"retry rule '{result}': max attempts must be >= 0, got {self.max_attempts}")


DEFAULT_RETRY_RULES: Mapping[CallResult, RetryRule] = {
    CallResult.BUSY: RetryRule(delay_s=15 * 60, max_attempts=5),
    CallResult.NO_ANSWER: RetryRule(delay_s=2 * 3600, max_attempts=4),
    CallResult.CONGESTION: RetryRule(delay_s=10 * 60, max_attempts=5),
    CallResult.FAILED: RetryRule(delay_s=30 * 60, max_attempts=3),
    CallResult.CANCELLED: RetryRule(delay_s=30 * 60, max_attempts=4),
    CallResult.LOST: RetryRule(delay_s=10 * 60, max_attempts=3),
    CallResult.MACHINE: RetryRule(delay_s=4 * 3600, max_attempts=3),
    # UK/OFCOM: an abandoned person must not be called again within 72 hours.
    CallResult.ABANDONED: RetryRule(delay_s=72 * 3600, max_attempts=2),
    CallResult.DROPPED: RetryRule(delay_s=3600, max_attempts=3),
}

# Results that never lead to a retry whatever the rules say.
_TERMINAL_RESULTS: Mapping[CallResult, LeadStatus] = {
    CallResult.INVALID_NUMBER: LeadStatus.INVALID,
}


@dataclass(frozen=True, slots=True)
class LeadNext:
    """The lead's next state: a status and, for retries and callbacks, when it is due."""

    status: LeadStatus
    due_at: datetime | None = None
    reason: str = ""


def next_after_attempt(
    result: CallResult,
    *,
    attempts_total: int,
    attempts_with_result: int,
    rules: Mapping[CallResult, RetryRule],
    max_attempts: int,
    now: datetime,
) -> LeadNext:
    """What happens to a lead after an attempt that did not reach an agent.

    ``attempts_total`` counts every attempt of the lead, this one included;
    ``attempts_with_result`` those that ended with ``result``, this one included.
    """
    if result is CallResult.CONNECTED:
        return LeadNext(LeadStatus.WRAP_UP, reason="reached an agent; waits for a disposition")
    terminal = _TERMINAL_RESULTS.get(result)
    if terminal is not None:
        return LeadNext(terminal, reason=f"last attempt: {result.value}")
    if attempts_total >= max_attempts:
        return LeadNext(
            LeadStatus.EXHAUSTED, reason=f"{attempts_total} attempts, the campaign allows {max_attempts}"
        )
    rule = rules.get(result)
    if rule is None:
        return LeadNext(LeadStatus.EXHAUSTED, reason=f"no retry rule for {result.value}")
    if attempts_with_result >= rule.max_attempts:
        return LeadNext(
            LeadStatus.EXHAUSTED,
            reason=f"{attempts_with_result} attempts ended {result.value}, "
            f"the rule allows {rule.max_attempts}",
        )
    return LeadNext(LeadStatus.RETRY, now + timedelta(seconds=rule.delay_s), f"retry after {result.value}")


# ---------------------------------------------------------------------------
# Settings

_FORMATTER = string.Formatter()
DIAL_STRING_FIELDS = frozenset({"number", "national", "digits", "campaign", "attempt"})
# A profile code: a shipped one (FR, US, UK, ...) or a custom profile of the operator's profiles
# file (CARE_FR, CUSTOM-DEMO, ...).  Whether it exists is the gate's to say, which fails closed;
# here only its shape: the database column holds 24 characters.
_JURISDICTION = re.compile(r"^[A-Z][A-Z0-9_-]{1,23}$")
_CALLER_ID = re.compile(r"^\+?[0-9]{3,20}$")

# The identification message shipped in config/sounds/ (scripts/make-prompts), played to a
# person nobody could take: FR, UK and US law require one, so a campaign always has one.
DEFAULT_IDENTIFICATION_MESSAGE = "dialer-identification"
# A sound as both PBXs name it: relative to their sounds directory (or absolute), without
# the extension (each PBX picks the file format it has), no spaces, no dots, so no "..".
_SOUND_NAME = re.compile(r"^/?[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$")


def validate_sound_name(name: str, what: str) -> None:
    """Raise :class:`SettingsError` unless ``name`` is a sound name both PBXs can play."""
    if len(name) > 100 or not _SOUND_NAME.match(name):
        raise SettingsError(
            f"{what} {name!r} is not a sound name the PBX can play: give the file name without its "
            "extension, relative to the PBX's sounds directory (or absolute), with letters, digits, "
            "'-', '_' and '/' between directories only, e.g. dialer-identification or custom/acme-id"
        )


def validate_dial_string(template: str) -> None:
    """A dial-string template must name the number and only known placeholders."""
    if not template.strip():
        raise SettingsError("dial string is empty; give a template such as 'PJSIP/{number}@trunk'")
    try:
        parts = list(_FORMATTER.parse(template))
    except ValueError as exc:
        raise SettingsError(
            f"dial string {template!r} is not a valid template ({exc}); use braces only around placeholders, "
            "e.g. 'PJSIP/{number}@trunk'"
        ) from exc
    names = [name for _, name, spec, conv in parts if name is not None]
    for _, name, spec, conv in parts:
        if name is None:
            continue
        if name == "" or name.isdigit():
            raise SettingsError(
                f"dial string {template!r} has a positional placeholder '{{{name}}}'; name it, one of: "
                + ", ".join("{" + f + "}" for f in sorted(DIAL_STRING_FIELDS))
            )
        if name not in DIAL_STRING_FIELDS:
            raise SettingsError(
                f"dial string {template!r} has an unknown placeholder '{{{name}}}'; allowed: "
                + ", ".join("{" + f + "}" for f in sorted(DIAL_STRING_FIELDS))
            )
        if spec or conv:
            raise SettingsError(
                f"dial string {template!r}: placeholder '{{{name}}}' takes no format or conversion"
            )
    if not any(n in ("number", "national", "digits") for n in names):
        raise SettingsError(
            f"dial string {template!r} does not contain the number; add {{number}} (E.164), "
            "{national} or {digits} (E.164 without '+')"
        )


def national_digits(number: str) -> str:
    """An E.164 number as dialed from inside its own country, digits only.

    ``+33612345678`` -> ``0612345678`` (FR), ``+447911123456`` -> ``07911123456`` (UK),
    ``+12015550123`` -> ``2015550123`` (US): phonenumbers' national format with its
    spaces and punctuation taken out, so the trunk prefix is the country's own.
    """
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException as exc:
        # The gate refuses numbers that are not E.164 before any dial: reaching here is a bug.
        raise ValueError(f"{{national}} needs an E.164 number (+ and country code): {exc}") from None
    formatted = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
    return "".join(ch for ch in formatted if ch.isdigit())


def render_dial_string(
    template: str, *, number: str, national: str = "", campaign: str = "", attempt: str = ""
) -> str:
    """Fill a validated dial-string template for one call.

    ``number`` is E.164; ``{national}`` is its national form, worked out from it
    unless given.
    """
    if not national and "{national}" in template:
        national = national_digits(number)
    return template.format(
        number=number,
        national=national,
        digits=number.lstrip("+"),
        campaign=campaign,
        attempt=attempt,
    )


@dataclass(frozen=True, slots=True)
class DailyWindow:
    """The campaign's own dialing hours, in the called person's local time."""

    start: time = time(9, 0)
    stop: time = time(20, 0)

    def validate(self) -> None:
        if self.start >= self.stop:
            raise SettingsError(
                f"daily window {self.start:%H:%M}-{self.stop:%H:%M}: start must be before stop "
                "(windows across midnight are not allowed for outbound calls)"
            )

    @classmethod
    def parse(cls, text: str) -> DailyWindow:
        try:
            start_s, stop_s = text.split("-", 1)
            window = cls(time.fromisoformat(start_s.strip()), time.fromisoformat(stop_s.strip()))
        except ValueError as exc:
            raise SettingsError(f"daily window {text!r} is not HH:MM-HH:MM, e.g. 09:00-20:00") from exc
        window.validate()
        return window

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.stop:%H:%M}"


class WithdrawalStart(enum.StrEnum):
    """From which date a sale's withdrawal period runs (it starts the day after)."""

    CONTRACT = "contract"
    DELIVERY = "delivery"
    LATER_OF_CONTRACT_AND_DELIVERY = "later_of_contract_and_delivery"


class RecordingPolicy(enum.StrEnum):
    NONE = "none"
    ALL = "all"  # every connected call
    ON_DEMAND = "on_demand"  # when the agent asks, during the call


@dataclass(frozen=True, slots=True)
class CampaignSettings:
    """Everything that tells the dialer how to run one campaign."""

    dial_string: str
    caller_id: str
    pbx: str = "default"
    caller_id_name: str = ""
    pacing_mode: PacingMode = PacingMode.PROGRESSIVE
    # ratio mode: lines per ready agent; predictive: the ceiling it may reach.
    dial_ratio: float = 1.0
    max_lines_per_agent: float = 3.0
    abandon_cap: float = 0.03  # abandoned / person-answered, over the jurisdiction's window
    ring_timeout_s: float = 25.0
    amd_policy: AmdPolicy = AmdPolicy.OFF
    # sound played to an abandoned person (required by FR/UK/US); must be on the PBX (see README)
    identification_message: str = DEFAULT_IDENTIFICATION_MESSAGE
    machine_message: str = ""  # sound left on answering machines (leave_message)
    connect_limit_s: float = 2.0  # greeting-to-agent limit before the call counts as abandoned
    wrap_up_limit_s: float = 60.0
    jurisdiction: str = "FR"
    max_attempts: int = 10  # per lead, whatever the results
    retry_rules: Mapping[CallResult, RetryRule] = field(default_factory=lambda: dict(DEFAULT_RETRY_RULES))
    window: DailyWindow = field(default_factory=DailyWindow)
    ordering: LeadOrdering = LeadOrdering.PRIORITY
    dispositions: tuple[str, ...] = ()  # enabled codes; empty: the whole standard catalogue
    default_disposition: str = "not_qualified"  # given when wrap-up ends without one
    # After the call: service levels (seconds), each measured as a task with a due time.
    callback_default_delay_s: float = 3600.0  # a callback with no time given is due within this
    callback_grace_s: float = 600.0  # an agent-only callback goes to anyone when its agent is away this long
    info_email_within_s: float = 7200.0  # information promised by email is sent within this
    follow_up_within_s: float = 172800.0  # a follow-up contact in the preferred channel within this
    missed_call_back_within_s: float = 3600.0  # a customer who called and was missed is called back
    complaint_answer_within_s: float = 432000.0  # a complaint about the campaign is answered within this
    # After a sale: the withdrawal period, in calendar days from the day after its start.
    withdrawal_days: int = 14
    withdrawal_starts: WithdrawalStart = WithdrawalStart.LATER_OF_CONTRACT_AND_DELIVERY
    # Recordings and monitoring.
    recording: RecordingPolicy = RecordingPolicy.NONE
    recording_retention_days: int = 90  # files older than this are deleted (and the deletion logged)
    recording_announcement: str = ""  # a sound played to the customer before the agent is connected
    monitoring_visible: bool = False  # the agent screen shows that a supervisor is listening

    def validate(self) -> CampaignSettings:
        """Raise :class:`SettingsError` naming the first bad setting; return self when all is well."""
        validate_dial_string(self.dial_string)
        if not _CALLER_ID.match(self.caller_id):
            raise SettingsError(
                f"caller id {self.caller_id!r} is not a phone number; give digits with an optional '+', "
                "e.g. +33123456789 (many jurisdictions forbid hidden or fake caller ids)"
            )
        if not self.pbx.strip():
            raise SettingsError("pbx name is empty; name one of the PBXs of the config file")
        if self.ring_timeout_s < MIN_RING_TIMEOUT_S:
            raise SettingsError(
                f"ring timeout {self.ring_timeout_s:g} s is too short: calls must ring at least "
                f"{MIN_RING_TIMEOUT_S:g} s so people can reach the phone; "
                f"set it to {MIN_RING_TIMEOUT_S:g} or more"
            )
        if self.ring_timeout_s > 120:
            raise SettingsError(
                f"ring timeout {self.ring_timeout_s:g} s is over 120 s; most trunks give up earlier"
            )
        if not 0.0 <= self.abandon_cap <= 0.10:
            raise SettingsError(
                f"abandonment cap {self.abandon_cap:g} must be a fraction between 0 and 0.10 "
                "(e.g. 0.03 for 3 %)"
            )
        if self.dial_ratio < 1.0 or self.dial_ratio > self.max_lines_per_agent:
            raise SettingsError(
                f"dial ratio {self.dial_ratio:g} must be between 1 and max lines per agent "
                f"({self.max_lines_per_agent:g})"
            )
        if not 1.0 <= self.max_lines_per_agent <= 10.0:
            raise SettingsError(f"max lines per agent {self.max_lines_per_agent:g} must be between 1 and 10")
        validate_sound_name(self.identification_message, "identification message")
        if self.amd_policy is AmdPolicy.LEAVE_MESSAGE and not self.machine_message:
            raise SettingsError("AMD policy leave_message needs a machine message (a sound file name)")
        if self.machine_message:
            validate_sound_name(self.machine_message, "machine message")
        if not 0.0 < self.connect_limit_s <= 2.0:
            raise SettingsError(
                f"connect limit {self.connect_limit_s:g} s must be above 0 and at most 2 s after the greeting"
            )
        if self.wrap_up_limit_s <= 0:
            raise SettingsError(f"wrap-up limit {self.wrap_up_limit_s:g} s must be positive")
        if not _JURISDICTION.match(self.jurisdiction):
            raise SettingsError(
                f"jurisdiction {self.jurisdiction!r} is not a profile code; use a shipped profile such as "
                "FR, US, UK, or the name of a custom profile of the profiles file (capital letters, digits, "
                "'_' and '-', at most 24), e.g. CARE_FR"
            )
        if self.max_attempts < 1:
            raise SettingsError(f"max attempts per lead must be at least 1, got {self.max_attempts}")
        for result, rule in self.retry_rules.items():
            if result in (CallResult.CONNECTED, CallResult.INVALID_NUMBER):
                raise SettingsError(
                    f"retry rule '{result.value}' is not allowed: a connected call is qualified by a "
                    "disposition and an invalid number is never retried"
                )
            rule.validate(result.value)
        self.window.validate()
        self._validate_dispositions()
        self._validate_after_call()
        return self

    def _validate_after_call(self) -> None:
        for name in (
            "callback_default_delay_s",
            "info_email_within_s",
            "follow_up_within_s",
            "missed_call_back_within_s",
            "complaint_answer_within_s",
        ):
            value = getattr(self, name)
            if not 60.0 <= value <= 90 * 86400.0:
                raise SettingsError(f"{name} {value:g} s must be between 60 s and 90 days")
        if not 0.0 <= self.callback_grace_s <= 7 * 86400.0:
            raise SettingsError(f"callback_grace_s {self.callback_grace_s:g} s must be between 0 and 7 days")
        if not 14 <= self.withdrawal_days <= 90:
            raise SettingsError(
                f"withdrawal_days {self.withdrawal_days} must be between 14 (the legal minimum) and 90"
            )
        if not 1 <= self.recording_retention_days <= 3650:
            raise SettingsError(
                f"recording_retention_days {self.recording_retention_days} must be between 1 and 3650"
            )
        if self.recording_announcement:
            validate_sound_name(self.recording_announcement, "recording announcement")

    def _validate_dispositions(self) -> None:
        # Imported here: the disposition table builds on this module's lead states.
        from dialer.domain.dispositions import CATALOGUE

        unknown = [code for code in self.dispositions if code not in CATALOGUE]
        if unknown:
            raise SettingsError(
                f"unknown disposition code(s) {', '.join(unknown)}; the catalogue has: {', '.join(CATALOGUE)}"
            )
        if self.dispositions and self.default_disposition not in self.dispositions:
            raise SettingsError(
                f"default disposition {self.default_disposition!r} is not among the enabled dispositions"
            )
        default = CATALOGUE.get(self.default_disposition)
        if default is None:
            raise SettingsError(f"default disposition {self.default_disposition!r} is not in the catalogue")
        if default.needs_callback_at or default.needs_appointment_at:
            raise SettingsError(
                f"default disposition {self.default_disposition!r} needs a date, which nobody gives when "
                "wrap-up times out; choose e.g. not_qualified"
            )
        if default.code == "sale":
            raise SettingsError(
                "default disposition 'sale' needs the sale's terms and a written confirmation, which nobody "
                "gives when wrap-up times out; choose e.g. not_qualified"
            )

    def with_changes(self, **changes: Any) -> CampaignSettings:
        return replace(self, **changes).validate()

    def to_dict(self) -> dict[str, Any]:
        return {
            "dial_string": self.dial_string,
            "caller_id": self.caller_id,
            "pbx": self.pbx,
            "caller_id_name": self.caller_id_name,
            "pacing_mode": self.pacing_mode.value,
            "dial_ratio": self.dial_ratio,
            "max_lines_per_agent": self.max_lines_per_agent,
            "abandon_cap": self.abandon_cap,
            "ring_timeout_s": self.ring_timeout_s,
            "amd_policy": self.amd_policy.value,
            "identification_message": self.identification_message,
            "machine_message": self.machine_message,
            "connect_limit_s": self.connect_limit_s,
            "wrap_up_limit_s": self.wrap_up_limit_s,
            "jurisdiction": self.jurisdiction,
            "max_attempts": self.max_attempts,
            "retry_rules": {
                r.value: {"delay_s": rule.delay_s, "max_attempts": rule.max_attempts}
                for r, rule in self.retry_rules.items()
            },
            "window": str(self.window),
            "ordering": self.ordering.value,
            "dispositions": list(self.dispositions),
            "default_disposition": self.default_disposition,
            "callback_default_delay_s": self.callback_default_delay_s,
            "callback_grace_s": self.callback_grace_s,
            "info_email_within_s": self.info_email_within_s,
            "follow_up_within_s": self.follow_up_within_s,
            "missed_call_back_within_s": self.missed_call_back_within_s,
            "complaint_answer_within_s": self.complaint_answer_within_s,
            "withdrawal_days": self.withdrawal_days,
            "withdrawal_starts": self.withdrawal_starts.value,
            "recording": self.recording.value,
            "recording_retention_days": self.recording_retention_days,
            "recording_announcement": self.recording_announcement,
            "monitoring_visible": self.monitoring_visible,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CampaignSettings:
        """Build and validate settings from plain values (JSON, TOML, CLI flags)."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise SettingsError(
                f"unknown campaign setting(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        values: dict[str, Any] = dict(data)
        if values.get("identification_message") == "":
            # Campaigns stored before the message was shipped said "" for "the default one".
            values["identification_message"] = DEFAULT_IDENTIFICATION_MESSAGE
        try:
            if "pacing_mode" in values:
                values["pacing_mode"] = PacingMode(values["pacing_mode"])
            if "amd_policy" in values:
                values["amd_policy"] = AmdPolicy(values["amd_policy"])
            if "ordering" in values:
                values["ordering"] = LeadOrdering(values["ordering"])
            if "withdrawal_starts" in values:
                values["withdrawal_starts"] = WithdrawalStart(values["withdrawal_starts"])
            if "recording" in values:
                values["recording"] = RecordingPolicy(values["recording"])
        except ValueError as exc:
            raise SettingsError(
                f"{exc}; allowed values are listed in `dialer campaign create --help`"
            ) from exc
        if "retry_rules" in values:
            values["retry_rules"] = parse_retry_rules(values["retry_rules"])
        if "window" in values and isinstance(values["window"], str):
            values["window"] = DailyWindow.parse(values["window"])
        if "dispositions" in values:
            values["dispositions"] = tuple(values["dispositions"])
        for name in (
            "ring_timeout_s",
            "abandon_cap",
            "dial_ratio",
            "max_lines_per_agent",
            "connect_limit_s",
            "wrap_up_limit_s",
            "callback_default_delay_s",
            "callback_grace_s",
            "info_email_within_s",
            "follow_up_within_s",
            "missed_call_back_within_s",
            "complaint_answer_within_s",
        ):
            if name in values:
                try:
                    values[name] = float(values[name])
                except (TypeError, ValueError) as exc:
                    raise SettingsError(f"{name} must be a number, got {values[name]!r}") from exc
        for name in ("max_attempts", "withdrawal_days", "recording_retention_days"):
            if name in values:
                try:
                    values[name] = int(values[name])
                except (TypeError, ValueError) as exc:
                    raise SettingsError(f"{name} must be a whole number, got {values[name]!r}") from exc
        if "monitoring_visible" in values and not isinstance(values["monitoring_visible"], bool):
            flag = str(values["monitoring_visible"]).strip().lower()
            if flag not in ("true", "false", "yes", "no", "1", "0"):
                raise SettingsError(f"monitoring_visible must be true or false, got {flag!r}")
            values["monitoring_visible"] = flag in ("true", "yes", "1")
        for name in ("dial_string", "caller_id"):
            if name not in values:
                raise SettingsError(f"campaign setting '{name}' is required")
        return cls(**values).validate()


def parse_retry_rules(raw: Mapping[str, Any]) -> dict[CallResult, RetryRule]:
    """Retry rules from ``{"busy": {"delay_s": 900, "max_attempts": 5}}`` or ``{"busy": "900:5"}``."""
    rules: dict[CallResult, RetryRule] = {}
    for key, value in raw.items():
        try:
            result = CallResult(key)
        except ValueError:
            allowed = ", ".join(r.value for r in CallResult if r not in (CallResult.CONNECTED,))
            raise SettingsError(f"retry rule for unknown result {key!r}; results are: {allowed}") from None
        try:
            if isinstance(value, str):
                delay, _, count = value.partition(":")
                rule = RetryRule(delay_s=int(delay), max_attempts=int(count))
            else:
                rule = RetryRule(delay_s=int(value["delay_s"]), max_attempts=int(value["max_attempts"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise SettingsError(
                f"retry rule {key!r} = {value!r} is not DELAY_SECONDS:MAX_ATTEMPTS, e.g. busy=900:5"
            ) from exc
        rule.validate(key)
        rules[result] = rule
    return rules
