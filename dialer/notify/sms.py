"""SMS through an HTTP gateway described in the settings, not in code.

The URL and the body's fields are templates: ``{to}`` (E.164), ``{text}``,
``{sender}`` and ``{message_id}`` (stable across retries: a gateway that takes
an idempotency key drops a second copy).  In the URL they are URL-encoded.
The body is JSON, a form, or nothing (everything in the URL).  Success is an
HTTP status among ``success_statuses`` and, when configured, a field of the
JSON answer (``success_field``, dotted) equal to ``success_value``.

Answers: a refused or timed-out connection, 408, 425, 429 and 5xx are
temporary; any other status, or a success status whose answer does not say
success, is permanent (the gateway has spoken: sending again would not help,
or would send twice).
"""

from __future__ import annotations

import base64
import json
import logging
from typing import Any
from urllib.parse import quote

import httpx

from dialer.notify.config import SmsSettings
from dialer.notify.notifier import OutgoingMessage, SendResult, mask_recipient, scrub

log = logging.getLogger(__name__)

_TEMPORARY_STATUSES = {408, 425, 429}


def _field(answer: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(answer, dict) or part not in answer:
            return None
        answer = answer[part]
    return answer


class SmsGatewayNotifier:
    def __init__(self, settings: SmsSettings, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.settings = settings
        self._transport = transport

    def request(self, message: OutgoingMessage) -> httpx.Request:
        """The gateway request for one message (pure: the tests read it back)."""
        s = self.settings
        values = {
            "to": message.recipient,
            "text": message.body,
            "sender": s.sender,
            "message_id": message.message_id,
        }
        url = s.url.format(**{k: quote(v, safe="") for k, v in values.items()})
        headers = {"Accept": "application/json"}
        if s.auth == "bearer":
            headers["Authorization"] = f"Bearer {s.token}"
        elif s.auth == "basic":
            pair = base64.b64encode(f"{s.username}:{s.password}".encode()).decode("ascii")
            headers["Authorization"] = f"Basic {pair}"
        body = {name: template.format(**values) for name, template in s.fields}
        return httpx.Request(
            s.method,
            url,
            headers=headers,
            json=body if s.body == "json" else None,
            data=body if s.body == "form" else None,
        )

    async def send(self, message: OutgoingMessage) -> SendResult:
        s = self.settings
        request = self.request(message)
        try:
            async with httpx.AsyncClient(timeout=s.timeout_s, transport=self._transport) as client:
                response = await client.send(request)
        except httpx.HTTPError as exc:  # refused, unreachable, timed out, dropped
            return SendResult.temporary(f"SMS gateway {request.url.host}: {type(exc).__name__}")
        status = response.status_code
        if status not in s.success_statuses:
            what = f"SMS gateway answered {status}: {scrub(response.text, 200)}"
            if status in _TEMPORARY_STATUSES or status >= 500:
                return SendResult.temporary(what)
            return SendResult.permanent(what)
        if s.success_field:
            try:
                found = _field(response.json(), s.success_field)
            except (json.JSONDecodeError, UnicodeDecodeError):
                found = None
            said = found if isinstance(found, str) else json.dumps(found)  # true, 0, null as JSON spells them
            if found is None or said != s.success_value:
                return SendResult.permanent(
                    f"SMS gateway answered {status} but {s.success_field} is {found!r}, not "
                    f"{s.success_value!r}: {scrub(response.text, 200)}"
                )
        log.info(
            "notification %d: SMS to %s accepted by the gateway",
            message.id,
            mask_recipient(message.recipient),
        )
        return SendResult.accepted()
