"""``dialer callbacks list|reassign|overdue``: callbacks booked by agents, and who takes them."""

from __future__ import annotations

import argparse
import sys

from dialer.cli import CliError
from dialer.cli.common import add_config_options, resolve_campaign, run_with_database
from dialer.cli.followup import add_overdue_callbacks_command
from dialer.store.db import Database
from dialer.store.leads_repo import LeadAdmin
from telephony.base import mask_number


def _list(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise CliError("--limit must be 1 or more")

    async def work(db: Database) -> int:
        campaign_id = None
        if args.campaign:
            campaign_id = (await resolve_campaign(db, args.campaign)).id
        statuses: tuple[str, ...] = () if args.all else ("pending",)
        callbacks = await LeadAdmin(db).callbacks(
            campaign_id, agent_id=args.agent, statuses=statuses, limit=args.limit
        )
        if not callbacks:
            print(
                "no callback matches" + ("" if args.all else " (pending ones; --all shows every one)"),
                file=sys.stderr,
            )
            return 0
        rows = [("ID", "DUE (UTC)", "AGENT", "LEAD", "NUMBER", "CAMPAIGN", "STATUS", "BOOKED BY")]
        rows += [
            (
                str(c.id),
                c.due_at.strftime("%Y-%m-%d %H:%M"),
                c.agent_id or "any",
                str(c.lead_id),
                mask_number(c.phone),
                str(c.campaign_id),
                c.status,
                c.created_by or "-",
            )
            for c in callbacks
        ]
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for row in rows:
            print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if len(callbacks) == args.limit:
            print(f"only the first {args.limit} are shown; raise --limit", file=sys.stderr)
        return 0

    return run_with_database(args, work)


def _reassign(args: argparse.Namespace) -> int:
    if (args.agent is None) == (not args.any):
        raise CliError("say who takes the callback: --agent AGENT_ID, or --any for the first free agent")

    async def work(db: Database) -> int:
        before = await LeadAdmin(db).reassign_callback(args.callback_id, args.agent, actor=args.actor)
        print(f"callback {args.callback_id}: {before or 'any agent'} -> {args.agent or 'any agent'}")
        return 0

    return run_with_database(args, work)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("callbacks", help="see booked callbacks and give them to another agent")
    commands = parser.add_subparsers(dest="callbacks_command", metavar="ACTION", required=True)

    lst = commands.add_parser(
        "list",
        help="pending callbacks, soonest first (numbers masked)",
        description="One line per callback: id, when it is due (UTC), the agent who must take it (any: "
        "the first free agent), the lead id, the masked number, the campaign id, status and who booked it.",
    )
    lst.add_argument("--campaign", help="only this campaign (name or id)")
    lst.add_argument("--agent", help="only the callbacks of this agent")
    lst.add_argument("--all", action="store_true", help="also callbacks already dialed, cancelled or refused")
    lst.add_argument("--limit", type=int, default=100, help="at most this many (default: 100)")
    lst.set_defaults(handler=_list)

    reassign = commands.add_parser(
        "reassign",
        help="give a pending callback to another agent, or to any agent",
        description="A callback booked for an agent is dialed only when that agent is ready; give it to "
        "another agent (--agent) when that one is away, or to whoever is free first (--any).",
    )
    reassign.add_argument("callback_id", type=int, metavar="CALLBACK_ID", help="see `dialer callbacks list`")
    who = reassign.add_mutually_exclusive_group()
    who.add_argument("--agent", help="the agent who takes it")
    who.add_argument("--any", action="store_true", help="the first free agent takes it")
    reassign.set_defaults(handler=_reassign)

    for sub in (lst, reassign):
        add_config_options(sub)
        sub.add_argument("--actor", default="cli", help="who does this, for the audit trail (default: cli)")
    add_overdue_callbacks_command(commands)
