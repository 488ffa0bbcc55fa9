"""The ``dialer`` command line.

Each module of this package that defines ``register(subparsers)`` adds its own
command group, so commands live beside the code they drive.  A command
function returns the process exit code; it reports problems as ``CliError``
with a message that says what to do.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
from collections.abc import Sequence

from dialer import __version__
from dialer.leads.numbers import mask_numbers_in


class CliError(Exception):
    """A problem the operator can fix; the message says how."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dialer", description="Predictive dialer service.")
    parser.add_argument("--version", action="version", version=f"dialer {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        # Alembic announces its context on every schema check; the commands say what matters.
        logging.getLogger("alembic").setLevel(logging.WARNING)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        code: int = handler(args)
    except CliError as exc:
        print(f"dialer: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug: one line for the person, the details with --verbose
        logging.getLogger("dialer.cli").debug("unexpected error", exc_info=True)
        print(
            f"dialer: unexpected error ({type(exc).__name__}: {mask_numbers_in(str(exc))}); run the command "
            "again with --verbose for the details, and report it",
            file=sys.stderr,
        )
        return 70
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
