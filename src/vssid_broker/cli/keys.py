"""`vssid-broker keys`: the broker's signing keys, the key-encryption key's rotation, and
re-sealing citizen IDs after it (docs/privacy.md)."""

from __future__ import annotations

import argparse
import asyncio
from datetime import timedelta
from pathlib import Path

from vssid_broker import sealing
from vssid_broker.cli.common import Commands, add_command, command_settings, read_secret
from vssid_broker.cli.rp_key import print_new_rp_key
from vssid_broker.config import Settings
from vssid_broker.db import database, utcnow
from vssid_broker.errors import CommandRefused
from vssid_broker.sessions.keys import (
    SigningKeys,
    load_key_encryption_key,
    parse_key_encryption_key,
)

SIGNING_KEY_ACTIONS = ("ensure", "rotate", "list", "rotate-kek")
CITIZEN_ID_KEY_ACTIONS = ("reseal-citizen-ids",)
RP_KEY_ACTIONS = ("rp-key",)
"""`keys rp-key --out FILE`: the RSA key VNeID's dialect encrypts to (docs/provider-profiles.md)."""
"""`keys reseal-citizen-ids`: after a key-encryption-key rotation (docs/privacy.md)."""


def add(commands: Commands) -> None:
    keys = add_command(commands, "keys", "manage the broker's keys and re-seal citizen IDs", run)
    keys.add_argument(
        "action",
        choices=[*SIGNING_KEY_ACTIONS, *CITIZEN_ID_KEY_ACTIONS, *RP_KEY_ACTIONS],
        help="ensure: create a signing key if none signs; rotate: publish a new one; list: show "
        "them; rotate-kek: re-encrypt every private key and sealed value under a new "
        "key-encryption key, read from VSSID_NEW_KEY_ENCRYPTION_KEY or stdin; "
        "reseal-citizen-ids: seal every citizen ID under the current key-encryption key; "
        "rp-key: make the relying party's RSA key for VNeID's dialect (--out) and print its "
        "public part as PEM and JWK",
    )
    keys.add_argument("--out", type=Path, help="rp-key: the new private key's file (0600)")
    keys.add_argument(
        "--publish-ahead-seconds",
        type=int,
        default=900,
        help="rotate: publish the new key this long before it signs (verifiers cache JWKS)",
    )


def run(args: argparse.Namespace) -> None:
    if args.action in RP_KEY_ACTIONS:
        if args.out is None:
            raise CommandRefused("keys rp-key needs --out FILE for the private key")
        print_new_rp_key(args.out)
        return
    settings = command_settings()
    if args.action in CITIZEN_ID_KEY_ACTIONS:
        asyncio.run(reseal(settings))
    elif args.action == "rotate-kek":
        new = read_secret("VSSID_NEW_KEY_ENCRYPTION_KEY")
        asyncio.run(rotate_kek(settings, new.strip()))
    else:
        asyncio.run(signing_keys(settings, args.action, args.publish_ahead_seconds))


async def signing_keys(settings: Settings, action: str, publish_ahead_seconds: int) -> None:
    from sqlalchemy import select

    from vssid_broker.sessions.models import SigningKey

    keys = SigningKeys(settings, load_key_encryption_key(settings))
    async with database(settings) as db, db.sessions.begin() as session:
        now = utcnow()
        if action == "ensure":
            await keys.ensure_active(session, now)
        elif action == "rotate":
            kid = await keys.rotate(session, now, timedelta(seconds=publish_ahead_seconds))
            print(f"new key {kid} is published now and signs from +{publish_ahead_seconds}s")
        for row in await session.scalars(select(SigningKey).order_by(SigningKey.signs_from)):
            retired = row.retired_at.isoformat() if row.retired_at else "-"
            signs_from = row.signs_from.isoformat()
            print(f"{row.kid}  {row.alg}  signs_from={signs_from}  retired={retired}")


async def rotate_kek(settings: Settings, new_key: str) -> None:
    """One transaction: every value re-encrypted, or none. Then every process must run with
    the new key."""
    if not new_key:
        raise CommandRefused("give the new key in VSSID_NEW_KEY_ENCRYPTION_KEY or on stdin")
    new = parse_key_encryption_key(new_key)
    keys = SigningKeys(settings, load_key_encryption_key(settings))
    async with database(settings) as db, db.sessions.begin() as session:
        count = await keys.rotate_key_encryption_key(session, new)
    print(
        f"re-encrypted {count} values under the new key-encryption key; set "
        "VSSID_KEY_ENCRYPTION_KEY to it for every broker process and restart them"
    )
    if settings.key_encryption_key is None:
        print(f"(the old key is still in {settings.key_encryption_key_file}: replace it)")


async def reseal(settings: Settings) -> None:
    from vssid_broker.housekeeping import reseal_citizen_ids

    keys = sealing.installed()
    async with database(settings) as db:
        done = await reseal_citizen_ids(
            db.sessions, keys, progress=lambda table, rows: print(f"  {table}: {rows} re-sealed")
        )
    total = sum(done.rows.values())
    print(f"citizen IDs re-sealed under key {keys.current_kid}: {total}")
