"""The database goes away: every request gets an answer (503 problem+json or the Vietnamese
page, with Retry-After), the outage is a few log lines instead of one per request, and the
broker recovers by itself when the database is back."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool

from tests.conftest import Stack
from tests.sessions.test_refresh import signed_in_app
from tests.support.http import AsyncClient
from vssid_broker import metrics
from vssid_broker.db import (
    autocommit_session_factory,
    count_pool_use,
    create_engine,
    database_unreachable,
    session_factory,
)

UNREACHABLE = "postgresql+asyncpg://postgres@127.0.0.1:9/nowhere"
"""Nothing listens on the discard port: every connection is refused."""


@contextlib.asynccontextmanager
async def database_gone(stack: Stack) -> AsyncIterator[None]:
    """The running broker's database is unreachable inside the block."""
    ctx = stack.ctx
    kept = ctx.engine, ctx.db, ctx.autocommit
    gone = create_engine(UNREACHABLE)
    ctx.engine, ctx.db = gone, session_factory(gone)
    ctx.autocommit = autocommit_session_factory(gone)
    try:
        yield
    finally:
        ctx.engine, ctx.db, ctx.autocommit = kept
        await gone.dispose()


@contextlib.asynccontextmanager
async def database_swapped(stack: Stack, url: str) -> AsyncIterator[None]:
    """The running broker talks to the database at `url` inside the block."""
    ctx = stack.ctx
    kept = ctx.engine, ctx.db, ctx.autocommit
    other = create_engine(url)
    ctx.engine, ctx.db = other, session_factory(other)
    ctx.autocommit = autocommit_session_factory(other)
    try:
        yield
    finally:
        ctx.engine, ctx.db, ctx.autocommit = kept
        await other.dispose()


def postgres_error_response(sqlstate: str, message: str) -> bytes:
    """A backend ErrorResponse message of the PostgreSQL wire protocol (protocol 3.0, §55.7)."""
    fields = b"".join(
        code + value.encode() + b"\0"
        for code, value in ((b"S", "FATAL"), (b"V", "FATAL"), (b"C", sqlstate), (b"M", message))
    )
    body = fields + b"\0"
    return b"E" + struct.pack("!I", len(body) + 4) + body


@contextlib.asynccontextmanager
async def postgres_starting_up() -> AsyncIterator[str]:
    """A server on a free port that answers every connection the way PostgreSQL does while it
    starts up or recovers: after the startup packet, FATAL 57P03 "the database system is
    starting up" (what asyncpg raises as `CannotConnectNowError`). Yields its URL."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                length = struct.unpack("!I", await reader.readexactly(4))[0]
                packet = await reader.readexactly(length - 4)
                if packet[:4] == struct.pack("!I", 80877103):  # SSLRequest: no TLS here
                    writer.write(b"N")
                    await writer.drain()
                    continue
                writer.write(postgres_error_response("57P03", "the database system is starting up"))
                await writer.drain()
                break
        except asyncio.IncompleteReadError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:{port}/starting"
    finally:
        server.close()
        await server.wait_closed()


def outage_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "database unreachable" in r.getMessage()]


async def test_without_a_database_requests_are_answered_503_and_logged_once(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    async with AsyncClient() as app:
        tokens = await signed_in_app(app, stack)
        bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
        caplog.set_level(logging.INFO)
        async with database_gone(stack):
            answers = await asyncio.gather(
                *[app.get(f"{stack.broker}/api/v1/me", headers=bearer) for _ in range(20)],
                app.post(
                    f"{stack.broker}/api/v1/auth/token",
                    data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
                ),
            )
            page = await app.get(f"{stack.broker}/", headers={"Cookie": "vssid_session=a-session"})
            ready = await app.get(f"{stack.broker}/readyz")
            scraped = await app.get(f"{stack.broker}/metrics")
            alive = await app.get(f"{stack.broker}/healthz")
        for answer in answers:
            assert answer.status_code == 503, answer.text
            assert answer.headers["content-type"] == "application/problem+json"
            assert answer.json()["code"] == "service_unavailable"
            assert int(answer.headers["retry-after"]) >= 1
        assert page.status_code == 503 and "tạm thời gián đoạn" in page.text
        assert page.headers["retry-after"]
        # The pod stays in its Service (every pod shares the outage; people get the page
        # above, not the ingress's), says what it cannot reach, and Prometheus still scrapes.
        assert ready.status_code == 200 and ready.json()["database"] == "unreachable"
        assert alive.status_code == 200
        assert scraped.status_code == 200
        assert 'vssid_dependency_up{dependency="database"} 0.0' in scraped.text
        # 21 refusals, at most one line: the broker logs an outage once per interval, and an
        # earlier outage test on the same broker within the interval may have said it already.
        assert len(outage_lines(caplog)) <= 1

        # Back: the same token works, nothing was lost.
        assert (await app.get(f"{stack.broker}/api/v1/me", headers=bearer)).status_code == 200
        assert (await app.get(f"{stack.broker}/readyz")).json()["database"] == "ok"
        scraped = await app.get(f"{stack.broker}/metrics")
        assert 'vssid_dependency_up{dependency="database"} 1.0' in scraped.text


async def test_connections_killed_during_a_burst_get_answers_and_the_broker_recovers(
    stack: Stack, caplog: pytest.LogCaptureFixture, engine: AsyncEngine
) -> None:
    if not stack.settings.database_url.startswith("postgresql"):
        pytest.skip("pg_terminate_backend: the PostgreSQL run of the suite")
    caplog.set_level(logging.INFO)
    async with AsyncClient(timeout=20) as app:
        tokens = await signed_in_app(app, stack)
        bearer = {"Authorization": f"Bearer {tokens['access_token']}"}

        async def burst() -> list[httpx.Response]:
            return list(
                await asyncio.gather(
                    *[app.get(f"{stack.broker}/api/v1/me", headers=bearer) for _ in range(60)]
                )
            )

        killer = create_engine(stack.settings.database_url)
        try:
            await burst()  # the broker's pool is full of live connections now
            running = asyncio.create_task(burst())
            await asyncio.sleep(0.05)
            async with killer.connect() as connection:
                killed = await connection.scalar(
                    text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                )
            answers = await running + await burst()
        finally:
            await killer.dispose()
            await engine.dispose()  # the suite's own pooled connections were killed too
        assert killed and killed > 0
        assert {a.status_code for a in answers} <= {200, 503}
        for refused in (a for a in answers if a.status_code == 503):
            assert refused.json()["code"] == "service_unavailable"
            assert refused.headers["retry-after"]
        # Recovered by itself: every request after the outage succeeds.
        after = await burst()
        assert [a.status_code for a in after] == [200] * len(after)
    assert len(outage_lines(caplog)) <= 2
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR and r.exc_info]


async def test_while_postgresql_starts_up_requests_get_503_not_500(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    """A restart's first seconds are an outage like any other: 503 with Retry-After, one log
    line, no traceback per request."""
    async with AsyncClient() as app:
        tokens = await signed_in_app(app, stack)
        bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
        caplog.set_level(logging.INFO)
        async with postgres_starting_up() as url, database_swapped(stack, url):
            answers = await asyncio.gather(
                *[app.get(f"{stack.broker}/api/v1/me", headers=bearer) for _ in range(10)]
            )
            page = await app.get(f"{stack.broker}/", headers={"Cookie": "vssid_session=a-session"})
        assert [a.status_code for a in answers] == [503] * 10
        assert {a.json()["code"] for a in answers} == {"service_unavailable"}
        assert page.status_code == 503 and "tạm thời gián đoạn" in page.text
        # Logged once per interval by the app (an earlier test's outage may hold the slot).
        assert len(outage_lines(caplog)) <= 1
        assert not [r for r in caplog.records if r.exc_info]
        assert (await app.get(f"{stack.broker}/api/v1/me", headers=bearer)).status_code == 200


# --- the pool gauge through an outage -----------------------------------------------------------
def connections_in_use() -> float:
    """`vssid_db_pool_connections_in_use` as `/metrics` renders it in this process."""
    [family] = [
        found
        for found in text_string_to_metric_families(metrics.render().decode())
        if found.name == "vssid_db_pool_connections_in_use"
    ]
    return sum(sample.value for sample in family.samples)


class FlakyDatabase:
    """An engine on the suite's database, which can be made to drop the engine's connections and
    refuse new ones (`down`): each new connection then goes where nothing answers (PostgreSQL:
    a closed port; SQLite: a file in a directory that does not exist). PostgreSQL's backends
    are killed for real; SQLite has no server, so its pooled connections are invalidated, what
    SQLAlchemy does to a connection the database dropped."""

    def __init__(self, database_url: str, *, pre_ping: bool) -> None:
        self.database_url = database_url
        self.engine = create_engine(database_url, pool_size=4, max_overflow=2, pre_ping=pre_ping)
        self.refusing = False
        self._tag = f"pool-gauge-{uuid.uuid4().hex[:12]}"
        event.listen(self.engine.sync_engine, "do_connect", self._connect_where)

    def _connect_where(
        self, dialect: Any, _record: object, cargs: list[Any], cparams: dict[str, Any]
    ) -> None:
        if dialect.name == "postgresql":
            cparams["server_settings"] = {"application_name": self._tag}
            if self.refusing:
                cparams["port"] = 9  # discard: nothing listens
        elif self.refusing:
            cargs[0] = "/nonexistent-directory/vssid.db"

    @contextlib.asynccontextmanager
    async def down(self) -> AsyncIterator[None]:
        self.refusing = True
        try:
            if self.engine.dialect.name == "postgresql":
                killer = create_engine(self.database_url)
                try:
                    async with killer.connect() as connection:
                        killed = await connection.scalar(
                            text(
                                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                "WHERE application_name = :tag"
                            ),
                            {"tag": self._tag},
                        )
                    assert killed
                finally:
                    await killer.dispose()
            else:
                pool = self.engine.sync_engine.pool
                assert isinstance(pool, QueuePool)
                idle = [await self.engine.connect() for _ in range(pool.checkedin())]
                for connection in idle:
                    await connection.invalidate()
                    await connection.close()
            yield
        finally:
            self.refusing = False


@pytest.mark.parametrize("pre_ping", [False, True], ids=["no-pre-ping", "pre-ping"])
async def test_the_pool_gauge_counts_what_is_in_use_through_an_outage_and_after(
    database_url: str, pre_ping: bool
) -> None:
    flaky = FlakyDatabase(database_url, pre_ping=pre_ping)
    engine = flaky.engine
    count_pool_use(engine)
    pool = engine.sync_engine.pool
    assert isinstance(pool, QueuePool)
    elsewhere = connections_in_use()  # other engines of this process (the running broker's)
    try:
        async with contextlib.AsyncExitStack() as held:  # the pool fills with live connections
            for _ in range(4):
                await held.enter_async_context(engine.connect())  # a checkout, connected
            assert connections_in_use() == elsewhere + 4
        assert connections_in_use() == elsewhere

        async with flaky.down():
            for _ in range(8):  # requests during the outage: each fails to get a connection
                with pytest.raises(Exception) as failed:
                    async with engine.connect() as connection:
                        await connection.execute(text("SELECT 1"))
                assert database_unreachable(failed.value)
                assert connections_in_use() == elsewhere >= 0

        # Back: the gauge says what the pool itself says is in use.
        async with contextlib.AsyncExitStack() as held:
            for _ in range(3):
                await held.enter_async_context(engine.connect())
            assert pool.checkedout() == 3
            assert connections_in_use() == elsewhere + 3
        assert pool.checkedout() == 0
        assert connections_in_use() == elsewhere
    finally:
        await engine.dispose()
