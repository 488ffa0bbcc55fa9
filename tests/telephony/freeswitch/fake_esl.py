"""A small scripted ESL server for the client and adapter tests.

It speaks the framing of the captures (auth/request, command/reply,
api/response, text/event-plain with URL-encoded values) and plays a call by
the callee's number: ``...2xxx`` answers and parks, ``...3xxx`` is busy,
``...4xxx`` rings until killed.  Faults on demand: commands it does not
answer, dropping every connection, raw bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from urllib.parse import quote

_VARS = re.compile(r"\{([^}]*)\}(\S+) (\S+)")


def _event(headers: dict[str, str], body: str = "") -> bytes:
    block = "".join(f"{k}: {quote(v, safe='')}\n" for k, v in headers.items())
    if body:
        block += f"Content-Length: {len(body.encode())}\n\n{body}"
    else:
        block += "\n"
    data = block.encode()
    return b"Content-Length: %d\nContent-Type: text/event-plain\n\n" % len(data) + data


def _reply(text: str, **extra: str) -> bytes:
    more = "".join(f"{k}: {v}\n" for k, v in extra.items())
    return f"Content-Type: command/reply\nReply-Text: {text}\n{more}\n".encode()


def _api(text: str) -> bytes:
    return f"Content-Type: api/response\nContent-Length: {len(text.encode())}\n\n{text}".encode()


class FakeEsl:
    def __init__(self, password: str = "ClueCon", ring_s: float = 0.05) -> None:
        self.password = password
        self.ring_s = ring_s
        self.server: asyncio.Server | None = None
        self.port = 0
        self.writers: list[asyncio.StreamWriter] = []
        self.received: list[str] = []
        self.originates: list[str] = []  # origination_uuids, in arrival order
        self.channels: dict[str, dict[str, str]] = {}  # uuid -> {"callstate": ..., "application": ...}
        self.silent_prefixes: list[str] = []  # commands starting with one of these get no reply
        self.unanswered: list[str] = []
        self.connections = 0
        self.park = True  # False: answered calls never reach park (a dialplan that does not park)
        self._tasks: set[asyncio.Task[None]] = set()
        self._seq = 100

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        await self.drop_all()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def drop_all(self) -> None:
        for w in self.writers:
            w.close()
        self.writers.clear()
        await asyncio.sleep(0)

    async def send_raw(self, data: bytes) -> None:
        for w in self.writers:
            w.write(data)
            await w.drain()

    def emit(self, headers: dict[str, str], body: str = "") -> None:
        self._seq += 1
        data = _event({"Event-Sequence": str(self._seq), **headers}, body)
        for w in self.writers:
            w.write(data)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._spawned_current()
        writer.write(b"Content-Type: auth/request\n\n")
        authed = False
        try:
            while True:
                raw = await reader.readuntil(b"\n\n")
                text = raw.decode().rstrip("\n")
                self.received.append(text)
                first = text.split("\n", 1)[0]
                if any(first.startswith(p) for p in self.silent_prefixes):
                    self.unanswered.append(first)
                    continue
                if first.startswith("auth "):
                    if first[5:] == self.password:
                        authed = True
                        writer.write(_reply("+OK accepted"))
                    else:
                        writer.write(_reply("-ERR invalid"))
                        writer.write(b"Content-Type: text/disconnect-notice\nContent-Length: 0\n\n")
                        await writer.drain()
                        writer.close()
                        return
                elif not authed:
                    writer.write(_reply("-ERR command not found"))
                elif first.startswith("event plain"):
                    self.writers.append(writer)
                    writer.write(_reply("+OK event listener enabled plain"))
                elif first == "exit":
                    writer.write(_reply("+OK bye"))
                    writer.write(b"Content-Type: text/disconnect-notice\nContent-Length: 0\n\n")
                    await writer.drain()
                    writer.close()
                    return
                elif first.startswith("bgapi "):
                    job = text.split("\nJob-UUID: ", 1)[1].strip()
                    writer.write(_reply(f"+OK Job-UUID: {job}", **{"Job-UUID": job}))
                    self._spawn(self._play(first[6:], job))
                elif first.startswith("api "):
                    writer.write(_api(self._api(first[4:])))
                elif first.startswith("sendmsg "):
                    writer.write(_reply("+OK"))
                    self._sendmsg(first[8:], text)
                else:
                    writer.write(_reply("-ERR command not found"))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            with contextlib.suppress(ValueError):
                self.writers.remove(writer)
            writer.close()

    def _spawned_current(self) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _spawn(self, coro: object) -> None:
        task = asyncio.ensure_future(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _api(self, command: str) -> str:
        words = command.split()
        if words[0] == "uptime":
            return "42\n"
        if command == "show channels as json":
            rows = [{"uuid": u, **row} for u, row in self.channels.items()]
            return json.dumps({"row_count": len(rows), "rows": rows} if rows else {"row_count": 0})
        if words[0] == "uuid_kill":
            uuid = words[1]
            if uuid not in self.channels:
                return "-ERR No such channel!\n"
            cause = words[2] if len(words) > 2 else "NORMAL_CLEARING"
            self._hangup(uuid, cause)
            return "+OK\n"
        if words[0] == "uuid_transfer":
            uuid = words[1]
            if uuid not in self.channels:
                return "-ERR No such channel!\n"
            self.channels[uuid]["application"] = "conference"
            self.emit(
                {
                    "Event-Name": "CUSTOM",
                    "Event-Subclass": "conference::maintenance",
                    "Action": "add-member",
                    "Conference-Name": words[2],
                    "Unique-ID": uuid,
                }
            )
            return "+OK\n"
        return "-ERR unknown command\n"

    def _sendmsg(self, uuid: str, text: str) -> None:
        if "execute-app-name: hangup" in text and uuid in self.channels:
            self._hangup(uuid, "NORMAL_CLEARING")

    def _hangup(self, uuid: str, cause: str) -> None:
        row = self.channels.pop(uuid, None)
        if row is None:
            return
        q850 = {"NORMAL_CLEARING": "16", "USER_BUSY": "17", "NO_ANSWER": "19"}.get(cause, "0")
        base = {"Unique-ID": uuid}
        self.emit({"Event-Name": "CHANNEL_HANGUP", **base, "Hangup-Cause": cause})
        self.emit(
            {
                "Event-Name": "CHANNEL_HANGUP_COMPLETE",
                **base,
                "Hangup-Cause": cause,
                "variable_hangup_cause_q850": q850,
            }
        )
        job = row.get("job")
        if job and row.get("callstate") != "ACTIVE":
            self.emit({"Event-Name": "BACKGROUND_JOB", "Job-UUID": job}, f"-ERR {cause}\n")

    async def _play(self, command: str, job: str) -> None:
        m = _VARS.search(command)
        assert m is not None, command
        variables = dict(kv.split("=", 1) for kv in m.group(1).split(","))
        uuid = variables["origination_uuid"]
        self.originates.append(uuid)
        digit = m.group(2).split("@")[0][-4:-3]
        base = {"Unique-ID": uuid}
        self.channels[uuid] = {"callstate": "RINGING", "application": "", "job": job}
        self.emit({"Event-Name": "CHANNEL_CREATE", **base})
        if digit == "3":
            self.channels.pop(uuid)
            self.emit({"Event-Name": "CHANNEL_HANGUP_COMPLETE", **base, "Hangup-Cause": "USER_BUSY"})
            self.emit({"Event-Name": "BACKGROUND_JOB", "Job-UUID": job}, "-ERR USER_BUSY\n")
            return
        self.emit({"Event-Name": "CHANNEL_PROGRESS", **base})
        if digit == "4":
            return  # rings until killed
        await asyncio.sleep(self.ring_s)
        if uuid not in self.channels:
            return
        self.channels[uuid].update(callstate="ACTIVE", application="park")
        self.emit({"Event-Name": "CHANNEL_ANSWER", **base})
        self.emit({"Event-Name": "BACKGROUND_JOB", "Job-UUID": job}, f"+OK {uuid}\n")
        if m.group(3).startswith("agent_"):
            self.channels[uuid]["application"] = "conference"
            return
        if self.park:
            self.emit({"Event-Name": "CHANNEL_PARK", **base})
        if digit == "9":
            self.emit({"Event-Name": "CUSTOM", "Event-Subclass": "avmd::beep", **base, "Frequency": "1000.0"})
