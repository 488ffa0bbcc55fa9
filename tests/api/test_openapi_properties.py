"""Schemathesis over /openapi.json, with an admin token: no request it generates gets a 500."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings

from dialer.store.db import Database
from tests.api.conftest import build_stack

EXAMPLES_PER_OPERATION = 8


def _cases(app: Any) -> list[Any]:
    schema = schemathesis.openapi.from_dict(app.openapi())
    cases: list[Any] = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def collect(case: Any) -> None:
            cases.append(case)

        collect()
    return cases


async def test_no_generated_request_gets_a_server_error(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'dialer.db'}")
    await db.connect()
    await db.migrate()
    started = time.monotonic()
    try:
        async for stack in build_stack(db):
            admin = await stack.token("root")
            cases = _cases(stack.app)
            assert len({(c.method, c.path) for c in cases}) >= 20  # every endpoint was exercised
            failures = []
            for case in cases:
                kwargs = case.as_transport_kwargs(base_url="http://dialer")
                headers = {**(kwargs.get("headers") or {}), **admin}
                reply = await stack.client.request(
                    kwargs["method"],
                    kwargs["url"],
                    headers=headers,
                    params=kwargs.get("params"),
                    json=kwargs.get("json"),
                )
                if reply.status_code >= 500:
                    failures.append(
                        f"{kwargs['method']} {kwargs['url']} {kwargs.get('json')!r}: {reply.text}"
                    )
            assert failures == []
    finally:
        await db.close()
    assert time.monotonic() - started < 60
