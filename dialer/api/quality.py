"""Scripts, evaluation grids, scorecards and complaints.

Agents: the filled script of the call on their desk, their own evaluations and
scorecard, recording a complaint.  Supervisors: calls to evaluate (a seeded
weekly sample or a filter), the evaluation form with the dialer's own answers,
scoring, scorecards per agent / team / campaign, scripts, complaints.  Where
teams are configured a supervisor sees only their team; an agent only
themself.  Another team's call or agent answers 404, as one that does not exist.
"""

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from dialer.api.auth import Anyone, Supervisor
from dialer.quality import complaints as cp
from dialer.quality import evaluations as ev
from dialer.quality import sampling, scripts
from dialer.quality.grids import GridError, grid_names, grid_version
from dialer.quality.scorecards import scorecards
from dialer.recordings.links import signed_audio_url
from dialer.service import Invalid, NotFound, Refused
from dialer.service.accounts import Principal
from dialer.service.desk import Desk

AttemptId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]
CampaignId = Annotated[int, Path(ge=1, le=2**31 - 1)]
UserId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._@-]+$")]
GridName = Annotated[str, Query(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_]+$")]


class ItemAnswerIn(BaseModel):
    answer: Literal["yes", "no", "na"]
    comment: str | None = Field(default=None, max_length=2000)


class EvaluationIn(BaseModel):
    grid: str = Field(default="phone_contact", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_]+$")
    answers: dict[str, ItemAnswerIn] = Field(max_length=200)
    comment: str | None = Field(default=None, max_length=2000)


class ScriptIn(BaseModel):
    sections: dict[str, str] = Field(max_length=10)
    product: str | None = Field(default=None, max_length=200)


class ComplaintIn(BaseModel):
    complainant: str = Field(min_length=1, max_length=200)
    what: str = Field(min_length=1, max_length=4000)
    channel: Literal["email", "sms", "post"] | None = None
    contact: str | None = Field(default=None, max_length=320)
    attempt_id: str | None = Field(default=None, max_length=64)
    agent_id: str | None = Field(default=None, max_length=64)
    campaign_id: int | None = Field(default=None, ge=1, le=2**31 - 1)


class ComplaintActionIn(BaseModel):
    assignee: str | None = Field(default=None, max_length=64)
    text: str | None = Field(default=None, max_length=4000)


def _now() -> datetime:
    return datetime.now(UTC)


def _evaluation(e: ev.EvaluationRecord) -> dict[str, Any]:
    return {
        "id": e.id,
        "attempt_id": e.attempt_id,
        "agent_id": e.agent_id,
        "campaign_id": e.campaign_id,
        "grid": e.grid,
        "grid_version": e.grid_version,
        "evaluator": e.evaluator,
        "score": e.score,
        "answers": [
            {"item": a.item, "answer": a.answer.value, "comment": a.comment, "source": a.source}
            for a in e.answers
        ],
        "comment": e.comment,
        "call_at": e.call_at,
        "created_at": e.created_at,
    }


def _audio(attempt_id: str, recording: str | None, who: Principal) -> str | None:
    """A signed link the page's player uses without the token (dialer.recordings.links)."""
    return None if not recording else signed_audio_url(attempt_id, who)


def _candidate(c: sampling.Candidate, who: Principal) -> dict[str, Any]:
    return {
        "attempt_id": c.attempt_id,
        "agent_id": c.agent_id,
        "campaign_id": c.campaign_id,
        "campaign": c.campaign,
        "at": c.at,
        "talk_seconds": c.talk_seconds,
        "code": c.code,
        "evaluated": c.evaluated,
        "recording": _audio(c.attempt_id, c.recording, who),
    }


def _complaint(c: cp.ComplaintRecord, now: datetime) -> dict[str, Any]:
    return {
        "id": c.id,
        "complainant": c.complainant,
        "channel": c.channel,
        "attempt_id": c.attempt_id,
        "agent_id": c.agent_id,
        "campaign_id": c.campaign_id,
        "what": c.what,
        "recorded_by": c.recorded_by,
        "status": c.status.value,
        "assigned_to": c.assigned_to,
        "findings": c.findings,
        "answer": c.answer,
        "notification_id": c.notification_id,
        "created_at": c.created_at,
        "due_at": c.due_at,
        "answered_at": c.answered_at,
        "closed_at": c.closed_at,
        "overdue": c.overdue(now),
    }


def _script(s: scripts.Script) -> dict[str, Any]:
    return {
        "campaign_id": s.campaign_id,
        "version": s.version,
        "product": s.product,
        "sections": s.sections,
        "created_by": s.created_by,
        "created_at": s.created_at,
    }


def router(desk: Desk) -> APIRouter:
    r = APIRouter(prefix="/api", tags=["quality"])
    db = desk.db

    # -- the agent's side ------------------------------------------------------------------

    @r.get("/me/script")
    async def my_script(who: Anyone) -> dict[str, Any]:
        """The campaign's script for the call on your desk, filled with the customer's and your name."""
        call = await desk.current_call(who.user_id)
        if call is None:
            raise NotFound("no call on your desk")
        lead, customer = call.lead, call.customer
        first = (customer.first_name if customer else None) or (lead.first_name if lead else None)
        last = (customer.last_name if customer else None) or (lead.last_name if lead else None)
        values = {
            "customer_name": " ".join(p for p in (first, last) if p) or None,
            "customer_first_name": first,
            "agent_name": who.name,
            "campaign": call.campaign_name,
        }
        filled = await scripts.script_for_call(db, call.attempt_id, int(call.campaign_id), values, _now())
        if filled is None:
            raise NotFound(f"campaign {call.campaign_name} has no script")
        return {
            "attempt_id": call.attempt_id,
            "campaign_id": filled.campaign_id,
            "version": filled.version,
            "sections": [{"section": n, "title": t, "text": x} for n, t, x in filled.sections],
        }

    @r.post("/complaints", status_code=201)
    async def record_complaint(who: Anyone, body: ComplaintIn) -> dict[str, Any]:
        """Record a complaint (an agent who takes it on the phone, or a supervisor)."""
        try:
            c = await cp.record_complaint(
                db,
                who.user_id,
                complainant=body.complainant,
                what=body.what,
                now=_now(),
                channel=body.channel,
                contact=body.contact,
                attempt_id=body.attempt_id,
                agent_id=body.agent_id,
                campaign_id=body.campaign_id,
            )
        except cp.ComplaintError as exc:
            raise Invalid(str(exc)) from None
        return _complaint(c, _now())

    # -- evaluations and scorecards ------------------------------------------------------------

    @r.get("/quality/evaluations")
    async def evaluations(
        who: Anyone,
        agent: Annotated[str | None, Query(max_length=64)] = None,
        attempt: Annotated[str | None, Query(max_length=64)] = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[dict[str, Any]]:
        """Evaluations you may see: an agent their own, a team supervisor their team's."""
        try:
            found = await ev.list_evaluations(
                db, who.user_id, who.role.value, agent_id=agent, attempt_id=attempt, since=since, until=until
            )
        except ev.NotVisible as exc:
            raise NotFound(str(exc)) from None
        return [_evaluation(e) for e in found]

    @r.get("/quality/scorecards")
    async def cards(
        who: Anyone,
        by: Literal["agent", "team", "campaign"] = "agent",
        since: datetime | None = None,
        until: datetime | None = None,
        campaign: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    ) -> list[dict[str, Any]]:
        """Scorecards over ``[since, until)``: an agent sees only their own."""
        if who.role.value == "agent" and by != "agent":
            raise NotFound("an agent sees their own scorecard: by=agent")
        found = await scorecards(
            db,
            by=by,
            since=since,
            until=until,
            campaign_id=campaign,
            user_id=who.user_id,
            role=who.role.value,
        )
        return [c.to_dict() for c in found]

    @r.get("/quality/grids")
    async def grids(who: Supervisor) -> list[dict[str, Any]]:
        async with db.read_session() as s:
            return [{"name": n, "version": v} for n, v in await grid_names(s)]

    @r.get("/quality/grids/{name}")
    async def grid(who: Supervisor, name: str, version: int | None = None) -> dict[str, Any]:
        async with db.read_session() as s:
            try:
                g, v = await grid_version(s, name, version)
            except GridError as exc:
                raise NotFound(str(exc)) from None
        return {"version": v, **g.to_dict()}

    @r.get("/quality/calls")
    async def calls(
        who: Supervisor,
        since: datetime | None = None,
        until: datetime | None = None,
        agent: Annotated[str | None, Query(max_length=64)] = None,
        campaign: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
        code: Annotated[str | None, Query(max_length=40)] = None,
        min_talk_s: Annotated[float | None, Query(ge=0)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    ) -> list[dict[str, Any]]:
        """Calls that reached an agent, by filter, newest first."""
        found = await sampling.calls(
            db,
            who.user_id,
            who.role.value,
            since=since,
            until=until,
            agent_id=agent,
            campaign_id=campaign,
            code=code,
            min_talk_s=min_talk_s,
            limit=limit,
        )
        return [_candidate(c, who) for c in found]

    @r.get("/quality/sample")
    async def sample(
        who: Supervisor,
        week: Annotated[str | None, Query(pattern=r"^\d{4}-[Ww]\d{1,2}$")] = None,
        per_agent: Annotated[int, Query(ge=1, le=100)] = 3,
        seed: int = 0,
        campaign: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    ) -> list[dict[str, Any]]:
        """``per_agent`` calls drawn at random for each agent in the ISO week (this week by default)."""
        try:
            found = await sampling.weekly_sample(
                db,
                who.user_id,
                who.role.value,
                week or sampling.week_of(_now()),
                per_agent,
                seed=seed,
                campaign_id=campaign,
            )
        except ValueError as exc:
            raise Invalid(str(exc)) from None
        return [_candidate(c, who) for c in found]

    @r.get("/quality/calls/{attempt_id}/form")
    async def form(
        who: Supervisor, attempt_id: AttemptId, grid: GridName = "phone_contact"
    ) -> dict[str, Any]:
        """The grid for this call with the items the dialer answers from the record, and the call."""
        try:
            f = await ev.evaluation_form(db, who.user_id, who.role.value, attempt_id, grid, _now())
        except ev.NotVisible as exc:
            raise NotFound(str(exc)) from None
        except GridError as exc:
            raise NotFound(str(exc)) from None
        c = f.call
        return {
            "call": {
                "attempt_id": c.attempt_id,
                "agent_id": c.agent_id,
                "campaign_id": c.campaign_id,
                "campaign": c.campaign,
                "at": c.at,
                "talk_seconds": c.talk_seconds,
                "code": c.code,
                "recording": _audio(c.attempt_id, c.recording, who),
                "script_version": await scripts.version_of_call(db, c.attempt_id),
            },
            "grid": {"version": f.grid_version, **f.grid.to_dict()},
            "facts": {k: {"answer": v.answer.value, "reason": v.reason} for k, v in f.facts.items()},
        }

    @r.post("/quality/calls/{attempt_id}/evaluations", status_code=201)
    async def evaluate(who: Supervisor, attempt_id: AttemptId, body: EvaluationIn) -> dict[str, Any]:
        """Score the call; items left out that the dialer answers take its answer."""
        given = ev.answers_from({k: v.model_dump() for k, v in body.answers.items()})
        try:
            e = await ev.evaluate(
                db, who.user_id, who.role.value, attempt_id, body.grid, given, _now(), body.comment
            )
        except ev.NotVisible as exc:
            raise NotFound(str(exc)) from None
        except ev.Rejected as exc:
            raise Invalid(str(exc)) from None
        return _evaluation(e)

    # -- scripts --------------------------------------------------------------------------------

    @r.get("/campaigns/{campaign_id}/script")
    async def get_script(
        who: Supervisor, campaign_id: CampaignId, version: int | None = None
    ) -> dict[str, Any]:
        try:
            s = await scripts.get_script(db, campaign_id, version)
        except scripts.ScriptError as exc:
            raise NotFound(str(exc)) from None
        return {**_script(s), "versions": [v for v, _, _ in await scripts.versions(db, campaign_id)]}

    @r.put("/campaigns/{campaign_id}/script")
    async def put_script(who: Supervisor, campaign_id: CampaignId, body: ScriptIn) -> dict[str, Any]:
        """Save a new version of the script; agents see it from their next call."""
        await desk.campaign(campaign_id)  # 404 for a campaign that does not exist
        try:
            s = await scripts.save_script(db, campaign_id, body.sections, who.user_id, _now(), body.product)
        except scripts.ScriptError as exc:
            raise Invalid(str(exc)) from None
        return _script(s)

    # -- complaints --------------------------------------------------------------------------------

    @r.get("/complaints")
    async def complaints(
        who: Supervisor,
        status: cp.ComplaintStatus | None = None,
        overdue: bool = False,
    ) -> dict[str, Any]:
        """Complaints, oldest deadline first, with the count of those past their deadline."""
        now = _now()
        found = await cp.list_complaints(db, status=status, overdue_at=now if overdue else None)
        return {"overdue": await cp.count_overdue(db, now), "complaints": [_complaint(c, now) for c in found]}

    @r.post("/complaints/{complaint_id}/{action}")
    async def complaint_action(
        who: Supervisor,
        complaint_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
        action: cp.Action,
        body: ComplaintActionIn | None = None,
    ) -> dict[str, Any]:
        """assign (assignee), investigate (text: findings), answer (text: sent to the complainant), close."""
        body = body or ComplaintActionIn()
        try:
            c = await cp.act(
                db, complaint_id, action, who.user_id, _now(), assignee=body.assignee, text=body.text
            )
        except cp.ComplaintNotFound as exc:
            raise NotFound(str(exc)) from None
        except cp.BadComplaint as exc:
            raise Invalid(str(exc)) from None
        except cp.ComplaintError as exc:
            raise Refused(str(exc)) from None
        return _complaint(c, _now())

    return r
