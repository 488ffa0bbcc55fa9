"""``dialer user add|list|disable|passwd|pin``: the people who sign in to the API and the phones.

Passwords are read without echo (``getpass``), typed twice, or from standard
input with ``--password-stdin`` (one line, for scripts); they are never taken
from the command line, where ``ps`` and shell history would show them.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from dialer.cli import CliError
from dialer.cli.common import add_config_options, run_with_database
from dialer.service import ServiceError
from dialer.service.accounts import MAX_PIN_LENGTH, MIN_PASSWORD_LENGTH, MIN_PIN_LENGTH, Accounts
from dialer.store.db import Database
from dialer.store.repositories import Role


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        line = sys.stdin.readline()
        if not line:
            raise CliError("--password-stdin: standard input is empty; pipe the password in, one line")
        return line.rstrip("\r\n")
    if not sys.stdin.isatty():
        raise CliError("no terminal to type the password in: use --password-stdin and pipe it in")
    first = getpass.getpass(f"password for {args.user_id} (at least {MIN_PASSWORD_LENGTH} characters): ")
    if getpass.getpass("the same password again: ") != first:
        raise CliError("the two passwords differ; nothing was changed")
    return first


def _pin(args: argparse.Namespace) -> str:
    if args.pin_stdin:
        line = sys.stdin.readline()
        if not line:
            raise CliError("--pin-stdin: standard input is empty; pipe the PIN in, one line")
        return line.strip()
    if not sys.stdin.isatty():
        raise CliError("no terminal to type the PIN in: use --pin-stdin and pipe it in")
    first = getpass.getpass(f"phone PIN for {args.user_id} ({MIN_PIN_LENGTH} to {MAX_PIN_LENGTH} digits): ")
    if getpass.getpass("the same PIN again: ") != first:
        raise CliError("the two PINs differ; nothing was changed")
    return first


def _run(args: argparse.Namespace, work_on: str) -> int:
    async def work(db: Database) -> int:
        accounts = Accounts(db)
        try:
            if work_on == "add":
                user = await accounts.add_user(
                    args.user_id,
                    args.name or args.user_id,
                    Role(args.role),
                    _password(args),
                    actor=args.actor,
                )
                print(f"user {user.id} added ({user.role.value}); they sign in with POST /api/login")
            elif work_on == "list":
                users = await accounts.list_users()
                if not users:
                    print(
                        "no user yet: `dialer user add ID --role admin` makes the first one", file=sys.stderr
                    )
                for u in users:
                    state = "active" if u.active else "disabled"
                    print(f"{u.id:<24} {u.role.value:<10} {state:<8} {u.name}")
            elif work_on == "disable":
                await accounts.update_user(args.user_id, active=False, actor=args.actor)
                print(f"user {args.user_id} disabled: their tokens no longer work and they cannot sign in")
            elif work_on == "pin":
                await accounts.get_user(args.user_id)
                await accounts.set_pin(args.user_id, _pin(args), actor=args.actor)
                print(f"PIN of {args.user_id} set: they log in by dialing 9{args.user_id} from their phone")
            else:
                await accounts.get_user(args.user_id)
                await accounts.set_password(args.user_id, _password(args), actor=args.actor)
                print(f"password of {args.user_id} changed; the tokens issued before no longer work")
        except ServiceError as exc:
            raise CliError(str(exc)) from None
        return 0

    return run_with_database(args, work)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("user", help="add, list and disable API users; change passwords")
    commands = parser.add_subparsers(dest="user_command", metavar="ACTION", required=True)

    add = commands.add_parser("add", help="add a user (agent, supervisor or admin) with a password")
    add.add_argument("user_id", metavar="ID", help="the login; for an agent also the agent id (e.g. 1001)")
    add.add_argument("--name", help="the person's name (default: the id)")
    add.add_argument(
        "--role", choices=[r.value for r in Role], default=Role.AGENT.value, help="default: agent"
    )
    add.set_defaults(handler=lambda args: _run(args, "add"))

    lst = commands.add_parser("list", help="every user with role and whether they are active")
    lst.set_defaults(handler=lambda args: _run(args, "list"))

    disable = commands.add_parser("disable", help="stop a user from signing in; their tokens stop working")
    disable.add_argument("user_id", metavar="ID")
    disable.set_defaults(handler=lambda args: _run(args, "disable"))

    passwd = commands.add_parser("passwd", help="set a user's password; their tokens stop working")
    passwd.add_argument("user_id", metavar="ID")
    passwd.set_defaults(handler=lambda args: _run(args, "passwd"))

    pin = commands.add_parser(
        "pin", help="set the PIN an agent types on the phone after dialing the login extension (9<id>)"
    )
    pin.add_argument("user_id", metavar="ID")
    pin.add_argument("--pin-stdin", action="store_true", help="read the PIN from standard input (one line)")
    pin.set_defaults(handler=lambda args: _run(args, "pin"))

    for sub in (add, passwd):
        sub.add_argument(
            "--password-stdin", action="store_true", help="read the password from standard input (one line)"
        )
    for sub in (add, lst, disable, passwd, pin):
        add_config_options(sub)
        sub.add_argument("--actor", default="cli", help="who does this, for the audit trail (default: cli)")
