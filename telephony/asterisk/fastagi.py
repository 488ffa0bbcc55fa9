"""FastAGI server: Asterisk hands every answered call to the dialer here.

The dialplan runs ``AGI(agi://<dialer>:4573/answered)`` once a call is
answered (and AMD has run when the campaign asks for it).  The ``answered``
handler reads the attempt id and the AMD verdict from channel variables, asks
the runtime's ``AnswerRouter`` what to do, and does it: bridge to an agent,
play a message and hang up, or just hang up.

Split like the AMI side: the reply/environment parsing is sans-IO
(``AgiReplyReader``, ``parse_env_line``, ``format_command``); ``AgiSession`` and
``FastAgiServer`` only move lines over asyncio streams.  A caller who hangs up
mid-session (``HANGUP`` line, ``511`` on a dead channel, EOF) raises
``AgiHangup``: the session ends quietly and is counted, it is not an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from telephony.base import (
    ActionTimeout,
    AmdResult,
    AnswerDecision,
    AnsweredCall,
    AnswerRouter,
    CallEvent,
    ConnectFailed,
    ConnectToAgent,
    HangupCall,
    PbxError,
    PlayMessageThenHangup,
)

log = logging.getLogger(__name__)

DEFAULT_PORT = 4573
MAX_ENV_LINES = 200  # Asterisk sends ~25; more means this is not Asterisk


class AgiHangup(Exception):
    """The caller hung up (or Asterisk closed the session): end the session, nothing to report."""


class AgiCommandTimeout(ActionTimeout):
    """Asterisk sent no reply to an AGI command in time."""


class AgiCommandError(PbxError):
    """Asterisk refused an AGI command (510 unknown command, 520 bad syntax)."""


class AgiProtocolError(PbxError):
    """The peer does not speak AGI (bad environment, unparseable reply)."""


# ---------------------------------------------------------------------------
# Sans-IO parsing


@dataclass(frozen=True, slots=True)
class AgiResult:
    """A parsed ``200 result=1 (att-agi) endpos=1234`` reply."""

    code: int
    result: str
    data: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict)
    raw: str = ""


_REPLY = re.compile(r"^(\d{3})(?:[ -](.*))?$")
_RESULT = re.compile(r"^result=(\S*)(?:\s+\((.*?)\))?(.*)$")


def parse_reply_line(line: str) -> AgiResult:
    """Parse one complete ``200`` reply line (the caller handles HANGUP and 5xx)."""
    match = _REPLY.match(line)
    if match is None:
        raise AgiProtocolError(f"not an AGI reply: {line[:80]!r}")
    code = int(match.group(1))
    rest = match.group(2) or ""
    res = _RESULT.match(rest)
    if res is None:
        return AgiResult(code, "", rest or None, {}, line)
    extra: dict[str, str] = {}
    for token in res.group(3).split():
        key, sep, value = token.partition("=")
        if sep:
            extra[key] = value
    return AgiResult(code, res.group(1), res.group(2), extra, line)


class AgiReplyReader:
    """Assembles replies from lines: ``feed_line`` returns an AgiResult once one is complete.

    Raises AgiHangup for ``HANGUP`` and ``511`` (dead channel) and
    AgiCommandError for ``510`` and the multi-line ``520-`` usage reply.
    """

    __slots__ = ("_usage",)

    def __init__(self) -> None:
        self._usage: list[str] | None = None

    def feed_line(self, line: str) -> AgiResult | None:
        line = line.rstrip("\r\n")
        if self._usage is not None:
            self._usage.append(line)
            if line.startswith("520 "):
                text = " / ".join(self._usage)
                self._usage = None
                raise AgiCommandError(f"Asterisk refused the AGI command syntax: {text[:300]}")
            return None
        if not line:
            return None
        if line == "HANGUP":
            raise AgiHangup("caller hung up (HANGUP from Asterisk)")
        if line.startswith("520-"):
            self._usage = [line]
            return None
        if line.startswith("511"):
            raise AgiHangup(f"channel is dead: {line}")
        if line.startswith("510") or line.startswith("520"):
            raise AgiCommandError(f"Asterisk refused the AGI command: {line}")
        return parse_reply_line(line)


def parse_env_line(line: str) -> tuple[str, str] | None:
    """``agi_uniqueid: 1795364876.144`` -> (key, value); the blank line that ends the block -> None."""
    line = line.rstrip("\r\n")
    if not line:
        return None
    key, sep, value = line.partition(":")
    if not sep or not key.startswith("agi_"):
        raise AgiProtocolError(f"not an AGI environment line: {line[:80]!r}")
    return key, value[1:] if value.startswith(" ") else value


def script_name(env: Mapping[str, str]) -> str:
    """The handler name: ``agi_network_script`` without slashes or ``?arguments``."""
    script = env.get("agi_network_script", "")
    return script.split("?", 1)[0].strip("/")


def format_command(text: str) -> bytes:
    """One AGI command line; a line break inside would smuggle a second command."""
    if "\n" in text or "\r" in text:
        raise ValueError(f"AGI command holds a line break; refusing to send: {text[:60]!r}")
    return (text + "\n").encode("utf-8")


def quote(value: str) -> str:
    """An AGI argument in double quotes (values come from our own ids and sound names)."""
    if '"' in value or "\\" in value or "\n" in value or "\r" in value:
        raise ValueError(f"AGI argument {value!r} holds a quote, backslash or line break")
    return f'"{value}"'


_TOKEN = re.compile(r"^[A-Za-z0-9_.:/+-]+$")


def safe_token(value: str, what: str) -> str:
    """An application argument we build from an id: no spaces, commas or quotes to smuggle options."""
    if not _TOKEN.match(value):
        raise ValueError(f"{what} {value!r} may only hold letters, digits and _ . : / + -")
    return value


_AMD = {"HUMAN": AmdResult.PERSON, "MACHINE": AmdResult.MACHINE, "NOTSURE": AmdResult.UNKNOWN}


def amd_result(status: str | None) -> AmdResult | None:
    """AMDSTATUS -> AmdResult; None when detection did not run on this call."""
    if not status:
        return None
    return _AMD.get(status.upper(), AmdResult.UNKNOWN)


# ---------------------------------------------------------------------------
# asyncio I/O


class AgiSession:
    """One FastAGI connection: the environment and a ``command`` coroutine."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        env: Mapping[str, str],
        command_timeout_s: float,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self.env = dict(env)
        self.command_timeout_s = command_timeout_s
        self._replies = AgiReplyReader()
        self.commands_sent = 0

    @property
    def script(self) -> str:
        return script_name(self.env)

    # The per-command timeout is the API (each AGI command has its own budget): hence ASYNC109.
    async def command(self, text: str, timeout: float | None = -1.0) -> AgiResult:  # noqa: ASYNC109
        """Send one command and wait for its reply.

        ``timeout`` defaults to the server's command timeout; ``None`` waits as
        long as the application runs (ConfBridge returns when the call leaves
        the bridge).
        """
        limit = self.command_timeout_s if timeout is not None and timeout < 0 else timeout
        try:
            self._writer.write(format_command(text))
            await self._writer.drain()
        except (ConnectionError, RuntimeError) as exc:
            raise AgiHangup(f"connection closed while sending {text.split(' ', 1)[0]}") from exc
        self.commands_sent += 1
        try:
            return await asyncio.wait_for(self._read_reply(), limit)
        except TimeoutError:
            raise AgiCommandTimeout(
                f"no reply to AGI {text!r} within {limit} s; the session is dropped "
                "(check the Asterisk load and the network to the dialer)"
            ) from None

    async def _read_reply(self) -> AgiResult:
        while True:
            try:
                raw = await self._reader.readline()
            except (ConnectionError, asyncio.IncompleteReadError) as exc:
                raise AgiHangup("connection lost") from exc
            if not raw:
                raise AgiHangup("Asterisk closed the AGI connection")
            result = self._replies.feed_line(raw.decode("utf-8", "replace"))
            if result is not None:
                return result

    async def unasked_line(self) -> str:
        """Wait, with no command outstanding, for a line Asterisk sends by itself.

        Asterisk sends ``HANGUP`` when the channel is hung up or redirected
        away while the session waits for us; it holds the channel (and even a
        restart) until we close the socket.  Returns what ended the wait.
        """
        try:
            raw = await self._reader.readline()
        except (ConnectionError, asyncio.IncompleteReadError):
            return "connection lost"
        if not raw:
            return "Asterisk closed the AGI connection"
        return raw.decode("utf-8", "replace").strip() or "an empty line"

    async def get_variable(self, name: str, timeout: float | None = -1.0) -> str | None:  # noqa: ASYNC109
        """A channel variable's value, or None when it is not set (``200 result=0``)."""
        reply = await self.command(f"GET VARIABLE {name}", timeout)
        if reply.result != "1":
            return None
        return reply.data

    async def set_variable(self, name: str, value: str) -> None:
        await self.command(f"SET VARIABLE {name} {quote(value)}")

    async def hangup(self) -> None:
        await self.command("HANGUP")


Handler = Callable[[AgiSession], Awaitable[None]]


async def read_env(reader: asyncio.StreamReader) -> dict[str, str]:
    env: dict[str, str] = {}
    for _ in range(MAX_ENV_LINES):
        raw = await reader.readline()
        if not raw:
            raise AgiHangup("connection closed before the AGI environment ended")
        pair = parse_env_line(raw.decode("utf-8", "replace"))
        if pair is None:
            return env
        env[pair[0]] = pair[1]
    raise AgiProtocolError(f"AGI environment longer than {MAX_ENV_LINES} lines")


@dataclass
class FastAgiStats:
    sessions: int = 0
    completed: int = 0
    hangups: int = 0  # caller left mid-session: normal, not an error
    timeouts: int = 0
    errors: int = 0
    unknown_scripts: int = 0


class FastAgiServer:
    """Accepts FastAGI connections and routes them by ``agi_network_script``."""

    def __init__(
        self,
        handlers: Mapping[str, Handler],
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        command_timeout_s: float = 5.0,
        env_timeout_s: float = 5.0,
    ) -> None:
        self.handlers = dict(handlers)
        self.host = host
        self._port = port
        self.command_timeout_s = command_timeout_s
        self.env_timeout_s = env_timeout_s
        self.stats = FastAgiStats()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        """The bound port (the real one when started with port 0)."""
        if self._server is not None and self._server.sockets:
            return int(self._server.sockets[0].getsockname()[1])
        return self._port

    async def start(self) -> None:
        try:
            self._server = await asyncio.start_server(self._serve, self.host, self._port)
        except OSError as exc:
            raise PbxError(
                f"cannot listen for FastAGI on {self.host}:{self._port}: {exc}; "
                "free the port or change fastagi_port"
            ) from exc
        log.info("FastAGI listening on %s:%d", self.host, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        self.stats.sessions += 1
        script = "?"
        uniqueid = "?"
        try:
            env = await asyncio.wait_for(read_env(reader), self.env_timeout_s)
            script = script_name(env)
            uniqueid = env.get("agi_uniqueid", "?")
            handler = self.handlers.get(script)
            if handler is None:
                self.stats.unknown_scripts += 1
                log.warning(
                    "FastAGI script %r is not served (uniqueid %s); known: %s; fix the AGI() URL",
                    script,
                    uniqueid,
                    ", ".join(sorted(self.handlers)),
                )
                return
            await handler(AgiSession(reader, writer, env, self.command_timeout_s))
            self.stats.completed += 1
        except AgiHangup as exc:
            self.stats.hangups += 1
            log.info("FastAGI %s uniqueid %s ended: %s", script, uniqueid, exc)
        except (AgiCommandTimeout, TimeoutError) as exc:
            self.stats.timeouts += 1
            log.warning("FastAGI %s uniqueid %s timed out: %s", script, uniqueid, exc or "no environment")
        except (AgiProtocolError, AgiCommandError) as exc:
            self.stats.errors += 1
            log.warning("FastAGI %s uniqueid %s failed: %s", script, uniqueid, exc)
        except asyncio.CancelledError:
            raise
        except Exception:
            self.stats.errors += 1
            log.exception("FastAGI %s uniqueid %s: handler error", script, uniqueid)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()
            if task is not None:
                self._tasks.discard(task)


# ---------------------------------------------------------------------------
# The ``answered`` handler


class AnsweredHandler:
    """Asks the AnswerRouter what to do with an answered call and does it over AGI.

    ``router`` is looked up at call time so the runtime can set it after the
    adapter starts; with no router (or a router that fails or is too slow)
    the call is hung up: a customer must not wait on a dead line.
    """

    ATTEMPT_VARIABLES = ("DIALER_ATTEMPT", "ATTEMPT")
    BRIDGE_TIMEOUT_S = 6 * 3600.0  # EXEC ConfBridge returns when the customer leaves the bridge
    MAX_CONNECT_TRIES = 3  # bridges refusing the customer in a row before the call is given up
    PLAYBACK_TIMEOUT_S = 300.0

    def __init__(
        self,
        router: Callable[[], AnswerRouter | None],
        decision_timeout_s: float = 2.0,
        on_event: Callable[[CallEvent], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._router = router
        self.decision_timeout_s = decision_timeout_s
        self._on_event = on_event
        self._clock = clock
        self.router_failures = 0
        self._pending: set[asyncio.Task[None]] = set()  # decisions still coming for sessions that ended
        # Called after MixMonitor started a recording to be kept silent until the agent asks
        # (the AMI MixMonitorMute the ``dialer`` user may send); set by the adapter.
        self.mute_recording: Callable[[str], Awaitable[None]] | None = None

    async def attempt_id(self, session: AgiSession) -> str:
        for name in self.ATTEMPT_VARIABLES:
            value = await session.get_variable(name)
            if value:
                return value
        uniqueid = session.env.get("agi_uniqueid", "")
        if not uniqueid:
            raise AgiProtocolError("answered call has no DIALER_ATTEMPT, ATTEMPT or agi_uniqueid")
        return uniqueid  # ChannelId = attempt id: the uniqueid is ours

    async def __call__(self, session: AgiSession) -> None:
        attempt_id = await self.attempt_id(session)
        status = await session.get_variable("AMDSTATUS")
        amd = amd_result(status)
        detail = ""
        if amd is not None:
            detail = await session.get_variable("AMDCAUSE") or status or ""
        call = AnsweredCall(attempt_id, self._clock(), amd, detail)
        decision = await self._decide_while_listening(session, call)
        prepared = False
        for _ in range(self.MAX_CONNECT_TRIES):
            if not isinstance(decision, ConnectToAgent):
                break
            if not prepared:
                await self.prepare(session, attempt_id, decision)
                prepared = True
            result = await self.connect(session, attempt_id, decision.agent_id)
            if result.result != "-1":
                return  # 0: the customer left the bridge (the conversation is over)
            reason = "the agent's bridge refused the customer (conf-locked: a stale leg fills it)"
            log.warning("attempt %s: %s; agent %s", attempt_id, reason, decision.agent_id)
            decision = await self._decide_again(call, decision.agent_id, reason)
        else:
            decision = HangupCall()
        await self.execute(session, attempt_id, decision)

    async def _decide_while_listening(self, session: AgiSession, call: AnsweredCall) -> AnswerDecision:
        """The router's decision; if Asterisk takes the channel away meanwhile, drop the session at once.

        Asterisk holds a channel that is hung up or redirected until the AGI
        socket closes, so the session is closed without waiting for the
        decision; a decision that reserved an agent is then reported as a
        failed connect so the agent goes back to work.
        """
        decide = asyncio.ensure_future(self._decide(call))
        listen = asyncio.ensure_future(session.unasked_line())
        await asyncio.wait({decide, listen}, return_when=asyncio.FIRST_COMPLETED)
        if decide.done():
            listen.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listen
            return decide.result()
        line = listen.result()
        task = asyncio.ensure_future(self._report_gone(call, decide, line))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        raise AgiHangup(f"{line} while the dialer decided")

    async def _report_gone(
        self, call: AnsweredCall, decide: asyncio.Future[AnswerDecision], line: str
    ) -> None:
        decision = await decide
        if isinstance(decision, ConnectToAgent) and self._on_event is not None:
            reason = f"the customer's channel left the AGI before the connect ({line})"
            self._on_event(ConnectFailed(call.attempt_id, self._clock(), decision.agent_id, reason, True))

    async def _decide_again(self, call: AnsweredCall, agent_id: str, reason: str) -> AnswerDecision:
        router = self._router()
        if router is None:
            return HangupCall()
        try:
            return await asyncio.wait_for(
                router.on_connect_failed(call, agent_id, reason), self.decision_timeout_s
            )
        except Exception:
            self.router_failures += 1
            log.exception("answered attempt %s: no new decision after a failed connect", call.attempt_id)
        return HangupCall()

    async def prepare(self, session: AgiSession, attempt_id: str, decision: ConnectToAgent) -> None:
        """Before the bridge: the campaign's announcement, then the recording (``sip_call_recording``).

        The ``dialer`` AMI user may not start MixMonitor (``Permission denied``, the action needs
        ``system``): the channel runs it itself here, as the captures show, before it enters
        ConfBridge.  A recording on demand starts muted (silence) and is unmuted over AMI.
        """
        if decision.announcement:
            sound = safe_token(decision.announcement, "announcement")
            await session.command(f"EXEC Playback {sound}", self.PLAYBACK_TIMEOUT_S)
        if decision.record:
            name = safe_token(attempt_id, "attempt id")
            if "/" in name or ".." in name:
                raise ValueError(f"attempt id {attempt_id!r} cannot name a recording file")
            await session.command(f"EXEC MixMonitor {name}.wav")
            muted = " (muted)" if decision.record_muted else ""
            log.info("attempt %s: recording to %s.wav%s", attempt_id, name, muted)
            if decision.record_muted and self.mute_recording is not None:
                await self.mute_recording(attempt_id)

    async def connect(self, session: AgiSession, attempt_id: str, agent_id: str) -> AgiResult:
        """Put the customer in ``agent_<id>``; returns when it leaves (0) or is refused (-1).

        The connect itself is confirmed on AMI (``ConfbridgeJoin``), not here.
        """
        agent = safe_token(agent_id, "agent id")
        await session.set_variable("DIALER_AGENT", agent)
        log.info("attempt %s -> agent %s", attempt_id, agent)
        return await session.command(f"EXEC ConfBridge agent_{agent}", self.BRIDGE_TIMEOUT_S)

    async def _decide(self, call: AnsweredCall) -> AnswerDecision:
        router = self._router()
        if router is None:
            self.router_failures += 1
            log.error("answered attempt %s: no answer router is set; hanging up", call.attempt_id)
            return HangupCall()
        # A safety net only: the runtime owns the deadline and answers within the campaign's
        # limit.  A decision that comes later is not cancelled half-way (it may hold an agent):
        # it finishes in the background and a reserved agent is handed back.
        deciding = asyncio.ensure_future(router.on_answered(call))
        try:
            return await asyncio.wait_for(asyncio.shield(deciding), self.decision_timeout_s)
        except TimeoutError:
            self.router_failures += 1
            log.error(
                "answered attempt %s: no decision within %.1f s; hanging up",
                call.attempt_id,
                self.decision_timeout_s,
            )
            task = asyncio.ensure_future(self._report_gone(call, deciding, "no decision in time"))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)
        except Exception:
            self.router_failures += 1
            log.exception("answered attempt %s: the answer router failed; hanging up", call.attempt_id)
        return HangupCall()

    async def execute(self, session: AgiSession, attempt_id: str, decision: AnswerDecision) -> None:
        if isinstance(decision, ConnectToAgent):
            await self.prepare(session, attempt_id, decision)
            await self.connect(session, attempt_id, decision.agent_id)
        elif isinstance(decision, PlayMessageThenHangup):
            message = safe_token(decision.message, "message")
            log.info("attempt %s: playing %s then hanging up", attempt_id, message)
            await session.command(f"EXEC Playback {message}", self.PLAYBACK_TIMEOUT_S)
            await session.hangup()
        else:
            log.info("attempt %s: hanging up (cause %d)", attempt_id, decision.cause)
            await session.hangup()
