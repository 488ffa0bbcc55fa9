"""The AMI connection: login, actions with timeouts, an event queue, liveness and reconnects.

Our own transport on asyncio streams and the sans-IO ``AmiParser``, rather than
panoramisk's ``Manager`` (see the README section on Asterisk for the reasons
found in its source: a second, slower parser; OriginateResponse swallowed as an
action reply; pending actions re-sent after a reconnect; Ping replies never
checked; no action timeout; callbacks run inside ``data_received``).

Guarantees:

- every action gets a reply within its timeout or raises ``ActionTimeout``;
- an action is written once: after a reconnect nothing is re-sent, pending
  actions fail with ``PbxUnavailable`` and the caller reconciles;
- the link is alive only while ``Ping`` gets its reply; a silent peer is
  dropped and re-dialed with exponential backoff;
- the socket reader only parses and routes: events go through a queue to the
  handler, so a slow handler never stalls the reader; handler errors are
  logged and counted;
- a malformed message is logged and counted, and the connection goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass

from telephony.asterisk.protocol import AmiMessage, AmiParser, Header, encode
from telephony.asterisk.settings import AsteriskSettings
from telephony.base import ActionTimeout, PbxError, PbxUnavailable

log = logging.getLogger(__name__)

EventHandler = Callable[[AmiMessage, float], Awaitable[None] | None]
LinkHandler = Callable[[], Awaitable[None] | None]

_READ_CHUNK = 256 * 1024
_HANDLER_ERRORS_LOGGED = 20  # full tracebacks for the first ones, then a count every 1000


class AmiActionError(PbxError):
    """Asterisk answered ``Response: Error`` to an action."""

    def __init__(self, action: str, response: AmiMessage) -> None:
        self.response = response
        message = response.get("Message", "no message")
        super().__init__(f"AMI {action} refused by Asterisk: {message}")


class AmiResponse(AmiMessage):
    """An action's response, with the events of its list (CoreShowChannels ...)."""

    __slots__ = ("events",)

    def __init__(self, response: AmiMessage, events: list[AmiMessage] | None = None) -> None:
        super().__init__(response)
        self.repeated = response.repeated
        self.events: list[AmiMessage] = events or []


class _Pending:
    __slots__ = ("events", "future", "listing", "name")

    def __init__(self, name: str, future: asyncio.Future[AmiResponse]) -> None:
        self.name = name
        self.future = future
        self.listing: AmiMessage | None = None  # the "EventList: start" response, while collecting
        self.events: list[AmiMessage] = []


@dataclass
class AmiStats:
    connects: int = 0
    disconnects: int = 0
    login_failures: int = 0
    events: int = 0
    malformed: int = 0
    handler_errors: int = 0
    action_timeouts: int = 0
    ping_failures: int = 0
    queue_high_water: int = 0


class AmiClient:
    """One AMI session to one Asterisk, kept up until ``close()``."""

    def __init__(
        self,
        settings: AsteriskSettings,
        on_event: EventHandler | None = None,
        on_connected: LinkHandler | None = None,
        on_disconnected: LinkHandler | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self._on_event = on_event
        self._on_connected = on_connected
        self._on_disconnected = on_disconnected
        self._clock = clock
        self.stats = AmiStats()
        self._queue: asyncio.Queue[tuple[AmiMessage, float]] = asyncio.Queue()
        self._pending: dict[str, _Pending] = {}
        self._ids = itertools.count(1)
        self._writer: asyncio.StreamWriter | None = None
        self._logged_in = False
        self._closing = False
        self._supervisor: asyncio.Task[None] | None = None
        self._dispatcher: asyncio.Task[None] | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._queue_warned = False
        self.banner: str | None = None

    # ------------------------------------------------------------------
    # Lifecycle

    @property
    def connected(self) -> bool:
        return self._logged_in and self._writer is not None and not self._writer.is_closing()

    async def connect(self) -> None:
        """Connect and log in once (raising if that fails), then stay connected until close()."""
        if self._supervisor is not None:
            raise RuntimeError("AmiClient.connect() called twice")
        self._closing = False
        if self._dispatcher is None:
            self._dispatcher = asyncio.create_task(self._dispatch(), name="ami-dispatch")
        await self._open()
        self._supervisor = asyncio.create_task(self._supervise(), name="ami-supervisor")

    async def close(self) -> None:
        """Log off and stop; pending actions fail with PbxUnavailable."""
        self._closing = True
        writer = self._writer
        if writer is not None and self.connected:
            with contextlib.suppress(Exception):
                writer.write(encode({"Action": "Logoff", "ActionID": self._next_id("logoff")}))
                await asyncio.wait_for(writer.drain(), 1.0)
        self._drop_link()
        for task in (self._supervisor, self._dispatcher):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._supervisor = self._dispatcher = None

    async def _open(self) -> None:
        s = self.settings
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(s.host, s.port, limit=_READ_CHUNK), s.connect_timeout_s
            )
        except (OSError, TimeoutError) as exc:
            raise PbxUnavailable(
                f"cannot reach Asterisk AMI at {s.host}:{s.port}: {exc or 'timed out'}; "
                "is Asterisk running and manager.conf enabled on that address?"
            ) from exc
        self._writer = writer
        reader_task = asyncio.create_task(self._read(reader, writer, AmiParser()), name="ami-reader")
        login = {
            "Action": "Login",
            "ActionID": self._next_id("login"),
            "Username": s.username,
            "Secret": s.secret,
            "Events": "on",
        }
        try:
            response = await self._send(login, s.action_timeout_s, check=False, require_login=False)
        except PbxError:
            reader_task.cancel()
            self._drop_link()
            raise
        if response.get("Response") != "Success":
            self.stats.login_failures += 1
            reader_task.cancel()
            self._drop_link()
            raise PbxError(
                f"AMI login as {s.username!r} refused: {response.get('Message', 'no reason given')}; "
                "check the user and secret in manager.conf and in the dialer config"
            )
        self._logged_in = True
        self._reader_task = reader_task
        self.stats.connects += 1
        log.info("AMI connected to %s:%d as %s (%s)", s.host, s.port, s.username, self.banner or "no banner")

    async def _supervise(self) -> None:
        """Keep the link: ping while up; after a loss reconnect with backoff; never re-send."""
        s = self.settings
        while not self._closing:
            await self._run_link_callback(self._on_connected, "on_connected")
            pinger = asyncio.create_task(self._ping_loop(), name="ami-ping")
            try:
                if self._reader_task is not None:
                    await self._reader_task
            except asyncio.CancelledError:
                pinger.cancel()
                raise
            except Exception:
                log.exception("AMI reader failed")
            pinger.cancel()
            self._logged_in = False
            self._fail_pending(
                PbxUnavailable("AMI link lost before Asterisk answered; the action was not re-sent")
            )
            if self._closing:
                return
            self.stats.disconnects += 1
            log.warning("AMI link to %s:%d lost; reconnecting", s.host, s.port)
            await self._run_link_callback(self._on_disconnected, "on_disconnected")
            delay = s.reconnect_initial_s
            while not self._closing:
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                try:
                    await self._open()
                    break
                except PbxError as exc:
                    log.warning(
                        "AMI reconnect failed: %s; next try in %.1f s", exc, min(delay * 2, s.reconnect_max_s)
                    )
                    delay = min(delay * 2, s.reconnect_max_s)

    async def _run_link_callback(self, callback: LinkHandler | None, what: str) -> None:
        if callback is None:
            return
        try:
            result = callback()
            if inspect.isawaitable(result):
                await result
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("AMI %s handler failed", what)

    async def _ping_loop(self) -> None:
        s = self.settings
        while True:
            await asyncio.sleep(s.ping_interval_s)
            try:
                reply = await self.send_action({"Action": "Ping"}, s.ping_timeout_s)
                if reply.get("Response") != "Success":
                    raise PbxError(f"Ping answered {reply.get('Response')}")
            except (PbxError, ActionTimeout) as exc:
                self.stats.ping_failures += 1
                log.warning("AMI Ping failed (%s): dropping the link to reconnect", exc)
                self._drop_link()
                return

    def _drop_link(self) -> None:
        self._logged_in = False
        writer = self._writer
        if writer is not None:
            transport = writer.transport
            if not transport.is_closing():
                transport.abort()

    # ------------------------------------------------------------------
    # Reading

    async def _read(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, parser: AmiParser
    ) -> None:
        errors_seen = 0
        try:
            while True:
                data = await reader.read(_READ_CHUNK)
                if not data:
                    return
                at = self._clock()
                messages = parser.feed(data)
                if parser.banner is not None and self.banner is None:
                    self.banner = parser.banner
                if parser.error_count != errors_seen:
                    new = parser.error_count - errors_seen
                    errors_seen = parser.error_count
                    self.stats.malformed += new
                    log.warning("AMI: %d malformed message(s) dropped, last: %s", new, parser.errors[-1])
                for msg in messages:
                    self._route(msg, at)
        except (ConnectionError, OSError) as exc:
            log.info("AMI read ended: %s", exc)
        finally:
            if self._writer is writer:
                self._logged_in = False
            writer.close()

    def _route(self, msg: AmiMessage, at: float) -> None:
        if "Event" not in msg:
            self._on_response(msg)
            return
        action_id = msg.get("ActionID")
        if action_id is not None:
            pending = self._pending.get(action_id)
            if pending is not None and pending.listing is not None:
                if msg.get("EventList") == "Complete" or msg["Event"].endswith("Complete"):
                    del self._pending[action_id]
                    if not pending.future.done():
                        pending.future.set_result(AmiResponse(pending.listing, pending.events))
                else:
                    pending.events.append(msg)
                return
        self.stats.events += 1
        queue = self._queue
        queue.put_nowait((msg, at))
        size = queue.qsize()
        if size > self.stats.queue_high_water:
            self.stats.queue_high_water = size
            if size > self.settings.event_queue_warn and not self._queue_warned:
                self._queue_warned = True
                log.warning("AMI event backlog at %d events: the event handler is too slow", size)

    def _on_response(self, msg: AmiMessage) -> None:
        action_id = msg.get("ActionID")
        pending = self._pending.get(action_id) if action_id is not None else None
        if pending is None:
            return  # reply to an action that timed out, or to somebody else's id
        if msg.get("EventList") == "start" and msg.get("Response") == "Success":
            pending.listing = msg
            return
        del self._pending[action_id]  # type: ignore[arg-type]
        if not pending.future.done():
            pending.future.set_result(AmiResponse(msg))

    # ------------------------------------------------------------------
    # Dispatching events

    async def _dispatch(self) -> None:
        queue = self._queue
        while True:
            msg, at = await queue.get()
            if queue.qsize() < self.settings.event_queue_warn // 2:
                self._queue_warned = False
            handler = self._on_event
            try:
                if handler is not None:
                    result = handler(msg, at)
                    if result is not None:
                        await result
            except asyncio.CancelledError:
                raise
            except Exception:
                self.stats.handler_errors += 1
                n = self.stats.handler_errors
                if n <= _HANDLER_ERRORS_LOGGED:
                    log.exception("AMI event handler failed on %s", msg.get("Event"))
                elif n % 1000 == 0:
                    log.error("AMI event handler has failed %d times", n)
            finally:
                queue.task_done()

    async def drain_events(self) -> None:
        """Wait until every queued event has been handed to the handler (tests, shutdown)."""
        await self._queue.join()

    # ------------------------------------------------------------------
    # Actions

    def _next_id(self, prefix: str) -> str:
        return f"dialer-{prefix}-{next(self._ids)}"

    # The per-action timeout is the API (each action has its own budget): hence ASYNC109.
    async def send_action(
        self,
        fields: Mapping[str, str] | Iterable[Header],
        timeout: float | None = None,  # noqa: ASYNC109
        check: bool = True,
    ) -> AmiResponse:
        """Send one action and return its response (with its event list, if it has one).

        Raises ``PbxUnavailable`` when not connected or when the link drops
        before the answer (the action is *not* re-sent), ``ActionTimeout``
        when Asterisk does not answer in time, and ``AmiActionError`` for
        ``Response: Error`` unless ``check`` is false.
        """
        return await self._send(fields, timeout, check=check, require_login=True)

    async def _send(
        self,
        fields: Mapping[str, str] | Iterable[Header],
        timeout_s: float | None,
        check: bool,
        require_login: bool,
    ) -> AmiResponse:
        pairs = list(fields.items()) if isinstance(fields, Mapping) else list(fields)
        name = next((v for k, v in pairs if k == "Action"), "")
        if not name:
            raise ValueError("an AMI action needs an 'Action' header")
        action_id = next((v for k, v in pairs if k == "ActionID"), None)
        if action_id is None:
            action_id = self._next_id(name.lower())
            pairs.insert(1, ("ActionID", action_id))
        if action_id in self._pending:
            raise PbxError(f"AMI ActionID {action_id!r} is already waiting for an answer; ids must be unique")
        data = encode(pairs)  # refuses CR/LF injection before anything is written
        writer = self._writer
        if writer is None or writer.is_closing() or (require_login and not self._logged_in):
            raise PbxUnavailable(f"not connected to Asterisk AMI; {name} was not sent")
        future: asyncio.Future[AmiResponse] = asyncio.get_running_loop().create_future()
        self._pending[action_id] = _Pending(name, future)
        limit = self.settings.action_timeout_s if timeout_s is None else timeout_s
        try:
            writer.write(data)
            response = await asyncio.wait_for(self._drain_then(writer, future), limit)
        except TimeoutError:
            self.stats.action_timeouts += 1
            raise ActionTimeout(
                f"Asterisk did not answer {name} (ActionID {action_id}) within {limit} s; "
                "it may still act on it, so it is not re-sent"
            ) from None
        except (ConnectionError, OSError) as exc:
            raise PbxUnavailable(f"AMI link lost while sending {name}; it was not re-sent") from exc
        finally:
            self._pending.pop(action_id, None)
        if check and response.get("Response") == "Error":
            raise AmiActionError(name, response)
        return response

    @staticmethod
    async def _drain_then(writer: asyncio.StreamWriter, future: asyncio.Future[AmiResponse]) -> AmiResponse:
        await writer.drain()
        return await future

    def _fail_pending(self, exc: PbxError) -> None:
        pending, self._pending = self._pending, {}
        for entry in pending.values():
            if not entry.future.done():
                entry.future.set_exception(exc)
