"""asyncio client for the FreeSWITCH Event Socket in inbound mode (we connect to port 8021).

It moves bytes and time around the sans-IO ``EslParser``: connect, ``auth``,
``event plain <list>``, then commands with a timeout each, events handed to a
handler through a queue, a liveness probe, and reconnection with backoff.

Why our own client and not one from PyPI: ``genesis`` pins ``redis<6``, which
clashes with ours; ``python-ESL`` / ``ESL`` (SWIG) are blocking C bindings
that must be compiled against the FreeSWITCH tree; ``greenswitch`` needs
gevent; the small asyncio ones are unmaintained and have no per-command
timeout or injection checks.  The protocol is small and strictly ordered, so
~300 lines we can test against the real captures are the safer choice.

ESL answers commands strictly in the order they were written (one
``command/reply`` or ``api/response`` each).  A command that gets no reply
therefore desynchronises every later reply: on a timeout the connection is
dropped and rebuilt, never reused.  Commands are never retried here; the
adapter decides (an originate is never re-sent).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from telephony.base import ActionTimeout, PbxError, PbxUnavailable
from telephony.freeswitch.protocol import (
    CT_API_RESPONSE,
    CT_AUTH_REQUEST,
    CT_COMMAND_REPLY,
    CT_DISCONNECT,
    CT_RUDE_REJECTION,
    EslFrame,
    EslParser,
    encode_api,
    encode_auth,
    encode_bgapi,
    encode_event_subscription,
    encode_exit,
    encode_sendmsg_execute,
)

log = logging.getLogger(__name__)

READ_SIZE = 64 * 1024


class EslAuthError(PbxError):
    """FreeSWITCH refused the password or our address (ACL)."""


class EslReplyLost(PbxUnavailable):
    """The command was written but the link died before its reply: it may have run."""


@dataclass(frozen=True, slots=True)
class ConnectionUp:
    """Queued (in order with the events) when a connection is ready, the first one included."""

    at: float
    reconnect: bool
    connection: int  # 1 for the first connection, then 2, 3, ... (``EslClient.connections``)


@dataclass(frozen=True, slots=True)
class ConnectionDown:
    """Queued when a connection is lost; the commands in flight have failed."""

    at: float
    reason: str


EslItem = EslFrame | ConnectionUp | ConnectionDown
Handler = Callable[[EslItem, float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class EslClientSettings:
    host: str
    port: int
    password: str
    events: tuple[str, ...]
    command_timeout_s: float = 5.0
    connect_timeout_s: float = 5.0
    reconnect_initial_s: float = 0.5
    reconnect_max_s: float = 30.0
    # A link with no frame for this long is dead (``api uptime`` probes it from half of it on).
    liveness_interval_s: float = 10.0


class _Pending:
    __slots__ = ("future", "what")

    def __init__(self, future: asyncio.Future[EslFrame], what: str) -> None:
        self.future = future
        self.what = what


class EslClient:
    """One inbound ESL connection that keeps itself up.

    ``handler(item, at)`` receives, in arrival order, every event frame plus
    ``ConnectionUp`` / ``ConnectionDown`` markers.  It runs in its own task
    behind an unbounded queue, so a slow handler never stalls the reader (and
    with it the replies to our commands).  Its exceptions are logged and
    counted in ``handler_errors``.
    """

    def __init__(
        self,
        settings: EslClientSettings,
        handler: Handler,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self._handler = handler
        self._clock = clock
        self._queue: asyncio.Queue[tuple[EslItem, float]] = asyncio.Queue()
        self._pending: deque[_Pending] = deque()
        self._write_lock = asyncio.Lock()
        self._writer: asyncio.StreamWriter | None = None
        self._ready = asyncio.Event()
        self._auth_requested = asyncio.Event()
        self._connected = False
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []
        self._last_frame_at = 0.0
        self._drop_reason: str | None = None
        self._parser = EslParser()
        self.connections = 0
        self.handler_errors = 0
        self.command_timeouts = 0
        self.protocol_errors = 0
        self.max_queue_depth = 0

    # -- lifecycle ----------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected

    async def start(self) -> None:
        """Start connecting in the background (returns at once; see ``wait_connected``)."""
        if self._tasks:
            return
        self._stopping = False
        self._tasks = [
            asyncio.create_task(self._run(), name="esl-connection"),
            asyncio.create_task(self._dispatch(), name="esl-dispatch"),
        ]

    async def wait_connected(self, timeout_s: float | None = None) -> bool:
        try:
            await asyncio.wait_for(self._ready.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    async def stop(self) -> None:
        """Say ``exit``, close, and let the handler finish what is queued."""
        self._stopping = True
        if self._connected and self._writer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._send(encode_exit(), "exit"), 1.0)
        self._close("client stopped")
        tasks, self._tasks = self._tasks, []
        conn = [t for t in tasks if t.get_name() == "esl-connection"]
        for t in conn:
            t.cancel()
        await asyncio.gather(*conn, return_exceptions=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), 5.0)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def drop(self, reason: str) -> None:
        """Close the current connection (it will be rebuilt); for liveness failures and tests."""
        self._close(reason)

    # -- commands -----------------------------------------------------------

    async def api(self, command: str, timeout_s: float | None = None) -> str:
        """``api <command>``: the response text (``+OK ...`` / ``-ERR ...``), as FreeSWITCH wrote it."""
        frame = await self._command(encode_api(command), f"api {command.split(' ', 1)[0]}", timeout_s)
        return frame.reply_text

    async def bgapi(self, command: str, job_uuid: str, timeout_s: float | None = None) -> str:
        """``bgapi`` with our Job-UUID; returns the Reply-Text, raises PbxError on ``-ERR``."""
        frame = await self._command(encode_bgapi(command, job_uuid), "bgapi", timeout_s)
        if not frame.ok:
            raise PbxError(f"FreeSWITCH refused bgapi {command.split(' ', 1)[0]}: {frame.reply_text}")
        echoed = frame.headers.get("Job-UUID")
        if echoed is not None and echoed != job_uuid:
            # Replies are ordered; a foreign Job-UUID means we lost track: rebuild the link.
            # Ours may have run, so this is "reply lost", not "refused".
            self._close(f"bgapi reply for {echoed!r} while waiting for {job_uuid!r}")
            raise EslReplyLost("ESL replies out of step; connection reset, the job may have run")
        return frame.reply_text

    async def sendmsg_execute(
        self,
        uuid: str,
        app: str,
        arg: str | None = None,
        *,
        event_lock: bool = False,
        timeout_s: float | None = None,
    ) -> str:
        frame = await self._command(
            encode_sendmsg_execute(uuid, app, arg, event_lock=event_lock), f"sendmsg {app}", timeout_s
        )
        if not frame.ok:
            raise PbxError(f"FreeSWITCH refused {app} on the call: {frame.reply_text}")
        return frame.reply_text

    async def _command(self, data: bytes, what: str, timeout_s: float | None) -> EslFrame:
        if not self._connected:
            raise PbxUnavailable(f"not connected to FreeSWITCH: {what} not sent")
        return await self._send(data, what, timeout_s)

    async def _send(self, data: bytes, what: str, timeout_s: float | None = None) -> EslFrame:
        writer = self._writer
        if writer is None:
            raise PbxUnavailable(f"not connected to FreeSWITCH: {what} not sent")
        loop = asyncio.get_running_loop()
        pending = _Pending(loop.create_future(), what)
        async with self._write_lock:
            if self._writer is not writer:
                raise PbxUnavailable(f"FreeSWITCH connection lost: {what} not sent")
            self._pending.append(pending)
            writer.write(data)
        try:
            return await asyncio.wait_for(
                asyncio.shield(pending.future), timeout_s or self.settings.command_timeout_s
            )
        except TimeoutError:
            pending.future.cancel()  # a late reply (or the link's end) finds nobody waiting
            self.command_timeouts += 1
            log.error("FreeSWITCH did not answer %s in time; resetting the ESL connection", what)
            if self._writer is writer:
                self._close(f"no reply to {what}")
            raise ActionTimeout(f"FreeSWITCH did not answer {what} in time; the link was reset") from None

    # -- connection ---------------------------------------------------------

    async def _run(self) -> None:
        delay = self.settings.reconnect_initial_s
        first = True
        while not self._stopping:
            try:
                await self._session(reconnect=not first)
                delay = self.settings.reconnect_initial_s  # it worked for a while: start over
            except EslAuthError as exc:
                log.error("%s", exc)
            except (OSError, TimeoutError, PbxError) as exc:
                log.warning("FreeSWITCH ESL %s:%s: %s", self.settings.host, self.settings.port, exc)
            if self.connections:
                first = False
            if self._stopping:
                break
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, self.settings.reconnect_max_s)

    async def _session(self, *, reconnect: bool) -> None:
        s = self.settings
        reader, writer = await asyncio.wait_for(asyncio.open_connection(s.host, s.port), s.connect_timeout_s)
        self._writer = writer
        self._parser = EslParser()
        self._auth_requested.clear()
        self._drop_reason = None
        read_task = asyncio.create_task(self._read(reader, writer), name="esl-reader")
        try:
            if not await self._until(self._auth_requested, read_task, s.connect_timeout_s):
                raise PbxUnavailable(
                    self._drop_reason
                    or "FreeSWITCH closed the connection or sent no auth/request in time "
                    "(check apply-inbound-acl in event_socket.conf.xml)"
                )
            reply = await self._send(encode_auth(s.password), "auth", s.connect_timeout_s)
            if not reply.ok:
                raise EslAuthError(
                    f"FreeSWITCH refused the ESL password ({reply.reply_text}); "
                    "check [freeswitch] password against event_socket.conf.xml"
                )
            reply = await self._send(encode_event_subscription(s.events), "event", s.connect_timeout_s)
            if not reply.ok:
                raise PbxError(f"FreeSWITCH refused the event subscription: {reply.reply_text}")
            self._connected = True
            self.connections += 1
            self._last_frame_at = time.monotonic()
            self._ready.set()
            log.info("connected to FreeSWITCH ESL %s:%s", s.host, s.port)
            self._enqueue(ConnectionUp(self._clock(), reconnect, self.connections))
            live = asyncio.create_task(self._liveness(), name="esl-liveness")
            try:
                await read_task
            finally:
                live.cancel()
                await asyncio.gather(live, return_exceptions=True)
        finally:
            was_connected = self._connected
            self._connected = False
            self._ready.clear()
            reason = self._drop_reason or "connection closed by FreeSWITCH"
            self._close(reason)
            read_task.cancel()
            await asyncio.gather(read_task, return_exceptions=True)
            self._fail_pending(reason)
            if was_connected:
                log.warning("FreeSWITCH ESL connection lost: %s", reason)
                self._enqueue(ConnectionDown(self._clock(), reason))

    @staticmethod
    async def _until(event: asyncio.Event, read_task: asyncio.Task[None], timeout_s: float) -> bool:
        """Wait for ``event``; False at once if the reader stops (refused, closed) or on timeout."""
        waiter = asyncio.create_task(event.wait())
        try:
            done, _ = await asyncio.wait(
                {waiter, read_task}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            waiter.cancel()
        return waiter in done

    async def _read(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        parser = self._parser
        while True:
            data = await reader.read(READ_SIZE)
            if not data:
                return
            self._last_frame_at = time.monotonic()
            before = parser.error_count
            frames = parser.feed(data)
            if parser.error_count != before:
                self.protocol_errors += parser.error_count - before
                for message in parser.errors[-(parser.error_count - before) :]:
                    log.error("malformed ESL frame skipped: %s", message)
            for frame in frames:
                self._on_frame(frame)
            if self._writer is not writer:
                return

    def _on_frame(self, frame: EslFrame) -> None:
        ctype = frame.content_type
        if frame.is_event:
            self._enqueue(frame)
        elif ctype in (CT_COMMAND_REPLY, CT_API_RESPONSE):
            if not self._pending:
                log.error("ESL %s with no command waiting: %r", ctype, frame.reply_text[:80])
                return
            pending = self._pending.popleft()
            if not pending.future.done():
                pending.future.set_result(frame)
        elif ctype == CT_AUTH_REQUEST:
            self._auth_requested.set()
        elif ctype in (CT_DISCONNECT, CT_RUDE_REJECTION):
            self._drop_reason = f"FreeSWITCH closed the session ({ctype}: {frame.body[:80]!r})"
        else:
            log.warning("ESL frame of unknown type %r ignored", ctype)

    async def _liveness(self) -> None:
        """A link silent for half the interval is probed with ``api uptime``, which must answer
        within the other half: a dead link is found between one and 1.25 intervals after its
        last frame (``ping_interval_s`` = 5: 5 to 6.25 s)."""
        interval = self.settings.liveness_interval_s
        while True:
            await asyncio.sleep(interval / 4)
            if time.monotonic() - self._last_frame_at < interval / 2:
                continue
            try:
                await self._command(encode_api("uptime"), "api uptime (liveness)", interval / 2)
            except PbxError as exc:
                log.error("FreeSWITCH liveness check failed: %s", exc)
                return  # the timeout already reset the link

    def _close(self, reason: str) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            if self._drop_reason is None:
                self._drop_reason = reason
            self._connected = False
            writer.close()
        self._fail_pending(reason)

    def _fail_pending(self, reason: str) -> None:
        while self._pending:
            pending = self._pending.popleft()
            if not pending.future.done():
                pending.future.set_exception(
                    EslReplyLost(f"FreeSWITCH connection lost before {pending.what} was answered: {reason}")
                )

    # -- event delivery -----------------------------------------------------

    def _enqueue(self, item: EslItem) -> None:
        self._queue.put_nowait((item, self._clock()))
        depth = self._queue.qsize()
        if depth > self.max_queue_depth:
            self.max_queue_depth = depth
            if depth in (1_000, 10_000, 100_000):
                log.warning("ESL event handler is %d events behind", depth)

    async def _dispatch(self) -> None:
        while True:
            item, at = await self._queue.get()
            try:
                await self._handler(item, at)
            except asyncio.CancelledError:
                raise
            except Exception:
                self.handler_errors += 1
                log.exception("ESL event handler failed (%d so far)", self.handler_errors)
            finally:
                self._queue.task_done()

    @property
    def queue_depth(self) -> int:
        return self._queue.qsize()


def events_for(extra: Sequence[str] = ()) -> tuple[str, ...]:
    """The subscription the adapter needs (the capture's list plus HEARTBEAT for liveness)."""
    base = (
        "CHANNEL_CREATE",
        "CHANNEL_PROGRESS",
        "CHANNEL_PROGRESS_MEDIA",
        "CHANNEL_ANSWER",
        "CHANNEL_HANGUP",
        "CHANNEL_HANGUP_COMPLETE",
        "CHANNEL_PARK",
        "CHANNEL_EXECUTE_COMPLETE",
        "BACKGROUND_JOB",
        "HEARTBEAT",
        "CUSTOM",
        "avmd::beep",
        "avmd::start",
        "avmd::stop",
        "conference::maintenance",
    )
    return base + tuple(e for e in extra if e not in base)
