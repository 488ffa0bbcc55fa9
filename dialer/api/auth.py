"""The API's sign-in checks: who is calling, with which role.

A router module annotates its parameters with these aliases:

    from dialer.api.auth import Supervisor

    def router(desk: Desk) -> APIRouter:
        r = APIRouter(prefix="/api", tags=["..."])

        @r.get("/things")
        async def things(who: Supervisor) -> list[Thing]: ...

Roles nest: an admin passes a supervisor's check, a supervisor an agent's.
The accounts come from ``app.state.accounts`` (set by ``create_app``).  A
router module must not use ``from __future__ import annotations``: FastAPI
reads the ``Annotated`` dependencies from the live annotations.
"""

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from dialer.service import Unauthorized
from dialer.service.accounts import Accounts, Principal
from dialer.store.repositories import Role

RANK = {Role.AGENT: 0, Role.SUPERVISOR: 1, Role.ADMIN: 2}
bearer = HTTPBearer(auto_error=False, description="the token from POST /api/login")


class Forbidden(Exception):
    """Signed in, but the role does not allow this (answered 403)."""


async def principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("a token is needed: POST /api/login, then send `Authorization: Bearer <token>`")
    accounts: Accounts = request.app.state.accounts
    return await accounts.authenticate(credentials.credentials)


def role(minimum: Role) -> Callable[[Principal], Awaitable[Principal]]:
    async def check(who: Annotated[Principal, Depends(principal)]) -> Principal:
        if RANK[who.role] < RANK[minimum]:
            raise Forbidden(f"this needs the {minimum.value} role; you are signed in as {who.role.value}")
        return who

    return check


Anyone = Annotated[Principal, Depends(principal)]
"""Any signed-in user."""
Supervisor = Annotated[Principal, Depends(role(Role.SUPERVISOR))]
"""A supervisor or an admin."""
Admin = Annotated[Principal, Depends(role(Role.ADMIN))]
"""An admin."""
