"""The detector's own words (AMDCAUSE on Asterisk, the avmd beep on FreeSWITCH) reach the attempt row."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from dialer.runtime.ports import AttemptResult
from dialer.store.models import Attempt
from telephony.base import AmdDetected, AmdResult, Answered, AnsweredCall, HungUp
from tests.runtime.test_bootstrap import _campaign, _leads, _runtime
from tests.runtime.test_engine import build


async def test_engine_closes_the_attempt_with_the_amd_detail_of_the_answer():
    engine, pbx, record, *_ = build()
    await engine.tick()
    attempt = pbx.originates[0].attempt_id
    await engine.handle(Answered(attempt, time.time()))
    await engine.on_answered(
        AnsweredCall(attempt, time.time(), amd=AmdResult.MACHINE, amd_detail="LONGGREETING-1500-1500")
    )
    await engine.handle(HungUp(attempt, time.time(), cause=16))
    assert record.attempts[attempt]["result"].amd_detail == "LONGGREETING-1500-1500"


async def test_engine_closes_the_attempt_with_the_detail_of_an_amd_event():
    engine, pbx, record, *_ = build()
    await engine.tick()
    attempt = pbx.originates[0].attempt_id
    await engine.handle(Answered(attempt, time.time()))
    await engine.handle(AmdDetected(attempt, time.time(), result=AmdResult.MACHINE, detail="beep 1000 Hz"))
    await engine.handle(HungUp(attempt, time.time(), cause=16))
    assert record.attempts[attempt]["result"].amd_detail == "beep 1000 Hz"


async def test_closed_attempt_row_keeps_the_amd_detail(db, database_url, tmp_path):
    campaign = await _campaign(db)
    await _leads(db, campaign.id, ["+33612340001"])
    runtime = await _runtime(database_url, tmp_path)
    try:
        now = datetime.now(UTC) + timedelta(seconds=1)
        (lead,) = await runtime.engine.record.claim_leads(str(campaign.id), 1, now)
        attempt = await runtime.engine.record.open_attempt(lead, now)
        await runtime.engine.record.attempt_event(attempt, "answered", now)
        result = AttemptResult("machine", now, amd=AmdResult.MACHINE, amd_detail="LONGGREETING-1500-1500")
        assert await runtime.engine.record.close_attempt(attempt, result)
        async with runtime.db.read_session() as s:
            row = (
                await s.execute(select(Attempt.amd, Attempt.amd_detail).where(Attempt.id == attempt))
            ).one()
        assert tuple(row) == ("machine", "LONGGREETING-1500-1500")
    finally:
        await runtime.close()
