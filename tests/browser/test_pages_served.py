"""The pages and their files are served by name only, outside the OpenAPI description."""

from __future__ import annotations

from tests.browser.conftest import Served


async def test_pages_and_files(served: Served) -> None:
    stack = served.stack
    for path, kind in (
        ("/agent", "text/html"),
        ("/supervisor", "text/html"),
        ("/static/style.css", "text/css"),
        ("/static/app.js", "text/javascript"),
        ("/static/agent.js", "text/javascript"),
        ("/static/supervisor.js", "text/javascript"),
    ):
        reply = await stack.client.get(path)
        assert reply.status_code == 200, path
        assert reply.headers["content-type"].startswith(kind), path
        assert reply.headers["cache-control"] == "no-cache"
    home = await stack.client.get("/", follow_redirects=False)
    assert home.status_code == 307 and home.headers["location"] == "/agent"

    # Pages link only to files the daemon serves: no CDN, nothing missing.
    for page in ("/agent", "/supervisor"):
        html = (await stack.client.get(page)).text
        assert "http://" not in html and "https://" not in html
        for name in ("style.css", "app.js"):
            assert f"/static/{name}" in html

    for path in ("/static/nope.js", "/static/..%2Fpages.py", "/static/%2E%2E%2Fapp.py", "/static/"):
        reply = await stack.client.get(path)
        assert reply.status_code == 404, path
        assert "detail" in reply.json()
    paths = (await stack.client.get("/openapi.json")).json()["paths"]
    assert "/agent" not in paths and "/static/{name}" not in paths and "/api/campaigns" in paths


async def test_every_page_has_the_shared_sign_in_form_and_no_include_line(served: Served) -> None:
    for page in ("/agent", "/supervisor", "/supervisor/recordings", "/supervisor/quality"):
        html = (await served.stack.client.get(page)).text
        assert html.count('<form id="signin-form">') == 1, page
        assert "<!-- include" not in html, page
        assert '\n    <section id="signin" class="card signin" hidden>\n      <h2>Sign in</h2>' in html, page
    # The part itself is not a file the daemon serves.
    assert (await served.stack.client.get("/static/signin.part")).status_code == 404
