"""A small AMI server for client tests: login, Ping, CoreShowChannels, Originate bookkeeping.

It speaks just enough AMI to exercise the client's transport (timeouts,
liveness, reconnects, malformed input); the full call behaviour lives in the
simulator, telephony/sim/asterisk.py.
"""

from __future__ import annotations

import asyncio
import contextlib

from telephony.asterisk.protocol import AmiMessage, AmiParser, encode

BANNER = b"Asterisk Call Manager/11.0.0\r\n"


class FakeAmi:
    def __init__(self, username: str = "dialer", secret: str = "s3cret") -> None:
        self.username = username
        self.secret = secret
        self.port = 0
        self.actions: list[AmiMessage] = []
        self.originates_received: list[str] = []
        self.unanswered_actions: set[str] = set()
        self.errors: dict[str, str] = {}  # action name -> Message of a Response: Error
        self.live_channels: dict[str, str] = {}  # Uniqueid -> ChannelState
        self.channel_apps: dict[str, tuple[str, str]] = {}  # Uniqueid -> (Application, ApplicationData)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.logins = 0

    async def start(self, port: int = 0) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", port or self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def crash(self) -> None:
        """Drop every connection and stop listening, like a killed Asterisk."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def stop(self) -> None:
        await self.crash()

    async def send_raw(self, data: bytes) -> None:
        for writer in list(self._writers):
            writer.write(data)
            with contextlib.suppress(ConnectionError):
                await writer.drain()

    async def send_event(self, fields: dict[str, str]) -> None:
        await self.send_raw(encode(fields))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        writer.write(BANNER)
        parser = AmiParser(expect_banner=False)
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                for action in parser.feed(data):
                    self.actions.append(action)
                    for reply in self._answer(action):
                        writer.write(encode(reply))
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    def _answer(self, action: AmiMessage) -> list[dict[str, str]]:
        name = action.get("Action", "")
        aid = action.get("ActionID", "")
        if name == "Originate":
            self.originates_received.append(aid)
        if name in self.unanswered_actions:
            return []
        if name in self.errors:
            return [{"Response": "Error", "ActionID": aid, "Message": self.errors[name]}]
        if name == "Login":
            if action.get("Username") == self.username and action.get("Secret") == self.secret:
                self.logins += 1
                return [
                    {"Response": "Success", "ActionID": aid, "Message": "Authentication accepted"},
                    {"Event": "FullyBooted", "Privilege": "system,all", "Status": "Fully Booted"},
                ]
            return [{"Response": "Error", "ActionID": aid, "Message": "Authentication failed"}]
        if name == "Ping":
            return [{"Response": "Success", "ActionID": aid, "Ping": "Pong", "Timestamp": "1.0"}]
        if name == "CoreShowChannels":
            out = [
                {
                    "Response": "Success",
                    "ActionID": aid,
                    "EventList": "start",
                    "Message": "Channels will follow",
                }
            ]
            for uid, state in self.live_channels.items():
                entry = {"Event": "CoreShowChannel", "ActionID": aid, "Uniqueid": uid, "ChannelState": state}
                if uid in self.channel_apps:
                    entry["Application"], entry["ApplicationData"] = self.channel_apps[uid]
                out.append(entry)
            out.append(
                {
                    "Event": "CoreShowChannelsComplete",
                    "ActionID": aid,
                    "EventList": "Complete",
                    "ListItems": str(len(self.live_channels)),
                }
            )
            return out
        if name == "Originate":
            return [{"Response": "Success", "ActionID": aid, "Message": "Originate successfully queued"}]
        if name == "Logoff":
            return [{"Response": "Goodbye", "ActionID": aid, "Message": "Thanks for all the fish."}]
        return [{"Response": "Success", "ActionID": aid, "Message": f"{name} done"}]
