"""``dialer run``: the daemon.  Start, dial, and stop on SIGTERM without losing an attempt."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dialer.cli import CliError
from dialer.settings import DEFAULT_PATH, Settings, SettingsError, load

if TYPE_CHECKING:
    from dialer.runtime.bootstrap import Runtime
    from dialer.runtime.systemd import Notifier

log = logging.getLogger("dialer.run")

CAMPAIGN_REFRESH_S = 5.0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run the dialer daemon",
        description="Connect to the PBX, dial the running campaigns, stop gracefully on SIGTERM.",
    )
    parser.add_argument(
        "--config", type=Path, default=DEFAULT_PATH, help=f"settings file (default {DEFAULT_PATH})"
    )
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    try:
        settings = load(args.config)
    except SettingsError as exc:
        raise CliError(str(exc)) from exc
    logging.getLogger().setLevel(settings.log_level)
    return asyncio.run(serve(settings))


async def serve(settings: Settings, on_started: Callable[[Runtime], Awaitable[None]] | None = None) -> int:
    """Startup, main loop, shutdown: the daemon's whole life.

    ``on_started`` runs once the PBX is up and the campaigns are loaded (agent
    log-in by an embedding program, tests).
    """
    from dialer.runtime.bootstrap import build_runtime
    from dialer.runtime.systemd import Notifier
    from dialer.store.db import DatabaseError
    from telephony.base import PbxError

    notifier = Notifier()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        runtime = await build_runtime(settings)
    except DatabaseError as exc:
        raise CliError(str(exc)) from exc
    try:
        try:
            await runtime.pbx.start()
        except PbxError as exc:
            raise CliError(f"cannot start PBX {runtime.pbx.name!r}: {exc}") from exc
        await runtime.recover(datetime.now(UTC))
        names = await runtime.load_campaigns(datetime.now(UTC))
        if on_started is not None:
            await on_started(runtime)
        log.info(
            "node %s dialing %d campaign(s): %s", settings.node_id, len(names), ", ".join(names) or "none"
        )
        notifier.ready(f"dialing {len(names)} campaign(s)")
        helpers = [loop.create_task(_refresh_campaigns(runtime, stop))]
        if notifier.watchdog_interval_s:
            helpers.append(loop.create_task(_watchdog(notifier, notifier.watchdog_interval_s, stop)))
        await runtime.engine.run(stop, drain_timeout_s=settings.drain_timeout_s)
        notifier.stopping()
        for task in helpers:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        left = len(runtime.engine.calls)
        if left:
            log.warning("stopped with %d call(s) still up; the next start reconciles them", left)
        log.info("stopped: %s", dict(runtime.engine.outcomes))
        return 0
    finally:
        await runtime.close()


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
