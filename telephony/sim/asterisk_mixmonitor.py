"""Call recording in the Asterisk simulator, as ``sip_call_recording`` recorded it on Asterisk 22.10.

* ``MixMonitor(<file>)`` in the dialplan (the lab's ``[dialer-connect-recorded]``,
  or a FastAGI ``EXEC MixMonitor``) starts a recording of the channel:
  ``VarSet MIXMONITOR_FILENAME`` (``<spool>/monitor/<file>`` for a relative
  name), then ``Event: MixMonitorStart``; the application returns at once.
* AMI ``MixMonitorMute`` (``Direction`` read/write/both, ``State`` 1/0) answers
  ``Success`` (no Message), then ``Event: MixMonitorMute`` with ``Direction``
  and ``State``; ``StopMixMonitor`` answers ``Success``, then
  ``Event: MixMonitorStop``, and 13 ms later a bridged channel's bridge writes
  every member's ``BRIDGEPEER`` again.  With no recording running they answer
  ``Cannot set mute flag`` / ``Could not stop monitoring channel``.  Both need
  only the ``call`` write class.
* AMI ``MixMonitor`` needs the ``system`` write class: ``Permission denied``
  for the project's ``dialer`` user.
* An Originate into an application that can reach a shell (MixMonitor, AGI,
  Exec, System ...) or whose data uses ``SHELL``/``EVAL`` is refused at once
  without the ``system`` write class: ``Originate Access Forbidden: app or data
  blacklisted``, no OriginateResponse, no channel.
* A channel hung up with its recording running gets no ``MixMonitorStop``:
  the file is closed with the hang-up.

The recording itself is RIFF WAVE PCM 16 bit mono 8000 Hz: 16 000 bytes a
second plus a 44-byte header (muted stretches are silence, not cut).  Each
finished recording is listed in ``Recordings.finished``; with
``Recordings.directory`` set, the WAV file (silence) is written there too.
"""

from __future__ import annotations

import asyncio
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from telephony.asterisk.protocol import AmiMessage
from telephony.sim import ami_events as ev
from telephony.sim.ami_events import SimChannel

if TYPE_CHECKING:
    from telephony.sim.asterisk_pbx import Leg, PbxEngine

FORBIDDEN_ORIGINATE = "Originate Access Forbidden: app or data blacklisted"
# manager.c's originate_app_permissions: an application whose name contains one of
# these needs the system write class (as does data with SHELL or EVAL).
BLACKLISTED_APP_PARTS = ("system", "exec", "agi", "mixmonitor", "externalivr", "originate")
BLACKLISTED_DATA_PARTS = ("SHELL", "EVAL")

SAMPLE_RATE = 8000
BYTES_PER_SECOND = SAMPLE_RATE * 2  # 16-bit mono
WAV_HEADER_BYTES = 44
PEER_REFRESH_S = 0.013  # after StopMixMonitor, the bridge re-writes BRIDGEPEER this much later
DEFAULT_SPOOL_DIR = "/var/spool/asterisk"

Respond = Callable[..., None]  # respond(response, *(key, value) pairs)


def originate_forbidden(app: str, data: str) -> bool:
    """Whether Asterisk 22 refuses this Originate application to a user without ``system``."""
    name = app.lower()
    return any(part in name for part in BLACKLISTED_APP_PARTS) or any(
        part in data for part in BLACKLISTED_DATA_PARTS
    )


def wav_size(seconds: float) -> int:
    """Bytes of a recording of ``seconds`` (whole 16-bit samples plus the header)."""
    return WAV_HEADER_BYTES + 2 * round(max(0.0, seconds) * SAMPLE_RATE)


@dataclass
class Recording:
    """One MixMonitor on one channel."""

    channel: str
    uniqueid: str
    path: str  # MIXMONITOR_FILENAME
    started: float  # event-loop time
    muted_read: bool = False
    muted_write: bool = False
    seconds: float = 0.0  # PBX seconds recorded, once finished
    stopped_by: str = ""  # "ami" (StopMixMonitor) or "hangup"

    @property
    def size(self) -> int:
        return wav_size(self.seconds)


@dataclass
class Recordings:
    """The recordings of one simulated Asterisk: running ones by channel name, finished ones in order."""

    spool_dir: str = DEFAULT_SPOOL_DIR
    directory: Path | None = None  # where to write the WAV files (None: not written)
    running: dict[str, Recording] = field(default_factory=dict)
    finished: list[Recording] = field(default_factory=list)

    def path_of(self, filename: str) -> str:
        return filename if filename.startswith("/") else f"{self.spool_dir}/monitor/{filename}"

    def finish(self, channel: str, how: str, time_scale: float) -> Recording | None:
        recording = self.running.pop(channel, None)
        if recording is None:
            return None
        elapsed = asyncio.get_running_loop().time() - recording.started
        recording.seconds = round(max(0.0, elapsed) * time_scale, 2)
        recording.stopped_by = how
        self.finished.append(recording)
        if self.directory is not None:
            _write_silence(self.directory / Path(recording.path).name, recording.seconds)
        return recording


def _write_silence(path: Path, seconds: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(b"\x00\x00" * round(seconds * SAMPLE_RATE))


write_silence = _write_silence  # the FreeSWITCH simulator's uuid_record writes the same files


# -- the application ------------------------------------------------------------------


def start(engine: PbxEngine, leg: Leg, data: str) -> None:
    """``MixMonitor(<file>[,options[,command]])``: start recording ``leg``'s channel."""
    ch = leg.chan
    filename = data.split(",")[0].strip()
    recordings = engine.recordings
    if not filename or ch.name in recordings.running:
        return  # Asterisk logs a warning; no events
    path = recordings.path_of(filename)
    ch.variables["MIXMONITOR_FILENAME"] = path
    engine.emit(ev.varset(ch, "MIXMONITOR_FILENAME", path))
    recordings.running[ch.name] = Recording(ch.name, ch.uniqueid, path, asyncio.get_running_loop().time())
    engine.emit(ev.channel_event("MixMonitorStart", ch))


def channel_gone(engine: PbxEngine, ch: SimChannel) -> None:
    """The channel hung up: its recording ends with it (no MixMonitorStop)."""
    engine.recordings.finish(ch.name, "hangup", engine.time_scale)


# -- manager actions --------------------------------------------------------------------

ACTIONS = {"mixmonitor", "mixmonitormute", "stopmixmonitor"}


def manager_action(
    engine: PbxEngine, name: str, action: AmiMessage, respond: Respond, system_write: bool
) -> None:
    """Answer the AMI action ``name`` (one of ACTIONS) as Asterisk 22.10 does."""
    if name == "mixmonitor":
        _mixmonitor(engine, action, respond, system_write)
    elif name == "mixmonitormute":
        _mute(engine, action, respond)
    else:
        _stop(engine, action, respond)


def _mixmonitor(engine: PbxEngine, action: AmiMessage, respond: Respond, system_write: bool) -> None:
    if not system_write:
        respond("Error", ("Message", "Permission denied"))
        return
    channel = action.get("Channel", "")
    if not channel:
        respond("Error", ("Message", "No channel specified"))
        return
    leg = engine.find(channel)
    if leg is None:
        respond("Error", ("Message", "No such channel"))
        return
    filename = action.get("File", "") or f"{leg.chan.uniqueid}.wav"
    respond("Success")
    start(engine, leg, filename)


def _mute(engine: PbxEngine, action: AmiMessage, respond: Respond) -> None:
    direction = action.get("Direction", "")
    if not direction:
        respond("Error", ("Message", "No direction specified. Must be read, write or both"))
        return
    if direction.lower() not in ("read", "write", "both"):
        respond("Error", ("Message", "Invalid direction specified. Must be read, write or both"))
        return
    channel = action.get("Channel", "")
    if not channel:
        respond("Error", ("Message", "No channel specified"))
        return
    state = action.get("State", "")
    if not state:
        respond("Error", ("Message", "No state specified"))
        return
    leg = engine.find(channel)
    if leg is None:
        respond("Error", ("Message", "No such channel"))
        return
    recording = engine.recordings.running.get(leg.chan.name)
    if recording is None:
        respond("Error", ("Message", "Cannot set mute flag"))
        return
    on = state.lower() in ("1", "yes", "true", "y", "t", "on")
    if direction.lower() in ("read", "both"):
        recording.muted_read = on
    if direction.lower() in ("write", "both"):
        recording.muted_write = on
    respond("Success")
    engine.emit(
        ev.event(
            "MixMonitorMute",
            ev.PRIV_CALL,
            leg.chan.snapshot(),
            [("Direction", direction), ("State", "1" if on else "0")],
        )
    )


def _stop(engine: PbxEngine, action: AmiMessage, respond: Respond) -> None:
    channel = action.get("Channel", "")
    if not channel:
        respond("Error", ("Message", "No channel specified"))
        return
    leg = engine.find(channel)
    if leg is None:
        respond("Error", ("Message", "No such channel"))
        return
    if engine.recordings.finish(leg.chan.name, "ami", engine.time_scale) is None:
        respond("Error", ("Message", "Could not stop monitoring channel"))
        return
    respond("Success")
    engine.emit(ev.channel_event("MixMonitorStop", leg.chan))
    if leg.chan.bridge is not None:
        engine.spawn(_refresh_peers(engine, leg), leg.call)


async def _refresh_peers(engine: PbxEngine, leg: Leg) -> None:
    """The audiohook gone, the bridge re-evaluates its members: BRIDGEPEER again, the others first."""
    await asyncio.sleep(PEER_REFRESH_S / engine.time_scale)
    bridge = leg.chan.bridge
    if bridge is None or not leg.chan.alive:
        return
    for member in [m for m in bridge.members if m is not leg.chan] + [leg.chan]:
        engine.emit(ev.varset(member, "BRIDGEPEER", bridge.peers_of(member)))
