"""``dialer demo``: a whole campaign on SQLite and the built-in PBX simulator."""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path
from typing import Any

from dialer.cli import CliError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="dial a built-in lead list on the PBX simulator (nothing to install)",
        description="Run a campaign for about 30 seconds on SQLite and the built-in PBX simulator, "
        "with simulated agents, then print the count of each outcome.",
    )
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--seconds", type=float, default=30.0, help="how long to dial (default 30)")
    length.add_argument(
        "--minutes",
        type=float,
        help="dial this long instead, so you can open the agent screen and the supervisor page it prints "
        "and take calls beside the simulated agents",
    )
    parser.add_argument(
        "--api-port", type=int, default=0, help="port of the API and pages (default: a free one, printed)"
    )
    parser.add_argument("--agents", type=int, default=6, help="simulated agents (default 6)")
    parser.add_argument("--leads", type=int, default=400, help="leads in the built-in list (default 400)")
    parser.add_argument("--pbx", choices=["asterisk", "freeswitch"], default="asterisk")
    parser.add_argument("--pacing", choices=["progressive", "ratio", "predictive"], default="predictive")
    parser.add_argument("--time-scale", type=float, default=4.0, help="simulator speed-up (default 4)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--workdir",
        type=Path,
        help="new or empty folder for the demo's database and files (default: a new temp dir); "
        "a folder that already holds them is refused",
    )
    parser.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace) -> int:
    from dialer.runtime.demo import DemoError, DemoOptions, run_demo

    seconds = args.minutes * 60.0 if args.minutes is not None else args.seconds
    if seconds <= 0 or args.agents < 1 or args.leads < 1 or args.time_scale <= 0:
        raise CliError("--seconds (or --minutes), --agents, --leads and --time-scale must be positive")
    if not 0 <= args.api_port <= 65535:
        raise CliError("--api-port is a TCP port: 1 to 65535 (0: a free one)")
    options = DemoOptions(
        seconds=seconds,
        api_port=args.api_port,
        agents=args.agents,
        leads=args.leads,
        pbx=args.pbx,
        pacing=args.pacing,
        time_scale=args.time_scale,
        seed=args.seed,
        workdir=args.workdir,
    )
    if not args.verbose:  # the progress line says what happens; INFO logs would bury it
        logging.getLogger().setLevel(logging.WARNING)
    try:
        outcomes = asyncio.run(run_demo(options))
    except DemoError as exc:
        raise CliError(str(exc)) from None
    return 0 if sum(outcomes.values()) else 1
