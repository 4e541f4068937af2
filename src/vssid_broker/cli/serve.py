"""`vssid-broker serve`: the broker under uvicorn, one process or several."""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile

import uvicorn

from vssid_broker import metrics
from vssid_broker.cli.common import Commands, add_command
from vssid_broker.config import Settings, load_settings
from vssid_broker.db import database
from vssid_broker.logging_setup import configure as configure_logging
from vssid_broker.sessions.keys import (
    SigningKeys,
    load_key_encryption_key,
    refuse_a_lost_key_file,
)


def add(commands: Commands) -> None:
    serve = add_command(commands, "serve", "run the broker (the database must be migrated)", run)
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on")
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes; with more than one, /metrics adds up every worker's values",
    )


def run(args: argparse.Namespace) -> None:
    settings = load_settings(Settings)
    configure_logging(settings.log_level, settings.log_format)
    # Fail with one clear line, before any worker starts.
    asyncio.run(check_ready_to_serve(settings))
    if args.workers > 1 and settings.metrics_enabled:
        # Each worker writes its values to files here; /metrics adds them up.
        metrics.prepare_multiprocess_dir(
            os.environ.get(metrics.MULTIPROCESS_DIR_VARIABLE)
            or tempfile.mkdtemp(prefix="vssid-broker-metrics-")
        )
    uvicorn.run(
        "vssid_broker.asgi:app",
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_config=None,
        # The client address for rate limits comes from proxy headers only when the peer is
        # one of VSSID_TRUSTED_PROXIES (web/client_address.py), never from uvicorn's own rule.
        proxy_headers=False,
        access_log=False,
    )


async def check_ready_to_serve(settings: Settings) -> None:
    """The schema is current and the key-encryption key opens the signing keys."""
    await refuse_a_lost_key_file(settings)
    keys = SigningKeys(settings, load_key_encryption_key(settings))
    async with database(settings) as db, db.sessions() as session:
        await keys.require_openable(session)
