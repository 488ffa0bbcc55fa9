"""What a running node serves beside the engine: the outbox relay, the HTTP API and the metrics.

`dialer run` and `dialer demo` start them the same way: the desk's use cases
over the node's engine, the accounts, the FastAPI app on ``[api]`` bind and
port, and the relay that carries committed refusals and do-not-calls to the
compliance gate.  The Prometheus metrics (``dialer.runtime.metrics``) are at
``/metrics`` on the API and, when asked (``dialer run``: ``[metrics]`` bind and
port), on a listener of their own.  They serve through the drain and stop after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, make_asgi_app
from starlette.requests import Request
from starlette.responses import Response

from dialer.api.app import create_app
from dialer.followup.metrics import FollowupGauges
from dialer.notify.metrics import NotificationCollector
from dialer.notify.worker import DeliveryWorker
from dialer.quality.complaints import watch_overdue
from dialer.quality.evaluations import store_shipped_grids
from dialer.recordings.runtime import note_recorded_calls, purge_hourly
from dialer.recordings.service import Recordings
from dialer.runtime.bootstrap import Runtime
from dialer.runtime.metrics import node_registry
from dialer.runtime.ops_metrics import OpsMetrics, ops_metrics
from dialer.sales.customers import CustomerRecords
from dialer.sales.service import Sales
from dialer.service.accounts import Accounts
from dialer.service.desk import Desk
from dialer.service.phone_login import PhoneLogins
from dialer.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class NodeServices:
    """The desk, the accounts and the tasks that serve them; ``stop`` ends the tasks."""

    desk: Desk
    accounts: Accounts
    server: uvicorn.Server | None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    metrics: CollectorRegistry | None = None
    metrics_server: uvicorn.Server | None = None
    notifier: DeliveryWorker | None = None  # [notify]: sends email and SMS; wake() after queueing one
    ops: OpsMetrics | None = None  # hopper depth, the PBX pool's trunks, reloads

    @property
    def api_url(self) -> str | None:
        if self.server is None:
            return None
        config = self.server.config
        return f"http://{config.host}:{config.port}"

    @property
    def metrics_url(self) -> str | None:
        """Where Prometheus scrapes: the metrics listener, else the API's ``/metrics``."""
        if self.metrics_server is not None:
            config = self.metrics_server.config
            return f"http://{config.host}:{config.port}/metrics"
        api = self.api_url
        return None if api is None else f"{api}/metrics"

    async def stop(self) -> None:
        for server in (self.server, self.metrics_server):
            if server is not None:
                server.should_exit = True
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(task, 5.0)


async def start_services(
    runtime: Runtime,
    until: asyncio.Event,
    *,
    host: str,
    port: int,
    serve_api: bool = True,
    metrics: tuple[str, int] | None = None,
) -> NodeServices:
    """Start the relay and, when asked, the API and a metrics listener on ``metrics`` (host, port).

    They serve until ``until`` is set: after the engine's drain, not at the node's stop, so agents
    can qualify their last calls and the relay delivers their refusals.

    Raises OSError when the API or the metrics port is taken.
    """
    desk = Desk(
        runtime.db,
        runtime.engine,
        runtime.agents,
        relay=runtime.relay,
        clock=time.time,
        follow_campaigns=runtime.load_campaigns,
        sales=Sales(runtime.db, runtime.settings.seller if runtime.settings is not None else None),
        customers=CustomerRecords(
            runtime.db,
            redis_url=runtime.settings.redis_url if runtime.settings is not None else None,
            redis_namespace=runtime.settings.redis_namespace if runtime.settings is not None else "dialer:",
        ),
    )
    await store_shipped_grids(runtime.db)  # a changed grid file becomes a new version
    accounts = Accounts(runtime.db)
    set_phone_login = getattr(runtime.pbx, "set_phone_login", None)
    if callable(set_phone_login):  # the login extension (Asterisk FastAGI, FreeSWITCH park + ESL)
        set_phone_login(PhoneLogins(accounts, desk))
    loop = asyncio.get_running_loop()
    followup = FollowupGauges(runtime.db)
    registry = node_registry(runtime.engine, runtime.agents, relay=runtime.relay, followup=followup)
    services = NodeServices(desk, accounts, None, metrics=registry)
    services.ops = ops_metrics(runtime.db, runtime.engine)
    registry.register(services.ops.collector)
    recordings = Recordings(runtime.db, _recordings_dir(runtime))
    note_recorded_calls(runtime.engine, recordings)
    # Both listeners are bound before any task starts: a port in use stops the start, nothing left running.
    listeners: list[tuple[str, uvicorn.Server]] = []
    if metrics is not None:
        services.metrics_server = uvicorn.Server(
            uvicorn.Config(
                make_asgi_app(registry),
                host=metrics[0],
                port=metrics[1],
                log_config=None,
                access_log=False,
                lifespan="off",
            )
        )
        await _bind_or_fail(services.metrics_server, "metrics")
        listeners.append(("metrics", services.metrics_server))
    if serve_api:
        app = create_app(desk, accounts)
        app.state.recordings = recordings
        app.state.pbx = runtime.pbx
        app.add_route("/metrics", _metrics_endpoint(registry), methods=["GET"])
        config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False, lifespan="off")
        server = uvicorn.Server(config)  # the daemon owns the signals: only main_loop is run, not serve()
        try:
            await _bind_or_fail(server)
        except OSError:
            for _, bound in listeners:  # the metrics listener does not outlive the failed start
                bound.should_exit = True
                await bound.shutdown()
            raise
        services.server = server
        listeners.append(("api", server))
        log.info("API and pages on %s (OpenAPI at /openapi.json)", services.api_url)
    services.tasks.append(loop.create_task(runtime.relay.run(until), name="outbox-relay"))
    notify = runtime.settings.notify if runtime.settings is not None else None
    if notify is not None:
        services.notifier = DeliveryWorker.from_settings(runtime.db, notify)
        registry.register(NotificationCollector(services.notifier))
        services.tasks.append(loop.create_task(services.notifier.run(until), name="notify-worker"))
    services.tasks.append(loop.create_task(followup.run(until), name="followup-metrics"))
    services.tasks.append(loop.create_task(services.ops.hopper.run(until), name="hopper-sampler"))
    services.tasks.append(loop.create_task(purge_hourly(recordings, until), name="recordings-retention"))
    services.tasks.append(loop.create_task(watch_overdue(runtime.db, until), name="complaints-overdue"))
    for what, bound in listeners:
        services.tasks.append(loop.create_task(bound.main_loop(), name=f"{what}-main-loop"))
        services.tasks.append(loop.create_task(_shutdown_on(until, bound), name=f"{what}-shutdown"))
    if services.metrics_url is not None:
        log.info("Prometheus metrics on %s", services.metrics_url)
    return services


def _metrics_endpoint(registry: CollectorRegistry) -> Callable[[Request], Awaitable[Response]]:
    """``GET /metrics`` on the API: the node's metrics in Prometheus' text format."""

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return metrics


async def _bind_or_fail(server: uvicorn.Server, section: str = "api") -> None:
    """Bind the listening socket now, so a port in use stops the start with a clear message."""
    config = server.config
    if not config.loaded:
        config.load()
    server.lifespan = config.lifespan_class(config)
    try:
        await server.startup()  # uvicorn says sys.exit(1) when it cannot bind
    except SystemExit:
        raise OSError(
            f"the {'API' if section == 'api' else section} could not listen on {config.host}:{config.port}: "
            f"the port is in use or the address is not this host's; change [{section}] bind/port in the "
            "config"
        ) from None


async def _shutdown_on(stop: asyncio.Event, server: uvicorn.Server) -> None:
    await stop.wait()
    server.should_exit = True
    await server.shutdown()


def _recordings_dir(runtime: Runtime) -> Path:
    """``[recordings] dir`` of the node's settings (the default when it was built without them)."""
    return (runtime.settings or Settings()).recordings_dir
