"""Quality end to end on the simulated Asterisk: calls dialed, taken and qualified, scored in chromium.

The node is built as ``dialer demo`` builds it (``tests.e2e.harness``): the
engine dials over AMI, simulated agents on softphones take and qualify the
calls.  A supervisor then evaluates three of those calls on
/supervisor/quality: the items the dialer answers are already set from the
record, the player plays the call's recording (the campaign records every call), and the
scorecard of each agent scored shows the average of their new scores.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from dialer.domain.campaign import PacingMode
from dialer.store.repositories import Role
from tests.browser.conftest import screenshot
from tests.e2e.harness import campaign_node, start, wait_for_phones

PASSWORD = "a long password for quality"
PERSON_ITEMS = ("brand_and_town", "agent_introduced", "customer_by_name", "budget_asked", "usage_asked")


@pytest.mark.slow
async def test_three_simulator_calls_scored_in_the_browser_move_the_agent_average(
    tmp_path: Path, page: Page
) -> None:
    async with campaign_node(
        tmp_path, "asterisk", agents=4, pacing=PacingMode.PROGRESSIVE, time_scale=60.0, record=True
    ) as node:
        await wait_for_phones(node, 4)
        start(node)
        # Dial until three calls are qualified.
        for _ in range(300):
            await asyncio.sleep(0.1)
            qualified = [d for d in await node.dispositions() if d.agent_id]
            if len(qualified) >= 3:
                break
        await node.drain()
        qualified = sorted(await node.dispositions(), key=lambda d: d.created_at)[:3]
        calls = [d.attempt_id for d in qualified]
        agent_of = {d.attempt_id: str(d.agent_id) for d in qualified}
        recorded = {a.id: a.recording_file for a in await node.attempts()}
        await node.services.accounts.add_user("qa", "Quality", Role.SUPERVISOR, PASSWORD, actor="test")
        url = node.services.api_url or ""

        await page.goto(f"{url}/supervisor/quality")
        await page.get_by_label("User").fill("qa")
        await page.get_by_label("Password").fill(PASSWORD)
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.locator("#calls tr[data-attempt]")).not_to_have_count(0)
        for n, attempt_id in enumerate(calls):
            await page.locator(f'#calls tr[data-attempt="{attempt_id}"] button').click()
            await expect(page.locator("#eval-result")).to_contain_text("version 1")
            form = (
                await node.client.get(f"/api/quality/calls/{attempt_id}/form", headers=node.supervisor)
            ).json()
            items = page.locator("#items")
            # The dialer's own answers, from the record, are set before anyone clicks.
            for item_id, fact in form["facts"].items():
                box = items.locator(f'fieldset[data-item="{item_id}"]')
                await expect(box.locator(f'input[value="{fact["answer"]}"]')).to_be_checked()
                await expect(box).to_contain_text(fact["reason"])
            # The campaign records every call: the player plays the simulator's file of this call.
            assert recorded[attempt_id], f"call {attempt_id} has no recording"
            await expect(page.locator("#player audio")).to_have_count(1)
            await page.wait_for_function("document.querySelector('#player audio').duration > 0")
            for k, item in enumerate(PERSON_ITEMS):
                await items.locator(
                    f'fieldset[data-item="{item}"] input[value="{"yes" if k >= n else "no"}"]'
                ).check()
            await items.get_by_role("group", name="Test drive offered").get_by_label("Yes").check()
            await page.get_by_role("button", name="Save evaluation").click()
            await expect(page.locator("#eval-result")).to_contain_text("Saved: score")
        await screenshot(page, "quality-on-simulator")

        reply = await node.client.get("/api/quality/evaluations", headers=node.supervisor)
        scores: dict[str, list[float]] = defaultdict(list)
        for e in reply.json():
            assert e["grid_version"] == 1 and e["agent_id"] == agent_of[e["attempt_id"]]
            scores[e["agent_id"]].append(e["score"])
        assert sum(len(v) for v in scores.values()) == 3
        for agent, theirs in scores.items():
            average = round(sum(theirs) / len(theirs), 1)
            await expect(page.locator(f'#scorecards tr[data-key="{agent}"] td.avg')).to_have_text(
                f"{average:.1f}"
            )
