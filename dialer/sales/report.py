"""The sales part of a run's closing report: each sale, its withdrawal period and its confirmation."""

from __future__ import annotations

from collections import Counter
from typing import TextIO

from sqlalchemy import select

from dialer.notify.messages import Notification
from dialer.sales.service import CONFIRMATION_REASON, Sales

SHOWN = 10  # sales listed one per line; the rest are counted


async def print_sales(sales: Sales, out: TextIO) -> int:
    """Print the sales in their withdrawal period and the confirmations queued; returns the sales count."""
    views = await sales.by_status(None)
    async with sales.db.read_session() as s:
        queued = Counter(
            (channel, status)
            for channel, status in await s.execute(
                select(Notification.channel, Notification.status).where(
                    Notification.reason == CONFIRMATION_REASON
                )
            )
        )
    if not views:
        print("Sales: none", file=out)
        return 0
    in_period = await sales.in_withdrawal_period()
    letters = sum(n for (channel, _), n in queued.items() if channel == "post")
    emails = sum(n for (channel, _), n in queued.items() if channel == "email")
    print(
        f"Sales: {len(views)}, {len(in_period)} in their withdrawal period; confirmations queued: "
        f"{emails} by email, {letters} letters to post",
        file=out,
    )
    for v in views[:SHOWN]:
        ends = (
            f"withdrawal until {v.withdrawal_end}" if v.withdrawal_end else "withdrawal period from delivery"
        )
        print(
            f"  {v.ref}  {v.price:>9} {v.currency}  {v.product:<24} {ends} ({v.confirmation_channel})",
            file=out,
        )
    if len(views) > SHOWN:
        print(f"  ... and {len(views) - SHOWN} more (`dialer sales list`)", file=out)
    return len(views)
