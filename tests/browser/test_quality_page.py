"""The quality page end to end: the agent's calls, scored by a supervisor beside the player.

Three calls reach agent1 through the real engine (the agent screen shows the
campaign's script filled with the customer's and the agent's names); the
supervisor evaluates the three on /supervisor/quality in chromium, finds the
items the dialer answers already filled from the record, and the agent's
scorecard shows the new average.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from playwright.async_api import Page, expect

from dialer.recordings.service import Recordings
from tests.api.conftest import PASSWORD
from tests.browser.conftest import Served, screenshot
from tests.quality.calls import add_lead, call_reaches, hang_up
from tests.recordings.helpers import write_wav

SCRIPT = {"opening": "Hello {customer_name}, I am {agent_name} from Garage Martin in Lyon."}
PERSON_ITEMS = ("brand_and_town", "agent_introduced", "customer_by_name", "budget_asked", "usage_asked")


async def _sign_in(page: Page, url: str, user: str) -> None:
    await page.goto(url)
    await page.get_by_label("User").fill(user)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()


async def test_a_supervisor_scores_three_calls_and_the_agent_scorecard_shows_the_average(
    served: Served, page: Page, tmp_path: Path
) -> None:
    stack, c = served.stack, served.stack.client
    stack.app.state.recordings = Recordings(stack.db, tmp_path)
    sup, agent = await stack.token("sup"), await stack.token("agent1")
    # The supervisor writes the campaign's script on the quality page.
    sup_page = await page.context.new_page()
    errors: list[str] = []
    sup_page.on("pageerror", lambda exc: errors.append(str(exc)))
    await _sign_in(sup_page, f"{served.url}/supervisor/quality", "sup")
    await expect(sup_page.locator("#script-saved")).to_have_text("no script yet")
    await sup_page.get_by_label("Opening").fill(SCRIPT["opening"])
    await sup_page.get_by_role("button", name="Save as a new version").click()
    await expect(sup_page.locator("#script-saved")).to_have_text("version 1 saved")

    # The agent works on the agent screen; the first call shows the filled script.
    await _sign_in(page, f"{served.url}/agent", "agent1")
    await page.get_by_role("button", name="Start dialing").click()
    await page.get_by_role("button", name="Ready", exact=True).click()
    await expect(page.locator("#state")).to_have_text("Ready")
    calls: list[str] = []
    for n, name in enumerate(("Jeanne", "Paul", "Marie")):
        await add_lead(stack, name)
        attempt_id = await call_reaches(stack, "agent1")
        if n == 0:
            await expect(page.locator("#script")).to_contain_text(
                "Hello Jeanne Martin, I am Agent1 from Garage Martin in Lyon."
            )
            await screenshot(page, "agent-script")
            # This call is recorded: the player shows it; the others say there is none.
            write_wav(tmp_path / f"{attempt_id}.wav", 2.0)
            await stack.db.attempts.record_event(
                attempt_id, "connected", datetime.now(UTC), recording_file=f"{attempt_id}.wav"
            )
        await hang_up(stack, attempt_id)
        body: dict[str, object] = {"code": "not_interested"}
        if n == 0:
            body = {
                "code": "appointment_set",
                "appointment_at": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
                "identity": {"first_name": name, "last_name": "Martin", "email": "jeanne@example.org"},
            }
        reply = await c.post(f"/api/calls/{attempt_id}/disposition", headers=agent, json=body)
        assert reply.status_code == 200, reply.text
        calls.append(attempt_id)

    # The supervisor, in the other tab, evaluates the three calls.
    await sup_page.get_by_role("button", name="Filter").click()
    await expect(sup_page.locator("#calls tr[data-attempt]")).to_have_count(3)
    for n, attempt_id in enumerate(calls):
        await sup_page.locator(f'#calls tr[data-attempt="{attempt_id}"] button').click()
        await expect(sup_page.locator("#eval-result")).to_contain_text("version 1")
        items = sup_page.locator("#items")
        # Filled by the dialer from the record.
        confirmed = items.locator('fieldset[data-item="record_confirmed"]')
        expected = "yes" if n == 0 else "no"
        await expect(confirmed.locator(f'input[value="{expected}"]')).to_be_checked()
        await expect(confirmed).to_contain_text("From the record")
        appointment = items.locator('fieldset[data-item="appointment_offered"] input[value="yes"]')
        if n == 0:
            await expect(appointment).to_be_checked()
            await expect(sup_page.locator("#player audio")).to_have_count(1)
            duration = "document.querySelector('#player audio').duration"
            await sup_page.wait_for_function(f"{duration} > 1.9")  # the signed link plays without a token
        else:
            await expect(appointment).not_to_be_checked()
            await expect(sup_page.locator("#player")).to_contain_text("No recording")
        # Answered by the person listening: all yes on the first call, fewer later.
        for k, item in enumerate(PERSON_ITEMS):
            answer = "yes" if k >= n else "no"
            await items.locator(f'fieldset[data-item="{item}"] input[value="{answer}"]').check()
        await items.get_by_role("group", name="Test drive offered").get_by_label("N/A").check()
        if n == 0:
            await screenshot(sup_page, "quality-evaluate")
        await sup_page.get_by_role("button", name="Save evaluation").click()
        await expect(sup_page.locator("#eval-result")).to_contain_text("Saved: score")

    stored = (await c.get("/api/quality/evaluations?agent=agent1", headers=sup)).json()
    assert sorted(e["attempt_id"] for e in stored) == sorted(calls)
    assert all(e["grid_version"] == 1 for e in stored)
    scores = [e["score"] for e in stored]
    assert len(set(scores)) == 3  # the three answers differ
    average = round(sum(scores) / 3, 1)
    row = sup_page.locator('#scorecards tr[data-key="agent1"]')
    await expect(row.locator("td.avg")).to_have_text(f"{average:.1f}")
    await expect(sup_page.locator("#calls tr.done")).to_have_count(3)
    await screenshot(sup_page, "quality-scorecards")
    assert errors == []
