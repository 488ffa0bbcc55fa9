"""Scripts, evaluation grids, scorecards and complaints."""

from fastapi import APIRouter

from dialer.api.auth import Auth
from dialer.service.desk import Desk


def router(auth: Auth, desk: Desk) -> APIRouter:
    return APIRouter(prefix="/api")
