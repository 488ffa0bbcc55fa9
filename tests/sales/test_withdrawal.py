"""The withdrawal period: its last day across month ends and leap years, day 14 accepted, day 15 refused."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from dialer.domain.campaign import CampaignSettings, SettingsError, WithdrawalStart
from dialer.sales.withdrawal import WithdrawalError, decide_withdrawal, period_end, period_start

LATER = WithdrawalStart.LATER_OF_CONTRACT_AND_DELIVERY
PARIS = ZoneInfo("Europe/Paris")


@pytest.mark.parametrize(
    ("contract", "delivery", "end"),
    [
        (date(2026, 1, 31), None, None),  # the delivery is not known: the period has no end yet
        (date(2026, 1, 31), date(2026, 1, 20), date(2026, 2, 14)),  # contract later: counts from it
        (date(2026, 1, 20), date(2026, 1, 31), date(2026, 2, 14)),  # delivery later: counts from it
        (date(2026, 2, 20), date(2026, 2, 20), date(2026, 3, 6)),  # February has 28 days in 2026
        (date(2028, 2, 20), date(2028, 2, 21), date(2028, 3, 6)),  # 29 in 2028
        (date(2026, 12, 25), date(2026, 12, 28), date(2027, 1, 11)),  # across the year end
        (date(2026, 4, 17), date(2026, 4, 16), date(2026, 5, 1)),  # a 30-day month
    ],
)
def test_period_ends_fourteen_days_after_the_later_of_contract_and_delivery(
    contract: date, delivery: date | None, end: date | None
) -> None:
    assert period_end(contract, delivery, LATER, 14) == end


def test_the_campaign_rule_chooses_the_start() -> None:
    contract, delivery = date(2026, 3, 25), date(2026, 4, 2)
    assert period_start(contract, delivery, WithdrawalStart.CONTRACT) == contract
    assert period_end(contract, delivery, WithdrawalStart.CONTRACT) == date(2026, 4, 8)
    assert period_end(contract, delivery, WithdrawalStart.DELIVERY) == date(2026, 4, 16)
    assert period_end(contract, None, WithdrawalStart.CONTRACT, 30) == date(2026, 4, 24)
    with pytest.raises(WithdrawalError):
        period_end(contract, delivery, LATER, 0)


def test_withdrawal_on_day_14_is_accepted_and_on_day_15_refused_with_the_reason() -> None:
    contract, delivery = date(2026, 1, 28), date(2026, 1, 31)  # the period ends on 14 February
    late_on_day_14 = datetime(2026, 2, 14, 22, 59, tzinfo=UTC)  # 23:59 in Paris
    accepted = decide_withdrawal(late_on_day_14, contract, delivery, LATER, 14, PARIS)
    assert accepted.accepted and accepted.day == 14

    first_minute_of_day_15 = datetime(2026, 2, 14, 23, 0, tzinfo=UTC)  # 00:00 on the 15th in Paris
    refused = decide_withdrawal(first_minute_of_day_15, contract, delivery, LATER, 14, PARIS)
    assert not refused.accepted and refused.day == 15
    assert "ended on 2026-02-14" in refused.reason and "day 15" in refused.reason


def test_withdrawal_before_the_delivery_is_accepted() -> None:
    early = decide_withdrawal(datetime(2026, 1, 29, 9, tzinfo=UTC), date(2026, 1, 28), None, LATER, 14, PARIS)
    assert early.accepted and early.day is None
    with pytest.raises(WithdrawalError):
        decide_withdrawal(datetime(2026, 1, 29), date(2026, 1, 28), None, LATER, 14, PARIS)


def test_a_campaign_cannot_default_to_a_sale() -> None:
    base = CampaignSettings(dial_string="PJSIP/{digits}@trunk", caller_id="+33100000000")
    with pytest.raises(SettingsError, match="default disposition 'sale' needs the sale's terms"):
        base.with_changes(default_disposition="sale")
