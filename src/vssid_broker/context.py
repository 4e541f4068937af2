"""The long-lived parts of one broker process, built once by `create_app` and handed to the
stories (`login/`) and the web face. Domain services never take it: they take the two or
three collaborators they use."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from vssid_broker.config import Settings
from vssid_broker.db import utcnow
from vssid_broker.federation.profiles import IdentityProfile
from vssid_broker.federation.provider import ProviderClient
from vssid_broker.rate_limits import RateLimits
from vssid_broker.requests.sms import DemoSmsSender, SmsSender
from vssid_broker.sessions.access_tokens import AccessTokens
from vssid_broker.sessions.keys import SigningKeys
from vssid_broker.sessions.live_cache import LiveSessionCache
from vssid_broker.sessions.refresh_tokens import RefreshTokens


@dataclass
class BrokerContext:
    settings: Settings
    engine: AsyncEngine
    db: async_sessionmaker[AsyncSession]
    autocommit: async_sessionmaker[AsyncSession]
    """Sessions where each statement is a transaction of its own (PostgreSQL autocommit): no
    BEGIN and COMMIT round trips. For reads, and for a write that is one statement (use
    `.begin()`, which commits on SQLite, where these are ordinary sessions). Anything that
    must be all-or-nothing across statements uses `db`."""
    provider: ProviderClient
    profile: IdentityProfile
    """Answers the login story with a verified identity (`VSSID_VNEID_PROTOCOL`'s profile)."""
    keys: SigningKeys
    access_tokens: AccessTokens
    refresh_tokens: RefreshTokens
    rate_limits: RateLimits
    """Rate-limit counters and the lockout of identifiers that name no one (memory or Redis)."""
    live_sessions: LiveSessionCache | None = None
    """Live access-token sessions remembered by this process (PostgreSQL, cache size > 0)."""
    clock: Callable[[], datetime] = field(default=utcnow)
    sms: SmsSender = field(default_factory=DemoSmsSender)
    """Sends the one-time code of a new phone number (`requests/sms.py`)."""
    phone_code_key: bytes = b""
    """Keys the stored hashes of those codes (derived from the key-encryption key)."""
    """Injected so tests can move time instead of sleeping."""
