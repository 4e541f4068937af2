"""Signed anchors of the audit chain, kept outside the database.

`verify` alone proves that the entries in the database link up under the chain key. It cannot
tell that the newest entries were removed (what is left still links up), nor that someone
holding the chain key rewrote and re-linked the whole chain. An anchor is the chain's head
(sequence = the newest entry's id, its hash, the time) signed with an Ed25519 key the database
and the broker's service never hold, written where they cannot reach (a log shipper, an object
store). Checked against the anchors, a chain whose head is older than an anchor was truncated, an
anchored entry that is gone or has another hash was removed or re-hashed.

Each anchor is one line: a compact JWS (EdDSA over Ed25519) whose payload is
`{"sequence": ..., "hash": ..., "at": ...}`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import OKPKey
from prometheus_client import CollectorRegistry, Gauge, push_to_gateway
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from vssid_broker.audit.chain import GENESIS
from vssid_broker.audit.models import AuditCheckpoint, AuditEvent

ALGORITHM = "Ed25519"

WRITTEN_METRIC = "vssid_audit_anchor_last_written_timestamp_seconds"
"""What the anchoring job pushes after each anchor (`VssidAuditAnchorStale` reads it): the
anchor's success is the job's to tell, the broker's /metrics cannot know it."""
SEQUENCE_METRIC = "vssid_audit_anchor_sequence"
"""Pushed beside it: the audit entry the anchor covers."""
PUSH_JOB = "vssid-audit-anchor"


class AnchorError(RuntimeError):
    """The anchor key or an anchor file cannot be used."""


@dataclass(frozen=True)
class Anchor:
    sequence: int
    """Id of the chain's newest entry when the anchor was made (0: an empty chain)."""
    hash: str
    at: datetime


def load_key(path: Path, *, private: bool) -> OKPKey:
    """The anchor key from a PEM file: the private key signs; either key verifies (an auditor
    needs only the public one)."""
    try:
        key = OKPKey.import_key(path.read_bytes())
    except OSError as error:
        raise AnchorError(f"the anchor key {path} cannot be read: {error.strerror}") from error
    except (ValueError, JoseError) as error:
        raise AnchorError(f"the anchor key {path} is not an Ed25519 key in PEM") from error
    if key.curve_name != "Ed25519":
        raise AnchorError(f"the anchor key {path} is not an Ed25519 key in PEM")
    if private and not key.is_private:
        raise AnchorError(f"the anchor key {path} is a public key: signing needs the private one")
    return key


async def head(session: AsyncSession, now: datetime) -> Anchor:
    """The chain's newest entry (or, when a purge took them all, its newest checkpoint)."""
    newest = (
        await session.execute(
            select(AuditEvent.id, AuditEvent.entry_hash).order_by(AuditEvent.id.desc()).limit(1)
        )
    ).first()
    if newest is None:
        newest = (
            await session.execute(
                select(AuditCheckpoint.last_event_id, AuditCheckpoint.last_entry_hash)
                .order_by(AuditCheckpoint.id.desc())
                .limit(1)
            )
        ).first()
    if newest is None:
        return Anchor(0, GENESIS, now)
    return Anchor(int(newest[0]), str(newest[1]), now)


def sign(anchor: Anchor, key: OKPKey) -> str:
    payload = {"sequence": anchor.sequence, "hash": anchor.hash, "at": anchor.at.isoformat()}
    return jws.serialize_compact(
        {"alg": ALGORITHM}, json.dumps(payload, separators=(",", ":")), key, [ALGORITHM]
    )


def push_written(pushgateway_url: str, anchor: Anchor) -> None:
    """Tell the Pushgateway when the anchor was written (replacing what the job pushed last).
    Raises AnchorError naming the gateway, never its credentials."""
    registry = CollectorRegistry()
    Gauge(WRITTEN_METRIC, "When the anchor job last wrote an anchor (Unix time).",
          registry=registry).set(anchor.at.timestamp())  # fmt: skip
    Gauge(SEQUENCE_METRIC, "The audit entry the last anchor covers.",
          registry=registry).set(anchor.sequence)  # fmt: skip
    try:
        push_to_gateway(pushgateway_url, job=PUSH_JOB, registry=registry, timeout=10)
    except OSError as error:  # refused, timed out, or an HTTP error status (urllib's HTTPError)
        where = urlsplit(pushgateway_url if "://" in pushgateway_url else f"//{pushgateway_url}")
        at = f"{where.hostname}:{where.port}" if where.port else where.hostname
        raise AnchorError(f"the Pushgateway at {at} was not told: {error}") from error


def read(path: Path, key: OKPKey) -> list[Anchor]:
    """Every anchor in the file, each checked against the key; one that is not refuses all."""
    try:
        lines = path.read_text().splitlines()
    except OSError as error:
        raise AnchorError(f"the anchors {path} cannot be read: {error.strerror}") from error
    anchors = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            payload = json.loads(jws.deserialize_compact(line.strip(), key, [ALGORITHM]).payload)
            anchors.append(
                Anchor(
                    int(payload["sequence"]),
                    str(payload["hash"]),
                    datetime.fromisoformat(payload["at"]),
                )
            )
        except (JoseError, ValueError, KeyError, TypeError) as error:
            raise AnchorError(
                f"anchor on line {number} of {path} is not signed by the anchor key"
            ) from error
    if not anchors:
        raise AnchorError(f"{path} holds no anchor")
    return anchors


async def check(session: AsyncSession, anchors: list[Anchor]) -> str | None:
    """What the database's chain contradicts in the anchors, or None. Run after `verify`
    passed: the chain links up, so only its ends and its hashes as a whole are in question."""
    current = await head(session, anchors[-1].at)
    newest = max(anchors, key=lambda anchor: anchor.sequence)
    if current.sequence < newest.sequence:
        return (
            f"the chain ends at entry {current.sequence}, before entry {newest.sequence} "
            f"anchored at {newest.at.isoformat()} (entries at its end were removed)"
        )
    purged_up_to = await session.scalar(
        select(AuditCheckpoint.last_event_id).order_by(AuditCheckpoint.id.desc()).limit(1)
    )
    for anchor in sorted(anchors, key=lambda anchor: anchor.sequence):
        if anchor.sequence == 0:
            continue
        stored = await session.scalar(
            select(AuditEvent.entry_hash).where(AuditEvent.id == anchor.sequence)
        )
        if stored is None:
            checkpoint_hash = await session.scalar(
                select(AuditCheckpoint.last_entry_hash).where(
                    AuditCheckpoint.last_event_id == anchor.sequence
                )
            )
            if checkpoint_hash is not None:
                stored = checkpoint_hash
            elif purged_up_to is not None and anchor.sequence <= purged_up_to:
                continue  # purged behind a checkpoint: nothing of it is left to compare
            else:
                return f"entry {anchor.sequence}, anchored at {anchor.at.isoformat()}, is missing"
        if stored != anchor.hash:
            return (
                f"entry {anchor.sequence} has another hash than anchored at "
                f"{anchor.at.isoformat()} (the chain was re-hashed)"
            )
    return None
