"""`vssid-broker keys`: the broker's signing keys, the key-encryption key's rotation, and
re-sealing every sealed value after it or at the upgrade that bound them to their rows
(docs/privacy.md)."""

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
    KeyEncryptionKeys,
    SigningKeys,
    load_key_encryption_key,
    parse_key_encryption_key,
)

SIGNING_KEY_ACTIONS = ("ensure", "rotate", "list", "rotate-kek")
CITIZEN_ID_KEY_ACTIONS = ("reseal-citizen-ids", "reseal", "reindex-citizen-ids")
"""`keys reseal`: every sealed value under the key-encryption key configured as current and bound
to its row, after the processes moved to a new key or after the upgrade to bound values
(docs/privacy.md); `reseal-citizen-ids` is its former name."""
RP_KEY_ACTIONS = ("rp-key",)
"""`keys rp-key --out FILE`: the RSA key VNeID's dialect encrypts to (docs/provider-profiles.md)."""


def add(commands: Commands) -> None:
    keys = add_command(commands, "keys", "manage the broker's keys and re-seal citizen IDs", run)
    keys.add_argument(
        "action",
        choices=[*SIGNING_KEY_ACTIONS, *CITIZEN_ID_KEY_ACTIONS, *RP_KEY_ACTIONS],
        help="ensure: create a signing key if none signs; rotate: publish a new one; list: show "
        "them; rotate-kek: re-encrypt every private key and sealed value under a new "
        "key-encryption key, read from VSSID_NEW_KEY_ENCRYPTION_KEY or stdin; "
        "reseal (or reseal-citizen-ids): re-seal every sealed value under the key-encryption key "
        "configured as current, bound to its row, opening with VSSID_CITIZEN_ID_PREVIOUS_KEKS "
        "(also what an upgrade to bound values runs); "
        "reindex-citizen-ids: write every blind index under VSSID_BLIND_INDEX_KEY, after a "
        "blind-index key rotation (VSSID_BLIND_INDEX_PREVIOUS_KEYS); "
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
    keys.add_argument(
        "--batch-size",
        type=int,
        default=1_000,
        help="rotate-kek, reseal, reindex-citizen-ids: rows per transaction",
    )


def run(args: argparse.Namespace) -> None:
    if args.action in RP_KEY_ACTIONS:
        if args.out is None:
            raise CommandRefused("keys rp-key needs --out FILE for the private key")
        print_new_rp_key(args.out)
        return
    settings = command_settings()
    if args.action == "reindex-citizen-ids":
        asyncio.run(reindex(settings, args.batch_size))
    elif args.action in CITIZEN_ID_KEY_ACTIONS:
        asyncio.run(reseal(settings, args.batch_size))
    elif args.action == "rotate-kek":
        new = read_secret("VSSID_NEW_KEY_ENCRYPTION_KEY")
        asyncio.run(rotate_kek(settings, new.strip(), args.batch_size))
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


async def rotate_kek(settings: Settings, new_key: str, batch: int = 1_000) -> None:
    """Every value sealed under the key-encryption key, re-sealed under `new_key`, in batches
    of short transactions (a live system keeps serving). Resumable: run it again with the same
    settings and it moves only what is left. Then every process must run with the new key."""
    if not new_key:
        raise CommandRefused("give the new key in VSSID_NEW_KEY_ENCRYPTION_KEY or on stdin")
    new = parse_key_encryption_key(new_key)
    configured = KeyEncryptionKeys.configured(settings, load_key_encryption_key(settings))
    secrets = KeyEncryptionKeys(new, configured.all_keys())
    citizen_ids = sealing.CitizenIdKeys.from_secrets(
        new.raw_value,
        [key.raw_value for key in configured.all_keys()],
        sealing.installed().index_key,
    )
    total = await _reseal(settings, citizen_ids, secrets, batch)
    print(
        f"re-encrypted {total} values under the new key-encryption key {secrets.current_kid}; "
        "set VSSID_KEY_ENCRYPTION_KEY to it for every broker process and restart them"
    )
    if settings.key_encryption_key is None:
        print(f"(the old key is still in {settings.key_encryption_key_file}: replace it)")


async def reseal(settings: Settings, batch: int = 1_000) -> None:
    """What `rotate-kek` does, towards the key already configured as current: after the
    processes were restarted with the new key and the old one in the previous keys."""
    secrets = KeyEncryptionKeys.configured(settings, load_key_encryption_key(settings))
    total = await _reseal(settings, sealing.installed(), secrets, batch)
    print(f"values re-sealed under key {secrets.current_kid}: {total}")


async def _reseal(
    settings: Settings, citizen_ids: sealing.CitizenIdKeys, secrets: KeyEncryptionKeys, batch: int
) -> int:
    from vssid_broker.housekeeping import reseal_under_current_key

    def progress(column: str, done: int, left: int) -> None:
        print(f"  {column}: {done} of {left} re-sealed", flush=True)

    async with database(settings) as db:
        done = await reseal_under_current_key(
            db.sessions, citizen_ids, secrets, batch=max(batch, 1), progress=progress
        )
    _refuse_if_any(done.refused, "re-sealed")
    print("every sealed value is bound to its row: VSSID_OPEN_UNBOUND_SEALED_VALUES may be false")
    return sum(done.rows.values())


def _refuse_if_any(refused: dict[str, list[str]], action: str) -> None:
    """Rows whose value does not open for them were left alone: name them and end with status 1
    (the rest is done; a run after they are mended finishes)."""
    if not refused:
        return
    for column, row_keys in refused.items():
        shown = ", ".join(row_keys[:20]) + (" …" if len(row_keys) > 20 else "")
        print(f"  {column}: {len(row_keys)} refused, not {action} (rows {shown})", flush=True)
    raise CommandRefused(
        f"{sum(len(keys) for keys in refused.values())} sealed values do not open for their row "
        "(copied from another row, column or table, or altered) and were left as they are: "
        "restore them from a backup or clear them (docs/privacy.md), then run this again"
    )


async def reindex(settings: Settings, batch: int = 1_000) -> None:
    """Step 3 of the blind-index key rotation (docs/privacy.md): lookups find rows under either
    key meanwhile, so the broker keeps serving."""
    from vssid_broker.housekeeping import reindex_citizen_ids

    def progress(table: str, read: int, rewritten: int) -> None:
        print(f"  {table}: {read} read, {rewritten} re-indexed", flush=True)

    async with database(settings) as db:
        done = await reindex_citizen_ids(
            db.sessions, sealing.installed(), batch=max(batch, 1), progress=progress
        )
    _refuse_if_any(done.refused, "re-indexed")
    print(
        f"citizen IDs re-indexed under the current blind-index key: {sum(done.rows.values())}; "
        "once every table is done, remove VSSID_BLIND_INDEX_PREVIOUS_KEYS and restart"
    )
