"""A second client on the simulated PBX, as an operator's console would be.

It watches the PBX's own events for the playbacks it ran (which channel heard
which file) and can hang up one channel by its id: ``Action: Hangup`` on AMI,
``api uuid_kill`` on the Event Socket.  The dialer's adapter is not involved:
for the dialer, the channel just goes away at the PBX.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import defaultdict

from telephony.asterisk.protocol import AmiParser, encode
from telephony.freeswitch.protocol import EslParser, encode_api, encode_auth, encode_event_subscription


class PbxProbe:
    """Base: the playbacks seen, by channel id; ``drop`` hangs one channel up."""

    def __init__(self) -> None:
        self.played: dict[str, list[str]] = defaultdict(list)  # channel id -> files played
        self.replies: list[str] = []
        self.trail: dict[str, list[str]] = defaultdict(list)  # channel id -> its events, for messages
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def connect(self, port: int, secret: str) -> None:
        self._reader, self._writer = await asyncio.open_connection("127.0.0.1", port)
        self._task = asyncio.get_running_loop().create_task(self._read())
        self._login(secret)
        await asyncio.wait_for(self._ready.wait(), 5.0)

    def _login(self, secret: str) -> None:
        raise NotImplementedError

    def _feed(self, data: bytes) -> None:
        raise NotImplementedError

    async def drop(self, channel_id: str) -> None:
        raise NotImplementedError

    def _send(self, data: bytes) -> None:
        assert self._writer is not None
        self._writer.write(data)

    async def _read(self) -> None:
        assert self._reader is not None
        while True:
            data = await self._reader.read(65536)
            if not data:
                return
            self._feed(data)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await self._task
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()


class AmiProbe(PbxProbe):
    """An AMI session: Newexten of ``Playback`` is a playback; ``Hangup`` drops a channel."""

    def __init__(self, username: str = "dialer") -> None:
        super().__init__()
        self.username = username
        self._parser = AmiParser(expect_banner=True)
        self._ids = itertools.count(1)

    def _login(self, secret: str) -> None:
        self._send(
            encode(
                [
                    ("Action", "Login"),
                    ("ActionID", "probe-login"),
                    ("Username", self.username),
                    ("Secret", secret),
                ]
            )
        )

    def _feed(self, data: bytes) -> None:
        for message in self._parser.feed(data):
            if message.get("Event"):
                detail = message.get("Application") or message.get("Variable") or message.get("Cause") or ""
                self.trail[message.get("Uniqueid", "")].append(f"{message.get('Event')}({detail})")
            if message.get("ActionID") == "probe-login":
                self._ready.set()
            if message.get("Response") is not None:
                self.replies.append(f"{message.get('Response')}: {message.get('Message', '')}")
            elif message.get("Event") == "Newexten" and message.get("Application") == "Playback":
                self.played[message.get("Uniqueid", "")].append(message.get("AppData", ""))
            elif message.get("Event") == "VarSet" and message.get("Variable") == "PLAYBACKSTATUS":
                # FastAGI's EXEC Playback: AMI tells that a playback ended, not which file (the simulator
                # writes no AGIExecStart).
                self.played[message.get("Uniqueid", "")].append(f"PLAYBACKSTATUS={message.get('Value', '')}")

    async def drop(self, channel_id: str) -> None:
        self._send(
            encode([("Action", "Hangup"), ("ActionID", f"probe-{next(self._ids)}"), ("Channel", channel_id)])
        )
        assert self._writer is not None
        await self._writer.drain()


class EslProbe(PbxProbe):
    """An inbound Event Socket: CHANNEL_EXECUTE_COMPLETE of ``playback``; ``uuid_kill`` drops a channel."""

    def __init__(self) -> None:
        super().__init__()
        self._parser = EslParser()
        self._secret = ""

    def _login(self, secret: str) -> None:
        self._secret = secret  # sent when the switch asks (auth/request)

    def _feed(self, data: bytes) -> None:
        for frame in self._parser.feed(data):
            kind = frame.content_type
            if kind == "auth/request":
                self._send(encode_auth(self._secret))
            elif kind == "command/reply" and not self._ready.is_set():
                if frame.ok and "accepted" in frame.reply_text:
                    self._send(encode_event_subscription(["CHANNEL_EXECUTE_COMPLETE"]))
                elif frame.ok:
                    self._ready.set()
            elif kind == "api/response":
                self.replies.append(frame.reply_text.strip())
            elif frame.is_event:
                event = frame.event
                self.trail[event.unique_id or ""].append(f"{event.name}({event.get('Application') or ''})")
                if event.name == "CHANNEL_EXECUTE_COMPLETE" and event.get("Application") == "playback":
                    self.played[event.unique_id or ""].append(event.get("Application-Data") or "")

    async def drop(self, channel_id: str) -> None:
        self._send(encode_api(f"uuid_kill {channel_id}"))
        assert self._writer is not None
        await self._writer.drain()
