"""Housekeeping: expired sessions, refresh families and used jtis go; live ones stay."""

from __future__ import annotations

import httpx

from tests.conftest import Stack
from tests.sessions.test_browser_sessions import signed_in_browser
from tests.sessions.test_dpop import dpop_login
from tests.support.dpop import AppDpopKey
from vssid_broker.sessions.models import BrowserSession, RefreshToken, UsedJti
from vssid_broker.sessions.service import purge_expired


async def test_purge_removes_only_what_has_expired(stack: Stack) -> None:
    async with httpx.AsyncClient() as browser, httpx.AsyncClient() as app:
        await signed_in_browser(browser, stack)
        await dpop_login(app, stack, AppDpopKey(stack.clock))

    async with stack.db.begin() as session:
        nothing = await purge_expired(session, stack.clock())
    assert (nothing.browser_sessions, nothing.refresh_tokens, nothing.used_jtis) == (0, 0, 0)

    stack.clock.advance(stack.settings.refresh_token_ttl_seconds + 1)
    async with stack.db.begin() as session:
        purged = await purge_expired(session, stack.clock())
    assert (purged.browser_sessions, purged.refresh_tokens, purged.used_jtis) == (1, 1, 1)
    for table in (BrowserSession, RefreshToken, UsedJti):
        assert await stack.count(table) == 0
