"""``dialer lists list|enable|disable``: the lead lists (imported files) of the campaigns."""

from __future__ import annotations

import argparse
import sys

from dialer.cli.common import add_config_options, resolve_campaign, run_with_database
from dialer.store.db import Database
from dialer.store.leads_repo import LeadAdmin


def _list(args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        campaign_id = None
        if args.campaign:
            campaign_id = (await resolve_campaign(db, args.campaign)).id
        admin = LeadAdmin(db)
        for lost in await admin.repair_interrupted_imports(campaign_id, actor=args.actor):
            print(
                f"lead list {lost.id} ({lost.name}) had been left 'importing' by an import that stopped; "
                f"it is now 'interrupted' with its {lost.leads} leads",
                file=sys.stderr,
            )
        lists = await admin.lists(campaign_id)
        if not lists:
            print("no lead list yet: `dialer leads import FILE --campaign NAME` makes one", file=sys.stderr)
            return 0
        rows = [("ID", "CAMPAIGN", "NAME", "STATUS", "DIALED", "LEADS", "REJECTED", "IMPORTED AT (UTC)")]
        rows += [
            (
                str(x.id),
                x.campaign,
                x.name,
                x.status,
                "enabled" if x.enabled else "disabled",
                str(x.imported),
                str(x.rejected),
                x.created_at.strftime("%Y-%m-%d %H:%M"),
            )
            for x in lists
        ]
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for row in rows:
            print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        return 0

    return run_with_database(args, work)


def _enable(args: argparse.Namespace, enabled: bool) -> int:
    async def work(db: Database) -> int:
        changed = await LeadAdmin(db).set_list_enabled(args.list_id, enabled, actor=args.actor)
        state = "enabled" if enabled else "disabled"
        if not changed:
            print(f"lead list {args.list_id} was already {state}")
            return 0
        effect = (
            "its leads are dialed again"
            if enabled
            else "its leads are not dialed (callbacks already booked with them still are)"
        )
        print(f"lead list {args.list_id} {state}: {effect}")
        return 0

    return run_with_database(args, work)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("lists", help="see lead lists, enable and disable them")
    commands = parser.add_subparsers(dest="lists_command", metavar="ACTION", required=True)

    lst = commands.add_parser(
        "list",
        help="the lead lists, with their import status and counts",
        description="One line per lead list (one imported file): id, campaign, name, import status "
        "(importing, complete, failed, interrupted), enabled or disabled, leads imported and rows rejected. "
        "A list left 'importing' by an import that was killed is repaired first: marked interrupted, "
        "with the leads it really holds.",
    )
    lst.add_argument("--campaign", help="only this campaign's lists (name or id)")
    lst.set_defaults(handler=_list)

    enable = commands.add_parser("enable", help="dial a disabled list's leads again")
    enable.add_argument("list_id", type=int, metavar="LIST_ID", help="see `dialer lists list`")
    enable.set_defaults(handler=lambda args: _enable(args, True))

    disable = commands.add_parser(
        "disable",
        help="stop dialing a list's leads (they are kept)",
        description="The list's leads are not dialed until it is enabled again; nothing is deleted. "
        "Callbacks already booked with its leads are still made: they were promised to the person.",
    )
    disable.add_argument("list_id", type=int, metavar="LIST_ID", help="see `dialer lists list`")
    disable.set_defaults(handler=lambda args: _enable(args, False))

    for sub in (lst, enable, disable):
        add_config_options(sub)
        sub.add_argument("--actor", default="cli", help="who does this, for the audit trail (default: cli)")
