"""The Asterisk side of FastAGI for the simulator: connect to the AGI server and obey its commands.

When a simulated channel reaches ``AGI(agi://host:port/script)`` the simulator
does what Asterisk 22 does: it opens a TCP connection to that address, sends
the ``agi_*`` environment block (shaped like ``fastagi_sessions*.json``, ended
by a blank line), then answers one command per line.  When the channel hangs
up during the session it writes ``HANGUP`` once and answers every later
command with 511 until the script closes the connection (or a grace period
ends).  An unreachable server makes ``AGI()`` fail (``AGISTATUS=FAILURE``) and
the dialplan goes on to its ``Hangup()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import shlex
from urllib.parse import urlsplit

from telephony.sim import ami_events as ev
from telephony.sim import asterisk_mixmonitor as mixmonitor
from telephony.sim.asterisk_dialplan import DEFAULT_PROMPT_SECONDS, PROMPT_SECONDS, substitute
from telephony.sim.asterisk_pbx import Leg, PbxEngine

AGI_VERSION = "22.7.0"
DEFAULT_AGI_PORT = 4573
DEAD_CHANNEL = "511 Command Not Permitted on a dead channel or intercepted by the bridge"
UNKNOWN_COMMAND = "510 Invalid or unknown command"
CONNECT_TIMEOUT_S = 2.0
DEAD_GRACE_S = 2.0  # PBX seconds a script may keep a dead channel's session open


def parse_agi_url(data: str) -> tuple[str, int, str, list[str]]:
    """``agi://127.0.0.1:4573/answered,a,b`` -> (host, port, script, [args])."""
    url, *args = data.split(",")
    parts = urlsplit(url)
    if parts.scheme != "agi" or not parts.hostname:
        raise ValueError(f"not a FastAGI URL: {url!r}")
    script = parts.path.lstrip("/")
    if parts.query:
        script = f"{script}?{parts.query}"
    return parts.hostname, parts.port or DEFAULT_AGI_PORT, script, args


def agi_environment(
    leg: Leg, request: str, script: str, args: list[str], thread_id: int, version: str = AGI_VERSION
) -> bytes:
    ch = leg.chan
    lines = [
        ("agi_network", "yes"),
        ("agi_network_script", script),
        ("agi_request", request),
        ("agi_channel", ch.name),
        ("agi_language", ch.language),
        ("agi_type", ch.name.split("/", 1)[0]),
        ("agi_uniqueid", ch.uniqueid),
        ("agi_version", version),
        ("agi_callerid", ch.cid_num if ch.cid_num != "<unknown>" else "unknown"),
        ("agi_calleridname", ch.cid_name if ch.cid_name != "<unknown>" else "unknown"),
        ("agi_callingpres", "0"),
        ("agi_callingani2", "0"),
        ("agi_callington", "0"),
        ("agi_callingtns", "0"),
        ("agi_dnid", "unknown"),
        ("agi_rdnis", "unknown"),
        ("agi_context", ch.context),
        ("agi_extension", ch.exten),
        ("agi_priority", str(ch.priority)),
        ("agi_enhanced", "0.0"),
        ("agi_accountcode", ch.accountcode),
        ("agi_threadid", str(thread_id)),
    ]
    lines.extend((f"agi_arg_{i}", arg) for i, arg in enumerate(args, start=1))
    return "".join(f"{k}: {v}\n" for k, v in lines).encode() + b"\n"


async def run_agi(engine: PbxEngine, leg: Leg, data: str) -> str:
    """Run one FastAGI session for ``leg``; "" when the dialplan goes on, "hangup" when the channel ended."""
    try:
        host, port, script, args = parse_agi_url(data)
    except ValueError:
        return "hangup" if engine.agi_failed(leg) else ""
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port), CONNECT_TIMEOUT_S / engine.time_scale + 1.0
        )
    except (OSError, TimeoutError):
        return "hangup" if engine.agi_failed(leg) else ""
    session = _AgiSession(engine, leg, reader, writer)
    engine.agi_opened()
    try:
        url = data.split(",")[0]
        writer.write(
            agi_environment(leg, url, script, args, engine.rng.randrange(10**14, 10**15), engine.version)
        )
        await session.serve()
    finally:
        engine.agi_closed()
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
    return "hangup" if engine.agi_finished(leg) else ""


def _decode(raw: bytes) -> str | None:
    return raw.decode("utf-8", "replace").strip() if raw else None


class _AgiSession:
    def __init__(
        self, engine: PbxEngine, leg: Leg, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ):
        self.engine = engine
        self.leg = leg
        self.reader = reader
        self.writer = writer
        self.told_hangup = False

    @property
    def dead(self) -> bool:
        return self.leg.hungup.is_set()

    def reply(self, line: str) -> None:
        self.writer.write(line.encode() + b"\n")

    def _tell_hangup(self) -> None:
        if not self.told_hangup:
            self.told_hangup = True
            self.reply("HANGUP")

    async def serve(self) -> None:
        while True:
            line = await self._next_line()
            if line is None:
                return
            await self.command(line)
            await self.writer.drain()

    async def _next_line(self) -> str | None:
        """The script's next command; None when it closed, or kept a dead channel past the grace."""
        read = asyncio.ensure_future(self.reader.readline())
        try:
            if not self.dead:
                hangup_wait = asyncio.ensure_future(self.leg.hungup.wait())
                done, _ = await asyncio.wait({read, hangup_wait}, return_when=asyncio.FIRST_COMPLETED)
                hangup_wait.cancel()
                if read in done:
                    return _decode(read.result())
            self._tell_hangup()
            await self.writer.drain()
            if self.engine.restarting:  # a restart holds the channel until the script lets go
                return _decode(await read)
            return _decode(await asyncio.wait_for(read, DEAD_GRACE_S / self.engine.time_scale))
        except (TimeoutError, ConnectionError):
            return None
        finally:
            if not read.done():
                read.cancel()

    async def command(self, line: str) -> None:
        if not line:
            return
        if self.dead:
            self.reply(DEAD_CHANNEL)
            return
        try:
            words = shlex.split(line)
        except ValueError:
            words = line.split()
        upper = [w.upper() for w in words]
        ch = self.leg.chan
        engine = self.engine
        if upper[:2] == ["GET", "VARIABLE"] and len(words) >= 3:
            name = words[2]
            value = self._lookup(name)
            self.reply(f"200 result=1 ({value})" if value is not None else "200 result=0")
        elif upper[:3] == ["GET", "FULL", "VARIABLE"] and len(words) >= 4:
            variables = {**engine.global_vars, **ch.variables}
            value = substitute(words[3], variables, ch.exten)
            self.reply(f"200 result=1 ({value})")
        elif upper[:2] == ["SET", "VARIABLE"] and len(words) >= 4:
            engine.setvar(self.leg, words[2], words[3])
            self.reply("200 result=1")
        elif upper[:2] == ["SET", "CONTEXT"] and len(words) >= 3:
            ch.context = words[2]
            self.reply("200 result=0")
        elif upper[:2] == ["SET", "EXTENSION"] and len(words) >= 3:
            ch.exten = words[2]
            self.reply("200 result=0")
        elif upper[:2] == ["SET", "PRIORITY"] and len(words) >= 3 and words[2].isdigit():
            ch.priority = int(words[2])
            self.reply("200 result=0")
        elif upper[:1] == ["ANSWER"] or upper[:1] == ["NOOP"]:
            self.reply("200 result=0")
        elif upper[:1] == ["VERBOSE"]:
            self.reply("200 result=1")
        elif upper[:2] == ["CHANNEL", "STATUS"]:
            self.reply(f"200 result={ch.state}")
        elif upper[:1] == ["HANGUP"]:
            self.reply("200 result=1")
            await self.writer.drain()
            engine.ours_hangs_up(self.leg)
        elif upper[:2] == ["STREAM", "FILE"] and len(words) >= 3:
            seconds = PROMPT_SECONDS.get(words[2], DEFAULT_PROMPT_SECONDS)
            finished = await self._interruptible(seconds)
            self.reply(f"200 result=0 endpos={int(seconds * 8000)}" if finished else "200 result=-1")
        elif upper[:1] == ["EXEC"] and len(words) >= 2:
            await self._exec(words[1], " ".join(words[2:]))
        else:
            self.reply(UNKNOWN_COMMAND)

    def _lookup(self, name: str) -> str | None:
        ch = self.leg.chan
        specials = {"UNIQUEID": ch.uniqueid, "CHANNEL": ch.name, "EXTEN": ch.exten, "CONTEXT": ch.context}
        if name in ch.variables:
            return ch.variables[name]
        if name in self.engine.global_vars:
            return self.engine.global_vars[name]
        return specials.get(name)

    async def _interruptible(self, seconds: float) -> bool:
        """Sleep like a prompt plays; False when the channel hung up meanwhile."""
        try:
            await asyncio.wait_for(self.leg.hungup.wait(), max(0.0, seconds) / self.engine.time_scale)
        except TimeoutError:
            return True
        return False

    async def _exec(self, app: str, args: str) -> None:
        name = app.lower()
        leg, engine = self.leg, self.engine
        if name == "confbridge":
            data = args.strip('"')
            if engine.bridge_full(data):
                await engine.bridge_refused(leg)  # conf-locked, then FAILED (unless hung up meanwhile)
                self.reply("200 result=-1")
                return
            engine.bridge_join(leg, data)
            await leg.bridge_left.wait()
            self.reply("200 result=0")
        elif name == "playback":
            prompt = args.split(",")[0].strip('"')
            if await self._interruptible(PROMPT_SECONDS.get(prompt, DEFAULT_PROMPT_SECONDS)):
                engine.emit(ev.varset(leg.chan, "PLAYBACKSTATUS", "SUCCESS"))
                self.reply("200 result=0")
            else:
                self.reply("200 result=-1")
        elif name == "wait":
            try:
                seconds = float(args.strip('"') or "0")
            except ValueError:
                seconds = 0.0
            self.reply("200 result=0" if await self._interruptible(seconds) else "200 result=-1")
        elif name == "hangup":
            self.reply("200 result=-1")
            await self.writer.drain()
            engine.ours_hangs_up(leg)
        elif name in ("noop", "answer"):
            self.reply("200 result=0")
        elif name == "mixmonitor":
            mixmonitor.start(engine, leg, args.strip('"'))
            self.reply("200 result=0")
        else:
            self.reply("200 result=-2")
