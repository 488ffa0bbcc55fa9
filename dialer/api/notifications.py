"""Notifications: their status, for supervisors."""

from fastapi import APIRouter

from dialer.service.desk import Desk


def router(desk: Desk) -> APIRouter:
    return APIRouter(prefix="/api")
