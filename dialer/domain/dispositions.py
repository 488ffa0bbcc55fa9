"""Quick-qualification catalogue: what an agent's one click means for the lead.

Pure table, no I/O.  Each disposition maps to the lead's fate; the store writes
the disposition and the lead's next state in one transaction from this table.
A campaign enables a subset of the catalogue (``CampaignSettings.dispositions``).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from dialer.domain.campaign import CallResult, LeadNext, LeadStatus, RetryRule, next_after_attempt


class LeadFate(enum.StrEnum):
    """What a disposition does to the lead."""

    DONE = "done"  # nothing more to do with this lead in this campaign
    RETRY = "retry"  # call again later, per the campaign's retry rule for the named result
    CALLBACK = "callback"  # call again at the booked date
    INVALID = "invalid"  # the number does not reach this person
    DO_NOT_CALL = "do_not_call"  # never call again; the number goes on the do-not-call list


@dataclass(frozen=True, slots=True)
class Disposition:
    code: str
    label: str
    fate: LeadFate
    contact: bool  # the agent spoke with the person
    conversion: bool  # counts as a success in reports
    needs_callback_at: bool = False
    needs_appointment_at: bool = False
    retry_as: str = ""  # for RETRY: the retry-rule result to apply (a domain.campaign.CallResult value)


class DispositionCode(enum.StrEnum):
    NOT_QUALIFIED = "not_qualified"
    BUSY = "busy"
    WRONG_NUMBER = "wrong_number"
    NOT_INTERESTED = "not_interested"
    APPOINTMENT_SET = "appointment_set"
    CALLBACK_REQUESTED = "callback_requested"
    SALE = "sale"
    DO_NOT_CALL = "do_not_call"


CATALOGUE: Mapping[str, Disposition] = {
    d.code: d
    for d in (
        Disposition("not_qualified", "Not qualified", LeadFate.DONE, contact=True, conversion=False),
        # "busy" as a qualification: the person asked to be called another time, no date given.
        Disposition(
            "busy", "Busy, call later", LeadFate.RETRY, contact=True, conversion=False, retry_as="busy"
        ),
        Disposition("wrong_number", "Wrong number", LeadFate.INVALID, contact=False, conversion=False),
        Disposition("not_interested", "Not interested", LeadFate.DONE, contact=True, conversion=False),
        Disposition(
            "appointment_set",
            "Appointment set",
            LeadFate.DONE,
            contact=True,
            conversion=True,
            needs_appointment_at=True,
        ),
        Disposition(
            "callback_requested",
            "Callback requested",
            LeadFate.CALLBACK,
            contact=True,
            conversion=False,
            needs_callback_at=True,
        ),
        Disposition("sale", "Sale", LeadFate.DONE, contact=True, conversion=True),
        Disposition("do_not_call", "Do not call", LeadFate.DO_NOT_CALL, contact=True, conversion=False),
    )
}


class DispositionError(ValueError):
    """A disposition that cannot be recorded; the message says why and what to do."""


def enabled_dispositions(codes: Sequence[str]) -> Mapping[str, Disposition]:
    """The catalogue entries a campaign enabled (all of them when ``codes`` is empty)."""
    if not codes:
        return CATALOGUE
    unknown = [c for c in codes if c not in CATALOGUE]
    if unknown:
        raise DispositionError(
            f"unknown disposition code(s) {', '.join(unknown)}; the catalogue has: {', '.join(CATALOGUE)}"
        )
    return {c: CATALOGUE[c] for c in codes}


def lookup(code: str, enabled: Sequence[str] = ()) -> Disposition:
    """The disposition for ``code`` if the campaign allows it, else :class:`DispositionError`."""
    table = enabled_dispositions(enabled)
    found = table.get(code)
    if found is None:
        raise DispositionError(
            f"disposition {code!r} is not enabled for this campaign; choose one of: {', '.join(table)}"
        )
    return found


_FINAL: Mapping[LeadFate, LeadStatus] = {
    LeadFate.DONE: LeadStatus.DONE,
    LeadFate.INVALID: LeadStatus.INVALID,
    LeadFate.DO_NOT_CALL: LeadStatus.DO_NOT_CALL,
}


def lead_next_for_disposition(
    disposition: Disposition,
    *,
    callback_at: datetime | None,
    attempts_total: int,
    times_given: int,
    rules: Mapping[CallResult, RetryRule],
    max_attempts: int,
    now: datetime,
) -> LeadNext:
    """The lead's next state after an agent qualified the call.

    ``times_given`` counts how often this lead got this disposition, this one
    included: a RETRY disposition obeys the retry rule it names like a dial result.
    """
    final = _FINAL.get(disposition.fate)
    if final is not None:
        return LeadNext(final, reason=f"qualified {disposition.code}")
    if disposition.fate is LeadFate.CALLBACK:
        if callback_at is None:
            raise DispositionError(f"disposition {disposition.code!r} needs the callback date and time")
        return LeadNext(LeadStatus.CALLBACK, callback_at, f"callback booked by {disposition.code}")
    return next_after_attempt(
        CallResult(disposition.retry_as),
        attempts_total=attempts_total,
        attempts_with_result=times_given,
        rules=rules,
        max_attempts=max_attempts,
        now=now,
    )
