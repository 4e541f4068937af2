"""Housekeeping: expired sessions, refresh families and used jtis go; live ones stay."""

from __future__ import annotations

from tests.conftest import Stack
from tests.sessions.test_browser_sessions import signed_in_browser
from tests.sessions.test_dpop import dpop_login
from tests.sessions.test_refresh import refresh, signed_in_app
from tests.support.dpop import AppDpopKey
from tests.support.http import AsyncClient
from vssid_broker.federation.models import LoginTransaction
from vssid_broker.housekeeping import purge
from vssid_broker.sessions.models import BrowserSession, RefreshToken, UsedJti
from vssid_broker.sessions.service import purge_expired


async def test_purge_removes_only_what_has_expired(stack: Stack) -> None:
    async with AsyncClient() as browser, AsyncClient() as app:
        await signed_in_browser(browser, stack)
        await dpop_login(app, stack, AppDpopKey(stack.clock))

    async with stack.db.begin() as session:
        nothing = await purge_expired(session, stack.clock(), stack.settings)
    assert (nothing.browser_sessions, nothing.refresh_tokens, nothing.used_jtis) == (0, 0, 0)
    assert nothing.rotated_refresh_tokens == 0

    stack.clock.advance(stack.settings.refresh_token_ttl_seconds + 1)
    async with stack.db.begin() as session:
        purged = await purge_expired(session, stack.clock(), stack.settings)
    assert (purged.browser_sessions, purged.refresh_tokens, purged.used_jtis) == (1, 1, 1)
    for table in (BrowserSession, RefreshToken, UsedJti):
        assert await stack.count(table) == 0


async def test_spent_tokens_go_after_the_reuse_window_and_the_family_lives_on(
    stack: Stack,
) -> None:
    """A family keeps a row per rotation; purge drops spent ones past the reuse window, except
    the family's first, which dates the sign-in."""
    window = stack.settings.refresh_token_reuse_detection_seconds
    async with AsyncClient() as app:
        first = await signed_in_app(app, stack)
        second = (await refresh(app, stack, first["refresh_token"])).json()
        stack.clock.advance(60)
        third = (await refresh(app, stack, second["refresh_token"])).json()
        stack.clock.advance(window - 120)
        fourth = (await refresh(app, stack, third["refresh_token"])).json()
        headers = {"Authorization": f"Bearer {fourth['access_token']}"}
        listed_before = await app.get(f"{stack.broker}/api/v1/me/sessions", headers=headers)

        stack.clock.advance(120)  # the second token's spend is past the window, the third's not
        async with stack.db.begin() as session:
            purged = await purge_expired(session, stack.clock(), stack.settings)
        assert (purged.rotated_refresh_tokens, purged.refresh_tokens) == (1, 0)
        assert await stack.count(RefreshToken) == 3  # first, third (spent) and fourth (live)
        listed_after = await app.get(f"{stack.broker}/api/v1/me/sessions", headers=headers)
        assert listed_after.json() == listed_before.json()  # still signed in since the login

        # Past the window a spent token is merely unknown: refused, the family untouched.
        stale = await refresh(app, stack, second["refresh_token"])
        assert stale.status_code == 400
        fresh = await refresh(app, stack, fourth["refresh_token"])
        assert fresh.status_code == 200
        # A kept spent token still counts as reuse and ends the family.
        reused = await refresh(app, stack, third["refresh_token"])
        assert reused.status_code == 400
        ended = await refresh(app, stack, fresh.json()["refresh_token"])
        assert ended.status_code == 400


async def test_purge_deletes_expired_login_transactions_and_keeps_a_login_in_progress(
    stack: Stack,
) -> None:
    """Every started login leaves a row; once past its lifetime it can never be used, and
    `vssid-broker purge` must remove it instead of keeping it forever."""
    async with AsyncClient() as abandoned, AsyncClient() as current:
        await abandoned.get(f"{stack.broker}/auth/vneid/login")
        stack.clock.advance(stack.settings.login_transaction_ttl_seconds + 1)
        await current.get(f"{stack.broker}/auth/vneid/login")
    assert await stack.count(LoginTransaction) == 2

    async with stack.db.begin() as session:
        purged = await purge(session, stack.clock(), stack.settings)
    assert purged.login_transactions == 1
    assert await stack.count(LoginTransaction) == 1
