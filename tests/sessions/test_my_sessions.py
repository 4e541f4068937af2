"""The person's own sessions: listed with device, channel and times; ended one by one or all."""

from __future__ import annotations

from tests.conftest import Stack
from tests.sessions.test_browser_sessions import is_signed_in
from tests.sessions.test_refresh import refresh
from tests.sessions.test_revocation import app_login_as, browser_login_as, me_status
from tests.support.http import AsyncClient

AN = "001085012345"
KHOA = "046075001122"
BROWSER_UA = "Mozilla/5.0 (X11; Linux x86_64) Chromium/131"
APP_UA = "VssID/5.2.1 (Android 14; Samsung SM-A546E)"


def bearer(tokens: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def test_sessions_are_listed_with_device_channel_and_times(stack: Stack) -> None:
    async with (
        AsyncClient(headers={"User-Agent": BROWSER_UA}) as browser,
        AsyncClient(headers={"User-Agent": APP_UA}) as app,
    ):
        await browser_login_as(browser, stack, AN)
        stack.clock.advance(5)
        tokens = await app_login_as(app, stack, AN)
        await app_login_as(app, stack, KHOA)  # someone else's session is not listed
        listed = await app.get(f"{stack.broker}/api/v1/me/sessions", headers=bearer(tokens))
    assert listed.status_code == 200
    sessions = listed.json()
    assert [(s["channel"], s["device"], s["current"]) for s in sessions] == [
        ("app", APP_UA, True),
        ("browser", BROWSER_UA, False),
    ]
    app_session, browser_session = sessions
    assert app_session["created_at"] > browser_session["created_at"]
    assert {"id", "last_used_at", "expires_at"} <= set(app_session)


async def test_ending_one_session_signs_out_only_that_one(stack: Stack) -> None:
    async with AsyncClient() as browser, AsyncClient() as app:
        await browser_login_as(browser, stack, AN)
        tokens = await app_login_as(app, stack, AN)
        listed = await app.get(f"{stack.broker}/api/v1/me/sessions", headers=bearer(tokens))
        [browser_id] = [s["id"] for s in listed.json() if s["channel"] == "browser"]

        ended = await app.delete(
            f"{stack.broker}/api/v1/me/sessions/{browser_id}", headers=bearer(tokens)
        )
        assert ended.status_code == 204
        assert not await is_signed_in(browser, stack)
        assert await me_status(app, stack, tokens["access_token"]) == 200
        again = await app.delete(
            f"{stack.broker}/api/v1/me/sessions/{browser_id}", headers=bearer(tokens)
        )
        assert again.status_code == 404
        after = await app.get(f"{stack.broker}/api/v1/me/sessions", headers=bearer(tokens))
    assert [s["channel"] for s in after.json()] == ["app"]


async def test_nobody_ends_another_persons_session(stack: Stack) -> None:
    async with AsyncClient() as app:
        victim = await app_login_as(app, stack, KHOA)
        victims = await app.get(f"{stack.broker}/api/v1/me/sessions", headers=bearer(victim))
        [victim_session] = victims.json()
        attacker = await app_login_as(app, stack, AN)
        attempt = await app.delete(
            f"{stack.broker}/api/v1/me/sessions/{victim_session['id']}", headers=bearer(attacker)
        )
        assert attempt.status_code == 404
        assert attempt.headers["content-type"] == "application/problem+json"
        assert await me_status(app, stack, victim["access_token"]) == 200


async def test_ending_all_sessions_signs_out_everywhere(stack: Stack) -> None:
    async with AsyncClient() as browser, AsyncClient() as app:
        await browser_login_as(browser, stack, AN)
        phone = await app_login_as(app, stack, AN)
        tablet = await app_login_as(app, stack, AN)
        ended = await app.delete(f"{stack.broker}/api/v1/me/sessions", headers=bearer(phone))
        assert ended.status_code == 204
        assert not await is_signed_in(browser, stack)
        for tokens in (phone, tablet):
            assert await me_status(app, stack, tokens["access_token"]) == 401
            assert (await refresh(app, stack, tokens["refresh_token"])).status_code == 400
