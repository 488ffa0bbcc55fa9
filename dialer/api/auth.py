"""The API's sign-in checks, handed to every router: who is calling, with which role.

    def router(auth: Auth, desk: Desk) -> APIRouter:
        r = APIRouter(prefix="/api", tags=["..."])

        @r.get("/things")
        async def things(who: auth.Supervisor) -> list[Thing]: ...

Roles nest: an admin passes a supervisor's check, a supervisor an agent's.
A router module must not use ``from __future__ import annotations``: FastAPI
reads the ``Annotated`` dependencies from the live annotations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Auth:
    Anyone: Any  # Annotated[Principal, Depends(...)]: any signed-in user
    Supervisor: Any  # a supervisor or an admin
    Admin: Any  # an admin
