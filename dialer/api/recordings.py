"""Recordings and live monitoring (listen, whisper, barge).

Recordings: an agent sees only their own calls, a supervisor with a team only
that team's agents (``dialer.service.visibility``), an admin every call.  The
audio is served with HTTP Range; the list gives short-lived signed links
(``signed_audio_url``) so an ``<audio>`` element plays without the bearer header.
A missing or unreadable file is said in ``problem`` and answered 409 on the
audio, never served as a broken file.

Monitoring calls the supervisor's own phone into the agent's call; a refusal by
the PBX (or by its user's rights) comes back as 409 with the reason.
"""

import asyncio
import re
from datetime import datetime
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from dialer.api.auth import Admin, Anyone, Supervisor
from dialer.recordings.links import check_link, signed_audio_url
from dialer.recordings.service import FileProblem, RecordingInfo, Recordings, wav_seconds
from dialer.recordings.tables import RecordingDeletion
from dialer.service import Invalid, Refused, Unauthorized
from dialer.service.accounts import Accounts, Principal
from dialer.service.desk import Desk
from dialer.service.monitoring import Monitor, Monitoring
from dialer.service.visibility import set_team
from dialer.settings import Settings
from dialer.store.repositories import Role

CHUNK_MAX = 4 * 1024 * 1024  # a Range answer holds at most this much
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class RecordingOut(BaseModel):
    attempt_id: str
    campaign_id: int
    agent_id: str | None
    started_at: datetime | None
    seconds: float | None
    problem: str | None = Field(description="missing / unreadable: ...; null when the file is there")
    audio_url: str | None = Field(description="plays for 10 minutes without a token; null when no file")
    download_url: str | None


class DeletionOut(BaseModel):
    attempt_id: str
    campaign_id: int
    agent_id: str | None
    file: str
    seconds: float | None
    reason: str
    retention_days: int
    deleted_at: datetime


class MonitorIn(BaseModel):
    agent_id: str = Field(min_length=1, max_length=64)
    mode: str = Field(description="listen, whisper (the agent hears you) or barge (both hear you)")
    phone: str = Field(min_length=1, max_length=200, description="your own phone, e.g. PJSIP/2001")


class MonitorOut(BaseModel):
    leg_id: str
    agent_id: str
    mode: str
    supervisor_id: str
    started_at: float


class WatchedOut(BaseModel):
    listening: bool
    record_on_demand: str | None = Field(
        default=None, description="your call in progress, when its campaign records on demand"
    )


class RecordIn(BaseModel):
    on: bool = True


class TeamIn(BaseModel):
    team: str | None = Field(default=None, max_length=64, description="null: no team")


def _out(info: RecordingInfo, who: Principal) -> RecordingOut:
    playable = info.problem is None
    return RecordingOut(
        attempt_id=info.attempt_id,
        campaign_id=info.campaign_id,
        agent_id=info.agent_id,
        started_at=info.started_at,
        seconds=info.seconds,
        problem=info.problem,
        audio_url=signed_audio_url(info.attempt_id, who) if playable else None,
        download_url=signed_audio_url(info.attempt_id, who, download=True) if playable else None,
    )


def _monitor_out(m: Monitor) -> MonitorOut:
    return MonitorOut(
        leg_id=m.leg_id,
        agent_id=m.agent_id,
        mode=m.mode.value,
        supervisor_id=m.supervisor_id,
        started_at=m.started_at,
    )


def _byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) of a ``Range: bytes=`` header; None: the whole file.  Invalid: unsatisfiable."""
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if match is None or size == 0:
        raise Invalid(f"Range {header!r} is not one byte range (bytes=first-last) of this {size}-byte file")
    first_text, last_text = match.groups()
    if not first_text:  # the last N bytes
        if not last_text:
            raise Invalid(f"Range {header!r} names no bytes")
        first, last = max(0, size - int(last_text)), size - 1
    else:
        first = int(first_text)
        last = min(int(last_text), size - 1) if last_text else size - 1
    if first >= size or first > last:
        raise Invalid(f"Range {header!r} is outside this {size}-byte file")
    return first, min(last, first + CHUNK_MAX - 1)


def _read(path: Path, attempt_id: str, range_header: str | None) -> tuple[int, bytes, int, bool]:
    """(first byte, the bytes, the file's size, whether a range was asked) of the call's WAV file."""
    try:
        wav_seconds(path)
        size = path.stat().st_size
    except FileProblem as exc:
        raise Refused(f"the recording of call {attempt_id} cannot be played: the file is {exc}") from None
    except OSError as exc:
        raise Refused(f"the recording of call {attempt_id} cannot be played: {exc.strerror}") from None
    span = _byte_range(range_header, size)
    first, last = span if span is not None else (0, size - 1)
    with path.open("rb") as f:
        f.seek(first)
        body = f.read(last - first + 1)
    return first, body, size, span is not None


def router(desk: Desk) -> APIRouter:
    api = APIRouter(prefix="/api", tags=["recordings and monitoring"])
    bound: dict[str, object] = {}
    monitoring = Monitoring(desk.db, lambda: bound.get("pbx"))

    def recordings_of(request: Request) -> Recordings:
        found = getattr(request.app.state, "recordings", None)
        if isinstance(found, Recordings):
            return found
        return Recordings(desk.db, Settings().recordings_dir)

    def bind(request: Request) -> Monitoring:
        bound["pbx"] = getattr(request.app.state, "pbx", None)
        return monitoring

    @api.get("/recordings", response_model=list[RecordingOut])
    async def list_recordings(
        request: Request,
        who: Anyone,
        campaign_id: Annotated[int | None, Query(ge=1)] = None,
        agent_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[RecordingOut]:
        """The recordings you may hear, newest first (agents: their own calls only)."""
        found = await recordings_of(request).find(
            who, campaign_id=campaign_id, agent_id=agent_id, since=since, until=until, limit=limit
        )
        return [_out(info, who) for info in found]

    @api.get("/recordings/deletions", response_model=list[DeletionOut])
    async def deletions(
        request: Request, who: Supervisor, limit: Annotated[int, Query(ge=1, le=1000)] = 100
    ) -> list[DeletionOut]:
        """The recordings the retention job deleted, newest first."""
        rows: list[RecordingDeletion] = await recordings_of(request).deletions(limit)
        return [
            DeletionOut(
                attempt_id=d.attempt_id,
                campaign_id=d.campaign_id,
                agent_id=d.agent_id,
                file=d.file,
                seconds=d.seconds,
                reason=d.reason,
                retention_days=d.retention_days,
                deleted_at=d.deleted_at,
            )
            for d in rows
        ]

    @api.get("/recordings/{attempt_id}", response_model=RecordingOut)
    async def recording(request: Request, who: Anyone, attempt_id: str) -> RecordingOut:
        return _out(await recordings_of(request).get(who, attempt_id), who)

    async def holder(
        request: Request, attempt_id: str, u: str | None, role_text: str | None, e: int | None, s: str | None
    ) -> Principal:
        """The signed link's user, or the bearer token's."""
        if s is not None:
            if u is None or role_text is None or e is None:
                raise Unauthorized("this recording link is cut short: open the recording again from its page")
            link = check_link(attempt_id, u, role_text, e, s)
            try:
                role = Role(link.role)
            except ValueError:
                raise Unauthorized("this recording link is not valid") from None
            accounts: Accounts = request.app.state.accounts
            user = await accounts.get_user(link.user_id)
            if not user.active or user.role is not role:
                raise Unauthorized("the user this link was made for can no longer hear it")
            return Principal(link.user_id, user.name, role, "", datetime.fromtimestamp(e))
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("bearer "):
            raise Unauthorized(
                "a token is needed: POST /api/login, then send `Authorization: Bearer <token>`; "
                "or open the signed link the recordings list gives"
            )
        accounts = request.app.state.accounts
        return await accounts.authenticate(header.split(" ", 1)[1].strip())

    async def serve(request: Request, attempt_id: str, who: Principal, download: bool) -> Response:
        recordings = recordings_of(request)
        info = await recordings.get(who, attempt_id)
        path = recordings.path_of(info.file)
        first, body, size, span = await asyncio.to_thread(
            _read, path, attempt_id, request.headers.get("range")
        )
        headers = {"Accept-Ranges": "bytes", "Cache-Control": "private, no-store"}
        if download:
            headers["Content-Disposition"] = f'attachment; filename="{Path(info.file).name}"'
        if span is not None:
            headers["Content-Range"] = f"bytes {first}-{first + len(body) - 1}/{size}"
        return Response(body, status_code=206 if span else 200, media_type="audio/wav", headers=headers)

    @api.get("/recordings/{attempt_id}/audio", response_class=Response)
    async def audio(
        request: Request,
        attempt_id: str,
        u: str | None = None,
        r: str | None = None,
        e: int | None = None,
        s: str | None = None,
    ) -> Response:
        """The call's audio (audio/wav, HTTP Range), with a bearer token or a signed link's u, r, e, s."""
        who = await holder(request, attempt_id, u, r, e, s)
        return await serve(request, attempt_id, who, download=False)

    @api.get("/recordings/{attempt_id}/download", response_class=Response)
    async def download(
        request: Request,
        attempt_id: str,
        u: str | None = None,
        r: str | None = None,
        e: int | None = None,
        s: str | None = None,
    ) -> Response:
        """The call's WAV file as an attachment."""
        who = await holder(request, attempt_id, u, r, e, s)
        return await serve(request, attempt_id, who, download=True)

    @api.post("/calls/{attempt_id}/recording", status_code=204)
    async def record(request: Request, who: Anyone, attempt_id: str, body: RecordIn) -> None:
        """Start (on: true) or pause a recording on demand of a call in progress (the agent's own)."""
        await bind(request).record_on_demand(who, attempt_id, body.on)

    @api.post("/monitoring", response_model=MonitorOut, status_code=201)
    async def start_monitoring(request: Request, who: Supervisor, body: MonitorIn) -> MonitorOut:
        """Have the PBX call your phone into the agent's call: listen, whisper or barge."""
        return _monitor_out(await bind(request).start(who, body.agent_id, body.mode, body.phone))

    @api.get("/monitoring", response_model=list[MonitorOut])
    async def monitors(request: Request, who: Supervisor) -> list[MonitorOut]:
        return [_monitor_out(m) for m in await bind(request).listed(who)]

    @api.delete("/monitoring/{leg_id}", status_code=204)
    async def stop_monitoring(request: Request, who: Supervisor, leg_id: str) -> None:
        await bind(request).stop(who, leg_id)

    @api.get("/monitoring/me", response_model=WatchedOut)
    async def watched(request: Request, who: Anyone) -> WatchedOut:
        """For the agent screen: whether a supervisor listens (only if the campaign shows it)."""
        watching = bind(request)
        return WatchedOut(
            listening=await watching.watched(who.user_id),
            record_on_demand=await watching.call_on_demand(who.user_id),
        )

    @api.put("/users/{user_id}/team", status_code=204)
    async def team(who: Admin, user_id: str, body: TeamIn) -> None:
        """Put a user in a team (a supervisor with a team sees that team's agents only)."""
        accounts = Accounts(desk.db)
        await accounts.get_user(user_id)
        await set_team(desk.db, user_id, body.team.strip() if body.team else None)

    return api
