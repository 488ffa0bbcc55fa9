"""``dialer scripts``, ``dialer complaints`` and ``dialer teams``: call quality from the command line.

dialer scripts show spring [--version 2]
dialer scripts edit spring --from script.toml [--product "Model 3"]   # or $EDITOR without --from
dialer complaints list [--overdue] [--status open]
dialer complaints add --complainant "J. Martin" --what "..." [--call ID] [--channel email --contact ...]
dialer complaints assign 3 --to sup2 | investigate 3 --text "..." | answer 3 --text "..." | close 3
dialer teams set agent1 north | dialer teams set agent1 --none | dialer teams list
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import subprocess
import tempfile
import tomllib
from datetime import UTC, datetime
from pathlib import Path

from dialer.cli import CliError
from dialer.cli.campaign import format_table
from dialer.cli.common import add_config_options, resolve_campaign, run_with_database
from dialer.quality import complaints as cp
from dialer.quality import scripts
from dialer.quality.teams import set_team, teams
from dialer.service import ServiceError
from dialer.store.db import Database

ACTOR = f"cli:{os.environ.get('USER', 'operator')}"


def _toml_string(text: str) -> str:
    return '"""\n' + text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"') + '"""'


def script_as_toml(sections: dict[str, str], product: str | None) -> str:
    lines = [
        "# The campaign's script: one text per section. Placeholders: "
        + ", ".join("{" + p + "}" for p in scripts.PLACEHOLDERS),
        f"product = {_toml_string(product or '')}" if product else '# product = "..."',
    ]
    for name in scripts.SECTIONS:
        lines.append(f"{name} = {_toml_string(sections.get(name, ''))}")
    return "\n".join(lines) + "\n"


def _read_script(path: Path) -> tuple[dict[str, str], str | None]:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise CliError(f"{path} is not valid TOML: {exc}") from None
    product = raw.pop("product", None)
    if product is not None and not isinstance(product, str):
        raise CliError(f"{path}: product must be a text")
    bad = [k for k, v in raw.items() if not isinstance(v, str)]
    if bad:
        raise CliError(f"{path}: {', '.join(bad)} must be text")
    return {k: v.strip("\n") for k, v in raw.items()}, (product.strip() or None) if product else None


def _scripts_show(args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        campaign = await resolve_campaign(db, args.campaign)
        try:
            s = await scripts.get_script(db, campaign.id, args.version)
        except scripts.ScriptError as exc:
            raise CliError(str(exc)) from None
        listed = await scripts.versions(db, campaign.id)
        print(
            f"# {campaign.name}: version {s.version} of {len(listed)}, by {s.created_by} "
            f"on {s.created_at:%Y-%m-%d %H:%M} UTC"
        )
        print(script_as_toml(s.sections, s.product), end="")
        return 0

    return run_with_database(args, work)


def _scripts_edit(args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        campaign = await resolve_campaign(db, args.campaign)
        if args.source is not None:
            sections, product = _read_script(args.source)
        else:
            try:
                current = await scripts.get_script(db, campaign.id)
                text = script_as_toml(current.sections, current.product)
            except scripts.ScriptError:
                text = script_as_toml({}, None)
            editor = os.environ.get("VISUAL") or os.environ.get("EDITOR")
            if not editor:
                raise CliError("set $EDITOR, or give the script as a file: --from script.toml")
            with tempfile.TemporaryDirectory() as folder:
                path = Path(folder) / "script.toml"
                path.write_text(text, encoding="utf-8")
                if await asyncio.to_thread(subprocess.call, [*shlex.split(editor), str(path)]) != 0:
                    raise CliError("the editor failed; the script was not changed")
                if path.read_text(encoding="utf-8") == text:
                    print("dialer: unchanged; no new version")
                    return 0
                sections, product = _read_script(path)
        try:
            saved = await scripts.save_script(
                db, campaign.id, sections, ACTOR, datetime.now(UTC), args.product or product
            )
        except scripts.ScriptError as exc:
            raise CliError(f"script not saved: {exc}") from None
        print(
            f"dialer: campaign {campaign.name}: script version {saved.version} saved; "
            "agents see it from their next call"
        )
        return 0

    return run_with_database(args, work)


def _complaint_rows(found: list[cp.ComplaintRecord], now: datetime) -> list[tuple[str, ...]]:
    return [
        (
            str(c.id),
            c.status.value + (" OVERDUE" if c.overdue(now) else ""),
            f"{c.due_at:%Y-%m-%d %H:%M}",
            c.complainant,
            c.channel,
            c.agent_id or "",
            str(c.campaign_id or ""),
            c.assigned_to or "",
            c.what[:60],
        )
        for c in found
    ]


def _complaints_list(args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        now = datetime.now(UTC)
        status = cp.ComplaintStatus(args.status) if args.status else None
        found = await cp.list_complaints(db, status=status, overdue_at=now if args.overdue else None)
        overdue = await cp.count_overdue(db, now)
        header = (
            "id",
            "status",
            "due (UTC)",
            "complainant",
            "channel",
            "agent",
            "campaign",
            "assigned",
            "what",
        )
        print(format_table([header, *_complaint_rows(found, now)]) if found else "no complaint")
        print(f"{overdue} complaint(s) past their deadline")
        return 0

    return run_with_database(args, work)


def _complaints_add(args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        campaign_id = (await resolve_campaign(db, args.campaign)).id if args.campaign else None
        try:
            c = await cp.record_complaint(
                db,
                ACTOR,
                complainant=args.complainant,
                what=args.what,
                now=datetime.now(UTC),
                channel=args.channel,
                contact=args.contact,
                attempt_id=args.call,
                agent_id=args.agent,
                campaign_id=campaign_id,
            )
        except cp.ComplaintError as exc:
            raise CliError(f"complaint not recorded: {exc}") from None
        print(
            f"dialer: complaint {c.id} recorded; answer due by {c.due_at:%Y-%m-%d %H:%M} UTC by {c.channel}"
        )
        return 0

    return run_with_database(args, work)


def _complaints_act(args: argparse.Namespace) -> int:
    action = cp.Action(args.action)

    async def work(db: Database) -> int:
        try:
            c = await cp.act(
                db,
                args.id,
                action,
                ACTOR,
                datetime.now(UTC),
                assignee=getattr(args, "to", None),
                text=getattr(args, "text", None),
            )
        except (cp.ComplaintError, cp.ComplaintNotFound) as exc:
            raise CliError(str(exc)) from None
        extra = (
            f"; the answer is queued as message {c.notification_id} ({c.channel})"
            if c.notification_id
            else ""
        )
        print(f"dialer: complaint {c.id} is {c.status.value}{extra}")
        return 0

    return run_with_database(args, work)


def _teams(args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        if args.teams_command == "set":
            if not args.none and not args.team:
                raise CliError("give the team, or --none to take the user out of their team")
            try:
                async with db.session() as s, s.begin():
                    await set_team(s, args.user, None if args.none else args.team)
            except ServiceError as exc:
                raise CliError(str(exc)) from None
            print(f"dialer: {args.user} is in {'no team' if args.none else 'team ' + args.team}")
            return 0
        async with db.read_session() as s:
            members = await teams(s)
        rows = [("user", "team"), *sorted(members.items(), key=lambda x: (x[1], x[0]))]
        print(format_table(rows) if members else "no team is configured: supervisors see every agent")
        return 0

    return run_with_database(args, work)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("scripts", help="a campaign's call script (versioned)")
    sub = parser.add_subparsers(dest="scripts_command", metavar="ACTION", required=True)
    show = sub.add_parser("show", help="print the script (TOML, as `edit` reads it)")
    show.add_argument("campaign", help="campaign name or id")
    show.add_argument("--version", type=int, help="an earlier version (default: the current one)")
    add_config_options(show)
    show.set_defaults(handler=_scripts_show)
    edit = sub.add_parser("edit", help="save a new version of the script, from a file or in $EDITOR")
    edit.add_argument("campaign", help="campaign name or id")
    edit.add_argument(
        "--from", dest="source", type=Path, metavar="FILE", help="the script as TOML (see `show`)"
    )
    edit.add_argument("--product", help="the product named by {product}")
    add_config_options(edit)
    edit.set_defaults(handler=_scripts_edit)

    parser = subparsers.add_parser(
        "complaints", help="complaints: record, assign, investigate, answer, close"
    )
    sub = parser.add_subparsers(dest="complaints_command", metavar="ACTION", required=True)
    listing = sub.add_parser("list", help="complaints by deadline, and how many are past it")
    listing.add_argument("--status", choices=[s.value for s in cp.ComplaintStatus])
    listing.add_argument("--overdue", action="store_true", help="only those past their deadline")
    add_config_options(listing)
    listing.set_defaults(handler=_complaints_list)
    add = sub.add_parser("add", help="record a complaint")
    add.add_argument("--complainant", required=True, help="the person's name")
    add.add_argument("--what", required=True, help="what the complaint is about")
    add.add_argument("--call", help="the call (attempt id) it is about: agent, campaign and customer follow")
    add.add_argument("--agent", help="the agent it is about")
    add.add_argument("--campaign", help="the campaign it is about (name or id)")
    add.add_argument("--channel", choices=("email", "sms", "post"), help="how to answer (default: preferred)")
    add.add_argument("--contact", help="the address or number to answer to")
    add_config_options(add)
    add.set_defaults(handler=_complaints_add)
    for action, helptext in (
        ("assign", "give it to someone to investigate"),
        ("investigate", "add findings"),
        ("answer", "answer the complainant through their channel"),
        ("close", "close an answered complaint"),
    ):
        p = sub.add_parser(action, help=helptext)
        p.add_argument("id", type=int, help="the complaint's number")
        if action == "assign":
            p.add_argument("--to", required=True, help="who investigates (a user id)")
        if action in ("investigate", "answer"):
            p.add_argument(
                "--text", required=True, help="the findings" if action == "investigate" else "the answer"
            )
        add_config_options(p)
        p.set_defaults(handler=_complaints_act, action=action)

    parser = subparsers.add_parser(
        "teams", help="teams: a supervisor in a team sees only its agents' quality"
    )
    sub = parser.add_subparsers(dest="teams_command", metavar="ACTION", required=True)
    setting = sub.add_parser("set", help="put a user in a team")
    setting.add_argument("user")
    setting.add_argument("team", nargs="?")
    setting.add_argument("--none", action="store_true", help="take the user out of their team")
    add_config_options(setting)
    setting.set_defaults(handler=_teams)
    listing = sub.add_parser("list", help="who is in which team")
    add_config_options(listing)
    listing.set_defaults(handler=_teams)
