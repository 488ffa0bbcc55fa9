"""``dialer run``: the daemon.  Start, dial, and stop on SIGTERM without losing an attempt."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dialer.cli import CliError
from dialer.settings import DEFAULT_PATH, ENV_CONFIG, Settings, SettingsError, config_path, load

if TYPE_CHECKING:
    from dialer.runtime.bootstrap import Runtime
    from dialer.runtime.services import NodeServices
    from dialer.runtime.systemd import Notifier

log = logging.getLogger("dialer.run")

CAMPAIGN_REFRESH_S = 5.0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run the dialer daemon",
        description="Connect to the PBX, dial the running campaigns, stop gracefully on SIGTERM. When "
        "something it needs is down (database, Redis, PBX) it says so in one line and exits non-zero; "
        "systemd starts it again (Restart=on-failure) until it can dial.",
    )
    parser.add_argument(
        "--config",
        type=Path,
        help=f"settings file (default: ${ENV_CONFIG}, else {DEFAULT_PATH})",
    )
    parser.set_defaults(handler=_run)

    check = subparsers.add_parser(
        "check-config",
        help="check a settings file: every bad or unknown key, the database, Redis and profiles used",
        description="Read the settings file as `dialer run` does and name every bad or unknown key at once "
        "(exit 1), or say what the daemon would use (exit 0). Nothing is connected to.",
    )
    check.add_argument(
        "file", nargs="?", type=Path, help=f"settings file (default: ${ENV_CONFIG}, else {DEFAULT_PATH})"
    )
    check.set_defaults(handler=_check_config)


def _config_file(explicit: Path | None) -> Path:
    return config_path(explicit) or DEFAULT_PATH


def _run(args: argparse.Namespace) -> int:
    try:
        settings = load(_config_file(args.config))
    except SettingsError as exc:
        raise CliError(str(exc)) from None
    if not args.verbose:
        logging.getLogger().setLevel(settings.log_level)
    _configure_logging(settings, args.verbose)
    log.info(
        "config %s; database %s (from %s); redis %s",
        settings.config_path,
        _shown_url(settings.database_url),
        settings.database_source,
        settings.redis_url or "none",
    )
    return asyncio.run(serve(settings))


def _configure_logging(settings: Settings, verbose: bool = False) -> None:
    """One line per event, ``[logging] format``, numbers masked (dialer.runtime.logs)."""
    from dialer.runtime.logs import configure

    configure("json" if settings.log_format == "json" else "text", "DEBUG" if verbose else settings.log_level)


def _shown_url(url: str) -> str:
    from dialer.store.db import Database

    return Database(url).display_url


def _check_config(args: argparse.Namespace) -> int:
    from dialer.domain.compliance import ProfileError
    from dialer.runtime.bootstrap import profile_set

    path = _config_file(args.file)
    problems: list[str] = []
    settings: Settings | None = None
    try:
        settings = load(path)
    except SettingsError as exc:
        problems.extend(exc.problems)
    if settings is not None:
        try:
            profiles = profile_set(settings)
        except ProfileError as exc:
            problems.append(f"compliance profiles ({settings.profiles_file}): {exc}")
    if problems or settings is None:
        print(f"{path}: {len(problems)} problem(s)", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        return 1
    print(f"{path}: ok")
    print(f"  database  {_shown_url(settings.database_url)} (from {settings.database_source})")
    print(f"  redis     {settings.redis_url or 'none (a single node)'}")
    for pbx in settings.pbxs:
        print(f"  pbx       {pbx.name}: {pbx.kind} at {pbx.host}:{pbx.port}, {pbx.max_lines} lines")
        if pbx.groups:  # several PBXs: a campaign may name the group
            print(f"            group {', '.join(pbx.groups)}, {pbx.max_calls_per_second:g} calls/s")
    shown = settings.profiles_file or "none: the built-in profiles"
    print(f"  profiles  {shown} ({len(profiles.profiles)} profiles: {', '.join(sorted(profiles.profiles))})")
    if settings.notify is not None:
        print(f"  notify    {settings.notify.describe()}")
    return 0


async def serve(settings: Settings, on_started: Callable[[Runtime], Awaitable[None]] | None = None) -> int:
    """Startup, main loop, shutdown: the daemon's whole life.

    ``on_started`` runs once the PBX is up and the campaigns are loaded (agent
    log-in by an embedding program, tests).
    """
    from redis.exceptions import RedisError

    from dialer.domain.compliance import ProfileError
    from dialer.runtime.bootstrap import build_runtime
    from dialer.runtime.systemd import Notifier
    from dialer.store.db import DatabaseError
    from telephony.base import PbxError

    notifier = Notifier()
    stopper = _Stopper(settings.drain_timeout_s)
    stop = stopper.stop
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopper)
    hup = asyncio.Event()  # SIGHUP: reload; taken from the start so that an early one never kills the node
    loop.add_signal_handler(signal.SIGHUP, hup.set)
    try:
        runtime = await build_runtime(settings)
    except DatabaseError as exc:
        raise CliError(str(exc)) from None
    except ProfileError as exc:
        raise CliError(f"compliance profiles ({settings.profiles_file or 'built-in'}): {exc}") from None
    except (RedisError, OSError) as exc:
        raise CliError(
            f"Redis at {settings.redis_url} is not answering ({type(exc).__name__}: {exc}); "
            "no call is placed without the shared do-not-call and contact stores: start Redis or fix "
            f"[redis] url in {settings.config_path}; under systemd the dialer starts again by itself"
        ) from None
    try:
        try:
            await runtime.pbx.start()
        except PbxError as exc:
            raise CliError(f"cannot start PBX {runtime.pbx.name!r}: {exc}") from exc
        from dialer.runtime.logs import CampaignOf, set_campaign_lookup

        set_campaign_lookup(CampaignOf(runtime.engine))  # each line naming an attempt names its campaign
        await runtime.recover(datetime.now(UTC))
        names = await runtime.load_campaigns(datetime.now(UTC))
        leases_done = asyncio.Event()  # set after the drain: the calls in progress finish under the lease
        leasing = _start_leases(runtime, leases_done)
        if on_started is not None:
            await on_started(runtime)
        log.info(
            "node %s dialing %d campaign(s): %s", settings.node_id, len(names), ", ".join(names) or "none"
        )
        from dialer.runtime.services import start_services

        serving = asyncio.Event()
        try:
            services = await start_services(
                runtime,
                serving,
                host=settings.api_bind,
                port=settings.api_port,
                metrics=(settings.metrics_bind, settings.metrics_port),
            )
        except OSError as exc:
            raise CliError(str(exc)) from None
        notifier.ready(f"dialing {len(names)} campaign(s)")
        helpers = [loop.create_task(_refresh_campaigns(runtime, stop))]
        helpers.append(loop.create_task(_reload_on(hup, runtime, settings, services, notifier, stop)))
        if notifier.watchdog_interval_s:
            helpers.append(loop.create_task(_watchdog(notifier, notifier.watchdog_interval_s, stop)))
        stopper.engine = loop.create_task(runtime.engine.run(stop, drain_timeout_s=settings.drain_timeout_s))
        await asyncio.wait({stopper.engine})  # a second SIGTERM cancels it: the drain ends there
        if not stopper.engine.cancelled():
            stopper.engine.result()  # an error of the engine stops the node as before
        leases_done.set()
        if leasing is not None:
            await leasing
        notifier.stopping()
        serving.set()  # the API and the relay served the drain (agents qualified their last calls)
        await services.stop()
        try:  # the outbox's last messages (refusals, do-not-calls of the last dispositions) reach the gate
            if not stopper.forced:
                await runtime.relay.deliver_pending()
        except Exception as exc:
            log.warning("the outbox could not be flushed (%s); the next start delivers it", exc)
        for task in helpers:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        left = len(runtime.engine.calls)
        if left:
            log.warning("stopped with %d call(s) still up; the next start reconciles them", left)
        log.info("stopped: %s", dict(runtime.engine.outcomes))
        return 1 if stopper.forced else 0
    finally:
        await runtime.close()


def _start_leases(runtime: Runtime, done: asyncio.Event) -> asyncio.Task[None] | None:
    """With Redis: take and renew the running campaigns' leases (one node paces a campaign)."""
    from dialer.runtime.takeover import campaigns_to_hold

    if runtime.leases is None:
        return None
    engine = runtime.engine
    return asyncio.get_running_loop().create_task(runtime.leases.run(lambda: campaigns_to_hold(engine), done))


async def _refresh_campaigns(runtime: Runtime, stop: asyncio.Event) -> None:
    """Pick up campaigns started, paused or stopped from the CLI or the API."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), CAMPAIGN_REFRESH_S)
        if stop.is_set():
            return
        try:
            names = await runtime.load_campaigns(datetime.now(UTC))
        except Exception:
            log.exception("reading the campaigns failed; keeping the current ones")
            continue
        if names:
            log.info("campaign(s) started: %s", ", ".join(names))


async def _watchdog(notifier: Notifier, interval_s: float, stop: asyncio.Event) -> None:
    """Ping systemd from the event loop itself: a loop that stops turning gets the daemon restarted."""
    while not stop.is_set():
        notifier.watchdog()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)


class _Stopper:
    """The first SIGTERM drains (no new dials, calls finish, dispositions and the outbox flushed);
    a second one ends the drain at once and leaves the calls still up to the next start's
    reconciliation (the process exits with status 1)."""

    def __init__(self, drain_s: float) -> None:
        self.stop = asyncio.Event()
        self.drain_s = drain_s
        self.forced = False
        self.engine: asyncio.Task[None] | None = None

    def __call__(self) -> None:
        if not self.stop.is_set():
            log.info(
                "stopping: no new dials; calls in progress get up to %.0f s to finish (SIGTERM again to "
                "exit at once)",
                self.drain_s,
            )
            self.stop.set()
            return
        if self.forced:
            return
        self.forced = True
        log.warning("second stop signal: exiting now; calls still up are reconciled at the next start")
        if self.engine is not None:
            self.engine.cancel()


async def _reload_on(
    hup: asyncio.Event,
    runtime: Runtime,
    settings: Settings,
    services: NodeServices,
    notifier: Notifier,
    stop: asyncio.Event,
) -> None:
    """Each SIGHUP re-reads the file and the profiles (dialer.runtime.reload); calls stay up."""
    from dialer.runtime.reload import Reloader

    path = settings.config_path or DEFAULT_PATH
    reloader = Reloader(
        runtime,
        settings,
        read=lambda: load(path),
        configure_logging=_configure_logging,
        reloads=services.ops.reloads if services.ops is not None else None,
    )
    while not stop.is_set():
        await hup.wait()
        hup.clear()
        if stop.is_set():
            return
        notifier.reloading()
        try:
            await reloader.reload(datetime.now(UTC))
        except Exception:
            log.exception("reload failed; the node keeps running with its settings")
        notifier.ready("reloaded")
