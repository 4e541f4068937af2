"""The long-lived parts of one broker process, built once by `create_app` and shared."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from vssid_broker.config import Settings
from vssid_broker.db import utcnow
from vssid_broker.federation.provider import ProviderClient
from vssid_broker.sessions.keys import SigningKeys
from vssid_broker.sessions.tokens import TokenService


@dataclass
class BrokerContext:
    settings: Settings
    engine: AsyncEngine
    db: async_sessionmaker[AsyncSession]
    reads: async_sessionmaker[AsyncSession]
    """Sessions without a transaction (each statement on its own), for requests that only read:
    no BEGIN and COMMIT round trips around a single SELECT. Never write through them."""
    provider: ProviderClient
    keys: SigningKeys
    tokens: TokenService
    clock: Callable[[], datetime] = field(default=utcnow)
    """Injected so tests can move time instead of sleeping."""
