"""Campaign scripts: what the agent says, section by section, filled from the lead and the agent.

A script has five sections (opening, presentation, questions to ask,
objections and answers, closing) whose text may hold placeholders:
``{customer_name}``, ``{customer_first_name}``, ``{agent_name}``, ``{product}``
and ``{campaign}``.  Supervisors edit it; each save is a new version, and the
version an agent was shown for a call is kept with the call (``call_scripts``).
A value the record lacks shows as the placeholder's label in brackets, so the
agent sees what to ask rather than an empty gap.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.quality.tables import CallScript, ScriptVersion
from dialer.store.db import Database

SECTIONS = ("opening", "presentation", "questions", "objections", "closing")
SECTION_TITLES = {
    "opening": "Opening",
    "presentation": "Presentation",
    "questions": "Questions to ask",
    "objections": "Objections and answers",
    "closing": "Closing",
}
PLACEHOLDERS = {
    "customer_name": "customer's name",
    "customer_first_name": "customer's first name",
    "agent_name": "agent's name",
    "product": "product",
    "campaign": "campaign",
}
MAX_SECTION = 8000


class ScriptError(ValueError):
    """A script that cannot be saved or found; the message says what to fix."""


@dataclass(frozen=True, slots=True)
class Script:
    campaign_id: int
    version: int
    product: str | None
    sections: dict[str, str]
    created_by: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class FilledScript:
    campaign_id: int
    version: int
    sections: list[tuple[str, str, str]]  # (section, title, text filled in)


def check_sections(sections: Mapping[str, str]) -> dict[str, str]:
    """The sections as stored: known names only, placeholders the dialer can fill."""
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        raise ScriptError(f"unknown section(s) {', '.join(unknown)}; a script has {', '.join(SECTIONS)}")
    out: dict[str, str] = {}
    for name in SECTIONS:
        text = sections.get(name, "")
        if not isinstance(text, str):
            raise ScriptError(f"section {name}: give its text")
        if len(text) > MAX_SECTION:
            raise ScriptError(f"section {name} is {len(text)} characters: keep it under {MAX_SECTION}")
        try:
            fields = [f for _, f, _, _ in string.Formatter().parse(text) if f is not None]
        except ValueError as exc:
            raise ScriptError(f"section {name}: {exc}; write a literal brace as {{{{ or }}}}") from None
        bad = sorted({f for f in fields if f not in PLACEHOLDERS})
        if bad:
            raise ScriptError(
                f"section {name}: unknown placeholder(s) {', '.join('{' + b + '}' for b in bad)}; use "
                + ", ".join("{" + p + "}" for p in PLACEHOLDERS)
            )
        out[name] = text
    if not any(out.values()):
        raise ScriptError("the script is empty: write at least one section")
    return out


def fill(text: str, values: Mapping[str, str | None]) -> str:
    """The text with each placeholder replaced; a missing value shows as ``[label]``."""
    out: list[str] = []
    for literal, name, _, _ in string.Formatter().parse(text):
        out.append(literal)
        if name is not None:
            value = values.get(name)
            out.append(value if value else f"[{PLACEHOLDERS.get(name, name)}]")
    return "".join(out)


def _script(row: ScriptVersion) -> Script:
    return Script(
        row.campaign_id, row.version, row.product, dict(row.sections), row.created_by, row.created_at
    )


async def save_script(
    db: Database,
    campaign_id: int,
    sections: Mapping[str, str],
    actor: str,
    now: datetime,
    product: str | None = None,
) -> Script:
    """Save a new version of the campaign's script; agents see it from their next call."""
    checked = check_sections(sections)
    if product is not None and len(product) > 200:
        raise ScriptError("the product name is too long: at most 200 characters")
    async with db.session() as s, s.begin():
        latest = await _latest(s, campaign_id)
        row = ScriptVersion(
            campaign_id=campaign_id,
            version=1 if latest is None else latest.version + 1,
            product=product if product is not None else (latest.product if latest is not None else None),
            sections=checked,
            created_by=actor,
            created_at=now,
        )
        s.add(row)
        await s.flush()
        return _script(row)


async def _latest(s: AsyncSession, campaign_id: int) -> ScriptVersion | None:
    q = (
        select(ScriptVersion)
        .where(ScriptVersion.campaign_id == campaign_id)
        .order_by(ScriptVersion.version.desc())
        .limit(1)
    )
    return (await s.execute(q)).scalars().first()


async def get_script(db: Database, campaign_id: int, version: int | None = None) -> Script:
    async with db.read_session() as s:
        if version is None:
            row = await _latest(s, campaign_id)
        else:
            q = select(ScriptVersion).where(
                ScriptVersion.campaign_id == campaign_id, ScriptVersion.version == version
            )
            row = (await s.execute(q)).scalars().first()
    if row is None:
        which = "a script" if version is None else f"script version {version}"
        raise ScriptError(
            f"campaign {campaign_id} has no {which}; a supervisor writes it (dialer scripts edit)"
        )
    return _script(row)


async def versions(db: Database, campaign_id: int) -> list[tuple[int, str, datetime]]:
    async with db.read_session() as s:
        rows = await s.execute(
            select(ScriptVersion.version, ScriptVersion.created_by, ScriptVersion.created_at)
            .where(ScriptVersion.campaign_id == campaign_id)
            .order_by(ScriptVersion.version)
        )
        return [(v, by, at) for v, by, at in rows]


async def script_for_call(
    db: Database,
    attempt_id: str,
    campaign_id: int,
    values: Mapping[str, str | None],
    now: datetime,
) -> FilledScript | None:
    """The script to show for a call, filled in; the version shown is kept with the call.

    A call keeps the version it was first shown, even if the script changes during the call.
    """
    async with db.session() as s, s.begin():
        kept = await s.get(CallScript, attempt_id)
        if kept is not None:
            q = select(ScriptVersion).where(
                ScriptVersion.campaign_id == kept.campaign_id, ScriptVersion.version == kept.version
            )
            row = (await s.execute(q)).scalars().first()
        else:
            row = await _latest(s, campaign_id)
            if row is not None:
                s.add(
                    CallScript(
                        attempt_id=attempt_id, campaign_id=campaign_id, version=row.version, shown_at=now
                    )
                )
        if row is None:
            return None
        filled_values = {"product": row.product, **values}
        return FilledScript(
            row.campaign_id,
            row.version,
            [
                (name, SECTION_TITLES[name], fill(row.sections.get(name, ""), filled_values))
                for name in SECTIONS
                if row.sections.get(name)
            ],
        )


async def version_of_call(db: Database, attempt_id: str) -> int | None:
    async with db.read_session() as s:
        kept = await s.get(CallScript, attempt_id)
        return None if kept is None else kept.version
