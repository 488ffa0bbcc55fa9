"""``dialer notify list|show|retry|mailed``: messages to people, what became of each, and the letters."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import Any

from dialer.cli import CliError
from dialer.cli.common import add_config_options, run_with_database
from dialer.leads.numbers import mask_numbers_in
from dialer.notify.messages import Channel, Status
from dialer.notify.store import get_notification, list_notifications, mark_mailed, retry_notification
from dialer.service import ServiceError
from dialer.store.db import Database


def _when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if value is not None else "-"


def _list(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise CliError("--limit must be 1 or more")

    async def work(db: Database) -> int:
        found = await list_notifications(db, status=args.status, channel=args.channel, limit=args.limit)
        if not found:
            print("no notification matches", file=sys.stderr)
            return 0
        rows = [
            ("ID", "CREATED (UTC)", "CHANNEL", "TO", "REASON", "STATUS", "TRIES", "SENT/NEXT (UTC)", "ERROR")
        ]
        for n in found:
            later = n["sent_at"] if n["sent_at"] is not None else n["next_try_at"]
            rows.append(
                (
                    str(n["id"]),
                    _when(n["created_at"]),
                    n["channel"],
                    n["recipient"],
                    n["reason"],
                    n["status"],
                    str(n["attempts"]),
                    _when(later),
                    (n["last_error"] or "")[:60],
                )
            )
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for row in rows:
            print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if len(found) == args.limit:
            print(f"only the newest {args.limit} are shown; raise --limit", file=sys.stderr)
        return 0

    return run_with_database(args, work)


def _show(args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        n = await _service(get_notification(db, args.notification_id))
        for key in ("id", "channel", "recipient", "reason", "ref", "status", "attempts", "message_id"):
            print(f"{key}: {n[key] if n[key] is not None else '-'}")
        for key in ("created_at", "next_try_at", "sent_at"):
            print(f"{key}: {_when(n[key])}")
        print(f"last_error: {n['last_error'] or '-'}")
        print(f"attachments: {', '.join(n['attachments']) or '-'}")
        print(f"subject: {mask_numbers_in(n['subject'])}")
        print()
        print(mask_numbers_in(n["body"]))  # numbers in the text are masked too
        return 0

    return run_with_database(args, work)


def _retry(args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        n = await _service(retry_notification(db, args.notification_id, now=datetime.now(UTC)))
        print(f"notification {n['id']}: failed -> pending; the delivery worker sends it at its next pass")
        return 0

    return run_with_database(args, work)


def _mailed(args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        n = await _service(mark_mailed(db, args.notification_id, now=datetime.now(UTC)))
        print(f"notification {n['id']}: letter marked posted ({_when(n['sent_at'])} UTC)")
        return 0

    return run_with_database(args, work)


async def _service(call: Any) -> dict[str, Any]:
    try:
        result: dict[str, Any] = await call
    except ServiceError as exc:
        raise CliError(str(exc)) from None
    return result


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("notify", help="messages to people (email, SMS, letters) and their status")
    commands = parser.add_subparsers(dest="notify_command", metavar="ACTION", required=True)

    lst = commands.add_parser(
        "list",
        help="the newest messages and what became of each (addresses and numbers masked)",
        description="One line per message: id, when it was queued (UTC), channel, recipient (masked), why "
        "it was sent, status (pending, sending, sent, failed, to_mail, mailed), tries, when it was sent or "
        "is next tried (UTC), and the last error.",
    )
    lst.add_argument("--status", choices=[s.value for s in Status], help="only this status")
    lst.add_argument("--channel", choices=[c.value for c in Channel], help="only this channel")
    lst.add_argument("--limit", type=int, default=50, help="at most this many (default: 50)")
    lst.set_defaults(handler=_list)

    show = commands.add_parser("show", help="one message in full: its body, attachments and history")
    show.add_argument("notification_id", type=int, metavar="ID", help="see `dialer notify list`")
    show.set_defaults(handler=_show)

    retry = commands.add_parser(
        "retry",
        help="send a failed message again",
        description="A failed message (refused, or given up after its tries) goes back to pending with its "
        "tries counted from zero; fix what its last error says first (an address, the [notify] settings).",
    )
    retry.add_argument(
        "notification_id", type=int, metavar="ID", help="see `dialer notify list --status failed`"
    )
    retry.set_defaults(handler=_retry)

    mailed = commands.add_parser(
        "mailed",
        help="mark a letter as posted",
        description="Letters (channel post) wait as to_mail for the back office to print and post them; "
        "this marks one posted (mailed) with today's date.",
    )
    mailed.add_argument(
        "notification_id", type=int, metavar="ID", help="see `dialer notify list --status to_mail`"
    )
    mailed.set_defaults(handler=_mailed)

    for sub in (lst, show, retry, mailed):
        add_config_options(sub)
