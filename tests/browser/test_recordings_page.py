"""The recordings page in chromium: a player for a call with its file, a sentence for one without."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

from playwright.async_api import Page, expect

from dialer.recordings.service import Recordings
from tests.api.conftest import PASSWORD, T0
from tests.browser.conftest import Served, screenshot
from tests.recordings.helpers import recorded_calls
from tests.recordings.test_monitoring_api import SupervisedPbx


async def test_the_recordings_page_plays_a_call_and_reports_a_missing_file(
    served: Served, page: Page, tmp_path: Path
) -> None:
    stack = served.stack
    stack.app.state.recordings = Recordings(stack.db, tmp_path)
    stack.app.state.pbx = stack.pbx  # a PBX without supervision
    heard, gone = await recorded_calls(
        stack.db,
        SimpleNamespace(id=stack.campaign_id),  # type: ignore[arg-type]
        tmp_path,
        [("agent1", T0, 3.0), ("agent2", T0 + timedelta(minutes=1), 2.0)],
    )
    (tmp_path / f"{gone}.wav").unlink()

    await page.goto(f"{served.url}/supervisor/recordings")
    await page.get_by_label("User").fill("sup")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()

    row = page.locator(f"#recordings tr[data-attempt='{heard}']")
    await expect(row).to_contain_text("agent1")
    await expect(row).to_contain_text("0:03")
    player = row.locator("audio")
    await expect(player).to_have_count(1)
    # the signed link plays in the element without the bearer header: the browser loads the WAV
    duration = await player.evaluate(
        """(a) => new Promise((ok, ko) => {
            a.addEventListener("loadedmetadata", () => ok(a.duration), { once: true });
            a.addEventListener("error", () => ko(new Error("the player failed")), { once: true });
            a.load();
        })"""
    )
    assert abs(duration - 3.0) < 0.05
    missing = page.locator(f"#recordings tr[data-attempt='{gone}']")
    await expect(missing.locator("audio")).to_have_count(0)
    await expect(missing).to_contain_text("File missing")

    # monitoring refused by the PBX is said as the API says it (this test's PBX cannot monitor)
    await page.locator("#monitor-form").get_by_label("Agent").fill("agent1")
    await page.get_by_label("Your phone").fill("PJSIP/2001")
    await page.get_by_role("button", name="Listen").click()
    await expect(page.locator("#error")).to_contain_text("cannot monitor calls")
    await screenshot(page, "recordings")


async def test_the_agent_screen_says_a_supervisor_listens_when_the_campaign_shows_it(
    served: Served, page: Page, tmp_path: Path
) -> None:
    stack = served.stack
    stack.app.state.pbx = SupervisedPbx()
    record = await stack.db.campaigns.get(stack.campaign_id)
    await stack.db.campaigns.update_settings(
        stack.campaign_id, record.settings.with_changes(monitoring_visible=True), now=T0
    )
    await recorded_calls(stack.db, SimpleNamespace(id=stack.campaign_id), tmp_path, [("agent1", T0, 2.0)])  # type: ignore[arg-type]

    await page.goto(f"{served.url}/agent")
    await page.get_by_label("User").fill("agent1")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    banner = page.locator("#listening")
    await expect(banner).to_be_hidden()
    sup = await stack.token("sup")
    body = {"agent_id": "agent1", "mode": "listen", "phone": "PJSIP/2001"}
    assert (await stack.client.post("/api/monitoring", json=body, headers=sup)).status_code == 201
    await expect(banner).to_have_text("A supervisor is listening.")
    await expect(page.locator("#record")).to_be_hidden()  # this campaign does not record on demand
