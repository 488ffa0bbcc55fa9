"""SMS through a real local HTTP server standing in for the gateway."""

from __future__ import annotations

import base64
import random
from urllib.parse import parse_qs, urlsplit

from dialer.notify.config import SmsSettings
from dialer.notify.messages import Channel, Status
from dialer.notify.sms import SmsGatewayNotifier
from dialer.notify.worker import DeliveryWorker
from dialer.store.db import Database
from tests.notify.conftest import Clock, SmsGateway, free_port
from tests.notify.helpers import queue, rows

MOBILE = "+33612345678"


def worker(db: Database, settings: SmsSettings, clock: Clock) -> DeliveryWorker:
    notifier = SmsGatewayNotifier(settings)
    return DeliveryWorker(db, {Channel.SMS: notifier}, wall=clock, rng=random.Random(1), backoff_s=60.0)


async def test_json_body_bearer_token_and_success_field(lite_db: Database, sms_gateway: SmsGateway) -> None:
    settings = SmsSettings(
        url=sms_gateway.url + "/v1/messages",
        sender="CallCenter",
        auth="bearer",
        token="tok-123",
        fields=(
            ("to", "{to}"),
            ("text", "{text}"),
            ("from", "{sender}"),
            ("idempotency_key", "{message_id}"),
        ),
        success_field="result.status",
        success_value="queued",
    )
    sms_gateway.answers = [(201, {"result": {"status": "queued", "id": "abc"}})]
    await queue(lite_db, MOBILE, channel="sms", body="Rendez-vous lundi 9 h, 12 rue X.")
    assert await worker(lite_db, settings, Clock()).send_due() == 1

    [row] = await rows(lite_db)
    assert row.status == Status.SENT
    [request] = sms_gateway.requests
    assert (request.method, request.path) == ("POST", "/v1/messages")
    assert request.headers["Authorization"] == "Bearer tok-123"
    assert request.json() == {
        "to": MOBILE,
        "text": "Rendez-vous lundi 9 h, 12 rue X.",
        "from": "CallCenter",
        "idempotency_key": row.message_id,
    }


async def test_form_body_basic_auth_and_url_template(lite_db: Database, sms_gateway: SmsGateway) -> None:
    settings = SmsSettings(
        url=sms_gateway.url + "/send?to={to}&from={sender}",
        sender="Call & Co",
        auth="basic",
        username="acct",
        password="pw:1",
        body="form",
        fields=(("message", "{text}"),),
        success_statuses=(200,),
    )
    await queue(lite_db, MOBILE, channel="sms", body="Votre code: 42 & plus")
    await worker(lite_db, settings, Clock()).send_due()

    [request] = sms_gateway.requests
    query = parse_qs(urlsplit(request.path).query)
    assert query == {"to": [MOBILE], "from": ["Call & Co"]}  # URL-encoded where they stand
    assert parse_qs(request.body.decode()) == {"message": ["Votre code: 42 & plus"]}
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(b"acct:pw:1").decode()
    assert (await rows(lite_db))[0].status == Status.SENT


async def test_gateway_answers_decide_retry_or_failure(lite_db: Database, sms_gateway: SmsGateway) -> None:
    settings = SmsSettings(url=sms_gateway.url + "/send", success_field="status", success_value="ok")
    sms_gateway.answers = [
        (503, {"error": "maintenance"}),
        (400, {"error": f"invalid number {MOBILE}"}),
        (200, {"status": "error", "detail": "no credit"}),
        (429, {"error": "slow down"}),
    ]
    await queue(lite_db, *(MOBILE for _ in range(4)), channel="sms")
    clock = Clock()
    w = worker(lite_db, settings, clock)
    w.batch = 1  # one at a time: the answers go in order
    for _ in range(4):
        await w.send_due()
    busy, invalid, no_credit, slow = await rows(lite_db)
    assert (busy.status, busy.attempts) == (Status.PENDING, 1) and "503" in (busy.last_error or "")
    assert invalid.status == Status.FAILED and "400" in (invalid.last_error or "")
    assert MOBILE not in (invalid.last_error or "")  # the number is masked
    assert no_credit.status == Status.FAILED and "status is 'error'" in (no_credit.last_error or "")
    assert slow.status == Status.PENDING and "429" in (slow.last_error or "")

    clock.advance(3600)
    await w.send_due()
    await w.send_due()
    assert {r.status for r in await rows(lite_db)} == {Status.SENT, Status.FAILED}
    assert len(sms_gateway.requests) == 6


async def test_gateway_down_is_a_temporary_failure(lite_db: Database) -> None:
    settings = SmsSettings(url=f"http://127.0.0.1:{free_port()}/send", timeout_s=2.0)
    await queue(lite_db, MOBILE, channel="sms")
    await worker(lite_db, settings, Clock()).send_due()
    [row] = await rows(lite_db)
    assert row.status == Status.PENDING and "ConnectError" in (row.last_error or "")


async def test_email_and_sms_wait_for_their_own_notifier(lite_db: Database, sms_gateway: SmsGateway) -> None:
    settings = SmsSettings(url=sms_gateway.url + "/send")
    await queue(lite_db, "bob@example.org")
    await queue(lite_db, MOBILE, channel="sms")
    await queue(lite_db, "Ann Smith, 1 High St", channel="post")
    assert await worker(lite_db, settings, Clock()).send_due() == 1  # only the SMS: no mail server here
    assert [r.status for r in await rows(lite_db)] == [Status.PENDING, Status.SENT, Status.TO_MAIL]


async def test_success_value_compares_as_json_spells_it(lite_db: Database, sms_gateway: SmsGateway) -> None:
    settings = SmsSettings(url=sms_gateway.url + "/send", success_field="ok", success_value="true")
    sms_gateway.answers = [(200, {"ok": True}), (200, {"ok": False})]
    await queue(lite_db, MOBILE, MOBILE, channel="sms")
    w = worker(lite_db, settings, Clock())
    w.batch = 1
    await w.send_due()
    await w.send_due()
    assert [r.status for r in await rows(lite_db)] == [Status.SENT, Status.FAILED]
