"""The pages in a real browser: Debian's chromium driven by Playwright, the app served by uvicorn.

The app runs over a Desk on a real Engine (the fakes of tests/runtime/fakes.py) and
a SQLite record, in the test's own event loop, on a free port of 127.0.0.1.  No
browser is downloaded: Playwright launches the system's ``chromium`` (scripts/test
installs it).  Set ``DIALER_SCREENSHOTS=/some/dir`` to keep a screenshot of each page.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from playwright.async_api import Page, async_playwright

from dialer.store.db import Database
from tests.api.conftest import Stack, build_stack

VIEWPORT = {"width": 1366, "height": 768}  # the laptop screen the pages are made for


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: the pages do not depend on the database, the API tests cover PostgreSQL."""
    return f"sqlite+aiosqlite:///{tmp_path / 'dialer.db'}"


@dataclass
class Served:
    stack: Stack
    url: str


@pytest.fixture
async def served(db: Database) -> AsyncIterator[Served]:
    """The API and the pages on a free port, served by uvicorn in this test's event loop."""
    async for stack in build_stack(db):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(
            stack.app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="off"
        )
        server = uvicorn.Server(config)
        config.load()
        server.lifespan = config.lifespan_class(config)
        await server.startup(sockets=[sock])
        main_loop = asyncio.create_task(server.main_loop())
        try:
            yield Served(stack, f"http://127.0.0.1:{port}")
        finally:
            server.should_exit = True
            await main_loop
            await server.shutdown(sockets=[sock])
            sock.close()


@pytest.fixture
async def page() -> AsyncIterator[Page]:
    """A 1366x768 page in Debian's chromium; a JavaScript error in the page fails the test."""
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("the browser tests need Debian's chromium: apt-get install chromium (scripts/test does)")
    errors: list[str] = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium, args=["--no-sandbox"], headless=True)
        try:
            context = await browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
            context.set_default_timeout(8000)
            pg = await context.new_page()
            pg.on("pageerror", lambda exc: errors.append(str(exc)))
            yield pg
        finally:
            await browser.close()
    assert errors == [], f"JavaScript errors in the page: {errors}"


async def screenshot(page: Page, name: str) -> None:
    """Keep a screenshot of the page when DIALER_SCREENSHOTS names a directory."""
    where = os.environ.get("DIALER_SCREENSHOTS")
    if where:  # Playwright makes the directory
        await page.screenshot(path=str(Path(where) / f"{name}.png"))
