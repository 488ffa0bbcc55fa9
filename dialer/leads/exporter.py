"""Lead export: a campaign's leads with where each one stands, as CSV, streamed in id order."""

from __future__ import annotations

import csv
import json
from collections.abc import Collection
from typing import IO

from dialer.domain.campaign import LeadStatus
from dialer.store.db import Database

EXPORT_COLUMNS = (
    "lead_id",
    "phone",
    "first_name",
    "last_name",
    "email",
    "external_id",
    "status",
    "attempts",
    "last_result",
    "next_attempt_at",
    "last_attempt_at",
    "timezones",
    "consent",
    "priority",
    "lead_list_id",
    "extra",
)


async def export_leads(
    db: Database, campaign_id: int, out: IO[str], statuses: Collection[LeadStatus] = (), delimiter: str = ","
) -> int:
    """Write the campaign's leads (optionally only some statuses) to ``out``; return how many."""
    writer = csv.writer(out, delimiter=delimiter)
    writer.writerow(EXPORT_COLUMNS)
    count = 0
    async for lead in db.leads.iter_leads(campaign_id, statuses):
        writer.writerow(
            [
                lead.id,
                lead.phone,
                lead.first_name or "",
                lead.last_name or "",
                lead.email or "",
                lead.external_id or "",
                lead.status.value,
                lead.attempt_count,
                lead.last_result or "",
                lead.next_attempt_at.isoformat() if lead.next_attempt_at else "",
                lead.last_attempt_at.isoformat() if lead.last_attempt_at else "",
                " ".join(lead.timezones),
                "" if lead.consent is None else ("yes" if lead.consent else "no"),
                lead.priority,
                lead.lead_list_id,
                json.dumps(dict(lead.extra), ensure_ascii=False) if lead.extra else "",
            ]
        )
        count += 1
    return count
