"""The field salespeople's calendar: free slots, bookings."""

from fastapi import APIRouter

from dialer.service.desk import Desk


def router(desk: Desk) -> APIRouter:
    return APIRouter(prefix="/api")
