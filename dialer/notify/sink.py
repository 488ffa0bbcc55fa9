"""A local mail server and SMS gateway that keep what they receive: the demo's inboxes.

    sink = await LocalInboxes.start(workdir / "inboxes")
    settings = sink.notify_settings()      # [notify] pointing at them
    ...
    await sink.stop()

Every email is written to ``inboxes/mail/NNNN.eml`` and every SMS to
``inboxes/sms/NNNN.json``, so a person can open what the customers and the
salespeople would have received.  Both listen on 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from aiosmtpd.smtp import SMTP, Envelope, Session

from dialer.notify.config import NotifySettings, SmsSettings, SmtpSettings


@dataclass
class Received:
    """What the inboxes hold, counted as it arrives."""

    mail: list[Path] = field(default_factory=list)
    sms: list[Path] = field(default_factory=list)

    def emails(self) -> list[EmailMessage]:
        return [
            message_from_bytes(p.read_bytes(), _class=EmailMessage, policy=policy.default) for p in self.mail
        ]


class _MailHandler:
    def __init__(self, folder: Path, received: Received) -> None:
        self._folder = folder
        self._received = received

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.content if isinstance(envelope.content, bytes) else b""
        path = self._folder / f"{len(self._received.mail) + 1:04d}.eml"
        path.write_bytes(content)
        self._received.mail.append(path)
        return "250 kept"


class LocalInboxes:
    """An SMTP server and an HTTP SMS gateway on 127.0.0.1, each on a free port."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.received = Received()
        self.smtp_port = 0
        self.sms_port = 0
        self._servers: list[asyncio.base_events.Server] = []

    @classmethod
    async def start(cls, folder: Path) -> LocalInboxes:
        inboxes = cls(folder)
        (folder / "mail").mkdir(parents=True, exist_ok=True)
        (folder / "sms").mkdir(parents=True, exist_ok=True)
        loop = asyncio.get_running_loop()
        handler = _MailHandler(folder / "mail", inboxes.received)
        smtp = await loop.create_server(
            lambda: SMTP(handler, hostname="inboxes.local", loop=loop), host="127.0.0.1", port=0
        )
        sms = await asyncio.start_server(inboxes._serve_sms, host="127.0.0.1", port=0)
        inboxes._servers = [smtp, sms]
        inboxes.smtp_port = smtp.sockets[0].getsockname()[1]
        inboxes.sms_port = sms.sockets[0].getsockname()[1]
        return inboxes

    def notify_settings(self, sender: str = "Call center <contact@dialer.invalid>") -> NotifySettings:
        return NotifySettings(
            smtp=SmtpSettings(host="127.0.0.1", port=self.smtp_port, sender=sender, starttls=False),
            sms=SmsSettings(url=f"http://127.0.0.1:{self.sms_port}/send", sender="DIALER"),
            backoff_s=1.0,
            backoff_max_s=10.0,
            poll_s=0.5,
        )

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
            await server.wait_closed()

    async def _serve_sms(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Just enough HTTP/1.1 for one request per connection: keep the body, answer 202."""
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10.0)
            length = 0
            for line in head.decode("latin-1").split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip() or 0)
            body = await asyncio.wait_for(reader.readexactly(min(length, 1_000_000)), 10.0)
            path = self.folder / "sms" / f"{len(self.received.sms) + 1:04d}.json"
            path.write_text(json.dumps(_sms_fields(body), ensure_ascii=False, indent=1), encoding="utf-8")
            self.received.sms.append(path)
            answer = b'{"status":"queued"}'
            writer.write(
                b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nConnection: close\r\n"
                + f"Content-Length: {len(answer)}\r\n\r\n".encode()
                + answer
            )
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, ValueError, ConnectionError):
            writer.write(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
        finally:
            writer.close()


def _sms_fields(body: bytes) -> dict[str, Any]:
    text = body.decode("utf-8", "replace")
    try:
        fields = json.loads(text)
        return fields if isinstance(fields, dict) else {"body": fields}
    except json.JSONDecodeError:
        return {k: v[0] if len(v) == 1 else v for k, v in parse_qs(text).items()}
