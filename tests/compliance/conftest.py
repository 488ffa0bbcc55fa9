"""Helpers shared by the compliance tests: profiles, fresh registry facts, request builders."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from redis.asyncio import Redis

from dialer.compliance.profiles import ProfileSet, load_profiles
from dialer.domain.compliance import CallRequest, CampaignRules, ConsentRecord, Facts


@pytest.fixture(scope="session")
def profiles() -> ProfileSet:
    return load_profiles()


def fresh_registries(profiles: ProfileSet, on: date) -> dict[str, date | None]:
    """Every registry screened on ``on``."""
    return {name: on for name in profiles.registries}


def local(zone: str, *args: int) -> datetime:
    """An aware UTC instant from a wall-clock time in ``zone``."""
    return datetime(*args, tzinfo=ZoneInfo(zone)).astimezone(UTC)  # type: ignore[misc]


def request(number: str, profile: str, **kw: object) -> CallRequest:
    return CallRequest(
        number_e164=number,
        lead_id=str(kw.pop("lead_id", "lead-1")),
        campaign_id=str(kw.pop("campaign_id", "camp-1")),
        campaign_rules=kw.pop("rules", CampaignRules(profile)),  # type: ignore[arg-type]
        **kw,  # type: ignore[arg-type]
    )


def facts(profiles: ProfileSet, now: datetime, **kw: object) -> Facts:
    return Facts(registry_screened_on=fresh_registries(profiles, now.date()), **kw)  # type: ignore[arg-type]


CONSENT = ConsentRecord(given_at=datetime(2020, 1, 1, tzinfo=UTC), source="web form")


@pytest.fixture
def redis_namespace(redis_namespace: str, redis_url: str) -> Iterator[str]:
    """The shared fixture's namespace, with its keys removed after the test (Redis is shared)."""
    yield redis_namespace

    async def clean() -> None:
        redis = Redis.from_url(redis_url)
        keys = [k async for k in redis.scan_iter(match=f"{redis_namespace}*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()

    asyncio.run(clean())
