"""The withdrawal period of a sale made by telephone: when it ends, and whether a withdrawal counts.

Pure rules, no I/O.  The period runs ``days`` calendar days starting the day
after its start date (the contract, the delivery, or the later of the two, per
the campaign's ``withdrawal_starts``), so a contract signed on 31 January with
14 days ends on 14 February.  A withdrawal received on the last day, at any
hour of that day in the seller's time zone, is accepted; one received later is
refused with the reason.  A withdrawal never costs the customer anything: no
penalty is ever computed here or recorded anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from dialer.domain.campaign import WithdrawalStart


class WithdrawalError(ValueError):
    """A period that cannot be computed (a delivery date the rule needs is missing)."""


def period_start(contract: date, delivery: date | None, rule: WithdrawalStart) -> date | None:
    """The date the period counts from (it starts the day after); None while a needed delivery is unknown."""
    if rule is WithdrawalStart.CONTRACT:
        return contract
    if delivery is None:
        return None
    if rule is WithdrawalStart.DELIVERY:
        return delivery
    return max(contract, delivery)


def period_end(contract: date, delivery: date | None, rule: WithdrawalStart, days: int = 14) -> date | None:
    """The last day a withdrawal is accepted; None while the delivery date the rule needs is unknown.

    Day 1 is the day after the start, so the last day is ``start + days``
    calendar days (month ends and leap years come from the calendar itself).
    """
    if days < 1:
        raise WithdrawalError(f"a withdrawal period of {days} days is not a period; give at least 1")
    start = period_start(contract, delivery, rule)
    return None if start is None else start + timedelta(days=days)


def day_of_period(start: date, on: date) -> int:
    """Which day of the period ``on`` is: 1 the day after the start, 0 or less before it."""
    return (on - start).days


@dataclass(frozen=True, slots=True)
class WithdrawalDecision:
    accepted: bool
    reason: str
    day: int | None  # day of the period the withdrawal was received on (None: period not started)


def decide_withdrawal(
    received_at: datetime,
    contract: date,
    delivery: date | None,
    rule: WithdrawalStart,
    days: int,
    tz: ZoneInfo,
) -> WithdrawalDecision:
    """Accept a withdrawal received through the period's last day (in the seller's zone), refuse it after.

    A withdrawal before the delivery (when the period counts from it) is
    accepted: the period has not started, the customer may always withdraw
    before it ends.
    """
    if received_at.tzinfo is None:
        raise WithdrawalError("the time a withdrawal was received must carry its time zone")
    on = received_at.astimezone(tz).date()
    start = period_start(contract, delivery, rule)
    if start is None:
        return WithdrawalDecision(True, "received before the delivery: the period has not started yet", None)
    end = start + timedelta(days=days)
    day = day_of_period(start, on)
    if on <= end:
        return WithdrawalDecision(
            True, f"received on day {max(day, 0)} of {days} (the period ends {end.isoformat()})", day
        )
    return WithdrawalDecision(
        False,
        f"received on {on.isoformat()}, day {day} of a {days}-day period that ended on {end.isoformat()}; "
        "the withdrawal period is over",
        day,
    )


START_IN_WORDS = {
    WithdrawalStart.CONTRACT: "the day the contract was concluded",
    WithdrawalStart.DELIVERY: "the day of the delivery",
    WithdrawalStart.LATER_OF_CONTRACT_AND_DELIVERY: "the later of the contract and the delivery",
}
