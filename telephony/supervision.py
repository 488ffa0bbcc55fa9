"""What a supervisor asks of a PBX beyond dialing: recordings on demand and live monitoring.

A second protocol next to ``telephony.base.Pbx`` so that the PBXs that cannot
do it (or test doubles) need not pretend: the runtime checks
``isinstance(pbx, Supervision)`` and says so when it is not.

Recording itself starts with the connect (``ConnectToAgent.record``): on
Asterisk the channel runs ``MixMonitor`` before ConfBridge (the ``dialer`` AMI
user may not start one, ``sip_call_recording``), on FreeSWITCH ``uuid_record``
(``record_session``).  A recording on demand starts muted (silence in the
file) and ``set_recording_muted`` unmutes it: ``MixMonitorMute`` needs only the
``call`` write class, FreeSWITCH's ``uuid_record mask``/``unmask``.

Monitoring calls the supervisor's own phone into the agent's call: Asterisk
Originate of ``ChanSpy`` (allowed with ``originate`` rights,
``sip_supervisor_listen_whisper_barge``), FreeSWITCH ``eavesdrop``.
"""

from __future__ import annotations

import enum
from typing import Protocol, runtime_checkable

from telephony.base import PbxError


class MonitorMode(enum.StrEnum):
    LISTEN = "listen"  # the supervisor hears both sides, nobody hears the supervisor
    WHISPER = "whisper"  # the agent hears the supervisor, the customer does not
    BARGE = "barge"  # both hear the supervisor


class MonitorRefused(PbxError):
    """The PBX (or its user's rights) does not allow this; the message says which and what to do."""


@runtime_checkable
class Supervision(Protocol):
    async def set_recording_muted(self, attempt_id: str, muted: bool) -> None:
        """Mute (silence) or unmute the running recording of ``attempt_id``; PbxError if none runs."""
        ...

    async def monitor(self, agent_id: str, mode: MonitorMode, endpoint: str) -> str:
        """Call ``endpoint`` (the supervisor's phone) into agent ``agent_id``'s call; returns the leg id.

        Raises ``MonitorRefused`` when the PBX or the user's rights refuse it.
        """
        ...

    async def end_monitor(self, leg_id: str) -> None:
        """Hang up the supervisor's leg ``leg_id``."""
        ...
