"""What a node does when it takes a campaign's lease: settle what the last holder left behind.

The last holder may have died with leads claimed and calls in flight.  Its
claims on the campaign's leads are freed (they are due again at once), and
every attempt of the campaign still open in the record, apart from this
node's own calls, is closed: the PBX is asked which calls still exist (a call
still up is left alone, never cut mid-conversation, but its outcome can no
longer be observed), and all of them get the result ``lost`` with the reason,
written under the new lease token, so the old holder's late writes are refused
and every attempt keeps exactly one result.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import update

from dialer.domain.fencing import AttemptFenced
from dialer.runtime.engine import Engine
from dialer.store.db import Database
from dialer.store.models import Lead

log = logging.getLogger(__name__)


def campaigns_to_hold(engine: Engine) -> list[str]:
    """The campaigns this node asks the lease of: running here, with agents signed in here to take
    their calls or calls of theirs still in progress here (a drain, the last agent gone meanwhile).

    A node without agents for a campaign leaves it to a node that has some, so the campaign goes where
    its agents signed in; two nodes with agents: the first to take it keeps it.
    """
    busy = {active.plan.campaign_id for active in engine.calls.values()}
    return [
        campaign_id
        for campaign_id, run in engine.campaigns.items()
        if campaign_id in busy or (not run.paused and engine.agents.view(campaign_id))
    ]


class Takeover:
    """``on_acquired`` of the node's ``CampaignLeases``."""

    def __init__(
        self,
        db: Database,
        engine: Engine,
        node_id: str,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.db = db
        self.engine = engine
        self.node_id = node_id
        self.wall = wall
        self.closed = 0  # attempts closed by takeovers, for tests and logs

    async def __call__(self, campaign_id: str, token: int) -> None:
        campaign = int(campaign_id)
        async with self.db.session() as s, s.begin():
            freed = await s.execute(
                update(Lead)
                .where(
                    Lead.campaign_id == campaign,
                    Lead.claimed_by.is_not(None),
                    Lead.claimed_by != self.node_id,
                )
                .values(claimed_by=None, claimed_at=None)
            )
        left = [
            a
            for a in await self.db.attempts.open_attempts()
            if a.campaign_id == campaign and a.attempt_id not in self.engine.calls
        ]
        live = await self.engine.pbx.live_attempts() if left else set()
        closed = 0
        for attempt in left:
            still_up = attempt.attempt_id in live
            try:
                done = await self.db.attempts.close_attempt(
                    attempt.attempt_id,
                    "lost",
                    None,
                    None,
                    self.wall(),
                    answered=attempt.answered_at is not None,
                    fencing_token=token,
                )
            except AttemptFenced as exc:  # a newer holder already: this takeover is stale itself
                log.warning("campaign %s: takeover stopped: %s", campaign_id, exc)
                raise
            if done:
                closed += 1
                log.warning(
                    "attempt %s of node %s closed as lost at the takeover of campaign %s: %s",
                    attempt.attempt_id,
                    attempt.node_id,
                    campaign_id,
                    "still live on the PBX; outcome not observed"
                    if still_up
                    else "not on the PBX any more: cut with its node",
                )
        self.closed += closed
        self.engine.outcomes["lost"] += closed
        claims = int(freed.rowcount)  # type: ignore[attr-defined]
        if claims or closed:
            log.warning(
                "campaign %s taken over by node %s (token %d): %d lead claim(s) freed, %d attempt(s) "
                "left open closed as lost",
                campaign_id,
                self.node_id,
                token,
                claims,
                closed,
            )
