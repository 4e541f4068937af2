"""The answer of `LIVE_SESSION_ACCOUNT` kept in the process, invalidated by PostgreSQL.

Every call to the broker's own APIs asks whether its access token's refresh family is live and
its account active (`access_tokens.LIVE_SESSION_ACCOUNT`). That query was most of the CPU of
`/api/v1/me`; its positive answers are kept here, by (family id, account id), with the account's
row. Revocation stays immediate because the database says when an answer changes: triggers
(migration 0012) `pg_notify` the channel `vssid_live_sessions` whenever something the query
reads changes (payloads carry ids only: `f:<family id>`, `a:<account id>`, `*` for everything),
and each process listens on a dedicated connection (`LiveSessionListener`).

The cache answers only while that connection is LISTENing. When it drops, the cache is emptied
and every call queries until the listener is back: a notification missed while it was away can
never leave a stale answer behind. Entries also end after `VSSID_SESSION_CACHE_MAX_AGE_SECONDS`
and are evicted least recently used beyond `VSSID_SESSION_CACHE_SIZE`. Negative answers are
never kept.

A call that read "live" just before a revocation committed must not store that answer after the
revocation's notification arrived: `generation` changes with every notification and every
(re)connection, is read before the query and checked before storing.

Immediacy across processes. A request that revoked something (logout, RFC 7009 revocation,
a lock: whatever ends families through `RefreshTokens`) drops this process's entries at its
commit and, before it answers (`web.middleware`), sends a barrier on the channel and waits
until every listening process has acknowledged it, at most `REVOCATION_WAIT_SECONDS`.
PostgreSQL delivers a connection's notifications in commit order and each listener handles them
in order, so a process acknowledges the barrier only after it has dropped what the revocation
named. Waiting for this process's own listener alone was not enough: on a busy machine another
process's listener received the same notification milliseconds later, after that process had
already answered the person's next request from its cache (tests/e2e/test_live_session_cache.py
caught it).

What remains, exactly: the wait gives up after `REVOCATION_WAIT_SECONDS` (counted in
`vssid_session_cache_revocation_waits_run_out`), so a process whose event loop is stalled
longer than that may answer one more request from its cache before it reads the notification;
a listener cut off without a reset reaching it (no acknowledgement either) is noticed by its
health check within `PING_SECONDS` + `PING_TIMEOUT_SECONDS`, its process answering from the
cache until then; a revoker whose own listener is down answers without the barrier (the other
processes still get the notification as soon as PostgreSQL sends it). A change the broker does
not make itself (an operator's SQL, another service) is seen by each process as its notification
arrives, with no barrier. The maximum age bounds everything else.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from time import monotonic
from typing import TYPE_CHECKING, Any

from sqlalchemy import Row, event, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Session

from vssid_broker import metrics

if TYPE_CHECKING:
    from vssid_broker.accounts.schemas import AccountJson

CHANNEL = "vssid_live_sessions"
LISTENER_APPLICATION_NAME = "vssid-broker live-session listener"
"""How the listener's connection shows in `pg_stat_activity`."""
REVOCATION_WAIT_SECONDS = 0.1
PING_SECONDS = 5.0
PING_TIMEOUT_SECONDS = 2.0
RECONNECT_FIRST_SECONDS = 0.2
RECONNECT_MAX_SECONDS = 10.0
_PING = "ping"
_BARRIER = "barrier:"
"""`barrier:<reply channel>:<number>`: every listener answers `<number>` on the reply channel."""

log = logging.getLogger(__name__)


def family_notice(family_id: str) -> str:
    return f"f:{family_id}"


@dataclass(eq=False, slots=True)
class LiveAccount:
    """One positive answer: the account's row (its citizen ID sealed), and what calls render
    from the row once and keep beside it, dropped with it. Nothing kept here holds a citizen
    ID in clear."""

    account: Row[Any]
    stored_at: float
    json: AccountJson | None = None
    """`/api/v1/me`'s answer without the citizen ID, rendered by the first call that needs it
    (`AccessTokenClaims.account_json`)."""


class LiveSessionCache:
    """Positive answers of `LIVE_SESSION_ACCOUNT` by (family id, account id), in one process."""

    def __init__(self, size: int, max_age_seconds: float) -> None:
        self._size = size
        self._max_age = max_age_seconds
        self._entries: OrderedDict[tuple[str, int], LiveAccount] = OrderedDict()
        self._by_family: dict[str, set[int]] = {}
        self._by_account: dict[int, set[str]] = {}
        self.generation = 0
        """Changes whenever an answer may have changed: read before a query, checked before
        storing its answer."""
        self.listening = False

    # --- the calls' side -------------------------------------------------------------------------
    def get(self, family_id: str, account_id: int) -> Row[Any] | None:
        entry = self.find(family_id, account_id)
        return entry.account if entry is not None else None

    def find(self, family_id: str, account_id: int) -> LiveAccount | None:
        """`get`, with what is kept beside the row."""
        if not self.listening:
            metrics.SESSION_CACHE_BYPASSES.inc()
            return None
        key = (family_id, account_id)
        entry = self._entries.get(key)
        if entry is None or monotonic() - entry.stored_at > self._max_age:
            metrics.SESSION_CACHE_MISSES.inc()
            return None
        self._entries.move_to_end(key)
        metrics.SESSION_CACHE_HITS.inc()
        return entry

    def put(
        self, family_id: str, account_id: int, account: Row[Any], generation: int
    ) -> LiveAccount | None:
        """Keep a live answer read by a query that started at `generation`, unless anything was
        invalidated since (the answer may predate a revocation) or the listener is away.
        The entry kept, if it was."""
        if not self.listening or generation != self.generation:
            return None
        key = (family_id, account_id)
        entry = self._entries[key] = LiveAccount(account, monotonic())
        self._entries.move_to_end(key)
        self._by_family.setdefault(family_id, set()).add(account_id)
        self._by_account.setdefault(account_id, set()).add(family_id)
        while len(self._entries) > self._size:
            self._remove(next(iter(self._entries)))
        return entry if key in self._entries else None

    def __len__(self) -> int:
        return len(self._entries)

    # --- invalidation ----------------------------------------------------------------------------
    def forget(self, payload: str) -> None:
        """Drop what a notification names: `f:<family id>`, `a:<account id>`, anything else
        (`*`, or a kind this version does not know) everything."""
        self.generation += 1
        kind, _, ident = payload.partition(":")
        if kind == "f":
            for account_id in list(self._by_family.get(ident, ())):
                self._remove((ident, account_id))
        elif kind == "a" and ident.isdigit():
            for family_id in list(self._by_account.get(int(ident), ())):
                self._remove((family_id, int(ident)))
        else:
            self._clear()

    def revoking(self, session: AsyncSession, payloads: Iterable[str]) -> None:
        """`session` changed what `payloads` name: at its commit this process forgets them and
        the request answers only once every process has (`web.middleware`)."""
        session.info.setdefault(_REVOKED, []).append(_Revoked(self, tuple(payloads)))

    def listening_started(self) -> None:
        self._clear()
        self.listening = True

    def listening_stopped(self) -> None:
        self.listening = False
        self._clear()

    def _clear(self) -> None:
        self.generation += 1
        self._entries.clear()
        self._by_family.clear()
        self._by_account.clear()

    def _remove(self, key: tuple[str, int]) -> None:
        if self._entries.pop(key, None) is None:
            return
        family_id, account_id = key
        accounts = self._by_family[family_id]
        accounts.discard(account_id)
        if not accounts:
            del self._by_family[family_id]
        families = self._by_account[account_id]
        families.discard(family_id)
        if not families:
            del self._by_account[account_id]


# --- what a request revoked, from its commit to its answer ----------------------------------------
@dataclass(frozen=True)
class _Revoked:
    cache: LiveSessionCache
    payloads: tuple[str, ...]


_REVOKED = "vssid_broker.live_cache.revoked"
_committed_revocations: ContextVar[list[_Revoked] | None] = ContextVar(
    "committed_revocations", default=None
)


@contextlib.contextmanager
def collecting_revocations() -> Iterator[list[_Revoked]]:
    """Around one request: what its transactions revoked and committed."""
    committed: list[_Revoked] = []
    token = _committed_revocations.set(committed)
    try:
        yield committed
    finally:
        _committed_revocations.reset(token)


@event.listens_for(Session, "after_commit")
def _forget_at_commit(session: Session) -> None:
    for revoked in session.info.pop(_REVOKED, ()):
        for payload in revoked.payloads:
            revoked.cache.forget(payload)
        committed = _committed_revocations.get()
        if committed is not None:
            committed.append(revoked)


@event.listens_for(Session, "after_rollback")
def _nothing_revoked_at_rollback(session: Session) -> None:
    session.info.pop(_REVOKED, None)


# --- the listener ---------------------------------------------------------------------------------
class LiveSessionListener:
    """One dedicated connection (not from the pool) LISTENing on `CHANNEL`, reconnected with
    backoff while the process runs; the cache answers only while it is up. It also runs the
    barrier a revoking request waits on, and answers other processes' barriers."""

    def __init__(
        self, cache: LiveSessionCache, engine: AsyncEngine, listen_url: str | None = None
    ) -> None:
        self._cache = cache
        self._connect_args = _asyncpg_connect_args(engine, listen_url)
        self._task: asyncio.Task[None] | None = None
        self._connection: Any = None
        self._reply_channel = ""
        self._statements = asyncio.Lock()
        """One statement at a time on the connection: pings, barriers, acknowledgements."""
        self._barriers = itertools.count(1)
        self._waiting: dict[int, _Barrier] = {}
        self._acknowledging: set[asyncio.Task[None]] = set()
        self._pong: asyncio.Future[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="live-session listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._cache.listening_stopped()

    # --- the revoking side -----------------------------------------------------------------------
    async def everyone_forgot(self) -> bool:
        """After a revocation's commit: a barrier every listening process acknowledges once it
        has handled the notifications committed before it. False when the wait ran out (or
        this process is not listening: then there is nobody to ask)."""
        if not self._cache.listening:
            return False
        number = next(self._barriers)
        barrier = self._waiting[number] = _Barrier(asyncio.get_running_loop().create_future())
        try:
            async with asyncio.timeout(REVOCATION_WAIT_SECONDS):
                async with self._statements:
                    if self._connection is None:  # lost while this waited for its turn
                        return False
                    barrier.expected = await self._connection.fetchval(
                        "SELECT count(*) FROM pg_stat_activity, pg_notify($1, $2) "
                        "WHERE application_name = $3 AND datname = current_database()",
                        CHANNEL,
                        f"{_BARRIER}{self._reply_channel}:{number}",
                        LISTENER_APPLICATION_NAME,
                    )
                barrier.check()
                await barrier.everyone
            return True
        except _connection_errors():
            return False
        finally:
            del self._waiting[number]

    # --- the connection --------------------------------------------------------------------------
    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                await self._listen_until_lost()
            except Exception as error:  # whatever ended it, the loop reconnects
                log.warning(
                    "live-session listener down (%s); every call queries until it is back",
                    type(error).__name__,
                )
            finally:
                failures = 0 if self._cache.listening else min(failures + 1, 16)
                self._cache.listening_stopped()
            delay = min(RECONNECT_FIRST_SECONDS * 2**failures, RECONNECT_MAX_SECONDS)
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))  # noqa: S311 - jitter

    async def _listen_until_lost(self) -> None:
        import asyncpg

        connection = await asyncio.wait_for(
            asyncpg.connect(**self._connect_args), timeout=PING_SECONDS
        )
        lost = asyncio.Event()
        try:
            connection.add_termination_listener(lambda _: lost.set())
            self._reply_channel = f"{CHANNEL}_{connection.get_server_pid()}"
            await connection.add_listener(self._reply_channel, self._acknowledged)
            await connection.add_listener(CHANNEL, self._received)
            self._connection = connection
            await self._hear_own_ping()
            self._cache.listening_started()
            log.info("live-session listener up")
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lost.wait(), PING_SECONDS)
                    raise ConnectionError("the listener's connection was closed")
                await self._hear_own_ping()
        finally:
            self._connection = None
            connection.terminate()

    async def _hear_own_ping(self) -> None:
        """A notification to ourselves must come back: a connection cut without a reset
        reaching us looks alive, and behind a pooler in transaction mode LISTEN seems to work
        but hears nothing. Raises TimeoutError otherwise."""
        self._pong = asyncio.get_running_loop().create_future()
        async with asyncio.timeout(PING_TIMEOUT_SECONDS):
            async with self._statements:
                await self._connection.execute(
                    "SELECT pg_notify($1, $2)", self._reply_channel, _PING
                )
            await self._pong

    def _received(self, _connection: object, _pid: int, _channel: str, payload: str) -> None:
        if not payload.startswith(_BARRIER):
            self._cache.forget(payload)
            return
        # Handled in order after every notification before it: answering says they are.
        reply_channel, _, number = payload.removeprefix(_BARRIER).rpartition(":")
        task = asyncio.create_task(self._acknowledge(reply_channel, number))
        self._acknowledging.add(task)
        task.add_done_callback(self._acknowledging.discard)

    async def _acknowledge(self, reply_channel: str, number: str) -> None:
        with contextlib.suppress(*_connection_errors()):
            async with asyncio.timeout(REVOCATION_WAIT_SECONDS), self._statements:
                if self._connection is not None:
                    await self._connection.execute(
                        "SELECT pg_notify($1, $2)", reply_channel, number
                    )

    def _acknowledged(self, _connection: object, _pid: int, _channel: str, payload: str) -> None:
        if payload == _PING:
            if self._pong is not None and not self._pong.done():
                self._pong.set_result(None)
            return
        barrier = self._waiting.get(int(payload)) if payload.isdigit() else None
        if barrier is not None:
            barrier.answered += 1
            barrier.check()


@dataclass
class _Barrier:
    everyone: asyncio.Future[None]
    expected: int | None = None
    """Listening processes when the barrier was sent (this one included)."""
    answered: int = 0

    def check(self) -> None:
        if (
            self.expected is not None
            and self.answered >= self.expected
            and not self.everyone.done()
        ):
            self.everyone.set_result(None)


async def answer_after_everyone_forgot(
    listener: LiveSessionListener, committed: list[_Revoked]
) -> None:
    """Before a request that revoked something answers (`web.middleware`)."""
    committed.clear()
    if not await listener.everyone_forgot():
        metrics.SESSION_CACHE_REVOCATION_WAITS_RUN_OUT.inc()


def _connection_errors() -> tuple[type[Exception], ...]:
    """What a statement on the listener's connection raises when the connection is lost."""
    import asyncpg

    return (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError)


def _asyncpg_connect_args(engine: AsyncEngine, listen_url: str | None) -> dict[str, Any]:
    """The connection arguments (host, user, TLS from the URL) of `listen_url` or else the
    engine's own, for asyncpg."""
    url = make_url(listen_url) if listen_url else engine.url
    _, options = engine.dialect.create_connect_args(url)
    arguments: dict[str, Any] = dict(options)
    for sqlalchemy_only in ("prepared_statement_cache_size", "prepared_statement_name_func"):
        arguments.pop(sqlalchemy_only, None)
    settings = dict(arguments.pop("server_settings", None) or {})
    arguments["server_settings"] = settings | {"application_name": LISTENER_APPLICATION_NAME}
    return arguments
