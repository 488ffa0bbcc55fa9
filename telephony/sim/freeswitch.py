"""A FreeSWITCH 1.10.12 stand-in on TCP: the inbound Event Socket, frame for frame as recorded.

The dialer's ESL adapter is developed and tested against this server, and
later runs against a real FreeSWITCH, so every frame follows the recorded
sessions in ``../shared/freeswitch-transcripts``: ``auth/request`` on
connect, ``command/reply`` for ``auth``/``event``/``bgapi``/``sendmsg``/
``exit``, ``api/response`` in line between events, ``text/event-plain``
events (URL-encoded header blocks, CHANNEL_* frames of 3-10 KB) and the
``text/disconnect-notice`` before the socket closes.  The calls themselves
are played by ``telephony.sim.esl_switch``.

    sim = FreeSwitchSimulator(ScriptedCallee(), time_scale=20.0)
    await sim.start()            # 127.0.0.1, a free port: sim.port
    ...
    await sim.crash()            # a killed FreeSWITCH: connections and calls gone
    await sim.shutdown_restart() # fsctl shutdown restart: calls cut (SYSTEM_SHUTDOWN), back later
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from urllib.parse import unquote

from telephony.sim.esl_switch import SOFIA_PROFILES, Channel, LiveChannel, OriginateRefused, Switch
from telephony.sim.esl_templates import (
    AUTH_REQUEST,
    DISCONNECT_NOTICE,
    SHUTDOWN_NOTICE,
    Headers,
    api_response,
    command_reply,
    local_stamp,
)
from telephony.sim.freeswitch_record import SessionRecordings
from telephony.sim.model import CalleeModel, ScriptedCallee

# fsctl shutdown restart, as recorded: the last event, then 1.2 s later the disconnect notice,
# and the switch listens again 9.7 s after the shutdown (PBX seconds).
SHUTDOWN_NOTICE_DELAY = 1.2
RESTART_DOWN_S = 9.7
MAX_COMMAND_BYTES = 64 * 1024  # a command frame larger than this is not ESL: the connection is dropped
VERSION = "1.10.12-release"
SOUNDS_DIR = "/usr/share/freeswitch/sounds"  # the sounds directory of the 1.10 Debian packages

# switch_event_types_t names accepted by "event plain ..."; anything else is ignored, as FreeSWITCH does.
_EVENT_NAMES = frozenset(
    [
        "CUSTOM",
        "CLONE",
        "CHANNEL_CREATE",
        "CHANNEL_DESTROY",
        "CHANNEL_STATE",
        "CHANNEL_CALLSTATE",
        "CHANNEL_ANSWER",
        "CHANNEL_HANGUP",
        "CHANNEL_HANGUP_COMPLETE",
        "CHANNEL_EXECUTE",
        "CHANNEL_EXECUTE_COMPLETE",
        "CHANNEL_HOLD",
        "CHANNEL_UNHOLD",
        "CHANNEL_BRIDGE",
        "CHANNEL_UNBRIDGE",
        "CHANNEL_PROGRESS",
        "CHANNEL_PROGRESS_MEDIA",
        "CHANNEL_OUTGOING",
        "CHANNEL_PARK",
        "CHANNEL_UNPARK",
        "CHANNEL_APPLICATION",
        "CHANNEL_ORIGINATE",
        "CHANNEL_UUID",
        "API",
        "LOG",
        "INBOUND_CHAN",
        "OUTBOUND_CHAN",
        "STARTUP",
        "SHUTDOWN",
        "PUBLISH",
        "UNPUBLISH",
        "TALK",
        "NOTALK",
        "SESSION_CRASH",
        "MODULE_LOAD",
        "MODULE_UNLOAD",
        "DTMF",
        "MESSAGE",
        "PRESENCE_IN",
        "NOTIFY_IN",
        "PRESENCE_OUT",
        "PRESENCE_PROBE",
        "MESSAGE_WAITING",
        "MESSAGE_QUERY",
        "ROSTER",
        "CODEC",
        "BACKGROUND_JOB",
        "DETECTED_SPEECH",
        "DETECTED_TONE",
        "PRIVATE_COMMAND",
        "HEARTBEAT",
        "TRAP",
        "ADD_SCHEDULE",
        "DEL_SCHEDULE",
        "EXE_SCHEDULE",
        "RE_SCHEDULE",
        "RELOADXML",
        "NOTIFY",
        "PHONE_FEATURE",
        "PHONE_FEATURE_SUBSCRIBE",
        "SEND_MESSAGE",
        "RECV_MESSAGE",
        "REQUEST_PARAMS",
        "CHANNEL_DATA",
        "GENERAL",
        "COMMAND",
        "SESSION_HEARTBEAT",
        "CLIENT_DISCONNECTED",
        "SERVER_DISCONNECTED",
        "SEND_INFO",
        "RECV_INFO",
        "RECV_RTCP_MESSAGE",
        "SEND_RTCP_MESSAGE",
        "CALL_SECURE",
        "NAT",
        "RECORD_START",
        "RECORD_STOP",
        "PLAYBACK_START",
        "PLAYBACK_STOP",
        "CALL_UPDATE",
        "FAILURE",
        "SOCKET_DATA",
        "MEDIA_BUG_START",
        "MEDIA_BUG_STOP",
        "CONFERENCE_DATA_QUERY",
        "CONFERENCE_DATA",
        "CALL_SETUP_REQ",
        "CALL_SETUP_RESULT",
        "CALL_DETAIL",
        "DEVICE_STATE",
        "TEXT",
        "SHUTDOWN_REQUESTED",
        "ALL",
    ]
)


@dataclass(eq=False)
class _Listener:
    """One ESL connection, like mod_event_socket's listener_t."""

    writer: asyncio.StreamWriter
    authed: bool = False
    events: set[str] = field(default_factory=set)
    subclasses: set[str] = field(default_factory=set)
    all_events: bool = False

    filters: list[tuple[str, str]] = field(default_factory=list)

    def wants(self, event_name: str, subclass: str, headers: Headers) -> bool:
        if not self.authed:
            return False
        if self.all_events:
            wanted = True
        elif event_name == "CUSTOM":
            wanted = "CUSTOM" in self.events and subclass in self.subclasses
        else:
            wanted = event_name in self.events
        if not wanted or not self.filters:
            return wanted
        # mod_event_socket: with filters set, an event passes when it matches any of them
        decoded = {k: unquote(v) for k, v in headers}
        return any(decoded.get(name) == value for name, value in self.filters)

    def send(self, data: bytes) -> None:
        if not self.writer.is_closing():
            self.writer.write(data)


class FreeSwitchSimulator:
    """An inbound Event Socket server that plays calls from a callee model."""

    def __init__(
        self,
        model: CalleeModel | None = None,
        time_scale: float = 1.0,
        password: str = "ClueCon",
        seed: int = 1,
        dialplan: str = "shipped",
    ) -> None:
        self.model: CalleeModel = model if model is not None else ScriptedCallee()
        self.time_scale = time_scale
        self.password = password
        self.seed = seed
        self.dialplan = dialplan  # "shipped" (config/freeswitch) or "lab" (the first captures')
        # sofia profiles an originate may name; others fail with -ERR INVALID_PROFILE and no channel
        self.sofia_profiles: set[str] = set(SOFIA_PROFILES)
        self.originates_received: list[str] = []
        # Command words (first word of a command frame) that are read and never answered:
        # a test adds "api" here to see the client's timeout.
        self.unanswered_commands: set[str] = set()
        # Global variables (global_getvar) and the files on the switch (file_exists), laid out as
        # the 1.10 Debian packages do, with the dialer's prompt installed as the README says.
        self.global_vars: dict[str, str] = {
            "sounds_dir": SOUNDS_DIR,
            "sound_prefix": f"{SOUNDS_DIR}/en/us/callie",  # vanilla vars.xml
        }
        self.files: set[str] = {f"{SOUNDS_DIR}/en/us/callie/dialer-identification.wav"}
        self.port = 0
        self._host = "127.0.0.1"
        self._server: asyncio.Server | None = None
        self._listeners: set[_Listener] = set()
        self._tasks: set[asyncio.Task[None]] = set()  # background API jobs
        self._connections: set[asyncio.Task[None]] = set()
        self._switch: Switch | None = None
        self._restarts = 0
        # uuid_record (record_session): set recordings.directory to have the WAV files written.
        self.recordings = SessionRecordings(lambda: self.switch.uptime_s())
        self._restart_task: asyncio.Task[None] | None = None

    # -- life cycle ----------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Listen (again, after ``crash``/``stop``: a restarted FreeSWITCH with no calls)."""
        if self._server is not None:
            raise RuntimeError("simulator already started; call stop() or crash() first")
        self._switch = Switch(
            self.model,
            self.time_scale,
            self.seed + self._restarts,
            self._publish,
            frozenset(self.sofia_profiles),
            self.dialplan,
        )
        self._switch.on_channel_gone = self.recordings.channel_gone
        self._restarts += 1
        self._host = host
        self._server = await asyncio.start_server(self._serve, host, port or self.port or 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def crash(self) -> None:
        """Stop listening, drop every connection mid-stream and forget every call."""
        if self._server is not None:
            self._server.close()
        for listener in list(self._listeners):
            transport = listener.writer.transport
            transport.abort()
        self._listeners.clear()
        if self._switch is not None:
            self._switch.shutdown()
        await self._cancel_tasks()
        if self._server is not None:
            await self._server.wait_closed()
        self._server = None

    async def shutdown_restart(self, down_s: float | None = RESTART_DOWN_S) -> None:
        """``fsctl shutdown restart``: every call hangs up with SYSTEM_SHUTDOWN, every session
        gets the shutdown notice, and the switch listens again on the same port ``down_s``
        PBX seconds later with no calls (None: it stays down).  Returns once it is back."""
        switch = self.switch
        if self._server is not None:
            self._server.close()
        await switch.shutdown_calls("SYSTEM_SHUTDOWN")
        await switch.sleep(SHUTDOWN_NOTICE_DELAY)
        for listener in list(self._listeners):
            listener.send(SHUTDOWN_NOTICE)
            with contextlib.suppress(ConnectionError):
                listener.writer.close()
        self._listeners.clear()
        switch.shutdown()
        await self._cancel_tasks()
        if self._server is not None:
            await self._server.wait_closed()
        self._server = None
        if down_s is None:
            return
        await switch.sleep(max(0.0, down_s - SHUTDOWN_NOTICE_DELAY))
        await self.start(self._host, self.port)

    def request_shutdown(self, *, restart: bool) -> None:
        """What ``api fsctl shutdown [restart]`` from any session starts (in the background)."""
        down_s = RESTART_DOWN_S if restart else None
        self._restart_task = asyncio.get_running_loop().create_task(self.shutdown_restart(down_s))

    async def stop(self) -> None:
        """Graceful: say goodbye on every connection, then close."""
        restart, self._restart_task = self._restart_task, None
        if restart is not None and not restart.done() and restart is not asyncio.current_task():
            restart.cancel()
            await asyncio.gather(restart, return_exceptions=True)
        if self._server is not None:
            self._server.close()
        if self._switch is not None:
            self._switch.shutdown()
        for listener in list(self._listeners):
            listener.send(DISCONNECT_NOTICE)
            with contextlib.suppress(ConnectionError):
                listener.writer.close()
        self._listeners.clear()
        await self._cancel_tasks()
        if self._server is not None:
            await self._server.wait_closed()
        self._server = None

    async def _cancel_tasks(self) -> None:
        tasks = [t for t in self._tasks if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        # Connection handlers end by themselves once their socket is closed.
        connections = [t for t in self._connections if t is not asyncio.current_task()]
        if connections:
            _, pending = await asyncio.wait(connections, timeout=2.0)
            for task in pending:
                task.cancel()
        self._connections.clear()

    async def send_raw(self, data: bytes) -> None:
        """Write bytes as they are to every connected client (malformed-frame tests)."""
        for listener in list(self._listeners):
            listener.send(data)
            with contextlib.suppress(ConnectionError):
                await listener.writer.drain()

    def live_channels(self) -> list[LiveChannel]:
        return self._switch.live_channels() if self._switch is not None else []

    def agent_dials_in(self, agent_id: str, pin: str | list[str]) -> str:
        """A simulated agent phone dials the login extension ``9<agent_id>`` and types ``pin``
        (a list: one PIN per prompt, for the retries); returns the channel's Unique-ID.
        The flow is sketched in ``Switch.dial_in``: no capture of it exists."""
        pins = [pin] if isinstance(pin, str) else list(pin)
        return self.switch.dial_in(agent_id, pins).uuid

    def agent_phone_hangs_up(self, uuid: str) -> bool:
        """The far end of a channel hangs up (BYE); False when there is no such channel."""
        ch = self.switch.find(uuid)
        if ch is None:
            return False
        ch.commands.put_nowait(("bye", ""))
        return True

    @property
    def switch(self) -> Switch:
        if self._switch is None:
            raise RuntimeError("simulator not started")
        return self._switch

    # -- events ------------------------------------------------------------------------

    def _publish(self, event_name: str, subclass: str, headers: Headers, frame: bytes) -> None:
        for listener in self._listeners:
            if listener.wants(event_name, subclass, headers):
                listener.send(frame)

    # -- connections --------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        listener = _Listener(writer)
        self._listeners.add(listener)
        listener.send(AUTH_REQUEST)
        try:
            while True:
                frame = await _read_command(reader)
                if frame is None:
                    break
                keep_going = await self._command(listener, *frame)
                await writer.drain()
                if not keep_going:
                    break
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            self._listeners.discard(listener)
            if task is not None:
                self._connections.discard(task)
            if not writer.is_closing():
                writer.close()

    async def _command(self, listener: _Listener, line: str, headers: dict[str, str], body: str) -> bool:
        """Answer one command frame; False ends the connection."""
        word = line.split(" ", 1)[0].lower()
        if word in self.unanswered_commands:
            # read, then lost inside the switch: no reply, no call (an originate was still received)
            parts = line.split(" ", 2)
            if word in ("api", "bgapi") and len(parts) == 3 and parts[1] == "originate":
                self._record_originate(parts[2].strip())
            return True
        if word == "exit":
            listener.send(command_reply("+OK bye"))
            listener.send(DISCONNECT_NOTICE)
            return False
        if not listener.authed:
            if word == "auth":
                if line[5:].strip() == self.password:
                    listener.authed = True
                    listener.send(command_reply("+OK accepted"))
                    return True
                listener.send(command_reply("-ERR invalid"))
                listener.send(DISCONNECT_NOTICE)
                return False
            listener.send(command_reply("-ERR command not found"))
            return True
        if word == "event":
            listener.send(command_reply(_subscribe(listener, line)))
        elif word == "filter":
            listener.send(command_reply(_filter(listener, line)))
        elif word == "nixevent":
            listener.send(command_reply(_nixevent(listener, line)))
        elif word == "noevents":
            listener.events.clear()
            listener.subclasses.clear()
            listener.all_events = False
            listener.send(command_reply("+OK no longer listening for events"))
        elif word == "api" and line.startswith("api "):
            command, _, arg = line[4:].strip().partition(" ")
            reply = await self._api(command, arg.strip())
            listener.send(api_response(reply))
        elif word == "bgapi" and line.startswith("bgapi "):
            self._bgapi(listener, line[6:].strip(), headers.get("job-uuid", ""))
        elif word == "sendmsg":
            listener.send(command_reply(self._sendmsg(line[7:].strip(), headers, body)))
        elif word in ("linger", "nolinger"):
            listener.send(command_reply("+OK will linger" if word == "linger" else "+OK will not linger"))
        else:
            listener.send(command_reply("-ERR command not found"))
        return True

    def _bgapi(self, listener: _Listener, text: str, job: str) -> None:
        switch = self.switch
        if not job:
            job = switch._uuid()
        listener.send(command_reply(f"+OK Job-UUID: {job}", [("Job-UUID", job)]))
        command, _, arg = text.partition(" ")
        arg = arg.strip()
        if command == "originate":
            self._record_originate(arg)
            try:
                switch.originate(job, arg, background=True)
            except OriginateRefused as refused:
                switch.background_job(job, arg, refused.reply)
            return

        async def run() -> None:
            switch.background_job(job, arg, await self._api(command, arg))

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _record_originate(self, arg: str) -> None:
        vars_block = arg[1 : arg.index("}")] if arg.startswith("{") and "}" in arg else ""
        for part in vars_block.split(","):
            key, _, value = part.partition("=")
            if key.strip() == "origination_uuid":
                self.originates_received.append(value)
                return
        self.originates_received.append("")

    # -- API commands (mod_commands, mod_avmd) -------------------------------------------

    async def _api(self, command: str, arg: str) -> str:
        switch = self.switch
        if command == "originate":
            self._record_originate(arg)
            try:
                call = switch.originate("", arg, background=False)
            except OriginateRefused as refused:
                return refused.reply
            return await call.result
        if command == "uuid_kill":
            uuid, _, cause = arg.partition(" ")
            return _queue(switch.find(uuid), ("kill", cause.strip() or "NORMAL_CLEARING"))
        if command == "uuid_transfer":
            uuid, _, destination = arg.partition(" ")
            ch = switch.find(uuid)
            if ch is not None and not destination.strip():
                return "-USAGE: [-bleg|-both] <uuid> <dest-exten> [<dialplan>] [<context>]\n"
            if ch is not None and not ch.answered:
                ch.pending_transfer = destination.strip()
                return "+OK\n"
            return _queue(ch, ("transfer", destination.strip()))
        if command == "uuid_setvar":
            words = arg.split(None, 2)
            ch = switch.find(words[0]) if words else None
            if ch is None:
                return "-ERR No such channel!\n"
            if len(words) < 2:
                return "-USAGE: <uuid> <var> [value]\n"
            switch.set_var(ch, words[1], words[2] if len(words) > 2 else "")
            return "+OK\n"
        if command == "conference":
            words = arg.split()
            if len(words) == 3 and words[1] == "kick":
                return switch.kick(words[0], words[2])
            return "-ERR this simulator knows 'conference <name> kick <member-id>' only\n"
        if command == "uuid_record":
            uuid = arg.split()[0] if arg.split() else ""
            return self.recordings.command(switch.find(uuid) is not None, arg)
        if command == "uuid_exists":
            return "true" if switch.find(arg.strip()) is not None else "false"
        if command == "avmd":
            return self._avmd_api(arg)
        if command == "show":
            return self._show(arg)
        if command == "status":
            return self._status()
        if command == "uptime":
            return f"{int(switch.uptime_s())}\n"
        if command == "global_getvar":
            return self.global_vars.get(arg.strip(), "")
        if command == "file_exists":
            return "true" if arg.strip() in self.files else "false"
        if command == "version":
            return f"FreeSWITCH Version {VERSION} (git 10 2024-06-06 13:55:50Z 64bit)\n"
        if command == "fsctl" and arg.split()[:1] == ["shutdown"]:
            self.request_shutdown(restart="restart" in arg.split())
            return "+OK\n"
        if command == "hupall":
            cause = arg.split()[0] if arg.split() else "MANAGER_REQUEST"
            for ch in list(switch.channels.values()):
                _queue(ch, ("kill", cause))
            return "+OK hangup all channels with cause " + cause + "\n"
        return f"-ERR {command} Command not found!\n"

    def _avmd_api(self, arg: str) -> str:
        parts = arg.split()
        if len(parts) < 2 or parts[1] not in ("start", "stop"):
            return "-ERR, avmd takes [start|stop] as command argument!\n"
        ch = self.switch.find(parts[0])
        if ch is None:
            return f"-ERR, no FreeSWITCH session for uuid [{parts[0]}]!\n"
        if parts[1] == "stop":
            ch.commands.put_nowait(("avmd_api_stop", ""))
            return f"+OK\n [{ch.uuid}] [sofia/{ch.dial.profile}/{ch.dial.target}] stopped\n\n"
        ch.commands.put_nowait(("avmd_api_start", ""))
        return f"+OK\n [{ch.uuid}] [sofia/{ch.dial.profile}/{ch.dial.target}] started\n\n"

    def _sendmsg(self, uuid: str, headers: dict[str, str], body: str) -> str:
        uuid = uuid or headers.get("session-id", "")
        ch = self.switch.find(uuid)
        if ch is None:
            return f"-ERR invalid session id [{uuid}]"
        call_command = headers.get("call-command", "")
        if call_command == "execute":
            app = headers.get("execute-app-name", "")
            app_arg = headers.get("execute-app-arg", "") or body
            ch.commands.put_nowait(("app", f"{app} {app_arg}".strip()))
        elif call_command == "hangup":
            ch.commands.put_nowait(("kill", headers.get("hangup-cause", "NORMAL_CLEARING")))
        return "+OK"

    def _show(self, arg: str) -> str:
        words = arg.split()
        if not words or words[0] not in ("channels", "calls"):
            return "-USAGE: show <channels|calls|...> [as json|xml|delim <x>]\n"
        rows = [self._channel_row(ch) for ch in self.switch.channels.values() if not ch.hung_up]
        if words[-2:] == ["as", "json"]:
            if not rows:
                return json.dumps({"row_count": 0}) + "\n"
            return json.dumps({"row_count": len(rows), "rows": rows}, indent=1) + "\n"
        if not rows:
            return "\n0 total.\n"  # as recorded: no header line when there is no channel
        columns = list(_CHANNEL_COLUMNS)
        lines = [",".join(columns)]
        lines.extend(",".join(row[c] for c in columns) for row in rows)
        return "\n".join(lines) + f"\n\n{len(rows)} total.\n"

    def _channel_row(self, ch: Channel) -> dict[str, str]:
        created = ch.points["created"] // 1_000_000
        row = dict.fromkeys(_CHANNEL_COLUMNS, "")
        row.update(
            uuid=ch.uuid,
            direction="inbound" if ch.inbound else "outbound",
            created=local_stamp(created),
            created_epoch=str(created),
            name=f"sofia/{ch.dial.profile}/{ch.dial.target}",
            state="CS_EXECUTE" if ch.answered else "CS_CONSUME_MEDIA",
            cid_name="Outbound Call" if ch.answered else url_decode(ch.values["cid_name"]),
            cid_num=ch.number if ch.answered else url_decode(ch.values["cid_number"]),
            ip_addr=ch.dial.host,
            dest=ch.number,
            application=ch.application,
            application_data=ch.values.get("conf_name", "") + "@agent" if ch.conference else "",
            dialplan="XML",
            context="dialer" if ch.answered and ch.family != "park" else "default",
            read_codec="PCMU",
            read_rate="8000",
            read_bit_rate="64000",
            write_codec="PCMU",
            write_rate="8000",
            write_bit_rate="64000",
            hostname="vm",
            callstate="ACTIVE" if ch.answered else "RINGING",
            callee_direction="SEND" if ch.answered else "",
            call_uuid=ch.uuid,
            initial_cid_name=url_decode(ch.values["cid_name"]),
            initial_cid_num=url_decode(ch.values["cid_number"]),
            initial_ip_addr=ch.dial.host,
            initial_dest=ch.number,
            initial_dialplan="XML",
            initial_context="default",
        )
        return row

    def _status(self) -> str:
        switch = self.switch
        up = switch.uptime_s()
        days, rest = divmod(int(up), 86400)
        hours, rest = divmod(rest, 3600)
        minutes, seconds = divmod(rest, 60)
        ms = int((up - int(up)) * 1000)
        live = len(switch.live_channels())
        return (
            f"UP 0 years, {days} days, {hours} hours, {minutes} minutes, {seconds} seconds, "
            f"{ms} milliseconds, 0 microseconds\n"
            f"FreeSWITCH (Version {VERSION} 64bit) is ready\n"
            f"{switch.sessions_since_start} session(s) since startup\n"
            f"{live} session(s) - peak {live}, last 5min {live} \n"
            "0 session(s) per Sec out of max 50, peak 0, last 5min 0 \n"
            "200 session(s) max\n"
            "min idle cpu 0.00/99.00\n"
            "Current Stack Size/Max 240K/8192K\n"
        )


_CHANNEL_COLUMNS = [
    "uuid",
    "direction",
    "created",
    "created_epoch",
    "name",
    "state",
    "cid_name",
    "cid_num",
    "ip_addr",
    "dest",
    "application",
    "application_data",
    "dialplan",
    "context",
    "read_codec",
    "read_rate",
    "read_bit_rate",
    "write_codec",
    "write_rate",
    "write_bit_rate",
    "secure",
    "hostname",
    "presence_id",
    "presence_data",
    "accountcode",
    "callstate",
    "callee_name",
    "callee_num",
    "callee_direction",
    "call_uuid",
    "sent_callee_name",
    "sent_callee_num",
    "initial_cid_name",
    "initial_cid_num",
    "initial_ip_addr",
    "initial_dest",
    "initial_dialplan",
    "initial_context",
]


def url_decode(value: str) -> str:
    return unquote(value)


def _queue(ch: Channel | None, command: tuple[str, str]) -> str:
    if ch is None:
        return "-ERR No such channel!\n"
    ch.commands.put_nowait(command)
    return "+OK\n"


def _subscribe(listener: _Listener, line: str) -> str:
    """``event plain <names...> [CUSTOM <subclass...>]`` as mod_event_socket parses it."""
    words = line.split()[1:]
    if words and words[0].lower() in ("plain", "json", "xml"):
        if words[0].lower() != "plain":
            # This simulator speaks the plain format only, as the dialer does.
            return f"-ERR {words[0].lower()} format not supported by this simulator"
        words = words[1:]
    keys = 0
    custom = False
    for word in words:
        if custom:
            listener.subclasses.add(word)
        elif word.upper() in _EVENT_NAMES:
            keys += 1
            name = word.upper()
            if name == "ALL":
                listener.all_events = True
            listener.events.add(name)
            if name == "CUSTOM":
                custom = True
    if not keys:
        return "-ERR no keywords supplied"
    return "+OK event listener enabled plain"


def _filter(listener: _Listener, line: str) -> str:
    """``filter <header> <value>`` / ``filter delete <header> [<value>]``."""
    words = line.split(" ", 3)[1:]
    if words and words[0] == "delete" and len(words) >= 2:
        name = words[1]
        value = words[2] if len(words) > 2 else None
        kept = [(n, v) for n, v in listener.filters if not (n == name and (value is None or v == value))]
        if len(kept) == len(listener.filters):
            return "-ERR filter not found."
        listener.filters = kept
        return f"+OK filter deleted. [{name}]=[{value if value is not None else ''}]"
    if len(words) < 2:
        return "-ERR invalid syntax"
    name, value = words[0], " ".join(words[1:])
    listener.filters.append((name, value))
    return f"+OK filter added. [{name}]=[{value}]"


def _nixevent(listener: _Listener, line: str) -> str:
    keys = 0
    custom = False
    for word in line.split()[1:]:
        if custom:
            listener.subclasses.discard(word)
        elif word.upper() in _EVENT_NAMES:
            keys += 1
            if word.upper() == "CUSTOM":
                custom = True
            elif word.upper() == "ALL":
                listener.all_events = False
                listener.events.clear()
            else:
                listener.events.discard(word.upper())
    return "+OK events nixed" if keys else "-ERR no keywords supplied"


async def _read_command(reader: asyncio.StreamReader) -> tuple[str, dict[str, str], str] | None:
    """One command frame: lines up to a blank line, then ``Content-Length`` bytes of body."""
    lines: list[str] = []
    size = 0
    while True:
        raw = await reader.readline()
        if not raw:
            return None
        size += len(raw)
        if size > MAX_COMMAND_BYTES:
            raise ConnectionError("command frame too large")
        text = raw.decode(errors="replace").rstrip("\r\n")
        if not text:
            if lines:
                break
            continue  # FreeSWITCH skips blank lines between commands
        lines.append(text)
    headers: dict[str, str] = {}
    for extra in lines[1:]:
        name, sep, value = extra.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    body = ""
    length = headers.get("content-length", "")
    if length.isdigit() and 0 < int(length) <= MAX_COMMAND_BYTES:
        body = (await reader.readexactly(int(length))).decode(errors="replace")
    return lines[0], headers, body


__all__ = ["FreeSwitchSimulator", "LiveChannel"]
