"""What every command shares: how its options are shown, its settings, the secrets it reads."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable
from typing import TypeAlias

from vssid_broker.config import Settings, load_settings

Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
Run: TypeAlias = Callable[[argparse.Namespace], None]

HELP_FORMAT = argparse.ArgumentDefaultsHelpFormatter
"""Every option's help shows its default."""


def add_command(commands: Commands, name: str, help: str, run: Run) -> argparse.ArgumentParser:
    """A command, with `run` the function `main` calls with its parsed arguments."""
    command = commands.add_parser(name, help=help, description=help, formatter_class=HELP_FORMAT)
    command.set_defaults(run=run)
    return command


def command_settings() -> Settings:
    """The broker's settings, with the keys that seal citizen IDs installed (every command
    that works on the database's rows needs them) and the password hash's parameters chosen;
    serve's and demo's app installs its own."""
    # Imported here, not at the top: `main` imports this module to build the parser of every
    # command, some of which (vneid-sim, a --help) need none of these.
    from vssid_broker import passwords, sealing
    from vssid_broker.audit import chain
    from vssid_broker.sessions.keys import refuse_a_lost_key_file

    settings = load_settings(Settings)
    asyncio.run(refuse_a_lost_key_file(settings))
    sealing.install(sealing.CitizenIdKeys.from_settings(settings))
    chain.install(chain.ChainKeys.from_settings(settings))
    passwords.use_profile(settings.password_hash_profile)  # the staff commands hash passwords
    return settings


def read_secret(variable: str) -> str:
    """A secret from the environment or the first line of stdin, never the command line (which
    other users of the machine can read in the process list)."""
    return os.environ.get(variable) or sys.stdin.readline()
