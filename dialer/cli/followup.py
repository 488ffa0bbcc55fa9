"""``dialer followup list|summary`` and ``dialer callbacks overdue``: the follow-up deadlines, met or not."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

from dialer.cli import CliError
from dialer.cli.common import add_config_options, resolve_campaign, run_with_database
from dialer.followup.board import FollowupBoard, TaskView
from dialer.followup.levels import Kind
from dialer.store.db import Database


def _duration(seconds: float) -> str:
    minutes = int(seconds // 60)
    return (
        f"{minutes // 1440}d{minutes % 1440 // 60:02d}h"
        if minutes >= 1440
        else f"{minutes // 60}h{minutes % 60:02d}"
    )


def _print_tasks(tasks: list[TaskView], limit: int, empty: str) -> None:
    if not tasks:
        print(empty, file=sys.stderr)
        return
    rows = [("ID", "KIND", "LEVEL", "DUE (UTC)", "LATE BY", "CAMPAIGN", "LEAD", "NUMBER", "AGENT", "DETAIL")]
    rows += [
        (
            str(t.id),
            t.kind.value,
            t.level.value,
            t.due_at.strftime("%Y-%m-%d %H:%M"),
            _duration(t.overdue_s) if t.overdue_s else "-",
            t.campaign,
            str(t.lead_id),
            t.number_masked,
            t.agent_id or "-",
            t.detail or "-",
        )
        for t in tasks
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    if len(tasks) == limit:
        print(f"only the first {limit} are shown; raise --limit", file=sys.stderr)


def _list(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise CliError("--limit must be 1 or more")

    async def work(db: Database) -> int:
        campaign_id = (await resolve_campaign(db, args.campaign)).id if args.campaign else None
        kinds = [Kind(args.kind)] if args.kind else []
        tasks = await FollowupBoard(db).tasks(
            datetime.now(UTC),
            overdue_only=args.overdue,
            kinds=kinds,
            campaign_id=campaign_id,
            include_done=args.all,
            limit=args.limit,
        )
        what = "overdue task" if args.overdue else "task"
        hint = "" if args.overdue or args.all else " (open ones; --all also shows those done)"
        _print_tasks(tasks, args.limit, f"no {what} matches{hint}")
        return 0

    return run_with_database(args, work)


def _summary(args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        campaign_id = (await resolve_campaign(db, args.campaign)).id if args.campaign else None
        summary = await FollowupBoard(db).summary(datetime.now(UTC), campaign_id)
        rows = [("KIND", "OPEN", "OVERDUE", "MET", "MISSED", "REFUSED")]
        rows += [
            (k.value, str(t.open), str(t.overdue), str(t.met), str(t.missed), str(t.refused))
            for k, t in summary.kinds.items()
        ]
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for row in rows:
            print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        print(f"overdue: {summary.overdue} (callbacks: {summary.callbacks_overdue})")
        return 0

    return run_with_database(args, work)


def _overdue_callbacks(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise CliError("--limit must be 1 or more")

    async def work(db: Database) -> int:
        tasks = await FollowupBoard(db).overdue_callbacks(datetime.now(UTC), limit=args.limit)
        _print_tasks(tasks, args.limit, "no callback is overdue")
        return 0

    return run_with_database(args, work)


def add_overdue_callbacks_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``dialer callbacks overdue``, in the callbacks command group."""
    overdue = commands.add_parser(
        "overdue",
        help="callbacks past their deadline and not yet made (numbers masked)",
        description="Callbacks whose deadline (the customer's time, or the campaign's default delay, "
        "plus the grace for an absent agent) has passed without a call: how late each is and who booked it. "
        "`dialer callbacks reassign ID --any` gives one to whoever is free first.",
    )
    overdue.add_argument("--limit", type=int, default=100, help="at most this many (default: 100)")
    overdue.set_defaults(handler=_overdue_callbacks)
    add_config_options(overdue)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "followup", help="follow-up tasks and their deadlines: callbacks, information, follow-ups"
    )
    commands = parser.add_subparsers(dest="followup_command", metavar="ACTION", required=True)
    lst = commands.add_parser(
        "list",
        help="open follow-up tasks, soonest due first (numbers masked)",
        description="One line per task: id, kind (callback, information, follow_up, missed_call_back), "
        "level (open, overdue, met, missed, refused), due time (UTC), how late, campaign, lead, masked "
        "number, the agent who promised it and a detail (the template, why a callback was refused).",
    )
    lst.add_argument("--overdue", action="store_true", help="only tasks past their due time and not done")
    lst.add_argument("--all", action="store_true", help="also tasks already done (met, missed, refused)")
    lst.add_argument("--kind", choices=[k.value for k in Kind], help="only this kind of task")
    lst.add_argument("--campaign", help="only this campaign (name or id)")
    lst.add_argument("--limit", type=int, default=100, help="at most this many (default: 100)")
    lst.set_defaults(handler=_list)
    summary = commands.add_parser(
        "summary",
        help="tasks by kind: open, overdue, met, missed, refused",
        description="The same counts as the supervisor page, GET /api/followup/summary and the "
        "dialer_followup_* metrics.",
    )
    summary.add_argument("--campaign", help="only this campaign (name or id)")
    summary.set_defaults(handler=_summary)
    for sub in (lst, summary):
        add_config_options(sub)
