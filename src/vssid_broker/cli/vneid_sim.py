"""`vssid-broker vneid-sim`: the simulated VNeID provider alone."""

from __future__ import annotations

import argparse
import os

from vssid_broker.cli.common import Commands, add_command
from vssid_broker.config import load_settings


def add(commands: Commands) -> None:
    sim = add_command(commands, "vneid-sim", "run the simulated VNeID provider alone", run)
    sim.add_argument("--host", default="127.0.0.1", help="address to listen on")
    sim.add_argument("--port", type=int, default=9000, help="port to listen on")
    sim.add_argument(
        "--test-mode", action="store_true", help="turn on the /_test fault-scripting API"
    )
    sim.add_argument(
        "--protocol",
        choices=["openid-connect", "vneid-encrypted"],
        help="speak VNeID's encrypted dialect (needs VNEID_SIM_RP_PUBLIC_KEY_FILE); "
        "default: VNEID_SIM_PROTOCOL, else openid-connect",
    )


def run(args: argparse.Namespace) -> None:
    from vssid_broker.vneid_sim.config import SimSettings
    from vssid_broker.vneid_sim.server import run as run_sim

    if args.test_mode:
        os.environ["VNEID_SIM_TEST_MODE"] = "true"
    if args.protocol:
        os.environ["VNEID_SIM_PROTOCOL"] = args.protocol
    load_settings(SimSettings)  # one line per bad setting, before the server builds
    run_sim(args.host, args.port, None)
