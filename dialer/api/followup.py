"""Callbacks and follow-up tasks: what is due and what is overdue."""

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from dialer.api.auth import Anyone, Supervisor
from dialer.followup.board import FollowupBoard, Summary, TaskView
from dialer.followup.levels import Kind
from dialer.followup.templates import load_templates
from dialer.service.desk import Desk


class FollowupTaskOut(BaseModel):
    id: int
    kind: str  # callback / information / follow_up / missed_call_back
    level: str  # open / overdue / met / missed / refused
    campaign: str
    lead_id: int
    number_masked: str
    agent_id: str | None
    channel: str | None
    created_at: datetime
    due_at: datetime
    done_at: datetime | None
    overdue_s: float
    callback_id: int | None
    notification_id: int | None
    source: str
    detail: str | None


class KindCounts(BaseModel):
    kind: str
    open: int
    overdue: int
    met: int
    missed: int
    refused: int


class FollowupSummaryOut(BaseModel):
    at: datetime
    overdue: int
    callbacks_overdue: int
    kinds: list[KindCounts]


class InformationTemplateOut(BaseModel):
    name: str
    label: str


def task_out(t: TaskView) -> FollowupTaskOut:
    return FollowupTaskOut(
        id=t.id,
        kind=t.kind.value,
        level=t.level.value,
        campaign=t.campaign,
        lead_id=t.lead_id,
        number_masked=t.number_masked,
        agent_id=t.agent_id,
        channel=t.channel,
        created_at=t.created_at,
        due_at=t.due_at,
        done_at=t.done_at,
        overdue_s=t.overdue_s,
        callback_id=t.callback_id,
        notification_id=t.notification_id,
        source=t.source,
        detail=t.detail,
    )


def summary_out(s: Summary) -> FollowupSummaryOut:
    return FollowupSummaryOut(
        at=s.at,
        overdue=s.overdue,
        callbacks_overdue=s.callbacks_overdue,
        kinds=[
            KindCounts(
                kind=k.value, open=t.open, overdue=t.overdue, met=t.met, missed=t.missed, refused=t.refused
            )
            for k, t in s.kinds.items()
        ],
    )


SETTLE_EVERY_S = 5.0  # every supervisor page polls; the tasks are settled once for all of them
Limit = Annotated[int, Query(ge=1, le=1000, description="at most this many, soonest due first")]


def router(desk: Desk) -> APIRouter:
    r = APIRouter(prefix="/api", tags=["follow-up"])
    board = FollowupBoard(desk.db, settle_every_s=SETTLE_EVERY_S)

    @r.get("/followup/tasks", response_model=list[FollowupTaskOut])
    async def tasks(
        who: Supervisor,
        overdue: Annotated[bool, Query(description="only tasks past their due time and not done")] = False,
        kind: Annotated[Kind | None, Query(description="only this kind")] = None,
        campaign_id: Annotated[int | None, Query(ge=1)] = None,
        done: Annotated[bool, Query(description="also tasks done (met, missed, refused)")] = False,
        limit: Limit = 200,
    ) -> list[FollowupTaskOut]:
        found = await board.tasks(
            datetime.now(UTC),
            overdue_only=overdue,
            kinds=[kind] if kind else [],
            campaign_id=campaign_id,
            include_done=done,
            limit=limit,
        )
        return [task_out(t) for t in found]

    @r.get("/followup/summary", response_model=FollowupSummaryOut)
    async def summary(
        who: Supervisor, campaign_id: Annotated[int | None, Query(ge=1)] = None
    ) -> FollowupSummaryOut:
        return summary_out(await board.summary(datetime.now(UTC), campaign_id))

    @r.get("/callbacks/overdue", response_model=list[FollowupTaskOut])
    async def overdue_callbacks(who: Supervisor, limit: Limit = 200) -> list[FollowupTaskOut]:
        return [task_out(t) for t in await board.overdue_callbacks(datetime.now(UTC), limit=limit)]

    @r.get("/followup/templates", response_model=list[InformationTemplateOut])
    async def templates(who: Anyone) -> list[InformationTemplateOut]:
        """The information an agent can promise by email (a disposition's information_template)."""
        return [InformationTemplateOut(name=t.name, label=t.label) for t in load_templates().values()]

    return r
