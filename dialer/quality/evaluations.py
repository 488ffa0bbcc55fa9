"""Scoring calls against a grid: the form (with the dialer's own answers), the evaluation, the list.

The form for a call holds the grid's current version, every automatic item
answered from the record with its reason, and the call itself (agent,
campaign, time, recording when one exists).  The evaluation stores each
item's answer, comment and source (a person or the system), the grid version
and the weighted score, in one transaction.  Who may see what is decided by
:mod:`dialer.quality.teams`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.quality.facts import Fact, call_facts
from dialer.quality.grids import Answer, Grid, GridError, grid_version, score, shipped_grids, store_grid
from dialer.quality.tables import Evaluation, GridVersion
from dialer.quality.teams import allowed, visible_agents
from dialer.store.db import Database
from dialer.store.models import Attempt, Campaign, DispositionRecord

MAX_COMMENT = 2000

log = logging.getLogger(__name__)


class QualityError(Exception):
    """Base of the quality errors the entry points turn into answers."""


class NotVisible(QualityError):
    """Not found, or not visible to this user (the same answer for both)."""


class Rejected(QualityError):
    """Bad input; the message says what to fix."""


@dataclass(frozen=True, slots=True)
class CallInfo:
    attempt_id: str
    agent_id: str
    campaign_id: int
    campaign: str
    at: datetime
    talk_seconds: float | None
    code: str | None  # the disposition
    recording: str | None  # where the call's recording is, when there is one


@dataclass(frozen=True, slots=True)
class EvaluationForm:
    call: CallInfo
    grid: Grid
    grid_version: int
    facts: dict[str, Fact]  # by item id: the dialer's answers


@dataclass(frozen=True, slots=True)
class ItemAnswer:
    item: str
    answer: Answer
    comment: str | None = None
    source: str = "person"  # person / system


@dataclass(frozen=True, slots=True)
class EvaluationRecord:
    id: int
    attempt_id: str
    agent_id: str
    campaign_id: int
    grid: str
    grid_version: int
    evaluator: str
    score: float | None
    answers: list[ItemAnswer]
    comment: str | None
    call_at: datetime | None
    created_at: datetime


def _record(e: Evaluation) -> EvaluationRecord:
    return EvaluationRecord(
        e.id,
        e.attempt_id,
        e.agent_id,
        e.campaign_id,
        e.grid,
        e.grid_version,
        e.evaluator,
        e.score,
        [
            ItemAnswer(a["item"], Answer(a["answer"]), a.get("comment"), a.get("source", "person"))
            for a in e.answers
        ],
        e.comment,
        e.call_at,
        e.created_at,
    )


async def sync_grids(db: Database, now: datetime | None = None) -> dict[str, int]:
    """Store the shipped grid files; a changed file becomes a new version.  name -> current version."""
    now = now or datetime.now(UTC)
    try:
        grids = shipped_grids()
    except GridError as exc:
        raise Rejected(str(exc)) from None
    async with db.session() as s, s.begin():
        return {name: await store_grid(s, grid, now) for name, grid in grids.items()}


async def store_shipped_grids(db: Database) -> None:
    """At the node's start: store the grid files; a file that cannot be read is logged, not fatal."""
    try:
        versions = await sync_grids(db)
    except Rejected as exc:
        log.error("evaluation grids not loaded: %s; fix the file, the other grids keep their versions", exc)
        return
    log.info("evaluation grids: %s", ", ".join(f"{n} v{v}" for n, v in sorted(versions.items())) or "none")


async def _call(s: AsyncSession, attempt_id: str) -> CallInfo:
    attempt = await s.get(Attempt, attempt_id)
    if attempt is None or attempt.agent_id is None:
        raise NotVisible(f"no call {attempt_id} that reached an agent")
    campaign = await s.get(Campaign, attempt.campaign_id)
    code = (
        await s.execute(select(DispositionRecord.code).where(DispositionRecord.attempt_id == attempt_id))
    ).scalar_one_or_none()
    recording = getattr(attempt, "recording", None) or attempt.recording_file
    return CallInfo(
        attempt.id,
        attempt.agent_id,
        attempt.campaign_id,
        campaign.name if campaign is not None else str(attempt.campaign_id),
        attempt.connected_at or attempt.created_at,
        attempt.talk_seconds,
        code,
        str(recording) if recording else None,
    )


async def evaluation_form(
    db: Database, user_id: str, role: str, attempt_id: str, grid_name: str, now: datetime
) -> EvaluationForm:
    async with db.session() as s, s.begin():
        call = await _call(s, attempt_id)
        if not allowed(await visible_agents(s, user_id, role), [call.agent_id]) or role == "agent":
            raise NotVisible(f"no call {attempt_id} that reached an agent")
        await _ensure_grid(s, grid_name, now)
        grid, version = await grid_version(s, grid_name)
        facts = await call_facts(s, attempt_id, now)
    return EvaluationForm(call, grid, version, {i.id: facts[i.auto] for i in grid.items if i.auto})


async def _ensure_grid(s: AsyncSession, name: str, now: datetime) -> None:
    """A shipped grid is stored on first use, so a fresh record can evaluate at once.

    Later changes to the file become versions through :func:`sync_grids` (the daemon's start).
    """
    if (await s.execute(select(GridVersion.id).where(GridVersion.name == name).limit(1))).first():
        return
    try:
        grids = shipped_grids()
    except GridError:
        grids = {}
    if name in grids:
        await store_grid(s, grids[name], now)


async def evaluate(
    db: Database,
    evaluator: str,
    role: str,
    attempt_id: str,
    grid_name: str,
    answers: Sequence[ItemAnswer],
    now: datetime,
    comment: str | None = None,
) -> EvaluationRecord:
    """Score one call.  Items the person leaves out that the dialer answers take the dialer's answer."""
    if role == "agent":
        raise NotVisible(f"no call {attempt_id} that reached an agent")
    if comment is not None and len(comment) > MAX_COMMENT:
        raise Rejected(f"the comment is {len(comment)} characters: keep it under {MAX_COMMENT}")
    async with db.session() as s, s.begin():
        call = await _call(s, attempt_id)
        if not allowed(await visible_agents(s, evaluator, role), [call.agent_id]):
            raise NotVisible(f"no call {attempt_id} that reached an agent")
        await _ensure_grid(s, grid_name, now)
        try:
            grid, version = await grid_version(s, grid_name)
        except GridError as exc:
            raise Rejected(str(exc)) from None
        facts = await call_facts(s, attempt_id, now)
        given: dict[str, ItemAnswer] = {}
        for a in answers:
            if a.item in given:
                raise Rejected(f"item {a.item} is answered twice")
            if a.comment is not None and len(a.comment) > MAX_COMMENT:
                raise Rejected(f"item {a.item}: keep the comment under {MAX_COMMENT} characters")
            given[a.item] = ItemAnswer(a.item, Answer(a.answer), a.comment or None, "person")
        for item in grid.items:
            if item.id not in given and item.auto:
                fact = facts[item.auto]
                given[item.id] = ItemAnswer(item.id, fact.answer, fact.reason, "system")
        try:
            value = score(grid, {k: v.answer for k, v in given.items()})
        except GridError as exc:
            raise Rejected(str(exc)) from None
        ordered = [given[i.id] for i in grid.items]
        row = Evaluation(
            attempt_id=attempt_id,
            agent_id=call.agent_id,
            campaign_id=call.campaign_id,
            grid=grid.name,
            grid_version=version,
            evaluator=evaluator,
            answers=[
                {"item": a.item, "answer": a.answer.value, "comment": a.comment, "source": a.source}
                for a in ordered
            ],
            score=value,
            comment=comment or None,
            call_at=call.at,
            created_at=now,
        )
        s.add(row)
        await s.flush()
        return _record(row)


async def list_evaluations(
    db: Database,
    user_id: str,
    role: str,
    *,
    agent_id: str | None = None,
    attempt_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 200,
) -> list[EvaluationRecord]:
    """Evaluations this user may see, newest first."""
    async with db.read_session() as s:
        visible = await visible_agents(s, user_id, role)
        if agent_id is not None and not allowed(visible, [agent_id]):
            raise NotVisible(f"no evaluations of agent {agent_id} that you may see")
        q = select(Evaluation).order_by(Evaluation.created_at.desc(), Evaluation.id.desc()).limit(limit)
        if visible is not None:
            q = q.where(Evaluation.agent_id.in_(sorted(visible)))
        if agent_id is not None:
            q = q.where(Evaluation.agent_id == agent_id)
        if attempt_id is not None:
            q = q.where(Evaluation.attempt_id == attempt_id)
        if since is not None:
            q = q.where(Evaluation.created_at >= since)
        if until is not None:
            q = q.where(Evaluation.created_at < until)
        return [_record(e) for e in (await s.execute(q)).scalars()]


def answers_from(raw: Mapping[str, Any]) -> list[ItemAnswer]:
    """{"item": "yes"} or {"item": {"answer": "yes", "comment": "..."}} as item answers."""
    out: list[ItemAnswer] = []
    for item, value in raw.items():
        answer, comment = (
            (value.get("answer"), value.get("comment")) if isinstance(value, dict) else (value, None)
        )
        try:
            out.append(ItemAnswer(str(item), Answer(str(answer)), comment))
        except ValueError:
            raise Rejected(f"item {item}: answer yes, no or na (got {answer!r})") from None
    return out
