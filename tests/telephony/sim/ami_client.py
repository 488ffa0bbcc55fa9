"""A bare AMI client for simulator tests: send actions, wait for the messages that match."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from telephony.asterisk.protocol import AmiMessage, AmiParser, encode

Match = Callable[[AmiMessage], bool]


class AmiTestClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.parser = AmiParser()
        self.messages: list[AmiMessage] = []
        self.closed = asyncio.Event()
        self._changed = asyncio.Event()
        self._task = asyncio.ensure_future(self._read())

    @classmethod
    async def connect(cls, port: int, login: bool = True, secret: str = "dialer-secret") -> AmiTestClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        client = cls(reader, writer)
        if login:
            client.send(Action="Login", ActionID="login-1", Username="dialer", Secret=secret)
            await client.wait_for(lambda m: m.get("ActionID") == "login-1")
        return client

    async def _read(self) -> None:
        try:
            while True:
                data = await self.reader.read(65536)
                if not data:
                    break
                self.messages.extend(self.parser.feed(data))
                self._changed.set()
        except ConnectionError:
            pass
        finally:
            self.closed.set()
            self._changed.set()

    @property
    def banner(self) -> str | None:
        return self.parser.banner

    def send(self, *pairs: tuple[str, str], **fields: str) -> None:
        self.writer.write(encode([*fields.items(), *pairs]))

    def send_raw(self, data: bytes) -> None:
        self.writer.write(data)

    def matching(self, match: Match) -> list[AmiMessage]:
        return [m for m in self.messages if match(m)]

    async def wait_for(self, match: Match, within: float = 5.0, count: int = 1) -> AmiMessage:
        """The ``count``-th message that matches (waiting up to ``within`` seconds for it)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        found: list[AmiMessage] = []
        scanned = 0
        while True:
            found.extend(m for m in self.messages[scanned:] if match(m))
            scanned = len(self.messages)
            if len(found) >= count:
                return found[count - 1]
            if self.closed.is_set():
                raise AssertionError(f"connection closed; {len(found)} of {count} matching messages")
            self._changed.clear()
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"timed out; {len(found)} of {count} matching messages")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()
        self._task.cancel()
        with contextlib.suppress(BaseException):
            await self._task


def event(name: str, **fields: str) -> Match:
    def match(m: AmiMessage) -> bool:
        return m.get("Event") == name and all(m.get(k) == v for k, v in fields.items())

    return match


def response(action_id: str) -> Match:
    def match(m: AmiMessage) -> bool:
        return "Response" in m and "Event" not in m and m.get("ActionID") == action_id

    return match
