"""`vssid-broker purge` and `vssid-broker keys rotate-kek`: work across the domains.

Purge deletes every row past the end of its use or its retention period. Each domain says what
has expired (its own `purge_expired`); this is the one list of them and the retention table
of docs/privacy.md, so a new kind of row is purged by adding it here, not by remembering a
second command. Each purge is itself an audit event.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from sqlalchemy import Table, bindparam, column, delete, func, select, update
from sqlalchemy import table as sql_table
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vssid_broker.admin import console_sessions
from vssid_broker.audit import service as audit
from vssid_broker.audit.events import AuditEventType
from vssid_broker.audit.models import AuditCheckpoint, AuditEvent, AuditEventPerson
from vssid_broker.config import Settings
from vssid_broker.federation import transactions
from vssid_broker.linking.models import OPEN_STATUSES, LinkConsent, ReviewCase
from vssid_broker.requests import service as agency_requests
from vssid_broker.sealing import CitizenIdKeys
from vssid_broker.sessions import service as sessions
from vssid_broker.sessions.keys import KeyEncryptionKeys


@dataclass(frozen=True)
class Retention:
    """One row of the retention table: a kind of data and how long it is kept."""

    kind: str
    kept: str
    setting: str


def retention_table(settings: Settings) -> list[Retention]:
    """What `purge` applies, as docs/privacy.md and `purge --show` print it."""
    days = "{} days".format
    return [
        Retention(
            "login transactions",
            f"until they expire ({settings.login_transaction_ttl_seconds} s)",
            "VSSID_LOGIN_TRANSACTION_TTL_SECONDS",
        ),
        Retention(
            "browser sessions",
            f"until they end (at most {settings.browser_session_ttl_seconds} s)",
            "VSSID_BROWSER_SESSION_TTL_SECONDS",
        ),
        Retention(
            "refresh-token families",
            f"until they end (at most {settings.refresh_token_ttl_seconds} s)",
            "VSSID_REFRESH_TOKEN_TTL_SECONDS",
        ),
        Retention(
            "review cases, once decided",
            days(settings.retain_decided_review_cases_days),
            "VSSID_RETAIN_DECIDED_REVIEW_CASES_DAYS",
        ),
        Retention(
            "consent records, once withdrawn",
            days(settings.retain_withdrawn_consents_days),
            "VSSID_RETAIN_WITHDRAWN_CONSENTS_DAYS",
        ),
        Retention(
            "requests to the agency, once done, refused or cancelled (with their history)",
            days(settings.retain_closed_requests_days),
            "VSSID_RETAIN_CLOSED_REQUESTS_DAYS",
        ),
        Retention(
            "audit events",
            days(settings.retain_audit_events_days),
            "VSSID_RETAIN_AUDIT_EVENTS_DAYS",
        ),
    ]


@dataclass(frozen=True)
class Purged:
    login_transactions: int
    sessions: sessions.Purged
    decided_review_cases: int
    withdrawn_consents: int
    closed_requests: int
    audit_events: int
    staff_console_sessions: int


async def purge(session: AsyncSession, now: datetime, settings: Settings) -> Purged:
    """Everything in one transaction: a purge that fails half-way removes nothing."""
    decided_before = now - timedelta(days=settings.retain_decided_review_cases_days)
    purged = Purged(
        login_transactions=await transactions.purge_expired(session, now=now),
        sessions=await sessions.purge_expired(session, now, settings),
        decided_review_cases=await _count(
            session,
            delete(ReviewCase).where(
                ReviewCase.status.not_in(OPEN_STATUSES),
                ReviewCase.decided_at < decided_before,
            ),
        ),
        withdrawn_consents=await _count(
            session,
            delete(LinkConsent).where(
                LinkConsent.withdrawn_at
                < now - timedelta(days=settings.retain_withdrawn_consents_days)
            ),
        ),
        closed_requests=await agency_requests.purge_closed(
            session, before=now - timedelta(days=settings.retain_closed_requests_days)
        )
        + await agency_requests.purge_expired_drafts(session, now=now),
        audit_events=await purge_audit_events(
            session, before=now - timedelta(days=settings.retain_audit_events_days), now=now
        ),
        staff_console_sessions=await console_sessions.purge_expired(session, now, settings),
    )
    details = asdict(purged)
    audit.record(
        session,
        event_type=AuditEventType.DATA_PURGED,
        outcome="purged",
        now=now,
        actor="system:purge",
        **{key: value for key, value in details.items() if key != "sessions"},
        **{f"sessions_{key}": value for key, value in details["sessions"].items()},
    )
    return purged


async def _count(session: AsyncSession, statement: object) -> int:
    result = await session.execute(statement)  # type: ignore[call-overload]
    return int(result.rowcount or 0)


async def purge_audit_events(session: AsyncSession, *, before: datetime, now: datetime) -> int:
    """Remove the front of the chain up to the last event older than `before`, after writing a
    checkpoint with that event's hash: the first event kept still verifies against it, and the
    database lets DELETE remove only events at or before the newest checkpoint."""
    last = (
        await session.execute(
            select(AuditEvent.id, AuditEvent.entry_hash)
            .where(AuditEvent.occurred_at < before)
            .order_by(AuditEvent.id.desc())
            .limit(1)
        )
    ).first()
    if last is None:
        return 0
    removed = await session.scalar(
        select(func.count()).select_from(AuditEvent).where(AuditEvent.id <= last.id)
    )
    session.add(
        AuditCheckpoint(
            created_at=now,
            last_event_id=last.id,
            last_entry_hash=last.entry_hash,
            events_removed=int(removed or 0),
        )
    )
    await session.flush()
    return await _count(session, delete(AuditEvent).where(AuditEvent.id <= last.id))


# --- re-sealing after a key-encryption-key rotation -------------------------------------------
@dataclass(frozen=True)
class SealedColumn:
    """A column holding values sealed under the key-encryption key, and how to find its rows."""

    table: str
    key: str
    """The primary key: batches walk it in order."""
    column: str
    citizen_id: bool
    """Sealed by `sealing.CitizenIdKeys` (``<kid>.<…>``); otherwise a JWE (`KeyEncryptionKeys`)."""

    @property
    def name(self) -> str:
        return f"{self.table}.{self.column}"


KEK_SEALED = (
    SealedColumn("signing_keys", "kid", "private_jwk_encrypted", citizen_id=False),
    SealedColumn("staff_users", "id", "totp_secret_sealed", citizen_id=False),
    SealedColumn("browser_sessions", "session_hash", "vneid_id_token_sealed", citizen_id=False),
    SealedColumn("accounts", "id", "citizen_id_sealed", citizen_id=True),
    SealedColumn("federated_links", "id", "citizen_id_sealed", citizen_id=True),
    SealedColumn("review_cases", "id", "citizen_id_sealed", citizen_id=True),
)
"""Every column holding a value sealed under the key-encryption key: `keys rotate-kek` re-seals
each (a new sealed column is added here)."""


@dataclass
class Resealed:
    rows: dict[str, int]


async def reseal_under_current_key(
    sessions_of: async_sessionmaker[AsyncSession],
    citizen_ids: CitizenIdKeys,
    secrets: KeyEncryptionKeys,
    *,
    columns: tuple[SealedColumn, ...] = KEK_SEALED,
    batch: int = 1_000,
    progress: Callable[[str, int, int], None] | None = None,
) -> Resealed:
    """Re-seal, under the current key-encryption key, every value sealed under another one.

    Resumable: every sealed value names the key that sealed it, so what is left is found in
    SQL (values not starting with the current key's prefix), and a run cut short is finished by
    running it again. No downtime: each batch is its own short transaction, and each row is
    replaced only if it still holds what was read (a compare-and-set), so logins and links
    written meanwhile are never overwritten. The blind index does not change (its key is not
    the KEK). `progress(column, done, left_at_start)` after each batch."""
    done: dict[str, int] = {}
    for sealed in columns:
        table: Table = sql_table(sealed.table, column(sealed.key), column(sealed.column))  # type: ignore[assignment]
        key, value = table.c[sealed.key], table.c[sealed.column]
        prefix = f"{citizen_ids.current_kid}." if sealed.citizen_id else secrets.sealed_prefix
        # LIKE's wildcards: neither a key id (hex) nor a JWE header (base64url) holds % or _.
        left = (value.is_not(None), value.not_like(prefix + "%"))
        async with sessions_of() as session:
            left_at_start = int(await session.scalar(select(func.count()).where(*left)) or 0)
        done[sealed.name], last = 0, None
        while True:
            async with sessions_of.begin() as session:
                after = () if last is None else (key > last,)
                rows = (
                    await session.execute(
                        select(key, value).where(*left, *after).order_by(key).limit(batch)
                    )
                ).all()
                for row_key, old in rows:
                    if sealed.citizen_id:
                        new = citizen_ids.seal(citizen_ids.open(old))
                    else:
                        new = secrets.seal(secrets.open(old, f"{sealed.name} {row_key}"))
                    result = await session.execute(
                        update(table).where(key == row_key, value == old).values({value: new})
                    )
                    done[sealed.name] += int(result.rowcount or 0)  # type: ignore[attr-defined]
            if progress is not None:
                progress(sealed.name, done[sealed.name], left_at_start)
            if len(rows) < batch:
                break
            last = rows[-1][0]
    return Resealed(done)


# --- re-indexing citizen IDs after a blind-index key rotation --------------------------------
INDEXED_TABLES = ("accounts", "review_cases")
"""Every table with a `citizen_id_index` column (next to its `citizen_id_sealed`)."""
TIES: Table = AuditEventPerson.__table__  # type: ignore[assignment]
"""The audit events' ties to a person, re-indexed along with the rows above."""


async def reindex_citizen_ids(
    sessions_of: async_sessionmaker[AsyncSession],
    keys: CitizenIdKeys,
    *,
    batch: int = 1_000,
    progress: Callable[[str, int, int], None] | None = None,
) -> Resealed:
    """Write every row's blind index under the current index key, the rows still indexed under
    a previous key (`VSSID_BLIND_INDEX_PREVIOUS_KEYS`) found meanwhile by `has_blind_index`.

    Each batch is its own short transaction and each row is rewritten only if it still holds
    what was read (a compare-and-set); a run cut short is finished by running it again (it reads
    every row, rewrites only what is left). `progress(table, read, rewritten)` after each batch.

    The audit events tied to a person (`AuditEventPerson`) hold no citizen ID to re-index from:
    each row's citizen ID moves theirs from its index under a previous key to the current one.
    So the ties of a person with an account or a review case move; those of a person with
    neither (a login refused for want of an account) are found only while the previous key is
    configured.
    """
    done: dict[str, int] = {}
    for name in INDEXED_TABLES:
        rows_of: Table = sql_table(  # type: ignore[assignment]
            name, column("id"), column("citizen_id_sealed"), column("citizen_id_index")
        )
        key, sealed, index = rows_of.c.id, rows_of.c.citizen_id_sealed, rows_of.c.citizen_id_index
        done[name], read, last = 0, 0, 0
        while True:
            async with sessions_of.begin() as session:
                rows = (
                    await session.execute(
                        select(key, sealed, index)
                        .where(key > last, sealed.is_not(None))
                        .order_by(key)
                        .limit(batch)
                    )
                ).all()
                ties: dict[str, str] = {}
                for row_id, citizen_id_sealed, old in rows:
                    new, *previous = keys.indexes(keys.open(citizen_id_sealed))
                    ties.update(dict.fromkeys({*previous, old} - {new}, new))
                    if new == old:
                        continue
                    result = await session.execute(
                        update(rows_of)
                        .where(key == row_id, index == old, sealed == citizen_id_sealed)
                        .values(citizen_id_index=new)
                    )
                    done[name] += int(result.rowcount or 0)  # type: ignore[attr-defined]
                if ties:  # a Core executemany: one statement, every pair
                    await session.execute(
                        update(TIES)
                        .where(TIES.c.citizen_id_index == bindparam("stale"))
                        .values(citizen_id_index=bindparam("current")),
                        [{"stale": stale, "current": current} for stale, current in ties.items()],
                    )
            read += len(rows)
            if progress is not None:
                progress(name, read, done[name])
            if len(rows) < batch:
                break
            last = rows[-1][0]
    return Resealed(done)
