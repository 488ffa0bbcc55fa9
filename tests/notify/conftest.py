"""Real servers for the notification tests: an SMTP server (aiosmtpd) and an HTTP SMS gateway.

Both run in threads of their own on 127.0.0.1 and record what they received,
so a test reads back the very bytes a mail server or a gateway got.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from dialer.store.db import Database
from tests.conftest import PG_ADMIN_DSN, _pg_admin

T0 = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)


class Clock:
    """A wall clock the test moves."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Handler:
    def __init__(self, server: MailServer) -> None:
        self.server = server

    async def handle_RCPT(
        self, smtp: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.startswith("nobody@"):
            return "550 5.1.1 <" + address + ">: no such mailbox here"
        if address.startswith("later@"):
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, smtp: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content
        assert isinstance(raw, bytes)
        with self.server.lock:
            self.server.received.append(raw)
        return "250 2.0.0 queued"


@dataclass
class MailServer:
    """An SMTP server on a fixed port that a test starts and stops (down = the port is closed)."""

    port: int = field(default_factory=free_port)
    tls_cert: tuple[Path, Path] | None = None  # (cert, key): STARTTLS required, and a login
    implicit_tls: bool = False  # with tls_cert: TLS from the first byte (port 465) instead of STARTTLS
    logins: dict[str, str] = field(default_factory=dict)
    received: list[bytes] = field(default_factory=list)
    logged_in: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _controller: Controller | None = None

    def start(self) -> None:
        kwargs: dict[str, Any] = {}
        if self.tls_cert is not None and self.implicit_tls:
            import ssl

            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*self.tls_cert)
            # aiosmtpd does not see the TLS under it: AUTH is offered on this (encrypted) connection anyway.
            kwargs.update(
                ssl_context=context,
                auth_required=True,
                auth_require_tls=False,
                authenticator=self._authenticate,
            )
        elif self.tls_cert is not None:
            import ssl

            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*self.tls_cert)
            kwargs.update(
                tls_context=context,
                require_starttls=True,
                auth_required=True,
                authenticator=self._authenticate,
            )
        self._controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port, **kwargs)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        user, password = auth_data.login.decode(), auth_data.password.decode()
        ok = self.logins.get(user) == password
        if ok:
            self.logged_in.append(user)
        return AuthResult(success=ok, handled=False)

    def messages(self) -> list[EmailMessage]:
        with self.lock:
            raw = list(self.received)
        parsed = [message_from_bytes(r, policy=policy.default) for r in raw]
        return [m for m in parsed if isinstance(m, EmailMessage)]

    def message_ids(self) -> list[str]:
        return [str(m["Message-ID"]) for m in self.messages()]


@pytest.fixture
def mail_server() -> Iterator[MailServer]:
    server = MailServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 made for this test with the openssl command."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is not installed: the STARTTLS variant needs a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@dataclass
class GatewayRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class SmsGateway:
    """An HTTP server standing in for an SMS gateway; ``answers`` are (status, JSON body), used in turn."""

    answers: list[tuple[int, Any]] = field(default_factory=list)
    requests: list[GatewayRequest] = field(default_factory=list)
    port: int = 0
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    def start(self) -> None:
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                gateway.requests.append(GatewayRequest(self.command, self.path, dict(self.headers), body))
                status, payload = gateway.answers.pop(0) if gateway.answers else (200, {"status": "ok"})
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = _answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def sms_gateway() -> Iterator[SmsGateway]:
    gateway = SmsGateway()
    gateway.start()
    try:
        yield gateway
    finally:
        gateway.stop()


@pytest.fixture
async def lite_db(tmp_path: Path) -> AsyncIterator[Database]:
    """The record on SQLite only: for tests of what a server answers, not of the database."""
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'dialer.db'}")
    await database.connect()
    await database.migrate()
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database: what several nodes share."""
    name = f"dialer_test_notify_{uuid.uuid4().hex[:10]}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    host_part = PG_ADMIN_DSN.split("://", 1)[1].rsplit("/", 1)[0]
    try:
        yield f"postgresql+asyncpg://{host_part}/{name}"
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
