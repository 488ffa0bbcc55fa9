"""Callbacks and follow-up tasks: what is due and what is overdue."""

from fastapi import APIRouter

from dialer.service.desk import Desk


def router(desk: Desk) -> APIRouter:
    return APIRouter(prefix="/api")
