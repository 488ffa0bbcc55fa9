"""The fencing rule of the campaign lease: a write carries the token its node dialed under.

Each campaign is paced by one node at a time, holding a lease whose token grows
with every new holder.  The record keeps the highest token it has seen per
campaign; a write with a lower token comes from a node that lost the lease
(paused, cut off) and woke up late: it is refused, so that node cannot open an
attempt, hence cannot dial, for that campaign.
"""

from __future__ import annotations


class AttemptFenced(Exception):
    """A write for a campaign under a lease token older than the newest one the record has seen."""

    def __init__(self, campaign_id: str, token: int | None, highest: int | None) -> None:
        self.campaign_id = campaign_id
        self.token = token
        self.highest = highest
        if token is None:
            reason = "this node does not hold the campaign's lease"
        else:
            reason = f"lease token {token} is older than token {highest}, held by the node pacing it now"
        super().__init__(f"campaign {campaign_id}: write refused: {reason}")


def fence_allows(token: int, highest: int | None) -> bool:
    """A token at least as new as the newest seen may write (the same holder writes again)."""
    return highest is None or token >= highest
