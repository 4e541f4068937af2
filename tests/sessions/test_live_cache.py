"""The live-session cache: what the database notifies, what the cache keeps and when it refuses
to keep it, and what a process does while its listener is gone. Real PostgreSQL, real triggers,
real LISTEN connections; the process-level behaviour is in tests/e2e/test_live_session_cache.py.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import pytest
from joserfc.jwk import KeySet
from sqlalchemy import delete, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import Stack
from tests.e2e.test_live_session_cache import (
    NO_CACHE_ON_SQLITE,
    bearer,
    cache_hits,
    claim_of,
    sign_in_app,
)
from tests.support import database
from tests.support.http import AsyncClient
from vssid_broker.accounts.models import Account
from vssid_broker.app import build_context
from vssid_broker.config import Settings
from vssid_broker.errors.tokens import InvalidAccessToken
from vssid_broker.sessions import live_cache
from vssid_broker.sessions.access_tokens import LIVE_SESSION_ACCOUNT
from vssid_broker.sessions.live_cache import (
    LISTENER_APPLICATION_NAME,
    LiveSessionCache,
    LiveSessionListener,
)
from vssid_broker.sessions.models import RefreshToken
from vssid_broker.sessions.refresh_tokens import RefreshTokens

AN_BHXH = "0112345678"


def postgresql_only(stack: Stack) -> None:
    database.postgresql_only(stack.settings.database_url, NO_CACHE_ON_SQLITE)


class HeardCache(LiveSessionCache):
    """A cache that also records the payloads its listener heard."""

    def __init__(self) -> None:
        super().__init__(size=100, max_age_seconds=60)
        self.heard: list[str] = []

    def forget(self, payload: str) -> None:
        self.heard.append(payload)
        super().forget(payload)


async def eventually(check: Callable[[], bool], seconds: float = 5) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "not within the time allowed"
        await asyncio.sleep(0.01)


@pytest.fixture
async def listening(stack: Stack, engine: AsyncEngine) -> AsyncIterator[HeardCache]:
    """A cache of this test's own with its listener connected."""
    postgresql_only(stack)
    cache = HeardCache()
    listener = LiveSessionListener(cache, engine)
    listener.start()
    await eventually(lambda: cache.listening)
    yield cache
    await listener.stop()


async def new_family(stack: Stack) -> tuple[str, int]:
    async with stack.db.begin() as session:
        account_id = await session.scalar(select(Account.id).where(Account.bhxh_code == AN_BHXH))
        assert account_id is not None
        _, family_id = await RefreshTokens(stack.settings, b"k" * 32).start_family(
            session, account_id=account_id, acr="level2", now=stack.clock()
        )
    return family_id, account_id


async def live_row(stack: Stack, family_id: str, account_id: int) -> Any:
    async with stack.db() as session:
        return (
            await session.execute(
                LIVE_SESSION_ACCOUNT, {"family": family_id, "subject": account_id}
            )
        ).first()


async def change(stack: Stack, statement: Any) -> None:
    async with stack.db.begin() as session:
        await session.execute(statement)


async def heard_for(stack: Stack, cache: HeardCache, statement: Any) -> list[str]:
    """What the database notified for `statement`, up to a marker sent after its commit."""
    cache.heard.clear()
    async with stack.db.begin() as session:
        await session.execute(statement)
    async with stack.db.begin() as session:
        await session.execute(text(f"NOTIFY {live_cache.CHANNEL}, 'marker'"))
    await eventually(lambda: "marker" in cache.heard)
    return cache.heard[: cache.heard.index("marker")]


async def test_the_database_notifies_what_the_live_session_check_reads_and_nothing_more(
    stack: Stack, listening: HeardCache
) -> None:
    family_id, account_id = await new_family(stack)
    now = stack.clock()
    newest = RefreshToken.family_id == family_id
    # A rotation marks the spent token, as on every refresh: the family stays live, no notice.
    rotated = update(RefreshToken).where(newest).values(rotated_at=now)
    assert await heard_for(stack, listening, rotated) == []
    unrotated = update(RefreshToken).where(newest).values(rotated_at=None)
    assert await heard_for(stack, listening, unrotated) == []

    revoked = update(RefreshToken).where(newest).values(revoked_at=now)
    assert await heard_for(stack, listening, revoked) == [f"f:{family_id}"]

    other_family, _ = await new_family(stack)
    deleted = delete(RefreshToken).where(RefreshToken.family_id == other_family)
    assert await heard_for(stack, listening, deleted) == [f"f:{other_family}"]

    phone = update(Account).where(Account.id == account_id).values(phone="0987654321")
    assert await heard_for(stack, listening, phone) == [f"a:{account_id}"]


async def test_a_bulk_change_is_one_notice_to_forget_everything(
    stack: Stack, listening: HeardCache
) -> None:
    _, account_id = await new_family(stack)
    async with stack.db.begin() as session:
        await session.execute(
            text(
                "INSERT INTO refresh_tokens (token_hash, family_id, account_id, acr, issued_at,"
                " expires_at) SELECT 'bulk-' || n, 'bulk-' || n, :account, 'level2', now(),"
                " now() + interval '1 day' FROM generate_series(1, 1001) AS n"
            ),
            {"account": account_id},
        )
    bulk = delete(RefreshToken).where(RefreshToken.family_id.like("bulk-%"))
    assert await heard_for(stack, listening, bulk) == ["*"]


async def test_an_answer_read_before_a_revocation_is_not_kept_once_its_notice_arrived(
    stack: Stack, listening: HeardCache
) -> None:
    family_id, account_id = await new_family(stack)
    generation = listening.generation  # taken before the query, as AccessTokens does
    row = await live_row(stack, family_id, account_id)
    assert row is not None  # live when read...
    revoked = update(RefreshToken).where(RefreshToken.family_id == family_id)
    await change(stack, revoked.values(revoked_at=stack.clock()))
    await eventually(lambda: f"f:{family_id}" in listening.heard)
    # ...revoked and notified before the reader stores it: it must not be kept.
    listening.put(family_id, account_id, row, generation)
    assert listening.get(family_id, account_id) is None and len(listening) == 0

    # Without a notice in between, the same steps keep the answer.
    live_family, _ = await new_family(stack)
    generation = listening.generation
    row = await live_row(stack, live_family, account_id)
    listening.put(live_family, account_id, row, generation)
    assert listening.get(live_family, account_id) == row


async def test_a_notice_drops_the_families_and_accounts_it_names(
    stack: Stack, listening: HeardCache
) -> None:
    first, account_id = await new_family(stack)
    second, _ = await new_family(stack)
    for family_id in (first, second):
        listening.put(
            family_id,
            account_id,
            await live_row(stack, family_id, account_id),
            listening.generation,
        )
    await change(
        stack,
        update(RefreshToken)
        .where(RefreshToken.family_id == first)
        .values(revoked_at=stack.clock()),
    )
    await eventually(lambda: listening.get(first, account_id) is None)
    assert listening.get(second, account_id) is not None
    await change(stack, update(Account).where(Account.id == account_id).values(phone="0900000000"))
    await eventually(lambda: len(listening) == 0)


async def test_every_listening_process_acknowledges_a_barrier(
    stack: Stack, engine: AsyncEngine
) -> None:
    postgresql_only(stack)
    # This test's listener and the running broker's both answer.
    cache = LiveSessionCache(size=10, max_age_seconds=60)
    listener = LiveSessionListener(cache, engine)
    listener.start()
    try:
        await eventually(lambda: cache.listening)
        assert await listener.everyone_forgot()
    finally:
        await listener.stop()
    assert not await listener.everyone_forgot()  # nobody to ask once stopped


async def test_with_its_listener_gone_the_broker_asks_the_database_and_sessions_ended_meanwhile_stay_ended(  # noqa: E501
    stack: Stack, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    postgresql_only(stack)
    cache = stack.ctx.live_sessions
    assert cache is not None
    await eventually(lambda: cache.listening)
    # Long enough to look at the broker while its listener is away.
    monkeypatch.setattr(live_cache, "RECONNECT_FIRST_SECONDS", 4.0)
    async with AsyncClient(timeout=10) as client:
        ended, kept = (
            await sign_in_app(client, stack.broker),
            await sign_in_app(client, stack.broker),
        )
        for tokens in (ended, kept, ended, kept):
            assert (
                await client.get(f"{stack.broker}/api/v1/me", headers=bearer(tokens))
            ).is_success

        async with engine.connect() as connection:
            killed = await connection.scalar(
                text(
                    "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity "
                    "WHERE application_name = :name AND datname = current_database()"
                ),
                {"name": LISTENER_APPLICATION_NAME},
            )
        assert killed == 1
        await eventually(lambda: not cache.listening)
        assert len(cache) == 0
        # Ended while nobody listens: the notice is lost, the refusal is not.
        family = update(RefreshToken).where(RefreshToken.family_id == claim_of(ended, "sid"))
        await change(stack, family.values(revoked_at=stack.clock()))
        hits = await cache_hits(client, stack.broker)
        for _ in range(3):
            me = await client.get(f"{stack.broker}/api/v1/me", headers=bearer(ended))
            assert me.status_code == 401, me.text
            me = await client.get(f"{stack.broker}/api/v1/me", headers=bearer(kept))
            assert me.status_code == 200, me.text
        assert cache.listening is False and len(cache) == 0  # every call asked the database
        assert await cache_hits(client, stack.broker) == hits

        await eventually(lambda: cache.listening, seconds=15)
        for _ in range(2):
            me = await client.get(f"{stack.broker}/api/v1/me", headers=bearer(kept))
            assert me.status_code == 200, me.text
        assert await cache_hits(client, stack.broker) == hits + 1  # remembered again
        me = await client.get(f"{stack.broker}/api/v1/me", headers=bearer(ended))
        assert me.status_code == 401, me.text


def test_the_cache_is_bounded_and_forgets_old_answers() -> None:
    cache = LiveSessionCache(size=2, max_age_seconds=0.05)
    cache.listening_started()
    row: Any = object()
    for family_id in ("a", "b", "c"):
        cache.put(family_id, 1, row, cache.generation)
    assert len(cache) == 2 and cache.get("a", 1) is None and cache.get("c", 1) is row
    time.sleep(0.06)
    assert cache.get("c", 1) is None


async def test_sqlite_and_a_zero_size_keep_no_cache(stack: Stack) -> None:
    postgres = stack.settings.database_url.startswith("postgresql")
    assert (stack.ctx.live_sessions is not None) is postgres
    off = build_context(Settings(**(stack.settings.model_dump() | {"session_cache_size": 0})))
    try:
        assert off.live_sessions is None
    finally:
        await off.engine.dispose()


async def test_the_listener_connects_like_the_pool_and_names_itself(stack: Stack) -> None:
    postgresql_only(stack)
    context = build_context(stack.settings)
    try:
        assert context.live_sessions is not None
        arguments = live_cache._asyncpg_connect_args(context.engine, None)
        assert arguments["server_settings"]["application_name"] == LISTENER_APPLICATION_NAME
        assert "prepared_statement_cache_size" not in arguments
        # Past a pooler in transaction mode, straight to the primary.
        direct = "postgresql+asyncpg://broker@primary.example:5433/vssid"
        arguments = live_cache._asyncpg_connect_args(context.engine, direct)
        assert (arguments["host"], arguments["port"]) == ("primary.example", 5433)
    finally:
        await context.engine.dispose()


async def test_a_token_checked_once_is_still_refused_once_expired_or_under_other_keys(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    postgresql_only(stack)
    async with AsyncClient(timeout=10) as client:
        raw = (await sign_in_app(client, stack.broker))["access_token"]
    context = build_context(stack.settings)
    tokens, now = context.access_tokens, stack.clock()
    try:
        async with context.autocommit() as session:
            for _ in range(2):  # checked, then remembered as checked
                assert (await tokens.verify(session, raw, now)).session_id == claim_of(
                    {"access_token": raw}, "sid"
                )
            expired = now + timedelta(seconds=stack.settings.access_token_ttl_seconds + 1)
            with pytest.raises(InvalidAccessToken):
                await tokens.verify(session, raw, expired)
            assert (await tokens.verify(session, raw, now)).account_id
            # Keys reloaded (a rotation, a retirement): nothing checked before counts.
            no_keys = KeySet([])

            async def only_no_keys(*_: object) -> KeySet:
                return no_keys

            monkeypatch.setattr(context.keys, "verification_keys", only_no_keys)
            with pytest.raises(InvalidAccessToken):
                await tokens.verify(session, raw, now)
    finally:
        await context.engine.dispose()
