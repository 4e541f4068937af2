"""`vssid-broker purge`, `keys rotate-kek`/`keys reseal` and `keys reindex-citizen-ids`: work
across the domains.

Purge deletes every row past the end of its use or its retention period. Each domain says what
has expired (its own `purge_expired`); this is the one list of them and the retention table
of docs/privacy.md, so a new kind of row is purged by adding it here, not by remembering a
second command. Each purge is itself an audit event.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Table,
    bindparam,
    case,
    column,
    delete,
    func,
    select,
    tuple_,
    update,
)
from sqlalchemy import table as sql_table
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vssid_broker.accounts.models import ACCOUNT_CITIZEN_ID
from vssid_broker.admin import console_sessions
from vssid_broker.admin.models import STAFF_TOTP_SECRET
from vssid_broker.audit import service as audit
from vssid_broker.audit.events import AuditEventType
from vssid_broker.audit.models import AuditCheckpoint, AuditEvent, AuditEventPerson
from vssid_broker.config import Settings
from vssid_broker.federation import transactions
from vssid_broker.linking.models import (
    CASE_CITIZEN_ID,
    LINK_CITIZEN_ID,
    OPEN_STATUSES,
    LinkConsent,
    ReviewCase,
)
from vssid_broker.requests import service as agency_requests
from vssid_broker.sealing import CitizenIdKeys, SealedPlace, SealedValueRefused, is_bound
from vssid_broker.sessions import service as sessions
from vssid_broker.sessions.keys import KeyEncryptionKeys
from vssid_broker.sessions.models import SESSION_VNEID_ID_TOKEN, SIGNING_KEY_PRIVATE_JWK


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


# --- re-sealing: after a key-encryption-key rotation, and to bind unbound values ----------------
@dataclass(frozen=True)
class SealedColumn:
    """A column holding values sealed under the key-encryption key, and how to find its rows."""

    place: SealedPlace
    """The table and column, and the owner columns each value is bound to."""
    key: str
    """The primary key: batches walk it in order."""
    citizen_id: bool
    """Sealed by `sealing.CitizenIdKeys`; otherwise by `KeyEncryptionKeys` (a secret)."""
    index: str | None = None
    """The row's blind index of the citizen ID: an unbound value is bound only if it agrees."""

    @property
    def table(self) -> str:
        return self.place.table

    @property
    def column(self) -> str:
        return self.place.column

    @property
    def name(self) -> str:
        return self.place.name


KEK_SEALED = (
    SealedColumn(SIGNING_KEY_PRIVATE_JWK, "kid", citizen_id=False),
    SealedColumn(STAFF_TOTP_SECRET, "id", citizen_id=False),
    SealedColumn(SESSION_VNEID_ID_TOKEN, "session_hash", citizen_id=False),
    SealedColumn(ACCOUNT_CITIZEN_ID, "id", citizen_id=True, index="citizen_id_index"),
    SealedColumn(LINK_CITIZEN_ID, "id", citizen_id=True),
    SealedColumn(CASE_CITIZEN_ID, "id", citizen_id=True, index="citizen_id_index"),
)
"""Every column holding a value sealed under the key-encryption key: `keys rotate-kek` re-seals
each (a new sealed column is added here)."""


@dataclass
class Resealed:
    rows: dict[str, int]
    refused: dict[str, list[str]] = field(default_factory=dict)
    """By column, the keys of rows whose value does not open for its row (copied there from
    another row, column or table, or altered): left as they are, for the operator."""


async def reseal_under_current_key(
    sessions_of: async_sessionmaker[AsyncSession],
    citizen_ids: CitizenIdKeys,
    secrets: KeyEncryptionKeys,
    *,
    columns: tuple[SealedColumn, ...] = KEK_SEALED,
    batch: int = 1_000,
    progress: Callable[[str, int, int], None] | None = None,
) -> Resealed:
    """Re-seal, under the current key-encryption key and bound to its row, every value sealed
    under another key or before values were bound (`keys rotate-kek`, `keys reseal`).

    Resumable: a value sealed this way starts with the current key's bound prefix, so what is
    left is found in SQL (values not starting with it), and a run cut short is finished by
    running it again. No downtime: each batch is its own short transaction, and each row is
    replaced only if it still holds what was read (a compare-and-set), so logins and links
    written meanwhile are never overwritten. The cost per value is one open and one seal, as
    before binding: the owner columns come with the batch's one query.

    A value that does not open for its row is refused (`Resealed.refused`), never re-sealed: a
    copied value is not laundered into a bound one. An unbound citizen ID is also refused where
    its row's blind index names another ID. The blind index does not change (its key is not the
    KEK). `progress(column, done, left_at_start)` after each batch."""
    citizen_ids, secrets = citizen_ids.for_resealing(), secrets.for_resealing()
    done: dict[str, int] = {}
    refused: dict[str, list[str]] = {}
    for sealed in columns:
        place = sealed.place
        extra = [sealed.index] if sealed.index else []
        table: Table = sql_table(  # type: ignore[assignment]
            place.table,
            *(column(name) for name in [sealed.key, place.column, *place.owner, *extra]),
        )
        key, value = table.c[sealed.key], table.c[place.column]
        owners = [table.c[name] for name in place.owner]
        prefix = citizen_ids.current_prefix if sealed.citizen_id else secrets.sealed_prefix
        # LIKE's wildcards: neither a key id (hex) nor the version marker holds % or _.
        left = (value.is_not(None), value.not_like(prefix + "%"))
        async with sessions_of() as session:
            left_at_start = int(await session.scalar(select(func.count()).where(*left)) or 0)
        done[sealed.name], refused[sealed.name], last = 0, [], None
        while True:
            async with sessions_of.begin() as session:
                after = () if last is None else (key > last,)
                rows = (
                    await session.execute(
                        select(key, value, *owners, *(table.c[name] for name in extra))
                        .where(*left, *after)
                        .order_by(key)
                        .limit(batch)
                    )
                ).all()
                changes: list[tuple[Any, Any, str]] = []
                for row in rows:
                    row_key, old = row[0], row[1]
                    binding = place.of(*row[2 : 2 + len(owners)])
                    try:
                        if sealed.citizen_id:
                            citizen_id = citizen_ids.open(old, binding)
                            if extra and not is_bound(old):
                                _require_indexed(citizen_ids, citizen_id, row[-1], place)
                            new = citizen_ids.seal(citizen_id, binding)
                        else:
                            secret = secrets.open(old, binding, f"{sealed.name} {row_key}")
                            new = secrets.seal(secret, binding)
                    except SealedValueRefused:
                        refused[sealed.name].append(str(row_key))
                        continue
                    changes.append((row_key, old, new))
                done[sealed.name] += await compare_and_set(session, table, key, value, changes)
            if progress is not None:
                progress(sealed.name, done[sealed.name], left_at_start)
            if len(rows) < batch:
                break
            last = rows[-1][0]
    return Resealed(done, {name: row_keys for name, row_keys in refused.items() if row_keys})


CAS_ROWS = 2_000
"""Rows per compare-and-set statement: four parameters each, under the 32,767 a statement takes
on PostgreSQL (asyncpg) and SQLite."""


async def compare_and_set(
    session: AsyncSession,
    table: Table,
    key: ColumnElement[Any],
    target: ColumnElement[Any],
    changes: list[tuple[Any, ...]],
    unchanged: ColumnElement[Any] | None = None,
) -> int:
    """Set `target` of each row `(key, old, new[, unchanged's value])` to `new` where it still
    holds `old` (and `unchanged` still holds what was read): one statement for many rows, not a
    round trip each. A row written meanwhile keeps what it holds. How many rows were set."""
    done = 0
    for start in range(0, len(changes), CAS_ROWS):
        part = changes[start : start + CAS_ROWS]
        read = [key, target, *([unchanged] if unchanged is not None else [])]
        held = [(change[0], change[1], *change[3:]) for change in part]
        result = await session.execute(
            update(table)
            # The keys alone first: what an index finds (the pairs alone would be a filter
            # over every row of the table).
            .where(key.in_([change[0] for change in part]), tuple_(*read).in_(held))
            .values({target: case({change[0]: change[2] for change in part}, value=key)})
        )
        done += int(result.rowcount or 0)  # type: ignore[attr-defined]
    return done


def _require_indexed(keys: CitizenIdKeys, citizen_id: str, index: str, place: SealedPlace) -> None:
    """An unbound value is the row's own only if the row's blind index is that ID's: a value
    copied from another row (before binding) shows as a disagreement, and is not bound here."""
    if index not in keys.indexes(citizen_id):
        raise SealedValueRefused(place)


# --- re-indexing citizen IDs after a blind-index key rotation --------------------------------
INDEXED = (ACCOUNT_CITIZEN_ID, CASE_CITIZEN_ID)
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
    every row, rewrites only what is left). A row whose sealed ID does not open for it is left
    alone and reported (`Resealed.refused`). `progress(table, read, rewritten)` after each batch.

    The audit events tied to a person (`AuditEventPerson`) hold no citizen ID to re-index from:
    each row's citizen ID moves theirs from its index under a previous key to the current one.
    So the ties of a person with an account or a review case move; those of a person with
    neither (a login refused for want of an account) are found only while the previous key is
    configured.
    """
    keys = keys.for_resealing()
    done: dict[str, int] = {}
    refused: dict[str, list[str]] = {}
    for place in INDEXED:
        name = place.table
        rows_of: Table = sql_table(  # type: ignore[assignment]
            name, column("id"), column(place.column), column("citizen_id_index"),
            *(column(owner) for owner in place.owner),
        )  # fmt: skip
        key, sealed, index = rows_of.c.id, rows_of.c[place.column], rows_of.c.citizen_id_index
        owners = [rows_of.c[owner] for owner in place.owner]
        done[name], refused[name], read, last = 0, [], 0, 0
        while True:
            async with sessions_of.begin() as session:
                rows = (
                    await session.execute(
                        select(key, sealed, index, *owners)
                        .where(key > last, sealed.is_not(None))
                        .order_by(key)
                        .limit(batch)
                    )
                ).all()
                ties: dict[str, str] = {}
                changes: list[tuple[Any, ...]] = []
                for row_id, citizen_id_sealed, old, *owner in rows:
                    try:
                        citizen_id = keys.open(citizen_id_sealed, place.of(*owner))
                    except SealedValueRefused:
                        refused[name].append(str(row_id))
                        continue
                    new, *previous = keys.indexes(citizen_id)
                    ties.update(dict.fromkeys({*previous, old} - {new}, new))
                    if new != old:
                        changes.append((row_id, old, new, citizen_id_sealed))
                done[name] += await compare_and_set(session, rows_of, key, index, changes, sealed)
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
    return Resealed(done, {name: row_keys for name, row_keys in refused.items() if row_keys})
