"""The API's routers beyond the desk's own: one module per area, each ``router(desk)``."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter

from dialer.api import calendar, followup, notifications, quality, recordings, sales
from dialer.service.desk import Desk

ROUTERS: tuple[Callable[[Desk], APIRouter], ...] = (
    notifications.router,
    calendar.router,
    followup.router,
    sales.router,
    recordings.router,
    quality.router,
)
