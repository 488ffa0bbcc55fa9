"""``dialer sales list|withdraw|delivered|confirmation`` and ``dialer customers search|export|erase``.

Sales in their withdrawal period, a withdrawal received by post, phone or email,
the delivery date (the period's end follows from it) and a confirmation as a
PDF file; customer records searched, exported (JSON) or erased on request.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from dialer.cli import CliError
from dialer.cli.common import add_config_options, run_with_database, settings_of
from dialer.sales.customers import CustomerRecords
from dialer.sales.service import Sales, WithdrawalChannel
from dialer.service import ServiceError
from dialer.store.db import Database


def _run(args: argparse.Namespace, work: Callable[[Database, Sales], Awaitable[int]]) -> int:
    seller = settings_of(args).seller

    async def guarded(db: Database) -> int:
        try:
            return await work(db, Sales(db, seller))
        except ServiceError as exc:
            raise CliError(str(exc)) from None

    return run_with_database(args, guarded)


def _table(rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def _list(args: argparse.Namespace) -> int:
    async def work(db: Database, sales: Sales) -> int:
        views = await (sales.by_status(None) if args.all else sales.in_withdrawal_period())
        if not views:
            print(
                "no sale" + ("" if args.all else " in its withdrawal period (--all lists every sale)"),
                file=sys.stderr,
            )
            return 0
        rows = [
            ("ID", "REF", "CONTRACT", "DELIVERY", "WITHDRAWAL ENDS", "STATUS", "PRICE", "PRODUCT", "CUSTOMER")
        ]
        rows += [
            (
                str(v.id),
                v.ref,
                v.contract_date.isoformat(),
                v.delivery_date.isoformat() if v.delivery_date else "-",
                v.withdrawal_end.isoformat() if v.withdrawal_end else "after delivery",
                v.status,
                f"{v.price} {v.currency}",
                v.product,
                v.customer_name or "-",
            )
            for v in views
        ]
        _table(rows)
        return 0

    return _run(args, work)


def _received(text: str | None, zone: ZoneInfo) -> datetime:
    if text is None:
        return datetime.now(zone)
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise CliError(f"--received {text!r} is not a date and time; write 2026-02-14T18:30") from None
    return value.replace(tzinfo=zone) if value.tzinfo is None else value


def _withdraw(args: argparse.Namespace) -> int:
    known = [c.value for c in WithdrawalChannel]
    if args.channel not in known:
        raise CliError(f"--channel {args.channel!r} is not a channel; use one of: {', '.join(known)}")

    async def work(db: Database, sales: Sales) -> int:
        received = _received(args.received, sales.tz)
        view, decision = await sales.withdraw(
            args.sale_id, received, WithdrawalChannel(args.channel), args.actor
        )
        print(f"sale {view.id} ({view.ref}) withdrawn: {decision.reason}; no penalty is charged")
        return 0

    return _run(args, work)


def _delivered(args: argparse.Namespace) -> int:
    try:
        day = date.fromisoformat(args.on)
    except ValueError:
        raise CliError(f"{args.on!r} is not a date; write 2026-02-14") from None

    async def work(db: Database, sales: Sales) -> int:
        view = await sales.set_delivery(args.sale_id, day, args.actor)
        print(
            f"sale {view.id} ({view.ref}) delivered on {day.isoformat()}: "
            f"withdrawal accepted until {view.withdrawal_end}"
        )
        return 0

    return _run(args, work)


def _confirmation(args: argparse.Namespace) -> int:
    if args.output is not None and args.output.exists():
        raise CliError(f"{args.output} exists; give another --output")
    made: list[tuple[str, bytes]] = []

    async def work(db: Database, sales: Sales) -> int:
        made.append(await sales.confirmation(args.sale_id))
        return 0

    code = _run(args, work)
    name, pdf = made[0]
    out: Path = args.output or Path(name)
    if out.exists():
        raise CliError(f"{out} exists; give another --output")
    out.write_bytes(pdf)
    print(f"sale {args.sale_id}: confirmation written to {out}")
    return code


def _search(args: argparse.Namespace) -> int:
    async def work(db: Database, sales: Sales) -> int:
        found = await CustomerRecords(db).search(args.text)
        if not found:
            print("no customer record matches", file=sys.stderr)
            return 0
        rows = [("ID", "NUMBER", "NAME", "EMAIL", "LAST CONTACT")]
        rows += [
            (
                str(c.id),
                c.number_masked,
                " ".join(p for p in (c.first_name, c.last_name) if p) or "-",
                c.email or "-",
                c.last_contact_at.strftime("%Y-%m-%d %H:%M") if c.last_contact_at else "-",
            )
            for c in found
        ]
        _table(rows)
        return 0

    return _run(args, work)


def _export(args: argparse.Namespace) -> int:
    if args.output is not None and args.output.exists():
        raise CliError(f"{args.output} exists; give another --output")
    made: list[str] = []

    async def work(db: Database, sales: Sales) -> int:
        data = await CustomerRecords(db).export(args.customer_id, args.actor)
        made.append(json.dumps(data, ensure_ascii=False, indent=2))
        return 0

    code = _run(args, work)
    if args.output is None:
        print(made[0])
    else:
        args.output.write_text(made[0] + "\n", encoding="utf-8")
        print(
            f"customer {args.customer_id}: everything held about them written to {args.output}",
            file=sys.stderr,
        )
    return code


def _erase(args: argparse.Namespace) -> int:
    if not args.yes:
        raise CliError("erasure cannot be undone: add --yes once the person's request is checked")
    settings = settings_of(args)

    async def work(db: Database, sales: Sales) -> int:
        records = CustomerRecords(db, redis_url=settings.redis_url, redis_namespace=settings.redis_namespace)
        report = await records.erase(args.customer_id, args.actor)
        counts = ", ".join(f"{k} {v}" for k, v in sorted(report.counts.items()))
        print(
            f"customer {args.customer_id} erased ({counts}); "
            "their do-not-call entries are kept as a hashed number"
        )
        return 0

    return _run(args, work)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sales = subparsers.add_parser("sales", help="sales, their confirmations and withdrawal periods")
    commands = sales.add_subparsers(dest="sales_command", metavar="ACTION", required=True)
    lst = commands.add_parser(
        "list",
        help="sales in their withdrawal period, soonest end first",
        description="One line per sale: id, order reference, contract and delivery dates, the last day a "
        "withdrawal is accepted, status, price, product and customer.",
    )
    lst.add_argument("--all", action="store_true", help="every sale, withdrawn and past ones too")
    lst.set_defaults(handler=_list)
    withdraw = commands.add_parser(
        "withdraw",
        help="record a withdrawal received from the customer (it stops the sale, at no cost)",
        description="Accepted when received by the last day of the period (in the seller's time zone); "
        "refused after, with the reason. Either way it is kept in the audit trail.",
    )
    withdraw.add_argument("sale_id", type=int, metavar="SALE_ID", help="see `dialer sales list`")
    withdraw.add_argument(
        "--channel",
        required=True,
        help=f"how it was received: {', '.join(c.value for c in WithdrawalChannel)}",
    )
    withdraw.add_argument(
        "--received", help="when (ISO date-time, the seller's zone unless given; default: now)"
    )
    withdraw.set_defaults(handler=_withdraw)
    delivered = commands.add_parser("delivered", help="the day the goods were delivered (the period follows)")
    delivered.add_argument("sale_id", type=int, metavar="SALE_ID")
    delivered.add_argument("on", metavar="DATE", help="delivery date, e.g. 2026-02-14")
    delivered.set_defaults(handler=_delivered)
    confirmation = commands.add_parser("confirmation", help="write a sale's confirmation PDF to a file")
    confirmation.add_argument("sale_id", type=int, metavar="SALE_ID")
    confirmation.add_argument("--output", type=Path, help="file to write (default: confirmation-REF.pdf)")
    confirmation.set_defaults(handler=_confirmation)

    customers = subparsers.add_parser("customers", help="customer records: search, export, erase on request")
    actions = customers.add_subparsers(dest="customers_command", metavar="ACTION", required=True)
    search = actions.add_parser("search", help="records by name, email or a number's last digits")
    search.add_argument("text", metavar="TEXT")
    search.set_defaults(handler=_search)
    export = actions.add_parser("export", help="everything held about a person, as JSON")
    export.add_argument("customer_id", type=int, metavar="CUSTOMER_ID", help="see `dialer customers search`")
    export.add_argument("--output", type=Path, help="file to write (default: standard output)")
    export.set_defaults(handler=_export)
    erase = actions.add_parser(
        "erase",
        help="erase a person's data on request (their do-not-call entry stays, hashed)",
        description="Blanks every personal field held about the person (names, number, email, address, "
        "comments, messages); calls, dispositions and sales keep their figures. Refused while a call with "
        "them is in progress.",
    )
    erase.add_argument("customer_id", type=int, metavar="CUSTOMER_ID")
    erase.add_argument("--yes", action="store_true", help="confirm: erasure cannot be undone")
    erase.set_defaults(handler=_erase)
    for sub in (lst, withdraw, delivered, confirmation, search, export, erase):
        add_config_options(sub)
        sub.add_argument("--actor", default="cli", help="who does this, for the audit trail (default: cli)")
