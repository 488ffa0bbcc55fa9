"""The HTTP API: the agent screen's and the supervisor page's only way into the dialer.

    app = create_app(desk, accounts)

Every endpoint but ``GET /api/health`` and ``POST /api/login`` needs a bearer
token; roles nest (an admin may do what a supervisor may, a supervisor what
an agent may on their own desk).  An agent only ever sees their own call:
another agent's attempt is a 404, the same as one that does not exist.
Errors are ``{"detail": "..."}`` saying what to fix; no traceback ever leaves
the process (an unexpected error is logged with an id the answer quotes).
"""

import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from dialer import __version__
from dialer.api.auth import Admin, Anyone, Forbidden, Supervisor
from dialer.api.extensions import ROUTERS
from dialer.api.pages import pages_router
from dialer.api.schemas import (
    AbandonmentOut,
    AgentOut,
    CallbackIn,
    CallInProgressOut,
    CallOut,
    CampaignOut,
    CampaignSummaryOut,
    CustomerOut,
    DeskLoginIn,
    DispositionChoice,
    DispositionIn,
    DispositionOut,
    Health,
    HistoryOut,
    LeadOut,
    LoginIn,
    MeOut,
    PauseIn,
    Problem,
    TokenOut,
    UserIn,
    UserOut,
    UserPatch,
)
from dialer.domain.campaign import CampaignStatus
from dialer.service import Invalid, NotFound, Refused, ServiceError, Unauthorized
from dialer.service.accounts import Accounts
from dialer.service.desk import AgentStatus, Desk, DispositionInput, DispositionOutcome
from dialer.store.repositories import CampaignRecord, HistoryEntry, UserRecord

log = logging.getLogger(__name__)

_STATUS = {Unauthorized: 401, NotFound: 404, Refused: 409, Invalid: 422}
_ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": Problem} for code in (401, 403, 404, 409, 422)}

CampaignId = Annotated[int, Path(ge=1, le=2**31 - 1)]
AttemptId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]
AgentId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._@-]+$")]


def _agent_out(a: AgentStatus) -> AgentOut:
    return AgentOut(
        agent_id=a.agent_id,
        state=a.state.value,
        seconds_in_state=round(a.seconds_in_state, 1),
        pause_reason=a.pause_reason,
        pause_after_call=a.pause_after_call,
        campaigns=list(a.campaigns),
        attempt_id=a.attempt_id,
    )


def _history_out(h: HistoryEntry) -> HistoryOut:
    return HistoryOut(
        at=h.at,
        campaign=h.campaign,
        agent_id=h.agent_id,
        code=h.code,
        result=h.result,
        objections=list(h.objections),
        next_actions=list(h.next_actions),
        comments=h.comments,
        callback_at=h.callback_at,
        appointment_at=h.appointment_at,
    )


def _campaign_out(c: CampaignRecord) -> CampaignOut:
    return CampaignOut(
        id=c.id, name=c.name, status=c.status.value, settings=c.settings.to_dict(), updated_at=c.updated_at
    )


def _user_out(u: UserRecord) -> UserOut:
    return UserOut(id=u.id, name=u.name, role=u.role, active=u.active, created_at=u.created_at)


def _disposition_out(d: DispositionOutcome) -> DispositionOut:
    return DispositionOut(
        attempt_id=d.attempt_id,
        code=d.code,
        lead_status=d.lead_status,
        callback_id=d.callback_id,
        appointment_id=d.appointment_id,
        gate_update_queued=d.gate_update_queued,
        agent_state=None if d.agent_state is None else d.agent_state.value,
        sale_id=d.sale_id,
    )


def _check_settings_values(value: Any, where: str = "settings") -> None:
    """Campaign settings arrive as free JSON: refuse control characters before they reach the record."""
    if isinstance(value, str):
        if any(ord(c) < 32 for c in value) or len(value) > 2000:
            raise Invalid(f"{where}: text must be printable and at most 2000 characters")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_settings_values(key, where)
            _check_settings_values(item, f"{where}.{key}")
    elif isinstance(value, list):
        for item in value:
            _check_settings_values(item, where)
    elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**31:
        raise Invalid(f"{where}: {value} is out of range")


def _unavailable(detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=503, headers={"Retry-After": "5"})


def create_app(desk: Desk, accounts: Accounts, *, title: str = "dialer") -> FastAPI:
    """The API over one node's desk and the accounts; the daemon and the tests build it the same way."""
    app = FastAPI(title=title, version=__version__, description=__doc__)
    app.state.accounts = accounts  # read by dialer.api.auth

    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError) -> JSONResponse:
        status = next((code for kind, code in _STATUS.items() if isinstance(exc, kind)), 400)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse({"detail": str(exc)}, status_code=status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for error in exc.errors()[:10]:
            where = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "request"
            problems.append(f"{where}: {error.get('msg', 'invalid')}")
        return JSONResponse({"detail": "; ".join(problems)}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"detail": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(DBAPIError)
    async def database_down(request: Request, exc: DBAPIError) -> JSONResponse:
        log.error("API %s %s: the database failed: %s", request.method, request.url.path, exc.orig)
        return _unavailable("the database is not answering; nothing was changed: try again in a moment")

    @app.exception_handler(ConnectionError)
    async def store_unreachable(request: Request, exc: ConnectionError) -> JSONResponse:
        log.error("API %s %s: a store is unreachable: %s", request.method, request.url.path, exc)
        return _unavailable("the database or Redis is not reachable; nothing was changed: try again shortly")

    @app.exception_handler(RedisError)
    async def redis_down(request: Request, exc: RedisError) -> JSONResponse:
        log.error("API %s %s: Redis failed: %s", request.method, request.url.path, exc)
        return _unavailable("Redis (the shared do-not-call and contact stores) is not answering: try again")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        incident = uuid.uuid4().hex[:12]
        log.exception("API %s %s failed (incident %s)", request.method, request.url.path, incident)
        return JSONResponse(
            {"detail": f"internal error (incident {incident}); it is logged: report the incident id"},
            status_code=500,
        )

    @app.exception_handler(Forbidden)
    async def forbidden(request: Request, exc: Forbidden) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=403)

    public = APIRouter(prefix="/api", tags=["sign in"])

    @public.get("/health", response_model=Health)
    async def health() -> Health:
        return Health(
            status="ok", campaigns_dialing=len(desk.dialing_campaigns()), agents_logged_in=len(desk.agents())
        )

    @public.post(
        "/login", response_model=TokenOut, responses={401: {"model": Problem}, 422: {"model": Problem}}
    )
    async def login(body: LoginIn) -> TokenOut:
        issued = await accounts.login(body.user, body.password)
        return TokenOut(
            token=issued.token, expires_at=issued.expires_at, user=issued.user.id, role=issued.user.role
        )

    agent = APIRouter(prefix="/api", tags=["agent"], responses=_ERRORS)

    @agent.get("/me", response_model=MeOut)
    async def me(who: Anyone) -> MeOut:
        return MeOut(
            user=who.user_id,
            name=who.name,
            role=who.role,
            token_expires_at=who.expires_at,
            desk=_agent_out(desk.status(who.user_id)),
        )

    @agent.post("/me/login", response_model=AgentOut)
    async def desk_login(who: Anyone, body: DeskLoginIn | None = None) -> AgentOut:
        body = body or DeskLoginIn(campaigns=None, endpoint=None)
        return _agent_out(await desk.login(who.user_id, body.campaigns, body.endpoint))

    @agent.post("/me/ready", response_model=AgentOut)
    async def ready(who: Anyone) -> AgentOut:
        return _agent_out(desk.ready(who.user_id))

    @agent.post("/me/pause", response_model=AgentOut)
    async def pause(who: Anyone, body: PauseIn) -> AgentOut:
        return _agent_out(desk.pause(who.user_id, body.reason))

    @agent.post("/me/logout", response_model=AgentOut)
    async def desk_logout(who: Anyone) -> AgentOut:
        return _agent_out(desk.logout(who.user_id))

    @agent.post("/me/signout", status_code=204)
    async def signout(who: Anyone) -> None:
        """Revoke the token this request carries."""
        await accounts.logout(who)

    @agent.get("/me/call", response_model=CallOut)
    async def my_call(who: Anyone) -> CallOut:
        call = await desk.current_call(who.user_id)
        if call is None:
            raise NotFound("no call on your desk")
        lead, customer = call.lead, call.customer
        history = [_history_out(h) for h in call.history]
        return CallOut(
            attempt_id=call.attempt_id,
            phase=call.phase,
            campaign_id=call.campaign_id,
            campaign_name=call.campaign_name,
            number=call.number_masked,
            connected_at=call.connected_at,
            lead=None
            if lead is None
            else LeadOut(
                lead_id=lead.id,
                first_name=lead.first_name,
                last_name=lead.last_name,
                email=lead.email,
                external_id=lead.external_id,
                attempts=lead.attempt_count,
                extra=dict(lead.extra),
            ),
            customer=None
            if customer is None
            else CustomerOut(
                first_name=customer.first_name,
                last_name=customer.last_name,
                email=customer.email,
                identity=dict(customer.identity),
            ),
            history=history,
            comments=[h for h in history if h.comments],
            dispositions=[DispositionChoice(code=c, label=label) for c, label in call.dispositions],
            wrap_up_limit_s=call.wrap_up_limit_s,
        )

    @agent.post("/calls/{attempt_id}/disposition", response_model=DispositionOut)
    async def dispose(who: Anyone, attempt_id: AttemptId, body: DispositionIn) -> DispositionOut:
        given = DispositionInput(
            code=body.code.value,
            identity=body.identity,
            objections=body.objections,
            result=body.result,
            callback_at=body.callback_at,
            callback_agent_only=body.callback_agent_only,
            appointment_at=body.appointment_at,
            next_actions=body.next_actions,
            comments=body.comments,
            sale=body.sale.terms() if body.sale is not None else None,
            information_template=body.information_template,
            follow_up=body.follow_up,
        )
        return _disposition_out(await desk.dispose(who.user_id, attempt_id, given))

    @agent.post("/calls/{attempt_id}/callback", response_model=DispositionOut)
    async def callback(who: Anyone, attempt_id: AttemptId, body: CallbackIn) -> DispositionOut:
        outcome = await desk.schedule_callback(
            who.user_id, attempt_id, body.at, agent_only=body.agent_only, comments=body.comments
        )
        return _disposition_out(outcome)

    @agent.post("/calls/{attempt_id}/hangup", status_code=204)
    async def hangup(who: Anyone, attempt_id: AttemptId) -> None:
        await desk.hangup(who.user_id, attempt_id)

    supervisor = APIRouter(prefix="/api", tags=["supervisor"], responses=_ERRORS)

    @supervisor.get("/agents", response_model=list[AgentOut])
    async def agents(who: Supervisor) -> list[AgentOut]:
        return [_agent_out(a) for a in desk.agents()]

    @supervisor.post("/agents/{agent_id}/logout", response_model=AgentOut)
    async def force_logout(who: Supervisor, agent_id: AgentId) -> AgentOut:
        return _agent_out(desk.force_logout(agent_id))

    @supervisor.get("/calls", response_model=list[CallInProgressOut])
    async def calls(who: Supervisor) -> list[CallInProgressOut]:
        return [
            CallInProgressOut(
                attempt_id=c.attempt_id,
                campaign_id=c.campaign_id,
                campaign_name=c.campaign_name,
                state=c.state,
                agent_id=c.agent_id,
                number=c.number_masked,
                seconds=round(c.seconds, 1),
            )
            for c in desk.calls()
        ]

    @supervisor.get("/campaigns", response_model=list[CampaignSummaryOut])
    async def campaigns(who: Supervisor) -> list[CampaignSummaryOut]:
        return [
            CampaignSummaryOut(
                id=c.id,
                name=c.name,
                status=c.status.value,
                dialing=c.dialing,
                pacing=c.pacing,
                dial_level=c.dial_level,
                lines=c.lines,
                agents=c.agents,
                outcomes=c.outcomes,
                blocked=c.blocked,
            )
            for c in await desk.campaigns()
        ]

    def campaign_change(status: CampaignStatus) -> Callable[..., Awaitable[CampaignOut]]:
        async def change(who: Supervisor, campaign_id: CampaignId) -> CampaignOut:
            return _campaign_out(await desk.set_campaign_status(campaign_id, status, who.user_id))

        return change

    for action, status in (
        ("start", CampaignStatus.RUNNING),
        ("pause", CampaignStatus.PAUSED),
        ("stop", CampaignStatus.STOPPED),
    ):
        supervisor.add_api_route(
            f"/campaigns/{{campaign_id}}/{action}",
            campaign_change(status),
            methods=["POST"],
            response_model=CampaignOut,
            name=f"campaign_{action}",
            summary=f"{action.capitalize()} a campaign",
        )

    @supervisor.get("/campaigns/{campaign_id}/abandonment", response_model=AbandonmentOut)
    async def abandonment(who: Supervisor, campaign_id: CampaignId) -> AbandonmentOut:
        a = await desk.abandonment(campaign_id)
        return AbandonmentOut(
            campaign_id=a.campaign_id,
            rate=a.rate,
            cap=a.cap,
            window_s=a.window_s,
            person_answered=a.person_answered,
            abandoned=a.abandoned,
            budget_left=a.budget_left,
            over_cap=a.rate > a.cap,
        )

    admin = APIRouter(prefix="/api", tags=["admin"], responses=_ERRORS)

    @admin.get("/users", response_model=list[UserOut])
    async def users(who: Admin) -> list[UserOut]:
        return [_user_out(u) for u in await accounts.list_users()]

    @admin.post("/users", response_model=UserOut, status_code=201)
    async def add_user(who: Admin, body: UserIn) -> UserOut:
        return _user_out(
            await accounts.add_user(body.id, body.name, body.role, body.password, actor=who.user_id)
        )

    @admin.patch("/users/{user_id}", response_model=UserOut)
    async def update_user(who: Admin, user_id: AgentId, body: UserPatch) -> UserOut:
        if body.password is not None:
            await accounts.set_password(user_id, body.password, actor=who.user_id)
        user = await accounts.update_user(
            user_id, name=body.name, role=body.role, active=body.active, actor=who.user_id
        )
        return _user_out(user)

    @admin.get("/campaigns/{campaign_id}", response_model=CampaignOut)
    async def campaign(who: Admin, campaign_id: CampaignId) -> CampaignOut:
        return _campaign_out(await desk.campaign(campaign_id))

    @admin.patch("/campaigns/{campaign_id}", response_model=CampaignOut)
    async def update_campaign(who: Admin, campaign_id: CampaignId, body: dict[str, Any]) -> CampaignOut:
        """Change some of the campaign's settings (names as in `dialer campaign show`)."""
        if len(body) > 40:
            raise Invalid("too many settings in one change: send at most 40")
        _check_settings_values(body)
        return _campaign_out(await desk.update_campaign_settings(campaign_id, body, who.user_id))

    for router in (public, agent, supervisor, admin):
        app.include_router(router)
    for extension in ROUTERS:  # one module per area: dialer.api.extensions
        app.include_router(extension(desk))
    app.include_router(pages_router())  # /agent and /supervisor
    return app
