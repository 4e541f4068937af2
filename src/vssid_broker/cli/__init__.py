"""`vssid-broker`: serve, demo, migrate, db, seed, accounts, keys, purge, audit, staff, vneid-sim;
`--version`.

One module per command group (serve.py, migrate.py, db.py, seed.py, accounts.py, keys.py,
purge.py, audit.py, staff.py, vneid_sim.py, demo.py), each its options and a few lines over a
service; `database(settings)` gives it the database and cleans up after it. Here only the
parser they make together, and `main`: the one place a refusal becomes an exit with one line. With
`seeding`, the only broker code that knows the simulated VNeID."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from vssid_broker import __version__, schema
from vssid_broker.audit.anchors import AnchorError
from vssid_broker.cli import (
    accounts,
    audit,
    db,
    keys,
    migrate,
    purge,
    seed,
    serve,
    staff,
    vneid_sim,
)
from vssid_broker.cli.common import HELP_FORMAT, Commands, add_command
from vssid_broker.config import SettingsInvalid
from vssid_broker.database_roles import RoleRefused
from vssid_broker.db import DriverMissing
from vssid_broker.errors import CommandRefused, DomainError
from vssid_broker.logging_setup import configure as configure_logging
from vssid_broker.sealing import KeyUnusable, SealedValueRefused

DESCRIPTION = """\
The VssID sign-in broker: VssID accounts, sign-in through VNeID (level 2), session tokens.
Settings come from VSSID_* environment variables (docs/settings.md); `vssid-broker demo` runs
everything on one machine with demo data."""

REFUSALS = (
    schema.SchemaNotCurrent,
    DomainError,
    CommandRefused,
    SettingsInvalid,
    DriverMissing,
    KeyUnusable,
    SealedValueRefused,
    AnchorError,
    RoleRefused,
)
"""What a command may meet that the operator can mend: one line, exit status 1, no traceback."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vssid-broker", description=DESCRIPTION, formatter_class=HELP_FORMAT
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="also log what the libraries say at INFO (Alembic's migration steps)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in (serve, migrate, db, seed, accounts, keys, purge, audit, staff, vneid_sim):
        group.add(commands)
    add_demo(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    configure_logging()
    quiet_libraries(args.verbose)
    try:
        args.run(args)
    except REFUSALS as error:
        sys.exit(str(error))


def quiet_libraries(verbose: bool) -> None:
    """Alembic announces every step at INFO; an operator asked for the result, not the steps."""
    logging.getLogger("alembic").setLevel(logging.INFO if verbose else logging.WARNING)


def add_demo(commands: Commands) -> None:
    """`demo`'s options; demo.py runs it, and is imported only then (it builds both apps)."""
    demo = add_command(
        commands, "demo", "migrate, seed, and run broker + simulated VNeID", run_demo
    )
    demo.add_argument("--port", type=int, default=8000, help="the broker's port")
    demo.add_argument("--sim-port", type=int, default=9000, help="the simulated VNeID's port")
    demo.add_argument(
        "--vneid-protocol",
        choices=["openid-connect", "vneid-encrypted"],
        default="openid-connect",
        help="the profile both speak: standard OpenID Connect, or VNeID's encrypted dialect",
    )


def run_demo(args: argparse.Namespace) -> None:
    from vssid_broker.cli.demo import run

    asyncio.run(run(args.port, args.sim_port, args.vneid_protocol))


if __name__ == "__main__":
    main()
