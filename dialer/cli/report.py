"""``dialer report``: attempts, contacts, outcomes, abandon rate, talk/wrap time, conversions."""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Sequence

from dialer.cli.campaign import format_table
from dialer.cli.common import add_config_options, resolve_campaign, run_with_database
from dialer.cli.db import parse_when
from dialer.quality.scorecards import SCORECARD_COLUMNS, scorecard_rows, scorecards
from dialer.store.db import Database
from dialer.store.reports import AgentReport, CampaignReport

CAMPAIGN_COLUMNS = (
    "campaign",
    "attempts",
    "answered",
    "person_answered",
    "machines",
    "contacts",
    "abandoned",
    "abandon_rate",
    "avg_talk_s",
    "dispositions",
    "avg_wrap_s",
    "conversions",
    "conversion_rate",
    "outcomes",
)
AGENT_COLUMNS = (
    "agent",
    "calls",
    "talk_s",
    "avg_talk_s",
    "dispositions",
    "avg_wrap_s",
    "conversions",
    "codes",
)


def campaign_rows(reports: Sequence[CampaignReport]) -> list[tuple[str, ...]]:
    return [
        (
            r.campaign,
            str(r.attempts),
            str(r.answered),
            str(r.person_answered),
            str(r.machines),
            str(r.contacts),
            str(r.abandoned),
            f"{r.abandon_rate:.2%}",
            f"{r.avg_talk_seconds:.0f}",
            str(r.dispositions),
            f"{r.avg_wrap_seconds:.0f}",
            str(r.conversions),
            f"{r.conversion_rate:.2%}",
            " ".join(f"{k}={v}" for k, v in r.outcomes.items()),
        )
        for r in reports
    ]


def agent_rows(reports: Sequence[AgentReport]) -> list[tuple[str, ...]]:
    return [
        (
            r.agent_id,
            str(r.calls),
            f"{r.talk_seconds:.0f}",
            f"{r.avg_talk_seconds:.0f}",
            str(r.dispositions),
            f"{r.avg_wrap_seconds:.0f}",
            str(r.conversions),
            " ".join(f"{k}={v}" for k, v in r.codes.items()),
        )
        for r in reports
    ]


def _report(args: argparse.Namespace) -> int:
    since = parse_when(args.since, "--since") if args.since else None
    until = parse_when(args.until, "--until") if args.until else None

    async def work(db: Database) -> int:
        campaign_id = (await resolve_campaign(db, args.campaign)).id if args.campaign else None
        campaigns = await db.reports.campaign_report(since, until, campaign_id)
        agents = await db.reports.agent_report(since, until, campaign_id)
        cards = await scorecards(db, since=since, until=until, campaign_id=campaign_id)
        show_campaigns = args.by in ("campaign", "both")
        show_agents = args.by in ("agent", "both")
        if args.csv:
            writer = csv.writer(sys.stdout)
            if show_campaigns:
                writer.writerow(CAMPAIGN_COLUMNS)
                writer.writerows(campaign_rows(campaigns))
            if show_agents:
                if show_campaigns:
                    writer.writerow([])
                writer.writerow(AGENT_COLUMNS)
                writer.writerows(agent_rows(agents))
                writer.writerow([])
                writer.writerow(SCORECARD_COLUMNS)
                writer.writerows(scorecard_rows(cards))
            return 0
        if show_campaigns:
            print("per campaign")
            print(
                format_table([CAMPAIGN_COLUMNS, *campaign_rows(campaigns)]) if campaigns else "  no attempts"
            )
        if show_agents:
            if show_campaigns:
                print()
            print("per agent")
            print(
                format_table([AGENT_COLUMNS, *agent_rows(agents)]) if agents else "  no call reached an agent"
            )
            print("\nagent scorecards (time in seconds; score out of 100, trend against the period before)")
            rows = scorecard_rows(cards)
            print(format_table([SCORECARD_COLUMNS, *rows]) if rows else "  no agent activity")
        return 0

    return run_with_database(args, work)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "report",
        help="what campaigns and agents did over a period",
        description="Attempts, contacts, outcomes, abandon rate (abandoned / person-answered), talk and "
        "wrap-up time, conversions; per campaign and per agent.",
    )
    parser.add_argument("--campaign", help="only this campaign (name or id)")
    parser.add_argument("--since", help="from this date or date-time, UTC (e.g. 2026-11-01)")
    parser.add_argument("--until", help="up to (excluding) this date or date-time, UTC")
    parser.add_argument("--by", choices=("campaign", "agent", "both"), default="both")
    parser.add_argument("--csv", action="store_true", help="CSV on standard output instead of a table")
    add_config_options(parser)
    parser.set_defaults(handler=_report)
