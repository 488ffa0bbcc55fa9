"""The agent screen and the supervisor page: plain HTML, CSS and a little JavaScript served by the daemon.

    app.include_router(pages_router())

``/agent`` and ``/supervisor`` are static pages that sign in through
``POST /api/login`` and then use the API like any other client (the token is
kept in the tab's sessionStorage).  Only the files shipped in
``dialer/api/static`` are served, by name: nothing is read from a path the
request chose.  No build step, no CDN.  What the pages share (the sign-in
form) is written once in a ``.part`` file and put in place of an
``<!-- include NAME.part -->`` line when the router is made.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse, Response

from dialer.service import NotFound

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}
# Pages change with the daemon's version: the browser asks again rather than run an old script.
_HEADERS = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}


_INCLUDE = re.compile(r"^[ \t]*<!-- include ([a-z][a-z0-9_-]*\.part) -->[ \t]*$", re.MULTILINE)


def assemble(page: Path) -> bytes:
    """The page with each include line replaced by its part, from the same folder, indented like the line."""

    def part(match: re.Match[str]) -> str:
        source = page.parent / match.group(1)
        indent = match.group(0)[: len(match.group(0)) - len(match.group(0).lstrip())]
        lines = source.read_text(encoding="utf-8").rstrip("\n").splitlines()
        return "\n".join(indent + line if line else line for line in lines)

    return _INCLUDE.sub(part, page.read_text(encoding="utf-8")).encode("utf-8")


def _shipped() -> dict[str, Path]:
    if not STATIC.is_dir():  # an install without its package data still dials; the pages say what is missing
        log.warning("the pages' files are not installed (no %s): /agent and /supervisor are 404", STATIC)
        return {}
    return {p.name: p for p in STATIC.iterdir() if p.is_file() and p.suffix in _TYPES}


def pages_router() -> APIRouter:
    """Routes for the pages and their files; left out of the OpenAPI description (they are not API)."""
    router = APIRouter(include_in_schema=False)
    files = _shipped()
    pages = {name: assemble(path) for name, path in files.items() if path.suffix == ".html"}

    def serve(name: str) -> Response:
        path = files.get(name)
        if path is None:
            raise NotFound(f"no file {name[:80]!r}: the pages are /agent and /supervisor")
        if name in pages:
            return Response(pages[name], media_type=_TYPES[path.suffix], headers=_HEADERS)
        return FileResponse(path, media_type=_TYPES[path.suffix], headers=_HEADERS)

    @router.get("/")
    async def home() -> Response:
        return RedirectResponse("/agent", status_code=307)

    @router.get("/agent")
    async def agent_screen() -> Response:
        return serve("agent.html")

    @router.get("/supervisor")
    async def supervisor_page() -> Response:
        return serve("supervisor.html")

    @router.get("/supervisor/recordings")
    async def recordings_page() -> Response:
        return serve("recordings.html")

    @router.get("/supervisor/quality")
    async def quality_page() -> Response:
        return serve("quality.html")

    @router.get("/static/{name}")
    async def static_file(name: str) -> Response:
        return serve(name)

    return router
