"""``dialer campaign create|list|show|start|pause|stop``: campaigns and their settings."""

from __future__ import annotations

import argparse
import json
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dialer.cli import CliError
from dialer.cli.common import add_config_options, resolve_campaign, run_with_database, settings_of
from dialer.domain.campaign import (
    DEFAULT_RETRY_RULES,
    AmdPolicy,
    CallResult,
    CampaignSettings,
    CampaignStatus,
    LeadOrdering,
    PacingMode,
    SettingsError,
)
from dialer.domain.dispositions import CATALOGUE
from dialer.store.db import Database

# CLI option -> settings field, for the options that map one to one.
_SIMPLE_OPTIONS = {
    "dial_string": "dial_string",
    "caller_id": "caller_id",
    "caller_id_name": "caller_id_name",
    "pbx": "pbx",
    "pacing": "pacing_mode",
    "ratio": "dial_ratio",
    "max_lines": "max_lines_per_agent",
    "abandon_cap": "abandon_cap",
    "ring_timeout": "ring_timeout_s",
    "amd": "amd_policy",
    "id_message": "identification_message",
    "machine_message": "machine_message",
    "connect_limit": "connect_limit_s",
    "wrap_up_limit": "wrap_up_limit_s",
    "jurisdiction": "jurisdiction",
    "max_attempts": "max_attempts",
    "window": "window",
    "ordering": "ordering",
    "default_disposition": "default_disposition",
}


def _settings_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot read settings file {path}: {exc.strerror}") from exc
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise CliError(
            f"settings file {path} is not valid {path.suffix.lstrip('.') or 'JSON'}: {exc}"
        ) from exc
    if not isinstance(data, dict):
        raise CliError(f"settings file {path} must hold a table of settings")
    return data


def settings_from_args(args: argparse.Namespace) -> CampaignSettings:
    """Settings from --settings FILE, overridden by the options given on the command line."""
    values: dict[str, Any] = _settings_file(args.settings) if args.settings else {}
    for option, name in _SIMPLE_OPTIONS.items():
        value = getattr(args, option, None)
        if value is not None:
            values[name] = value
    if args.retry:
        rules = dict(values.get("retry_rules", {}))
        for item in args.retry:
            key, sep, rule = item.partition("=")
            if not sep:
                raise CliError(f"--retry {item!r} is not RESULT=DELAY_SECONDS:MAX_ATTEMPTS, e.g. busy=900:5")
            rules[key.strip()] = rule.strip()
        # --retry changes the named results only; the others keep their defaults.
        defaults = {
            r.value: {"delay_s": d.delay_s, "max_attempts": d.max_attempts}
            for r, d in DEFAULT_RETRY_RULES.items()
        }
        values["retry_rules"] = {**defaults, **rules}
    if args.dispositions:
        values["dispositions"] = [c.strip() for c in args.dispositions.split(",") if c.strip()]
    for required, option in (("dial_string", "--dial-string"), ("caller_id", "--caller-id")):
        if required not in values:
            raise CliError(f"{option} is required (or give it in --settings FILE)")
    try:
        return CampaignSettings.from_dict(values)
    except SettingsError as exc:
        raise CliError(str(exc)) from exc


def _refusal(args: argparse.Namespace, settings: CampaignSettings, action: str) -> None:
    """Refuse, before anything is written, a campaign this dialer could not dial: an unknown or
    loosening compliance profile, a PBX that is not in the config file."""
    from dialer.compliance.profiles import ProfileSet
    from dialer.domain.compliance import ProfileError
    from dialer.runtime.bootstrap import campaign_problem, profile_set

    node = settings_of(args)
    try:
        profiles: ProfileSet = profile_set(node)
    except ProfileError as exc:
        raise CliError(f"compliance profiles: {exc}") from None
    problem = campaign_problem(profiles, settings, node if settings.pbx != "default" or node.pbxs else None)
    if problem is not None:
        raise CliError(f"cannot {action}: {problem}")


def _requirements(settings: CampaignSettings, args: argparse.Namespace) -> list[str]:
    from dialer.runtime.bootstrap import jurisdiction_requirements, profile_set

    return jurisdiction_requirements(profile_set(settings_of(args)), settings.jurisdiction)


def _create(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    _refusal(args, settings, f"create campaign {args.name!r}")

    async def work(db: Database) -> int:
        record = await db.campaigns.create(args.name, settings, actor=args.actor)
        print(
            f"campaign {record.name!r} created with id {record.id} (status {record.status.value}); "
            f"import leads with `dialer leads import FILE --campaign {record.name}`, "
            f"then `dialer campaign start {record.name}`"
        )
        print(f"jurisdiction {settings.jurisdiction} requires:")
        for line in _requirements(settings, args):
            print(f"  {line}")
        print(
            f"identification message {settings.identification_message}: it must be on the PBX "
            "(README, 'The identification message'); `dialer run` refuses the campaign if the PBX lacks it"
        )
        return 0

    return run_with_database(args, work)


def _list(args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        campaigns = await db.campaigns.list()
        if not campaigns:
            print(
                "no campaign yet; create one with "
                "`dialer campaign create NAME --dial-string ... --caller-id ...`"
            )
            return 0
        rows = [("id", "name", "status", "pacing", "jurisdiction", "pbx", "leads", "due")]
        for c in campaigns:
            counts = await db.leads.count_by_status(c.id)
            due = sum(counts.get(s, 0) for s in ("new", "retry", "callback"))
            rows.append(
                (
                    str(c.id),
                    c.name,
                    c.status.value,
                    c.settings.pacing_mode.value,
                    c.settings.jurisdiction,
                    c.settings.pbx,
                    str(sum(counts.values())),
                    str(due),
                )
            )
        print(format_table(rows))
        return 0

    return run_with_database(args, work)


def _show(args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        c = await resolve_campaign(db, args.campaign)
        print(f"campaign {c.name} (id {c.id}): {c.status.value}, created {c.created_at:%Y-%m-%d %H:%M} UTC")
        refusal = await db.campaigns.refusal(c.id)
        if refusal is not None:
            at, node, reason = refusal
            print(f"  REFUSED by {node} at {at:%Y-%m-%d %H:%M} UTC, not dialing: {reason}")
            print(f"  fix it, then `dialer campaign start {c.name}`")
        settings = c.settings.to_dict()
        rules = settings.pop("retry_rules")
        width = max(len(k) for k in settings)
        for key, value in settings.items():
            shown = ", ".join(value) if isinstance(value, list) else value
            print(f"  {key:<{width}}  {shown if shown not in ('', None) else '-'}")
        print("  retry rules (result: delay, max attempts):")
        for result, rule in rules.items():
            print(f"    {result:<15} {rule['delay_s']:>7} s  {rule['max_attempts']}")
        counts = await db.leads.count_by_status(c.id)
        print("  leads: " + (", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "none"))
        return 0

    return run_with_database(args, work)


def _set_status(status: CampaignStatus) -> Any:
    def handler(args: argparse.Namespace) -> int:
        async def work(db: Database) -> int:
            c = await resolve_campaign(db, args.campaign)
            if status is CampaignStatus.RUNNING:
                _refusal(args, c.settings, f"start campaign {c.name}")
            before = c.status
            after = await db.campaigns.set_status(c.id, status, actor=args.actor)
            if before is after.status:
                print(f"campaign {c.name} is already {after.status.value}")
            else:
                print(f"campaign {c.name}: {before.value} -> {after.status.value}")
            return 0

        return run_with_database(args, work)

    return handler


def format_table(rows: Sequence[Sequence[str]]) -> str:
    """Rows as aligned columns; the first row is the header."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _add_settings_options(parser: argparse.ArgumentParser) -> None:
    results = ", ".join(
        r.value for r in CallResult if r not in (CallResult.CONNECTED, CallResult.INVALID_NUMBER)
    )
    parser.add_argument("--settings", type=Path, metavar="FILE", help="settings from a TOML or JSON file")
    parser.add_argument("--dial-string", help="channel template, e.g. 'PJSIP/{number}@trunk'")
    parser.add_argument("--caller-id", help="caller id number shown to the called person, e.g. +33123456789")
    parser.add_argument("--caller-id-name")
    parser.add_argument(
        "--pbx", help="a [pbx.NAME] of the config file (default: the node's PBX); another name is refused"
    )
    parser.add_argument("--pacing", choices=[m.value for m in PacingMode])
    parser.add_argument("--ratio", type=float, help="lines per ready agent (ratio mode)")
    parser.add_argument("--max-lines", type=float, help="most lines per agent the predictive mode may open")
    parser.add_argument("--abandon-cap", type=float, help="abandoned / person-answered ceiling, e.g. 0.03")
    parser.add_argument("--ring-timeout", type=float, help="seconds of ringing before giving up (>= 15)")
    parser.add_argument("--amd", choices=[p.value for p in AmdPolicy], help="answering-machine policy")
    parser.add_argument(
        "--message",
        "--id-message",
        dest="id_message",
        metavar="NAME",
        help="identification message played to a person when no agent is free: a sound name without "
        "extension, relative to the PBX's sounds directory (default: dialer-identification, shipped in "
        "config/sounds/)",
    )
    parser.add_argument("--machine-message", help="sound left on answering machines (amd leave_message)")
    parser.add_argument(
        "--connect-limit", type=float, help="seconds after the greeting to reach an agent (<= 2)"
    )
    parser.add_argument("--wrap-up-limit", type=float, help="seconds an agent has to qualify a call")
    parser.add_argument("--jurisdiction", help="compliance profile, e.g. FR, US, UK")
    parser.add_argument("--max-attempts", type=int, help="attempts per lead, whatever the results")
    parser.add_argument(
        "--retry",
        action="append",
        metavar="RESULT=DELAY:MAX",
        help=f"retry rule, repeatable, e.g. busy=900:5; results: {results}",
    )
    parser.add_argument("--window", help="daily dialing hours in the called person's time, e.g. 09:00-20:00")
    parser.add_argument("--ordering", choices=[o.value for o in LeadOrdering])
    parser.add_argument(
        "--dispositions", help=f"enabled dispositions, comma separated (default all: {', '.join(CATALOGUE)})"
    )
    parser.add_argument("--default-disposition", help="given when wrap-up ends without one")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("campaign", help="create, list, show, start, pause and stop campaigns")
    commands = parser.add_subparsers(dest="campaign_command", metavar="ACTION", required=True)

    create = commands.add_parser("create", help="create a campaign (in draft)")
    create.add_argument("name")
    _add_settings_options(create)
    create.set_defaults(handler=_create)

    listing = commands.add_parser("list", help="list campaigns with their lead counts")
    listing.set_defaults(handler=_list)

    show = commands.add_parser("show", help="show a campaign's settings and leads")
    show.add_argument("campaign", help="name or id")
    show.set_defaults(handler=_show)

    for action, status, text in (
        ("start", CampaignStatus.RUNNING, "start (or resume) dialing"),
        ("pause", CampaignStatus.PAUSED, "stop placing new calls for now"),
        ("stop", CampaignStatus.STOPPED, "stop the campaign"),
    ):
        sub = commands.add_parser(action, help=text)
        sub.add_argument("campaign", help="name or id")
        sub.set_defaults(handler=_set_status(status))

    for sub in (create, listing, show, *(commands.choices[a] for a in ("start", "pause", "stop"))):
        add_config_options(sub)
        sub.add_argument("--actor", default="cli", help="who does this, for the audit trail (default: cli)")
