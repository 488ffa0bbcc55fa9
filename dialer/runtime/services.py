"""What a running node serves beside the engine: the outbox relay and the HTTP API.

`dialer run` and `dialer demo` start both the same way: the desk's use cases
over the node's engine, the accounts, the FastAPI app on ``[api]`` bind and
port, and the relay that carries committed refusals and do-not-calls to the
compliance gate.  Stopping is the node's stop event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field

import uvicorn

from dialer.api.app import create_app
from dialer.runtime.bootstrap import Runtime
from dialer.service.accounts import Accounts
from dialer.service.desk import Desk
from dialer.service.phone_login import PhoneLogins

log = logging.getLogger(__name__)


@dataclass
class NodeServices:
    """The desk, the accounts and the tasks that serve them; ``stop`` ends the tasks."""

    desk: Desk
    accounts: Accounts
    server: uvicorn.Server | None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def api_url(self) -> str | None:
        if self.server is None:
            return None
        config = self.server.config
        return f"http://{config.host}:{config.port}"

    async def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(task, 5.0)


async def start_services(
    runtime: Runtime, stop: asyncio.Event, *, host: str, port: int, serve_api: bool = True
) -> NodeServices:
    """Start the relay and, when asked, the API; raises OSError when the API port is taken."""
    desk = Desk(
        runtime.db,
        runtime.engine,
        runtime.agents,
        relay=runtime.relay,
        clock=time.time,
        follow_campaigns=runtime.load_campaigns,
    )
    accounts = Accounts(runtime.db)
    set_phone_login = getattr(runtime.pbx, "set_phone_login", None)
    if callable(set_phone_login):  # the login extension (Asterisk FastAGI, FreeSWITCH park + ESL)
        set_phone_login(PhoneLogins(accounts, desk))
    loop = asyncio.get_running_loop()
    services = NodeServices(desk, accounts, None)
    services.tasks.append(loop.create_task(runtime.relay.run(stop), name="outbox-relay"))
    if serve_api:
        app = create_app(desk, accounts)
        config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False, lifespan="off")
        server = uvicorn.Server(config)  # the daemon owns the signals: only main_loop is run, not serve()
        await _bind_or_fail(server)
        services.server = server
        services.tasks.append(loop.create_task(server.main_loop(), name="api-main-loop"))
        services.tasks.append(loop.create_task(_shutdown_on(stop, server), name="api-shutdown"))
        log.info("API and pages on %s (OpenAPI at /openapi.json)", services.api_url)
    return services


async def _bind_or_fail(server: uvicorn.Server) -> None:
    """Bind the listening socket now, so a port in use stops the start with a clear message."""
    config = server.config
    if not config.loaded:
        config.load()
    server.lifespan = config.lifespan_class(config)
    try:
        await server.startup()  # uvicorn says sys.exit(1) when it cannot bind
    except SystemExit:
        raise OSError(
            f"the API could not listen on {config.host}:{config.port}: the port is in use or the address "
            "is not this host's; change [api] bind/port in the config"
        ) from None


async def _shutdown_on(stop: asyncio.Event, server: uvicorn.Server) -> None:
    await stop.wait()
    server.should_exit = True
    await server.shutdown()
