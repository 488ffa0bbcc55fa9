"""Notifications: their status, for supervisors.

``GET /api/notifications`` lists the newest messages (filters: status, channel,
ref such as ``appointment:12``), recipients masked; ``GET /api/notifications/{id}``
gives one with its body; ``POST .../{id}/retry`` sends a failed one again;
``POST .../{id}/mailed`` marks a letter posted.
"""

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import AwareDatetime, BaseModel

from dialer.api.auth import Supervisor
from dialer.api.schemas import Problem
from dialer.notify.messages import Channel, Status
from dialer.notify.store import get_notification, list_notifications, mark_mailed, retry_notification
from dialer.notify.worker import wake_workers
from dialer.service.desk import Desk

_ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": Problem} for code in (401, 403, 404, 409, 422)}
NotificationId = Annotated[int, Path(ge=1, le=2**31 - 1)]


class NotificationOut(BaseModel):
    id: int
    channel: Channel
    recipient: str  # masked: j***@example.com, +33******789
    subject: str
    reason: str  # what caused it: appointment.booked, sale.confirmed, ...
    ref: str | None  # what it is about: appointment:12
    status: Status
    attempts: int
    created_at: AwareDatetime
    next_try_at: AwareDatetime | None  # pending: the next try; sending: the end of the worker's lease
    sent_at: AwareDatetime | None
    last_error: str | None
    campaign_id: int | None
    customer_id: int | None


class NotificationDetailOut(NotificationOut):
    body: str
    attachments: list[str]  # file names
    message_id: str  # the same on every try: receivers drop a second copy


def _aware(value: datetime | None) -> datetime | None:
    return value if value is None or value.tzinfo is not None else value.replace(tzinfo=UTC)


def _out(n: dict[str, Any]) -> NotificationOut:
    fields = {k: _aware(v) if isinstance(v, datetime) else v for k, v in n.items()}
    return NotificationOut.model_validate({k: fields[k] for k in NotificationOut.model_fields})


def router(desk: Desk) -> APIRouter:
    api = APIRouter(prefix="/api", tags=["notifications"], responses=_ERRORS)

    @api.get("/notifications", response_model=list[NotificationOut])
    async def notifications(
        who: Supervisor,
        status: Status | None = None,
        channel: Channel | None = None,
        ref: Annotated[str | None, Query(max_length=80, pattern=r"^[A-Za-z0-9._:-]+$")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[NotificationOut]:
        found = await list_notifications(
            desk.db,
            status=status.value if status else None,
            channel=channel.value if channel else None,
            ref=ref,
            limit=limit,
        )
        return [_out(n) for n in found]

    @api.get("/notifications/{notification_id}", response_model=NotificationDetailOut)
    async def notification(who: Supervisor, notification_id: NotificationId) -> NotificationDetailOut:
        n = await get_notification(desk.db, notification_id)
        return NotificationDetailOut(
            **_out(n).model_dump(), body=n["body"], attachments=n["attachments"], message_id=n["message_id"]
        )

    @api.post("/notifications/{notification_id}/retry", response_model=NotificationOut)
    async def retry(who: Supervisor, notification_id: NotificationId) -> NotificationOut:
        again = await retry_notification(desk.db, notification_id, now=datetime.now(UTC))
        wake_workers()
        return _out(again)

    @api.post("/notifications/{notification_id}/mailed", response_model=NotificationOut)
    async def mailed(who: Supervisor, notification_id: NotificationId) -> NotificationOut:
        return _out(await mark_mailed(desk.db, notification_id, now=datetime.now(UTC)))

    return api
