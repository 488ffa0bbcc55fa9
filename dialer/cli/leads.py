"""``dialer leads import|update|export|list|show|reset|recycle``: a campaign's leads, in and out."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from dialer.cli import CliError
from dialer.cli.common import add_config_options, resolve_campaign, run_with_database
from dialer.domain.campaign import LeadStatus
from dialer.leads.exporter import export_leads
from dialer.leads.importer import (
    LEAD_FIELDS,
    ImportProgress,
    LeadImportError,
    database_failure,
    import_leads,
    parse_mapping,
)
from dialer.leads.updater import update_leads
from dialer.store.db import Database
from dialer.store.leads_repo import RECYCLABLE, LeadAdmin
from telephony.base import mask_number


class ProgressBar:
    """A one-line progress bar on stderr, redrawn at most a few times a second."""

    def __init__(self, label: str, enabled: bool) -> None:
        self._label = label
        self._enabled = enabled
        self._last = 0.0
        self._started = time.monotonic()

    def __call__(self, p: ImportProgress) -> None:
        now = time.monotonic()
        done = p.total_bytes > 0 and p.bytes_read >= p.total_bytes
        if not self._enabled or (now - self._last < 0.2 and not done):
            return
        self._last = now
        fraction = p.bytes_read / p.total_bytes if p.total_bytes else 1.0
        filled = int(fraction * 30)
        rate = p.rows / max(now - self._started, 1e-6)
        sys.stderr.write(
            f"\r{self._label} [{'#' * filled}{'.' * (30 - filled)}] {fraction:4.0%} "
            f"{p.rows:,} rows {rate:,.0f}/s"
        )
        if done:
            sys.stderr.write("\n")
        sys.stderr.flush()


def _default_country(jurisdiction: str) -> str:
    code = jurisdiction.split("-", 1)[0]
    if len(code) != 2:
        raise CliError(
            f"the campaign's jurisdiction {jurisdiction!r} is not a country; "
            "give the country of national numbers with --country, e.g. --country FR"
        )
    return "GB" if code == "UK" else code


def _statuses(text: str | None, option: str = "--status") -> list[LeadStatus]:
    statuses: list[LeadStatus] = []
    for name in (text or "").split(","):
        if name.strip():
            try:
                statuses.append(LeadStatus(name.strip()))
            except ValueError:
                raise CliError(
                    f"{option} {name.strip()!r} is not a lead status; "
                    f"one of: {', '.join(s.value for s in LeadStatus)}"
                ) from None
    return statuses


def _mapping(args: argparse.Namespace) -> dict[str, str]:
    try:
        return parse_mapping(args.map) if args.map else {}
    except LeadImportError as exc:
        raise CliError(str(exc)) from None


def _print_rejects(messages: list[str], total: int, rejects: object) -> None:
    for message in messages:
        print(message, file=sys.stderr)
    if total > len(messages):
        print(f"... and {total - len(messages)} more rejected rows, all in {rejects}", file=sys.stderr)


def _import(args: argparse.Namespace) -> int:
    mapping = _mapping(args)

    async def work(db: Database) -> int:
        campaign = await resolve_campaign(db, args.campaign)
        country = args.country or _default_country(campaign.settings.jurisdiction)
        rejects = args.rejects or args.file.with_name(args.file.stem + ".rejects.csv")
        bar = ProgressBar(f"importing {args.file.name}", enabled=not args.quiet and sys.stderr.isatty())
        try:
            report = await import_leads(
                db,
                args.file,
                campaign.id,
                country,
                mapping,
                rejects,
                progress=bar,
                encoding=args.encoding,
                list_name=args.list_name,
                no_header=args.no_header,
                workers=args.workers,
                actor=args.actor,
            )
        except LeadImportError as exc:
            raise CliError(str(exc)) from None
        except SQLAlchemyError as exc:
            raise CliError(
                f"{database_failure(exc)}; nothing more was imported, run the import again"
            ) from None
        for lost in report.repaired:
            print(
                f"lead list {lost.id} ({lost.name}) had been left 'importing' by an import that stopped; "
                f"it is now 'interrupted' and holds {lost.leads} leads (import its file again to add "
                "the rest: rows already imported are rejected as duplicates)",
                file=sys.stderr,
            )
        _print_rejects(report.messages, report.rejected_total, rejects)
        print(f"{report.summary()} in {report.seconds:.1f} s (lead list {report.lead_list_id})")
        return 0

    return run_with_database(args, work)


def _update(args: argparse.Namespace) -> int:
    mapping = _mapping(args)

    async def work(db: Database) -> int:
        campaign = await resolve_campaign(db, args.campaign)
        country = args.country or _default_country(campaign.settings.jurisdiction)
        rejects = args.rejects or args.file.with_name(args.file.stem + ".rejects.csv")
        try:
            report = await update_leads(
                db,
                args.file,
                campaign.id,
                country,
                mapping,
                rejects,
                encoding=args.encoding,
                no_header=args.no_header,
                actor=args.actor,
            )
        except LeadImportError as exc:
            raise CliError(str(exc)) from None
        except SQLAlchemyError as exc:
            raise CliError(
                f"{database_failure(exc)}; the batch in progress was not written, run the update again"
            ) from None
        _print_rejects(report.messages, report.rejected_total, rejects)
        print(f"{report.summary()} in {report.seconds:.1f} s")
        return 0

    return run_with_database(args, work)


def _export(args: argparse.Namespace) -> int:
    statuses = _statuses(args.status)

    async def work(db: Database) -> int:
        campaign = await resolve_campaign(db, args.campaign)
        if args.output is None or str(args.output) == "-":
            count = await export_leads(db, campaign.id, sys.stdout, statuses)
        else:
            try:
                with args.output.open("w", encoding="utf-8", newline="") as out:
                    count = await export_leads(db, campaign.id, out, statuses)
            except OSError as exc:
                raise CliError(
                    f"cannot write {args.output}: {exc.strerror}; choose another --output"
                ) from exc
        print(f"{count} leads of campaign {campaign.name} exported", file=sys.stderr)
        return 0

    return run_with_database(args, work)


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value is not None else "-"


def _name(first: str | None, last: str | None) -> str:
    return " ".join(p for p in (first, last) if p) or "-"


def _table(rows: Iterable[tuple[str, ...]], header: tuple[str, ...]) -> None:
    lines = [header, *rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())


def _list(args: argparse.Namespace) -> int:
    statuses = _statuses(args.status)
    if args.limit < 1:
        raise CliError("--limit must be 1 or more")

    async def work(db: Database) -> int:
        campaign = await resolve_campaign(db, args.campaign)
        leads = await LeadAdmin(db).leads(
            campaign.id, statuses=statuses, list_id=args.list, after_id=args.after, limit=args.limit
        )
        if not leads:
            print(f"no lead of campaign {campaign.name} matches", file=sys.stderr)
            return 0
        _table(
            (
                (
                    str(x.id),
                    mask_number(x.phone),
                    x.status.value,
                    str(x.attempt_count),
                    _when(x.next_attempt_at),
                    x.last_result or "-",
                    {True: "yes", False: "no", None: "-"}[x.consent],
                    str(x.lead_list_id),
                    _name(x.first_name, x.last_name),
                )
                for x in leads
            ),
            ("ID", "NUMBER", "STATUS", "TRIES", "NEXT (UTC)", "LAST", "CONSENT", "LIST", "NAME"),
        )
        if len(leads) == args.limit:
            print(f"more leads follow: add --after {leads[-1].id}", file=sys.stderr)
        return 0

    return run_with_database(args, work)


def _show(args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        lead = await LeadAdmin(db).lead(args.lead_id)
        campaign = await db.campaigns.get(lead.campaign_id)
        consent = {True: "yes", False: "no", None: "not recorded"}[lead.consent]
        if lead.consent_given_at is not None:
            consent += f", given {lead.consent_given_at.isoformat(timespec='seconds')}"
        if lead.consent_source:
            consent += f", source {lead.consent_source}"
        fields = [
            ("lead", str(lead.id)),
            ("campaign", f"{campaign.name} (id {campaign.id})"),
            ("list", str(lead.lead_list_id)),
            ("number", mask_number(lead.phone)),
            (
                "status",
                lead.status.value + (f" (claimed by node {lead.claimed_by})" if lead.claimed_by else ""),
            ),
            ("attempts", str(lead.attempt_count)),
            (
                "last attempt",
                _when(lead.last_attempt_at) + (f" ({lead.last_result})" if lead.last_result else ""),
            ),
            ("next attempt", _when(lead.next_attempt_at) + " UTC"),
            ("name", _name(lead.first_name, lead.last_name)),
            ("email", lead.email or "-"),
            ("external id", lead.external_id or "-"),
            ("time zones", f"{', '.join(lead.timezones) or 'unknown'} (from the {lead.timezone_source})"),
            ("consent", consent),
            ("priority", str(lead.priority)),
        ]
        fields += [(f"extra: {k}", str(v)) for k, v in sorted(lead.extra.items())]
        width = max(len(k) for k, _ in fields)
        for key, value in fields:
            print(f"{key.ljust(width)}  {value}")
        return 0

    return run_with_database(args, work)


def _reset(args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        done = await LeadAdmin(db).reset(args.lead_ids, actor=args.actor)
        print(
            f"{len(done)} lead(s) back to new, due now, with no attempt counted: "
            f"{', '.join(str(i) for i in done)}"
        )
        return 0

    return run_with_database(args, work)


def _recycle(args: argparse.Namespace) -> int:
    statuses = _statuses(args.status) or [LeadStatus.EXHAUSTED]

    async def work(db: Database) -> int:
        campaign = await resolve_campaign(db, args.campaign)
        count = await LeadAdmin(db).recycle(campaign.id, statuses, list_id=args.list, actor=args.actor)
        shown = ",".join(s.value for s in statuses)
        print(
            f"{count} {shown} lead(s) of campaign {campaign.name} back in the list "
            "(retry, due now, attempts counted from 0)"
        )
        return 0

    return run_with_database(args, work)


def _add_file_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="the CSV file")
    parser.add_argument("--campaign", required=True, help="campaign name or id")
    parser.add_argument(
        "--country", help="country of national numbers, e.g. FR (default: the campaign's jurisdiction)"
    )
    parser.add_argument(
        "--map",
        metavar="FIELD=COLUMN,...",
        help="which column holds which lead field, e.g. phone=Telephone,first_name=Prenom "
        "(with --no-header, columns by number: phone=2); "
        f"fields: {', '.join(LEAD_FIELDS)}",
    )
    parser.add_argument(
        "--no-header",
        action="store_true",
        help="the first line is a lead, not column names; name columns by number in --map (phone=2)",
    )
    parser.add_argument(
        "--rejects", type=Path, help="rejects CSV (default: FILE.rejects.csv beside the file)"
    )
    parser.add_argument("--encoding", help="force the file's encoding instead of detecting it")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("leads", help="import, update, export, list and reset a campaign's leads")
    commands = parser.add_subparsers(dest="leads_command", metavar="ACTION", required=True)

    imp = commands.add_parser(
        "import",
        help="import a CSV file of leads into a campaign",
        description="Import a CSV file (any delimiter; UTF-8, UTF-8 with BOM or Windows-1252/Latin-1). "
        "Numbers are normalized to E.164 for --country. Rows that cannot be imported (invalid number, "
        "a number with an extension or suffix, duplicate, bad value, a line that is not CSV) are counted "
        "and written to the rejects file with their line and reason. Consent columns: consent (yes/no), "
        "consent_given_at (2026-03-01 or 2026-03-01T14:30, UTC unless a zone is given), consent_source. "
        "Imports into one campaign may run at the same time: a number the other import added first is "
        "rejected as a duplicate.",
    )
    _add_file_options(imp)
    imp.add_argument("--list-name", help="name of the lead list (default: the file name)")
    imp.add_argument(
        "--workers",
        type=int,
        help="processes checking numbers (default: one per core beyond two, for big files)",
    )
    imp.add_argument("--quiet", action="store_true", help="no progress bar")
    imp.set_defaults(handler=_import)

    upd = commands.add_parser(
        "update",
        help="change existing leads of a campaign from a CSV file, found by number",
        description="Each row names a lead by its number and gives the fields to change: consent, "
        "consent_given_at, consent_source, timezone, names, email, external_id, priority; other columns "
        "are merged into the lead's extra fields. An empty cell changes nothing. A lead blocked for want "
        "of consent that gets consent goes back in the list, due now. Rows naming no lead of the campaign "
        "go to the rejects file.",
    )
    _add_file_options(upd)
    upd.set_defaults(handler=_update)

    exp = commands.add_parser("export", help="export a campaign's leads and where they stand, as CSV")
    exp.add_argument("--campaign", required=True, help="campaign name or id")
    exp.add_argument("--status", help="only these statuses, comma separated (e.g. exhausted,invalid)")
    exp.add_argument("--output", "-o", type=Path, help="CSV file to write (default: standard output)")
    exp.set_defaults(handler=_export)

    lst = commands.add_parser(
        "list",
        help="list a campaign's leads (numbers masked)",
        description="One line per lead, in id order: id, masked number, status, attempts, next attempt "
        "(UTC), last result, consent, lead list and name. Use the id with `dialer leads show ID`.",
    )
    lst.add_argument("--campaign", required=True, help="campaign name or id")
    lst.add_argument("--status", help="only these statuses, comma separated (e.g. blocked,exhausted)")
    lst.add_argument("--list", type=int, metavar="LIST_ID", help="only the leads of this lead list")
    lst.add_argument("--limit", type=int, default=50, help="at most this many leads (default: 50)")
    lst.add_argument("--after", type=int, default=0, metavar="LEAD_ID", help="start after this lead id")
    lst.set_defaults(handler=_list)

    show = commands.add_parser(
        "show",
        help="everything about one lead (number masked)",
        description="A lead's state, attempts, time zones, consent (with its date and source) and extra "
        "fields. The number is masked; the lead id names the lead.",
    )
    show.add_argument("lead_id", type=int, help="the lead's id (see `dialer leads list`)")
    show.set_defaults(handler=_show)

    reset = commands.add_parser(
        "reset",
        help="put leads back to new: due now, attempts counted from 0",
        description="Reset the given leads: status new, due now, no attempt counted. Refused, for all of "
        "them, when one is being dialed or waits for a disposition, or when its person asked not to be "
        "called (do_not_call).",
    )
    reset.add_argument("lead_ids", type=int, nargs="+", metavar="LEAD_ID")
    reset.set_defaults(handler=_reset)

    recycle = commands.add_parser(
        "recycle",
        help="put a campaign's finished leads back in the list",
        description="Leads of the given statuses (default: exhausted) go back to retry, due now, with "
        f"their attempts counted from 0. Recyclable statuses: {', '.join(s.value for s in RECYCLABLE)}; "
        "do_not_call leads never are.",
    )
    recycle.add_argument("--campaign", required=True, help="campaign name or id")
    recycle.add_argument("--status", help="statuses to recycle, comma separated (default: exhausted)")
    recycle.add_argument("--list", type=int, metavar="LIST_ID", help="only the leads of this lead list")
    recycle.set_defaults(handler=_recycle)

    for sub in (imp, upd, exp, lst, show, reset, recycle):
        add_config_options(sub)
        sub.add_argument("--actor", default="cli", help="who does this, for the audit trail (default: cli)")
