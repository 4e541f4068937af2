"""Signed-in browsers, app sessions and review cases in bulk, beside the bulk accounts
(`bulk.seed_accounts`): what a database in use holds besides its accounts, so that the key
rotations (`keys rotate-kek`, `keys reindex-citizen-ids`) are measured and tested on every
table that holds a sealed value, at scale.

Each browser session holds a sealed VNeID ID token (bound to its row, as a login seals it), each
app session is a refresh-token family of one live token, and each review case a pending case of a
VNeID identity with its sealed citizen ID and blind index. They are made in the order of the
accounts' ids, for the first accounts: the sessions' tokens are random, so nobody can use them;
they are there to be re-sealed, re-indexed and read back.

On PostgreSQL the rows go in with COPY, elsewhere with batched INSERTs; one transaction per chunk.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import column, insert, select
from sqlalchemy import table as sql_table
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from vssid_broker import sealing
from vssid_broker.accounts.models import Account
from vssid_broker.linking.models import CASE_CITIZEN_ID, ReviewReason
from vssid_broker.sessions.keys import KeyEncryptionKeys
from vssid_broker.sessions.models import SESSION_VNEID_ID_TOKEN
from vssid_broker.vneid_sim.citizens import PROVINCE_CODES, century_gender_digit

CHUNK = 20_000

BROWSER_COLUMNS = (
    "session_hash", "account_id", "acr", "auth_time", "created_at", "expires_at", "public_id",
    "last_used_at", "csrf_token", "user_agent", "vneid_id_token_sealed", "vneid_sid",
)  # fmt: skip
REFRESH_COLUMNS = (
    "token_hash", "family_id", "account_id", "acr", "auth_time", "issued_at", "expires_at",
    "user_agent",
)  # fmt: skip
CASE_COLUMNS = (
    "provider", "subject", "citizen_id_sealed", "citizen_id_index", "full_name", "birth_date",
    "candidate_account_ids", "reason", "status", "version", "created_at",
)  # fmt: skip
LEVEL_2 = "LoA2"


@dataclass
class SessionsAndCases:
    browser_sessions: int = 0
    app_sessions: int = 0
    review_cases: int = 0


def _hex(rng: random.Random, size: int = 32) -> str:
    return rng.randbytes(size).hex()


def _id_token(rng: random.Random) -> str:
    """Looks like a compact JWS (three base64url parts); opened only to be sealed again."""
    return ".".join(sealing.b64url(rng.randbytes(n)) for n in (36, 420, 64))


async def seed_sessions_and_cases(
    engine: AsyncEngine,
    secrets: KeyEncryptionKeys,
    *,
    browser_sessions: int,
    app_sessions: int,
    review_cases: int,
    provider: str,
    seed: int = 0,
    now: datetime | None = None,
) -> SessionsAndCases:
    """`browser_sessions` and `app_sessions` for the first accounts by id (one each, at most
    one of each kind per account), and `review_cases` pending cases of new VNeID identities.
    ID tokens are sealed under `secrets`, citizen IDs under the installed keys."""
    now = now or datetime.now(UTC)
    rng = random.Random(f"sessions-and-cases/{seed}")  # noqa: S311 - test data, not secrets
    keys = sealing.installed()
    done = SessionsAndCases()
    async with engine.connect() as connection:
        ids = list(
            await connection.scalars(
                select(Account.id)
                .where(Account.status == "active")
                .order_by(Account.id)
                .limit(max(browser_sessions, app_sessions))
            )
        )
    expires = now + timedelta(hours=8)
    for start in range(0, max(len(ids), review_cases), CHUNK):
        browsers: list[tuple[Any, ...]] = []
        for account_id in ids[start : min(start + CHUNK, browser_sessions)]:
            session_hash = _hex(rng)
            sealed = secrets.seal(_id_token(rng), SESSION_VNEID_ID_TOKEN.of(session_hash))
            browsers.append(
                (
                    session_hash, account_id, LEVEL_2, now, now, expires,
                    str(uuid.UUID(int=rng.getrandbits(128), version=4)), now, _hex(rng),
                    "seeded", sealed, _hex(rng, 8),
                )
            )  # fmt: skip
        apps = [
            (_hex(rng), str(uuid.UUID(int=rng.getrandbits(128), version=4)), account_id, LEVEL_2,
             now, now, now + timedelta(days=30), "seeded")
            for account_id in ids[start : min(start + CHUNK, app_sessions)]
        ]  # fmt: skip
        cases: list[tuple[Any, ...]] = []
        for _ in range(start, min(start + CHUNK, review_cases)):
            subject = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            born = date(1950, 1, 1) + timedelta(days=rng.randrange(20_000))
            place = rng.choice(sorted(PROVINCE_CODES))
            # Serials starting with 95: neither the generated citizens nor the bulk accounts.
            digit = century_gender_digit(born, "male")
            citizen_id = f"{place}{digit}{born.year % 100:02d}95{rng.randrange(10_000):04d}"
            cases.append(
                (
                    provider, subject, keys.seal(citizen_id, CASE_CITIZEN_ID.of(provider, subject)),
                    keys.index(citizen_id), "Nguyễn Văn Tổng Hợp", born, [],
                    ReviewReason.NAME_BIRTHDATE_MATCH.value, "pending", 1, now,
                )
            )  # fmt: skip
        async with engine.begin() as connection:
            await _write(connection, "browser_sessions", BROWSER_COLUMNS, browsers)
            await _write(connection, "refresh_tokens", REFRESH_COLUMNS, apps)
            await _write(connection, "review_cases", CASE_COLUMNS, cases)
        done.browser_sessions += len(browsers)
        done.app_sessions += len(apps)
        done.review_cases += len(cases)
    return done


async def _write(
    connection: AsyncConnection, name: str, columns: tuple[str, ...], records: list[tuple[Any, ...]]
) -> None:
    if not records:
        return
    if connection.dialect.name == "postgresql":
        raw = await connection.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        if name == "review_cases":  # COPY takes JSON as text
            records = [(*r[:6], "[]", *r[7:]) for r in records]
        await driver.copy_records_to_table(name, records=records, columns=columns)
        return
    # Untyped columns: the values are already sealed, and the sealed column's type would seal
    # them again.
    values = [dict(zip(columns, record, strict=True)) for record in records]
    if name == "review_cases":
        for value in values:
            value["candidate_account_ids"] = "[]"
    await connection.execute(insert(sql_table(name, *(column(c) for c in columns))), values)
