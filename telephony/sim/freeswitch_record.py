"""``uuid_record`` (mod_commands' face of ``record_session``) in the FreeSWITCH simulator.

No capture of it exists; the replies follow mod_commands of 1.10:
``uuid_record <uuid> start|stop|mask|unmask <path>`` answers ``+OK Success``,
``-ERR No such channel!`` for a channel that is gone, and ``-USAGE: ...`` when
a word is missing.  A second ``start`` on the same file, or ``stop``/``mask``
of a file not being recorded, answers ``-ERR Cannot execute command``.  A
relative path is under the switch's ``recordings_dir``.  A recording ends with
``stop`` or with the channel's hang-up; its file is written then: RIFF WAVE
PCM 16 bit mono 8000 Hz, silence, as long as the recording ran in PBX seconds
(masked stretches are silence too, as FreeSWITCH writes them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from telephony.sim.asterisk_mixmonitor import write_silence

USAGE = "-USAGE: <uuid> [start|stop|mask|unmask] <path> [<limit>]\n"
DEFAULT_RECORDINGS_DIR = "/var/lib/freeswitch/recordings"


@dataclass
class SessionRecording:
    uuid: str
    path: str
    started: float  # PBX seconds (Switch.uptime_s)
    masked: bool = False
    seconds: float = 0.0
    stopped_by: str = ""  # "stop" or "hangup"


@dataclass
class SessionRecordings:
    """Running recordings by (uuid, path); finished ones in order; files under ``directory``."""

    clock: Callable[[], float]  # PBX seconds
    recordings_dir: str = DEFAULT_RECORDINGS_DIR
    directory: Path | None = None  # where the WAV files are written (None: not written)
    running: dict[tuple[str, str], SessionRecording] = field(default_factory=dict)
    finished: list[SessionRecording] = field(default_factory=list)

    def path_of(self, name: str) -> str:
        return name if name.startswith("/") else f"{self.recordings_dir}/{name}"

    def command(self, exists: bool, arg: str) -> str:
        """The reply to ``uuid_record <arg>``; ``exists``: the channel is up."""
        words = arg.split()
        if len(words) < 3:
            return USAGE
        uuid, verb, name = words[0], words[1].lower(), words[2]
        if not exists:
            return "-ERR No such channel!\n"
        if verb not in ("start", "stop", "mask", "unmask"):
            return USAGE
        key = (uuid, self.path_of(name))
        running = self.running.get(key)
        if verb == "start":
            if running is not None:
                return "-ERR Cannot execute command\n"
            self.running[key] = SessionRecording(uuid, key[1], self.clock())
            return "+OK Success\n"
        if running is None:
            return "-ERR Cannot execute command\n"
        if verb == "stop":
            self._finish(key, "stop")
        else:
            running.masked = verb == "mask"
        return "+OK Success\n"

    def channel_gone(self, uuid: str) -> None:
        for key in [k for k in self.running if k[0] == uuid]:
            self._finish(key, "hangup")

    def _finish(self, key: tuple[str, str], how: str) -> None:
        recording = self.running.pop(key)
        recording.seconds = round(max(0.0, self.clock() - recording.started), 2)
        recording.stopped_by = how
        self.finished.append(recording)
        if self.directory is not None:
            write_silence(self.directory / Path(recording.path).name, recording.seconds)
