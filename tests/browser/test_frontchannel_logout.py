"""Front-channel logout in a real browser: VNeID's logged-out page frames the broker's logout
URI, Chromium loads it (the broker lets only VNeID frame it), and the broker session ends."""

from __future__ import annotations

import pytest
from playwright.async_api import Page, expect

from tests.browser.test_login_in_chromium import sign_in_at_vneid
from tests.e2e.test_conformance import StackFactory, own_stack

pytestmark = pytest.mark.browser
__all__ = ["own_stack"]  # the fixture, used by name


async def test_signing_out_at_vneid_signs_the_browser_out_of_vssid(
    own_stack: StackFactory, page: Page
) -> None:
    frontchannel = {"frontchannel_logout_uri": "{broker}/auth/vneid/frontchannel-logout"}
    with own_stack(web_client=frontchannel) as stack:
        await page.goto(f"{stack.broker}/")
        await page.get_by_role("link", name="Đăng nhập bằng tài khoản định danh điện tử").click()
        await sign_in_at_vneid(page, "Nguyễn Văn An")
        await page.get_by_label("Mã OTP").fill("123456")
        await page.get_by_role("button", name="Xác nhận").click()
        await page.get_by_role("button", name="Đồng ý").click()
        await expect(page).to_have_url(f"{stack.broker}/account")

        # The person signs out in VNeID; its page loads our logout URI in an iframe.
        async with page.expect_response(
            lambda response: "/auth/vneid/frontchannel-logout" in response.url
        ) as framed:
            await page.goto(f"{stack.sim}/_test/citizens/001085012345/sign-out")
        assert (await framed.value).status == 200
        await expect(page.get_by_role("heading", name="Bạn đã đăng xuất")).to_be_visible()

        await page.goto(f"{stack.broker}/account")
        await expect(page).to_have_url(f"{stack.broker}/")
