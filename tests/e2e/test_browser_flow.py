"""The browser's whole login over real HTTP: login button → VNeID → callback → account page."""

from __future__ import annotations

from tests.conftest import Stack
from tests.support.flows import browser_login, csrf_token_of
from tests.support.http import AsyncClient
from vssid_broker.linking.models import FederatedLink
from vssid_broker.sessions.models import BrowserSession


async def test_browser_signs_in_and_sees_the_account_page(stack: Stack) -> None:
    async with AsyncClient() as browser:
        callback = await browser_login(browser, stack.broker, "001085012345")
        assert callback.status_code == 302
        assert callback.headers["location"] == "/account"
        cookie = callback.headers["set-cookie"]
        assert "vssid_session=" in cookie
        assert "HttpOnly" in cookie
        assert "SameSite=lax" in cookie
        assert "Secure" not in cookie  # loopback http; https public URLs get Secure

        page = await browser.get(f"{stack.broker}/account")
        assert page.status_code == 200
        assert "Nguyễn Văn An" in page.text
        assert "0112345678" in page.text
        assert "vừa được liên kết" in page.text
        # The notice shows once: not on reload, not on an address that asks for it.
        again = await browser.get(f"{stack.broker}/account?linked=1")
        assert "vừa được liên kết" not in again.text
        assert "Bảo hiểm xã hội (BHXH)" in page.text
        assert "DN4010112345678" in page.text

        logout = await browser.post(
            f"{stack.broker}/auth/logout", data={"csrf_token": csrf_token_of(page.text)}
        )
        assert logout.status_code == 303  # on to VNeID's logout (RP-Initiated Logout, POST)
        assert logout.headers["location"] == "/auth/logout/vneid"
        after = await browser.get(f"{stack.broker}/account")
        assert after.status_code == 302
        assert after.headers["location"] == "/"

    assert await stack.count(FederatedLink) == 1
    async with stack.db() as session:
        from sqlalchemy import select

        sessions = list(await session.scalars(select(BrowserSession)))
    assert len(sessions) == 1 and sessions[0].revoked_at is not None


async def test_account_page_without_session_goes_to_login(stack: Stack) -> None:
    async with AsyncClient() as browser:
        response = await browser.get(f"{stack.broker}/account")
    assert response.status_code == 302
    assert response.headers["location"] == "/"


async def test_return_to_cannot_point_off_site(stack: Stack) -> None:
    async with AsyncClient() as browser:
        start = await browser.get(
            f"{stack.broker}/auth/vneid/login", params={"return_to": "//evil.example/phish"}
        )
        assert start.status_code == 302
        from vssid_broker.vneid_sim.driver import sign_in_at_vneid

        back = await sign_in_at_vneid(browser, start.headers["location"], "046075001122")
        callback = await browser.get(back)
    assert callback.headers["location"].startswith("/account")


async def test_login_page_offers_vneid(stack: Stack) -> None:
    async with AsyncClient() as browser:
        page = await browser.get(f"{stack.broker}/")
    assert page.status_code == 200
    assert "Đăng nhập bằng tài khoản định danh điện tử" in page.text


async def test_foreign_origin_cannot_log_the_person_out(stack: Stack) -> None:
    async with AsyncClient() as browser:
        await browser_login(browser, stack.broker, "001085012345")
        forged = await browser.post(
            f"{stack.broker}/auth/logout", headers={"Origin": "https://evil.example"}
        )
        assert forged.status_code == 403
        still_in = await browser.get(f"{stack.broker}/account")
    assert still_in.status_code == 200
