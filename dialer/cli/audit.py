"""``dialer audit``: the compliance gate's decisions for a number or a campaign, numbers masked."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from dialer.cli import CliError
from dialer.cli.common import resolve_campaign
from dialer.compliance.audit import query_audit
from dialer.compliance.cli_support import add_store_options, open_stores, parse_instant
from dialer.domain.compliance import parse_number


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "audit",
        help="compliance decisions (allow/block and the rule) by number",
        description="List the compliance gate's decisions, allow or block, with the rule that decided and "
        "its reason, newest first, for a number and/or a campaign. Numbers are shown masked; the audit "
        "keeps them only as a keyed hash (DIALER_NUMBER_HASH_KEY, else the key kept in the database).",
    )
    parser.add_argument("--number", help="E.164 number whose decisions to show")
    parser.add_argument("--campaign", help="only this campaign (name or id)")
    parser.add_argument("--since", help="from this date or date-time (UTC)")
    parser.add_argument("--limit", type=int, default=100, help="at most this many rows, newest first")
    add_store_options(parser)
    parser.set_defaults(handler=_audit)


def _audit(args: argparse.Namespace) -> int:
    if not args.number and not args.campaign:
        raise CliError("say whose decisions to show: --number +33612345678 and/or --campaign NAME")
    if args.number and parse_number(args.number) is None:
        raise CliError("--number is not a valid E.164 number; write it as +33612345678")
    since = parse_instant(args.since, "--since") if args.since else None

    async def go() -> int:
        async with open_stores(args) as stores:
            key = stores.keyer(args.number) if args.number else None
            campaign = await resolve_campaign(stores.database, args.campaign) if args.campaign else None
            campaign_id = str(campaign.id) if campaign else None
            rows = await query_audit(stores.database.engine, key, campaign_id, since, args.limit)
        if not rows:
            print("no decision recorded")
            return 0
        print(f"{'at (UTC)':20} {'decision':8} {'rule':22} {'number':16} {'campaign':12} {'lead':12} reason")
        for r in rows:
            print(
                f"{r.at:%Y-%m-%d %H:%M:%S} {r.decision:8} {r.rule:22} {r.number_masked:16} "
                f"{r.campaign_id:12} {r.lead_id:12} {r.reason}"
                + (f" (retry after {r.retry_after:%Y-%m-%d %H:%M})" if r.retry_after else "")
            )
        return 0

    return asyncio.run(go())
