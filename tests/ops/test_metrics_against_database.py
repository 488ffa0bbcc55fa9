"""After a simulated campaign, ``/metrics`` (parsed by prometheus-client's own parser) says what the
database says: calls by outcome, leads blocked by rule, the hopper, nothing left in flight."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from dialer.compliance.tables import ComplianceAudit
from dialer.domain.campaign import PacingMode
from dialer.runtime.metrics import exported_names
from dialer.store.db import Database
from dialer.store.models import Attempt
from tests.e2e.harness import campaign_node, start, wait_for_phones

Samples = dict[str, list[tuple[dict[str, str], float]]]


async def scrape(url: str) -> Samples:
    async with httpx.AsyncClient(timeout=10.0) as client:
        reply = await client.get(url)
    reply.raise_for_status()
    samples: Samples = {}
    for family in text_string_to_metric_families(reply.text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return samples


def by(samples: Samples, name: str, label: str, **where: str) -> dict[str, float]:
    return {
        labels[label]: value
        for labels, value in samples.get(name, [])
        if all(labels.get(k) == v for k, v in where.items())
    }


@pytest.mark.slow
async def test_metrics_after_a_simulated_campaign_equal_the_database_counts(tmp_path: Path) -> None:
    async with campaign_node(
        tmp_path, "asterisk", agents=3, leads=120, pacing=PacingMode.RATIO, ratio=3.0
    ) as node:
        await wait_for_phones(node, 3)
        start(node)
        await asyncio.sleep(4.0)
        await node.drain()
        await node.runtime.gate.audit.flush()
        services = node.services
        assert services.ops is not None and services.metrics_url is not None
        await services.ops.hopper.refresh()
        samples = await scrape(services.metrics_url)
        agents = await node.agents()
        campaign = node.campaign_id
        async with Database(node.url) as db:
            async with db.read_session() as s:
                results = Counter(
                    {
                        str(result): int(n)
                        for result, n in await s.execute(
                            select(Attempt.result, func.count()).group_by(Attempt.result)
                        )
                    }
                )
                blocks = Counter(
                    {
                        str(rule): int(n)
                        for rule, n in await s.execute(
                            select(ComplianceAudit.rule, func.count())
                            .where(ComplianceAudit.decision == "block")
                            .group_by(ComplianceAudit.rule)
                        )
                    }
                )
                open_attempts = (
                    await s.execute(select(func.count()).where(Attempt.status == "open"))
                ).scalar_one()
            due = await db.hopper.count_due(campaign, datetime.now(UTC))

    assert sum(results.values()) >= 8 and results["connected"] > 0, results
    assert by(samples, "dialer_calls_total", "outcome", campaign="e2e") == dict(results)
    assert blocks, "the registry screened in the harness blocks some numbers"
    assert by(samples, "dialer_gate_blocked_total", "rule", campaign="e2e") == dict(blocks)
    assert by(samples, "dialer_hopper_leads", "campaign") == {"e2e": due}
    assert open_attempts == 0
    assert sum(by(samples, "dialer_calls_in_flight", "state").values()) == 0
    shown_agents = {k: v for k, v in by(samples, "dialer_agents", "state").items() if v}
    assert shown_agents == dict(Counter(agents.values()))
    # Each call that reached an agent is one observation of the answer-to-agent delay.
    assert samples["dialer_answer_to_agent_seconds_count"] == [({}, results["connected"])]
    # Every sample is one the node says it exports; no label carries a number.
    names = exported_names()
    for name, rows in samples.items():
        if name.startswith("dialer_") and name != "dialer_compliance_decisions_created":
            assert name in names, name
        for labels, _ in rows:
            values = [v for k, v in labels.items() if k != "le"]  # a bucket's bound is "+Inf"
            assert not any(v.startswith("+") or (v.isdigit() and len(v) > 5) for v in values), (name, labels)
