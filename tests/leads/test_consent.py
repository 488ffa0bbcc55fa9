"""Consent an FR campaign needs: blocked leads are reported, can be fixed by `leads update`, and the
consent's date and source reach the gate."""

from __future__ import annotations

import asyncio
import csv
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dialer.cli import main
from dialer.domain.campaign import CampaignStatus, LeadStatus
from dialer.domain.compliance import CallRequest, CampaignRules, ConsentRecord
from dialer.leads.importer import import_leads
from dialer.runtime.agents import AgentRegistry
from dialer.runtime.bootstrap import GatePort, SqlRecord, plan_of
from dialer.runtime.engine import Engine
from dialer.runtime.ports import AmdPolicy, CampaignPlan, Lead
from dialer.store.db import Database
from dialer.store.models import utcnow
from dialer.store.repositories import CampaignRecord
from tests.runtime.fakes import FakeGate, FakePbx, FixedPacer, MemoryRecord

PLAN = CampaignPlan(
    campaign_id="c1",
    name="spring",
    dial_string_template="PJSIP/{digits}@trunk",
    caller_id_number="+33123456789",
    amd_policy=AmdPolicy.HANGUP,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_the_daemon_says_at_most_once_a_minute_how_many_leads_each_rule_blocked(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """239 leads went to `blocked` in 25 s with no line at INFO."""
    clock = Clock()
    numbers = [f"+3361234{n:04d}" for n in range(300)]
    record = MemoryRecord([Lead(f"L{i}", "c1", n) for i, n in enumerate(numbers)])
    gate = FakeGate(
        block={n: "consent" for n in numbers[:239]} | {n: "calling_window" for n in numbers[239:]}
    )
    engine = Engine(FakePbx(), record, gate, AgentRegistry(time.monotonic), clock=clock)
    engine.add_campaign(PLAN, FixedPacer(lines=100))
    caplog.set_level(logging.INFO, logger="dialer.runtime.engine")

    def lines() -> list[str]:
        return [r.getMessage() for r in caplog.records if "blocked by the compliance gate" in r.getMessage()]

    await engine.tick()  # 50 blocked by consent (the plan's max_lines)
    clock.now += 1
    await engine.tick()  # reported at once (the first report), then 50 more blocked
    assert lines() == [
        "campaign spring: 50 leads blocked by the compliance gate since start: consent 50 (leads without a "
        "consent record: add consent_given_at and consent_source with `dialer leads update FILE --campaign "
        "NAME`)"
    ]
    for _ in range(20):  # 20 s more: the rest is blocked, nothing more is said
        clock.now += 1
        await engine.tick()
    assert len(lines()) == 1
    clock.now += 40  # a minute after the first line (at +1 s)
    await engine.tick()
    assert len(lines()) == 2
    assert lines()[1].startswith(
        "campaign spring: 250 leads blocked by the compliance gate in the last 60 s: "
    )
    assert "consent 189 (" in lines()[1] and "calling_window 61" in lines()[1]
    assert all("+336" not in line for line in lines())
    clock.now += 120
    await engine.tick()
    assert len(lines()) == 2  # nothing new blocked: nothing said


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f, delimiter=";").writerows(rows)
    return path


@dataclass
class CapturingGate:
    requests: list[CallRequest]

    async def check(self, request: CallRequest, now: datetime) -> object:
        self.requests.append(request)
        return type("D", (), {"allowed": True, "rule": "allowed", "reason": "", "retry_after": None})()


async def test_blocked_leads_are_fixed_by_leads_update_and_their_consent_reaches_the_gate(
    db: Database, campaign: CampaignRecord, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert campaign.settings.jurisdiction == "FR"  # the default: consent required
    first = write_csv(
        tmp_path / "list.csv",
        [["Telephone", "Prenom"], ["0612345601", "Léa"], ["0612345602", "Hugo"], ["0612345603", "Zoé"]],
    )
    await import_leads(db, first, campaign.id, "FR")
    # The gate finds no consent: the daemon takes the leads out of the list (bootstrap's RULE_CONSENT).
    await db.campaigns.set_status(campaign.id, CampaignStatus.RUNNING)
    claimed = await db.hopper.claim_leads(campaign.id, 10, utcnow(), "node-1")
    for lead in claimed:
        await db.hopper.release(lead.lead_id, "node-1", status=LeadStatus.BLOCKED, reason="consent: none")
    assert await db.leads.count_by_status(campaign.id) == {"blocked": 3}

    fixed = write_csv(
        tmp_path / "consent.csv",
        [
            ["Telephone", "consent_given_at", "consent_source", "Ville"],
            ["06 12 34 56 01", "2026-03-01T10:00:00", "web form", "Paris"],
            ["+33612345602", "2026-03-02", "contract", ""],
            ["0612345699", "2026-03-02", "contract", ""],  # not a lead of the campaign
            ["0612345603", "1er mars", "phone", ""],  # not a date
        ],
    )
    # Importing it again does not fix anything: every row is already a lead.
    with_consent = write_csv(
        tmp_path / "with_consent.csv",
        [["Telephone", "consent_given_at", "consent_source"], ["0612345601", "2026-03-01", "web form"]]
        + [[f"061234560{n}", "2026-03-02", "contract"] for n in (2, 3)],
    )
    again = await import_leads(db, with_consent, campaign.id, "FR", rejects_path=tmp_path / "again.csv")
    assert again.rejected["duplicate_in_campaign"] == 3
    assert "to change it, use `dialer leads update`" in again.messages[0]

    # The command runs its own event loop: in a thread, beside this test's.
    code = await asyncio.to_thread(
        main, ["leads", "update", str(fixed), "--campaign", campaign.name, "--db", db.url]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert (
        "2 leads updated from" in out
        and "2 of them had been blocked for want of consent and are dialable again" in out
        and "2 rows rejected (1 bad value, 1 not a lead)" in out
    )
    assert "row 4: +33******699 is not a lead of this campaign; add it with `dialer leads import`" in err
    assert "row 5: consent date '1er mars' is not a date" in err
    rejects = (tmp_path / "consent.rejects.csv").read_text(encoding="utf-8").splitlines()
    assert [r.split(",")[:2] for r in rejects[1:]] == [["5", "bad_value"], ["4", "not_a_lead"]]

    assert await db.leads.count_by_status(campaign.id) == {"new": 2, "blocked": 1}
    claimed = await db.hopper.claim_leads(campaign.id, 10, utcnow(), "node-1")
    by_number = {c.number: c for c in claimed}
    assert set(by_number) == {"+33612345601", "+33612345602"}
    assert by_number["+33612345601"].consent is True
    assert by_number["+33612345601"].consent_given_at == datetime(2026, 3, 1, 10, tzinfo=UTC)
    assert by_number["+33612345601"].consent_source == "web form"
    lead = await db.leads.get(by_number["+33612345601"].lead_id)
    assert dict(lead.extra) == {"Ville": "Paris"}

    # The consent record the gate is asked about carries the date and source, not "since ever".
    record = SqlRecord(db, "node-2", AgentRegistry(time.monotonic))
    await db.hopper.release_claims("node-1")
    leads = await record.claim_leads(str(campaign.id), 10, utcnow())
    capturing = CapturingGate([])
    port = GatePort(capturing)  # type: ignore[arg-type]
    plan = plan_of(await db.campaigns.get(campaign.id))
    port.rules[plan.campaign_id] = CampaignRules(profile="FR")
    for one in leads:
        await port.check(one, plan, utcnow())
    consents = {r.number_e164: r.consent for r in capturing.requests}
    assert consents["+33612345601"] == ConsentRecord(datetime(2026, 3, 1, 10, tzinfo=UTC), "web form")
    assert consents["+33612345602"] == ConsentRecord(datetime(2026, 3, 2, tzinfo=UTC), "contract")


async def test_import_reads_consent_date_and_source(
    db: Database, campaign: CampaignRecord, tmp_path: Path
) -> None:
    source = write_csv(
        tmp_path / "c.csv",
        [
            ["Telephone", "Consentement", "consent_date", "consent_source"],
            ["0612345601", "oui", "2026-01-05", "salon"],
            ["0612345602", "", "2026-01-06T08:30+01:00", "web"],  # a date says yes
            ["0612345603", "non", "2026-01-06", "web"],  # says no, with a date: contradiction
            ["0612345604", "oui", "2999-01-01", "web"],  # in the future
            ["0612345605", "oui", "", ""],
        ],
    )
    report = await import_leads(db, source, campaign.id, "FR", rejects_path=tmp_path / "r.csv")
    assert report.imported == 3 and dict(report.rejected) == {"bad_value": 2}
    assert "consent says no but a consent date is given" in report.messages[0]
    assert "consent date '2999-01-01' is in the future" in report.messages[1]
    from dialer.store.leads_repo import LeadAdmin

    leads = {x.phone: x for x in await LeadAdmin(db).leads(campaign.id)}
    assert (leads["+33612345601"].consent, leads["+33612345601"].consent_given_at) == (
        True,
        datetime(2026, 1, 5, tzinfo=UTC),
    )
    assert leads["+33612345602"].consent_given_at == datetime(2026, 1, 6, 7, 30, tzinfo=UTC)
    assert leads["+33612345602"].consent_source == "web"
    assert (leads["+33612345605"].consent, leads["+33612345605"].consent_given_at) == (True, None)
