"""What the record says about the follow-up of one call: the automatic items of the grids.

Each fact is answered yes / no / N/A with the reason, from the disposition, the
callbacks, the appointments, the messages queued to the customer (the
notifications table), the follow-up tasks the call created (``dialer.followup``:
they answer the callback, information and follow-up facts when present) and
the customer's preferred channel, against the
campaign's service levels (``CampaignSettings.missed_call_back_within_s``,
``info_email_within_s``, ``follow_up_within_s``).  A deadline not yet passed
is N/A ("not due yet"), never a "no".  This module is the only place that reads
the record for them, so a richer source (follow-up tasks) replaces it here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.domain.campaign import CampaignSettings, SettingsError
from dialer.followup.tasks import FollowupTask
from dialer.notify.messages import Notification
from dialer.quality.grids import Answer
from dialer.store.models import Appointment, Attempt, Callback, Campaign, Customer, DispositionRecord, Lead

_SENT = ("sent", "mailed")


@dataclass(frozen=True, slots=True)
class Fact:
    answer: Answer
    reason: str


def _within(settings: CampaignSettings | None, name: str, default: float) -> timedelta:
    return timedelta(seconds=float(getattr(settings, name, default)) if settings is not None else default)


def _hours(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:g} h"


async def call_facts(s: AsyncSession, attempt_id: str, now: datetime) -> dict[str, Fact]:
    """Every automatic fact of one call."""
    attempt = await s.get(Attempt, attempt_id)
    d = (
        await s.execute(select(DispositionRecord).where(DispositionRecord.attempt_id == attempt_id))
    ).scalar_one_or_none()
    names = (
        "callback_within_1h",
        "info_sent_within_2h",
        "follow_up_within_48h",
        "preferred_channel_respected",
        "name_and_contact_confirmed",
        "appointment_offered",
    )
    if attempt is None or d is None:
        return {n: Fact(Answer.NA, "the call has no disposition in the record") for n in names}
    settings: CampaignSettings | None
    campaign = await s.get(Campaign, attempt.campaign_id)
    try:
        settings = CampaignSettings.from_dict(campaign.settings) if campaign is not None else None
    except (SettingsError, ValueError, TypeError, KeyError):
        settings = None
    ended = attempt.ended_at or d.created_at
    customer = await s.get(Customer, d.customer_id)
    lead = await s.get(Lead, d.lead_id)
    preferred = (
        (customer.preferred_channel if customer is not None else None)
        or (lead.preferred_channel if lead is not None else None)
        or "phone"
    )
    callbacks = list(
        (
            await s.execute(
                select(Callback)
                .where(Callback.lead_id == d.lead_id, Callback.created_at >= attempt.created_at)
                .order_by(Callback.created_at)
            )
        ).scalars()
    )
    messages = list(
        (
            await s.execute(
                select(Notification)
                .where(
                    Notification.customer_id == d.customer_id, Notification.created_at >= attempt.created_at
                )
                .order_by(Notification.created_at)
            )
        ).scalars()
    )
    appointment = (await s.execute(select(Appointment.id).where(Appointment.disposition_id == d.id))).first()
    facts: dict[str, Fact] = {}
    tasks = list(
        (await s.execute(select(FollowupTask).where(FollowupTask.attempt_id == attempt_id))).scalars()
    )

    # A callback booked on this call: was the customer called back within the hour after the time agreed?
    within = _within(settings, "missed_call_back_within_s", 3600.0)
    if not callbacks:
        facts["callback_within_1h"] = Fact(Answer.NA, "no callback was booked on this call")
    else:
        cb = callbacks[0]
        made = (
            await s.execute(
                select(Attempt.created_at).where(Attempt.callback_id == cb.id).order_by(Attempt.created_at)
            )
        ).first()
        deadline = cb.due_at + within
        if made is not None and made[0] <= deadline:
            facts["callback_within_1h"] = Fact(Answer.YES, f"called back within {_hours(within)} of the time")
        elif made is not None or now > deadline:
            facts["callback_within_1h"] = Fact(Answer.NO, f"not called back within {_hours(within)}")
        else:
            facts["callback_within_1h"] = Fact(Answer.NA, "the callback is not due yet")

    # Information promised (a next action naming it, or a message about it): sent within 2 h?
    within = _within(settings, "info_email_within_s", 7200.0)
    promised = any("info" in a.lower() for a in (d.next_actions or [])) or any(
        "info" in m.reason for m in messages
    )
    if not promised:
        facts["info_sent_within_2h"] = Fact(Answer.NA, "no information was promised")
    else:
        deadline = ended + within
        sent = [m for m in messages if m.status in _SENT and m.sent_at is not None and m.sent_at <= deadline]
        if sent:
            facts["info_sent_within_2h"] = Fact(Answer.YES, f"{sent[0].channel} sent within {_hours(within)}")
        elif now > deadline:
            facts["info_sent_within_2h"] = Fact(Answer.NO, f"nothing was sent within {_hours(within)}")
        else:
            facts["info_sent_within_2h"] = Fact(Answer.NA, "not due yet")

    # A follow-up agreed within 48 h: a callback due or a message queued within the period.
    within = _within(settings, "follow_up_within_s", 172800.0)
    follow_ups = [("phone", cb.due_at) for cb in callbacks] + [(m.channel, m.created_at) for m in messages]
    if not d.contact:
        facts["follow_up_within_48h"] = Fact(Answer.NA, "no one was spoken to")
    elif any(at <= ended + within for _, at in follow_ups):
        facts["follow_up_within_48h"] = Fact(Answer.YES, f"a follow-up within {_hours(within)}")
    else:
        facts["follow_up_within_48h"] = Fact(Answer.NO, f"no follow-up within {_hours(within)} in the record")

    if not follow_ups:
        facts["preferred_channel_respected"] = Fact(Answer.NA, "no follow-up in the record")
    elif any(channel == preferred for channel, _ in follow_ups):
        facts["preferred_channel_respected"] = Fact(Answer.YES, f"followed up by {preferred}, as preferred")
    else:
        used = ", ".join(sorted({c for c, _ in follow_ups}))
        facts["preferred_channel_respected"] = Fact(Answer.NO, f"followed up by {used}; prefers {preferred}")

    identity = d.identity or {}
    if not d.contact:
        facts["name_and_contact_confirmed"] = Fact(Answer.NA, "no one was spoken to")
    else:
        name = bool(identity.get("first_name") or identity.get("last_name"))
        contact = bool(
            identity.get("email")
            or identity.get("address")
            or (customer is not None and (customer.email or customer.address))
        )
        if name and contact:
            facts["name_and_contact_confirmed"] = Fact(
                Answer.YES, "name confirmed, contact details on record"
            )
        else:
            lacking = [w for w, ok in (("the name", name), ("an email or address", contact)) if not ok]
            facts["name_and_contact_confirmed"] = Fact(Answer.NO, f"missing {' and '.join(lacking)}")

    if not d.contact:
        facts["appointment_offered"] = Fact(Answer.NA, "no one was spoken to")
    elif d.appointment_at is not None or appointment is not None:
        facts["appointment_offered"] = Fact(Answer.YES, "an appointment is booked")
    elif any("appointment" in a.lower() for a in (d.next_actions or [])):
        facts["appointment_offered"] = Fact(Answer.YES, "offered (next action)")
    else:
        facts["appointment_offered"] = Fact(Answer.NO, "no appointment booked or offered in the record")
    facts.update(_from_tasks(tasks, preferred, now))
    return facts


# The follow-up tasks the call created (dialer.followup) answer these facts when they exist.
_TASK_FACTS = {
    "callback": "callback_within_1h",
    "information": "info_sent_within_2h",
    "follow_up": "follow_up_within_48h",
}


def _from_tasks(tasks: list[FollowupTask], preferred: str, now: datetime) -> dict[str, Fact]:
    out: dict[str, Fact] = {}
    for task in sorted(tasks, key=lambda x: x.created_at):
        name = _TASK_FACTS.get(task.kind)
        if name is None or name in out:
            continue
        if task.status == "refused":
            out[name] = Fact(
                Answer.NA, f"the {task.kind.replace('_', ' ')} was refused: {task.detail or ''}".strip()
            )
        elif task.done_at is not None and task.done_at <= task.due_at:
            out[name] = Fact(Answer.YES, f"{task.kind.replace('_', ' ')} done by its deadline")
        elif task.done_at is not None or now > task.due_at:
            out[name] = Fact(Answer.NO, f"{task.kind.replace('_', ' ')} not done by its deadline")
        else:
            out[name] = Fact(Answer.NA, f"the {task.kind.replace('_', ' ')} is not due yet")
        if task.kind == "follow_up" and task.channel:
            out["preferred_channel_respected"] = (
                Fact(Answer.YES, f"follow-up by {task.channel}, as preferred")
                if task.channel == preferred
                else Fact(Answer.NO, f"follow-up by {task.channel}; prefers {preferred}")
            )
    return out
