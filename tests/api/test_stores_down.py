"""A store that stops answering mid-run: the API says so with a 503, never a traceback or a bare 500."""

from __future__ import annotations

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy.exc import OperationalError

from tests.api.conftest import Stack


def _fail(exc: BaseException):  # type: ignore[no-untyped-def]
    async def failing(*_args: object, **_kwargs: object) -> None:
        raise exc

    return failing


@pytest.mark.parametrize(
    ("down", "says"),
    [
        (OperationalError("SELECT 1", {}, ConnectionRefusedError("refused")), "database is not answering"),
        (ConnectionRefusedError(111, "Connection refused"), "not reachable"),
        (RedisConnectionError("Error 111 connecting to 127.0.0.1:6379"), "Redis"),
    ],
)
async def test_a_store_that_is_down_gives_a_503_that_says_which(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, down: BaseException, says: str
) -> None:
    me = await stack.token("agent1")
    monkeypatch.setattr(stack.accounts, "authenticate", _fail(down))
    reply = await stack.client.get("/api/me", headers=me)
    assert reply.status_code == 503 and reply.headers["Retry-After"] == "5"
    body = reply.json()
    assert says in body["detail"] and "Traceback" not in reply.text


async def test_sign_in_with_the_database_down_is_a_503_not_a_refusal(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    down = OperationalError("SELECT", {}, ConnectionRefusedError("refused"))
    monkeypatch.setattr(stack.accounts, "login", _fail(down))
    reply = await stack.client.post("/api/login", json={"user": "agent1", "password": "whatever-long"})
    assert reply.status_code == 503 and "database" in reply.json()["detail"]
