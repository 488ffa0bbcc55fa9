"""``dialer leads import|export``: lead lists in and out of a campaign."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from dialer.cli import CliError
from dialer.cli.db import add_database_option, find_campaign, run_with_database
from dialer.domain.campaign import LeadStatus
from dialer.leads.exporter import export_leads
from dialer.leads.importer import LEAD_FIELDS, ImportProgress, LeadImportError, import_leads, parse_mapping
from dialer.store.db import Database


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


def _import(args: argparse.Namespace) -> int:
    mapping = parse_mapping(args.map) if args.map else {}

    async def work(db: Database) -> int:
        campaign = await find_campaign(db, args.campaign)
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
                workers=args.workers,
                actor=args.actor,
            )
        except LeadImportError as exc:
            raise CliError(str(exc)) from exc
        for message in report.messages:
            print(message, file=sys.stderr)
        if report.rejected_total > len(report.messages):
            print(
                f"... and {report.rejected_total - len(report.messages)} more rejected rows, "
                f"all in {rejects}",
                file=sys.stderr,
            )
        print(f"{report.summary()} in {report.seconds:.1f} s (lead list {report.lead_list_id})")
        return 0

    try:
        return run_with_database(args, work)
    except LeadImportError as exc:
        raise CliError(str(exc)) from exc


def _export(args: argparse.Namespace) -> int:
    statuses: list[LeadStatus] = []
    for name in (args.status or "").split(","):
        if name.strip():
            try:
                statuses.append(LeadStatus(name.strip()))
            except ValueError:
                raise CliError(
                    f"--status {name.strip()!r} is not a lead status; "
                    f"one of: {', '.join(s.value for s in LeadStatus)}"
                ) from None

    async def work(db: Database) -> int:
        campaign = await find_campaign(db, args.campaign)
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


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("leads", help="import and export lead lists")
    commands = parser.add_subparsers(dest="leads_command", metavar="ACTION", required=True)

    imp = commands.add_parser(
        "import",
        help="import a CSV file of leads into a campaign",
        description="Import a CSV file (any delimiter; UTF-8, UTF-8 with BOM or Windows-1252/Latin-1). "
        "Numbers are normalized to E.164 for --country. Rows that cannot be imported (invalid number, "
        "duplicate, bad value) are counted and written to the rejects file with their line and reason.",
    )
    imp.add_argument("file", type=Path)
    imp.add_argument("--campaign", required=True, help="campaign name or id")
    imp.add_argument(
        "--country", help="country of national numbers, e.g. FR (default: the campaign's jurisdiction)"
    )
    imp.add_argument(
        "--map",
        metavar="FIELD=COLUMN,...",
        help=f"which column holds which lead field, e.g. phone=Telephone,first_name=Prenom; "
        f"fields: {', '.join(LEAD_FIELDS)}",
    )
    imp.add_argument("--rejects", type=Path, help="rejects CSV (default: FILE.rejects.csv beside the file)")
    imp.add_argument("--encoding", help="force the file's encoding instead of detecting it")
    imp.add_argument("--list-name", help="name of the lead list (default: the file name)")
    imp.add_argument(
        "--workers",
        type=int,
        help="processes checking numbers (default: one per core beyond two, for big files)",
    )
    imp.add_argument("--quiet", action="store_true", help="no progress bar")
    imp.set_defaults(handler=_import)

    exp = commands.add_parser("export", help="export a campaign's leads and where they stand, as CSV")
    exp.add_argument("--campaign", required=True, help="campaign name or id")
    exp.add_argument("--status", help="only these statuses, comma separated (e.g. exhausted,invalid)")
    exp.add_argument("--output", "-o", type=Path, help="CSV file to write (default: standard output)")
    exp.set_defaults(handler=_export)

    for sub in (imp, exp):
        add_database_option(sub)
        sub.add_argument("--actor", default="cli", help="who does this, for the audit trail (default: cli)")
