"""Rate limits and the lockout of identifiers that name no one, with the `limits` library.

Counters live in memory for the embedded default (one process) or in Redis when several broker
processes serve (`VSSID_RATE_LIMIT_STORAGE=redis://…`): every process then sees the same
counts. The sliding-window-counter strategy keeps two integers per key, in either storage.

Keys never hold an identifier or an address as such: each is an HMAC under a key derived from
the key-encryption key (the same in every process), so a Redis dump names no citizen.

When the storage cannot be reached the limits let requests through (logged once per interval,
and told by the `vssid_rate_limits_enforced` gauge, the `vssid_dependency_up{dependency="redis"}`
gauge and `/readyz`'s body): an outage of the counters must not become an outage of sign-in.
The per-account lockout in the database and the bounded password threads
(`vssid_broker.passwords`) still hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import math
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.storage import RedisStorage, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.storage import storage_from_string
from redis.exceptions import NoScriptError

from vssid_broker import metrics
from vssid_broker.config import Settings, parse_rate_limit
from vssid_broker.logging_setup import OncePerInterval

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rule:
    """One named limit: `name` goes into the key (and the 429's detail), `items` are its
    rates ("30/minute;500/day" is two)."""

    name: str
    items: tuple[RateLimitItem, ...]

    @classmethod
    def of(cls, name: str, notation: str) -> Rule:
        return cls(name, tuple(parse_rate_limit(notation)))


@dataclass(frozen=True)
class Rules:
    """Every limit of the broker, read from the settings once."""

    password_per_ip: Rule
    password_per_identifier: Rule
    password_per_ip_and_identifier: Rule
    login_start_per_ip: Rule
    token_per_ip: Rule

    @classmethod
    def of(cls, settings: Settings) -> Rules:
        return cls(
            Rule.of("password_per_ip", settings.rate_limit_password_per_ip),
            Rule.of("password_per_identifier", settings.rate_limit_password_per_identifier),
            Rule.of(
                "password_per_ip_and_identifier",
                settings.rate_limit_password_per_ip_and_identifier,
            ),
            Rule.of("login_start_per_ip", settings.rate_limit_login_start_per_ip),
            Rule.of("token_per_ip", settings.rate_limit_token_per_ip),
        )


def storage_uri(setting: str) -> str:
    """The `limits` async storage for `VSSID_RATE_LIMIT_STORAGE` (memory:// or redis://)."""
    parts = urlsplit(setting)
    return urlunsplit(parts._replace(scheme=f"async+{parts.scheme}"))


class RateLimits:
    """The counters of one broker process (shared through Redis when configured)."""

    def __init__(self, settings: Settings, key_secret: bytes) -> None:
        self.rules = Rules.of(settings)
        options: dict[str, float | str | bool] = {}
        if settings.rate_limit_storage != "memory://":
            options = {
                "implementation": "redispy",
                "socket_timeout": 0.5,
                "key_prefix": settings.rate_limit_key_prefix,
            }
        storage = storage_from_string(storage_uri(settings.rate_limit_storage), **options)
        assert isinstance(storage, Storage)  # an async+ scheme gives an asyncio storage
        self._storage = storage
        self._limiter = SlidingWindowCounterRateLimiter(self._storage)
        # One Redis server (not a cluster or sentinels): concurrent counts share a round trip.
        self._batch = _PipelinedCounts(storage) if type(storage) is RedisStorage else None
        self._key_secret = key_secret
        self._lockout = RateLimitItemPerSecond(
            settings.password_max_failures, settings.password_lockout_seconds
        )
        self._outage_log = OncePerInterval(60)
        self._uses_redis = settings.rate_limit_storage != "memory://"
        self.enforced = True
        """False from a failed count until the next one that reaches the storage."""
        metrics.RATE_LIMITS_ENFORCED.set(1)

    def _key(self, *parts: str) -> str:
        return hmac.new(self._key_secret, "\x1f".join(parts).encode(), hashlib.sha256).hexdigest()[
            :32
        ]

    async def hit(self, rule: Rule, *parts: str) -> int | None:
        """Count one request against `rule` for `parts` (an address, an identifier); None when
        it may go on, else the seconds after which it may be retried."""
        return await self._apply(rule, parts, count=True)

    async def exceeded(self, rule: Rule, *parts: str) -> int | None:
        """Like `hit` without counting: for rules that count only failures."""
        return await self._apply(rule, parts, count=False)

    async def _apply(self, rule: Rule, parts: tuple[str, ...], *, count: bool) -> int | None:
        key = self._key(rule.name, *parts)
        try:
            for item in rule.items:
                if not count:
                    allowed = await self._limiter.test(item, key)
                elif self._batch is not None:
                    allowed = await self._batch.hit(item, key)
                else:
                    allowed = await self._limiter.hit(item, key)
                if not allowed:
                    stats = await self._limiter.get_window_stats(item, key)
                    self._storage_reached()
                    return max(1, math.ceil(stats.reset_time - time.time()))
        except Exception:
            self._storage_unreachable()
            return None
        self._storage_reached()
        return None

    # --- the lockout of identifiers that name no one --------------------------------------------
    # A real account locks after `password_max_failures` wrong passwords (a counter in its
    # database row); an identifier that names no one has no row, so its failures are counted
    # here, with the same threshold and duration, and it locks the same way: whether a BHXH
    # code, a citizen ID or a staff username exists cannot be told from the answers.
    async def unknown_identifier_locked(self, realm: str, identifier: str) -> bool:
        try:
            allowed = await self._limiter.test(
                self._lockout, self._key("lockout", realm, identifier)
            )
        except Exception:
            self._storage_unreachable()
            return False
        self._storage_reached()
        return not allowed

    async def count_unknown_identifier_failure(self, realm: str, identifier: str) -> bool:
        """Count one failure; True when this one reached the threshold (locked from now)."""
        key = self._key("lockout", realm, identifier)
        try:
            await self._limiter.hit(self._lockout, key)
            allowed = await self._limiter.test(self._lockout, key)
        except Exception:
            self._storage_unreachable()
            return False
        self._storage_reached()
        return not allowed

    def _storage_reached(self) -> None:
        # Only on a change: the gauge is a file write in multiprocess mode.
        if not self.enforced:
            self._set_enforced(True)

    def _set_enforced(self, enforced: bool) -> None:
        self.enforced = enforced
        metrics.RATE_LIMITS_ENFORCED.set(1 if enforced else 0)
        if self._uses_redis:
            metrics.dependency_reached("redis", up=enforced)

    def _storage_unreachable(self) -> None:
        if self.enforced:
            self._set_enforced(False)
        if self._outage_log.due():
            log.warning(
                "rate-limit storage unreachable; limits are not enforced until it is back",
                exc_info=True,
            )

    async def reset(self) -> None:
        """Forget every count (tests; an operator lifting a limit after an incident)."""
        await self._storage.reset()


class _PipelinedCounts:
    """`SlidingWindowCounterRateLimiter.hit` against one Redis server, the counts of requests
    that arrive together sent in one pipeline: the same script of the `limits` library on the
    same keys, one per count and in order, so every count and every answer is the one the
    library gives; only the round trips are shared. A count waits at most for the pipeline
    in flight (one round trip) plus its own.

    A refresh spent ~13 % of its CPU in redis-py's own layers around a single count (the
    connection pool, the retry and timeout wrappers, the socket write and the wake-up of the
    read): shared, they cost a fraction of that per count (docs/performance.md, round 4).
    A failed pipeline fails every count in it, and each caller lets its request through as a
    failed count does (`RateLimits._apply`)."""

    def __init__(self, storage: RedisStorage) -> None:
        self._storage = storage
        self._waiting: list[tuple[list[str], list[int], asyncio.Future[bool]]] = []
        self._sending: asyncio.Task[None] | None = None

    async def hit(self, item: RateLimitItem, key: str) -> bool:
        # What `SlidingWindowCounterRateLimiter.hit` and `RedisStorage` pass the script.
        limited = item.key_for(key)
        bridge = self._storage.bridge
        current = bridge.prefixed_key(self._storage._current_window_key(limited))
        previous = bridge.prefixed_key(self._storage._previous_window_key(limited))
        loop = asyncio.get_running_loop()
        if self._sending is not None and self._sending.get_loop() is not loop:
            # Left by an event loop that ended (tests run one per test): start afresh.
            self._sending, self._waiting = None, []
        answer: asyncio.Future[bool] = loop.create_future()
        self._waiting.append(([previous, current], [item.amount, item.get_expiry(), 1], answer))
        if self._sending is None:
            self._sending = asyncio.create_task(self._send())
        return await answer

    async def _send(self) -> None:
        """Send what waits, and again while more came meanwhile."""
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                with contextlib.suppress(Exception):  # told to the batch's callers
                    await self._send_batch(batch)
        finally:
            self._sending = None

    async def _send_batch(
        self, batch: list[tuple[list[str], list[int], asyncio.Future[bool]]]
    ) -> None:
        try:
            try:
                results = await self._pipelined(batch)
            except NoScriptError:  # Redis restarted or flushed its scripts: load, send again
                bridge: Any = self._storage.bridge
                script = bridge.lua_acquire_sliding_window
                await bridge.get_connection().script_load(script.script)
                results = await self._pipelined(batch)
        except BaseException as error:  # every count in it failed: each caller fails open
            for _, _, answer in batch:
                if not answer.done():
                    answer.set_exception(
                        error if isinstance(error, Exception) else ConnectionError("cancelled")
                    )
            raise
        for (_, _, answer), acquired in zip(batch, results, strict=True):
            if not answer.done():
                answer.set_result(bool(acquired))

    async def _pipelined(
        self, batch: list[tuple[list[str], list[int], asyncio.Future[bool]]]
    ) -> list[Any]:
        # EVALSHA queued as such: a pipeline given the `Script` object would first ask
        # SCRIPT EXISTS, a second round trip each time.
        bridge: Any = self._storage.bridge
        sha = bridge.lua_acquire_sliding_window.sha
        async with bridge.get_connection().pipeline(transaction=False) as pipeline:
            for keys, args, _ in batch:
                pipeline.evalsha(sha, len(keys), *keys, *args)
            results: list[Any] = await pipeline.execute()
        return results
