"""The running node's side of recordings: the attempt row names its file, the hourly retention job."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from dialer.recordings.service import Recordings
from dialer.runtime.engine import Engine

log = logging.getLogger(__name__)

PURGE_EVERY_S = 3600.0


def recording_file(attempt_id: str) -> str:
    """The file both PBXs record a call to (MixMonitor / uuid_record ``<attempt>.wav``)."""
    return f"{attempt_id}.wav"


def note_recorded_calls(engine: Engine, recordings: Recordings) -> None:
    """When a call of a recording campaign is connected, its attempt row gets the file name.

    The write is one of the call's own writes: the engine awaits it before the call's result.
    """

    def connected(attempt_id: str, agent_id: str) -> None:
        active = engine.calls.get(attempt_id)
        if active is None or active.plan.recording not in ("all", "on_demand"):
            return
        task: asyncio.Future[object] = asyncio.ensure_future(
            recordings.note_file(attempt_id, recording_file(attempt_id))
        )
        active.writes.append(task)
        task.add_done_callback(_logged)

    engine.connected_listeners.append(connected)


def _logged(task: asyncio.Future[object]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("the recording's file name was not written: %s", task.exception())


async def purge_hourly(recordings: Recordings, stop: asyncio.Event, every_s: float = PURGE_EVERY_S) -> None:
    """Run the retention job now and every ``every_s`` until ``stop``; a failed run is logged and retried."""
    while not stop.is_set():
        try:
            deleted = await recordings.purge()
            if deleted:
                log.info("retention: %d recording(s) deleted", len(deleted))
        except Exception:
            log.exception("the recordings' retention job failed; next try in %.0f s", every_s)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every_s)
