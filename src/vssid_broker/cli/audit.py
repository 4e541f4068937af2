"""`vssid-broker audit verify | anchor`: prove the audit trail's chain, or name its first break;
sign the chain's head into an anchor kept outside the database (docs/privacy.md)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from vssid_broker.cli.common import Commands, add_command, command_settings
from vssid_broker.config import Settings
from vssid_broker.db import database, utcnow
from vssid_broker.errors import CommandRefused


def add(commands: Commands) -> None:
    audit = add_command(commands, "audit", "the audit trail", run)
    audit.add_argument(
        "action",
        choices=["verify", "anchor"],
        help="verify: prove the chain or name its first break; anchor: write the chain's head, "
        "signed with the anchor key, as one line",
    )
    audit.add_argument(
        "--anchors",
        type=Path,
        help="verify: also check the chain against the signed anchors in this file "
        "(catches removed newest entries and a re-hashed chain)",
    )
    audit.add_argument(
        "--key",
        type=Path,
        help="the anchor key's PEM file (private to anchor; public is enough to verify); "
        "default VSSID_AUDIT_ANCHOR_KEY_FILE",
    )
    audit.add_argument(
        "--out", type=Path, help="anchor: append the line to this file instead of standard output"
    )


def run(args: argparse.Namespace) -> None:
    settings = command_settings()
    key_file = args.key or settings.audit_anchor_key_file
    if args.action == "anchor":
        if key_file is None:
            raise CommandRefused(
                "audit anchor needs the anchor key: --key or VSSID_AUDIT_ANCHOR_KEY_FILE"
            )
        asyncio.run(write_anchor(settings, key_file, args.out))
        return
    if args.anchors is not None and key_file is None:
        raise CommandRefused(
            "audit verify --anchors needs the anchor key: --key or VSSID_AUDIT_ANCHOR_KEY_FILE"
        )
    asyncio.run(verify_chain(settings, args.anchors, key_file))


async def verify_chain(
    settings: Settings, anchors_file: Path | None, key_file: Path | None
) -> None:
    from vssid_broker.audit import anchors
    from vssid_broker.audit.chain import verify

    anchored = None
    if anchors_file is not None and key_file is not None:
        anchored = anchors.read(anchors_file, anchors.load_key(key_file, private=False))
    async with database(settings) as db, db.sessions() as session:
        result = await verify(session)
        contradiction = None
        if result.broken_at is None and anchored is not None:
            contradiction = await anchors.check(session, anchored)
    if result.broken_at is not None:
        sys.exit(
            f"audit chain BROKEN at entry {result.broken_at}: {result.problem} "
            f"({result.entries} entries before it verified)"
        )
    if contradiction is not None:
        sys.exit(f"audit chain BROKEN against its anchors: {contradiction}")
    against = f", consistent with {len(anchored)} anchors" if anchored else ""
    print(f"audit chain verified: {result.entries} entries{against}")


async def write_anchor(settings: Settings, key_file: Path, out: Path | None) -> None:
    from vssid_broker.audit import anchors

    key = anchors.load_key(key_file, private=True)
    async with database(settings) as db, db.sessions() as session:
        head = await anchors.head(session, utcnow())
    line = anchors.sign(head, key)
    if out is None:
        print(line)
    else:
        with out.open("a") as handle:
            handle.write(line + "\n")
    print(f"anchored entry {head.sequence}", file=sys.stderr if out is None else sys.stdout)
    if settings.audit_anchor_pushgateway_url:
        try:
            anchors.push_written(settings.audit_anchor_pushgateway_url, head)
        except anchors.AnchorError as error:
            # The anchor stands; the job fails so that its failure is seen.
            raise CommandRefused(f"anchored entry {head.sequence}, but {error}") from error
