"""Database engine, sessions and the declarative base shared by every domain's models."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import BigInteger, DateTime, Integer, MetaData, event, exc
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import QueuePool
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.types import TypeDecorator

from vssid_broker import metrics

if TYPE_CHECKING:
    from vssid_broker.config import Settings

# Stable constraint names make migrations reproducible on SQLite and PostgreSQL alike.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# 64-bit ids in PostgreSQL (32 million accounts, many more audit rows); SQLite only
# auto-increments a column declared exactly INTEGER.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no zone of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> datetime:
    return datetime.now(UTC)


HIDE_PARAMETERS = True
"""Query parameters never appear in the engine's errors or its echo: they are citizen IDs,
names and token hashes, and errors end up in logs (tests/test_log_privacy.py)."""


def create_engine(
    database_url: str, *, pool_size: int = 10, max_overflow: int = 20, pre_ping: bool = False
) -> AsyncEngine:
    if database_url.startswith("sqlite"):
        _ensure_sqlite_directory(database_url)
        engine = create_async_engine(
            database_url, connect_args={"timeout": 30}, hide_parameters=HIDE_PARAMETERS
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        return engine
    try:
        return create_async_engine(
            database_url,
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_pre_ping=pre_ping,
            hide_parameters=HIDE_PARAMETERS,
        )
    except ModuleNotFoundError as missing:
        # The PostgreSQL driver is an extra: the embedded SQLite default does not need it.
        if missing.name == "asyncpg":
            raise DriverMissing(
                "PostgreSQL needs its driver: pip install 'vssid-broker[postgresql]'"
            ) from missing
        raise


class DriverMissing(RuntimeError):
    """The database URL names a driver that is not installed."""


class _ConnectionsInUse:
    """The connections checked out of this process's serving pools, as the set of their pool
    records, which the gauge `vssid_db_pool_connections_in_use` reports the size of.

    A set, not a count of events: SQLAlchemy checks a connection record back in without having
    checked it out when connecting fails (every checkout during an outage, once the pool's
    connections were dropped), so adding one per checkout and taking one per checkin drifted
    down by one per failed connection (-234 after outages). A record is in the set exactly
    while its last event was a checkout; an unpaired checkin removes nothing. The lock keeps
    the set and the gauge in step across the threads engines may run in."""

    def __init__(self) -> None:
        self._records: set[object] = set()
        self._lock = threading.Lock()

    def checked_out(self, record: object) -> None:
        with self._lock:
            self._records.add(record)
            metrics.DB_POOL_IN_USE.set(len(self._records))

    def returned(self, record: object) -> None:
        with self._lock:
            self._records.discard(record)
            metrics.DB_POOL_IN_USE.set(len(self._records))


_in_use = _ConnectionsInUse()


def count_pool_use(engine: AsyncEngine) -> None:
    """Export how full this engine's pool is (the serving processes' engines, not commands')."""
    pool = engine.sync_engine.pool
    if not isinstance(pool, QueuePool):
        return
    capacity = pool.size() + max(pool._max_overflow, 0)
    metrics.DB_POOL_CAPACITY.inc(capacity)

    def checked_out(_connection: object, record: object, _proxy: object) -> None:
        _in_use.checked_out(record)
        if pool.checkedout() >= capacity:
            metrics.DB_POOL_EXHAUSTED.inc()

    def returned(_connection: object, record: object) -> None:  # checked in, or detached
        _in_use.returned(record)

    def closed(*_: object) -> None:  # after dispose(): this pool no longer counts
        metrics.DB_POOL_CAPACITY.dec(capacity)

    event.listen(pool, "checkout", checked_out)
    event.listen(pool, "checkin", returned)
    event.listen(pool, "detach", returned)
    event.listen(engine.sync_engine, "engine_disposed", closed)


def _ensure_sqlite_directory(database_url: str) -> None:
    path = database_url.split("///", 1)[-1]
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    # The driver's own transaction handling only begins before a write, so a SAVEPOINT taken
    # before any write would start (and its release commit) the transaction. Turn it off and
    # let SQLAlchemy say BEGIN, so a transaction covers everything from its first statement.
    dbapi_connection.isolation_level = None  # type: ignore[attr-defined]
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    # WAL lets readers and one writer work side by side; foreign keys are off by default.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    # IMMEDIATE takes the write lock up front: a read-then-write transaction cannot fail
    # half-way on lock upgrade, it waits (busy_timeout) instead. SQLite is the one-process
    # embedded mode, so serialising writers costs nothing that matters there.
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def autocommit_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions for reads and single-statement writes: on PostgreSQL each statement commits on
    its own (autocommit), saving the BEGIN and COMMIT round trips around it.

    SQLite keeps ordinary sessions: switching a pooled connection to autocommit and back would
    hand the driver its own transaction handling again (see `_sqlite_pragmas`)."""
    if engine.dialect.name == "sqlite":
        return session_factory(engine)
    return session_factory(engine.execution_options(isolation_level="AUTOCOMMIT"))


@dataclass(frozen=True)
class Database:
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]


@asynccontextmanager
async def database(settings: Settings, *, current_schema: bool = True) -> AsyncIterator[Database]:
    """For a command: sessions on the configured database, its engine disposed at the end.
    With `current_schema`, refuse (with one clear line) a database that is not migrated."""
    from vssid_broker.schema import require_current_schema

    engine = create_engine(settings.database_url)
    try:
        if current_schema:
            await require_current_schema(engine)
        yield Database(engine, session_factory(engine))
    finally:
        await engine.dispose()


__all__ = [
    "Base",
    "BigId",
    "UTCDateTime",
    "autocommit_session_factory",
    "create_engine",
    "database",
    "session_factory",
    "utcnow",
]


SCHEMA_MISTAKES = ("no such table", "no such column", "has no column", "syntax error")
SERVER_NOT_SERVING_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53300"})
"""PostgreSQL refusing work for now, not for what was asked: an administrator's or a crash's
shutdown, the server starting up or recovering ("the database system is starting up",
asyncpg's `CannotConnectNowError`), no connection slot free. Class 08 (connection exceptions)
counts too. Without these, a restart's first seconds were 500s with a traceback each."""


def database_unreachable(error: BaseException) -> bool:
    """True for an error that says the database cannot be reached right now (refused, dropped
    or killed connections, an exhausted pool, SQLite's lock wait running out), as opposed to
    an error in what was asked of it. The request may be retried; nothing was committed."""
    if isinstance(error, exc.TimeoutError):  # no pooled connection came free in time
        return True
    if isinstance(error, exc.PendingRollbackError):  # the connection was lost mid-transaction
        return True
    if isinstance(error, exc.DBAPIError):
        if error.connection_invalidated or isinstance(error, exc.InterfaceError):
            return True
        sqlstate = sqlstate_of(error)
        if sqlstate is not None and (
            sqlstate in SERVER_NOT_SERVING_SQLSTATES or sqlstate.startswith("08")
        ):
            return True
        # asyncpg's protocol state broken by a connection killed under it.
        if type(error.orig).__name__ == "InternalClientError":
            return True
        # SQLite says "operational" of a schema mistake too ("no such table"): that is a bug
        # to see in full (500 and its traceback), not an outage to retry.
        return isinstance(error, exc.OperationalError) and not any(
            mistake in str(error.orig).lower() for mistake in SCHEMA_MISTAKES
        )
    return isinstance(error, OSError)  # refused or reset before SQLAlchemy could wrap it


def sqlstate_of(error: exc.DBAPIError) -> str | None:
    """PostgreSQL's SQLSTATE of a wrapped driver error (None on SQLite)."""
    return getattr(error.orig, "sqlstate", None) or getattr(error.orig, "pgcode", None)


def violates_unique(error: exc.IntegrityError, name: str, columns: tuple[str, ...]) -> bool:
    """True when `error` is the unique index or constraint `name` (on `columns`) refusing a
    duplicate, and not any other integrity failure (a CHECK, a NOT NULL, a foreign key), which
    is a bug to see rather than a race to settle. PostgreSQL names the constraint; SQLite only
    lists its columns ("UNIQUE constraint failed: review_cases.provider, …")."""
    if sqlstate_of(error) is not None:
        cause = error.orig.__cause__ if error.orig is not None else None
        constraint = getattr(cause, "constraint_name", None)
        return sqlstate_of(error) == "23505" and constraint == name
    message = str(error.orig)
    if not message.startswith("UNIQUE constraint failed: "):
        return False
    failed = [part.strip().rsplit(".", 1)[-1] for part in message.split(": ", 1)[1].split(",")]
    return tuple(failed) == columns


@dataclass(frozen=True)
class DriverStatement:
    """A Core statement compiled once for PostgreSQL and run by asyncpg itself on the session's
    pooled connection: for the few statements that run on every request (the refresh
    rotation), where SQLAlchemy's own work per execution (cache lookup, parameter and result
    processing) cost about as much CPU as the round trip.

    Only on a connection in autocommit: on one inside a transaction SQLAlchemy begins lazily,
    and a statement sent past it would run outside that transaction (`run` returns None then,
    and the caller executes the statement through SQLAlchemy)."""

    sql: str
    names: tuple[str, ...]
    processors: Mapping[str, Callable[[Any], Any]]
    literals: Mapping[str, Any]
    """Values the statement carries itself (`status == "active"`), by parameter name."""

    @classmethod
    def of(cls, statement: ClauseElement, dialect: Dialect) -> DriverStatement:
        compiled = cast(SQLCompiler, statement.compile(dialect=dialect))
        assert compiled.positiontup is not None, "asyncpg takes positional parameters"
        processors = {
            name: processor
            for name, bind in compiled.binds.items()
            if (processor := bind.type.bind_processor(dialect)) is not None
        }
        literals = {
            name: bind.value for name, bind in compiled.binds.items() if bind.value is not None
        }
        return cls(str(compiled), tuple(compiled.positiontup), processors, literals)

    async def fetchrow(
        self, connection: AsyncConnection, params: dict[str, Any]
    ) -> Mapping[str, Any] | NotRun | None:
        raw = await connection.get_raw_connection()
        if not getattr(raw.dbapi_connection, "autocommit", False):
            return NOT_RUN
        driver = raw.driver_connection
        assert driver is not None
        values = {**self.literals, **params}
        args = [
            self.processors[name](values[name]) if name in self.processors else values[name]
            for name in self.names
        ]
        row: Mapping[str, Any] | None = await driver.fetchrow(self.sql, *args)
        return row


class NotRun:
    """`DriverStatement.fetchrow` left the statement to SQLAlchemy (not autocommit)."""


NOT_RUN = NotRun()


class CompiledOnce:
    """A Core INSERT, UPDATE or DELETE with named parameters, run by asyncpg itself where
    `DriverStatement` can (PostgreSQL, a session in autocommit), compiled for it once per
    process; by SQLAlchemy elsewhere (SQLite, or inside a transaction). For the statements
    every login runs."""

    def __init__(self, statement: UpdateBase) -> None:
        self.statement = statement
        self._driver: DriverStatement | None = None

    async def first(
        self, session: AsyncSession, params: dict[str, Any]
    ) -> Mapping[str, Any] | None:
        """The statement's first row (by column name), None when it returns none."""
        connection = await session.connection()
        if connection.dialect.name == "postgresql":
            if self._driver is None:
                self._driver = DriverStatement.of(self.statement, connection.dialect)
            answer = await self._driver.fetchrow(connection, params)
            if not isinstance(answer, NotRun):
                return answer
        result = await connection.execute(self.statement, params)
        row = result.first() if result.returns_rows else None
        return None if row is None else row._asdict()
