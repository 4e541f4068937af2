"""Browser sessions: timeouts, a new id at every login, CSRF on forms, logout through VNeID."""

from __future__ import annotations

import re
from html import unescape

import httpx
import pytest
from sqlalchemy import select

from tests.conftest import Stack
from tests.support.flows import browser_login, csrf_token_of
from tests.support.http import AsyncClient
from vssid_broker.audit.models import AuditEvent
from vssid_broker.federation.provider import ProviderMetadata
from vssid_broker.sessions.browser import SESSION_COOKIE
from vssid_broker.sessions.models import BrowserSession

CITIZEN = "001085012345"


async def signed_in_browser(browser: httpx.AsyncClient, stack: Stack) -> str:
    callback = await browser_login(browser, stack.broker, CITIZEN)
    assert callback.status_code == 302
    page = await browser.get(f"{stack.broker}/account")
    assert page.status_code == 200
    return csrf_token_of(page.text)


async def is_signed_in(browser: httpx.AsyncClient, stack: Stack) -> bool:
    page = await browser.get(f"{stack.broker}/account")
    return page.status_code == 200


def browser_holding(session_cookie: str) -> httpx.AsyncClient:
    jar = httpx.Cookies()
    jar.set(SESSION_COOKIE, session_cookie, domain="127.0.0.1")
    return AsyncClient(cookies=jar)


def hidden_fields(page: str) -> dict[str, str]:
    return {
        name: unescape(value)
        for name, value in re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', page)
    }


async def test_session_cookie_attributes(stack: Stack) -> None:
    async with AsyncClient() as browser:
        callback = await browser_login(browser, stack.broker, CITIZEN)
    cookie = callback.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert f"Max-Age={stack.settings.browser_session_ttl_seconds}" in cookie


async def test_idle_session_ends_and_activity_keeps_it(stack: Stack) -> None:
    idle = stack.settings.browser_session_idle_seconds
    async with AsyncClient() as browser:
        await signed_in_browser(browser, stack)
        stack.clock.advance(idle - 60)
        assert await is_signed_in(browser, stack)
        stack.clock.advance(idle - 60)  # longer than idle since login, not since last use
        assert await is_signed_in(browser, stack)
        stack.clock.advance(idle + 1)
        assert not await is_signed_in(browser, stack)


async def test_session_ends_at_its_absolute_lifetime_despite_activity(stack: Stack) -> None:
    settings = stack.settings
    async with AsyncClient() as browser:
        await signed_in_browser(browser, stack)
        elapsed = 0
        step = settings.browser_session_idle_seconds - 60
        while elapsed + step < settings.browser_session_ttl_seconds:
            stack.clock.advance(step)
            elapsed += step
            assert await is_signed_in(browser, stack)
        stack.clock.advance(settings.browser_session_ttl_seconds - elapsed + 1)
        assert not await is_signed_in(browser, stack)


async def test_every_login_gets_a_new_session_and_ends_the_old_one(stack: Stack) -> None:
    async with AsyncClient() as browser:
        await signed_in_browser(browser, stack)
        first = browser.cookies[SESSION_COOKIE]
        await signed_in_browser(browser, stack)
        second = browser.cookies[SESSION_COOKIE]
    assert first != second
    async with browser_holding(first) as old:
        assert not await is_signed_in(old, stack)
    async with browser_holding(second) as new:
        assert await is_signed_in(new, stack)


async def test_planted_session_cookie_does_not_survive_login(stack: Stack) -> None:
    """Session fixation: a cookie someone else set before the login is not the one after it."""
    async with AsyncClient() as attacker:
        await signed_in_browser(attacker, stack)
        planted = attacker.cookies[SESSION_COOKIE]
    async with browser_holding(planted) as victim:
        await signed_in_browser(victim, stack)
        assert victim.cookies[SESSION_COOKIE] != planted
    async with browser_holding(planted) as attacker:
        assert not await is_signed_in(attacker, stack)


async def test_logout_without_the_sessions_csrf_token_is_refused(stack: Stack) -> None:
    async with AsyncClient() as browser:
        token = await signed_in_browser(browser, stack)
        missing = await browser.post(f"{stack.broker}/auth/logout")
        wrong = await browser.post(
            f"{stack.broker}/auth/logout", data={"csrf_token": token[:-2] + "xx"}
        )
        # Another session's token is no good either: the token is tied to the session.
        async with AsyncClient() as other:
            others_token = await signed_in_browser(other, stack)
        foreign = await browser.post(
            f"{stack.broker}/auth/logout", data={"csrf_token": others_token}
        )
        for refused in (missing, wrong, foreign):
            assert refused.status_code == 403
            assert "text/html" in refused.headers["content-type"]
            assert "csrf_refused" in refused.text
        assert await is_signed_in(browser, stack)
    async with stack.db() as session:
        logouts = await session.scalar(
            select(AuditEvent.id).where(AuditEvent.event_type == "logout")
        )
    assert logouts is None


async def test_logout_ends_the_session_and_continues_to_vneid_logout(stack: Stack) -> None:
    async with AsyncClient() as browser:
        token = await signed_in_browser(browser, stack)
        logout = await browser.post(
            f"{stack.broker}/auth/logout",
            data={"csrf_token": token},
            headers={"Origin": stack.settings.public_base_url},
        )
        assert logout.status_code == 303
        assert f'{SESSION_COOKIE}=""' in logout.headers["set-cookie"]
        assert not await is_signed_in(browser, stack)

        # RP-initiated logout by POST (§2), through a page of ours that sends the form: the
        # hint, our client id and where to come back, in the body and never in a URL.
        assert logout.headers["location"] == "/auth/logout/vneid"
        onward = await browser.get(f"{stack.broker}/auth/logout/vneid")
        fields = hidden_fields(onward.text)
        assert fields["client_id"] == stack.settings.vneid_client_id
        assert fields["post_logout_redirect_uri"] == f"{stack.settings.public_base_url}/signed-out"
        assert fields["id_token_hint"].count(".") == 2  # VNeID's own ID token, as it signed it
        at_vneid = await browser.post(f"{stack.sim}/logout", data=fields)
    assert at_vneid.status_code == 302
    assert at_vneid.headers["location"] == (
        f"{stack.settings.public_base_url}/signed-out?state={fields['state']}"
    )
    async with stack.db() as session:
        row = await session.scalar(select(BrowserSession))
    assert row is not None and row.revoked_at is not None
    # The ended session no longer holds VNeID's ID token at all, not even sealed.
    assert row.vneid_id_token_sealed is None


async def test_logout_of_an_ended_session_only_clears_the_cookie(stack: Stack) -> None:
    async with AsyncClient() as browser:
        await signed_in_browser(browser, stack)
        stack.clock.advance(stack.settings.browser_session_idle_seconds + 1)
        logout = await browser.post(f"{stack.broker}/auth/logout")
    assert logout.status_code == 303 and logout.headers["location"] == "/signed-out"


async def test_logout_stays_at_the_broker_when_vneid_offers_no_logout(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Discovery without end_session_endpoint (OIDC RP-Initiated Logout §2.1 makes it optional).
    monkeypatch.setattr(ProviderMetadata, "end_session_endpoint", property(lambda _self: None))
    async with AsyncClient() as browser:
        token = await signed_in_browser(browser, stack)
        logout = await browser.post(f"{stack.broker}/auth/logout", data={"csrf_token": token})
        assert logout.status_code == 303 and logout.headers["location"] == "/signed-out"
        assert not await is_signed_in(browser, stack)


@pytest.mark.parametrize("path", ["one_session", "every_session", "vneid_frontchannel"])
async def test_every_revocation_drops_the_vneid_id_token(stack: Stack, path: str) -> None:
    """The sealed ID token (citizen ID, name, birth date) only serves the logout hint: a
    revoked session keeps it for no one, whichever way it ended."""
    import dataclasses

    from vssid_broker.login import logout

    # The broker's own context holds connections of the broker's event loop; the story is
    # called here with the test's (asyncpg binds a connection to its loop).
    ctx = dataclasses.replace(stack.ctx, db=stack.db, engine=stack.db.kw["bind"])
    async with AsyncClient() as browser:
        await signed_in_browser(browser, stack)
    async with stack.db() as session:
        row = await session.scalar(select(BrowserSession))
    assert row is not None and row.vneid_id_token_sealed is not None and row.vneid_sid
    if path == "one_session":
        assert await logout.end_session(ctx, row.account_id, row.public_id, "t")
    elif path == "every_session":
        await logout.end_every_session(ctx, row.account_id, "t")
    else:
        issuer = stack.settings.vneid_issuer
        assert await logout.vneid_frontchannel_logout(ctx, issuer, row.vneid_sid, "t")
    async with stack.db() as session:
        ended = await session.scalar(select(BrowserSession))
    assert ended is not None and ended.revoked_at is not None
    assert ended.vneid_id_token_sealed is None
